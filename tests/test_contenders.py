"""The contenders from after 2017 (issue 12 item 4): ALiBi and the selective state-space `ssm` arch.

The shared property tests (causality, padding, gradients, the step contract, fitting `reverse`) run them with
the other components in test_models.py and test_learning.py; this module checks what is particular to each.
"""

from __future__ import annotations

import pytest
import torch

from ablate.models import TaskInfo
from ablate.models.alibi import alibi_bias, alibi_slopes
from ablate.models.attention import MultiHeadAttention
from ablate.tasks.vocab import Vocab

PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos
INFO = TaskInfo(13, 13, max_src_len=8, max_tgt_len=9)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def random_src(V: int, lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(5, V, (len(lengths), max(lengths)), generator=g)
    src_len = torch.tensor(lengths)
    return src.masked_fill(torch.arange(src.size(1))[None] >= src_len[:, None], PAD), src_len


# ---------------------------------------------------------------- ALiBi
def test_alibi_slopes_are_the_papers():
    assert alibi_slopes(8) == [2.0**-k for k in range(1, 9)]  # 1/2 ... 1/256
    assert alibi_slopes(4) == [2.0**-k for k in (2, 4, 6, 8)]
    assert alibi_slopes(1) == [2.0**-8]
    # not a power of two: the 4-head slopes, then every other one of the 8-head slopes (the paper's code)
    assert alibi_slopes(6) == [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8]
    assert alibi_slopes(12) == pytest.approx(alibi_slopes(8) + [2.0**-k for k in (0.5, 1.5, 2.5, 3.5)])


def test_alibi_bias_by_hand():
    from ablate.models import POSITIONAL

    alibi, symmetric = POSITIONAL.get("alibi")(16), POSITIONAL.get("alibi_symmetric")(16)
    m = [1 / 16, 1 / 256]  # two heads
    bias = alibi.score_bias(3, 3, 2, torch.device("cpu"))
    # causal part (key j <= query i): -m_h (i - j), the paper's; right of the diagonal the mirror head's slope
    want = [[[-m[h] * (i - j) if j <= i else -m[1 - h] * (j - i) for j in range(3)] for i in range(3)]
            for h in range(2)]
    assert bias.tolist() == want
    sym = symmetric.score_bias(3, 3, 2, torch.device("cpu"))
    assert sym.tolist() == [[[-m[h] * abs(i - j) for j in range(3)] for i in range(3)] for h in range(2)]
    # a query block shorter than the keys is the last positions (a KV cache's new token is position Lk - 1) ...
    last = alibi.score_bias(1, 5, 2, torch.device("cpu"))
    assert last.shape == (2, 1, 5) and last[:, 0].tolist() == [[-m[h] * (4 - j) for j in range(5)] for h in range(2)]
    # ... and absolute positions may be given instead of counts: the same numbers
    torch.testing.assert_close(alibi.score_bias(torch.tensor([4]), torch.arange(5), 2, torch.device("cpu")), last)
    torch.testing.assert_close(alibi_bias(torch.tensor([2, 3]), torch.arange(4), torch.tensor([0.5])),
                               torch.tensor([[[-1.0, -0.5, 0.0, -0.5], [-1.5, -1.0, -0.5, 0.0]]]))


def test_alibi_is_only_a_bias_and_reaches_every_self_attention(tiny_model):
    model = tiny_model("transformer", INFO, pos_encoding="alibi", n_layers=2)
    x = torch.randn(2, 5, 32)
    assert torch.equal(model.encoder.pos(x), x), "alibi adds nothing to the embeddings"
    assert not list(model.encoder.pos.parameters()), "alibi learns nothing"
    assert all(layer.self_attn.positional is model.decoder.pos for layer in model.decoder.layers)
    assert all(layer.cross_attn.positional is None for layer in model.decoder.layers)


@pytest.mark.parametrize("pos", ["alibi", "alibi_symmetric"])
def test_cached_attention_with_alibi_equals_rerunning(pos):
    """The KV-cache call (the newest query against all keys so far) gets the same output as re-running."""
    from ablate.models import POSITIONAL

    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 4, positional=POSITIONAL.get(pos)(16)).eval()
    x = torch.randn(2, 6, 16)
    full, _ = mha(x, causal=True)
    for t in range(1, 7):
        last, _ = mha(x[:, t - 1 : t], x[:, :t], causal=True)  # one query, keys and values 0..t-1
        torch.testing.assert_close(last[:, 0], full[:, t - 1], atol=1e-5, rtol=1e-5)
    # and the bias is there: the same weights without it attend differently
    plain = MultiHeadAttention(16, 4).eval()
    plain.load_state_dict(mha.state_dict())
    assert (plain(x, causal=True)[0] - full).abs().max() > 1e-3


def test_symmetric_alibi_cannot_tell_a_source_from_its_reverse_and_the_mirrored_one_can(tiny_model):
    """-m|i-j| is symmetric, so the encoder maps a reversed source to its reversed memory, and cross-attention
    (order-free over the memory) then gives the decoder the very same thing: `reverse` is unlearnable with it."""
    src, src_len = random_src(INFO.vocab_size, [8, 8, 8])
    tgt_in = torch.tensor([[BOS, 5, 6, 7]] * 3)
    flipped = src.flip(1)
    for pos, blind in (("alibi_symmetric", True), ("alibi", False)):
        model = tiny_model("transformer", INFO, pos_encoding=pos, n_layers=2, n_heads=4)
        with torch.no_grad():
            mem, mem_r = model.prepare(src, src_len).memory, model.prepare(flipped, src_len).memory
            out, out_r = model(src, src_len, tgt_in), model(flipped, src_len, tgt_in)
        if blind:
            torch.testing.assert_close(mem_r, mem.flip(1), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(out_r, out, atol=1e-5, rtol=1e-5)
        else:
            assert (mem_r - mem.flip(1)).abs().max() > 1e-3 and (out_r - out).abs().max() > 1e-3


def test_alibi_runs_on_inputs_longer_than_training(tiny_model, assert_greedy):
    info = TaskInfo(13, 13, max_src_len=5, max_tgt_len=4)
    model = tiny_model("transformer", info, pos_encoding="alibi")
    src, src_len = random_src(13, [40, 23])
    logits = model(src, src_len, torch.full((2, 30), 5))
    assert logits.shape == (2, 30, 13) and torch.isfinite(logits).all()
    assert_greedy(model, src, src_len, model.generate(src, src_len, 12))


# ---------------------------------------------------------------- the selective SSM
def test_parallel_scan_equals_the_recurrence():
    from ablate.models.ssm_layers import parallel_scan

    torch.manual_seed(0)
    for L in (1, 2, 7, 64, 100):
        a, b = torch.rand(3, L, 5, 4), torch.randn(3, L, 5, 4)
        h, want = torch.zeros(3, 5, 4), []
        for t in range(L):
            h = a[:, t] * h + b[:, t]
            want.append(h)
        torch.testing.assert_close(parallel_scan(a, b), torch.stack(want, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("d_conv", [1, 4])
def test_ssm_block_parallel_path_equals_step_by_step(d_conv):
    """h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t, y_t = C_t h_t + D x_t: parallel scan == one step at a time."""
    from ablate.models.ssm_layers import SelectiveSSMBlock

    torch.manual_seed(0)
    block = SelectiveSSMBlock(16, d_state=8, expand=2, d_conv=d_conv, dt_rank=2, dropout=0.0).eval()
    with torch.no_grad():
        block.dt_proj.bias.add_(2.0)  # larger steps than the init's: the decays matter
        x = torch.randn(3, 20, 16)
        full, (buf, h) = block(x)
        state = (torch.zeros(3, block.E, d_conv - 1), torch.zeros(3, block.E, block.N))
        for t in range(20):
            y, state = block.step(x[:, t], state)
            torch.testing.assert_close(y, full[:, t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(state[0], buf, atol=1e-6, rtol=0)
        torch.testing.assert_close(state[1], h, atol=1e-5, rtol=1e-5)
        # the state the parallel path hands over at a row's own length is the recurrence's there
        _, (buf5, h5) = block(x, lengths=torch.tensor([5, 20, 1]))
        state = (torch.zeros(3, block.E, d_conv - 1), torch.zeros(3, block.E, block.N))
        for t in range(5):
            _, state = block.step(x[:, t], state)
        torch.testing.assert_close(h5[0], state[1][0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(buf5[0], state[0][0], atol=1e-6, rtol=0)


def test_ssm_selection_depends_on_the_input():
    """Δ, B and C are computed from each token (Mamba's selection), not fixed per layer as in S4D."""
    from ablate.models.ssm_layers import SelectiveSSMBlock

    torch.manual_seed(0)
    block = SelectiveSSMBlock(16, 8, 2, 4, 2, 0.0)
    u1, u2 = torch.randn(4, 32), torch.randn(4, 32)
    for p, q in zip(block._selection(u1), block._selection(u2), strict=True):
        assert (p - q).abs().max() > 1e-4


def test_ssm_decoding_state_keeps_its_size(tiny_model):
    model = tiny_model("ssm", INFO, n_layers=2)
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3])
    ctx, state, shapes = model.prepare(src, src_len), None, []
    with torch.no_grad():
        for t in range(12):
            _, state = model.step(ctx, torch.full((3, 1), BOS if t == 0 else 6), state)
            shapes.append([tuple(s.shape) for layer in state for s in layer])
    assert all(s == shapes[0] for s in shapes)
    assert shapes[0] == [(3, 64, 3), (3, 64, 8)] * 2  # conv buffer (B, E, d_conv-1), h (B, E, N) per layer


def test_ssm_options_resolve_and_size_the_model(tiny_model):
    from ablate.models import model_config

    cfg, notes = model_config(dict(arch="ssm", d_model=40, n_heads=4))
    assert (cfg.d_state, cfg.expand, cfg.d_conv, cfg.dt_rank) == (16, 2, 4, 3)
    assert notes == ["model.n_heads does not apply to arch 'ssm': ignored for these runs"]
    small = tiny_model("ssm", INFO, d_state=4, expand=1)
    big = tiny_model("ssm", INFO, d_state=16, expand=3)
    block = big.body.layers[0]
    assert (block.E, block.N) == (96, 16) and block.A_log.shape == (96, 16)
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(big) > n(small)


def test_parallel_scan_gradients_are_the_recurrences():
    from ablate.models.ssm_layers import parallel_scan

    torch.manual_seed(0)
    a = torch.rand(2, 9, 3, dtype=torch.float64).requires_grad_()
    b = torch.randn(2, 9, 3, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(parallel_scan, (a, b))


@pytest.mark.parametrize("L", [1, 2, 5, 16, 17])
def test_chunked_scan_reversed_is_the_backward_recurrence(L):
    from ablate.models.ssm_layers import _chunked_scan

    torch.manual_seed(0)
    a, b = torch.rand(2, L, 3), torch.randn(2, L, 3)
    h, want = torch.zeros(2, 3), [None] * L
    for t in reversed(range(L)):
        h = a[:, t] * h + b[:, t]
        want[t] = h
    torch.testing.assert_close(_chunked_scan(a, b, reverse=True), torch.stack(want, 1), atol=1e-5, rtol=1e-5)
