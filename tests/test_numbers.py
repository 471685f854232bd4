"""Numbers that must not depend on how they were measured: the evaluation batch, label smoothing, BLEU's setup.

- decoding caps come from the task (its declared longest target, or ratio * source length + margin), one per
  example, so predictions and every metric are the same at any eval_batch_size;
- val/test loss is the NLL summed over the split's target tokens over their count, without the smoothing term;
- BLEU and chrF are sacreBLEU's, on detokenized text, with the signature recorded;
- result.json records the longest source and target of the training split.
"""

from __future__ import annotations

import json
import logging

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ablate.config import TrainConfig, build_run
from ablate.tasks import DecodeLimit
from ablate.tasks.vocab import Vocab
from ablate.train.data import TaskDataModule
from ablate.train.decoding import decode_caps
from ablate.train.module import SeqModule
from ablate.train.sizing import info_of

pytestmark = pytest.mark.usefixtures("torch_one_thread")

ARCHS = ["mlp", "cnn", "gru", "lstm", "seq2seq", "seq2seq_attention", "transformer"]
TRANSLATE = {"min_len": 5, "max_len": 9, "n_train": 48, "n_val": 8, "n_test": 23}


def quick_train(model, data, steps: int = 30, lr: float = 3e-3):
    """A few full-batch Adam steps, so some hypotheses end in <eos> and others run on to their cap."""
    from ablate.train.data import make_batch

    b = make_batch(data.train, torch.arange(len(data.train)))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = F.cross_entropy(model(b["src"], b["src_len"], b["tgt_in"]).flatten(0, 1), b["tgt"].flatten(),
                               ignore_index=Vocab.pad)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def evaluate(model, data, eval_batch_size: int, label_smoothing: float = 0.0):
    """(test metrics, predicted token rows without padding) of one Lightning test epoch."""
    preds: list[list[int]] = []
    generate = model.generate

    def recording(src, src_len, max_len):
        out = generate(src, src_len, max_len)
        preds.extend([t for t in row if t != Vocab.pad] for row in out.tolist())
        return out

    model.generate = recording
    try:
        cfg = TrainConfig(label_smoothing=label_smoothing)
        module = SeqModule(model, cfg, data.vocab, data.kind, data.metrics,
                           decode_caps=decode_caps(data, info_of(data).max_tgt_len))
        trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)
        metrics = trainer.test(module, datamodule=TaskDataModule(data, 16, eval_batch_size), verbose=False)[0]
    finally:
        del model.generate
    return metrics, preds


# ---------------------------------------------------------------- decoding caps


def test_generate_stops_each_row_at_its_own_cap_whatever_shares_its_batch(tiny_task, tiny_model):
    """Every preset: a row decoded in a batch equals the row decoded alone, and never passes its own cap."""
    data = tiny_task("translate")
    split = data.test
    caps = torch.tensor([3, 9, 1, 14, 6, 11, 2, 5])[: len(split)].clamp(max=info_of(data).max_tgt_len)
    for arch in ARCHS:
        model = tiny_model(arch, data, seed=1)
        out = model.generate(split.src, split.src_len, caps)
        assert out.shape == (len(split), int(caps.max())), arch
        for i in range(len(split)):
            n, cap = int(split.src_len[i]), int(caps[i])
            alone = model.generate(split.src[i : i + 1, :n], split.src_len[i : i + 1], cap)[0]
            assert alone.shape == (cap,) and torch.equal(out[i, :cap], alone), (arch, i)
            assert (out[i, cap:] == Vocab.pad).all(), (arch, i)


def test_tasks_declare_caps_from_their_options_not_from_the_references(tiny_task):
    rev = tiny_task("reverse", min_len=2, max_len=5, test_min_len=6, test_max_len=7)
    assert rev.decode == DecodeLimit(max_len=8)  # the longest target any option allows, + <eos>
    assert tiny_task("recall", n_queries=2).decode == DecodeLimit(max_len=3)
    assert tiny_task("listops").decode == DecodeLimit(max_len=1)
    tr = tiny_task("translate")
    caps = tr.decode_caps(torch.tensor([5, 9, 30]))
    assert caps.tolist() == [13, 19, 50]  # ceil(1.5 * source length + 5)
    for split in tr.splits.values():  # the grammar's targets never need more
        assert (split.tgt_len <= tr.decode_caps(split.src_len)).all()


@pytest.mark.parametrize("arch,steps", [("transformer", 0), ("transformer", 30), ("lstm", 0), ("lstm", 60)])
def test_metrics_do_not_depend_on_the_eval_batch_size(arch, steps, tiny_task, tiny_model):
    """Same checkpoint at eval_batch_size 1, 7, 256: identical predictions, accuracies, BLEU, chrF; loss to 1e-5.

    Untrained, hypotheses run on to their caps (no <eos>); trained a little, they end in <eos>.
    """
    data = tiny_task("translate", **TRANSLATE)
    # Untied: 30 steps then end every hypothesis in <eos>; tied embeddings (the Transformer's default) learn this
    # tiny translate more slowly (loss 3.26 against 2.30 after 30 steps) and leave some running to their caps.
    untied = {"tie_embeddings": False} if arch == "transformer" else {}
    model = quick_train(tiny_model(arch, data, seed=0, **untied), data, steps=steps)
    runs = {bs: evaluate(model, data, bs) for bs in (1, 7, 256)}
    m1, p1 = runs[1]
    ended = sum(bool(p) and p[-1] == Vocab.eos for p in p1)
    assert ended == len(p1) if steps else ended < len(p1) / 2
    for bs in (7, 256):
        m, p = runs[bs]
        assert p == p1, bs
        for k in ("test/token_acc", "test/seq_acc", "test/bleu", "test/chrf"):
            assert m[k] == m1[k], (bs, k)
        assert m["test/loss"] == pytest.approx(m1["test/loss"], rel=1e-5), bs


def test_loss_is_nll_per_target_token_over_the_split_without_smoothing(tiny_task, tiny_model):
    data = tiny_task("translate", **TRANSLATE)
    model = quick_train(tiny_model("gru", data, seed=0), data, steps=10)
    with torch.no_grad():
        s = data.test
        T = int(s.tgt_len.max())
        tgt_in = torch.cat([torch.full((len(s), 1), Vocab.bos), s.tgt[:, : T - 1]], 1)
        logits = model(s.src[:, : int(s.src_len.max())], s.src_len, tgt_in)
        nll = F.cross_entropy(logits.flatten(0, 1), s.tgt[:, :T].flatten(), ignore_index=Vocab.pad, reduction="sum")
        expected = float(nll / (s.tgt[:, :T] != Vocab.pad).sum())
    plain, _ = evaluate(model, data, 7)
    smoothed, _ = evaluate(model, data, 7, label_smoothing=0.3)
    assert plain["test/loss"] == pytest.approx(expected, rel=1e-5)
    assert smoothed["test/loss"] == pytest.approx(expected, rel=1e-5)  # the smoothing term is not reported


# ---------------------------------------------------------------- BLEU and chrF


HYPS = ["The cat sat on the mat.", "A dog, barking loudly, ran away!", "Hello world", "it's (not) fine."]
REFS = ["The cat sat on a mat.", "The dog, barking loudly, ran off!", "Hello, world", "it's not fine."]


def test_bleu_and_chrf_are_sacrebleu_on_the_detokenized_text():
    import sacrebleu

    from ablate.tasks.textmetrics import text_metrics

    hyps, refs = [h.split() for h in HYPS], [r.split() for r in REFS]
    m = text_metrics()
    assert m["bleu"](hyps, refs) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score, abs=1e-9)
    assert m["chrf"](hyps, refs) == pytest.approx(sacrebleu.corpus_chrf(HYPS, [REFS]).score, abs=1e-9)
    assert "tok:13a" in m["bleu"].signature and m["bleu"].signature.startswith("nrefs:1|")
    none = text_metrics("none")
    as_is = sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="none").score
    assert none["bleu"](hyps, refs) == pytest.approx(as_is, abs=1e-9)
    assert as_is != pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score)  # the tokenizer matters here
    assert "tok:none" in none["bleu"].signature


def test_char_tokens_are_scored_as_text():
    from ablate.tasks.textmetrics import text_metrics
    from ablate.tasks.tsv import detokenize, tokenize

    m = text_metrics(detokenize=lambda t: detokenize(t, "char"))
    import sacrebleu

    chars = [tokenize(x, "char") for x in HYPS], [tokenize(x, "char") for x in REFS]
    assert m["bleu"](*chars) == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS]).score, abs=1e-9)


def test_sacrebleu_warnings_stay_off_the_terminal(caplog, capfd):
    from ablate.tasks.textmetrics import text_metrics

    lines = [["a", "b", "c", "."] for _ in range(120)]  # sacreBLEU warns about lines ending in a tokenized period
    text_metrics()["bleu"](lines, lines)
    assert not [r for r in caplog.records if r.name.startswith("sacrebleu")]
    assert capfd.readouterr().err == ""
    assert logging.getLogger("sacrebleu").getEffectiveLevel() >= logging.ERROR


def test_tokenize_option_is_checked(tiny_task):
    with pytest.raises(ValueError, match="tokenize='moses'.*valid: 13a, none"):
        tiny_task("translate", tokenize="moses")


# ---------------------------------------------------------------- what a run records


def test_result_records_training_lengths_signature_and_the_best_checkpoint_by_plain_nll(tmp_path):
    from ablate.models import build_model
    from ablate.tasks import build_task
    from ablate.train.fit import fit

    tree = {"task": {"name": "translate", **TRANSLATE, "max_len": 7},
            "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
            "train": {"max_epochs": 3, "batch_size": 16, "label_smoothing": 0.3, "lr": 3e-3}}
    cfg, _ = build_run(tree, seed=0, where="test")
    res = fit(cfg, tmp_path)
    data = build_task(cfg.task)
    assert res["max_train_src_len"] == int(data.train.src_len.max()) == 7
    assert res["max_train_tgt_len"] == int(data.train.tgt_len.max())
    assert "tok:13a" in res["bleu_signature"] and "chrf_signature" in res
    # The checkpoint kept as best has the lowest plain val NLL, and best_val is that number (no smoothing term).
    model = build_model(cfg.model, info_of(data))
    state = torch.load(tmp_path / res["checkpoint"]["path"], map_location="cpu", weights_only=True)["state_dict"]
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    val_data = type(data)(data.vocab, data.val, data.val, data.val, metrics=data.metrics, decode=data.decode)
    val, _ = evaluate(model.eval(), val_data, 7)
    assert res["best_val"]["val/loss"] == pytest.approx(val["test/loss"], rel=1e-5)
    import pandas as pd

    logged = pd.read_csv(tmp_path / "metrics.csv")["val/loss"].dropna()
    assert len(logged) == 3 and res["best_val"]["val/loss"] == pytest.approx(logged.min(), rel=1e-6)
    assert json.dumps(res)  # everything recorded is JSON


def test_table_footnote_names_the_bleu_signature():
    import pandas as pd

    from ablate.report.tables import latex_escape, summarize, to_latex, to_markdown

    sig = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    df = pd.DataFrame([dict(run_id=f"r{i}", variant="base", label="base", seed=i, status="finished",
                            bleu_signature=sig, **{"test/bleu": 30.0 + i, "test/chrf": 50.0}) for i in range(2)])
    s = summarize(df, "test/bleu")
    assert sig in to_markdown(s) and latex_escape(sig) in to_latex(s) and "chrF" in to_markdown(s)


def test_result_records_the_longest_training_lengths_not_the_test_ones(tmp_path):
    from ablate.train.fit import fit

    tree = {"task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "test_min_len": 6,
                     "test_max_len": 7, "n_train": 16, "n_val": 4, "n_test": 4},
            "model": {"arch": "gru", "d_model": 16, "n_layers": 1}, "train": {"max_steps": 1, "batch_size": 16}}
    cfg, _ = build_run(tree, seed=0, where="test")
    res = fit(cfg, tmp_path)
    assert (res["max_train_src_len"], res["max_train_tgt_len"]) == (4, 5)  # the target's <eos> included
