"""Tests written for mutants that `make mutate` found alive (docs/testing.md): each pins a behaviour no other test
checked, and fails with the mutant it is named for."""

from __future__ import annotations

import pytest
import torch

from ablate.config import build_run
from ablate.models import ModelConfig
from ablate.models.encoders import ENCODERS
from ablate.models.presets import resolve
from ablate.tasks import build_task, task_config_class
from ablate.train.sizing import info_of, task_info

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_task_info_is_cached_per_task_config():
    """Sizes of two different tasks in one process are each their own (a cache keyed wrongly mixes them up)."""
    small = task_config_class("reverse")(vocab_size=5, min_len=2, max_len=3, n_train=8, n_val=4, n_test=4)
    large = task_config_class("copy")(vocab_size=9, min_len=5, max_len=7, n_train=8, n_val=4, n_test=4)
    for cfg in (small, large, small):
        assert task_info(cfg) == info_of(build_task(cfg))
    assert task_info(small) != task_info(large)


@pytest.mark.parametrize("attention,heads", [("multihead", 2), ("additive", None)])
def test_seq2seq_attention_keeps_heads_only_for_multihead(attention, heads):
    cfg, _ = resolve(ModelConfig(arch="seq2seq_attention", d_model=16, attention=attention, n_heads=2))
    assert cfg.n_heads == heads


def test_cnn_encoder_passes_the_padding_on_and_sees_both_sides():
    enc = ENCODERS.get("cnn")(d_model=8, n_layers=2, kernel_size=3, dropout=0.0).eval()
    x = torch.randn(1, 5, 8)
    pad = torch.tensor([[False, False, False, False, True]])
    out = enc(x, pad)
    assert out.pad is pad  # attention over the memory must know which positions are padding
    later = x.clone()
    later[0, 2] = torch.randn(8)  # a new vector, not a shift: each block layer-normalises its input
    assert not torch.allclose(enc(later, pad).memory[0, 0], out.memory[0, 0])  # non-causal: 0 sees 2


@pytest.mark.parametrize("optimizer,schedule,cls,betas", [
    ("adam", "noam", torch.optim.Adam, (0.9, 0.98)),
    ("adamw", "none", torch.optim.AdamW, (0.9, 0.999)),
])
def test_fit_steps_with_the_configured_optimizer_and_records_its_checkpoint(tmp_path, optimizer, schedule, cls,
                                                                          betas):
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from ablate.train.fit import fit

    tree = {"task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 16, "n_val": 4,
                     "n_test": 4},
            "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
            "train": {"max_epochs": 1, "batch_size": 8, "optimizer": optimizer, "schedule": schedule,
                      "weight_decay": 0.01, "warmup_steps": 1}}
    cfg, _ = build_run(tree, seed=0, where="test")
    seen: list[torch.optim.Optimizer] = []
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: seen.append(opt))
    try:
        result = fit(cfg, tmp_path)
    finally:
        handle.remove()
    assert seen and all(type(opt) is cls for opt in seen)
    group = seen[0].param_groups[0]
    assert tuple(group["betas"]) == betas and group["weight_decay"] == 0.01
    # result.json names the checkpoint the test metrics came from, relative to the run directory
    for key in ("params", "train_time_s", "tokens_per_s", "peak_mem_mb", "epochs", "steps"):  # results.csv columns
        assert key in result, key
    header = (tmp_path / "by_length.csv").read_text().splitlines()[0]  # what the by-length figure reads
    assert header.split(",") == ["src_len", "tgt_len", "n", "tokens", "token_acc", "seq_acc"]
    assert result["length_by"] == "src_len" and result["max_train_length"] >= 1
    ckpt = tmp_path / result["checkpoint"]["path"]
    assert ckpt.is_file() and ckpt.parent == tmp_path / "checkpoints"


def test_seq2seq_attention_builds_the_heads_it_was_given(tiny_task, tiny_model):
    from ablate.train.data import make_batch

    data = tiny_task("reverse")
    model = tiny_model("seq2seq_attention", data, attention="multihead", n_heads=2)
    b = make_batch(data.train, torch.arange(3))
    with torch.no_grad():
        model(b["src"], b["src_len"], b["tgt_in"], need_weights=True)
    assert model.last_attn["decoder.cross"].shape[1] == 2  # (B, heads, T, S)


@pytest.mark.parametrize("kw,words", [
    ({"vocab_size": 8, "max_len": 5}, ["max_len=5", "vocab_size >= 10"]),
    ({"vocab_size": 8, "max_len": 3, "test_max_len": 6}, ["max_len=6", "vocab_size >= 12"]),
])
def test_recall_needs_distinct_keys_for_its_longest_split(kw, words):
    """Each example draws its keys without replacement from half the vocabulary, test lengths included."""
    from ablate.tasks import TASKS

    with pytest.raises(ValueError) as e:  # the planner runs each task's check before anything is built
        TASKS.meta("recall")["check"](task_config_class("recall")(min_len=2, **kw))
    assert all(w in str(e.value) for w in words)


def test_result_records_the_git_commit_of_the_code():
    import subprocess
    from pathlib import Path

    import ablate
    from ablate.train.fit import git_commit

    head = subprocess.run(["git", "-C", str(Path(ablate.__file__).parent), "rev-parse", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode:
        pytest.skip("not a git checkout")
    assert git_commit() == head.stdout.strip()


@pytest.mark.parametrize("i,m", [(0, 1), (1, 3), (3, 5)])
def test_rotary_turns_channel_pair_i_by_m_times_the_papers_frequency(i, m):
    """RoFormer: pair i turns by m * 10000^(-2i/d) at position m, so <R_m q, R_0 k> = cos(m * theta_i) for q = k
    in that pair's first channel (the dot product does not depend on how the pairs are laid out)."""
    from ablate.models.positional import Rotary

    d = 8
    x = torch.zeros(1, 1, m + 1, d)
    x[..., 2 * i] = 1.0
    r = Rotary(d)(x)[0, 0]
    theta = 10000.0 ** (-2 * i / d)
    assert float(r[m] @ r[0]) == pytest.approx(float(torch.cos(torch.tensor(m * theta))), abs=1e-6)


def test_decode_cap_covers_the_longest_test_target_of_a_shifted_split():
    """Length generalisation (test inputs longer than training ones): no test reference may be cut by the cap."""
    for name in ("copy", "reverse", "sort"):
        data = build_task(task_config_class(name)(vocab_size=4, min_len=2, max_len=3, test_min_len=5,
                                                  test_max_len=6, n_train=8, n_val=4, n_test=8))
        assert data.decode.max_len >= int(data.test.tgt_len.max()) == 7, name  # 6 symbols + <eos>


def test_fit_a_classification_task_reports_accuracy(tmp_path):
    from ablate.train.fit import fit

    tree = {"task": {"name": "listops", "min_len": 5, "max_len": 30, "max_depth": 3, "n_train": 16, "n_val": 8,
                     "n_test": 8},
            "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
            "train": {"max_epochs": 1, "batch_size": 8}}
    cfg, _ = build_run(tree, seed=0, where="test")
    result = fit(cfg, tmp_path)
    assert result["metrics"]["test/acc"] == result["metrics"]["test/seq_acc"]


def test_decoding_caps_are_the_tasks_own_limit_not_the_longest_reference():
    from dataclasses import replace

    from ablate.tasks import DecodeLimit
    from ablate.train.decoding import decode_caps

    data = build_task(task_config_class("reverse")(vocab_size=5, min_len=2, max_len=6, n_train=8, n_val=4, n_test=4))
    data = replace(data, decode=DecodeLimit(ratio=1.0, margin=1))  # an open-ended task: caps from source lengths
    src_len = torch.tensor([2, 5])
    assert decode_caps(data, most=100)(src_len).tolist() == [3, 6]


def test_best_checkpoint_of_an_accuracy_monitor_is_the_highest(tmp_path):
    """The monitor's direction picks 'best': the highest validation accuracy, not the lowest."""
    import csv

    from ablate.train.fit import fit

    tree = {"task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 32, "n_val": 16,
                     "n_test": 4},
            "model": {"arch": "gru", "d_model": 16, "n_layers": 1},
            "train": {"max_epochs": 4, "batch_size": 8, "lr": 0.01, "monitor": "val/token_acc"}}
    cfg, _ = build_run(tree, seed=0, where="test")
    result = fit(cfg, tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        seen = [float(r["val/token_acc"]) for r in csv.DictReader(f) if r.get("val/token_acc")]
    assert len(seen) == 4 and max(seen) > min(seen)
    assert result["best_val"]["val/token_acc"] == pytest.approx(max(seen))


def test_the_subword_cache_falls_back_to_xdg_cache_home_then_the_home_directory(monkeypatch, tmp_path):
    """subwords.cache_dir: the suite always sets ABLATE_CACHE_DIR, so its fallbacks ran in no test."""
    from ablate.tasks.subwords import cache_dir

    monkeypatch.setenv("ABLATE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine" / "sentencepiece"
    monkeypatch.delenv("ABLATE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "ablate" / "sentencepiece"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "ablate" / "sentencepiece"


def test_steps_to_target_of_runs_that_recorded_none_is_their_last_step():
    """report.target.target_stats when results.csv has a target but no steps_to_target column (no run reached
    it): every seed counts as its last step; the rows keep their place in results.csv (index not from 0)."""
    import pandas as pd

    from ablate.report.target import target_stats

    runs = pd.DataFrame({"train.target.value": [0.99] * 3, "steps": [100, 300, 200]}, index=[4, 7, 9])
    assert target_stats(runs) == {"steps_to_target/median": 200.0, "steps_to_target/reached": 0,
                                  "steps_to_target/n": 3}


def test_tsv_carves_a_split_of_a_single_source(tmp_path):
    """tsv._carve: 10 distinct sources at val_frac = test_frac = 0.1 leave one source each to val and test (the
    bound is 'at least one', not two)."""
    from ablate.tasks.tsv import TsvConfig

    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"s{i} x\tt{i} y\n" for i in range(10)))
    data = build_task(TsvConfig(path=str(path), val_frac=0.1, test_frac=0.1))
    assert (len(data.train), len(data.val), len(data.test)) == (8, 1, 1)


def test_a_missing_tsv_file_names_the_key_to_set(tmp_path):
    from ablate.tasks.tsv import read_pairs

    with pytest.raises(ValueError, match=r"set task\.path to an existing"):
        read_pairs(tmp_path / "nope.tsv")
    with pytest.raises(ValueError, match=r"set task\.test to an existing"):
        read_pairs(tmp_path / "nope.tsv", key="test")


def test_an_empty_corpus_scores_zero():
    from ablate.tasks.textmetrics import CorpusMetric

    assert CorpusMetric("bleu")([], []) == 0.0 and CorpusMetric("chrf")([], []) == 0.0


def test_tsv_takes_eight_subword_pieces_and_refuses_seven(tmp_path):
    """The documented bound: vocab_size 0 (the default) or >= 8 pieces."""
    from ablate.tasks.tsv import TsvConfig

    path = tmp_path / "pairs.tsv"
    words = ["a", "b", "ab", "ba", "aab", "abb", "bab", "aba", "bba", "baa"]  # few characters: 8 pieces hold them
    path.write_text("".join(f"{w} a\t{w} b\n" for w in words))
    assert len(build_task(TsvConfig(path=str(path), tokens="bpe", vocab_size=8)).vocab) > 5
    with pytest.raises(ValueError, match="vocab_size=7 must be 0"):
        build_task(TsvConfig(path=str(path), tokens="bpe", vocab_size=7))


def test_the_forest_plot_compares_with_an_unlabelled_base_and_is_saved_as_forest(tmp_path):
    """forest_rows: base runs written without a label (label "") are the row 'base', as the table has them;
    n_base counts their seeds; the figure's files are forest.png and forest.pdf (the page links them)."""
    import pandas as pd

    from ablate.report.forest import forest, forest_rows
    from ablate.report.tables import summarize

    rows = [dict(run_id=f"{v}{i}", variant=v, label=v, seed=i, status="finished", **{"test/seq_acc": x})
            for v, xs in (("", [0.5, 0.6, 0.7]), ("wide", [0.9, 0.92, 0.94])) for i, x in enumerate(xs)]
    df = pd.DataFrame(rows)
    s = summarize(df, "test/seq_acc", baseline="base", keys=[])
    f = forest_rows(df, s).set_index("label")
    assert f.at["wide", "baseline"] == "base" and f.at["wide", "delta"] == pytest.approx(0.32)
    assert (f.at["wide", "n"], f.at["wide", "n_base"]) == (3, 3)
    assert forest(df, s, tmp_path).files == [tmp_path / "forest.png", tmp_path / "forest.pdf"]


def tuned_runs(tmp_path):
    """Row a: tuned over d_model (seed 0 picks; 32 has the better val/seq_acc but also the higher val/loss);
    row b: every tuning run failed. Seed 1 runs at both settings."""
    import json

    import pandas as pd

    best = {16: {"val/seq_acc": 0.5, "val/loss": 0.2}, 32: {"val/seq_acc": 0.9, "val/loss": 0.4}}
    rows = []
    for label in ("a", "b"):
        for seed in (0, 1):
            for d in (16, 32):
                rid = f"{label}{seed}{d}"
                failed = label == "b" and seed == 0
                (tmp_path / rid).mkdir()
                (tmp_path / rid / "result.json").write_text(json.dumps({"best_val": best[d]}))
                rows.append({"run_id": rid, "label": label, "variant": label, "seed": seed,
                             "status": "failed" if failed else "finished", "model.d_model": d, "train.lr": 0.1,
                             "train.monitor": "val/seq_acc", "test/seq_acc": 0.1 * seed + d / 100})
    return pd.DataFrame(rows)


def test_tuning_without_a_metric_chooses_by_each_runs_monitor_and_keeps_rows_with_no_winner(tmp_path):
    """tune.report_runs: no tune.metric -> the runs' own train.monitor (val/seq_acc: 32 wins; by val/loss 16
    would); a row whose every tuning run failed keeps all its runs rather than failing the report."""
    from ablate.experiment.tune import report_runs

    df = tuned_runs(tmp_path)
    final, every, notes = report_runs(df, {"tune": {"model.d_model": [16, 32]}, "seeds": [0, 1]}, tmp_path)
    assert sorted(final["run_id"]) == ["a032", "a132", "b016", "b032", "b116", "b132"]
    assert sorted(every.loc[every["run_id"].isin(["a016", "a116"]), "label"]) == ["a [tuning: model.d_model=16]"] * 2
    assert "by the best train.monitor on validation" in notes[0]


def test_every_tuned_key_gets_its_column_though_another_is_already_shown(tmp_path):
    """tune.chosen_columns with two tuned keys, the first already a column of the table."""
    from ablate.experiment.tune import chosen_columns
    from ablate.report.tables import summarize

    final = tuned_runs(tmp_path)
    final = final[(final["label"] == "a") == (final["model.d_model"] == 32)]  # a chose 32, b 16
    s = summarize(final, keys=["model.d_model", "train.lr"])
    assert s.keys == ["model.d_model"]  # the same lr in every row: no column of its own
    chosen_columns(s, final, {"tune": {"model.d_model": [16, 32], "train.lr": [0.1, 0.01]}})
    assert s.keys == ["model.d_model", "train.lr"] and list(s.frame["train.lr"]) == [0.1, 0.1]


def test_results_of_a_run_that_recorded_no_label_or_variant_are_blank(tmp_path):
    """experiment.results.results_frame: a result.json without label/variant (the base of an experiment without
    variants) gives empty cells, which the report names 'base'."""
    import json

    from ablate.experiment.results import results_frame

    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "config.yaml").write_text("seed: 3\ntask: {name: copy}\n")
    (tmp_path / "r1" / "result.json").write_text(json.dumps({"status": "finished", "metrics": {"test/acc": 0.5},
                                                             "bleu_signature": "b|13a", "chrf_signature": "c|6"}))
    row = results_frame(tmp_path).iloc[0]
    assert (row["run_id"], row["label"], row["variant"], row["seed"], row["task.name"], row["test/acc"]) == \
        ("r1", "", "", 3, "copy", 0.5)
    assert (row["bleu_signature"], row["chrf_signature"]) == ("b|13a", "c|6")  # the report's signature notes
