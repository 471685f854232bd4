"""Training tokens/s with length-bucketed batches (train.batching: bucket) vs random batches.

A corpus of source lengths 5-60 skewed like real sentences (log-normal: most short, a long tail), targets
about as long as their sources. One round trains one whole epoch (forward + cross-entropy + backward + AdamW)
of each sampler's batches, same seed, same model size: 2+2-layer Transformer, d_model 64, 32 sentences a
batch. tokens/s counts real (unpadded) source+target tokens; the padding fraction of each is printed.
The ratio is bucket's tokens/s over random's.     goal >= 1.5x
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from common import Row, cli, finish, interleave, spread

from ablate.models import TaskInfo, build_model, model_config
from ablate.tasks import Split
from ablate.train.batching import PlannedBatchSampler
from ablate.train.data import make_batch

V, LO, HI = 100, 5, 60


def corpus(n: int, seed: int = 0) -> Split:
    g = torch.Generator().manual_seed(seed)
    src_len = torch.exp(torch.randn(n, generator=g) * 0.55 + 2.9).round().long().clamp(LO, HI)  # median ~18
    tgt_len = (src_len + torch.randint(-2, 3, (n,), generator=g)).clamp(LO, HI) + 1  # + <eos>
    src = torch.randint(4, V, (n, HI), generator=g)
    tgt = torch.randint(4, V, (n, HI + 1), generator=g)
    src[torch.arange(HI)[None] >= src_len[:, None]] = 0
    tgt[torch.arange(HI + 1)[None] >= tgt_len[:, None]] = 0
    tgt[torch.arange(n), tgt_len - 1] = 2
    return Split(src, src_len, tgt, tgt_len)


def measure(split: Split, bucket: bool, batch_size: int, stats: dict):
    torch.manual_seed(0)
    cfg = model_config({"arch": "transformer", "d_model": 64, "n_layers": 2, "dropout": 0.0})[0]
    model = build_model(cfg, TaskInfo(V, V, HI, HI + 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    sampler = PlannedBatchSampler(split, batch_size, 0, bucket=bucket, seed=0)

    def run() -> float:
        batches = [make_batch(split, torch.as_tensor(b)) for b in sampler]  # one epoch, indexing untimed
        real = sum(int(b["src_len"].sum() + b["tgt_len"].sum()) for b in batches)
        slots = sum(b["src"].numel() + b["tgt"].numel() for b in batches)
        stats["pad"] = 1 - real / slots
        t0 = time.perf_counter()
        for b in batches:
            logits = model(b["src"], b["src_len"], b["tgt_in"])
            loss = F.cross_entropy(logits.flatten(0, 1), b["tgt"].flatten(), ignore_index=0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return real / (time.perf_counter() - t0)

    return run


def main() -> list[Row]:
    args = cli(__doc__.splitlines()[0])
    n, batch_size, repeats = (128, 16, 1) if args.quick else (1024, 32, 3)
    split = corpus(n)
    stats = {"bucket": {}, "random": {}}
    got = interleave({k: measure(split, k == "bucket", batch_size, stats[k]) for k in ("bucket", "random")},
                     repeats, warmup=0 if args.quick else 1)
    print(f"{n} examples, lengths {int(split.src_len.min())}-{int(split.src_len.max())} "
          f"(median {int(split.src_len.median())}), batch {batch_size}: tokens/s "
          + "  ".join(f"{k} {spread(v)}" for k, v in got.items()))
    print("padding fraction of the training batches: "
          + "  ".join(f"{k} {stats[k]['pad']:.3f}" for k in ("bucket", "random")))
    rows = [Row.of("batching", "bucket vs random", "tok/s", got["bucket"], got["random"], 1.5, False)]
    finish(args, "training tokens/s, length-bucketed vs random batches (higher is better)", rows)
    print(f"bucketed batches train {rows[0].ratio:.2f}x the tokens/s of random batches (goal >= 1.5x)")
    return rows


if __name__ == "__main__":
    main()
