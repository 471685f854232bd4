"""Forward FLOPs of what really runs: each component states its own count, torch's counter checks the rest.

Convention (Kaplan et al. 2020, §2.1): a matmul of (m, k) by (k, n) is 2·m·n·k FLOPs; adds and multiplies of
elementwise work are counted where they are a real share (the SSM scan, linear attention's running sums, the
recurrent cells' updates, additive attention's pairwise sums); biases, activations, normalisations, softmax and
dropout are not (a few operations per element of a D-wide vector, against 2·D per element in the matmuls).
Attention counts the full score and weighted-sum matmuls over the padded Lq x Lk (a causal mask saves nothing
in the kernels that run here). A recurrence over packed sequences counts the real steps only (what runs).

`torch.utils.flop_counter.FlopCounterMode` sees plain matmuls and convolutions but counts 0 for
scaled_dot_product_attention and nn.LSTM on CPU and nothing for elementwise or cumulative-sum work. So a module
with a `flops(args, kwargs, output) -> int` method (or a torch module in TORCH_COUNTS) is counted by that, its
children included, and the counter's view of it is set aside; everything else the counter counts. A module the
counter may undercount and that states no count (a plugin's own component) makes the total a lower bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

# elementwise adds/multiplies per hidden unit per step of a cell, beyond its two matmuls and their sum:
# LSTM c = f*c + i*g (3), h = o*tanh(c) (1); GRU r*(W_hn h) (1), + (1), (1 - z) (1), (1 - z)*n (1), z*h (1), + (1)
CELL_UPDATE = {"RNN": 0, "GRU": 6, "LSTM": 4}
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}


def matmul(m: int, k: int, n: int) -> int:
    """FLOPs of an (m, k) @ (k, n) product: one multiply and one add per term."""
    return 2 * m * k * n


def rnn_flops(mode: str, n_in: int, hidden: int, layers: int, directions: int, steps: int) -> int:
    """nn.RNN/GRU/LSTM over `steps` (batch rows x time steps actually run), per layer and direction: the input
    and hidden matmuls 2·G·H·(in + H), their sum G·H and the cell's update."""
    G, total = GATES[mode], 0
    for layer in range(layers):
        width = n_in if layer == 0 else hidden * directions
        per_step = matmul(1, width, G * hidden) + matmul(1, hidden, G * hidden) + G * hidden
        total += directions * steps * (per_step + CELL_UPDATE[mode] * hidden)
    return total


def _rnn_count(mod: nn.RNNBase, args: tuple, kwargs: dict, output: Any) -> int:
    x = args[0]
    if isinstance(x, PackedSequence):
        steps = x.data.size(0)  # the real tokens only: packing skips the padding
    else:
        steps = x.size(0) * x.size(1) if x.dim() == 3 else x.size(0)
    mode = "RNN" if mod.mode.startswith("RNN") else mod.mode
    return rnn_flops(mode, mod.input_size, mod.hidden_size, mod.num_layers, 2 if mod.bidirectional else 1, steps)


# torch's own modules that the counter misses, with their counts
TORCH_COUNTS: dict[type, Callable[[Any, tuple, dict, Any], int]] = {nn.RNNBase: _rnn_count}
# torch modules the counter cannot see inside and that have no count here
_TORCH_UNSEEN = (nn.MultiheadAttention, nn.Transformer, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def own_count(mod: nn.Module) -> Callable[[tuple, dict, Any], int] | None:
    """The module's stated count of one call (args, kwargs, output) -> FLOPs, or None."""
    fn = getattr(mod, "flops", None)
    if callable(fn):
        return fn
    for cls, count in TORCH_COUNTS.items():
        if isinstance(mod, cls):
            return lambda args, kwargs, out, _c=count, _m=mod: _c(_m, args, kwargs, out)
    return None


def seen_exactly(mod: nn.Module) -> bool:
    """Whether the counter sees all of this module's work (given its children are judged on their own)."""
    if isinstance(mod, _TORCH_UNSEEN):
        return False
    return type(mod).__module__.startswith(("ablate.", "torch.nn."))


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one forward call: `stated` by components' own counts, `seen` by torch's counter elsewhere."""

    stated: int
    seen: int
    lower_bound: bool  # a component the counter may undercount ran without a count of its own
    uncounted: tuple[str, ...]  # those components' class names

    @property
    def total(self) -> int:
        return self.stated + self.seen


def count_forward(model: nn.Module, run: Callable[[], Any]) -> FlopCount:
    """FLOPs of run() (a forward of model, or of a component), counted as the module docstring says."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    state = {"depth": 0, "stated": 0, "seen_inside": 0, "start": 0}
    uncounted: set[str] = set()
    handles = []

    def enter(mod: nn.Module, args: tuple, kwargs: dict) -> None:
        if state["depth"] == 0:
            state["start"] = counter.get_total_flops()
        state["depth"] += 1

    def leave(mod: nn.Module, args: tuple, kwargs: dict, out: Any, count: Callable) -> None:
        state["depth"] -= 1
        if state["depth"] == 0:  # an outermost counted call: its count replaces what the counter saw of it
            state["stated"] += int(count(args, kwargs, out))
            state["seen_inside"] += counter.get_total_flops() - state["start"]

    def note(mod: nn.Module, args: tuple, out: Any) -> None:
        if state["depth"] == 0:
            uncounted.add(type(mod).__name__)

    for mod in model.modules():
        count = own_count(mod)
        if count is not None:
            handles.append(mod.register_forward_pre_hook(enter, with_kwargs=True))
            handles.append(mod.register_forward_hook(
                lambda m, a, k, o, _c=count: leave(m, a, k, o, _c), with_kwargs=True))
        elif not seen_exactly(mod):
            handles.append(mod.register_forward_hook(note))
    try:
        # eager even where train.compile compiled the modules: the hooks and the counter see every call
        with torch.compiler.set_stance("force_eager"), counter, torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    seen = counter.get_total_flops() - state["seen_inside"]
    return FlopCount(state["stated"], seen, bool(uncounted), tuple(sorted(uncounted)))


def example_forward(model: nn.Module, src_len: int, tgt_len: int) -> FlopCount:
    """Forward FLOPs of one example of src_len source and tgt_len target tokens, teacher-forced (a training
    forward; one training step is about 3x this, the backward pass costing twice the forward)."""
    vocab = model.src_embed.num_embeddings
    src = torch.full((1, src_len), min(4, vocab - 1), dtype=torch.long)  # FLOPs do not depend on the ids
    tgt = torch.full((1, tgt_len), min(4, model.head.out_features - 1), dtype=torch.long)
    was = model.training
    model.eval()
    try:
        return count_forward(model, lambda: model(src, torch.tensor([src_len]), tgt))
    finally:
        model.train(was)


def example_decode(model: nn.Module, src_len: int, tgt_len: int) -> FlopCount:
    """FLOPs of one example's free-running greedy decode of tgt_len tokens, as generate() runs it: the source
    prepared once (the encoder), then one step per generated token: the newest token only where the model keeps
    a state (KV cache, recurrent state, conv buffer), the whole prefix re-run where it does not. Divide by
    tgt_len for FLOPs per generated token; the argmax and the concatenation are not counted."""
    from ablate.tasks.vocab import Vocab

    vocab = model.src_embed.num_embeddings
    device = next(model.parameters()).device
    src = torch.full((1, src_len), min(4, vocab - 1), dtype=torch.long, device=device)
    token = torch.full((1, 1), min(4, model.head.out_features - 1), dtype=torch.long, device=device)
    cached = bool(getattr(model, "supports_state", False))

    def run() -> None:
        ctx = model.prepare(src, torch.tensor([src_len], device=device))
        state = model.start(ctx) if cached else None
        ys = torch.full((1, 1), Vocab.bos, dtype=torch.long, device=device)
        for _ in range(tgt_len):  # every step taken: a fixed token never <eos> (what the ids are costs nothing)
            if cached:
                _, state = model.step(ctx, ys[:, -1:], state)
            else:
                model.rerun(ctx, ys)
            ys = torch.cat([ys, token], dim=1)

    was = model.training
    model.eval()
    try:
        return count_forward(model, run)
    finally:
        model.train(was)
