"""Issue 22: why each run stopped (stop_reason, still_improving), budgets as Lightning means them, the plateau's
min_delta from the metric's standard error, the tested checkpoint, decoding caps that cover the training data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ablate.experiment.stops import infer_stop, validations
from ablate.stopping import still_improving

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- still_improving on synthetic curves
@pytest.mark.parametrize("values,mode,delta,expected", [
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], "max", 0.0, True),  # rising to the end
    ([0.1, 0.5, 0.6, 0.6, 0.6, 0.6], "max", 0.0, False),  # flat over the last three
    ([0.1, 0.5, 0.6, 0.55, 0.58, 0.604], "max", 0.005, False),  # better by 0.004 only: inside min_delta
    ([0.1, 0.5, 0.6, 0.55, 0.58, 0.606], "max", 0.005, True),  # better by 0.006: beyond it
    ([0.1, 0.5, 0.9, 0.3, 0.3, 0.3], "max", 0.0, False),  # a collapse after the best is not improving
    ([2.0, 1.0, 0.9, 0.8], "min", 0.0, True),  # losses: lower is better
    ([2.0, 0.5, 0.9, 0.8, 0.7], "min", 0.0, False),
    ([0.1, 0.2, 0.3], "max", 0.0, None),  # nothing before the window: cannot be judged
    ([0.1, float("nan"), 0.2, 0.3], "max", 0.0, None),  # a NaN validation is no value
])
def test_still_improving_rule_on_synthetic_curves(values, mode, delta, expected):
    assert still_improving(values, mode, delta) is expected


# ---------------------------------------------------------------- the audit's counts over the audited reports
# The reports the first audit read (2026-12-05), frozen in tests/data/first_audit (each run's config.yaml,
# result.json and the validation columns of its metrics.csv, and the report's table.csv): the shipped reports
# are re-run under the rules that audit brought, so the audit's findings are pinned on the data it read.
FIRST_AUDIT = ROOT / "tests" / "data" / "first_audit"


def final_runs(report: Path) -> list[Path]:
    """The runs a committed table rests on: the row's label and, where the table states them (a tuned lr), the
    train.* values of its row; of two runs in one (label, seed) cell the newer."""
    table = pd.read_csv(report / "table.csv")
    keys = [c for c in table.columns if c.startswith("train.")]
    cells: dict[tuple, tuple[float, Path]] = {}
    for d in sorted(p for p in (report / "runs").iterdir() if p.is_dir()):
        res = json.loads((d / "result.json").read_text())
        cfg = yaml.safe_load((d / "config.yaml").read_text())
        row = table[table["label"] == res.get("label")]
        if row.empty or any(cfg["train"].get(k.split(".", 1)[1]) != row.iloc[0][k] for k in keys):
            continue
        cell = (res.get("label"), cfg["seed"])
        if cell not in cells or res.get("started", 0) > cells[cell][0]:
            cells[cell] = (res.get("started", 0), d)
    return [d for _, d in cells.values()]


def capped(report: Path) -> tuple[int, int, int]:
    """(runs, runs stopped at a step/epoch cap without their target, of those still improving)."""
    runs = final_runs(report)
    stops = [infer_stop(yaml.safe_load((d / "config.yaml").read_text()),
                        json.loads((d / "result.json").read_text()), d / "metrics.csv") for d in runs]
    cap = [s for s in stops if s["stop_reason"] in ("max_steps", "max_epochs")]
    return len(runs), len(cap), sum(bool(s["still_improving"]) for s in cap)


@pytest.mark.parametrize("name,runs,at_cap,improving", [
    ("quickstart", 24, 15, 14), ("architectures", 48, 5, 3), ("bottleneck", 9, 4, 1), ("scan", 36, 20, 19)])
def test_inferred_stops_find_the_audits_counts(name, runs, at_cap, improving):
    # The audit: quickstart 15 of 24 at the cap without their target, architectures 5/48, bottleneck 4/9,
    # scan 20/36. (Its "8 still improving" in quickstart counted a last validation that is a new best; the
    # rule here, a better best over the last 3 validations by more than min_delta, finds 14.)
    assert capped(FIRST_AUDIT / name) == (runs, at_cap, improving)


def test_inference_reads_reasons_in_order(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,step,val/seq_acc\n0,249,0.1\n1,499,0.2\n2,749,0.3\n3,999,0.4\n")
    cfg = {"train": {"monitor": "val/seq_acc", "max_steps": 1000, "max_epochs": 200,
                     "early_stopping": {"patience": 3, "min_delta": 0.005}}}
    assert validations(tmp_path / "metrics.csv", "val/seq_acc")[0] == (250, 0.1)
    got = infer_stop(cfg, {"status": "finished", "steps": 1000, "epochs": 3}, tmp_path / "metrics.csv")
    assert got == {"stop_reason": "max_steps", "still_improving": True, "stop_source": "inferred", "tested_step": 1000}
    (tmp_path / "tie.csv").write_text("epoch,step,val/seq_acc\n0,249,0.0\n1,499,0.0\n")
    assert infer_stop(cfg, {"status": "finished", "steps": 500}, tmp_path / "tie.csv")["tested_step"] == 250
    assert infer_stop(cfg, {"status": "finished", "steps": 1000, "steps_to_target": 1000},
                      tmp_path / "metrics.csv")["stop_reason"] == "target"
    assert infer_stop(cfg, {"status": "finished", "steps": 750}, tmp_path / "metrics.csv")["stop_reason"] == "plateau"
    assert infer_stop({"train": {"max_epochs": 3}}, {"status": "finished", "steps": 750, "epochs": 3},
                      tmp_path / "metrics.csv")["stop_reason"] == "max_epochs"
    assert infer_stop(cfg, {"status": "failed"}, tmp_path / "metrics.csv") == {}


# ---------------------------------------------------------------- recorded by fit: one run per reason
TASK = {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 64, "n_val": 16, "n_test": 16}
MODEL = {"arch": "gru", "d_model": 16, "n_layers": 1}


def test_an_experiment_records_why_each_run_stopped(tmp_path):
    """Three variants, each stopping for its own reason: capped while improving, plateau, target."""
    from ablate import load_results
    from ablate.cli import main

    exp = {"name": "why", "task": TASK, "model": MODEL, "seeds": [0],
           "train": {"batch_size": 32, "max_epochs": 50, "val_every_n_steps": 1, "lr": 0.01, "monitor": "val/loss"},
           "variants": {
               "capped": {"train.max_steps": 6},  # the loss still falls fast at step 6
               "plateau": {"train.early_stopping": {"patience": 2, "min_delta": 10}},  # nothing beats the first by 10
               "target": {"train.target": {"metric": "val/loss", "value": 5.0}}}}  # met at the first validation
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump(exp))
    assert main(["run", str(p), "--runs-dir", str(tmp_path / "runs"), "--no-report"]) == 0
    df = load_results(tmp_path / "runs" / "why").set_index("variant")
    assert df.loc["capped", "stop_reason"] == "max_steps" and df.loc["capped", "still_improving"] == True  # noqa: E712
    assert df.loc["plateau", "stop_reason"] == "plateau" and df.loc["plateau", "steps"] == 3
    assert df.loc["target", "stop_reason"] == "target" and df.loc["target", "tested_step"] == 1
    assert set(df["stop_source"]) == {"recorded"}
    assert (df["test/hit_cap"] >= 0).all() and "val/hit_cap" in df
    assert (df["test/cap_short"] == 0).all()  # reverse's cap is its longest target: every reference fits
    res = json.loads(next((tmp_path / "runs" / "why").glob("*/result.json")).read_text())
    assert {"stop_reason", "still_improving", "stop_source", "tested_step"} <= set(res)
    assert "dirty" in res["reproduce"]


def test_a_tie_on_the_monitor_goes_to_the_lower_loss_then_the_later_step(tmp_path):
    """val/seq_acc stays 0 on this tiny run: Lightning alone would test the first checkpoint; the tie goes to the
    validation with the lowest val/loss (the falling loss: the last one)."""
    import csv

    from ablate.config import build_run
    from ablate.train.fit import fit

    cfg, _ = build_run({"task": TASK, "model": MODEL, "train": {
        "batch_size": 32, "max_epochs": 50, "max_steps": 4, "val_every_n_steps": 1, "lr": 0.01,
        "monitor": "val/seq_acc"}}, 0, "test")
    result = fit(cfg, tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        vals = [(int(r["step"]) + 1, float(r["val/seq_acc"]), float(r["val/loss"])) for r in csv.DictReader(f)
                if r.get("val/loss")]
    top = max(acc for _, acc, _ in vals)
    best = min((loss, -step) for step, acc, loss in vals if acc == top)
    assert len({acc for _, acc, _ in vals}) == 1  # the tie the test is about
    assert result["tested_step"] == -best[1] != vals[0][0]


@pytest.mark.parametrize("metric,value,n,tokens,sq,expected", [
    ("val/seq_acc", 0.9, 300, 0, None, 0.017320508),  # sqrt(0.9 * 0.1 / 300)
    ("val/acc", 0.5, 100, 0, None, 0.05),
    ("val/token_acc", 0.5, 10, 400, None, 0.025),  # on the 400 target tokens
    ("val/loss", 0.5, 10, 100, 0.5, 0.05),  # var = E[x^2] - mean^2 = 0.25; sqrt(0.25 / 100)
    ("val/bleu", 50.0, 100, 0, None, 5.0),  # 100 * sqrt(0.25 / 100)
    ("val/seq_acc", 1.0, 300, 0, None, 0.0),
])
def test_standard_error_worked_examples(metric, value, n, tokens, sq, expected):
    from ablate.stopping import standard_error

    assert standard_error(metric, value, n, tokens, sq) == pytest.approx(expected, rel=1e-6)


def test_plateau_min_delta_defaults_to_the_standard_error_at_the_best_value():
    from types import SimpleNamespace

    import torch

    from ablate.train.callbacks import PlateauStopping

    es = PlateauStopping("val/seq_acc", "max", patience=2, min_delta=None)
    module = SimpleNamespace(val_stats={"n": 100, "tokens": 500, "nll_sq_mean": 0.1})
    trainer = SimpleNamespace(callback_metrics={"val/seq_acc": torch.tensor(0.5)}, lightning_module=module,
                              sanity_checking=False, fast_dev_run=False, should_stop=False, global_rank=0,
                              strategy=SimpleNamespace(reduce_boolean_decision=lambda x, **k: x))
    es._run_early_stopping_check(trainer)  # first check: best 0.5
    assert es.used_delta == pytest.approx(0.05)
    trainer.callback_metrics["val/seq_acc"] = torch.tensor(0.54)  # +0.04 < SE 0.05: no improvement
    es._run_early_stopping_check(trainer)
    assert es.wait_count == 1 and float(es.best_score) == pytest.approx(0.5)
    trainer.callback_metrics["val/seq_acc"] = torch.tensor(0.56)  # +0.06 > SE: an improvement
    es._run_early_stopping_check(trainer)
    assert es.wait_count == 0 and float(es.best_score) == pytest.approx(0.56)
    fixed = PlateauStopping("val/seq_acc", "max", patience=2, min_delta=0.001)
    fixed._run_early_stopping_check(trainer)
    assert fixed.used_delta == 0.001  # a min_delta given stays


# ---------------------------------------------------------------- budgets as Lightning means them
def test_max_steps_alone_means_no_epoch_limit(tmp_path):
    from ablate.config import build_run
    from ablate.train.fit import fit

    alone, _ = build_run({"task": TASK, "model": MODEL, "train": {"max_steps": 3000}}, 0, "t")
    both, _ = build_run({"task": TASK, "model": MODEL, "train": {"max_steps": 3000, "max_epochs": 10}}, 0, "t")
    neither, _ = build_run({"task": TASK, "model": MODEL, "train": {}}, 0, "t")
    assert (alone.train.max_epochs, both.train.max_epochs, neither.train.max_epochs) == (-1, 10, 10)
    # 64 examples in batches of 32: 2 steps an epoch; the old default of 10 epochs would stop at 20
    cfg, _ = build_run({"task": TASK, "model": MODEL, "train": {"batch_size": 32, "max_steps": 23,
                                                                "schedule": "cosine"}}, 0, "t")
    result = fit(cfg, tmp_path)
    assert (result["steps"], result["stop_reason"]) == (23, "max_steps")


@pytest.mark.parametrize("train,expected", [
    ({"max_steps": 2000, "max_epochs": 200, "batch_size": 64}, "2000 (max_steps)"),
    ({"max_steps": 3000, "max_epochs": 10, "batch_size": 64}, "630 (max_epochs 10)"),  # 4000/64 -> 63 a epoch
    ({"max_steps": 3000, "batch_size": 64}, "3000 (max_steps)"),  # alone: no epoch limit
    ({"max_epochs": 2, "batch_size": 64}, "126 (max_epochs 2)"),
    ({"max_steps": 2000, "max_flops": 1e9, "batch_size": 64}, "2000 (max_steps; or max_flops 1e+09)"),
])
def test_plan_shows_the_step_budget_and_the_binding_limit(tmp_path, capsys, train, expected):
    from ablate.cli import main

    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump({"task": {**TASK, "n_train": 4000}, "model": MODEL, "train": train}))
    assert main(["plan", str(p)]) == 0
    out = capsys.readouterr().out
    assert "step budget (binding limit)" in out and expected in out


@pytest.mark.parametrize("train", [{"max_epochs": -1, "schedule": "cosine"},
                                   {"max_epochs": -1, "warmup_steps": 100}])
def test_a_schedule_with_no_horizon_is_refused(tmp_path, capsys, train):
    from ablate.cli import main

    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump({"task": TASK, "model": MODEL, "train": train}))
    assert main(["plan", str(p)]) == 2
    err = capsys.readouterr().err
    assert "train.max_steps=-1" in err and "needs a horizon" in err


# ---------------------------------------------------------------- decoding never cuts an answer silently
def test_an_output_without_eos_counts_as_stopped_at_its_cap():
    import torch

    from ablate.train.metrics import decode_counts

    tgt = torch.tensor([[5, 6, 2], [5, 6, 2], [7, 2, 0]])
    pred = torch.tensor([[5, 6, 2, 0], [5, 6, 6, 6], [7, 7, 7, 2]])  # ends on time; cut at the cap; late <eos>
    assert decode_counts(pred, tgt)["hit_cap"].tolist() == [0, 1, 0]
    # references of 3, 3 and 2 tokens (<eos> included) against caps 3, 2, 2: only the second cannot fit
    assert decode_counts(pred, tgt, torch.tensor([3, 2, 2]))["cap_short"].tolist() == [0, 1, 0]
    assert decode_counts(pred, tgt)["cap_short"].tolist() == [0, 0, 0]  # no caps given: nothing to blame


def test_a_run_counts_the_test_references_its_decoding_cap_cut_short(tmp_path):
    """A corpus whose targets are 3 words a source word, decoded with a hand-set cap of 1 a source word: every
    reference is longer than its cap, result.json says so, and the report marks the row and says to raise it."""
    from ablate import load_results
    from ablate.cli import main

    words = "a b c d e f g h".split()
    lines = [" ".join(words[k:k + n]) + "\t" + " ".join(w for w in words[k:k + n] for _ in range(3))
             for n in range(1, 5) for k in range(8 - n)]  # 22 distinct sources of 1-4 words
    (tmp_path / "x.tsv").write_text("\n".join(lines) + "\n")
    exp = {"name": "cut", "seeds": [0], "model": MODEL, "train": {"batch_size": 8, "max_steps": 2},
           "task": {"name": "tsv", "path": str(tmp_path / "x.tsv"), "decode_ratio": 1.0, "decode_margin": 0}}
    (tmp_path / "e.yaml").write_text(yaml.safe_dump(exp))
    assert main(["run", str(tmp_path / "e.yaml"), "--runs-dir", str(tmp_path / "runs"), "--no-report"]) == 0
    df = load_results(tmp_path / "runs" / "cut")
    assert (df["test/cap_short"] > 0).all() and (df["test/seq_acc"] == 0).all()
    assert main(["report", str(tmp_path / "runs" / "cut"), "--out", str(tmp_path / "rep")]) == 0
    assert "‡ test references longer than their decoding cap" in (tmp_path / "rep" / "README.md").read_text()


def tsv_build(tmp_path, **task):
    from ablate.config import build_run
    from ablate.tasks import build_task

    cfg, _ = build_run({"task": {"name": "tsv", **task}, "model": MODEL}, 0, "t")
    return build_task(cfg.task)


def cut(data) -> int:
    """Examples of every split whose reference is longer than their decoding cap (could never be right)."""
    return sum(int((sp.tgt_len > data.decode.caps(sp.src_len)).sum()) for sp in data.splits.values())


def test_a_corpus_whose_targets_are_three_times_its_sources_is_never_cut(tmp_path):
    words = "a b c d e f g h".split()
    lines = []
    for n in range(1, 16):
        for k in range(8):
            src = [words[(k + i) % 8] for i in range(n)]
            lines.append(" ".join(src) + "\t" + " ".join(w for w in src for _ in range(3)))
    (tmp_path / "x.tsv").write_text("\n".join(lines) + "\n")
    data = tsv_build(tmp_path, path=str(tmp_path / "x.tsv"))
    assert cut(data) == 0
    assert data.decode.ratio == 4.0  # a one-word source: 3 words and <eos>
    # The old fixed default (2 * source + 10) cuts every long one; a decode_ratio given by hand still wins.
    assert cut(tsv_build(tmp_path, path=str(tmp_path / "x.tsv"), decode_ratio=2.0)) > 0
    assert cut(tsv_build(tmp_path, path=str(tmp_path / "x.tsv"), decode_margin=0)) > 0


def test_scan_simple_split_as_tsv_files_is_never_cut_by_the_default_cap(tmp_path):
    from ablate.config import load_experiment
    from ablate.experiment.export import export_data

    (tmp_path / "e.yaml").write_text(yaml.safe_dump({"name": "s", "model": MODEL, "task": {
        "name": "scan", "split": "simple", "n_train": 1500, "n_test": 500}}))
    export_data(load_experiment(tmp_path / "e.yaml"), tmp_path / "data")
    data = tsv_build(tmp_path, **{k: str(tmp_path / "data" / f"{k}.tsv") for k in ("train", "val", "test")})
    assert max(int(sp.tgt_len.max()) for sp in data.splits.values()) > 26  # the long action sequences are there
    assert cut(data) == 0


# ---------------------------------------------------------------- nothing degenerate trains
def test_match_params_never_lands_below_the_width_floor():
    """architectures.yaml once gave the MLP d_model 1 for 40k parameters; now no width is below 8 (nor n_heads),
    and every shipped experiment that matches parameters keeps to it."""
    import ablate
    from ablate.experiment.plan import MIN_WIDTH

    files = [p for p in sorted((ROOT / "experiments").glob("*.yaml")) if "match_params:" in p.read_text()]
    runs = [r for p in files for r in ablate.plan(p) if r.config.model.match_params]
    assert {r.config.model.arch for r in runs} >= {"mlp", "transformer"}
    for r in runs:
        m = r.config.model
        assert m.d_model >= max(MIN_WIDTH, getattr(m, "n_heads", None) or 1), (r.label, m.d_model)
        assert (getattr(m, "d_ff", None) or MIN_WIDTH) >= MIN_WIDTH, (r.label, m.d_ff)
    mlp = next(r.config.model for r in runs if r.config.model.arch == "mlp")
    assert mlp.d_model == MIN_WIDTH  # the closest fit (width 1) was below the floor: it starts there


def test_match_params_shrinks_layers_then_fails_naming_the_smallest_size(tmp_path, capsys):
    from ablate.cli import main
    from ablate.config import build_run
    from ablate.experiment.plan import match_params

    model = {"arch": "transformer", "n_layers": 3, "n_heads": 4}
    small = 2500  # 3 layers at the floor width (8) hold 3786 parameters here, 2 layers 2554: one layer goes
    cfg, _ = build_run({"task": TASK, "model": {**model, "match_params": small}}, 0, "t")
    got = match_params(cfg, "t").model
    assert (got.n_layers, got.d_model) == (2, 8)
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump({"task": TASK, "model": {**model, "match_params": 500}}))
    assert main(["plan", str(p)]) == 2
    err = capsys.readouterr().err
    assert "model.match_params=500" in err and "'transformer'" in err and "the smallest it can build has" in err


# ---------------------------------------------------------------- old records keep working
COMMITTED_RUNS = sorted(ROOT.glob("reports/*/runs/*/config.yaml"))


@pytest.mark.parametrize("report", sorted({p.parent.parent.parent.name for p in COMMITTED_RUNS}))
def test_every_committed_run_replans_to_its_own_id(report):
    """A new config field enters a run id only away from its default: the committed stores stay findable. The
    one exception is by design: a run match_params sized below the width floor (architectures' MLP at d_model 1)
    is a degenerate model, now planned at the floor instead."""
    from ablate.config import build_run
    from ablate.experiment.plan import match_params, run_id, width_floor

    wrong = []
    for path in sorted((ROOT / "reports" / report / "runs").glob("*/config.yaml")):
        tree = yaml.safe_load(path.read_text())
        cfg, _ = build_run({k: tree[k] for k in ("task", "model", "train", "eval", "logger") if k in tree},
                           tree["seed"], str(path))
        degenerate = bool(cfg.model.match_params) and cfg.model.d_model < width_floor(cfg.model)
        if cfg.model.match_params:
            cfg = match_params(cfg, str(path))
        if (run_id(cfg) != path.parent.name) != degenerate:
            wrong.append(path.parent.name)
    assert not wrong, f"{report}: {len(wrong)} runs replan to another id, e.g. {wrong[:3]}"


# ---------------------------------------------------------------- the report shows it
def runs_frame(**cols) -> pd.DataFrame:
    base = {"label": ["a", "a", "b", "b"], "variant": [""] * 4, "status": ["finished"] * 4, "seed": [0, 1, 0, 1],
            "test/seq_acc": [0.5, 0.6, 0.9, 0.8]}
    return pd.DataFrame({**base, **cols})


def test_rows_capped_while_improving_and_rows_with_cut_outputs_are_marked():
    from ablate.report.page import _summary_line
    from ablate.report.tables import summarize, to_markdown

    df = runs_frame(stop_reason=["max_steps", "max_steps", "target", "plateau"],
                    still_improving=[True, False, None, True], stop_source=["recorded"] * 4,
                    **{"test/hit_cap": [0, 0, 3, 0]})
    md = to_markdown(summarize(df))
    assert "| a † |" in md and "| b ‡ |" in md
    assert ("† k of n runs stopped at the step cap while improving: not converged, the row would likely do better "
            "with more steps (a: 1 of 2)") in md
    assert "‡ test outputs ran to their decoding cap without <eos>" in md and "b: 1 of 2 runs, 3 outputs" in md
    assert "predate the record of whether the references fit" in md  # hit_cap alone cannot blame the cap
    assert "hit cap" not in md  # a count the mark shows, not a metric column
    assert "1 of 4 runs stopped at a step cap while still improving" in _summary_line({"df": df})
    from ablate.report.stops import run_text

    assert run_text(df.assign(tested_step=[1750, 2000, 250, 500]).iloc[0]) == "max_steps while improving; " \
        "tested step 1750"
    assert run_text(df.iloc[3].copy().replace({"recorded": "inferred"})) == "plateau (inferred)"
    plain = to_markdown(summarize(runs_frame()))  # nothing recorded: nothing marked
    assert "†" not in plain and "‡" not in plain


def test_only_references_longer_than_their_cap_mark_a_row_as_cut_by_the_cap():
    """A model that never emits <eos> runs to the cap on its own (its error, not the cap's): no mark. A reference
    longer than its cap could never be matched: marked, with the advice to raise the cap."""
    from ablate.report.tables import summarize, to_markdown

    df = runs_frame(**{"test/hit_cap": [5, 0, 2, 0], "test/cap_short": [0, 0, 2, 0]})
    md = to_markdown(summarize(df))
    assert "| a |" in md and "| b ‡ |" in md
    assert "‡ test references longer than their decoding cap, so those outputs could not be right " \
        "(b: 1 of 2 runs, 2 outputs); raise the task's decoding cap" in md
    assert "cap short" not in md and "older than this record" not in md
    mixed = runs_frame(**{"test/hit_cap": [0, 0, 2, 4], "test/cap_short": [None, None, 2, None]})
    md = to_markdown(summarize(mixed))
    assert "b: 2 of 2 runs, 6 outputs; runs older than this record count outputs that ran to the cap" in md


def test_steps_to_target_prints_its_resolution():
    from ablate.report.stops import steps_text

    assert steps_text(250.0, 3, 3, 250) == "≤ 250"  # met at the first check
    assert steps_text(500.0, 3, 3, 250) == "500"
    assert steps_text(2000.0, 1, 3, 250) == "≥2000"  # not every seed reached it: a lower bound
    assert steps_text(250.0, 3, 3, None) == "250"  # per-epoch checks: no step interval to state
    from ablate.report.stops import interval_note, row_stats

    runs = runs_frame(**{"train.val_every_n_steps": [50] * 4, "train.val_subset": [200] * 4})
    frame = pd.DataFrame([{"label": lab, **row_stats(runs[runs["label"] == lab])} for lab in ("a", "b")])
    assert "every 50 optimizer steps on a fixed subset of 200 validation examples" in interval_note(frame)
    whole = pd.DataFrame([row_stats(runs_frame(**{"train.val_every_n_steps": [250] * 4}))])
    assert "every 250 optimizer steps on validation:" in interval_note(whole)


COMMITTED = sorted(p.parent.parent.name for p in ROOT.glob("reports/*/runs/experiment.yaml"))


@pytest.mark.parametrize("name", COMMITTED)
def test_a_committed_report_rerenders_from_its_own_folder_without_drift(name, tmp_path, monkeypatch):
    """table.csv keeps every committed column's values; table.md is compared whole, except where the committed
    page predates this issue's marks (the lead re-renders the committed reports once after the merge)."""
    import ablate.report.plots as plots
    from ablate.report.page import build_report

    monkeypatch.setattr(plots, "all_plots", lambda *a, **k: [])  # the tables are the numbers; plots are slow
    report = ROOT / "reports" / name
    build_report(report / "runs", tmp_path)
    old, new = pd.read_csv(report / "table.csv"), pd.read_csv(tmp_path / "table.csv")
    pd.testing.assert_frame_equal(new[list(old.columns)], old, check_dtype=False)
    committed, rendered = (report / "table.md").read_text(), (tmp_path / "table.md").read_text()
    if "decode tokens/s" not in committed and "decode tokens/s" in rendered:
        pytest.xfail("the committed table.md predates issue 25's layout (Δ beside its metric, unchanged config "
                     "cells blank, decoding tokens/s, bold per task): the lead re-renders it")
    assert without_stop_marks(rendered) == without_stop_marks(committed)  # everything else: no drift
    if rendered != committed and not any(m in committed for m in ("†", "‡", "≤ ", "Targets were checked")):
        pytest.xfail("the committed table.md predates the stop marks of issue 22 (†, ‡, ≤ 250 and their "
                     "footnotes): the lead re-renders it")
    assert rendered == committed


def without_stop_marks(md: str) -> str:
    """table.md without what issue 22 added: the row marks, the ≤ of steps to target, their footnotes."""
    import re

    md = re.sub(r" [†‡]+ \|", " |", md)
    md = re.sub(r"≤ (\d+)", r"\1", md)
    return "\n".join(line for line in md.splitlines() if not line.startswith(("† ", "‡ ", "Targets were checked")))


def test_ablate_report_on_a_reports_own_runs_rerenders_it_in_place(tmp_path, monkeypatch):
    import shutil

    import ablate.report.plots as plots
    from ablate.cli import main

    monkeypatch.setattr(plots, "all_plots", lambda *a, **k: [])
    report = tmp_path / "bottleneck"
    shutil.copytree(ROOT / "reports" / "bottleneck", report)
    before = sorted(p.name for p in (report / "runs").iterdir())
    (report / "table.csv").unlink()
    assert main(["report", str(report / "runs")]) == 0
    assert (report / "table.csv").is_file() and not (report / "runs" / "table.csv").exists()
    assert sorted(p.name for p in (report / "runs").iterdir()) == before  # the runs left out stay in the store


def test_a_time_limit_and_a_diverged_loss_each_stop_a_run_and_say_so(tmp_path):
    """train.max_time stops after that many seconds of training steps (time_limit); a validation loss that is
    NaN or infinite stops the run at once (diverged) instead of training on to the cap."""
    from ablate import load_results
    from ablate.cli import main

    exp = {"name": "why2", "task": TASK, "model": MODEL, "seeds": [0],
           "train": {"batch_size": 32, "max_epochs": -1, "max_steps": 200, "val_every_n_steps": 1, "lr": 0.01,
                     "monitor": "val/loss"},
           "variants": {
               "timed": {"train.max_time": 0.3},
               "diverged": {"train.lr": float("inf")}}}  # one Adam step makes the weights inf: NaN loss
    p = tmp_path / "e.yaml"
    p.write_text(yaml.safe_dump(exp))
    assert main(["run", str(p), "--runs-dir", str(tmp_path / "runs"), "--no-report"]) == 0
    df = load_results(tmp_path / "runs" / "why2").set_index("variant")
    assert df.loc["timed", "stop_reason"] == "time_limit" and 1 <= df.loc["timed", "steps"] < 200
    assert df.loc["timed", "train_time_s"] >= 0.3
    assert df.loc["diverged", "stop_reason"] == "diverged" and df.loc["diverged", "steps"] <= 2


def test_runs_capped_at_a_flop_budget_are_said_to_hit_the_compute_cap():
    from ablate.report.page import _summary_line
    from ablate.report.tables import summarize, to_markdown

    df = runs_frame(stop_reason=["max_flops", "max_flops", "target", "max_steps"],
                    still_improving=[True, True, None, False], stop_source=["recorded"] * 4)
    md = to_markdown(summarize(df))
    assert "† k of n runs stopped at the compute cap (FLOP budget, train.max_flops) while improving: not " \
           "converged, the row would likely do better with more steps (a: 2 of 2)" in md and "step cap" not in md
    assert "2 of 4 runs stopped at a compute cap (FLOP budget, train.max_flops) while still improving" \
        in _summary_line({"df": df})
    both = runs_frame(stop_reason=["max_flops", "max_steps", "target", "target"],
                      still_improving=[True, True, None, None], stop_source=["recorded"] * 4)
    assert "stopped at the step or compute cap (FLOP budget) while improving" in to_markdown(summarize(both))


def test_runs_stopped_by_the_time_limit_are_said_to_hit_it():
    from ablate.report.page import _summary_line
    from ablate.report.tables import summarize, to_markdown

    df = runs_frame(stop_reason=["time_limit", "time_limit", "target", "plateau"],
                    still_improving=[True, False, None, True], stop_source=["recorded"] * 4)
    md = to_markdown(summarize(df))
    assert "| a † |" in md and "stopped at the time limit (train.max_time) while improving" in md
    assert "step cap" not in md
    assert "1 of 4 runs stopped at a time limit (train.max_time) while still improving" in _summary_line({"df": df})
