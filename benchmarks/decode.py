"""Cached (incremental) vs re-run greedy decoding, and beam 4 vs greedy: the fast-decoding issue's figures.

Greedy `generate` through the step contract: with the cache each step feeds one new token against the kept
state (Transformer: per-layer keys/values, cross-attention keys/values once; CNN: the last (k-1)*dilation
inputs per layer); re-run (cache=False) runs the whole prefix every step. Every row decodes exactly T tokens
(<eos> is masked out of the untrained head), batch 128, d_model 128, one thread.
    transformer 2+2 layers   cached vs re-run tokens/s at T = 16/48/96     goal >= 4x at T=96
                             cached decode vs one teacher-forced forward   goal <= 3x at T=48
    cnn (prefix LM)          cached vs re-run tokens/s at T = 16/48/96     goal >= 2x at T=96
    beam 4 vs greedy         wall time, Transformer, T=48                  no goal
The last line prints the Transformer's cached/re-run ratio at the longest T.
"""

from __future__ import annotations

import time

import torch
from common import Row, cli, finish, interleave, spread

from ablate.models import TaskInfo, build_model, model_config
from ablate.tasks.vocab import Vocab


def build(arch: str, D: int, V: int, S: int, T: int, **kw):
    torch.manual_seed(0)
    model = build_model(model_config({"arch": arch, "d_model": D, "dropout": 0.0, **kw})[0],
                        TaskInfo(V, V, S, T)).eval()
    with torch.no_grad():
        model.head.bias[Vocab.eos] = -1e9  # never stops early: every row decodes exactly T tokens
    return model


def timed(fn) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        fn()
    return time.perf_counter() - t0


def main() -> list[Row]:
    args = cli(__doc__.splitlines()[0])
    B, D, V, S = (8, 32, 20, 8) if args.quick else (128, 128, 100, 24)
    lengths = (4, 8) if args.quick else (16, 48, 96)
    repeats = 1 if args.quick else 3
    src = torch.randint(4, V, (B, S))
    src_len = torch.full((B,), S)
    rows: list[Row] = []
    archs = {"transformer": {"n_layers": 2, "n_heads": 4, "d_ff": 4 * D},
             "cnn": {"n_layers": 4, "kernel_size": 3}}
    for arch, kw in archs.items():
        for T in lengths:
            model = build(arch, D, V, S, T, **kw)
            tgt_in = torch.randint(4, V, (B, T))
            measures = {
                "cached": lambda m=model, T=T: B * T / timed(lambda: m.generate(src, src_len, T)),
                "re-run": lambda m=model, T=T: B * T / timed(lambda: m.generate(src, src_len, T, cache=False)),
            }
            if arch == "transformer" and T == lengths[len(lengths) // 2]:
                measures["forward"] = lambda m=model, x=tgt_in: B * x.size(1) / timed(lambda: m(src, src_len, x))
            got = interleave(measures, repeats, warmup=1)
            print(f"{arch} T={T}: tokens/s " + "  ".join(f"{k} {spread(v)}" for k, v in got.items()))
            goal = {("transformer", lengths[-1]): 4.0, ("cnn", lengths[-1]): 2.0}.get((arch, T))
            rows.append(Row.of("decode", f"{arch} cached vs re-run T={T}", "tok/s", got["cached"], got["re-run"],
                               goal, False))
            if "forward" in got:  # time of a cached decode over time of one teacher-forced forward
                rows.append(Row.of("decode", f"{arch} cached decode vs forward T={T}", "s/batch",
                                   [B * T / x for x in got["cached"]], [B * T / x for x in got["forward"]],
                                   3.0, True))
    T = lengths[len(lengths) // 2]
    model = build("transformer", D, V, S, T, **archs["transformer"])
    got = interleave({"beam 4": lambda: timed(lambda: model.generate(src, src_len, T, beam_size=4)),
                      "greedy": lambda: timed(lambda: model.generate(src, src_len, T))}, repeats, warmup=1)
    rows.append(Row.of("decode", f"transformer beam 4 vs greedy T={T}", "s", got["beam 4"], got["greedy"], None,
                       True))
    finish(args, "greedy decoding with the cache vs re-running the prefix (higher is better), beam 4 cost", rows)
    final = next(r for r in rows if r.case == f"transformer cached vs re-run T={lengths[-1]}")
    print(f"cached decoding is {final.ratio:.2f}x faster than re-running the prefix (Transformer, T={lengths[-1]})")
    return rows


if __name__ == "__main__":
    main()
