"""Tests written for the survivors of `make mutate` in ablate/models and ablate/tasks (issue 21).

Each one was seen to fail with its mutant applied by hand and to pass without it; docs/testing.md lists the
mutants by name. Tiny sizes throughout: every test runs in well under a second.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def lstm_params(n_in: int, hidden: int) -> int:
    """One direction of one nn.LSTM layer, counted by hand: 4 gates of W_ih, W_hh and two biases."""
    return 4 * (hidden * n_in + hidden * hidden + 2 * hidden)


def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


# ---------------------------------------------------------------- ALiBi on the model's device
def test_alibi_bias_is_made_on_the_device_it_is_asked_for():
    """A model on an accelerator gets its ALiBi bias there: key positions and slopes too (the meta device stands
    in for a GPU here; a CPU tensor anywhere would fail or come back on the CPU)."""
    from ablate.models.alibi import ALiBi, SymmetricALiBi

    meta = torch.device("meta")
    for kind in (ALiBi, SymmetricALiBi):
        bias = kind(8).score_bias(torch.arange(2, 4), 4, 2, meta)
        assert bias.device == meta and tuple(bias.shape) == (2, 2, 4)
    # and on the CPU the numbers are the paper's: head slopes 1/16 and 1/256 for 2 heads, mirror to the right
    bias = ALiBi(8).score_bias(torch.arange(2, 4), 4, 2, torch.device("cpu"))
    expected_h0 = torch.tensor([[-2 / 16, -1 / 16, 0.0, -1 / 256], [-3 / 16, -2 / 16, -1 / 16, 0.0]])
    torch.testing.assert_close(bias[0], expected_h0)


def test_score_bias_at_reads_queries_past_the_last_key():
    """score_bias_at(q_pos, Lk, ...) gives the bias of queries at absolute positions over keys 0..Lk-1, also for a
    query further along than the last key (the KV cache always has more keys; a caller of the hook need not)."""
    from ablate.models.alibi import ALiBi

    bias = ALiBi(8).score_bias_at(torch.tensor([[4, 1]]), 3, 2, torch.device("cpu"))
    assert tuple(bias.shape) == (1, 2, 2, 3)
    # head 0 (slope 1/16): query 4 is 4, 3, 2 to the right of keys 0, 1, 2; query 1 sees key 2 one to its right,
    # penalised with the mirror slope 1/256
    expected = torch.tensor([[-4 / 16, -3 / 16, -2 / 16], [-1 / 16, 0.0, -1 / 256]])
    torch.testing.assert_close(bias[0, 0], expected)


# ---------------------------------------------------------------- configs: automatic values
def test_seq2seq_multihead_attention_defaults_to_one_head_of_d_model():
    from ablate.models.config import Seq2SeqAttentionConfig

    cfg, _ = Seq2SeqAttentionConfig(d_model=8, attention="multihead").derive()
    assert (cfg.n_heads, cfg.d_k, cfg.d_v) == (1, 8, 8)


def test_ssm_dt_rank_is_ceil_d_model_over_16_and_follows_the_width_only_when_automatic():
    from ablate.models.ssm import SSMConfig

    auto, _ = SSMConfig(d_model=17).derive()
    assert auto.dt_rank == 2  # ceil(17 / 16)
    assert SSMConfig(d_model=33).derive()[0].dt_rank == 3
    # a derived (automatic) rank follows a new width; so does an unset one
    assert auto.with_width(64).dt_rank == 4
    assert auto.with_width(33).dt_rank == 3
    assert SSMConfig(d_model=32).with_width(64).dt_rank == 4
    # a rank set by hand stays
    assert SSMConfig(d_model=32, dt_rank=5).with_width(64).dt_rank == 5


# ---------------------------------------------------------------- seq2seq_attention: what the config asks for is built
def info(v: int = 10, src: int = 5, tgt: int = 5):
    from ablate.models.seq_models import TaskInfo

    return TaskInfo(src_vocab_size=v, tgt_vocab_size=v, max_src_len=src, max_tgt_len=tgt)


def build(**model):
    from ablate.models import build_model
    from ablate.models.config import Seq2SeqAttentionConfig

    torch.manual_seed(0)
    return build_model(Seq2SeqAttentionConfig(d_model=8, n_layers=1, dropout=0.0, **model), info()).eval()


def test_bidirectional_attention_encoder_projects_both_directions_back_to_d_model():
    """Hand count: a bidirectional LSTM (2 x 576), the final-state projection and the memory projection
    (2D -> D each); without the memory projection the memory would be the untrained mean of both directions."""
    model = build(bidirectional=True, attention="dot")
    assert n_params(model.encoder) == 2 * lstm_params(8, 8) + 2 * linear_params(16, 8) == 1424


def test_bahdanau_style_decoder_reads_token_and_context():
    """Bahdanau: the RNN reads [token; context] (16 wide) and the deep output combines [s; c; y] (24 wide);
    dot attention has no parameters."""
    model = build(attention="dot", attention_style="bahdanau")
    assert n_params(model.decoder) == lstm_params(16, 8) + linear_params(24, 8) == 1032
    luong = build(attention="dot", attention_style="luong")
    assert n_params(luong.decoder) == lstm_params(8, 8) + linear_params(16, 8) == 712


def test_multihead_d_k_and_d_v_given_by_hand_size_the_attention():
    """n_heads 2, d_k 2, d_v 4: [q | k | v] = 4 + 4 + 8 outputs from d_model 8, then 8 -> 8."""
    model = build(attention="multihead", n_heads=2, d_k=2, d_v=4)
    assert n_params(model.decoder.attn) == linear_params(8, 16) + linear_params(8, 8) == 216


def test_seq2seq_linear_attention_is_one_head():
    """n_heads applies to multihead only (derive sets it to None elsewhere): linear attention in seq2seq_attention
    is one head over all of d_model, the same as a one-head LinearAttention with its weights."""
    from ablate.models.linear_attention import LinearAttention

    attn = build(attention="linear").decoder.attn
    ref = LinearAttention(8, n_heads=1)
    ref.load_state_dict(attn.state_dict())
    q, m = torch.randn(2, 3, 8), torch.randn(2, 4, 8)
    torch.testing.assert_close(attn(q, m)[0], ref.eval()(q, m)[0])


# ---------------------------------------------------------------- linear attention
def test_linear_attention_causal_weights_see_only_earlier_keys():
    """need_weights returns the implied weights phi(q) phi(k)^T over the keys a query may see, normalised; for a
    causal call those are the keys j <= i (checked against a plain computation)."""
    from ablate.models.linear_attention import LinearAttention

    torch.manual_seed(0)
    att = LinearAttention(8, n_heads=2).eval()
    x = torch.randn(1, 4, 8)
    _, w = att(x, causal=True, need_weights=True)
    q, k, _ = att.qkv(x).split([8, 8, 8], dim=-1)
    fq = F.elu(q.view(1, 4, 2, 4).transpose(1, 2)) + 1
    fk = F.elu(k.view(1, 4, 2, 4).transpose(1, 2)) + 1
    raw = (fq @ fk.transpose(-2, -1)) * torch.ones(4, 4).tril()
    torch.testing.assert_close(w, raw / raw.sum(-1, keepdim=True), atol=1e-5, rtol=1e-4)
    assert (w.triu(1) == 0).all()


def test_linear_attention_cached_state_follows_reordered_beams():
    """Beam search reorders the decoding state (select_self): a step after reordering equals the causal forward
    over the reordered sequences."""
    from ablate.models.linear_attention import LinearAttention

    torch.manual_seed(0)
    att = LinearAttention(8, n_heads=2).eval()
    x = torch.randn(3, 3, 8)
    with torch.no_grad():
        _, cache = att.self_step(x[:, :2], None, torch.tensor([[0, 1]] * 3))
        idx = torch.tensor([2, 0, 0])
        y, _ = att.self_step(x[idx, 2:], att.select_self(cache, idx), torch.tensor([[2]] * 3))
        full, _ = att(x[idx], causal=True)
    torch.testing.assert_close(y[:, 0], full[:, 2], atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- CNN decoder with cross-attention
def test_cnn_decoder_with_cross_attention_decodes_step_by_step_as_its_forward():
    """Teacher-forced forward and cached step-by-step decoding give one output: the cross-attention is added
    to the convolution's output in both."""
    from ablate.models.decoders import CNNDecoder
    from ablate.models.encoders import EncoderOutput

    torch.manual_seed(0)
    dec = CNNDecoder(8, 2, 3, 0.0, n_heads=2, cross_attention=True).eval()
    x, mem = torch.randn(2, 4, 8), torch.randn(2, 5, 8)
    pad = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    memory = EncoderOutput(mem, pad)
    with torch.no_grad():
        full = dec(x, memory).y
        state, steps = dec.start(memory), []
        for t in range(4):
            out = dec(x[:, t : t + 1], memory, state)
            steps.append(out.y)
            state = out.state
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- the MLP encoder and model
def test_mlp_encoder_memory_can_be_attended_to():
    """Its memory has no padding; its pad mask is a boolean one an attention reads (all keys allowed)."""
    from ablate.models.attention import MultiHeadAttention
    from ablate.models.encoders import MLPEncoder

    torch.manual_seed(0)
    enc = MLPEncoder(8, 16, 1, 0.0, in_len=4, out_len=3).eval()
    x = torch.randn(2, 4, 8)
    out = enc(x, torch.tensor([[False] * 4, [False, False, True, True]]))
    att = MultiHeadAttention(8, 2).eval()
    q = torch.randn(2, 2, 8)
    torch.testing.assert_close(att(q, out.memory, out.pad)[0], att(q, out.memory, None)[0])


def test_mlp_model_says_pad_past_the_positions_it_was_built_for():
    from ablate.models.seq_models import PAD, MLPModel

    torch.manual_seed(0)
    model = MLPModel(info(v=6, src=4, tgt=3), 8, 16, 1, 0.0).eval()
    src, src_len = torch.tensor([[5, 4, 3, 0]]), torch.tensor([3])
    ctx = model.prepare(src, src_len)
    logits, t = model.step(ctx, torch.tensor([[1, 2, 3, 4]]), 3)
    assert t == 4 and tuple(logits.shape) == (1, 1, 6)
    expected = torch.full((6,), float("-inf"))
    expected[PAD] = 0.0
    assert torch.equal(logits[0, 0], expected)


# ---------------------------------------------------------------- the SSM layers
def test_ssm_stack_has_no_dropout_unless_asked():
    """SSMStack's default dropout is 0: in training mode it computes what it computes in eval mode."""
    from ablate.models.ssm_layers import SSMStack

    torch.manual_seed(0)
    stack = SSMStack(8, 1, d_state=4)
    x = torch.randn(2, 3, 8)
    with torch.no_grad():
        train = stack.train()(x).y
        ev = stack.eval()(x).y
    torch.testing.assert_close(train, ev)


def test_ssm_block_step_sizes_start_log_uniform_in_dt_min_dt_max():
    """Mamba's initialisation: softplus(dt bias) = the initial step size, in [1e-3, 1e-1] by default."""
    from ablate.models.ssm_layers import SelectiveSSMBlock

    torch.manual_seed(0)
    block = SelectiveSSMBlock(8, 4, 2, 4, 1, 0.0)
    dt = F.softplus(block.dt_proj.bias.detach())
    assert dt.min() >= 1e-3 * (1 - 1e-4) and dt.max() <= 1e-1 * (1 + 1e-4)
    logs = torch.log10(dt)
    assert logs.min() < -2 and logs.max() > -2  # spread over both decades, not bunched at one end


# ---------------------------------------------------------------- tasks
def test_string_task_draws_lengths_in_range_and_decodes_as_long_as_the_longest_input():
    """_string_task builds copy/reverse/...: sources of min_len..max_len symbols, targets their transform, and a
    decoding cap of the longest possible target + <eos> (the test lengths' when those are longer)."""
    from ablate.tasks.synthetic import SeqTaskConfig, _string_task

    build = _string_task(lambda s: s[::-1])
    cfg = SeqTaskConfig(name="reverse", vocab_size=6, min_len=2, max_len=4, n_train=20, n_val=5, n_test=5)
    data = build(cfg)
    assert data.decode.max_len == 5
    lengths = set()
    for split in (data.train, data.val, data.test):
        for i in range(len(split.src_len)):
            n = int(split.src_len[i])
            src, tgt = split.src[i, :n].tolist(), split.tgt[i, : int(split.tgt_len[i])].tolist()
            lengths.add(n)
            assert tgt[:-1] == src[::-1]  # the target is the reversed source, then <eos>
    assert lengths == {2, 3, 4}
    longer = build(SeqTaskConfig(name="reverse", vocab_size=6, min_len=2, max_len=4, test_min_len=6,
                                 test_max_len=7, n_train=20, n_val=5, n_test=5))
    assert longer.decode.max_len == 8


def test_tsv_refuses_a_negative_decode_margin_at_check():
    from ablate.tasks.base import TASKS
    from ablate.tasks.tsv import TsvConfig

    check = TASKS.meta("tsv")["check"]
    with pytest.raises(ValueError, match="decode_margin=-1 must be >= 0"):
        check(TsvConfig(path="does-not-matter.tsv", decode_margin=-1))


@pytest.mark.parametrize("shared, where", [(True, "for the training split (one per"),
                                           (False, "for the training split's target side (one per")])
def test_too_few_pieces_names_the_side_that_needs_them(tmp_path, shared, where):
    from ablate.tasks.tsv import TsvConfig, VocabConfig, _check_pieces

    train = [("ab", "abcdefghij")] * 3
    cfg = TsvConfig(path=str(tmp_path / "x.tsv"), tokens="bpe", vocab_size=8, vocab=VocabConfig(shared=shared))
    with pytest.raises(ValueError, match=where.replace("(", r"\(")) as err:
        _check_pieces(cfg, train)
    assert "below the 12 pieces" in str(err.value)  # a-j, the visible space and <unk>


def test_sentencepiece_training_prints_nothing(tmp_path, capfd):
    from ablate.tasks.subwords import _train

    proto = _train(["the cat sat on the mat", "a dog ran"] * 5, {"model_type": "bpe", "vocab_size": 30})
    assert proto
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)




# ---------------------------------------------------------------- mutants the hour-long run did not reach
def test_finished_rows_are_padded_after_their_first_eos_and_from_their_cap():
    from ablate.models.caps import finish, pad_to_caps
    from ablate.tasks.vocab import Vocab

    P, E = Vocab.pad, Vocab.eos
    tokens = torch.tensor([[5, E, 6, E, 7], [5, 6, 7, 8, 9], [E, 5, 6, 7, 8]])
    assert finish(tokens).tolist() == [[5, E, P, P, P], [5, 6, 7, 8, 9], [E, P, P, P, P]]
    caps = torch.tensor([7, 3, 7])
    assert pad_to_caps(tokens, caps, 7).tolist() == [[5, E, P, P, P, P, P], [5, 6, 7, P, P, P, P],
                                                       [E, P, P, P, P, P, P]]
    # on the decoding device (meta stands in for a GPU)
    assert pad_to_caps(tokens.to("meta"), caps.to("meta"), 7).device.type == "meta"


def test_cpu_dropout_is_the_documented_mask_of_the_seed():
    """On CPU: one int64 draw for four elements, each a 16-bit lane cut to 15 bits, kept (and scaled by
    2^15 / (2^15 - round(p·2^15))) where >= round(p·2^15): the same numbers as a plain torch computation from the
    same seed; eval mode and p = 0 return the input; p = 1 zeros it."""
    from ablate.models.dropout import Dropout, dropout

    x = torch.arange(1.0, 13.0).view(3, 4)
    torch.manual_seed(3)
    y = dropout(x, 0.25, True)
    torch.manual_seed(3)
    lanes = torch.empty(3, dtype=torch.int64).random_().view(torch.int16)  # 12 lanes, little-endian
    expected = x * ((lanes & 0x7FFF) >= 8192).float().view(3, 4) / 0.75  # 0.25 · 2^15 = 8192 exactly
    torch.testing.assert_close(y, expected)
    assert 0 < int((y == 0).sum()) < 12
    assert dropout(x, 0.25, False) is x and dropout(x, 0.0, True) is x
    assert torch.equal(dropout(x, 1.0, True), torch.zeros(3, 4))
    # bfloat16 stays bfloat16
    torch.manual_seed(3)
    yb = dropout(x.bfloat16(), 0.25, True)
    assert yb.dtype == torch.bfloat16
    torch.testing.assert_close(yb.float(), expected, atol=0.1, rtol=0.02)
    # the module: its own p, and only in training mode
    layer = Dropout(0.25)
    torch.manual_seed(3)
    torch.testing.assert_close(layer.train()(x), expected)
    assert torch.equal(layer.eval()(x), x)


def test_rnn_decoder_state_from_a_shallower_encoder_repeats_its_top_layer():
    """A 3-layer decoder after a 2-layer encoder starts from [top, layer 0, layer 1] (h and c alike)."""
    from ablate.models.decoders import RNNDecoder
    from ablate.models.encoders import EncoderOutput

    dec = RNNDecoder("lstm", 4, 3, 0.0)
    h, c = torch.randn(2, 1, 4), torch.randn(2, 1, 4)
    enc = EncoderOutput(torch.randn(1, 3, 4), torch.zeros(1, 3, dtype=torch.bool), (h, c))
    sh, sc = dec.init_state(enc)
    torch.testing.assert_close(sh, torch.stack([h[1], h[0], h[1]]))
    torch.testing.assert_close(sc, torch.stack([c[1], c[0], c[1]]))
    gru = RNNDecoder("gru", 4, 3, 0.0).init_state(EncoderOutput(enc.memory, enc.pad, h))
    torch.testing.assert_close(gru, torch.stack([h[1], h[0], h[1]]))


def test_transformer_decoder_self_attention_gets_the_dropout():
    from ablate.models.decoders import TransformerDecoderLayer

    layer = TransformerDecoderLayer(8, 2, 4, 4, 16, 0.3)
    assert layer.self_attn.dropout == 0.3 and layer.cross_attn.dropout == 0.3


def test_sinusoidal_table_is_the_papers():
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""
    from ablate.models.positional import Sinusoidal

    pe = Sinusoidal(4, max_len=4001).pe
    for pos in (3, 4000):  # far along, a wrong base (10001) moves the slow pair by 1e-3
        expected = torch.tensor([math.sin(pos), math.cos(pos), math.sin(pos / 100.0), math.cos(pos / 100.0)])
        torch.testing.assert_close(pe[pos], expected, atol=2e-4, rtol=0)


def test_vocab_encodes_decodes_and_saves(tmp_path):
    from ablate.tasks.vocab import Vocab

    v = Vocab(["b", "a", "<eos>", "b"])
    assert v.itos == ["<pad>", "<bos>", "<eos>", "<sep>", "<unk>", "b", "a"]
    assert v.encode(["a", "b"]) == [6, 5]
    assert v.encode(["a", "zz"], strict=False) == [6, 4]
    with pytest.raises(KeyError, match="zz"):
        v.encode(["a", "zz"])
    assert v.decode([1, 6, 0, 5, 2, 6]) == ["a", "b"]
    assert v.decode([1, 6, 2, 5], strip=False) == ["<bos>", "a", "<eos>", "b"]
    v.save(tmp_path / "vocab.json")
    assert Vocab.load(tmp_path / "vocab.json").itos == v.itos


def test_flop_count_of_a_component_with_its_own_formula():
    """count_forward replaces what torch's counter sees of a component by the component's own count: linear
    attention, 2 heads of 4 over 4 positions of d_model 8, by hand: projections 512 + 1024 + 512, per head
    phi(k)^T v 128, phi(q) S 128, key sum 16, normaliser 32, division 16."""
    from ablate.models.flops import count_forward
    from ablate.models.linear_attention import LinearAttention

    att = LinearAttention(8, n_heads=2).eval()
    x = torch.randn(1, 4, 8)
    count = count_forward(att, lambda: att(x))
    assert count.stated == 2048 + 2 * (128 + 128 + 16 + 32 + 16) == 2688
    # a torch module the counter misses, counted by ablate's formula: an Elman RNN 8 -> 8 over 3 steps does per step
    # the input and hidden matmuls (2 x 2·8·8) and their sum (8)
    rnn = torch.nn.RNN(8, 8, batch_first=True)
    assert count_forward(rnn, lambda: rnn(torch.randn(1, 3, 8))).stated == 3 * (128 + 128 + 8) == 792


def test_model_config_checks_keys_of_other_archs_and_defaults_an_empty_section():
    from ablate.errors import ConfigErrors
    from ablate.models.config import DEFAULT_ARCH, config_class, model_config
    from ablate.models.ssm import SSMConfig

    with pytest.raises(ConfigErrors) as err:
        model_config({"arch": "lstm", "d_ff": 0})  # d_ff belongs to other archs: ignored, but still checked
    assert [(e.key, e.value) for e in err.value.errors] == [("model.d_ff", 0)]
    assert model_config(None)[0].arch == DEFAULT_ARCH
    assert config_class("ssm") is SSMConfig


def test_heads_that_do_not_divide_d_model_are_refused_with_the_valid_counts():
    from ablate.models.config import TransformerConfig

    assert TransformerConfig(d_model=8, n_heads=3).check() == [
        ("n_heads", 3, "d_model=8 is not divisible by n_heads=3 (valid n_heads: 1, 2, 4, 8; or set model.d_k and "
                       "model.d_v)")]
    cfg, _ = TransformerConfig(d_model=8, n_heads=2).derive()
    assert (cfg.d_k, cfg.d_v, cfg.d_ff) == (4, 4, 32)


def test_single_stack_ties_its_output_to_its_input_embedding():
    from ablate.models import build_model
    from ablate.models.config import RecurrentConfig

    model = build_model(RecurrentConfig(arch="gru", d_model=8, n_layers=1, tie_embeddings=True), info())
    assert model.head.weight is model.tgt_embed.weight


def test_synthetic_checks_lengths_and_recall_vocabulary():
    from ablate.tasks.synthetic import RecallConfig, SeqTaskConfig, _check

    _check(SeqTaskConfig(name="copy", vocab_size=6, min_len=2, max_len=4, test_min_len=5, test_max_len=6))
    with pytest.raises(ValueError, match="min_len=5 must be <= max_len=4"):
        _check(SeqTaskConfig(name="copy", min_len=5, max_len=4))
    with pytest.raises(ValueError, match="test_min_len=7 must be <= test_max_len=6"):
        _check(SeqTaskConfig(name="copy", test_min_len=7, test_max_len=6))
    _check(RecallConfig(name="recall", vocab_size=12, min_len=2, max_len=4, test_max_len=6))
    with pytest.raises(ValueError, match="max_len=7 key-value pairs need vocab_size >= 14"):
        _check(RecallConfig(name="recall", vocab_size=12, min_len=2, max_len=4, test_max_len=7))


@pytest.mark.parametrize("arch", ["gru", "transformer"])
def test_cached_greedy_decoding_equals_rerunning_the_prefix(arch):
    """The step path (state kept) and the re-run path (whole prefix each step) decode the same tokens, and the
    teacher-forced logits of those tokens pick them again."""
    from ablate.models import build_model
    from ablate.models.config import RecurrentConfig, TransformerConfig

    cfg = (RecurrentConfig(arch="gru", d_model=8, n_layers=1, dropout=0.0) if arch == "gru" else
           TransformerConfig(d_model=8, n_heads=2, n_layers=1, dropout=0.0))
    torch.manual_seed(1)
    model = build_model(cfg, info(v=9, src=4, tgt=5)).eval()
    src, src_len = torch.tensor([[5, 6, 7, 8], [6, 5, 0, 0]]), torch.tensor([4, 2])
    with torch.no_grad():
        cached = model.generate(src, src_len, 5)
        rerun = model.generate(src, src_len, 5, cache=False)
        assert torch.equal(cached, rerun)
        tgt_in = torch.cat([torch.ones(2, 1, dtype=torch.long), cached[:, :-1]], 1)  # <bos> + the decoded tokens
        forced = model(src, src_len, tgt_in).argmax(-1)
    first = cached[:, 0]
    assert torch.equal(forced[:, 0], first)


def test_rows_are_padded_with_the_vocabularys_pad_id_not_a_literal_zero(monkeypatch):
    """Today <pad> is id 0, so padding with 0 would pass unnoticed; with another <pad> id (patched here, as a
    reordered Vocab would have it) every padded place must hold that id."""
    from ablate.models import caps

    monkeypatch.setattr(caps, "PAD", 9)
    out = caps.pad_to_caps(torch.tensor([[5, 6], [7, caps.EOS]]), torch.tensor([4, 4]), 5)
    assert out.tolist() == [[5, 6, 9, 9, 9], [7, caps.EOS, 9, 9, 9]]
