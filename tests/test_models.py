"""Model tests: shapes on every task, causality, padding, positional encodings, attention, decoding, resolve.

Every model here is tiny and untrained unless a test says otherwise; learning tests are in test_learning.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ablate.errors import ConfigErrors
from ablate.models import ARCHS, ModelConfig, TaskInfo, build_model, resolve
from ablate.models.attention import AdditiveAttention, DotAttention, MultiHeadAttention
from ablate.tasks import TASKS
from ablate.tasks.vocab import Vocab

PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos
ALL_ARCHS = ["mlp", "cnn", "rnn", "gru", "lstm", "seq2seq", "seq2seq_attention", "transformer"]
PREFIX_LM = ["cnn", "rnn", "gru", "lstm"]
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
def test_presets_are_the_eight_of_the_design():
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


@pytest.mark.parametrize("pos", ["sinusoidal", "learned", "rotary"])
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


@pytest.mark.parametrize("rotary", [False, True])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
def test_sdpa_fast_path_equals_explicit_path(rotary, causal, padded):
    torch.manual_seed(0)
    D, L = 16, 7
    mha = MultiHeadAttention(D, 2, rotary=rotary).eval()
    x = torch.randn(3, L, D)
    key_pad = _pad_mask([7, 5, 2], L) if padded else None
    fast, none = mha(x, key_pad=key_pad, causal=causal, need_weights=False)
    slow, w = mha(x, key_pad=key_pad, causal=causal, need_weights=True)
    assert none is None and w is not None
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
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
    cfg, notes = resolve(ModelConfig(arch="lstm", n_heads=4, causal_mask=False, d_model=48))
    assert cfg.d_model == 48 and cfg.n_layers is not None
    assert cfg.n_heads is None and cfg.causal_mask is None
    assert any("n_heads" in n and "lstm" in n for n in notes)
    assert any("causal_mask" in n for n in notes)
    # two configs differing only in a toggle that does not apply resolve to the same thing
    assert resolve(ModelConfig(arch="lstm", n_heads=4))[0] == resolve(ModelConfig(arch="lstm"))[0]
    # heads mean nothing for additive attention
    cfg, notes = resolve(ModelConfig(arch="seq2seq_attention", attention="additive", n_heads=4))
    assert cfg.n_heads is None and any("n_heads" in n for n in notes)
    # transformer: d_head and d_ff made concrete
    cfg, notes = resolve(ModelConfig(arch="transformer", d_model=64, n_heads=4))
    assert (cfg.d_head, cfg.d_ff, notes) == (16, 256, [])


@pytest.mark.parametrize("arch", ALL_ARCHS)
def test_resolve_is_idempotent_and_builds(arch):
    cfg, _ = resolve(ModelConfig(arch=arch))
    again, notes = resolve(cfg)
    assert again == cfg and notes == []


@pytest.mark.parametrize("cfg,key,value,valid", [
    (ModelConfig(arch="transformer", pos_encoding="sinus"), "model.pos_encoding", "sinus", "sinusoidal"),
    (ModelConfig(arch="transformer", norm="mid"), "model.norm", "mid", "pre"),
    (ModelConfig(arch="seq2seq", cell="lstn"), "model.cell", "lstn", "lstm"),
    (ModelConfig(arch="seq2seq_attention", attention="none"), "model.attention", "none", "additive"),
    (ModelConfig(arch="transformer", d_model=30, n_heads=4), "model.n_heads", "4", "valid n_heads: 1, 2, 3, 5"),
    (ModelConfig(arch="transformer", n_layers=0), "model.n_layers", "0", "> 0"),
    (ModelConfig(arch="gru", d_model=-8), "model.d_model", "-8", "> 0"),
    (ModelConfig(arch="cnn", kernel_size=0), "model.kernel_size", "0", "> 0"),
    (ModelConfig(arch="transformer", dropout=1.5), "model.dropout", "1.5", "[0, 1)"),
    (ModelConfig(arch="transformr"), "model.arch", "transformr", "transformer"),
])
def test_resolve_rejects_bad_values_naming_key_value_and_choices(cfg, key, value, valid):
    with pytest.raises(ConfigErrors) as err:
        resolve(cfg)
    msg = str(err.value)
    assert key in msg and value in msg and valid in msg, msg


def test_resolve_reports_every_bad_value_at_once():
    with pytest.raises(ConfigErrors) as err:
        resolve(ModelConfig(arch="transformer", pos_encoding="sinus", norm="mid", n_layers=0))
    assert {e.key for e in err.value.errors} == {"model.pos_encoding", "model.norm", "model.n_layers"}


def test_build_model_resolves_and_sizes_follow_the_toggles():
    small = build_model(ModelConfig(arch="transformer", d_model=16, n_heads=2, n_layers=1), INFO)
    big = build_model(ModelConfig(arch="transformer", d_model=16, n_heads=2, n_layers=2), INFO)
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(big) > count(small)
    with pytest.raises(ConfigErrors):
        build_model(ModelConfig(arch="transformer", d_model=30, n_heads=4), INFO)


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
    tokens = model.embed.weight[3:] * enc.scale  # real tokens, as the stack sees them
    rms_tok = tokens.pow(2).mean().sqrt().item()
    rms_pos = enc.pos.pe[: INFO.max_src_len].pow(2).mean().sqrt().item()
    assert 0.3 < rms_tok / rms_pos < 3, (rms_tok, rms_pos)
    assert (model.embed.weight[PAD] == 0).all()


def test_explicit_head_size(tiny_model):
    model = tiny_model("transformer", INFO, d_model=32, n_heads=2, d_head=8)
    attn = model.encoder.layers[0].attn
    assert (attn.h, attn.dh, attn.qkv.out_features) == (2, 8, 48)
    src, src_len = random_src(INFO.vocab_size, [5, 8])
    assert model(src, src_len, torch.tensor([[BOS, 5]] * 2)).shape == (2, 2, INFO.vocab_size)
    with pytest.raises(ConfigErrors, match="d_head"):
        resolve(ModelConfig(arch="transformer", d_model=32, n_heads=2, d_head=7, pos_encoding="rotary"))
