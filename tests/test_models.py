"""Model tests: shapes on every task, causality, padding, positional encodings, attention, decoding, resolve.

Every model here is tiny and untrained unless a test says otherwise; learning tests are in test_learning.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ablate.errors import ConfigErrors
from ablate.models import ARCHS, TaskInfo, build_model, model_config, resolve
from ablate.models.attention import AdditiveAttention, DotAttention, MultiHeadAttention
from ablate.tasks import TASKS
from ablate.tasks.vocab import Vocab

PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos
ALL_ARCHS = ["mlp", "cnn", "rnn", "gru", "lstm", "seq2seq", "seq2seq_attention", "transformer", "ssm"]
PREFIX_LM = ["cnn", "rnn", "gru", "lstm", "ssm"]
RECURRENT = ["rnn", "gru", "lstm", "seq2seq", "seq2seq_attention"]

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def loss_of(model, b) -> torch.Tensor:
    logits = model(b["src"], b["src_len"], b["tgt_in"])
    return F.cross_entropy(logits.flatten(0, 1), b["tgt"].flatten(), ignore_index=PAD)


def ref_finish(rows: list[list[int]]) -> list[list[int]]:
    """Pad every token after each row's first <eos> (a plain-Python reference)."""
    out = []
    for row in rows:
        if EOS in row:
            k = row.index(EOS)
            row = row[: k + 1] + [PAD] * (len(row) - k - 1)
        out.append(row)
    return out


def random_src(V: int, lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random content tokens (ids >= 5, never a special) with the given lengths."""
    g = torch.Generator().manual_seed(seed)
    S = max(lengths)
    src = torch.randint(5, V, (len(lengths), S), generator=g)
    src_len = torch.tensor(lengths)
    src = src.masked_fill(torch.arange(S)[None] >= src_len[:, None], PAD)
    return src, src_len


def other_tokens(x: torch.Tensor, V: int, seed: int = 1) -> torch.Tensor:
    """A tensor like x where every entry is a different id in [0, V)."""
    g = torch.Generator().manual_seed(seed)
    return (x + torch.randint(1, V, x.shape, generator=g)) % V


def task_names() -> list[str]:
    return TASKS.names()


INFO = TaskInfo(13, 13, max_src_len=8, max_tgt_len=9)


# ---------------------------------------------------------------- 1. every preset x every task
def test_presets_are_the_design_s_eight_and_the_ssm():
    assert sorted(ARCHS.names()) == sorted(ALL_ARCHS)


@pytest.mark.parametrize("task", task_names())
@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_every_preset_runs_every_task(arch, task, tiny_task, tiny_model, batch_of, assert_greedy):
    data = tiny_task(task)
    V = len(data.vocab)
    model = tiny_model(arch, data)
    b = batch_of(data.train, 8)
    B, T = b["tgt"].shape

    with torch.no_grad():
        logits = model(b["src"], b["src_len"], b["tgt_in"])
    assert logits.shape == (B, T, V)
    assert torch.isfinite(logits).all()

    max_len = data.max_tgt_len
    out = model.generate(b["src"], b["src_len"], max_len)
    assert out.shape == (B, max_len) and out.dtype == torch.long
    assert ((out >= 0) & (out < V)).all()
    assert out.tolist() == ref_finish(out.tolist()), "tokens after <eos> must be <pad>"

    assert_greedy(model, b["src"], b["src_len"], out)

    # One Adam step on the batch lowers the loss on that same batch.
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    before = loss_of(model, b)
    assert torch.isfinite(before)
    before.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    opt.step()
    with torch.no_grad():
        after = loss_of(model, b)
    assert after < before - 1e-3, f"{arch} on {task}: loss {before.item():.4f} -> {after.item():.4f}"


# ---------------------------------------------------------------- padding: a row's logits ignore its batch
@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_logits_do_not_depend_on_batch_padding(arch, tiny_task, tiny_model, batch_of):
    data = tiny_task("reverse")
    model = tiny_model(arch, data)
    b = batch_of(data.train, 12)
    assert b["src_len"].min() < b["src_len"].max(), "the batch must mix lengths"
    with torch.no_grad():
        full = model(b["src"], b["src_len"], b["tgt_in"])
        for i in range(len(b["src_len"])):
            s, t = int(b["src_len"][i]), int(b["tgt_len"][i])
            alone = model(b["src"][i : i + 1, :s], b["src_len"][i : i + 1], b["tgt_in"][i : i + 1, :t])
            torch.testing.assert_close(full[i, :t], alone[0], atol=1e-5, rtol=1e-4)
        # Padding ids in the source are never read: garbage there changes nothing.
        junk = b["src"].clone()
        pad_pos = torch.arange(junk.size(1))[None] >= b["src_len"][:, None]
        junk[pad_pos] = 7
        torch.testing.assert_close(model(junk, b["src_len"], b["tgt_in"]), full, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- 3. causality of the decoders
def _future_changes(model, src, src_len, tgt_in, V):
    """For each t: max |change| of logits at positions <= t, and at positions > t, when tokens after t change."""
    T = tgt_in.size(1)
    with torch.no_grad():
        base = model(src, src_len, tgt_in)
        past, future = [], []
        for t in range(T - 1):
            alt = tgt_in.clone()
            alt[:, t + 1 :] = other_tokens(tgt_in[:, t + 1 :], V, seed=t)
            out = model(src, src_len, alt)
            past.append((out[:, : t + 1] - base[:, : t + 1]).abs().max().item())
            future.append((out[:, t + 1 :] - base[:, t + 1 :]).abs().max().item())
    return past, future


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_target_position_t_does_not_see_later_targets(arch, tiny_model):
    model = tiny_model(arch, INFO)
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3, 6])
    tgt_in = torch.cat([torch.full((4, 1), BOS), random_src(INFO.vocab_size, [7] * 4, seed=2)[0]], 1)
    past, future = _future_changes(model, src, src_len, tgt_in, INFO.vocab_size)
    assert max(past) < 1e-5, f"{arch}: logits at t changed when only tokens after t changed: {past}"
    if arch != "mlp":  # the MLP does not read tgt_in at all; every other model reads its own past
        assert min(future) > 1e-4, f"{arch}: later logits ignore the tokens fed at later positions: {future}"


def test_transformer_without_causal_mask_sees_the_future(tiny_model):
    model = tiny_model("transformer", INFO, causal_mask=False)
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3, 6])
    tgt_in = torch.cat([torch.full((4, 1), BOS), random_src(INFO.vocab_size, [7] * 4, seed=2)[0]], 1)
    past, _ = _future_changes(model, src, src_len, tgt_in, INFO.vocab_size)
    assert min(past) > 1e-4, f"a non-causal decoder must let later tokens change earlier logits: {past}"


# ---------------------------------------------------------------- 4. positional encodings
def _memory(model, src):
    src_len = torch.full((src.size(0),), src.size(1))
    with torch.no_grad():
        return model.prepare(src, src_len).memory


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_transformer_encoder_without_positions_is_permutation_equivariant(norm, tiny_model):
    model = tiny_model("transformer", INFO, pos_encoding="none", norm=norm, n_layers=2)
    src, _ = random_src(INFO.vocab_size, [8, 8, 8])
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    mem, mem_p = _memory(model, src), _memory(model, src[:, perm])
    torch.testing.assert_close(mem_p, mem[:, perm], atol=1e-5, rtol=1e-5)
    # ... so the whole model cannot tell a source from its permutation.
    tgt_in = torch.tensor([[BOS, 5, 6, 7]] * 3)
    src_len = torch.full((3,), 8)
    with torch.no_grad():
        torch.testing.assert_close(model(src[:, perm], src_len, tgt_in), model(src, src_len, tgt_in),
                                   atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pos", ["sinusoidal", "learned", "rotary", "alibi", "alibi_symmetric"])
def test_transformer_encoder_with_positions_is_not_permutation_equivariant(pos, tiny_model):
    model = tiny_model("transformer", INFO, pos_encoding=pos, n_layers=2)
    src, _ = random_src(INFO.vocab_size, [8, 8, 8])
    perm = torch.tensor([3, 0, 7, 1, 6, 2, 5, 4])
    diff = (_memory(model, src[:, perm]) - _memory(model, src)[:, perm]).abs().max().item()
    assert diff > 1e-3, f"{pos}: the encoder ignores token order (max diff {diff})"


def test_rotary_attention_scores_depend_only_on_relative_position():
    from ablate.models.positional import Rotary

    torch.manual_seed(0)
    rope = Rotary(8)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(i, j):  # q at position i, k at position j
        L = max(i, j) + 1
        Q = torch.zeros(1, 1, L, 8)
        K = torch.zeros(1, 1, L, 8)
        Q[..., i, :], K[..., j, :] = q[..., 0, :], k[..., 0, :]
        return (rope(Q)[..., i, :] * rope(K)[..., j, :]).sum().item()

    assert score(5, 3) == pytest.approx(score(2, 0), abs=1e-5)
    assert score(7, 7) == pytest.approx((q * k).sum().item(), abs=1e-5)
    assert abs(score(5, 3) - score(5, 1)) > 1e-3


def test_sinusoidal_matches_the_paper_formula():
    from ablate.models.positional import Sinusoidal

    pe = Sinusoidal(8, 20).pe
    for pos in (0, 3, 19):
        for i in range(4):
            angle = pos / 10000 ** (2 * i / 8)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-5)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-5)
    # Longer inputs than the table: it grows instead of failing.
    out = Sinusoidal(8, 4)(torch.zeros(1, 10, 8))
    torch.testing.assert_close(out[0], Sinusoidal(8, 10).pe)


# ---------------------------------------------------------------- 9. learned positions have a fixed table
def test_learned_positions_fail_clearly_beyond_their_table(tiny_model):
    info = TaskInfo(13, 13, max_src_len=5, max_tgt_len=4)
    model = tiny_model("transformer", info, pos_encoding="learned")
    src, src_len = random_src(13, [5, 5])
    model(src, src_len, torch.tensor([[BOS, 5, 6]] * 2))  # within the tables: fine
    long_src, long_len = random_src(13, [6, 6])
    with pytest.raises(ValueError, match=r"learned positional encoding.*position 5.*5 positions"):
        model(long_src, long_len, torch.tensor([[BOS, 5, 6]] * 2))
    with pytest.raises(ValueError, match="learned positional encoding"):
        model(src, src_len, torch.full((2, 6), 5))  # decoder table holds max_tgt_len + 1 = 5 positions
    # sinusoidal and rotary extrapolate instead
    for pos in ("sinusoidal", "rotary"):
        m = tiny_model("transformer", info, pos_encoding=pos)
        assert m(long_src, long_len, torch.full((2, 9), 5)).shape == (2, 9, 13)


# ---------------------------------------------------------------- 5. attention
def _pad_mask(lengths: list[int], L: int) -> torch.Tensor:
    return torch.arange(L)[None] >= torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("kind", ["multihead", "additive", "dot"])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_weights_are_distributions_over_real_keys(kind, causal):
    torch.manual_seed(0)
    D, L = 16, 6
    attn = {"multihead": lambda: MultiHeadAttention(D, 4), "additive": lambda: AdditiveAttention(D),
            "dot": lambda: DotAttention(D)}[kind]().eval()
    x = torch.randn(3, L, D)
    key_pad = _pad_mask([6, 4, 2], L)
    y, w = attn(x, x, key_pad, causal=causal, need_weights=True)
    H = 4 if kind == "multihead" else 1
    assert y.shape == (3, L, D) and w.shape == (3, H, L, L)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, H, L), atol=1e-6, rtol=0)
    assert (w >= 0).all()
    assert (w.masked_select(key_pad[:, None, None, :].expand_as(w)) == 0).all(), "padded keys get weight"
    if causal:
        future = torch.ones(L, L, dtype=torch.bool).triu(1)
        assert (w[..., future] == 0).all(), "causal attention gave weight to a later key"
    else:
        assert (w[:, :, 0, 1] > 0).any(), "without a causal mask early queries see later keys"
    # The context is the weighted sum of the (projected) values: check it for additive and dot directly.
    if kind != "multihead":
        torch.testing.assert_close(y, w[:, 0] @ x, atol=1e-5, rtol=1e-5)


def test_multihead_explicit_path_matches_a_reference():
    torch.manual_seed(0)
    D, H, L = 16, 4, 5
    mha = MultiHeadAttention(D, H).eval()
    x = torch.randn(2, L, D)
    key_pad = _pad_mask([5, 3], L)
    y, w = mha(x, key_pad=key_pad, causal=True, need_weights=True)
    q, k, v = (x @ mha.qkv.weight.T + mha.qkv.bias).chunk(3, -1)
    split = lambda t: t.view(2, L, H, D // H).transpose(1, 2)
    q, k, v = split(q), split(k), split(v)
    scores = q @ k.transpose(-1, -2) / math.sqrt(D // H)
    allowed = ~key_pad[:, None, None, :] & torch.ones(L, L, dtype=torch.bool).tril()
    ref_w = scores.masked_fill(~allowed, float("-inf")).softmax(-1)
    ref_y = mha.out((ref_w @ v).transpose(1, 2).reshape(2, L, D))
    torch.testing.assert_close(w, ref_w, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(y, ref_y, atol=1e-6, rtol=1e-5)


def _distance_bias():
    """A positional encoding that only adds a per-head bias to the scores (ALiBi-like), to exercise that hook."""
    from ablate.models.positional import PositionalEncoding

    class DistanceBias(PositionalEncoding):
        def score_bias(self, Lq, Lk, n_heads, device):
            i = torch.arange(Lk - Lq, Lk, device=device)[:, None]
            j = torch.arange(Lk, device=device)[None]
            slopes = torch.tensor([0.5 ** (h + 1) for h in range(n_heads)], device=device)
            return -(i - j).abs()[None].float() * slopes[:, None, None]  # (H, Lq, Lk)

    return DistanceBias(16)


@pytest.mark.parametrize("pos", ["none", "rotary", "bias"])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_sdpa_fast_path_equals_explicit_path(pos, causal, padded):
    from ablate.models import POSITIONAL

    torch.manual_seed(0)
    D, L = 16, 7
    positional = _distance_bias() if pos == "bias" else POSITIONAL.get(pos)(D, 32)
    mha = MultiHeadAttention(D, 2, positional=positional).eval()
    x = torch.randn(3, L, D)
    key_pad = _pad_mask([7, 5, 2], L) if padded else None
    fast, none = mha(x, key_pad=key_pad, causal=causal, need_weights=False)
    slow, w = mha(x, key_pad=key_pad, causal=causal, need_weights=True)
    assert none is None and w is not None
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    if pos == "bias":  # the bias reached the scores: weights differ from the same layer without it
        plain_mha = MultiHeadAttention(D, 2).eval()
        plain_mha.load_state_dict(mha.state_dict())
        _, w0 = plain_mha(x, key_pad=key_pad, causal=causal, need_weights=True)
        assert (w - w0).abs().max() > 1e-3
    # cross-attention (queries from one sequence, keys/values from another)
    mem = torch.randn(3, L + 2, D)
    mem_pad = _pad_mask([9, 4, 1], L + 2) if padded else None
    fast, _ = mha(x, mem, mem_pad, need_weights=False)
    slow, _ = mha(x, mem, mem_pad, need_weights=True)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch,toggles,names", [
    ("transformer", {}, ["encoder.layer0.self", "decoder.layer0.self", "decoder.layer0.cross"]),
    ("seq2seq_attention", {"attention": "additive"}, ["decoder.cross"]),
    ("seq2seq_attention", {"attention": "dot"}, ["decoder.cross"]),
    ("seq2seq_attention", {"attention": "multihead", "n_heads": 2}, ["decoder.cross"]),
])
def test_need_weights_fills_last_attn_without_changing_logits(arch, toggles, names, tiny_model):
    model = tiny_model(arch, INFO, **toggles)
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3])
    tgt_in = torch.tensor([[BOS, 5, 6, 7]] * 3)
    with torch.no_grad():
        plain = model(src, src_len, tgt_in)
        weighted = model(src, src_len, tgt_in, need_weights=True)
    torch.testing.assert_close(plain, weighted, atol=1e-5, rtol=1e-5)
    assert sorted(model.last_attn) == sorted(names)
    for name, w in model.last_attn.items():
        Lq, Lk = (8, 8) if name.startswith("encoder") else (4, 8) if name.endswith("cross") else (4, 4)
        assert w.dim() == 4 and w.shape[0] == 3 and w.shape[2:] == (Lq, Lk), (name, w.shape)
        torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-5, rtol=0)
        if Lk == 8:  # source keys: padding gets nothing
            pad = _pad_mask([5, 8, 3], 8)[:, None, None, :].expand_as(w)
            assert (w[pad] == 0).all(), name


# ---------------------------------------------------------------- 7. recurrent step API
@pytest.mark.parametrize("arch,toggles", [
    *((a, {}) for a in RECURRENT),
    ("seq2seq", {"cell": "gru", "n_layers": 2}),
    ("seq2seq", {"cell": "rnn", "bidirectional": True}),
    ("seq2seq_attention", {"cell": "gru", "attention": "dot", "n_layers": 2}),
    ("seq2seq_attention", {"attention": "multihead", "n_heads": 2, "bidirectional": True}),
    ("rnn", {"n_layers": 2}),
    ("ssm", {}),
    ("ssm", {"n_layers": 2, "d_conv": 1, "expand": 1}),
])
def test_stateful_steps_equal_the_full_forward(arch, toggles, tiny_model, assert_greedy):
    model = tiny_model(arch, INFO, **toggles)
    assert model.supports_state
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3, 1])
    tgt_in = torch.cat([torch.full((4, 1), BOS), random_src(INFO.vocab_size, [6] * 4, seed=3)[0]], 1)
    with torch.no_grad():
        full = model(src, src_len, tgt_in)
        ctx, state = model.prepare(src, src_len), None
        for t in range(tgt_in.size(1)):
            logits, state = model.step(ctx, tgt_in[:, t : t + 1], state)
            torch.testing.assert_close(logits[:, -1], full[:, t], atol=1e-5, rtol=1e-4)
    # and greedy decoding through the state equals re-running the whole prefix each step
    assert_greedy(model, src, src_len, model.generate(src, src_len, 10))


@pytest.mark.parametrize("arch", ["mlp", "cnn", "transformer"])
def test_stateless_generate_is_greedy(arch, tiny_model, assert_greedy):
    model = tiny_model(arch, INFO)
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3, 1])
    full = model.generate(src, src_len, INFO.max_tgt_len)
    assert_greedy(model, src, src_len, full)
    # a shorter max_len decodes the same prefix
    short = model.generate(src, src_len, 4)
    assert short.shape == (4, 4) and torch.equal(short, full[:, :4])


# ---------------------------------------------------------------- 8. resolve
def test_resolve_fills_defaults_and_drops_toggles_that_do_not_apply():
    cfg, notes = model_config(dict(arch="lstm", n_heads=4, causal_mask=False, d_model=48))
    assert cfg.d_model == 48 and cfg.n_layers == 2
    assert not hasattr(cfg, "n_heads") and not hasattr(cfg, "causal_mask")  # the lstm's config has neither
    assert notes == ["model.n_heads, model.causal_mask do not apply to arch 'lstm': ignored for these runs"]
    # two configs differing only in a toggle that does not apply resolve to the same thing
    assert model_config(dict(arch="lstm", n_heads=4))[0] == model_config(dict(arch="lstm"))[0]
    # heads mean nothing for additive attention
    cfg, notes = model_config(dict(arch="seq2seq_attention", attention="additive", n_heads=4))
    assert cfg.n_heads is None and any("n_heads" in n for n in notes)
    # transformer: d_k, d_v and d_ff made concrete
    cfg, notes = model_config(dict(arch="transformer", d_model=64, n_heads=4))
    assert (cfg.d_k, cfg.d_v, cfg.d_ff, notes) == (16, 16, 256, [])


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_resolve_is_idempotent_and_builds(arch):
    cfg, _ = model_config(dict(arch=arch))
    again, notes = resolve(cfg)
    assert again == cfg and notes == []
    assert type(cfg) is ARCHS.meta(arch)["config"] and cfg.arch == arch


@pytest.mark.parametrize("cfg,key,value,valid", [
    (dict(arch="transformer", pos_encoding="sinus"), "model.pos_encoding", "sinus", "sinusoidal"),
    (dict(arch="transformer", norm="mid"), "model.norm", "mid", "pre"),
    (dict(arch="seq2seq", cell="lstn"), "model.cell", "lstn", "lstm"),
    (dict(arch="seq2seq_attention", attention="none"), "model.attention", "none", "additive"),
    (dict(arch="transformer", d_model=30, n_heads=4), "model.n_heads", "4", "valid n_heads: 1, 2, 3, 5"),
    (dict(arch="transformer", n_layers=0), "model.n_layers", "0", "> 0"),
    (dict(arch="gru", d_model=-8), "model.d_model", "-8", "> 0"),
    (dict(arch="cnn", kernel_size=0), "model.kernel_size", "0", "> 0"),
    (dict(arch="transformer", dropout=1.5), "model.dropout", "1.5", "[0, 1)"),
    (dict(arch="transformr"), "model.arch", "transformr", "transformer"),
    (dict(arch="lstm", norm="mid"), "model.norm", "mid", "pre"),  # a typo is an error even where ignored
    (dict(arch="lstm", n_head=4), "model.n_head", "4", "unknown key"),
    (dict(arch="transformer", d_k=7, pos_encoding="rotary"), "model.d_k", "7", "even"),
])
def test_resolve_rejects_bad_values_naming_key_value_and_choices(cfg, key, value, valid):
    with pytest.raises(ConfigErrors) as err:
        model_config(cfg)
    msg = str(err.value)
    assert key in msg and value in msg and valid in msg, msg


def test_resolve_reports_every_bad_value_at_once():
    with pytest.raises(ConfigErrors) as err:
        model_config(dict(arch="transformer", pos_encoding="sinus", norm="mid", n_layers=0))
    assert {e.key for e in err.value.errors} == {"model.pos_encoding", "model.norm", "model.n_layers"}


def test_build_model_resolves_and_sizes_follow_the_toggles():
    small = build_model(model_config(dict(arch="transformer", d_model=16, n_heads=2, n_layers=1))[0], INFO)
    big = build_model(model_config(dict(arch="transformer", d_model=16, n_heads=2, n_layers=2))[0], INFO)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(big) > count(small)
    with pytest.raises(ConfigErrors):
        build_model(model_config(dict(arch="transformer", d_model=30, n_heads=4))[0], INFO)


@pytest.mark.parametrize("arch", ["seq2seq", "seq2seq_attention"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_bidirectional_encoder_shapes(arch, cell, tiny_model):
    model = tiny_model(arch, INFO, cell=cell, bidirectional=True, n_layers=2)
    assert model.encoder.rnn.bidirectional
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3])
    enc = model.prepare(src, src_len)
    assert enc.memory.shape == (3, 8, 32)
    h = enc.state[0] if isinstance(enc.state, tuple) else enc.state
    assert h.shape == (2, 3, 32)
    out = model(src, src_len, torch.tensor([[BOS, 5, 6]] * 3))
    assert out.shape == (3, 3, INFO.vocab_size)
    # the backward direction reads the end of the source: the first encoder state depends on the last token
    src2 = src.clone()
    src2[1, 7] = 5 if src[1, 7] != 5 else 6
    with torch.no_grad():
        diff = model.prepare(src2, src_len).memory[1, 0] - model.prepare(src, src_len).memory[1, 0]
    assert diff.abs().max() > 1e-5


def test_transformer_token_embeddings_do_not_drown_positions(tiny_model):
    """Embeddings are scaled by sqrt(d_model) (as the paper); drawn with std d_model**-0.5 they end up ~unit size,
    the size of the sinusoidal signal, so position is not noise next to the token (what makes `reverse` learnable).
    """
    model = tiny_model("transformer", INFO, d_model=64, n_heads=4)
    enc = model.encoder
    tokens = model.src_embed.weight[3:] * enc.scale  # real tokens, as the stack sees them
    rms_tok = tokens.pow(2).mean().sqrt().item()
    rms_pos = enc.pos.pe[: INFO.max_src_len].pow(2).mean().sqrt().item()
    assert 0.3 < rms_tok / rms_pos < 3, (rms_tok, rms_pos)
    assert (model.src_embed.weight[PAD] == 0).all()


def test_d_k_changes_only_query_and_key_sizes(tiny_model):
    """Table 3 (B) of Vaswani et al. shrinks d_k alone: values keep d_model // n_heads."""
    D, H, Lyr = 32, 2, 1
    count = lambda m: sum(p.numel() for p in m.parameters())
    base = tiny_model("transformer", INFO, d_model=D, n_heads=H)
    small_k = tiny_model("transformer", INFO, d_model=D, n_heads=H, d_k=8)
    attn = small_k.encoder.layers[0].attn
    assert (attn.h, attn.dk, attn.dv) == (2, 8, 16)
    assert attn.qkv.out_features == 2 * H * 8 + H * 16 and attn.out.in_features == H * 16
    # three attention blocks (encoder self, decoder self, decoder cross), each losing the Q and K rows of
    # (16 - 8) channels per head: 2 matrices x H heads x 8 channels x (D weights + 1 bias)
    assert count(base) - count(small_k) == 3 * Lyr * 2 * H * 8 * (D + 1)
    small_v = tiny_model("transformer", INFO, d_model=D, n_heads=H, d_v=8)
    assert small_v.encoder.layers[0].attn.dk == 16
    # values shrink the value projection (input side) and the output projection (its input width)
    assert count(base) - count(small_v) == 3 * Lyr * (H * 8 * (D + 1) + H * 8 * D)
    src, src_len = random_src(INFO.vocab_size, [5, 8])
    for model in (small_k, small_v):
        assert model(src, src_len, torch.tensor([[BOS, 5]] * 2)).shape == (2, 2, INFO.vocab_size)
    with pytest.raises(ConfigErrors, match="d_k"):
        model_config(dict(arch="transformer", d_model=32, n_heads=2, d_k=7, pos_encoding="rotary"))
    cfg, _ = model_config(dict(arch="transformer", d_model=64, n_heads=4, d_k=4))
    assert (cfg.d_k, cfg.d_v) == (4, 16)


@pytest.mark.parametrize("padded", [False, True])
def test_attention_with_d_k_not_d_v_fast_path_equals_explicit_path(padded):
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, d_k=4, d_v=12).eval()
    x, mem = torch.randn(3, 6, 16), torch.randn(3, 7, 16)
    pad = _pad_mask([7, 5, 2], 7) if padded else None
    for args in ((x, None, None, True), (x, mem, pad, False)):
        fast, _ = mha(*args, need_weights=False)
        slow, w = mha(*args, need_weights=True)
        assert w.shape[1] == 2 and fast.shape == (3, 6, 16)
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_transformer_ties_embeddings_by_default_as_the_paper(tiny_model):
    model = tiny_model("transformer", INFO)
    assert model.head.weight is model.tgt_embed.weight is model.src_embed.weight
    untied = tiny_model("transformer", INFO, tie_embeddings=False)
    assert untied.head.weight is not untied.tgt_embed.weight
    assert untied.src_embed is untied.tgt_embed  # a shared vocabulary still has one input table
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(untied) - count(model) == INFO.vocab_size * 32
    # one tensor: a step on the head moves the embedding too
    src, src_len = random_src(INFO.vocab_size, [5, 8])
    model.train()
    model(src, src_len, torch.tensor([[BOS, 5, 6]] * 2)).sum().backward()
    assert model.tgt_embed.weight.grad is not None and model.tgt_embed.weight.grad[7].abs().sum() > 0


SEPARATE = TaskInfo(11, 17, max_src_len=8, max_tgt_len=9, shared_vocab=False)


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_separate_vocabularies_give_source_and_target_tables_of_their_own(arch, tiny_model, assert_greedy):
    model = tiny_model(arch, SEPARATE)
    assert model.src_embed.num_embeddings == 11 and model.head.out_features == 17
    if arch != "mlp":  # the MLP never reads target tokens
        assert model.tgt_embed.num_embeddings == 17 and model.src_embed is not model.tgt_embed
    src, src_len = random_src(11, [5, 8, 3])
    tgt_in = torch.cat([torch.full((3, 1), BOS), torch.randint(11, 17, (3, 4))], 1)  # ids only the target has
    with torch.no_grad():
        assert model(src, src_len, tgt_in).shape == (3, 5, 17)
    out = model.generate(src, src_len, 6)
    assert out.shape == (3, 6) and out.max() < 17
    assert_greedy(model, src, src_len, out)
    if arch not in ("mlp",):
        tied = tiny_model(arch, SEPARATE, tie_embeddings=True)
        assert tied.head.weight is tied.tgt_embed.weight and tied.src_embed.weight is not tied.head.weight
        with torch.no_grad():
            assert tied(src, src_len, tgt_in).shape == (3, 5, 17)


def test_task_info_sizes():
    assert TaskInfo(5, 9, 3, 4, shared_vocab=False).vocab_size == 9
    with pytest.raises(ValueError, match="shared"):
        TaskInfo(5, 9, 3, 4)


@pytest.mark.parametrize("d_model", [32, 128])
def test_learned_positions_start_on_the_scale_of_the_tokens(d_model, tiny_model):
    """Tokens enter the stack at std ~1 (embedding std d_model**-0.5 times sqrt(d_model)); a learned position
    table must start comparable, not 50x quieter (std 0.02), or training hardly uses position at all."""
    model = tiny_model("transformer", INFO, d_model=d_model, n_heads=4, pos_encoding="learned")
    for stack in (model.encoder, model.decoder):
        tokens = model.src_embed.weight[4:] * stack.scale
        positions = stack.pos.emb.weight
        ratio = positions.norm(dim=-1).mean().item() / tokens.norm(dim=-1).mean().item()
        assert 0.5 < ratio < 2, f"position/token norm ratio {ratio:.3f}"


# ---------------------------------------------------------------- attention_style: luong / bahdanau, by hand
def _mv(W, v):  # matrix (list of rows) times vector, in plain Python
    return [sum(w * x for w, x in zip(row, v)) for row in W]


def _add(*vs):
    return [sum(xs) for xs in zip(*vs)]


def _tanh(v):
    return [math.tanh(x) for x in v]


def _dot_attend(q, mem):
    """Luong's dot score over the memory rows, softmax, weighted sum: (context, weights)."""
    scores = [sum(a * b for a, b in zip(q, m)) for m in mem]
    e = [math.exp(s - max(scores)) for s in scores]
    w = [x / sum(e) for x in e]
    return [sum(wj * m[i] for wj, m in zip(w, mem)) for i in range(len(q))], w


def _hand_decoder(style: str, feeding: bool = False):
    """A 1-layer Elman-RNN decoder with dot attention, d_model 2, every weight set by hand."""
    from ablate.models.decoders import RNNDecoder

    dec = RNNDecoder("rnn", 2, 1, 0.0, attention="dot", attention_style=style, input_feeding=feeding)
    wide = style == "bahdanau" or feeding
    W_ih = [[0.5, -0.3, 0.2, 0.1], [0.1, 0.4, -0.2, 0.3]] if wide else [[0.5, -0.3], [0.1, 0.4]]
    W_hh, b_ih, b_hh = [[0.2, 0.1], [-0.1, 0.3]], [0.05, -0.05], [0.01, 0.02]
    W_c = [[0.3, -0.2, 0.4, 0.1, -0.3, 0.2], [0.2, 0.5, -0.1, 0.3, 0.1, -0.4]]
    W_c = [row[: 6 if style == "bahdanau" else 4] for row in W_c]
    b_c = [0.1, -0.1]
    with torch.no_grad():
        dec.rnn.weight_ih_l0.copy_(torch.tensor(W_ih))
        dec.rnn.weight_hh_l0.copy_(torch.tensor(W_hh))
        dec.rnn.bias_ih_l0.copy_(torch.tensor(b_ih))
        dec.rnn.bias_hh_l0.copy_(torch.tensor(b_hh))
        dec.combine.weight.copy_(torch.tensor(W_c))
        dec.combine.bias.copy_(torch.tensor(b_c))
    return dec.eval(), dict(W_ih=W_ih, W_hh=W_hh, b=_add(b_ih, b_hh), W_c=W_c, b_c=b_c)


X = [[1.0, -0.5], [0.3, 0.8]]  # embedded target tokens y_0, y_1
MEM = [[0.6, -0.2], [-0.4, 0.9], [0.2, 0.2]]  # encoder states
S0 = [0.1, -0.3]  # initial decoder state


def _run_module(dec):
    from ablate.models.encoders import EncoderOutput

    enc = EncoderOutput(torch.tensor([MEM]), torch.zeros(1, 3, dtype=torch.bool), state=torch.tensor([[S0]]))
    out = dec(torch.tensor([X]), enc, need_weights=True)
    return out.y[0].tolist(), out.attn["decoder.cross"][0, 0].tolist()


@pytest.mark.parametrize("feeding", [False, True])
def test_luong_attention_step_by_hand(feeding):
    dec, p = _hand_decoder("luong", feeding)
    s, feed, ys, ws = S0, [0.0, 0.0], [], []
    for x in X:
        inp = x + feed if feeding else x  # input feeding: the previous attentional output joins the input
        s = _tanh(_add(_mv(p["W_ih"], inp), _mv(p["W_hh"], s), p["b"]))  # h_t from the RNN alone
        ctx, w = _dot_attend(s, MEM)  # scored from the current output
        out = _tanh(_add(_mv(p["W_c"], s + ctx), p["b_c"]))
        feed = out
        ys.append(out)
        ws.append(w)
    got_y, got_w = _run_module(dec)
    torch.testing.assert_close(torch.tensor(got_y), torch.tensor(ys), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(got_w), torch.tensor(ws), atol=1e-6, rtol=0)


def test_bahdanau_attention_step_by_hand():
    dec, p = _hand_decoder("bahdanau")
    s, ys, ws = S0, [], []
    for x in X:
        ctx, w = _dot_attend(s, MEM)  # scored from the previous state s_{t-1}
        s = _tanh(_add(_mv(p["W_ih"], x + ctx), _mv(p["W_hh"], s), p["b"]))  # context enters the RNN input
        out = _tanh(_add(_mv(p["W_c"], s + ctx + x), p["b_c"]))  # deep output from s_t, c_t and y_{t-1}
        ys.append(out)
        ws.append(w)
    got_y, got_w = _run_module(dec)
    torch.testing.assert_close(torch.tensor(got_y), torch.tensor(ys), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(got_w), torch.tensor(ws), atol=1e-6, rtol=0)


@pytest.mark.parametrize("toggles", [
    {"attention_style": "bahdanau"},
    {"attention_style": "bahdanau", "cell": "lstm", "n_layers": 2, "attention": "multihead", "n_heads": 2},
    {"attention_style": "luong", "input_feeding": True, "cell": "gru", "attention": "dot"},
    {"attention_style": "luong", "input_feeding": True, "cell": "lstm", "n_layers": 2},
])
def test_attention_styles_step_and_decode_like_the_full_forward(toggles, tiny_model, assert_greedy):
    model = tiny_model("seq2seq_attention", INFO, **toggles)
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3, 1])
    tgt_in = torch.cat([torch.full((4, 1), BOS), random_src(INFO.vocab_size, [6] * 4, seed=3)[0]], 1)
    with torch.no_grad():
        full = model(src, src_len, tgt_in)
        ctx, state = model.prepare(src, src_len), None
        for t in range(tgt_in.size(1)):
            logits, state = model.step(ctx, tgt_in[:, t : t + 1], state)
            torch.testing.assert_close(logits[:, -1], full[:, t], atol=1e-5, rtol=1e-4)
    assert_greedy(model, src, src_len, model.generate(src, src_len, 10))
    past, future = _future_changes(model, src, src_len, tgt_in, INFO.vocab_size)
    assert max(past) < 1e-5 and min(future) > 1e-4


def test_input_feeding_applies_only_to_luong():
    cfg, notes = model_config(dict(arch="seq2seq_attention", attention_style="bahdanau", input_feeding=True))
    assert cfg.input_feeding is None and any("input_feeding" in n for n in notes)
    cfg, notes = model_config(dict(arch="seq2seq_attention"))
    assert (cfg.attention_style, cfg.input_feeding) == ("luong", False)
    with pytest.raises(ConfigErrors, match="attention_style"):
        model_config(dict(arch="seq2seq_attention", attention_style="bahdanu"))


# ---------------------------------------------------------------- every parameter runs
@pytest.mark.parametrize("arch,toggles", [
    *((a, {}) for a in ALL_ARCHS),
    ("seq2seq", {"bidirectional": True, "n_layers": 2}),
    ("seq2seq_attention", {"bidirectional": True, "attention": "multihead", "n_heads": 2}),
    ("seq2seq_attention", {"attention_style": "bahdanau", "attention": "dot"}),
    ("seq2seq_attention", {"input_feeding": True}),
    ("transformer", {"tie_embeddings": False, "norm": "pre", "pos_encoding": "learned"}),
    ("lstm", {"tie_embeddings": True}),
    ("ssm", {"n_layers": 2, "tie_embeddings": True}),
    ("transformer", {"pos_encoding": "alibi", "n_heads": 4}),
])
@pytest.mark.parametrize("shared", [True, False])
def test_every_parameter_receives_a_gradient(arch, toggles, shared, tiny_model):
    """A parameter that never runs inflates the count match_params matches (the cnn once built a cross-attention
    block and a LayerNorm it never used)."""
    info = INFO if shared else SEPARATE
    model = tiny_model(arch, info, **toggles).train()
    src, src_len = random_src(info.src_vocab_size, [5, 8, 3, 7])
    T = info.max_tgt_len  # every target position, so learned tables are reached in full
    tgt = torch.randint(4, info.tgt_vocab_size, (4, T))
    tgt_in = torch.cat([torch.full((4, 1), BOS), tgt[:, :-1]], 1)
    logits = model(src, src_len, tgt_in)
    F.cross_entropy(logits.flatten(0, 1), tgt.flatten()).backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"{arch} {toggles}: parameters without a gradient: {dead}"


# ---------------------------------------------------------------- the step contract and generate's one path
@pytest.mark.parametrize("arch,toggles", [*((a, {}) for a in ALL_ARCHS),
                                          ("seq2seq_attention", {"attention_style": "bahdanau"})])
def test_generate_honours_per_example_caps(arch, toggles, tiny_model):
    model = tiny_model(arch, INFO, **toggles)
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3, 6])
    full = model.generate(src, src_len, 9)
    caps = torch.tensor([2, 9, 0, 5])
    capped = model.generate(src, src_len, caps)
    assert capped.shape == (4, 9)
    for i, cap in enumerate(caps.tolist()):
        assert capped[i, :cap].tolist() == full[i, :cap].tolist()
        assert (capped[i, cap:] == PAD).all(), f"row {i} runs past its cap {cap}"
    assert model.generate(src, src_len, torch.tensor([3, 1, 2, 3])).shape == (4, 3)


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_every_preset_declares_the_step_contract(arch, tiny_model):
    """prepare once, then step: with supports_state one token and the carried state, else the whole prefix."""
    from ablate.models.seq_models import SeqModel

    model = tiny_model(arch, INFO)
    assert isinstance(model, SeqModel)
    for name in ("prepare", "step"):
        assert getattr(type(model), name) is not getattr(SeqModel, name), f"{arch} does not implement {name}"
    src, src_len = random_src(INFO.vocab_size, [5, 8])
    ys = torch.tensor([[BOS, 6, 7], [BOS, 8, 9]])
    with torch.no_grad():
        ctx, state = model.prepare(src, src_len), None
        if model.supports_state:
            for t in range(3):
                logits, state = model.step(ctx, ys[:, t : t + 1], state)
        else:
            logits, state = model.step(ctx, ys, None)
            assert state is None
        assert logits.shape[0] == 2 and logits.shape[-1] == INFO.vocab_size
        torch.testing.assert_close(logits[:, -1], model(src, src_len, ys)[:, -1], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("attention", ["dot", "additive"])
def test_transformer_takes_its_attention_kind_from_the_registry(attention, tiny_model, assert_greedy):
    from ablate.models.attention import AdditiveAttention, DotAttention

    model = tiny_model("transformer", INFO, attention=attention, pos_encoding="rotary")
    kind = {"dot": DotAttention, "additive": AdditiveAttention}[attention]
    assert isinstance(model.encoder.layers[0].attn, kind) and isinstance(model.decoder.layers[0].self_attn, kind)
    assert model.encoder.layers[0].attn.positional is model.encoder.pos  # hooks of the stack's encoding
    src, src_len = random_src(INFO.vocab_size, [5, 8, 3])
    assert_greedy(model, src, src_len, model.generate(src, src_len, 6))
    past, future = _future_changes(model, src, src_len, torch.tensor([[BOS, 5, 6, 7]] * 3), INFO.vocab_size)
    assert max(past) < 1e-5


def test_model_config_shorthand_builds_the_arch_config():
    from ablate.models import ModelConfig
    from ablate.models.config import RecurrentConfig, TransformerConfig

    cfg = ModelConfig(arch="transformer", d_model=32, n_heads=2, d_k=4)
    assert isinstance(cfg, TransformerConfig) and (cfg.d_k, cfg.d_v, cfg.d_ff) == (4, 16, 128)
    assert isinstance(ModelConfig(arch="gru"), RecurrentConfig)
    with pytest.raises(ConfigErrors, match="model.norm"):
        ModelConfig(arch="transformer", norm="mid")
