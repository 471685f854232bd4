"""Fast decoding (issue 11): cached incremental decoding on the step contract, linear attention, beam search,
and eval.* settings that re-test a trained checkpoint instead of training again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml
from handbuilt import TableModel

from ablate.models import TaskInfo
from ablate.models.seq_models import SeqModel
from ablate.tasks.vocab import Vocab

PAD, BOS, EOS = Vocab.pad, Vocab.bos, Vocab.eos
INFO = TaskInfo(13, 13, max_src_len=8, max_tgt_len=9)
TRANSFORMER = {"d_model": 32, "n_layers": 2, "n_heads": 2, "d_ff": 64}
TOY = {"d_model": 32, "n_layers": 2, "n_heads": 2}

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def random_src(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    S = max(lengths)
    x = torch.randint(4, INFO.src_vocab_size, (len(lengths), S), generator=g)
    lens = torch.tensor(lengths)
    return x.masked_fill(torch.arange(S)[None] >= lens[:, None], PAD), lens


def lively(model: SeqModel, seed: int) -> SeqModel:
    """Untrained tiny models mostly repeat one token; a louder head with random biases makes them say more, so
    equal token sequences mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:  # louder weights: outputs that depend on more than the first token
                p.mul_(2.0 if "embed" not in name else 3.0)
        w = model.head.weight
        if w is not getattr(model.tgt_embed, "weight", None):
            w.copy_(torch.randn(w.shape, generator=g))
        model.head.bias.zero_()
        model.head.bias[BOS] = -1e4  # never predicted
        model.head.bias[EOS] = -2.0  # said, but not at once
    return model


def recording_steps(model: SeqModel, method: str = "step") -> list[int]:
    """Record the width of ys at each call of step (1 = one new token against a state) or rerun (the prefix)."""
    widths: list[int] = []
    inner = getattr(model, method)

    def spy(ctx, ys, *a, **kw):
        widths.append(ys.size(1))
        return inner(ctx, ys, *a, **kw)

    setattr(model, method, spy)
    return widths


# Every preset and the toggles that change how a decoder reads its prefix (all with the causal mask on).
CASES = [
    *((a, {}) for a in ["mlp", "cnn", "rnn", "gru", "lstm", "seq2seq", "seq2seq_attention", "transformer"]),
    ("cnn", {"kernel_size": 2, "n_layers": 4}),
    ("seq2seq_attention", {"attention_style": "bahdanau"}),
    ("seq2seq_attention", {"attention": "multihead", "n_heads": 2, "input_feeding": True}),
    *(("transformer", {**TRANSFORMER, "pos_encoding": p}) for p in ["sinusoidal", "learned", "rotary", "none"]),
    ("transformer", {**TRANSFORMER, "norm": "pre", "tie_embeddings": True}),
    ("transformer", {**TRANSFORMER, "d_k": 8, "d_v": 24}),
    *(("transformer", {**TRANSFORMER, "attention": a, "pos_encoding": "rotary"}) for a in ["dot", "additive"]),
    *(("transformer", {**TRANSFORMER, "attention": "linear", "pos_encoding": p}) for p in ["sinusoidal", "rotary"]),
    # a prefix LM on self-attention (the plugin's): per-row positions, a score_bias encoding, rotary, learned
    *(("toy_lm", {**TOY, "pos_encoding": p}) for p in ["distance_decay", "rotary", "learned", "sinusoidal"]),
    # the contenders (issue 12): ALiBi under the cache (encoder-decoder and prefix LM), the SSM
    ("transformer", {**TRANSFORMER, "pos_encoding": "alibi"}), ("toy_lm", {**TOY, "pos_encoding": "alibi"}),
    ("ssm", {"d_model": 32, "n_layers": 2}),
]


def _build(tiny_model, arch, toggles, seed):
    if arch == "toy_lm":
        import toy_arch  # noqa: F401 - tests/plugins, registers toy_lm and distance_decay
    return lively(tiny_model(arch, INFO, seed=seed, **toggles), seed)


@pytest.fixture(autouse=True, scope="module")
def _toy_plugin():
    """tests/plugins/toy_arch importable here, and gone afterwards: its arch and encoding are registered only
    while this module runs (other modules count the registries' entries)."""
    import sys

    from ablate.models import ARCHS, POSITIONAL

    sys.path.insert(0, str(Path(__file__).parent / "plugins"))
    yield
    sys.path.remove(str(Path(__file__).parent / "plugins"))
    sys.modules.pop("toy_arch", None)
    for registry, name in ((ARCHS, "toy_lm"), (POSITIONAL, "distance_decay")):
        registry._items.pop(name, None)
        registry._meta.pop(name, None)


def _ids(v):
    return v if isinstance(v, str) else ",".join(f"{k}={x}" for k, x in v.items() if k not in TRANSFORMER or k == "d_k")


@pytest.mark.parametrize("arch,toggles", CASES, ids=_ids)
def test_cached_decoding_returns_the_tokens_of_the_rerun_path(arch, toggles, tiny_model):
    said = set()
    for seed in range(2):
        model = _build(tiny_model, arch, toggles, seed)
        assert model.supports_state, f"{arch} {toggles} decodes without a state"
        src, src_len = random_src([5, 8, 3, 1, 6, 2], seed)
        caps = torch.tensor([9, 4, 9, 0, 7, 1])  # per-example caps, one of them 0
        widths = recording_steps(model)
        cached = model.generate(src, src_len, caps)
        assert widths and set(widths) == {1}, "the cached path must feed one new token per step"
        rerun = model.generate(src, src_len, caps, cache=False)
        assert torch.equal(cached, rerun), f"seed {seed}:\n{cached}\n{rerun}"
        assert (cached[3] == PAD).all() and (cached[5, 1:] == PAD).all()
        said |= set(cached.flatten().tolist())
    assert len(said - {PAD}) >= 3, f"a model that says too little proves nothing: {said}"


@pytest.mark.parametrize("arch,toggles", CASES, ids=_ids)
def test_each_cached_step_gives_the_logits_of_the_full_forward(arch, toggles, tiny_model):
    """Stronger than equal tokens: every step's logits equal the teacher-forced forward's at that position."""
    model = _build(tiny_model, arch, toggles, 0)
    src, src_len = random_src([5, 8, 3, 1])
    tgt_in = torch.cat([torch.full((4, 1), BOS), random_src([6] * 4, seed=3)[0]], 1)
    with torch.no_grad():
        full = model(src, src_len, tgt_in)
        ctx = model.prepare(src, src_len)
        state = model.start(ctx)
        for t in range(tgt_in.size(1)):
            logits, state = model.step(ctx, tgt_in[:, t : t + 1], state)
            assert logits.shape == (4, 1, INFO.vocab_size), "logits for the new position only"
            torch.testing.assert_close(logits[:, -1], full[:, t], atol=1e-4, rtol=1e-4)


def test_transformer_state_holds_kv_per_layer_and_cross_attention_once(tiny_model):
    from ablate.models.attention import KVCache
    from ablate.models.decoders import TransformerState

    model = tiny_model("transformer", INFO, **TRANSFORMER)
    src, src_len = random_src([5, 8, 3])
    ctx = model.prepare(src, src_len)
    state = model.start(ctx)
    assert isinstance(state, TransformerState) and len(state.memory) == 2
    k0 = state.memory[0][0]
    assert k0.shape == (3, 2, 8, 16)  # (B, H, S, d_k): the encoder output's keys, computed at start
    for tok in (BOS, 5, 6):
        _, state = model.step(ctx, torch.full((3, 1), tok), state)
    assert state.memory[0][0] is k0, "cross-attention keys are computed once"
    assert all(isinstance(c, KVCache) and c.k.shape[:2] == (3, 2) and c.k.size(2) >= 3 for c in state.layers)
    assert state.pos.tolist() == [3, 3, 3]


def test_cnn_state_keeps_kernel_minus_one_times_dilation_inputs_per_layer(tiny_model):
    model = tiny_model("cnn", INFO, d_model=32, n_layers=3, kernel_size=3)
    src, src_len = random_src([5, 8])
    ctx = model.prepare(src, src_len)
    _, state = model.step(ctx, torch.full((2, 1), BOS), model.start(ctx))
    assert [b.shape for b in state.bufs] == [(2, 2 * d, 32) for d in (1, 2, 4)]


def test_without_the_causal_mask_the_transformer_decodes_by_rerunning_the_prefix(tiny_model):
    model = _build(tiny_model, "transformer", {**TRANSFORMER, "causal_mask": False}, 0)
    assert not model.supports_state
    src, src_len = random_src([5, 8, 3, 1])
    widths = recording_steps(model, "rerun")
    out = model.generate(src, src_len, 6)
    assert widths == list(range(1, len(widths) + 1)) and len(widths) > 2, "the whole prefix, every step"
    # what a cache would miss: an earlier position's output changes once later tokens are there
    with torch.no_grad():
        short = model(src, src_len, torch.tensor([[BOS, 5]] * 4))[:, 0]
        longer = model(src, src_len, torch.tensor([[BOS, 5, 6, 7]] * 4))[:, 0]
    assert (short - longer).abs().max() > 1e-4
    with pytest.raises(ValueError, match="causal mask"):
        model.decoder(model.tgt_embed(torch.full((4, 1), BOS)), model.prepare(src, src_len),
                      state=model.decoder.start(model.prepare(src, src_len)))
    assert torch.equal(out, model.generate(src, src_len, 6, cache=False))


# ---------------------------------------------------------------- positional hooks at absolute positions
def test_position_aware_hooks_agree_with_the_plain_ones():
    import toy_arch  # noqa: F401

    from ablate.models.components import POSITIONAL
    from ablate.models.positional import PositionalEncoding, rope

    torch.manual_seed(0)
    x = torch.randn(2, 7, 16)
    pos = torch.tensor([[3, 4, 5, 6, 7, 8, 9], [0, 1, 2, 3, 4, 5, 6]])
    for name in ("sinusoidal", "learned"):
        enc = POSITIONAL.get(name)(16, 16)
        full = enc.embed(torch.zeros(2, 10, 16))
        torch.testing.assert_close(enc.embed_at(x, pos), x + full[0][pos])
    q = torch.randn(2, 2, 7, 8)
    rot = POSITIONAL.get("rotary")(16, 16)
    torch.testing.assert_close(rot.rotate_at(q, pos), torch.stack([rope(q[0], start=3), rope(q[1])]))

    class OnlyRotate(PositionalEncoding):  # a plugin that defines only the plain hook: the generic form
        def rotate(self, q, k):
            return rope(q, start=k.size(-2) - q.size(-2)), rope(k)

    torch.testing.assert_close(OnlyRotate(16).rotate_at(q, pos), rot.rotate_at(q, pos))
    decay = POSITIONAL.get("distance_decay")(16, 16)
    qpos = torch.tensor([[4], [9]])
    bias = decay.score_bias_at(qpos, 10, 2, torch.device("cpu"))  # (B, H, 1, Lk)
    assert bias.shape == (2, 2, 1, 10)
    torch.testing.assert_close(bias[1], decay.score_bias(1, 10, 2, torch.device("cpu")))  # last query
    torch.testing.assert_close(bias[0, :, 0, :5], decay.score_bias(1, 5, 2, torch.device("cpu"))[:, 0])


# ---------------------------------------------------------------- trained: cached == teacher-forced argmax
REVERSE = {"vocab_size": 6, "min_len": 2, "max_len": 6, "n_train": 64, "n_val": 8, "n_test": 32}


@pytest.mark.parametrize("arch,toggles", [("transformer", {"d_model": 64, "n_layers": 1, "n_heads": 4,
                                                           "d_ff": 128}),
                                          ("cnn", {"d_model": 64, "n_layers": 3, "kernel_size": 3})])
def test_cached_decoding_of_a_trained_model_is_the_teacher_forced_argmax(arch, toggles, tiny_task, tiny_model,
                                                                          batch_of, assert_greedy):
    data = tiny_task("reverse", **REVERSE)
    b = batch_of(data.train)
    model = tiny_model(arch, data, seed=0, **toggles)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(120):
        loss = F.cross_entropy(model(b["src"], b["src_len"], b["tgt_in"]).flatten(0, 1), b["tgt"].flatten(),
                               ignore_index=PAD)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    fitted = model.generate(b["src"], b["src_len"], b["tgt"].size(1))
    assert (fitted == b["tgt"]).all(1).float().mean() > 0.5, "it learned reverse"
    test = batch_of(data.test)  # unseen inputs: some right, some wrong
    out = model.generate(test["src"], test["src_len"], test["tgt"].size(1))
    assert_greedy(model, test["src"], test["src_len"], out)
    assert torch.equal(out, model.generate(test["src"], test["src_len"], test["tgt"].size(1), cache=False))


# ---------------------------------------------------------------- linear attention (Katharopoulos et al. 2020)
LINEAR = {**TRANSFORMER, "attention": "linear"}


def test_linear_attention_is_the_kernelised_formula():
    """phi = elu + 1; each output is sum_j phi(q).phi(k_j) v_j / sum_j phi(q).phi(k_j) over the allowed keys."""
    from ablate.models.components import ATTENTION
    from ablate.models.linear_attention import phi

    torch.manual_seed(0)
    attn = ATTENTION.get("linear")(16, n_heads=2)
    x = torch.randn(3, 6, 16)
    pad = torch.arange(6)[None] >= torch.tensor([6, 4, 2])[:, None]
    q, (k, v) = attn._q(x), attn._kv(x)
    for causal in (False, True):
        w = phi(q) @ phi(k).transpose(-2, -1)  # (B, H, L, L), all positive
        allowed = ~pad[:, None, None, :]
        if causal:
            allowed = allowed & torch.ones(6, 6, dtype=torch.bool).tril()
        w = w * allowed
        ref = attn._out((w / w.sum(-1, keepdim=True)) @ v)
        out, weights = attn(x, key_pad=pad, causal=causal, need_weights=True)
        keep = ~pad[..., None] if causal else torch.ones_like(pad)[..., None]  # padded queries may see nothing
        torch.testing.assert_close(out * keep, ref * keep, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(weights.sum(-1)[~pad[:, None].expand(-1, 2, -1)],
                                   torch.ones(int((~pad).sum()) * 2), atol=1e-5, rtol=1e-5)


def test_linear_attention_decodes_with_a_constant_size_state(tiny_model):
    model = tiny_model("transformer", INFO, **LINEAR)
    assert "linear" in __import__("ablate.models.components", fromlist=["ATTENTION"]).ATTENTION.names()
    src, src_len = random_src([5, 8, 3])
    ctx = model.prepare(src, src_len)
    state = model.start(ctx)
    sizes = []
    for tok in (BOS, 5, 6, 7, 8):
        _, state = model.step(ctx, torch.full((3, 1), tok), state)
        sizes.append([tuple(t.shape) for c in state.layers for t in c])
    assert all(s == sizes[0] for s in sizes), "the state does not grow with the prefix"
    assert sizes[0][:2] == [(3, 2, 16, 16), (3, 2, 16)]  # S (B, H, d_k, d_v) and z (B, H, d_k)


def test_linear_attention_refuses_a_score_bias_encoding():
    import toy_arch  # noqa: F401 - distance_decay biases scores

    from ablate.models.components import ATTENTION, POSITIONAL

    with pytest.raises(ValueError, match="no score matrix"):
        ATTENTION.get("linear")(16, 2, positional=POSITIONAL.get("distance_decay")(16))


def test_linear_attention_is_causal(tiny_model):
    from test_models import _future_changes

    model = tiny_model("transformer", INFO, **LINEAR)
    src, src_len = random_src([5, 8, 3, 6])
    tgt_in = torch.cat([torch.full((4, 1), BOS), random_src([7] * 4, seed=2)[0]], 1)
    past, future = _future_changes(model, src, src_len, tgt_in, INFO.vocab_size)
    assert max(past) < 1e-5, f"logits at t changed when only tokens after t changed: {past}"
    assert min(future) > 1e-5, f"later logits ignore later tokens: {future}"


def test_linear_attention_logits_do_not_depend_on_batch_padding(tiny_task, tiny_model, batch_of):
    data = tiny_task("reverse")
    model = tiny_model("transformer", data, **LINEAR)
    b = batch_of(data.train, 12)
    assert b["src_len"].min() < b["src_len"].max()
    with torch.no_grad():
        full = model(b["src"], b["src_len"], b["tgt_in"])
        for i in range(12):
            s, t = int(b["src_len"][i]), int(b["tgt_len"][i])
            alone = model(b["src"][i : i + 1, :s], b["src_len"][i : i + 1], b["tgt_in"][i : i + 1, :t])
            torch.testing.assert_close(full[i, :t], alone[0], atol=1e-5, rtol=1e-4)


def test_linear_attention_transformer_fits_reverse(tiny_task, tiny_model, batch_of):
    from test_learning import REVERSE as FIT_REVERSE
    from test_learning import seq_acc, train_until_perfect

    data = tiny_task("reverse", **FIT_REVERSE)
    b = batch_of(data.train)
    model = tiny_model("transformer", data, seed=0, d_model=64, n_layers=1, n_heads=4, d_ff=128,
                       attention="linear")
    steps = train_until_perfect(model, b, max_steps=400)
    assert steps is not None, f"linear attention did not fit reverse (seq_acc {seq_acc(model, b):.2f})"


# ---------------------------------------------------------------- beam search
A, B_ = 4, 5  # two ordinary tokens


class HandBuilt(TableModel):
    """Next-token probabilities by prefix (a re-run model): greedy takes A (0.6), then A (0.4), then <eos> (1.0):
    0.24; the better sequence starts with the less likely B: B <eos> = 0.4 * 0.9 = 0.36."""

    TABLE = {(): {A: 0.6, B_: 0.4}, (A,): {A: 0.4, B_: 0.3, EOS: 0.3}, (B_,): {EOS: 0.9, A: 0.1},
             (A, A): {EOS: 1.0}, (A, B_): {EOS: 1.0}, (B_, A): {EOS: 1.0}}
    VOCAB = 6


def test_beam_two_finds_the_more_likely_sequence_greedy_misses():
    model = HandBuilt()
    src, src_len = torch.ones(2, 1, dtype=torch.long), torch.ones(2, dtype=torch.long)
    greedy = model.generate(src, src_len, 4)
    assert greedy[0].tolist() == [A, A, EOS, PAD]
    beam = model.generate(src, src_len, torch.tensor([4, 1]), beam_size=2, length_penalty=0.0)
    assert beam[0].tolist() == [B_, EOS, PAD, PAD]  # 0.36 > 0.24
    assert beam[1].tolist() == [A, PAD, PAD, PAD]  # its cap of 1: the most likely first token
    # length_penalty 1 ranks by log-probability per token: A A <eos> (log 0.24 / 3) beats B <eos> (log 0.36 / 2)
    assert model.generate(src, src_len, 4, beam_size=2, length_penalty=1.0)[0].tolist() == [A, A, EOS, PAD]


@pytest.mark.parametrize("arch,toggles", [("transformer", TRANSFORMER), ("cnn", {}), ("gru", {}),
                                          ("seq2seq_attention", {}), ("mlp", {}),
                                          ("toy_lm", {**TOY, "pos_encoding": "rotary"}),
                                          ("transformer", {**TRANSFORMER, "causal_mask": False})], ids=_ids)
def test_beam_one_is_greedy_and_a_cached_beam_equals_a_rerun_one(arch, toggles, tiny_model):
    from ablate.models.beam import beam_search

    model = _build(tiny_model, arch, toggles, 1)
    src, src_len = random_src([5, 8, 3, 1, 6], 1)
    caps = torch.tensor([9, 4, 9, 2, 7])
    greedy = model.generate(src, src_len, caps)
    assert torch.equal(beam_search(model, src, src_len, caps, 1), greedy)
    beam = model.generate(src, src_len, caps, beam_size=4, length_penalty=0.0)
    assert beam.shape == greedy.shape and (beam[torch.arange(9)[None].expand(5, -1) >= caps[:, None]] == PAD).all()
    if model.supports_state:  # the cached beam follows its hypotheses' states: same result as re-running
        assert torch.equal(beam, model.generate(src, src_len, caps, beam_size=4, length_penalty=0.0, cache=False))
    # batched: each row's result is what it gets alone
    for i in (0, 3):
        s = int(src_len[i])
        alone = model.generate(src[i : i + 1, :s], src_len[i : i + 1], caps[i : i + 1], beam_size=4,
                               length_penalty=0.0)
        assert alone[0].tolist() == beam[i, : alone.size(1)].tolist()


# ---------------------------------------------------------------- eval.* re-tests, never retrains
def test_changing_only_eval_beam_size_retrains_nothing(tmp_path, monkeypatch):
    from ablate import load_results
    from ablate.cli import main

    monkeypatch.chdir(tmp_path)
    exp = {"name": "beam", "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 64,
                                    "n_val": 16, "n_test": 32},
           "model": {"arch": "transformer", "d_model": 16, "n_layers": 1, "n_heads": 2, "d_ff": 32},
           "train": {"max_epochs": 2, "batch_size": 32}}
    path = tmp_path / "beam.yaml"
    path.write_text(yaml.safe_dump(exp))
    assert main(["run", str(path), "--runs-dir", "runs", "--no-report"]) == 0
    import ablate.train.fit as fit_module

    fits = []
    real_trainer = fit_module.pl.Trainer

    class Counting(real_trainer):
        def fit(self, *a, **kw):
            fits.append(1)
            return super().fit(*a, **kw)

    monkeypatch.setattr(fit_module.pl, "Trainer", Counting)
    assert main(["run", str(path), "--runs-dir", "runs", "--no-report", "eval.beam_size=3",
                 "eval.length_penalty=0.5"]) == 0
    assert fits == [], "a run differing only in eval.* must not train"
    df = load_results("runs/beam").set_index("eval.beam_size")
    assert sorted(df.index) == [1, 3]
    first, second = (json.loads((Path("runs/beam") / df.loc[b, "run_id"] / "result.json").read_text())
                     for b in (1, 3))
    assert second["reused_from"] == df.loc[1, "run_id"] and second["train_id"] == first["train_id"]
    assert second["steps"] == first["steps"] and second["best_val"] == first["best_val"]
    # eval s means validation + test for both: the re-test's own test beside its source's validation
    assert 0 < first["test_time_s"] < first["eval_time_s"] and second["test_time_s"] > 0
    assert second["eval_time_s"] == pytest.approx(first["eval_time_s"] - first["test_time_s"]
                                                  + second["test_time_s"])
    assert "test/seq_acc" in second["metrics"]
    # a change to what is trained does train
    assert main(["run", str(path), "--runs-dir", "runs", "--no-report", "train.lr=0.003"]) == 0
    assert fits == [1]


def test_a_body_without_reorder_gets_its_batch_first_state_indexed():
    from dataclasses import dataclass

    from ablate.models.seq_models import index_rows

    @dataclass
    class S:
        h: torch.Tensor
        parts: tuple
        t: int

    s = S(torch.arange(4)[:, None] * 1.0, (torch.arange(4), {"z": torch.arange(4) * 2}), 7)
    r = index_rows(s, torch.tensor([2, 2, 0]))
    assert r.h[:, 0].tolist() == [2, 2, 0] and r.parts[0].tolist() == [2, 2, 0]
    assert r.parts[1]["z"].tolist() == [4, 4, 0] and r.t == 7


def test_with_two_workers_a_beam_run_waits_for_its_greedy_twin_instead_of_training_a_copy(tmp_path):
    """Planned side by side (greedy then beam, per variant), two workers used to start both at once: the beam
    run found no finished twin and trained an identical copy (2 of 9 in translate). It now waits for it."""
    from ablate import load_results
    from ablate.cli import main

    exp = {"name": "twins", "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 64,
                                     "n_val": 16, "n_test": 32},
           "model": {"arch": "gru", "d_model": 16, "n_layers": 1}, "train": {"max_epochs": 2, "batch_size": 32},
           "variants": {"gru": {}, "lstm": {"model.arch": "lstm"}}, "grid": {"eval.beam_size": [1, 3]}}
    path = tmp_path / "twins.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    assert main(["run", str(path), "--runs-dir", str(tmp_path / "runs"), "--no-report", "--workers", "2"]) == 0
    results = {(r["variant"], r["eval.beam_size"]): json.loads((tmp_path / "runs/twins" / r["run_id"] / "result.json")
                                                               .read_text())
               for _, r in load_results(tmp_path / "runs/twins").iterrows()}
    for variant in ("gru", "lstm"):
        greedy, beam = results[(variant, 1)], results[(variant, 3)]
        assert "reused_from" not in greedy
        assert beam.get("reused_from") == greedy["run_id"], f"{variant}: the beam run trained its own copy"
