"""Reports that scale: a 2-task x 3-arch x 2-seed grid gets one panel per task and at most 10 legend entries in
every figure; the forest plot's intervals match a hand computation; tables drop constant and repeated columns."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ablate.report.tables import summarize, to_html, to_markdown

GRID = {
    "name": "scaling",
    "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 32, "n_val": 8,
             "n_test": 16},
    "model": {"arch": "lstm", "d_model": 8, "n_layers": 1, "n_heads": 2},
    "train": {"max_epochs": 2, "batch_size": 32, "eval_batch_size": 64},
    "seeds": [0, 1],
    "grid": {"task": [{"name": "reverse"}, {"name": "copy", "vocab_size": 6}],
             "model.arch": ["lstm", "cnn", "transformer"]},
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from tiny_runs import report_figures, run_in_process

    tmp = tmp_path_factory.mktemp("scaling")
    return report_figures(run_in_process(GRID, tmp), tmp / "report")


def test_every_figure_has_one_panel_per_task_and_a_short_legend(report):
    index, figures = report
    drawn = {f.name: f for f in figures if not f.skipped}
    assert {"learning_curves", "by_length", "params_vs_metric"} <= set(drawn)
    for f in figures:
        assert f.legend_entries <= 10, (f.name, f.legend_entries)
    for name in ("learning_curves", "by_length", "params_vs_metric"):
        titles = drawn[name].panels
        assert sum("reverse" in t for t in titles) == sum("copy" in t for t in titles) >= 1, (name, titles)
        assert drawn[name].legend_entries == 3  # lstm, cnn, transformer: the keys that vary within a panel
    # a Pareto front per task: runs of different tasks are never on one front (a split is a task of its own)
    titles = drawn["compute_vs_metric"].panels
    assert sum("reverse" in t for t in titles) == sum("copy" in t for t in titles) == 1, titles
    ahead = drawn["compute_vs_metric"].caption.split("Ahead on the front: ")[1]
    assert ahead.count("reverse: ") == ahead.count("copy: ") == 1, ahead
    text = index.read_text()
    assert "vocab=" not in text.split('id="figures"')[1].split('id="runs"')[0]  # no constant-within-panel keys


def test_accuracy_axes_span_zero_to_one_and_params_are_true_values(report, monkeypatch):
    import matplotlib.pyplot as plt

    import ablate.report.plots as plots
    from ablate.experiment.results import results_frame

    index, _ = report
    root = index.parent.parent / "runs" / "scaling"
    df = results_frame(root)
    s = summarize(df, "test/seq_acc")
    seen = []
    real_save = plots.save

    def spy(fig, out, name, figure=None):
        seen.append([(ax.get_ylim(), [x for line in ax.get_lines() for x in line.get_xdata()])
                     for ax in fig.axes if ax.has_data()])
        return real_save(fig, out, name, figure)

    monkeypatch.setattr(plots, "save", spy)
    plots.params_vs_metric(df, s, index.parent / "p2")
    plt.close("all")
    (axes,) = seen
    true = set(df.loc[df["status"] == "finished", "params"].astype(float))
    for ylim, xs in axes:
        assert ylim == (0.0, 1.0)
        assert {float(x) for x in xs} <= true  # no jitter: every point at its true parameter count


def test_forest_intervals_match_a_hand_computation():
    from ablate.report.forest import delta_ci, forest_rows

    base, wide = [0.5, 0.6, 0.7], [0.90, 0.92, 0.94]
    # By hand: Δ = 0.92 - 0.60; s² = 0.0004 (wide), 0.01 (base); se² = 0.0004/3 + 0.01/3;
    # Welch df = se⁴ / ((0.0004/3)²/2 + (0.01/3)²/2); t = t_{0.975, df}.
    from scipy.stats import t

    se2 = 0.0004 / 3 + 0.01 / 3
    dof = se2**2 / ((0.0004 / 3) ** 2 / 2 + (0.01 / 3) ** 2 / 2)
    half = t.ppf(0.975, dof) * math.sqrt(se2)
    d, lo, hi = delta_ci(np.array(wide), np.array(base))
    assert d == pytest.approx(0.32)
    assert (lo, hi) == pytest.approx((0.32 - half, 0.32 + half))
    assert dof == pytest.approx(2.1597, abs=1e-3) and half == pytest.approx(0.2362, abs=1e-3)
    assert delta_ci(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == (0.0, 0.0, 0.0)
    assert math.isnan(delta_ci(np.array([0.5]), np.array(base))[1])  # one seed: no interval

    rows = [dict(run_id=f"{v}{i}", variant=v, label=v, seed=i, status="finished", **{"test/seq_acc": x})
            for v, xs in (("base", base), ("wide", wide), ("same", [0.55, 0.65, 0.6])) for i, x in enumerate(xs)]
    df = pd.DataFrame(rows)
    f = forest_rows(df, summarize(df, "test/seq_acc", baseline="base", keys=[])).set_index("label")
    assert list(f.index) == ["wide", "same"]
    # clipped: the baseline's 0.60 leaves a row's mean room for Δ <= +0.40 (0.32 + 0.236 would put it above 1)
    assert (f.at["wide", "low"], f.at["wide", "high"]) == pytest.approx((0.32 - half, 0.4))
    assert not f.at["same", "excludes_0"] and not f.at["same", "significant"]  # greyed: the CI spans 0
    # wide's interval excludes 0 (raw p 0.028) but over a family of two comparisons Holm makes it 0.056: the plot
    # marks it as not surviving the correction, as the table's marks do
    assert f.at["wide", "excludes_0"] and not f.at["wide", "significant"]
    alone = df[df["label"] != "same"]
    f1 = forest_rows(alone, summarize(alone, "test/seq_acc", baseline="base", keys=[])).set_index("label")
    assert f1.at["wide", "significant"]  # a family of one: the raw p stands


def test_forest_plot_comes_first_on_the_page(tmp_path):
    from ablate.report.forest import forest
    from ablate.report.plots import Figure

    rows = [dict(run_id=f"{v}{i}", variant=v, label=v, seed=i, status="finished", **{"test/seq_acc": x})
            for v, xs in (("base", [0.5, 0.6, 0.7]), ("wide", [0.9, 0.92, 0.94])) for i, x in enumerate(xs)]
    df = pd.DataFrame(rows)
    fig = forest(df, summarize(df, "test/seq_acc", baseline="base", keys=[]), tmp_path)
    assert isinstance(fig, Figure) and not fig.skipped and fig.files[0].is_file()
    assert "1 of 1 rows" in fig.caption


def test_tables_state_constant_columns_once_and_drop_repeated_metrics():
    rows = [dict(run_id=f"{a}{i}", variant="", label=f"model.arch={a}", seed=i, status="finished",
                 **{"model.arch": a, "test/seq_acc": x, "test/acc": x, "test/loss": 1 - x, "params": 1000,
                    "train_time_s": 2.0, "tokens_per_s": 100.0, "eval_time_s": 0.5 + (a == "lstm"),
                    "train.target.value": 0.5, "steps": 100, "steps_to_target": (40 if a == "lstm" else 80) + i})
            for a, xs in (("lstm", [0.5, 0.6]), ("transformer", [0.9, 0.8])) for i, x in enumerate(xs)]
    s = summarize(pd.DataFrame(rows), "test/acc", keys=["model.arch"])
    md = to_markdown(s)
    head = next(line for line in md.splitlines() if line.startswith("|"))
    assert "acc ↑" in head and "seq acc" not in head  # seq acc repeats acc: shown once
    assert "params" not in head and "| n |" not in head  # the same in every row...
    assert "Same in every row:" in md and "params 1k" in md  # ...so stated once above
    assert "steps to target" in head and "eval s" in head  # the columns other branches record, when present
    assert '<div class="scroll">' in to_html(s)


# ---------------------------------------------------------------- compute axis and scaling laws
def test_pareto_front_is_the_lower_envelope_of_a_hand_made_example():
    from ablate.report.scaling import pareto_front

    # a small model's curve (C = 1, 2, 4) and a large one's (C = 2, 4, 8): the large one starts worse, then wins
    c = [1, 2, 4, 2, 4, 8]
    loss = [3.0, 2.0, 1.8, 3.5, 1.5, 1.0]
    assert list(pareto_front(c, loss)) == [True, True, False, False, True, True]
    # higher is better (accuracy): the front is the upper envelope; of two points tied on both, the first
    assert list(pareto_front([1, 2, 2, 3], [0.5, 0.7, 0.7, 0.6], minimize=False)) == [True, True, False, False]
    assert list(pareto_front([1, float("nan")], [1.0, 0.5])) == [True, False]


def test_exponent_over_seeds_recovers_a_known_one_and_refuses_what_it_cannot_support():
    from ablate.report.powerlaw import fit_over_seeds

    rng = np.random.default_rng(0)
    c = np.logspace(9, 13, 8)
    seeds = {s: (c, 5.0 * c ** -0.08 * np.exp(rng.normal(0, 0.01, c.size))) for s in range(3)}
    fit = fit_over_seeds(seeds)
    assert fit.refused is None and fit.seeds == 3
    assert fit.b_low < 0.08 < fit.b_high and abs(fit.b - 0.08) < 0.005
    assert "3-seed 95% t interval" in fit.text()
    flat = {s: (c, 2.0 * np.exp(rng.normal(0, 0.05, c.size))) for s in range(3)}  # no law: loss does not fall
    assert fit_over_seeds(flat).b is None and "includes 0" in fit_over_seeds(flat).refused
    one = fit_over_seeds({0: seeds[0]})
    assert one.b is None and "1 seed with a fit, at least 2 needed" in one.refused
    short = fit_over_seeds({s: (c[:2], v[:2]) for s, (c, v) in seeds.items()})
    assert short.b is None and "at most 2 points a seed, at least 3 needed" in short.refused


def test_flops_columns_appear_where_runs_carry_them_and_older_runs_do_without():
    rows = [dict(run_id=f"{a}{i}", variant="", label=f"model.arch={a}", seed=i, status="finished",
                 **{"model.arch": a, "test/seq_acc": 0.5 + 0.1 * i, "params": 1000 * (1 + (a == "gru")),
                    "train_time_s": 2.0, "tokens_per_s": 100.0})
            for a in ("gru", "transformer") for i in range(2)]
    old = to_markdown(summarize(pd.DataFrame(rows), "test/seq_acc", keys=["model.arch"]))
    assert "FLOPs" not in old and "params" in old
    gru = {"gru": True, "transformer": False}
    new = pd.DataFrame([{**r, "train_flops_per_token": 3e5 * (1 + gru[r["model.arch"]]),
                         "decode_flops_per_token": 2.5e5,
                         "flops_to_target": (4e12 if gru[r["model.arch"]] else 2e12) if r["seed"] == 0 else None}
                        for r in rows])
    md = to_markdown(summarize(new, "test/seq_acc", keys=["model.arch"]))
    head = next(line for line in md.splitlines() if line.startswith("|"))
    assert "train FLOPs/token" in head and "FLOPs to target" in head
    assert "| 600k |" in md and "4T (1/2 reached)" in md and "2T (1/2 reached)" in md
    assert "decode FLOPs/token 250k" in md  # the same in every row: stated once


SIZES = {
    "name": "sizes",
    "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 32, "n_val": 8,
             "n_test": 8},
    "model": {"arch": "gru", "d_model": 8, "n_layers": 1},
    "train": {"max_epochs": 2, "batch_size": 16, "eval_batch_size": 64},
    "seeds": [0],
    "grid": {"model.d_model": [8, 16]},
    "report": {"x": "flops", "metric": "test/loss"},
}


def test_a_report_on_the_flops_axis_draws_the_compute_and_scaling_figures(tmp_path):
    from tiny_runs import report_figures, run_in_process

    index, figures = report_figures(run_in_process(SIZES, tmp_path), tmp_path / "report")
    figs = {f.name: f for f in figures}
    for name in ("compute_vs_metric", "scaling_compute", "scaling_params"):
        assert not figs[name].skipped, (name, figs[name].skipped)
        assert (tmp_path / "report" / "plots" / f"{name}.png").is_file()
    assert "Pareto front" in figs["compute_vs_metric"].caption
    assert figs["compute_vs_metric"].legend_entries == 2  # gru, and the front's rings named in the legend
    # one seed: no exponent can be given an interval, and the captions say so in place of a number
    assert "gru: no fit (" in figs["scaling_compute"].caption
    assert "gru: no fit (at most 2 points a seed, at least 3 needed)" in figs["scaling_params"].caption
    assert "train FLOPs/token" in (tmp_path / "report" / "table.md").read_text()
    assert index.is_file()


def test_variants_that_split_an_arch_are_architectures_of_their_own():
    from ablate.report.scaling import _arch, size_grid

    runs = pd.DataFrame({"model.arch": ["transformer"] * 2 + ["seq2seq_attention"] * 2,
                         "variant": ["transformer", "linear_attention", "seq2seq_attention", "seq2seq_attention"],
                         "params": [10, 10, 5, 9]})
    assert list(_arch(runs)) == ["transformer", "linear_attention", "seq2seq_attention", "seq2seq_attention"]
    assert size_grid(runs)  # seq2seq_attention at two sizes
    assert list(_arch(runs.drop(columns="variant"))) == list(runs["model.arch"])
    assert not size_grid(runs.iloc[:2])


def test_the_compute_legend_names_an_architecture_found_only_in_a_later_panel(tmp_path):
    """Two tasks, the GRU trained on the second only: its points are drawn there, so the legend names it too
    (taking the names from the first panel alone left it out)."""
    from ablate.report.scaling import compute_vs_metric

    rows = [dict(run_id=f"{t}{a}{i}", variant="", label=f"{t} {a}", seed=i, status="finished",
                 **{"task.name": t, "model.arch": a, "train_flops": c * (1 + i), "test/loss": 1 / (c * (1 + i)),
                    "params": 100})
            for t, archs in (("copy", ["lstm"]), ("reverse", ["lstm", "gru"]))
            for a, c in zip(archs, (1e9, 3e9)) for i in range(2)]
    df = pd.DataFrame(rows)
    (fig,) = compute_vs_metric(df, summarize(df, "test/loss", keys=["task.name", "model.arch"]), tmp_path)
    assert len(fig.panels) == 2, fig.panels
    assert fig.legend_entries == 3  # lstm, gru and the Pareto front's rings


@pytest.mark.parametrize("lo, hi, want", [(3e-4, 3.0, ["0.001", "0.01", "0.1", "1"]),
                                          (0.02, 1.5, ["0.02", "0.05", "0.1", "0.2", "0.5", "1"])])
def test_a_log_loss_axis_over_decades_is_labelled_at_round_values(lo, hi, want):
    """Five evenly spread ticks suit a loss within a decade; over decades they land on odd values ('0.00515')."""
    import matplotlib.pyplot as plt

    from ablate.report.scaling import _log_y

    fig, ax = plt.subplots()
    ax.set_yscale("log")
    ax.plot([1, 2], [lo, hi])
    ax.set_ylim(lo, hi)
    _log_y(ax)
    fig.canvas.draw()
    ticks = [t for t in ax.yaxis.get_majorticklocs() if lo <= t <= hi]
    assert [ax.yaxis.get_major_formatter()(t) for t in ticks] == want
    plt.close(fig)


def test_the_parameter_axis_is_labelled_as_counts_at_round_values_only():
    """L(N)'s x axis: '200k', '500k', '1M', and no minor labels ('3×10⁵' collided with '4×10⁵')."""
    import matplotlib.pyplot as plt

    from ablate.report.scaling import _finish_log_log

    fig, ax = plt.subplots()
    ax.scatter([1.7e5, 1.5e6], [1.0, 0.01], label="a")
    _finish_log_log(fig, ax, {}, {}, {}, "parameters", "test loss", "t", counts=True)
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    major = [ax.xaxis.get_major_formatter()(t) for t in ax.xaxis.get_majorticklocs() if lo <= t <= hi]
    minor = [ax.xaxis.get_minor_formatter()(t) for t in ax.xaxis.get_minorticklocs() if lo <= t <= hi]
    assert major == ["200k", "500k", "1M"] and not any(minor)
    plt.close(fig)


def test_l_of_n_draws_runs_capped_while_improving_hollow_and_counts_them(tmp_path):
    """A capped run's loss is an upper bound: L(N) draws it hollow and its caption says how many per arch, so a
    fit through unconverged points is not read as a converged L(N)."""
    from ablate.report.figures import Figure
    from ablate.report.scaling import _params_figure

    rows = [dict(arch=a, seed=seed, params=n, stop_reason="max_steps" if capped else "plateau",
                 still_improving=capped, **{"test/loss": 10 * n ** -0.5 * (1 + 0.01 * seed)})
            for a, cap_below in (("lstm", 3e5), ("transformer", 0)) for seed in range(3)
            for n in (1e5, 2e5, 4e5, 8e5) for capped in [n < cap_below]]
    fig = _params_figure(pd.DataFrame(rows), tmp_path, Figure("scaling_params", "t"))
    assert "Hollow: runs stopped at their cap while still improving (lstm 6 of 12)" in fig.caption
    plain = _params_figure(pd.DataFrame(rows).assign(still_improving=False), tmp_path, Figure("scaling_params", "t"))
    assert "Hollow" not in plain.caption


def test_a_log_axis_under_a_decade_is_labelled_at_round_values_not_crowded_linear_ticks():
    """coreference's compute axis spans 170G-460G: 1-2-5 a decade left one label (200G), matplotlib fell back to
    linear ticks every 50G, and on the log axis '350G 400G450G' ran together. Labels stay at 1, 2, 3 or 5 times a
    power of ten, at least two of them; an axis over a decade keeps 1-2-5."""
    import math

    import matplotlib.pyplot as plt

    from ablate.report.plots import decade_ticks

    for lo, hi, mantissas in ((1.7e11, 4.6e11, {1, 2, 3, 5}), (1.5e5, 1.2e6, {1, 2, 3, 5}), (3e4, 2e6, {1, 2, 5})):
        fig, ax = plt.subplots()
        ax.scatter([lo, hi], [0, 1])
        ax.set_xscale("log")
        decade_ticks(ax.xaxis)
        fig.canvas.draw()
        a, b = ax.get_xlim()
        shown = [t for t in ax.get_xticks() if a <= t <= b]
        assert len(shown) >= 2, (lo, hi, shown)
        assert {round(t / 10 ** math.floor(math.log10(t) + 1e-9)) for t in shown} <= mantissas, (lo, hi, shown)
        plt.close(fig)
