"""Dropout's share of a CPU training step, per architecture: torch's nn.Dropout (before) vs ours (after).

One training step (forward, cross-entropy, backward, AdamW) of each preset at d_model 128, 2 layers, on one
batch of 64 pairs of 24-token sources and 25-token targets (a third of the rows 5 tokens shorter, so masks
are in play), one thread. Three settings of the same model, stepped in alternation (interleave):
  off    dropout 0
  torch  dropout 0.1 through torch's F.dropout (what nn.Dropout did before issue 28)
  ours   dropout 0.1 through ablate.models.dropout (four elements' mask from one 64-bit draw); attention
         weights: the kernel's own dropout_p in both (ablate.models.attention says why)
Times are process CPU seconds (with one thread, the work done; far less moved by other tenants than wall
time). Dropout's share of a step = (t(p=0.1) - t(off)) / t(p=0.1).   goal (Transformer, ours) <= 15%

    .venv/bin/python benchmarks/dropout.py [--archs transformer ...] [--quick]
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from common import Row, cli, finish, interleave, median, print_table

import ablate.models.dropout as ours
from ablate.models import TaskInfo, build_model, model_config

V, B, S, T = 1000, 64, 24, 25
ARCHS = ["transformer", "seq2seq_attention", "gru", "cnn", "mlp", "ssm"]
OURS = ours.dropout


def torch_dropout(x, p, training):
    return F.dropout(x, p, training)


def batch():
    g = torch.Generator().manual_seed(0)
    src, tgt = torch.randint(4, V, (B, S), generator=g), torch.randint(4, V, (B, T), generator=g)
    src_len = torch.full((B,), S)
    src_len[::3] = S - 5
    src[::3, S - 5:] = 0
    return src, src_len, tgt


def measure(arch: str, p: float, impl, steps: int):
    torch.manual_seed(0)
    cfg = model_config({"arch": arch, "d_model": 128, "n_layers": 2, "dropout": p})[0]
    model = build_model(cfg, TaskInfo(V, V, 64, 64)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    src, src_len, tgt = batch()

    def run() -> float:
        ours.dropout = impl
        try:
            t0 = time.process_time()
            for _ in range(steps):
                logits = model(src, src_len, tgt)
                loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return (time.process_time() - t0) / steps
        finally:
            ours.dropout = OURS

    return run


def main() -> list[Row]:
    import argparse
    import sys

    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--archs", nargs="+", choices=ARCHS, default=ARCHS)
    known, rest = extra.parse_known_args()
    sys.argv = [sys.argv[0], *rest]
    args = cli(__doc__.splitlines()[0])
    steps, repeats = (1, 1) if args.quick else (5, 5)
    archs = ARCHS[:1] if args.quick else known.archs
    rows, table = [], []
    for arch in archs:
        got = interleave({"off": measure(arch, 0.0, OURS, steps), "torch": measure(arch, 0.1, torch_dropout, steps),
                          "ours": measure(arch, 0.1, OURS, steps)}, repeats, warmup=1)
        share = {k: [1 - o / d for o, d in zip(got["off"], got[k], strict=True)] for k in ("torch", "ours")}
        table.append([arch, median(got["off"]) * 1e3, median(got["torch"]) * 1e3, median(got["ours"]) * 1e3,
                      f"{median(share['torch']):.1%}", f"{median(share['ours']):.1%}",
                      f"{min(share['ours']):.1%}..{max(share['ours']):.1%}"])
        rows.append(Row.of("dropout", f"{arch}: step with dropout 0.1, ours vs torch's", "s", got["ours"],
                           got["torch"], None, True))
        rows.append(Row("dropout", f"{arch}: dropout's share of the step (ours)", "share", median(share["ours"]),
                        median(share["torch"]), median(share["ours"]) / max(median(share["torch"]), 1e-9),
                        None, True))
        if arch == "transformer":
            rows.append(Row("dropout", "transformer: dropout's share vs 15%", "share", median(share["ours"]), 0.15,
                            median(share["ours"]) / 0.15, 1.0, True))
    print_table(f"CPU ms per training step (d_model 128, 2 layers, batch {B}x{S}->{T}, one thread; median of "
                f"{repeats}); dropout's share = 1 - t(off) / t(p=0.1)",
                ["arch", "off", "torch 0.1", "ours 0.1", "share torch", "share ours", "ours min..max"], table)
    return finish(args, "Dropout 0.1 per architecture (lower is better)", rows)


if __name__ == "__main__":
    main()
