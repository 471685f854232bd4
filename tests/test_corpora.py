"""Real corpora: tsv split files (plain, .gz), separate vocabularies with <unk>, subwords and their cache,
validation BLEU, progress lines, sample outputs in the report, and bad files that exit 2 with nothing written."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pytest
import torch

from ablate.cli import main
from ablate.tasks import build_task
from ablate.tasks import subwords as sw
from ablate.tasks.tsv import TsvConfig, VocabConfig
from ablate.tasks.vocab import Vocab

WORDS_SRC = [f"s{i}" for i in range(12)]


def pairs(n: int, offset: int = 0) -> list[str]:
    """source words -> target words t<i>, reversed: a learnable, deterministic toy pair."""
    import random

    out = []
    for k in range(offset, offset + n):  # the first two words make every line of one call distinct
        src = [WORDS_SRC[k % 12], WORDS_SRC[k // 12 % 12]] + random.Random(k).choices(WORDS_SRC, k=k % 4)
        out.append(" ".join(src) + "\t" + " ".join("t" + w[1:] for w in reversed(src)))
    return out


def write(path: Path, lines: list[str], gz: bool = False) -> str:
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def texts(split) -> list[tuple[str, str]]:
    return list(zip(split.src_text, split.tgt_text))


# ---------------------------------------------------------------- split files
def test_split_files_are_used_as_given(tmp_path):
    train = write(tmp_path / "train.tsv", pairs(40))
    val = write(tmp_path / "val.tsv", pairs(5, 100))
    test = write(tmp_path / "test.tsv", pairs(7, 200))
    data = build_task(TsvConfig(train=train, val=val, test=test))
    assert (len(data.train), len(data.val), len(data.test)) == (40, 5, 7)
    assert [f"{s}\t{t}" for s, t in texts(data.val)] == pairs(5, 100)  # file order, nothing shuffled away
    assert [f"{s}\t{t}" for s, t in texts(data.test)] == pairs(7, 200)
    # no seed moves a line between fixed files
    again = build_task(TsvConfig(train=train, val=val, test=test, seed=5))
    assert texts(again.test) == texts(data.test) and sorted(texts(again.train)) == sorted(texts(data.train))


def test_missing_val_and_test_are_carved_from_train(tmp_path):
    train = write(tmp_path / "train.tsv", pairs(60))
    val = write(tmp_path / "val.tsv", pairs(5, 100))
    only_train = build_task(TsvConfig(train=train))
    assert len(only_train.train) + len(only_train.val) + len(only_train.test) == len(set(pairs(60)))
    assert len(only_train.val) > 0 and len(only_train.test) > 0
    with_val = build_task(TsvConfig(train=train, val=val, test_frac=0.2))
    assert [f"{s}\t{t}" for s, t in texts(with_val.val)] == pairs(5, 100)
    carved = {s for s, _ in texts(with_val.test)}
    assert carved and not carved & {s for s, _ in texts(with_val.train)}  # no source in both
    assert len(with_val.train) + len(with_val.test) == len(set(pairs(60)))
    # the old single `path` still splits one file by seed
    same = build_task(TsvConfig(path=train))
    assert texts(same.test) == texts(only_train.test)


def test_gz_files_read_like_plain_ones(tmp_path):
    plain = build_task(TsvConfig(train=write(tmp_path / "a.tsv", pairs(40)),
                                 test=write(tmp_path / "b.tsv", pairs(6, 50))))
    gz = build_task(TsvConfig(train=write(tmp_path / "a.tsv.gz", pairs(40), gz=True),
                              test=write(tmp_path / "b.tsv.gz", pairs(6, 50), gz=True)))
    assert texts(plain.test) == texts(gz.test) and torch.equal(plain.train.src, gz.train.src)


# ---------------------------------------------------------------- vocabularies
def test_separate_vocabularies_from_train_only_and_unknown_words(tmp_path):
    train = write(tmp_path / "train.tsv", ["a b\tx y", "b c\ty z", "a c\tx z"] * 3 + ["a a\tx x"])
    test = write(tmp_path / "test.tsv", ["a novel\tx unseen"])
    data = build_task(TsvConfig(train=train, val=train, test=test))
    assert not data.shared_vocab and data.tgt_vocab is data.vocab
    assert set(data.src_vocab.itos[5:]) == {"a", "b", "c"} and set(data.vocab.itos[5:]) == {"x", "y", "z"}
    assert data.test.src[0, :2].tolist() == [data.src_vocab.stoi["a"], Vocab.unk]
    assert data.test.tgt[0, :3].tolist() == [data.vocab.stoi["x"], Vocab.unk, Vocab.eos]
    assert data.test.tgt_text == ["x unseen"]  # BLEU's reference keeps the word
    shared = build_task(TsvConfig(train=train, val=train, test=test, vocab=VocabConfig(shared=True)))
    assert shared.shared_vocab and set(shared.vocab.itos[5:]) == {"a", "b", "c", "x", "y", "z"}


def test_min_freq_and_max_size(tmp_path):
    lines = ["a a a b\tx"] * 3 + ["c\tx"]  # source counts: a 9, b 3, c 1
    train = write(tmp_path / "train.tsv", [f"{s} w{i}\t{t}" for i, line in enumerate(lines)
                                           for s, t in [line.split("\t")]])
    cfg = dict(train=train, val=train, test=train)
    assert build_task(TsvConfig(**cfg, vocab=VocabConfig(min_freq=2))).src_vocab.itos[5:] == ["a", "b"]
    assert build_task(TsvConfig(**cfg, vocab=VocabConfig(max_size=1))).src_vocab.itos[5:] == ["a"]
    v = Vocab.from_counts(["b", "a", "b", "c", "a"], min_freq=1)
    assert v.itos[5:] == ["b", "a", "c"]  # by count, ties in first-seen order


def test_every_preset_runs_with_separate_vocabularies(tiny_model, batch_of, tmp_path):
    from ablate.models import TaskInfo
    from ablate.models.presets import ARCHS

    info = TaskInfo(src_vocab_size=11, tgt_vocab_size=17, max_src_len=6, max_tgt_len=7, shared_vocab=False)
    assert info.vocab_size == 17
    src = torch.randint(5, 11, (3, 6))
    src_len = torch.tensor([6, 4, 2])
    tgt_in = torch.randint(5, 17, (3, 7))
    for arch in ARCHS.names():
        model = tiny_model(arch, info)
        assert model.src_embed is not model.tgt_embed and model.src_embed.num_embeddings == 11
        assert model.tgt_embed is None or model.tgt_embed.num_embeddings == 17  # (MLP reads no target)
        assert model.head.out_features == 17
        assert model(src, src_len, tgt_in).shape == (3, 7, 17), arch
        assert model.generate(src, src_len, 7).shape == (3, 7), arch
    shared = tiny_model("transformer", TaskInfo(13, 13, 6, 7))
    assert shared.src_embed is shared.tgt_embed


# ---------------------------------------------------------------- subwords
def test_bpe_pieces_round_trip_to_the_exact_text(tmp_path):
    lines = [f"the {w}s walked quickly\tles {w}x marchaient vite" for w in ("cat", "dog", "bird", "horse")] * 5
    lines += ["unrelated words appear here\tdes mots sans rapport ici"]
    train = write(tmp_path / "train.tsv", lines)
    test = write(tmp_path / "test.tsv", ["the dogs walked\tles dogx marchaient"])
    data = build_task(TsvConfig(train=train, val=train, test=test, tokens="bpe", vocab_size=60))
    assert any(p.startswith("▁") for p in data.vocab.itos) and len(data.vocab) <= 60 + 5
    for split in data.splits.values():
        for i in range(len(split)):
            src = data.src_vocab.decode(split.src[i].tolist())
            tgt = data.vocab.decode(split.tgt[i].tolist())
            assert data.detokenize(src) == split.src_text[i] and data.detokenize(tgt) == split.tgt_text[i]
    uni = build_task(TsvConfig(train=train, val=train, test=test, tokens="unigram", vocab_size=60,
                               vocab=VocabConfig(shared=True)))
    assert uni.shared_vocab and uni.detokenize(uni.vocab.decode(uni.test.tgt[0].tolist())) == "les dogx marchaient"


def test_subword_models_are_cached_and_retrained_when_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    calls = []
    real = sw._train
    monkeypatch.setattr(sw, "_train", lambda texts, opts: calls.append(opts) or real(texts, opts))
    path = tmp_path / "train.tsv"
    write(path, pairs(40))
    cfg = TsvConfig(path=str(path), tokens="bpe", vocab_size=30)
    first = build_task(cfg)
    assert len(calls) == 2  # source and target models
    again = build_task(cfg)
    assert len(calls) == 2 and again.vocab.itos == first.vocab.itos  # reused from the cache
    assert len(list((tmp_path / "cache" / "sentencepiece").glob("*.model"))) == 2
    build_task(TsvConfig(path=str(path), tokens="bpe", vocab_size=40))
    assert len(calls) == 4  # another option: new models
    write(path, pairs(40) + ["s1 s2\tt9 t9 t9"])
    build_task(cfg)
    assert len(calls) == 6  # an edited file: new models


# ---------------------------------------------------------------- a whole run: val BLEU, samples, report
@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """One tiny tsv experiment run through the CLI; returns (runs dir, report dir, captured stderr)."""
    import contextlib
    import os

    tmp = tmp_path_factory.mktemp("corpus")
    for name, lines in (("train", pairs(60)), ("val", pairs(8, 100)), ("test", pairs(8, 200))):
        write(tmp / f"{name}.tsv", lines)
    exp = tmp / "exp.yaml"
    exp.write_text(f"""name: corpus
task: {{name: tsv, train: {tmp}/train.tsv, val: {tmp}/val.tsv, test: {tmp}/test.tsv}}
model: {{arch: seq2seq_attention, d_model: 16, n_layers: 1}}
train: {{max_epochs: 3, batch_size: 16, monitor: val/bleu}}
seeds: [0]
grid: {{model.arch: [seq2seq_attention, transformer]}}
report: {{metric: test/bleu}}
""")
    err = io.StringIO()
    old = os.environ.get("ABLATE_PROGRESS")
    os.environ["ABLATE_PROGRESS"], os.environ["ABLATE_PROGRESS_EVERY"] = "lines", "0"
    try:
        with contextlib.redirect_stderr(err):
            code = main(["run", str(exp), "--runs-dir", str(tmp / "runs")])
    finally:
        os.environ.pop("ABLATE_PROGRESS_EVERY")
        os.environ.pop("ABLATE_PROGRESS") if old is None else os.environ.__setitem__("ABLATE_PROGRESS", old)
    assert code == 0, err.getvalue()
    return tmp / "runs" / "corpus", tmp / "runs" / "corpus" / "report", err.getvalue()


def test_val_bleu_is_logged_at_every_validation_and_picks_the_checkpoint(corpus_run):
    import pandas as pd

    runs, _, _ = corpus_run
    for run in [d for d in runs.iterdir() if (d / "result.json").is_file()]:
        m = pd.read_csv(run / "metrics.csv")
        val = m.dropna(subset=["val/bleu"])
        assert len(val) == 3 and val["val/chrf"].notna().all()  # one per epoch
        result = json.loads((run / "result.json").read_text())
        assert result["best_val"]["val/bleu"] == pytest.approx(val["val/bleu"].max(), abs=1e-6)
        assert result["eval_time_s"] > 0 and "test/bleu" in result["metrics"]
        assert (run / "src_vocab.json").is_file() and (run / "test_samples.jsonl").is_file()
    assert (pd.read_csv(runs / "results.csv")["eval_time_s"] > 0).all()


def test_progress_lines_show_step_loss_and_eta(corpus_run):
    _, _, err = corpus_run
    lines = [x for x in err.splitlines() if "step " in x and "loss" in x]
    assert lines and "ETA" in lines[-1] and "ep 3/3" in lines[-1] and "val/bleu" in lines[-1]


def test_report_shows_the_same_samples_for_every_row(corpus_run):
    runs, report, _ = corpus_run
    md = (report / "samples.md").read_text()
    assert md.count("## Example") == 8
    assert md.count("| seq2seq_attention |") == 8 and md.count("| transformer |") == 8
    first = json.loads((next(runs.glob("*/test_samples.jsonl"))).read_text().splitlines()[0])
    assert set(first) == {"index", "source", "reference", "hypothesis", "exact"}
    page = (report / "index.html").read_text()
    assert 'id="samples"' in page and "Sample outputs" in page


def test_samples_mark_exact_matches(tmp_path):
    import pandas as pd

    from ablate.report.samples import write_samples

    for run, hyp in (("r1", ["b a", "x"]), ("r2", ["b a", "d c"])):
        (tmp_path / run).mkdir()
        (tmp_path / run / "test_samples.jsonl").write_text("".join(
            json.dumps({"index": i, "source": s, "reference": r, "hypothesis": h, "exact": h == r}) + "\n"
            for i, (s, r, h) in enumerate(zip(["a b", "c d"], ["b a", "d c"], hyp))))
    df = pd.DataFrame({"run_id": ["r1", "r2"], "label": ["one", "two"], "seed": [0, 0],
                       "status": ["finished", "finished"]})
    s = write_samples(df, tmp_path, tmp_path)
    md = s.markdown.read_text()
    assert "| one | x |  |" in md and "| two | d c | ✓ |" in md and md.count("✓ |") == 3


# ---------------------------------------------------------------- bad files: exit 2, file and line, nothing written
BAD = {
    "wrong column count": (b"a\tb\nx\ty\tz\n", ":2", "2 tabs"),
    "no tab": (b"a\tb\nb c\n", ":2", "no tab"),
    "empty": (b"\n  \n", "", "no source<TAB>target lines"),
    "non-UTF-8": (b"a\tb\ncaf\xe9\tx\n", ":2", "UTF-8"),
    "reserved token": (b"a\tb\na <unk>\tc\n", ":2", "<unk>"),
}


@pytest.mark.parametrize("case", [*BAD, "missing file"])
@pytest.mark.parametrize("which", ["train", "test"])
def test_bad_files_exit_2_naming_file_and_line_with_nothing_written(tmp_path, capsys, case, which):
    files = {"train": tmp_path / "train.tsv", "test": tmp_path / "test.tsv"}
    write(files["train"], pairs(30))
    write(files["test"], pairs(5, 50))
    bad = files[which]
    if case == "missing file":
        bad.unlink()
        where, what = str(bad), "not found"
    else:
        content, line, what = BAD[case]
        bad.write_bytes(content)
        where = f"{bad}{line}"
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: bad\ntask: {{name: tsv, train: {files['train']}, test: {files['test']}}}\n"
                   "model: {arch: seq2seq, d_model: 16, n_layers: 1}\n")
    code = main(["run", str(exp), "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == 2 and where in err and what in err, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("shared", [False, True])
def test_too_few_pieces_for_the_characters_exit_2_before_any_run(tmp_path, capsys, monkeypatch, shared):
    """sentencepiece needs one piece per distinct character of its training text and its <unk>: one fewer is
    refused at planning with the number needed; exactly that many trains."""
    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "cache"))
    path = write(tmp_path / "c.tsv", pairs(40))  # source "s0 s11 …": s, 0-9, space; target t, 0-9, space
    src_chars = len(set("s0123456789") | {"▁"})
    need = (len(set("st0123456789") | {"▁"}) if shared else src_chars) + 1
    build_task(TsvConfig(path=path, tokens="bpe", vocab_size=need, vocab=VocabConfig(shared=shared)))
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: few\ntask: {{name: tsv, path: {path}, tokens: bpe, vocab_size: {need - 1}, "
                   f"vocab: {{shared: {str(shared).lower()}}}}}\nmodel: {{arch: seq2seq, d_model: 16}}\n")
    assert main(["run", str(exp), "--runs-dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert f"vocab_size={need - 1}" in err and f"set vocab_size >= {need}" in err, err
    assert not (tmp_path / "runs").exists()


def test_monitor_val_bleu_needs_a_task_with_bleu(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: m\ntask: {name: reverse}\ntrain: {monitor: val/bleu}\n")
    assert main(["plan", str(exp)]) == 2
    err = capsys.readouterr().err
    assert "train.monitor" in err and "translate" in err and "tsv" in err


# ---------------------------------------------------------------- progress pieces
def test_progress_render_and_in_flight_status(tmp_path):
    from ablate.experiment.in_flight import status_line
    from ablate.train.progress import RunProgress

    line = RunProgress.render({"label": "lstm seed 0", "epoch": 2, "max_epochs": 10, "step": 340, "total": 1700,
                               "loss": 2.3141, "steps_per_s": 12.3, "eta_s": 110, "monitor": "val/bleu",
                               "val": 12.44, "phase": "train"})
    assert line == "lstm seed 0  ep 2/10  step 340/1700  loss 2.314  12.3 steps/s  ETA 1m50s  val/bleu 12.4"
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "progress.json").write_text(json.dumps({"label": "gru seed 1", "step": 5, "total": 50, "eta_s": 65,
                                                  "phase": "validating 2/4"}))
    assert status_line([a, b]) == "in flight: gru seed 1 5/50 ETA 1m05s (validating 2/4) | 1 queued or starting"


def test_progress_bar_rewrites_one_terminal_line(tmp_path):
    from types import SimpleNamespace

    from ablate.train.progress import RunProgress

    out = io.StringIO()
    bar = RunProgress("gru seed 0", "val/bleu", tmp_path, mode="bar", out=out)
    trainer = SimpleNamespace(global_step=0, current_epoch=0, max_epochs=2, max_steps=-1, global_rank=0,
                              estimated_stepping_batches=10)
    bar.on_train_start(trainer, None)
    for step in (1, 2):
        trainer.global_step = step
        bar.on_train_batch_end(trainer, None, torch.tensor(2.0), None, step)
        bar._last = 0.0  # as if the redraw interval had passed
    bar.close()
    text = out.getvalue()
    assert text.count("\r") >= 2 and text.endswith("\n") and text.count("\n") == 1  # one line, redrawn
    assert "step 2/10" in text and "loss 2.000" in text
    assert not (tmp_path / "progress.json").exists()
