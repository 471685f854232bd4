"""Real-corpus speed and memory: shared word vocabulary vs separate vocabularies vs 8k BPE.

A generated corpus shaped like Multi30k (about 30k pairs of 5-40 words, Zipfian word frequencies,
about 25k distinct words over both languages; target = a word-for-word dictionary of the source,
locally reordered) is written as train/val/test files and trained through the real harness (`fit`,
seq2seq_attention, 2 layers, d_model 128), each setting in a fresh process so peak memory is its own:

  shared   word tokens, one vocabulary for both languages (the old behaviour)
  separate word tokens, one vocabulary per side (the new default): the softmax covers the target only
  bpe8k    sentencepiece BPE, 8000 pieces per side

Speed is counted in source + target WORDS of the original text per training second, so tokenizations
compare; "time" is the training time of the same pairs and epochs (all training words / words per
second). Peak memory is the process's peak RSS, evaluation (free-running decoding of val and test)
included. Goals (issue 13): bpe8k time <= 0.5x shared; peak memory < 1.5 GB. The last line is the ratio.

On a small shared machine run it reduced: --steps bounds the measured training steps (the vocabularies
still come from the whole training file), --pairs the corpus size. Each setting is measured once (one
process each, one after the other), so a busy machine moves the ratio; rerun to see the spread.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Row, cli, finish, print_table

HERE = Path(__file__).resolve().parent
SETTINGS = {
    "shared": {"tokens": "word", "vocab": {"shared": True}},
    "separate": {"tokens": "word", "vocab": {"shared": False}},
    "bpe8k": {"tokens": "bpe", "vocab_size": 8000},
}
SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"] + ["sch", "ch", "th", "str"]


def lexicon(n: int, rng: random.Random) -> list[str]:
    """n distinct pseudo-words of 1-4 syllables (so subwords have structure to find)."""
    words: dict[str, None] = {}
    while len(words) < n:
        words.setdefault("".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))))
    return list(words)


def write_corpus(out: Path, n_pairs: int, n_src: int = 14000, n_tgt: int = 11000, seed: int = 0) -> dict[str, int]:
    rng = random.Random(seed)
    src_words, tgt_words = lexicon(n_src, rng), lexicon(n_tgt, rng)
    cum, total = [], 0.0
    for r in range(n_src):  # Zipf: frequency of the r-th word ~ 1 / r
        total += 1 / (r + 1) ** 1.05
        cum.append(total)
    dictionary = [tgt_words[(i * 7919) % n_tgt] for i in range(n_src)]
    sizes = {"train": n_pairs, "val": max(100, n_pairs // 30), "test": max(100, n_pairs // 30)}
    counts = {}
    for name, n in sizes.items():
        lines, words = [], 0
        for _ in range(n):
            length = min(40, 5 + int(rng.expovariate(1 / 8)))  # 5-40 words, mean about 13 as in Multi30k
            ids = rng.choices(range(n_src), cum_weights=cum, k=length)
            tgt = [dictionary[i] for i in ids]
            for j in range(0, len(tgt) - 1, 3):  # local reordering
                tgt[j], tgt[j + 1] = tgt[j + 1], tgt[j]
            lines.append(" ".join(src_words[i] for i in ids) + "\t" + " ".join(tgt) + "\n")
            words += 2 * length
        (out / f"{name}.tsv").write_text("".join(lines))
        counts[name] = words
    return counts


def run_one(setting: str, corpus: Path, steps: int, threads: int) -> dict:
    """Train one setting in this process; its figures as a dict."""
    import resource
    import warnings

    import torch

    # the measured steps may end before the first validation: nothing to monitor yet, and that is fine
    warnings.filterwarnings("ignore", ".*could not find the monitored key.*")

    torch.set_num_threads(threads)
    from ablate.config import build_run
    from ablate.train.fit import fit

    task = {"name": "tsv", **{k: str(corpus / f"{k}.tsv") for k in ("train", "val", "test")}, **SETTINGS[setting]}
    tree = {"task": task, "model": {"arch": "seq2seq_attention", "d_model": 128, "n_layers": 2},
            "train": {"max_epochs": 1, "max_steps": steps, "batch_size": 64, "eval_batch_size": 64}}
    cfg, _ = build_run(tree, 0, "benchmark")
    with tempfile.TemporaryDirectory() as run_dir:
        result = fit(cfg, run_dir)
    from ablate.tasks import build_task

    data = build_task(cfg.task)  # cached subwords: cheap
    n_tokens = int(data.train.src_len.sum() + data.train.tgt_len.sum())
    return {"tokens_per_s": result["tokens_per_s"], "train_tokens": n_tokens, "params": result["params"],
            "src_vocab": len(data.src_vocab), "tgt_vocab": len(data.vocab), "eval_time_s": result["eval_time_s"],
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> list[Row]:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":  # a child: one setting
        setting, corpus, steps, threads, out = sys.argv[2:7]
        Path(out).write_text(json.dumps(run_one(setting, Path(corpus), int(steps), int(threads))))
        return []
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--pairs", type=int, default=30000)
    extra.add_argument("--steps", type=int, default=60)
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = cli(__doc__.splitlines()[0])
    pairs, steps = (2000, 5) if args.quick else (known.pairs, known.steps)
    rows, got = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        words = write_corpus(corpus, pairs)
        env = {"ABLATE_CACHE_DIR": str(corpus / "cache"), "ABLATE_PROGRESS": "off"}
        import os

        for setting in SETTINGS:
            out = corpus / f"{setting}.json"
            cmd = [sys.executable, __file__, "--one", setting, str(corpus), str(steps), str(args.threads), str(out)]
            subprocess.run(cmd, check=True, env={**os.environ, **env})
            got[setting] = r = json.loads(out.read_text())
            r["words_per_s"] = r["tokens_per_s"] * words["train"] / r["train_tokens"]  # tokens -> original words
            r["epoch_s"] = words["train"] / r["words_per_s"]
            print(f"{setting}: {r}", file=sys.stderr, flush=True)
    print_table(f"{pairs} training pairs ({words['train']} words), seq2seq_attention d_model 128, "
                f"{steps} measured steps of 64 pairs",
                ["setting", "src vocab", "tgt vocab", "params", "words/s", "epoch time (s)", "eval (s)", "peak MB"],
                [[k, r["src_vocab"], r["tgt_vocab"], r["params"], r["words_per_s"], r["epoch_s"], r["eval_time_s"],
                  r["peak_mb"]] for k, r in got.items()])
    base = got["shared"]
    for k in ("separate", "bpe8k"):
        rows.append(Row("corpus", f"{k} vs shared: epoch time", "s", got[k]["epoch_s"], base["epoch_s"],
                        got[k]["epoch_s"] / base["epoch_s"], 0.5 if k == "bpe8k" else None, True))
    for k, r in got.items():
        rows.append(Row("corpus", f"{k}: peak memory vs 1.5 GB", "MB", r["peak_mb"], 1536.0, r["peak_mb"] / 1536.0,
                        1.0, True))
    finish(args, "Corpus: training time and peak memory (lower is better)", rows)
    print(f"bpe8k / shared epoch time: {got['bpe8k']['epoch_s'] / base['epoch_s']:.3f}x")
    return rows


if __name__ == "__main__":
    main()
