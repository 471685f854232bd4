"""Our RNNEncoder("lstm") vs a bare fused nn.LSTM: training tokens/s on the same padded batch.

Both get the same (B, L, D) input and padding mask; one training step is forward + backward
(loss on the outputs and final state) + AdamW step.

  padded batch (lengths L/2..L): ours (pack -> LSTM -> unpack) vs bare nn.LSTM given the same
      treatment (pack_padded_sequence -> nn.LSTM -> pad_packed_sequence).        goal >= 0.95x
      Also, for scale, vs bare nn.LSTM run straight over the padded tensor (no packing; its
      final states are then wrong for short rows, so this is only what packing costs). no goal
  full batch (no padding): ours vs bare nn.LSTM on the tensor (nothing to pack).   goal >= 0.95x
"""

from __future__ import annotations

import time

import torch
from common import Row, cli, finish, interleave, spread
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ablate.models.encoders import RNNEncoder

D, LAYERS = 256, 2


class BareLSTM(nn.Module):
    def __init__(self, packed: bool):
        super().__init__()
        self.rnn, self.packed = nn.LSTM(D, D, LAYERS, batch_first=True), packed

    def forward(self, x, pad):
        if not self.packed:
            return self.rnn(x)
        packed = pack_padded_sequence(x, (~pad).sum(1).cpu(), batch_first=True, enforce_sorted=False)
        out, state = self.rnn(packed)
        return pad_packed_sequence(out, batch_first=True, total_length=x.size(1))[0], state


class Ours(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = RNNEncoder("lstm", D, LAYERS, dropout=0.0)

    def forward(self, x, pad):
        out = self.enc(x, pad)
        return out.memory, out.state


def measure(model: nn.Module, x, pad, n_steps: int):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    tokens = int((~pad).sum())

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(n_steps):
            y, (h, c) = model(x, pad)
            loss = y.pow(2).mean() + h.pow(2).mean() + c.pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return n_steps * tokens / (time.perf_counter() - t0)

    return run


def main() -> list[Row]:
    args = cli(__doc__.splitlines()[0])
    torch.manual_seed(0)
    B, L = (16, 32) if args.quick else (64, 64)
    n_steps, repeats = (2, 1) if args.quick else (2, 7)
    x = torch.randn(B, L, D)
    lengths = torch.randint(L // 2, L + 1, (B,))
    lengths[0] = L
    cases = {"padded": torch.arange(L)[None] >= lengths[:, None], "full": torch.zeros(B, L, dtype=torch.bool)}
    rows = []
    for case, pad in cases.items():
        refs = {"bare packed": BareLSTM(True), "bare unpacked": BareLSTM(False)} if case == "padded" else {
            "bare unpacked": BareLSTM(False)}
        models = {"ours": Ours(), **refs}
        for m in models.values():  # identical weights
            m.load_state_dict(models["ours"].state_dict() if isinstance(m, Ours) else
                              {k.removeprefix("enc."): v for k, v in models["ours"].state_dict().items()})
        got = interleave({k: measure(m, x, pad, n_steps) for k, m in models.items()}, repeats, warmup=1)
        print(f"{case} B={B} L={L} D={D} layers={LAYERS}: tokens/s "
              + "  ".join(f"{k} {spread(v)}" for k, v in got.items()))
        for ref in refs:
            goal = None if (case, ref) == ("padded", "bare unpacked") else 0.95
            rows.append(Row.of("lstm_encoder", f"{case} vs {ref}", "tok/s", got["ours"], got[ref], goal,
                            False))
    return finish(args, "RNNEncoder('lstm') vs nn.LSTM, training tokens/s (higher is better)", rows)


if __name__ == "__main__":
    main()
