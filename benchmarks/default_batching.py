"""A corpus run at its defaults: token-budget bucketed batches (the default since issue 28) vs random batches.

The corpus: the `translate` task's synthetic language pair (English-like SVO -> an invented SOV language with
agreement) exported as train/val/test.tsv (8,000 / 300 / 300 pairs by default, lines as `ablate data` writes
them), its pairs drawn so that source lengths are long-tailed like captions' (5-30 words, most short: see
write_translate_corpus) and read back by the `tsv` task with sentencepiece BPE asked for
8,000 pieces per side (the language's small vocabulary gets fewer: the run prints how many). Each run trains
the real harness (`fit`) in a fresh process: Transformer d_model 128, 2+2 layers, batch_size 64, 3 epochs,
one thread; validation BLEU every epoch, test BLEU on the best checkpoint (free-running greedy decoding).
The two settings differ only in train.batching (the default `auto` -> `tokens` for a tsv task, vs `random`),
seed by seed, interleaved (default, random, random, default, ...) so a busy spell of a shared machine hits
both alike.

Figures: padding fraction of the training batches (goal <= 10%), training tokens/s (real tokens, padding not
counted) of the default over random (the median of per-seed ratios; goal >= 1.8x), test BLEU of each
(per seed: the default must be within random's seed spread), and peak RSS of the run process (goal <= 1 GB,
issue 28 item 3; docs/memory.md says where it goes). With --target T, each run instead trains until its
validation BLEU reaches T (validated every 50 steps, at most --epochs epochs), so both settings end at the same
BLEU, and the figure that decides is the speed there: random's training seconds to T over the default's
(goal >= 1.8x; training seconds exclude validation, as tokens/s does).

    .venv/bin/python benchmarks/default_batching.py [--pairs 8000] [--epochs 3] [--seeds 2] [--quick]
    .venv/bin/python benchmarks/default_batching.py --target 90 --epochs 6 --seeds 3   # at the same BLEU
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import Row, cli, finish, print_table

SETTINGS = {"default": {}, "random": {"batching": "random"}}


def write_translate_corpus(out: Path, pairs: int, seed: int = 0) -> None:
    """The translate task's pairs as tsv files (as `ablate data` writes them), drawn so that source lengths
    are long-tailed like captions' (most short, a few long: P(length L) ~ exp(-(L - 5) / 6) over 5-30 words)
    rather than the task's uniform 5-30."""
    import math
    import random

    from ablate.tasks import build_task
    from ablate.tasks.translate import TranslateConfig

    n_eval = 300
    data = build_task(TranslateConfig(n_train=5 * (pairs + 2 * n_eval), n_val=10, n_test=10, min_len=5,
                                      max_len=30))
    rng, train, vocab = random.Random(seed), data.train, data.vocab
    lines = []
    for i, n in enumerate(train.src_len.tolist()):  # the lines `ablate data` writes
        if rng.random() < math.exp(-(n - 5) / 6):
            src = vocab.decode(train.src[i, :n].tolist(), strip=False)
            tgt = vocab.decode(train.tgt[i, : int(train.tgt_len[i])].tolist())  # stops at <eos>
            lines.append(" ".join(src) + "\t" + " ".join(tgt))
    if len(lines) < pairs + 2 * n_eval:
        raise SystemExit(f"--pairs {pairs}: only {len(lines)} pairs drawn; ask for fewer")
    sizes = {"train.tsv": lines[:pairs], "val.tsv": lines[pairs:pairs + n_eval],
             "test.tsv": lines[pairs + n_eval:pairs + 2 * n_eval]}
    for name, part in sizes.items():
        (out / name).write_text("".join(line + "\n" for line in part))


def run_one(setting: str, seed: int, corpus: Path, epochs: int, threads: int, target: float = 0.0) -> dict:
    """Train one (setting, seed) in this process; its figures as a dict. target > 0: train until validation BLEU
    reaches it (validated every 50 steps, at most `epochs` epochs) and record the training seconds it took."""
    import resource

    import torch

    torch.set_num_threads(threads)
    from ablate.config import build_run
    from ablate.train.fit import fit

    task = {"name": "tsv", **{k: str(corpus / f"{k}.tsv") for k in ("train", "val", "test")},
            "tokens": "bpe", "vocab_size": 8000}
    until = {"target": {"metric": "val/bleu", "value": target}, "val_every_n_steps": 50} if target else {}
    tree = {"task": task, "model": {"arch": "transformer", "d_model": 128, "n_layers": 2},
            "train": {"max_epochs": epochs, "batch_size": 64, "monitor": "val/bleu", **until, **SETTINGS[setting]}}
    cfg, _ = build_run(tree, seed, "benchmark")
    with tempfile.TemporaryDirectory() as run_dir:
        r = fit(cfg, run_dir)
    from ablate.tasks import build_task

    data = build_task(cfg.task)  # the subword models are cached: cheap
    return {"batching": cfg.train.batching, "pieces": [len(data.src_vocab), len(data.vocab)],
            "tokens_per_s": r["tokens_per_s"], "pad_fraction": r["pad_fraction"],
            "bleu": r["metrics"]["test/bleu"], "steps": r["steps"], "train_time_s": r["train_time_s"],
            "eval_time_s": r["eval_time_s"], "params": r["params"], "seconds_to_target": r.get("seconds_to_target"),
            "steps_to_target": r.get("steps_to_target"), "stop_reason": r.get("stop_reason"),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> list[Row]:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":  # a child: one run
        setting, seed, corpus, epochs, threads, out, target = sys.argv[2:9]
        Path(out).write_text(json.dumps(run_one(setting, int(seed), Path(corpus), int(epochs), int(threads),
                                                float(target))))
        return []
    import argparse

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--pairs", type=int, default=8000)
    extra.add_argument("--epochs", type=int, default=3)
    extra.add_argument("--seeds", type=int, default=2)
    extra.add_argument("--target", type=float, default=0.0,
                       help="> 0: train each run to this validation BLEU (at most --epochs) and compare the "
                            "training seconds to it: the speed of each setting at the same BLEU")
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = cli(__doc__.splitlines()[0])
    pairs, epochs, seeds = (600, 1, 1) if args.quick else (known.pairs, known.epochs, known.seeds)
    got: dict[str, list[dict]] = {k: [] for k in SETTINGS}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        write_translate_corpus(corpus, pairs)
        env = {**os.environ, "ABLATE_CACHE_DIR": str(corpus / "cache"), "ABLATE_PROGRESS": "off"}
        for seed in range(seeds):
            order = list(SETTINGS) if seed % 2 == 0 else list(reversed(SETTINGS))
            for setting in order:
                out = corpus / f"{setting}{seed}.json"
                cmd = [sys.executable, __file__, "--one", setting, str(seed), str(corpus), str(epochs),
                       str(args.threads), str(out), str(known.target)]
                subprocess.run(cmd, check=True, env=env)
                got[setting].append(json.loads(out.read_text()))
                print(f"seed {seed} {setting}: {got[setting][-1]}", file=sys.stderr, flush=True)
    keys = ["pad_fraction", "tokens_per_s", "bleu", "steps", "train_time_s", "eval_time_s", "peak_mb"]
    if known.target:
        keys += ["steps_to_target", "seconds_to_target"]
        missed = [f"{k} seed {i}" for k, v in got.items() for i, r in enumerate(v) if r["seconds_to_target"] is None]
        if missed:
            raise SystemExit(f"validation BLEU {known.target} not reached within {epochs} epochs by: "
                             f"{', '.join(missed)}; ask for more --epochs or a lower --target")
    print_table(f"{pairs} training pairs (translate task as tsv), BPE pieces {got['default'][0]['pieces']}, "
                f"Transformer d128 2+2, batch_size 64, {epochs} epochs, "
                f"{seeds} seeds (median; min..max)",
                ["setting", "batching", *keys],
                [[k, v[0]["batching"], *(f"{statistics.median(r[x] for r in v):.4g} "
                                          f"({min(r[x] for r in v):.4g}..{max(r[x] for r in v):.4g})" for x in keys)]
                 for k, v in got.items()])
    d, r = got["default"], got["random"]
    rows = [Row.of("default_batching", "training tokens/s, default vs random", "tok/s",
                   [x["tokens_per_s"] for x in d], [x["tokens_per_s"] for x in r], 1.8, False),
            Row("default_batching", "padding fraction of the default vs 10%", "share",
                max(x["pad_fraction"] for x in d), 0.10, max(x["pad_fraction"] for x in d) / 0.10, 1.0, True),
            Row.of("default_batching", "test BLEU, default vs random (reported)", "BLEU",
                   [x["bleu"] for x in d], [x["bleu"] for x in r], None, False),
            *([Row("default_batching", f"speed-up to validation BLEU {known.target:g}: random's training seconds "
                       "over the default's", "s", statistics.median(x["seconds_to_target"] for x in d),
                   statistics.median(x["seconds_to_target"] for x in r),
                   statistics.median(b["seconds_to_target"] / a["seconds_to_target"] for a, b in zip(d, r)),
                   1.8, False)] if known.target else []),
            Row("default_batching", "peak RSS of the default run vs 1 GB", "MB", max(x["peak_mb"] for x in d),
                1024.0, max(x["peak_mb"] for x in d) / 1024.0, 1.0, True)]
    finish(args, "Default (token-budget bucketed) vs random batches on a corpus", rows)
    print("BLEU by seed: " + "  ".join(f"{k} {[round(x['bleu'], 2) for x in v]}" for k, v in got.items()))
    return rows


if __name__ == "__main__":
    main()
