"""Where a corpus run's peak memory goes: resident memory (RSS) by phase of one real `fit`.

A thread samples the process's RSS (/proc/self/statm) every 2 ms while `fit` runs one tsv run on the corpus
of benchmarks/corpus.py (default 8,000 training pairs, BPE 8k pieces per side, Transformer d_model 128,
2+2 layers, default batches, one thread). Each sample is charged to the phase under way, named by wrapping
the harness's own functions: imports, task (reading the files, training/loading the subword models,
vocabularies, tensors), model, trainer (Lightning set-up), train / val / test steps, and the rest. The table
gives each phase's highest RSS and how much it added over everything before it; the sizes of what we hold
(data tensors, parameters, AdamW state, the largest logits tensor of a step) are counted beside it.
docs/memory.md reads these figures.

    .venv/bin/python benchmarks/memory.py [--pairs 8000] [--steps 0 (= 1 epoch)] [--eval-batch-size 256]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
phase = ["imports"]
peaks: dict[str, float] = {}
order: list[str] = []


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def sampler(stop: threading.Event) -> None:
    while not stop.is_set():
        p, m = phase[0], rss_mb()
        if p not in peaks:
            order.append(p)
        peaks[p] = max(peaks.get(p, 0.0), m)
        time.sleep(0.002)


def enter(name: str) -> None:
    phase[0] = name
    if name not in peaks:
        order.append(name)
        peaks[name] = rss_mb()


def wrap(obj, attr: str, name: str, after: str | None = None) -> None:
    real = getattr(obj, attr)

    def wrapped(*a, **kw):
        enter(name)
        try:
            return real(*a, **kw)
        finally:
            if after:
                enter(after)

    setattr(obj, attr, wrapped)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=8000)
    p.add_argument("--steps", type=int, default=0, help="> 0: train this many steps (0: one epoch)")
    p.add_argument("--eval-batch-size", type=int, default=256)
    p.add_argument("--arch", default="transformer")
    args = p.parse_args()
    stop = threading.Event()
    threading.Thread(target=sampler, args=(stop,), daemon=True).start()
    import torch

    torch.set_num_threads(1)
    import ablate.train.fit as fitmod
    from ablate.config import build_run
    from ablate.train.module import SeqModule

    sys.path.insert(0, str(Path(__file__).parent))
    from corpus import write_corpus

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        write_corpus(corpus, args.pairs)
        os.environ["ABLATE_CACHE_DIR"] = str(corpus / "cache")
        os.environ["ABLATE_PROGRESS"] = "off"
        enter("(set-up)")
        wrap(fitmod, "build_task", "task", after="model")
        wrap(fitmod.pl, "Trainer", "trainer", after="(fit start)")
        wrap(SeqModule, "training_step", "train step")
        wrap(SeqModule, "validation_step", "val step")
        wrap(SeqModule, "test_step", "test step")
        wrap(fitmod, "record", "record")
        task = {"name": "tsv", **{k: str(corpus / f"{k}.tsv") for k in ("train", "val", "test")}, "tokens": "bpe",
                "vocab_size": 8000}
        tree = {"task": task, "model": {"arch": args.arch, "d_model": 128, "n_layers": 2},
                "train": {"max_epochs": 1, "max_steps": args.steps or -1, "batch_size": 64,
                          "eval_batch_size": args.eval_batch_size, "monitor": "val/bleu"}}
        cfg, _ = build_run(tree, 0, "benchmark")
        seen = {}
        real_build = fitmod.build

        def build(*a, **kw):
            run = real_build(*a, **kw)
            seen["run"] = run
            return run

        fitmod.build = build
        with tempfile.TemporaryDirectory() as run_dir:
            result = fitmod.fit(cfg, run_dir)
        stop.set()
    run = seen["run"]
    data, model = run.data, run.module.model

    def mb(tensors) -> float:
        return sum(t.numel() * t.element_size() for t in tensors) / 2**20

    splits = [s for s in (data.train, data.val, data.test)]
    data_mb = mb([t for s in splits for t in (s.src, s.src_len, s.tgt, s.tgt_len)])
    params_mb = mb(list(model.parameters()))
    longest = int(data.val.tgt_len.max()), int(data.test.tgt_len.max())
    logits_mb = args.eval_batch_size * max(longest) * len(data.vocab) * 4 / 2**20
    print(f"{args.pairs} pairs, BPE 8k (src {len(data.src_vocab)} / tgt {len(data.vocab)} pieces), {cfg.model.arch} "
          f"d128 2+2 ({result['params']:,} params), {result['steps']} steps, eval batch {args.eval_batch_size}")
    print(f"{'phase':14s} {'peak RSS MB':>12s} {'added MB':>9s}")
    high = 0.0
    for name in order:
        print(f"{name:14s} {peaks[name]:12.0f} {max(0.0, peaks[name] - high):9.0f}")
        high = max(high, peaks[name])
    print(f"process peak RSS (getrusage): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"held: data tensors {data_mb:.0f} MB, parameters {params_mb:.0f} MB (+ AdamW state {2 * params_mb:.0f} "
          f"MB + gradients {params_mb:.0f} MB); one eval batch's full logits (eval batch x longest target x target "
          f"vocabulary x 4 B) {logits_mb:.0f} MB")


if __name__ == "__main__":
    main()
