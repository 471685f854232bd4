"""seq2seq_attention: training tokens/s with attention_style bahdanau (and luong + input_feeding) vs luong.

luong scores from the RNN's current output, so the fused LSTM kernel runs the whole teacher-forced target
in one call; bahdanau scores from the previous state and feeds the context into the RNN's input, and
input feeding feeds the previous output back in: both need one RNN call per target position. One training
step is forward + cross-entropy + backward + AdamW step on the same batch, 1-layer LSTM, additive attention.
The ratio is bahdanau's (or feeding's) tokens/s over luong's: how much slower it trains.     no goal
"""

from __future__ import annotations

import torch
from common import Row, cli, finish, interleave, seq_training_rate, spread

from ablate.models import TaskInfo, build_model, model_config


def main() -> list[Row]:
    args = cli(__doc__.splitlines()[0])
    torch.manual_seed(0)
    B, S, T, D, V = (8, 8, 8, 32, 20) if args.quick else (64, 24, 24, 128, 100)
    n_steps, repeats = (1, 1) if args.quick else (3, 5)
    info = TaskInfo(V, V, S, T)
    src, tgt = torch.randint(4, V, (B, S)), torch.randint(4, V, (B, T))
    src_len = torch.full((B,), S)
    tgt_in = torch.cat([torch.ones(B, 1, dtype=torch.long), tgt[:, :-1]], 1)
    styles = {"luong": {}, "bahdanau": {"attention_style": "bahdanau"},
              "luong+feeding": {"input_feeding": True}}
    cfgs = {k: model_config({"arch": "seq2seq_attention", "d_model": D, "n_layers": 1, **kw})[0]
            for k, kw in styles.items()}
    models = {k: build_model(c, info) for k, c in cfgs.items()}
    tokens = int((tgt != 0).sum())
    got = interleave({k: seq_training_rate(m, src, src_len, tgt_in, tgt, n_steps, tokens) for k, m in models.items()},
                     repeats, warmup=1)
    print(f"B={B} S={S} T={T} D={D} lstm 1 layer, additive: tokens/s "
          + "  ".join(f"{k} {spread(v)}" for k, v in got.items()))
    rows = [Row.of("attention_style", f"{k} vs luong", "tok/s", got[k], got["luong"], None, False)
            for k in ("bahdanau", "luong+feeding")]
    finish(args, "seq2seq_attention training tokens/s by attention_style (higher is better)", rows)
    print(f"bahdanau trains {1 / rows[0].ratio:.2f}x slower than luong")
    return rows


if __name__ == "__main__":
    main()
