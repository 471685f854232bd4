"""FLOPs: each component's stated count equals a hand count at a small size (2·m·n·k per matmul), torch's
counter agrees on the parts it can see, and a plugin without a count is flagged as a lower bound."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from ablate.models.attention import AdditiveAttention, DotAttention, MultiHeadAttention
from ablate.models.encoders import ConvBlock
from ablate.models.flops import count_forward, example_forward
from ablate.models.linear_attention import LinearAttention
from ablate.models.seq_models import TaskInfo
from ablate.models.ssm_layers import SelectiveSSMBlock

B, LQ, LK, D = 2, 3, 5, 8


def seen_by_counter(fn) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        fn()
    return counter.get_total_flops()


def test_multihead_attention_counts_scores_and_weighted_sum():
    torch.manual_seed(0)
    attn, q, m = MultiHeadAttention(D, n_heads=2), torch.randn(B, LQ, D), torch.randn(B, LK, D)
    proj = 2 * B * LQ * D * D + 2 * B * LK * D * 2 * D + 2 * B * LQ * D * D  # q; k and v; out
    pairs = B * 2 * (2 * LQ * LK * 4) * 2  # per head (d_k = d_v = 4): q k^T and weights @ v
    assert count_forward(attn, lambda: attn(q, m)).total == proj + pairs == 5056
    # the explicit-matmul path (need_weights) is all plain matmuls: the counter sees exactly the same
    assert seen_by_counter(lambda: attn(q, m, need_weights=True)) == proj + pairs
    # the fused kernel the training path takes is invisible to the counter on CPU: why the stated count exists
    assert seen_by_counter(lambda: attn(q, m)) < proj + pairs


def test_additive_and_dot_attention():
    torch.manual_seed(0)
    q, m = torch.randn(B, LQ, D), torch.randn(B, LK, D)
    add = AdditiveAttention(D)
    hand = 2 * B * LQ * D * D + 2 * B * LK * D * D + B * LQ * LK * (D + 2 * D + 2 * D)  # W q, U k; +, v., sum
    assert count_forward(add, lambda: add(q, m)).total == hand == 3248
    # the counter sees the matmuls but not the pairwise sum W q + U k
    assert seen_by_counter(lambda: add(q, m)) == hand - B * LQ * LK * D
    dot = DotAttention(D)
    assert count_forward(dot, lambda: dot(q, m)).total == 2 * (2 * B * LQ * LK * D) == seen_by_counter(
        lambda: dot(q, m))


def test_linear_attention_counts_its_running_sums():
    torch.manual_seed(0)
    attn, x = LinearAttention(D, n_heads=2), torch.randn(B, LQ, D)
    proj = 2 * B * LQ * D * D + 2 * B * LQ * D * 2 * D + 2 * B * LQ * D * D
    dk = dv = 4
    causal = B * 2 * LQ * (2 * dk * dv + 2 * dk * dv + 3 * dk + dv)  # phi(k)v^T + cumsum, phi(q).S, z, division
    assert count_forward(attn, lambda: attn(x, causal=True)).total == proj + causal == 4032
    m = torch.randn(B, LK, D)
    proj = 2 * B * LQ * D * D + 2 * B * LK * D * 2 * D + 2 * B * LQ * D * D
    full = B * 2 * (2 * dk * LK * dv + 2 * LQ * dk * dv + LK * dk + 2 * LQ * dk + LQ * dv)
    assert count_forward(attn, lambda: attn(x, m)).total == proj + full
    # the counter sees the matmuls only: the key sum and the division are what it misses
    assert seen_by_counter(lambda: attn(x, m)) == proj + full - B * 2 * (LK * dk + LQ * dv)


def test_convolution_block_matches_hand_count_and_counter():
    block, x = ConvBlock(D, kernel_size=3, dilation=2, dropout=0.0, causal=True), torch.randn(B, LK, D)
    hand = 2 * (B * LK) * (D * 3) * (2 * D)  # every position: D x 3 taps to 2·D (GLU) outputs
    assert count_forward(block, lambda: block(x, None)).total == hand == 7680
    assert seen_by_counter(lambda: block(x, None)) == hand


def test_ssm_block_counts_the_scan_as_it_runs():
    torch.manual_seed(0)
    block, x = SelectiveSSMBlock(D, d_state=4, expand=2, d_conv=4, dt_rank=2, dropout=0.0), torch.randn(B, LK, D)
    E, N, rows = 16, 4, B * LK
    proj = 2 * rows * D * 2 * E + 2 * rows * E * (2 + 2 * N) + 2 * rows * 2 * E + 2 * rows * E * D
    conv = 2 * rows * E * 4  # depthwise, 4 taps
    # L = 5 is padded to 6 (chunks of 3): a and b (1 each), C·h (2) per step, within chunks 2 x 2 steps of 3
    # FLOPs, then the second chunk's carry, 3 steps of 2
    scan = B * E * N * (6 * 4 + 2 * 2 * 3 + 1 * 3 * 2)
    assert count_forward(block, lambda: block(x)).total == proj + conv + scan == 18176
    # the counter sees the projections, the convolution and C·h, not the elementwise scan
    assert seen_by_counter(lambda: block(x)) == proj + conv + B * 6 * E * N * 2


def test_lstm_counted_per_real_step():
    lstm = torch.nn.LSTM(D, 6, num_layers=2, batch_first=True)
    x = torch.randn(B, LK, D)
    per_step = (2 * D * 24 + 2 * 6 * 24 + 24 + 4 * 6) + (2 * 6 * 24 + 2 * 6 * 24 + 24 + 4 * 6)
    assert count_forward(lstm, lambda: lstm(x)).total == B * LK * per_step == 13440
    assert seen_by_counter(lambda: lstm(x)) == 0  # torch's counter misses nn.LSTM on CPU
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, torch.tensor([5, 2]), batch_first=True)
    assert count_forward(lstm, lambda: lstm(packed)).total == 7 * per_step  # packing skips the padding


class PluginAttention(torch.nn.Module):
    """A plugin component without a count: running sums, which the counter does not see."""

    def forward(self, x):
        return x.cumsum(1) * x


def test_plugin_without_count_is_a_lower_bound():
    model = torch.nn.Sequential(torch.nn.Linear(D, D), PluginAttention())
    count = count_forward(model, lambda: model(torch.randn(1, LQ, D)))
    assert count.lower_bound and count.uncounted == ("PluginAttention",)
    assert count.total == 2 * LQ * D * D  # the Linear, seen by the counter
    exact = count_forward(model[0], lambda: model[0](torch.randn(1, LQ, D)))
    assert not exact.lower_bound


@pytest.mark.parametrize("arch", ["mlp", "cnn", "lstm", "seq2seq", "seq2seq_attention", "transformer", "ssm"])
def test_every_architecture_is_counted_without_gaps(arch, tiny_model):
    model = tiny_model(arch, TaskInfo(13, 13, max_src_len=8, max_tgt_len=9))
    count = example_forward(model, 6, 7)
    assert not count.lower_bound, count.uncounted
    # stated counts only add what the counter misses: never below its view of the same forward
    src, tgt = torch.full((1, 6), 4), torch.full((1, 7), 4)
    assert count.total >= seen_by_counter(lambda: model(src, torch.tensor([6]), tgt)) > 0
    longer = example_forward(model, 6, 8).total
    # a longer target costs more, except in the MLP, which always reads and writes the padded maximum
    assert longer == count.total if arch == "mlp" else longer > count.total


def test_decoding_flops_per_token_equal_a_hand_count(tiny_model):
    from ablate.models.flops import example_decode, rnn_flops

    V, S, T = 13, 6, 7
    model = tiny_model("seq2seq", TaskInfo(V, V, max_src_len=8, max_tgt_len=9), d_model=D, n_layers=1)
    # the encoder's LSTM over the S source tokens once, then per generated token one decoder LSTM step and the
    # head (2·D·V); embeddings are lookups
    hand = rnn_flops("LSTM", D, D, 1, 1, S) + T * (rnn_flops("LSTM", D, D, 1, 1, 1) + 2 * D * V)
    count = example_decode(model, S, T)
    assert count.total == hand == 15600 and not count.lower_bound
    assert count.total / T == pytest.approx(2228.571, abs=1e-3)
    # the MLP computes every position's logits at once when it prepares the source: its steps cost nothing
    mlp = tiny_model("mlp", TaskInfo(V, V, max_src_len=8, max_tgt_len=9))
    assert example_decode(mlp, S, T).total == example_forward(mlp, S, T).total


@pytest.mark.parametrize("arch", ["mlp", "cnn", "lstm", "seq2seq", "seq2seq_attention", "transformer", "ssm"])
def test_a_batch_costs_its_rows_times_one_row(arch, tiny_model):
    """The training meter counts one row at a batch's padded lengths and multiplies by its rows
    (ablate.train.compute): every component's work must be per example."""
    model = tiny_model(arch, TaskInfo(13, 13, max_src_len=8, max_tgt_len=9))

    def count(rows: int) -> int:
        src, tgt = torch.full((rows, 6), 4), torch.full((rows, 7), 4)
        return count_forward(model, lambda: model(src, torch.full((rows,), 6), tgt)).total

    assert count(5) == 5 * count(1) > 0
