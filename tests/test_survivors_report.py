"""Tests written for the report's and the experiment layer's mutants that `make mutate` found alive (issue 21,
docs/testing.md): each pins a number, a verdict, a mark, a row or a fallback the user sees that no selected test
checked, and was seen to fail with the mutant it is written for planted by hand."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps


def _runs(accs: dict[str, list[float]], metric: str = "test/seq_acc", **more) -> pd.DataFrame:
    return pd.DataFrame([dict(run_id=f"{v}{i}", variant=v, label=v, seed=i, status="finished", **{metric: x}, **more)
                         for v, xs in accs.items() for i, x in enumerate(xs)])


# ---- report/powerlaw.py ----------------------------------------------------------------------------------------

def _law(a: float, b: float, c: list[float], wobble: list[float]) -> tuple[list[float], list[float]]:
    return c, [a * x ** -b * w for x, w in zip(c, wobble)]


def test_exponent_interval_over_seeds_is_the_t_interval_of_the_seeds_exponents_and_a_their_geometric_mean():
    from ablate.report.powerlaw import fit_over_seeds

    c = [1e3, 1e4, 1e5, 1e6]
    fit = fit_over_seeds({0: _law(2.0, 0.5, c, [1] * 4), 1: _law(8.0, 0.6, c, [1] * 4),
                          2: _law(4.0, 0.7, c, [1] * 4)})
    lo, hi = sps.t.interval(0.95, 2, loc=0.6, scale=0.1 / math.sqrt(3))  # b = 0.5, 0.6, 0.7: sd 0.1, 3 seeds
    assert (fit.b, fit.b_low, fit.b_high, fit.seeds) == pytest.approx((0.6, lo, hi, 3))
    assert fit.a == pytest.approx(4.0)  # (2 · 8 · 4)^(1/3): the law drawn through the seeds' middle
    assert fit.refused is None


def test_seeds_with_flat_curves_show_no_power_law():
    """An exponent of exactly 0 on every seed (loss flat in compute): the interval [0, 0] includes 0, refused."""
    from ablate.report.powerlaw import fit_over_seeds

    flat = ([1e3, 1e4, 1e5], [2.0, 2.0, 2.0])
    fit = fit_over_seeds({0: flat, 1: flat})
    assert fit.b is None and fit.a is None and fit.refused is not None and "includes 0" in fit.refused


def test_power_law_interval_has_n_minus_2_degrees_of_freedom_and_counts_its_points():
    from ablate.report.powerlaw import fit_power_law

    c, loss = _law(3.0, 0.4, [1e3, 1e4, 1e5, 1e6], [1.0, 1.1, 0.95, 1.02])
    ref = sps.linregress(np.log(c), np.log(loss))
    half = sps.t.ppf(0.975, 2) * ref.stderr
    fit = fit_power_law(c, loss)
    assert (fit.b, fit.b_low, fit.b_high) == pytest.approx((-ref.slope, -ref.slope - half, -ref.slope + half))
    assert fit.n == 4 and fit.a == pytest.approx(math.exp(ref.intercept))
    flat = fit_power_law([1e3, 1e4, 1e5, 1e6], [1.0, 1.2, 0.9, 1.1])
    assert flat.b is None and flat.refused.endswith("includes 0: no power law shown")


def test_one_seeds_fit_at_a_single_compute_is_none():
    from ablate.report.powerlaw import slope

    assert slope([5.0, 5.0, 5.0], [1.0, 2.0, 3.0]) is None
    assert slope([1.0, math.e, math.e], [3.0, 2.0, 1.9]) is not None  # log C spans exactly 1: a fit


# ---- report/forest.py -------------------------------------------------------------------------------------------

def test_the_forest_plot_finds_base_runs_whose_label_is_missing():
    """Base runs whose label reads back missing (NaN, as an empty CSV field does) are the row 'base'."""
    from ablate.report.forest import forest_rows
    from ablate.report.tables import summarize

    df = _runs({"": [0.5, 0.6, 0.7], "wide": [0.9, 0.92, 0.94]})
    s = summarize(df, "test/seq_acc", baseline="base", keys=[])
    df.loc[df["variant"] == "", "label"] = None
    f = forest_rows(df, s).set_index("label")
    assert f.at["wide", "delta"] == pytest.approx(0.32) and f.at["wide", "n_base"] == 3


def test_a_row_far_below_the_rest_is_drawn_on_a_broken_axis(tmp_path):
    """A broken axis with the collapsed row (-0.98) on the left of the others (its panel is the narrow one)."""
    from ablate.report.forest import forest
    from ablate.report.tables import summarize

    accs = {"base": [0.98, 0.99, 0.985], "no_pe": [0.0, 0.01, 0.005]}
    accs.update({f"v{i}": [0.98 + d, 0.99 + d, 0.985 + d] for i, d in enumerate([0.002, -0.003, 0.001, 0.0])})
    df = _runs(accs)
    fig = forest(df, summarize(df, "test/seq_acc", baseline="base", keys=[]), tmp_path)
    assert "broken" in fig.caption and fig.files == [tmp_path / "forest.png", tmp_path / "forest.pdf"]


def test_each_rows_hover_box_covers_its_own_band_only(tmp_path):
    """In the PNG, the rows' hover boxes are equally tall and do not overlap: hovering a row shows its own text."""
    from ablate.report.forest import forest
    from ablate.report.tables import summarize

    df = _runs({"base": [0.5, 0.52, 0.51], "better": [0.8, 0.82, 0.81], "same": [0.5, 0.53, 0.49]})
    fig = forest(df, summarize(df, "test/seq_acc", baseline="base", keys=[]), tmp_path)
    spans = sorted((t.box[1], t.box[1] + t.box[3], t.text.split("\n")[0]) for t in fig.hover)
    assert [name for *_, name in spans] == ["better", "same"]
    (top0, bottom0, _), (top1, bottom1, _) = spans
    assert bottom0 <= top1 + 0.2 and bottom0 - top0 == pytest.approx(bottom1 - top1, abs=0.2)


def test_a_point_is_hollow_exactly_where_its_interval_excludes_0_but_the_correction_leaves_it_not_significant(
        tmp_path, monkeypatch):
    """Filled: significant after Holm (or its interval spans 0); hollow (white face): the raw interval excludes 0
    and the corrected test does not — the caption's 'hollow' rows."""
    import ablate.report.forest as forest_mod
    from ablate.report.tables import summarize

    df = _runs({"base": [0.5, 0.52, 0.51], "a": [0.8, 0.82, 0.81], "b": [0.6, 0.62, 0.61], "c": [0.5, 0.53, 0.49]})
    s = summarize(df, "test/seq_acc", baseline="base", keys=[])
    crafted = pd.DataFrame({"label": ["a", "b", "c"], "name": ["a", "b", "c"], "baseline": ["base"] * 3,
                            "delta": [0.3, 0.1, 0.0], "low": [0.25, 0.05, -0.03], "high": [0.35, 0.15, 0.03],
                            "excludes_0": [True, True, False], "significant": [True, False, False],
                            "n": [3] * 3, "n_base": [3] * 3})
    monkeypatch.setattr(forest_mod, "forest_rows", lambda df, s: crafted)
    drawn = {}
    monkeypatch.setattr(forest_mod, "save", lambda fig, out, name, f: drawn.setdefault("fig", fig) and [])
    fig = forest_mod.forest(df, s, tmp_path)
    points = [line for line in drawn["fig"].axes[0].lines if line.get_marker() == "o"]
    faces = {round(line.get_xdata()[0], 2): line.get_markerfacecolor() for line in points}
    assert faces[0.1] == "white" and faces[0.3] != "white" and faces[0.0] != "white"
    assert "hollow" in fig.caption and "1 row)" in fig.caption


# ---- report/target.py -------------------------------------------------------------------------------------------

def test_a_seed_that_recorded_no_steps_to_target_is_censored_at_its_last_step_for_the_log_rank_test():
    from ablate.report.target import times

    runs = pd.DataFrame({"train.target.value": [0.99] * 3, "steps": [300, 400, 500]}, index=[5, 6, 7])
    when, reached = times(runs)
    assert when.tolist() == [300.0, 400.0, 500.0] and reached.tolist() == [False] * 3


def test_a_table_across_an_experiment_with_a_target_and_one_without_shows_a_dash_for_the_latter():
    """Bug found with the survivors: the merged rows of the experiment without a target hold NaN counts, and the
    steps-to-target cell crashed the report (int(NaN))."""
    from ablate.report.tables import merge_summaries, summarize, to_markdown

    hit = _runs({"a": [0.5, 0.6]}, **{"train.target.value": 0.99, "steps": 200}).assign(steps_to_target=[100.0, 120.0])
    none = _runs({"b": [0.5, 0.6]})
    m = merge_summaries([("e1", summarize(hit, "test/seq_acc", keys=[])), ("e2", summarize(none, "test/seq_acc",
                                                                                          keys=[]))])
    rows = {line.split("|")[1].strip(): line for line in to_markdown(m).splitlines() if line.startswith("| e")}
    assert "110 (2/2 reached)" in rows["e1"] and "–" in rows["e2"]


def test_rows_without_a_target_have_no_steps_to_target():
    from ablate.report.target import target_stats

    got = target_stats(pd.DataFrame({"steps": [300, 400], "test/seq_acc": [0.5, 0.6]}))
    assert math.isnan(got["steps_to_target/median"]) and (got["steps_to_target/reached"],
                                                           got["steps_to_target/n"]) == (0, 0)


# ---- report/stops.py --------------------------------------------------------------------------------------------

def test_the_page_header_counts_capped_runs_that_recorded_no_stop_source():
    from ablate.report.stops import header_line

    df = pd.DataFrame({"status": ["finished"] * 2, "stop_reason": ["max_steps", "target"],
                       "still_improving": [True, False]})
    assert header_line(df) == ("1 of 2 runs stopped at a step cap while still improving (†: their rows "
                               "are not converged and would likely do better with more steps)")
    assert header_line(df.assign(stop_reason=["max_epochs", "target"])).startswith(
        "1 of 2 runs stopped at an epoch cap while")  # the article agrees with the noun


def test_a_run_read_back_from_results_csv_still_says_it_was_capped_while_improving():
    from ablate.report.stops import run_text

    run = pd.Series({"stop_reason": "max_steps", "still_improving": "True", "tested_step": 40.0})
    assert run_text(run) == "max_steps while improving; tested step 40"


# ---- report/tables.py -------------------------------------------------------------------------------------------

def test_perplexity_and_error_rates_are_lower_is_better():
    from ablate.report.tables import better

    assert [better(m) for m in ("test/ppl", "val/perplexity", "test/wer", "test/cer", "test/error", "val/loss")] == \
        ["min"] * 6
    assert [better(m) for m in ("test/seq_acc", "test/bleu", "test/chrf")] == ["max"] * 3


def test_a_task_setting_that_differs_between_runs_is_a_column_of_the_table():
    from ablate.report.tables import varying_keys

    df = pd.DataFrame({"task.max_len": [8, 16], "task.seed": [0, 1], "model.d_model": [16, 16],
                       "eval.beam": [1, 4], "test/seq_acc": [0.5, 0.4]})
    assert varying_keys(df) == ["task.max_len", "eval.beam"]


def test_no_p_value_no_significance_mark():
    from ablate.report.tables import stars

    assert stars(float("nan")) == "" and stars(None) == "" and stars(0.0009) == "***" and stars(0.2) == ""


def test_the_html_table_carries_the_significance_marks():
    from ablate.report.tables import summarize, to_html

    df = _runs({"base": [0.5, 0.52, 0.51], "better": [0.8, 0.82, 0.81]})
    assert "+0.300<sup>***</sup>" in to_html(summarize(df, "test/seq_acc", baseline="base", keys=[]))


def test_merged_tables_keep_each_experiments_notes_failed_runs_families_and_flags():
    from ablate.report.tables import merge_summaries, summarize

    one = _runs({"base": [0.5, 0.52, 0.51], "better": [0.8, 0.82, 0.81]})
    one = pd.concat([one, pd.DataFrame([dict(run_id="x", variant="better", label="better", seed=3,
                                             status="failed", error="boom")])], ignore_index=True)
    two = _runs({"a": [1.0, 1.2, 1.1], "b": [0.9, 1.0, 0.95]}, metric="test/loss")
    s1 = summarize(one, "test/seq_acc", baseline="base", keys=[])
    s2 = summarize(two, "test/loss", keys=[])
    s2.bold = False
    m = merge_summaries([("e1", s1), ("e2", s2)])
    assert list(m.frame["label"]) == ["e1: base", "e1: better", "e2: a", "e2: b"]
    assert list(m.failed["label"]) == ["e1: better"] and m.baseline == "e1: base" and m.primary == "test/seq_acc"
    assert m.notes[-1].startswith("the experiments' report.metric differ (test/seq_acc, test/loss)")
    assert m.family == {"e1": 1} and m.clipped is False and m.bold is False


# ---- report/confounds.py ----------------------------------------------------------------------------------------

def test_a_value_recorded_empty_is_not_recorded_and_no_confound():
    from ablate.report.confounds import audit

    runs = _runs({"base": [0.5, 0.52], "better": [0.8, 0.82]}).assign(cpu=["Xeon", "Xeon", "", ""])
    assert audit(runs, {"base": "", "better": ""}).confounds == []


def test_commits_that_could_not_be_compared_are_named_four_pairs_at_most():
    from ablate.report.confounds import audit

    commits = [c * 40 for c in "abcdef"]
    runs = _runs({"a": [0.5] * 6}).assign(git_commit=commits)
    (note,) = audit(runs, {"a": ""}, root=None).notes  # no git repository: no pair can be compared
    pairs = ", ".join(f"{'a' * 8}..{c * 8}" for c in "bcde")
    assert f"could not be compared between the runs' commits {pairs} (no git repository here)" in note


def test_project_root_is_the_git_work_tree_of_the_package():
    from ablate.report import confounds

    here = Path(confounds.__file__).resolve().parent
    ref = subprocess.run(["git", "-C", str(here), "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if ref.returncode != 0:
        pytest.skip("the package is not in a git work tree")
    assert confounds.project_root() == Path(ref.stdout.strip())


# ---- report/verdicts.py -----------------------------------------------------------------------------------------

def test_a_verdict_names_a_row_given_by_its_settings_by_the_tables_name_for_it():
    from ablate.experiment.hypotheses import Hypothesis
    from ablate.report.confounds import Audit
    from ablate.report.verdicts import verdicts

    runs = _runs({"base": [0.5, 0.52, 0.51], "better": [0.8, 0.82, 0.81]})
    runs["model.arch"] = ["gru"] * 3 + ["lstm"] * 3
    frame = runs.drop_duplicates("label")[["label", "variant"]]
    h = Hypothesis(name="h", claim="lstm beats gru", rows=({"model.arch": "lstm"}, "base"), metric="test/seq_acc",
                   expect="higher", alpha=0.05, published={}, note="")
    got = verdicts([h], runs, frame, Audit(), names={"better": "lstm", "base": "gru"})[0]
    assert got["rows"] == ["lstm", "gru"] and got["verdict"] == "supported"


def test_a_hypothesis_whose_row_is_ambiguous_leaves_the_next_ones_their_verdicts(tmp_path):
    """The first names a row by a setting two rows share (inconclusive, and it sits out of Holm's family); the
    next are still judged; hypotheses.json keeps the ± and Δ as written, and a missing p_adj prints nothing."""
    import json

    from ablate.experiment.hypotheses import Hypothesis
    from ablate.report.confounds import Audit
    from ablate.report.verdicts import ours_text, verdicts, write_json

    runs = _runs({"base": [0.5, 0.52, 0.51], "better": [0.8, 0.82, 0.81], "same": [0.5, 0.53, 0.49]})
    runs["model.arch"] = ["gru"] * 3 + ["lstm"] * 6
    frame = runs.drop_duplicates("label")[["label", "variant"]]

    def h(name: str, row: dict | str, expect: str) -> Hypothesis:
        return Hypothesis(name=name, claim=name, rows=(row, "base"), metric="test/seq_acc", expect=expect,
                          alpha=0.05, published={}, note="")

    got = verdicts([h("ambiguous", {"model.arch": "lstm"}, "higher"), h("up", "better", "higher"),
                    h("flat", "same", "higher")], runs, frame, Audit())
    assert [r["verdict"] for r in got] == ["inconclusive", "supported", "not significant"]
    assert "matches 2 rows" in got[0]["reason"] and ours_text(got[0]) == "– vs – (n = 0/0)"  # no test, no p
    assert "Holm over the 2 hypotheses" in got[1]["correction"]
    text = write_json(got, tmp_path).read_text()
    assert "±" in text  # written as UTF-8, not \u escapes
    assert "\\u00b1" not in text and json.loads(text)[1]["verdict"] == "supported"


# ---- ablate/stopping.py -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["val/bleu", "val/chrf"])
def test_the_plateau_min_delta_of_bleu_and_chrf_is_on_their_0_to_100_scale(metric):
    from ablate.stopping import standard_error

    assert standard_error(metric, 50.0, n_examples=100) == pytest.approx(5.0)  # 100·sqrt(0.5·0.5/100)


# ---- experiment/hypotheses.py -----------------------------------------------------------------------------------

def test_a_reached_hypothesis_is_valid_in_an_experiment_with_a_target():
    from ablate.experiment.hypotheses import check_hypotheses

    hyp = [{"name": "h", "claim": "a reaches it more often", "rows": ["a", "b"], "metric": "reached",
            "expect": "higher"}]
    raw = {"train": {"target": {"metric": "val/seq_acc", "value": 0.99}}, "variants": {"a": {}, "b": {}}}
    assert check_hypotheses(hyp, raw, None) == []
    assert [e.key for e in check_hypotheses(hyp, {"variants": {"a": {}, "b": {}}}, None)] == ["hypotheses.h.metric"]


# ---- experiment/plan.py -----------------------------------------------------------------------------------------

def test_a_problem_every_row_has_is_named_once_without_a_row():
    from ablate.errors import ConfigError
    from ablate.experiment.plan import collapse

    errs = [ConfigError("model.dmodel", 3, "unknown key (valid: a, b)", "variant x (grid point 1)"),
            ConfigError("model.dmodel", 3, "unknown key (valid: a, c)", "variant y (grid point 1)")]
    (one,) = collapse(errs, n_rows=2)
    assert (one.key, one.value, one.where) == ("model.dmodel", 3, "variant x")
    assert one.expected.startswith("unknown key (what is valid differs by row")
    (same,) = collapse([errs[0], ConfigError("model.dmodel", 3, "unknown key (valid: a, b)", "variant y")], 2)
    assert same.expected == "unknown key (valid: a, b)"


# ---- experiment/stops.py ----------------------------------------------------------------------------------------

def test_a_run_tested_on_its_last_weights_was_tested_at_its_last_step(tmp_path):
    from ablate.experiment.stops import infer_stop

    csv = tmp_path / "metrics.csv"
    csv.write_text("step,val/loss\n10,1.0\n20,0.5\n30,0.7\n")
    result = {"status": "finished", "steps": 30, "epochs": 3}
    last = infer_stop({"train": {"test_on": "last", "max_steps": 30}}, result, csv)
    best = infer_stop({"train": {"max_steps": 30}}, result, csv)
    assert (last["tested_step"], best["tested_step"]) == (30, 21)  # metrics.csv's step + 1


# ---- experiment/results.py --------------------------------------------------------------------------------------

def test_runs_that_recorded_no_start_time_are_all_kept():
    from ablate.experiment.results import newest_per_cell

    df = _runs({"a": [0.1, 0.2]})
    kept, older = newest_per_cell(df)
    assert kept.equals(df) and older.empty


def test_reporting_an_experiment_with_no_runs_yet_says_so(tmp_path):
    from ablate.errors import ConfigErrors
    from ablate.experiment.results import load_results

    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "experiment.yaml").write_text("name: exp\n")
    with pytest.raises(ConfigErrors, match="has no runs yet"):
        load_results(tmp_path / "exp")


# ---- experiment/tune.py -----------------------------------------------------------------------------------------

def test_a_tuning_runs_score_read_from_metrics_csv_skips_missing_and_nan_values(tmp_path):
    from ablate.experiment.tune import val_score

    (tmp_path / "metrics.csv").write_text("step,val/seq_acc,val/loss\n1,0.2,2.0\n2,,nan\n3,nan,1.5\n4,0.6,1.7\n")
    assert val_score(tmp_path, {"best_val": {}}, "val/seq_acc") == 0.6
    assert val_score(tmp_path, {}, "val/loss") == 1.5
    assert math.isnan(val_score(tmp_path, {}, "val/bleu"))


def test_a_code_confound_shows_each_rows_numerics_commit_abbreviated_to_8(tmp_path):
    from ablate.report.confounds import audit

    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    commits = []
    for text in ("x = 1\n", "x = 2\n"):
        (tmp_path / "ablate" / "models").mkdir(parents=True, exist_ok=True)
        (tmp_path / "ablate" / "models" / "m.py").write_text(text)
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", "c"], check=True)
        commits.append(subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip())
    runs = _runs({"a": [0.5, 0.6], "b": [0.7, 0.8]}).assign(git_commit=[commits[0]] * 2 + [commits[1]] * 2)
    (code,) = audit(runs, {"a": "", "b": ""}, root=tmp_path).confounds
    assert code.field == "code" and code.values == {"a": [commits[0][:8]], "b": [commits[1][:8]]}


# ---- report/scaling.py ------------------------------------------------------------------------------------------

def test_the_compute_figures_follow_the_parameter_count_figure_on_the_page(tmp_path):
    from ablate.report.figures import Figure
    from ablate.report.scaling import with_compute_figures
    from ablate.report.tables import summarize

    df = _runs({"a": [0.5, 0.6]}, train_flops=1e9)  # one compute: the figure is there, saying why it is empty
    figures = [Figure(n, n) for n in ("learning_curves", "params_vs_metric", "samples")]
    got = with_compute_figures(figures, df, tmp_path, tmp_path, summarize(df, "test/seq_acc", keys=[]))
    assert [f.name for f in got] == ["learning_curves", "params_vs_metric", "compute_vs_metric", "samples"]


# ---- sampled mutants make mutate had not reached yet (checked by hand) ------------------------------------------

def test_each_bad_hypothesis_field_is_named_with_its_value_and_what_is_valid():
    from ablate.experiment.hypotheses import check_hypotheses

    raw = {"variants": {"a": {}, "b": {}}}
    good = {"name": "h", "claim": "a is better", "rows": ["a", "b"], "expect": "higher", "note": "a note"}
    assert check_hypotheses([good], raw, "exp.yaml") == []
    for bad, key, value, words in [({"claim": 3}, "hypotheses.h.claim", 3, "the claim, as text"),
                                   ({"rows": ["a", "a"]}, "hypotheses.h.rows", ["a", "a"], "two different rows"),
                                   ({"name": "a b"}, "hypotheses.a b.name", "a b", "plain name"),
                                   ({"note": 3}, "hypotheses.h.note", 3, "text"),
                                   ({"alpha": 1.5}, "hypotheses.h.alpha", 1.5, "(0, 1)"),
                                   ({"metric": "seq_acc"}, "hypotheses.h.metric", "seq_acc", "test/<name>")]:
        (e,) = check_hypotheses([{**good, **bad}], raw, "exp.yaml")
        assert (e.key, e.value, e.where) == (key, value, "exp.yaml") and words in e.expected
    assert check_hypotheses([{**good, "note": 3}], raw, None)[0].expected == "must be text"


def test_a_bad_hypothesis_key_or_row_is_answered_with_what_is_valid():
    from ablate.experiment.hypotheses import check_hypotheses

    raw = {"variants": {"a": {}, "b": {}}}
    valid = "name, claim, rows, metric, expect, alpha, published, note"
    (e,) = check_hypotheses(["h"], raw, None)
    assert e.expected == f"must be a mapping with keys {valid}"
    good = {"name": "h", "claim": "a is better", "rows": ["a", "b"], "expect": "higher"}
    (e,) = check_hypotheses([{**good, "claims": "x"}], raw, None)
    assert e.key == "hypotheses.h.claims" and e.expected.endswith(f"(valid: {valid})")
    (e,) = check_hypotheses([{**good, "rows": [{"arch": "lstm"}, "b"]}], raw, None)
    assert e.expected.startswith("a row given as a mapping names it by dotted config keys and values, e.g. "
                                 "{model.arch: lstm, task.name: reverse}")


def _train(**kw):
    from ablate.config import TrainConfig

    return TrainConfig(**kw)


def test_stopping_keys_are_checked_with_their_values_and_where_they_are_set():
    from ablate.stopping import TargetConfig, check_stopping

    monitors = ["val/loss", "val/seq_acc"]
    assert check_stopping(_train(target=TargetConfig("val/loss", 2.0)), monitors, "e") == []  # a loss may exceed 1
    (e,) = check_stopping(_train(target=TargetConfig("val/seq_acc", 1.5)), monitors, "e")
    assert (e.key, e.value, e.where) == ("train.target.value", 1.5, "e") and "(0, 1]" in e.expected
    (e,) = check_stopping(_train(target=TargetConfig("val/bleu4", 0.5)), monitors, "e")
    assert (e.key, e.value) == ("train.target.metric", "val/bleu4")
    (e,) = check_stopping(_train(max_steps=0), monitors, "e")
    assert (e.key, e.value) == ("train.max_steps", 0)
    assert e.expected == "must be > 0 (stop after that many optimizer steps), or -1 for no limit"
    (e,) = check_stopping(_train(val_every_n_steps=-1), monitors, "e")
    assert (e.key, e.where) == ("train.val_every_n_steps", "e")
    (e,) = check_stopping(_train(max_epochs=-1, max_steps=-1, schedule="cosine"), monitors, "e")
    assert e.key == "train.max_steps" and "needs a horizon" in e.expected


def test_two_rows_that_resolve_to_the_same_run_are_trained_once_and_the_plan_says_so(tmp_path):
    import yaml

    from ablate.config import load_experiment
    from ablate.experiment.plan import plan

    exp = {"name": "dup", "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 8,
                                   "n_val": 4, "n_test": 4},
           "model": {"arch": "gru", "d_model": 16, "n_layers": 1}, "train": {"max_epochs": 1, "batch_size": 8},
           "variants": {"base": {}, "same": {"model.d_model": 16}}}
    (tmp_path / "dup.yaml").write_text(yaml.safe_dump(exp))
    p = plan(load_experiment(tmp_path / "dup.yaml"))
    assert len(p.runs) == 1
    assert "base (seed 0) is the same run as same: trained once" in p.notes


def test_results_csv_records_whether_the_flop_count_is_a_lower_bound(tmp_path):
    from ablate.experiment.results import results_frame

    d = tmp_path / "r1"
    d.mkdir()
    (d / "config.yaml").write_text("seed: 0\n")
    (d / "result.json").write_text('{"status": "finished", "label": "a", "train_flops": 1e9, '
                                   '"flops_lower_bound": true}')
    assert results_frame(tmp_path).at[0, "flops_lower_bound"] == True  # noqa: E712 (a numpy bool)
