"""Our TransformerEncoderLayer vs torch.nn.TransformerEncoderLayer: training tokens/s.

Same d_model/heads/d_ff/dropout/activation (ReLU), norm_first matching our norm, batch_first,
no padding mask in either (a full batch, so both take SDPA's unmasked path); one training step
is forward + backward + AdamW step, on the same input. Goal: ours/theirs >= 1.0x at every L.
"""

from __future__ import annotations

import time

import torch
from common import Row, cli, finish, interleave, spread
from torch import nn

from ablate.models.encoders import TransformerEncoderLayer

D, H, FF, DROPOUT = 256, 4, 1024, 0.1
TOKENS_PER_BATCH = 4096  # batch = this // L: similar work per step at every L (~0.5 s on 1 slow core)


def make_step(layer: nn.Module, x: torch.Tensor, ours: bool):
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-4)
    layer.train()

    def step() -> None:
        y = layer(x)[0] if ours else layer(x)
        loss = y.float().pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def tokens_per_s(step, n_steps: int, tokens: int):
    def measure() -> float:
        t0 = time.perf_counter()
        for _ in range(n_steps):
            step()
        return n_steps * tokens / (time.perf_counter() - t0)

    return measure


def main() -> list[Row]:
    args = cli(__doc__.splitlines()[0])
    torch.manual_seed(0)
    rows = []
    for norm in ("post", "pre"):
        for L in (32, 128, 512):
            B = max(1, (TOKENS_PER_BATCH // 8 if args.quick else TOKENS_PER_BATCH) // L)
            ours = TransformerEncoderLayer(D, H, D // H, D // H, FF, DROPOUT, norm=norm)
            theirs = nn.TransformerEncoderLayer(D, H, FF, DROPOUT, batch_first=True, norm_first=norm == "pre")
            n_ours, n_theirs = (sum(p.numel() for p in m.parameters()) for m in (ours, theirs))
            assert n_ours == n_theirs, (n_ours, n_theirs)
            x = torch.randn(B, L, D)
            n_steps = 1 if args.quick else 3
            got = interleave({"ours": tokens_per_s(make_step(ours, x, True), n_steps, B * L),
                              "torch": tokens_per_s(make_step(theirs, x, False), n_steps, B * L)},
                             repeats=1 if args.quick else 7, warmup=1)
            print(f"norm={norm} L={L} B={B}: tokens/s ours {spread(got['ours'])}  torch {spread(got['torch'])}")
            rows.append(Row.of("transformer_layer", f"{norm}-norm L={L} B={B}", "tok/s", got["ours"],
                            got["torch"], 1.0, False))
    return finish(args, f"TransformerEncoderLayer d={D} h={H} ff={FF} p={DROPOUT}, training tokens/s "
                        "(higher is better)", rows)


if __name__ == "__main__":
    main()
