"""The ssm arch vs the Transformer: training tokens/s at L = 128 / 512 / 2048 (same d_model and layers).

Each example is a source of L/2 tokens and a target of L/2, so both models read L tokens: the ssm as one
causal stack over `source <bos> target` (its parallel scan), the Transformer as encoder + decoder (SDPA
attention, quadratic in length). One training step is forward + cross-entropy + backward + AdamW step;
tokens/s counts source and target tokens. Every batch holds 2048 tokens (B = 16, 4, 1), so the cases differ in
length only and the longest stays within a minute on a small shared CPU (the ssm's (B, L, E, N) scan tensors
are then 16 MB a layer; bigger batches cost it disproportionately there, in page faults). The ratio is the
ssm's tokens/s over the Transformer's (> 1: the ssm trains faster); the last line is the L = 2048 ratio.  no goal
"""

from __future__ import annotations

import torch
from common import Row, cli, finish, interleave, seq_training_rate, spread

from ablate.models import TaskInfo, build_model, model_config

D, LAYERS, HEADS, D_STATE, EXPAND = 64, 2, 4, 16, 2
CASES = {128: 16, 512: 4, 2048: 1}  # L -> batch size: 2048 tokens a batch in every case
QUICK = {32: 4, 64: 2}



def main() -> list[Row]:
    args = cli(__doc__.splitlines()[0])
    torch.manual_seed(0)
    cases, repeats = (QUICK, 1) if args.quick else (CASES, 3)
    V = 32
    rows = []
    for L, B in cases.items():
        S = T = L // 2
        info = TaskInfo(V, V, max_src_len=S, max_tgt_len=T)
        models = {
            "ssm": build_model(model_config(dict(arch="ssm", d_model=D, n_layers=LAYERS, d_state=D_STATE,
                                                 expand=EXPAND, dropout=0.0))[0], info),
            "transformer": build_model(model_config(dict(arch="transformer", d_model=D, n_layers=LAYERS,
                                                         n_heads=HEADS, dropout=0.0))[0], info),
        }
        src = torch.randint(4, V, (B, S))
        src_len = torch.full((B,), S)
        tgt = torch.randint(4, V, (B, T))
        tgt_in = torch.cat([torch.full((B, 1), 1), tgt[:, :-1]], 1)
        n = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
        tokens = int(src_len.sum()) + int((tgt != 0).sum())  # a prefix LM reads both sides
        got = interleave({k: seq_training_rate(m.train(), src, src_len, tgt_in, tgt, 1, tokens)
                          for k, m in models.items()}, repeats, warmup=1)
        print(f"L={L} B={B} d_model={D} layers={LAYERS} (ssm d_state={D_STATE} expand={EXPAND}, {n['ssm']} params; "
              f"transformer {HEADS} heads, {n['transformer']} params): tokens/s "
              + "  ".join(f"{k} {spread(v)}" for k, v in got.items()), flush=True)
        rows.append(Row.of("ssm", f"L={L} ssm vs transformer", "tok/s", got["ssm"], got["transformer"], None, False))
    finish(args, "ssm vs Transformer, training tokens/s (higher is better)", rows)
    last = rows[-1]
    print(f"\nfinal: ssm / transformer training tokens/s at {last.case.split()[0]}: {last.ratio:.3f}x "
          f"({last.ours:.4g} vs {last.ref:.4g} tok/s)")
    return rows


if __name__ == "__main__":
    main()
