"""Reports: table numerics and rendering, plots, the index page end to end, and `ablate attend`."""

from __future__ import annotations

import io
import math
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import ttest_ind

from ablate.report.tables import latex_escape, stars, summarize, to_latex, to_markdown, welch_p


# ------------------------------------------------------------------ aggregation on a hand-made frame
def header(md: str) -> str:
    """The header row of a markdown table (after the line that states constant columns)."""
    return next(line for line in md.splitlines() if line.startswith("|"))


def frame() -> pd.DataFrame:
    rows = []
    for seed, (a, b) in enumerate([(0.50, 0.90), (0.60, 0.92), (0.70, 0.94)]):
        rows.append(dict(run_id=f"b{seed}", variant="base", label="base", seed=seed, status="finished",
                         **{"model.d_model": 32, "test/seq_acc": a, "test/loss": 1.0 + a, "params": 1000,
                            "train_time_s": 2.0, "tokens_per_s": 100.0}))
        rows.append(dict(run_id=f"w{seed}", variant="wide", label="wide", seed=seed, status="finished",
                         **{"model.d_model": 64, "test/seq_acc": b, "test/loss": 2.0 - b, "params": 4000,
                            "train_time_s": 3.0, "tokens_per_s": 80.0}))
    rows.append(dict(run_id="n0", variant="no_pe", label="no_pe", seed=0, status="finished",
                     **{"model.d_model": 32, "test/seq_acc": 0.1, "test/loss": 3.0, "params": 1000}))
    # A failed run that carries a (bogus) number: it must never be averaged in.
    rows.append(dict(run_id="n1", variant="no_pe", label="no_pe", seed=1, status="failed", error="CUDA out of memory",
                     **{"model.d_model": 32, "test/seq_acc": 1.0}))
    return pd.DataFrame(rows)


def test_aggregation_mean_std_n_best_delta_and_significance():
    s = summarize(frame(), "test/seq_acc", baseline="base", keys=["model.d_model"])
    f = s.frame.set_index("label")
    assert list(f.index) == ["base", "wide", "no_pe"]
    assert f.at["base", "test/seq_acc/mean"] == pytest.approx(0.6)
    assert f.at["base", "test/seq_acc/std"] == pytest.approx(0.1)  # sample std, ddof=1
    assert f.at["wide", "test/seq_acc/std"] == pytest.approx(0.02)
    assert (f.at["base", "n"], f.at["no_pe", "n"], f.at["no_pe", "n_failed"]) == (3, 1, 1)
    assert f.at["no_pe", "test/seq_acc/mean"] == pytest.approx(0.1)  # the failed run's 1.0 is not in
    assert math.isnan(f.at["no_pe", "test/seq_acc/std"])
    assert s.best("test/seq_acc") == {"wide"} and s.best("test/loss") == {"wide"}  # max acc, min loss
    assert f.at["wide", "delta/test/seq_acc"] == pytest.approx(0.32)
    assert f.at["no_pe", "delta/test/seq_acc"] == pytest.approx(-0.5)
    assert math.isnan(f.at["base", "delta/test/seq_acc"])
    expected = ttest_ind([0.9, 0.92, 0.94], [0.5, 0.6, 0.7], equal_var=False).pvalue
    assert f.at["wide", "p/test/seq_acc"] == pytest.approx(expected)
    assert math.isnan(f.at["no_pe", "p/test/seq_acc"])  # one seed: no test
    assert list(s.failed["run_id"]) == ["n1"] and "out of memory" in s.failed["error"][0]
    md = to_markdown(s)
    assert "**0.920 ± 0.020**" in md and "0.600 ± 0.100" in md
    assert "+0.320" + "\\*" * len(stars(expected)) in md and stars(expected)  # significant at 3 seeds
    assert "1 (+1 failed)" in md and "Welch" in md
    assert "d_model" in header(md)  # model.d_model -> a readable column name


def test_baseline_variant_compares_at_the_same_grid_point_and_missing_baseline_is_said():
    rows = [dict(run_id=f"{v}{h}{sd}", variant=v, label=f"{v}, model.n_heads={h}", seed=sd, status="finished",
                 **{"model.n_heads": h, "model.pos_encoding": pe, "test/seq_acc": acc + 0.01 * sd})
            for v, pe, base_acc in (("base", "sinusoidal", 0.5), ("no_pe", "none", 0.2))
            for h, acc in ((1, base_acc), (2, base_acc + 0.3)) for sd in (0, 1)]
    s = summarize(pd.DataFrame(rows), baseline="base", keys=["model.n_heads", "model.pos_encoding"])
    f = s.frame.set_index("label")
    assert f.at["no_pe, model.n_heads=1", "baseline"] == "base, model.n_heads=1"
    assert f.at["no_pe, model.n_heads=2", "delta/test/seq_acc"] == pytest.approx(-0.3)
    assert "heads" in header(to_markdown(s))
    s = summarize(pd.DataFrame(rows), baseline="nope")
    assert not s.has_delta and any("nope" in n for n in s.notes)


def test_welch_edge_cases():
    assert math.isnan(welch_p(np.array([0.5]), np.array([0.1, 0.2])))
    assert welch_p(np.array([0.0, 0.0]), np.array([0.0, 0.0])) == 1.0
    assert welch_p(np.array([1.0, 1.0]), np.array([0.0, 0.0])) == 0.0
    # equal up to float noise (0.1 + 0.2 vs 0.3) is equal, and scipy's cancellation warning stays off the terminal
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert welch_p(np.array([0.1 + 0.2, 0.3, 0.3]), np.array([0.3, 0.3, 0.3])) == 1.0
        assert welch_p(np.array([0.1 + 0.2, 0.3, 0.3]), np.array([0.3, 0.3, 0.3 + 1e-9])) > 0.05
    assert stars(0.0004) == "***" and stars(0.004) == "**" and stars(0.04) == "*" and stars(0.2) == ""


def test_latex_booktabs_and_escaping():
    df = frame()
    df["variant"] = df["label"] = df["label"].replace({"wide": "x%&y", "no_pe": "no_pe"})
    tex = to_latex(summarize(df, baseline="base", keys=[]))
    lines = tex.splitlines()
    for rule in (r"\toprule", r"\midrule", r"\bottomrule"):
        assert lines.count(rule) == 1
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert r"\begin{tabular}{l" in tex and r"\hline" not in tex
    assert r"no\_pe" in tex and r"x\%\&y" in tex and r"\textbf{0.920 $\pm$ 0.020}" in tex
    body = "\n".join(lines[lines.index(r"\midrule") + 1: lines.index(r"\bottomrule")])
    assert not re.search(r"(?<!\\)[_%]", body)  # every _ and % escaped
    assert all(line.count("&") - line.count(r"\&") == len(lines[lines.index(r"\toprule") + 1].split(" & ")) - 1
               for line in body.splitlines())  # only column separators are bare &
    assert latex_escape("a_b 50% & $x^2$ {#~}") == (r"a\_b 50\% \& \$x\textasciicircum{}2\$ \{\#"
                                                  r"\textasciitilde{}\}")


def test_plots_skip_with_a_reason_when_their_data_is_missing(tmp_path):
    from ablate.report.plots import all_plots

    df = frame()
    s = summarize(df, keys=["model.d_model"])
    s.frame["params/mean"] = 1000.0
    figures = all_plots(df, tmp_path / "runs", tmp_path / "plots", s, list(s.frame["label"]))
    assert [f.name for f in figures] == ["learning_curves", "by_length", "throughput", "params_vs_metric",
                                         "attention"]
    assert all(f.skipped and not f.files for f in figures)
    assert "task.max_len" in figures[2].skipped and "same parameter count" in figures[3].skipped


def test_report_of_an_empty_runs_dir(tmp_path):
    from ablate.report import build_report

    (tmp_path / "runs" / "nothing").mkdir(parents=True)
    index = build_report(tmp_path / "runs" / "nothing", tmp_path / "report")
    assert "no runs" in index.read_text() and (tmp_path / "report" / "README.md").is_file()


# ------------------------------------------------------------------ a real tiny grid, end to end
EXPERIMENT = """\
# A tiny grid for the report tests.
name: tiny
description: "Transformer vs LSTM on reverse, by length: 100% tiny & fast"
task: {name: reverse, vocab_size: 5, min_len: 2, max_len: 4, n_train: 64, n_val: 16, n_test: 32}
model: {arch: transformer, d_model: 16, n_layers: 1, n_heads: 2, dropout: 0.0}
train: {max_epochs: 2, batch_size: 32, eval_batch_size: 64}
seeds: [0, 1]
variants:
  transformer: {}
  lstm: {model.arch: lstm}
grid: {task.max_len: [4, 6]}
report: {baseline: lstm}
"""


@pytest.fixture(scope="module")
def grid(tmp_path_factory) -> Path:
    import torch

    from ablate.config import load_experiment
    from ablate.experiment.runner import run_experiment

    tmp = tmp_path_factory.mktemp("grid")
    (tmp / "tiny.yaml").write_text(EXPERIMENT)
    threads = torch.get_num_threads()
    # One thread per tiny run: on a busy machine, several threads per step make these runs 10x slower.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ablate.experiment.executors.cpu_count", lambda: 1)
        code = run_experiment(load_experiment(tmp / "tiny.yaml"), tmp / "runs", report=False, out=io.StringIO())
    torch.set_num_threads(threads)
    assert code == 0
    return tmp / "runs" / "tiny"


def run_of(root: Path, arch: str) -> Path:
    from ablate.experiment.results import results_frame

    df = results_frame(root)
    return root / df.loc[df["model.arch"] == arch, "run_id"].iloc[0]


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.targets += [v for k, v in attrs if k in ("href", "src") and v and not v.startswith("#")]


def test_report_end_to_end(grid, tmp_path):
    from ablate.report import build_report

    out = tmp_path / "elsewhere" / "report"  # not next to the runs: links must still resolve
    index = build_report(grid, out)
    assert index == out / "index.html"
    text = index.read_text()
    assert "100% tiny &amp; fast" in text and "http://" not in text and "https://" not in text
    parser = Links()
    parser.feed(text)
    assert parser.targets
    for target in parser.targets:
        assert (out / unquote(target)).is_file(), target
    from ablate.report.manifest import experiment_hash, read_manifest
    from ablate.report.page import read_experiment

    manifest = read_manifest(out)  # which experiment and runs the folder shows (ablate.api.report_dir reads it)
    assert manifest["experiment_hash"] == experiment_hash(read_experiment(grid))
    assert manifest["run_ids"] == sorted(d.name for d in grid.iterdir() if (d / "result.json").is_file())
    configs = [t for t in parser.targets if t.endswith("config.yaml")]
    assert len(set(configs)) == 8
    for name in ("learning_curves", "by_length", "throughput", "params_vs_metric"):
        for ext in ("png", "pdf"):
            path = out / "plots" / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 1000, path
            assert f"plots/{name}.png" in text
    # an attention map only where the model learned the task (these two-epoch models may not have)
    learned = (out / "plots" / "attention_transformer.png").is_file()
    assert learned == ("plots/attention_transformer.png" in text) and (learned or "did not learn the task" in text)
    assert text.count("Not drawn") == (0 if learned else 1)  # every other figure's data is there
    readme = (out / "README.md").read_text()
    for target in re.findall(r"\]\(([^)]+)\)", readme):
        assert (out / unquote(target)).is_file(), target
    table = pd.read_csv(out / "table.csv")
    assert len(table) == 4 and set(table["n"]) == {2}
    assert {"delta/test/seq_acc", "p/test/seq_acc", "test/seq_acc/std"} <= set(table.columns)
    md = (out / "table.md").read_text()
    assert "max len" in md and "Δ seq acc" in md
    assert r"\toprule" in (out / "table.tex").read_text()


def test_attend_writes_one_heatmap_per_layer_and_head(grid, tmp_path, capsys):
    from ablate.report.attend import attend

    run = run_of(grid, "transformer")
    assert attend(run, "1 2 3", tmp_path / "att") == 0
    files = sorted(p.name for p in (tmp_path / "att").glob("*.png"))
    modules = ["encoder.layer0.self", "decoder.layer0.self", "decoder.layer0.cross"]
    assert files == sorted(f"{m}.head{h}.png" for m in modules for h in range(2))
    assert all((tmp_path / "att" / f).stat().st_size > 1000 for f in files)
    printed = capsys.readouterr().out
    assert "input : 1 2 3" in printed and "decoder.layer0.cross" in printed and "->" in printed


def test_attend_errors_name_the_bad_token_and_the_arch(grid, capsys):
    from ablate.cli import main

    run = run_of(grid, "transformer")
    assert main(["attend", str(run), "1 2 banana"]) == 2
    err = capsys.readouterr().err
    assert "'banana'" in err and "1 2 3" in err  # the bad token and a few valid ones
    assert main(["attend", str(run_of(grid, "lstm")), "1 2"]) == 2
    err = capsys.readouterr().err
    assert "'lstm'" in err and "no attention" in err
    assert not (run_of(grid, "lstm") / "attend").exists()


def test_by_length_shades_per_task_the_lengths_longer_than_any_training_input(tmp_path, monkeypatch):
    """The grey band starts past result.json's max_train_src_len of that panel's runs (not task.max_len, which
    for recall counts key-value pairs), and a panel whose test inputs are all seen lengths has none."""
    import matplotlib.axes

    from ablate.report.plots import by_length

    spans = []
    real = matplotlib.axes.Axes.axvspan
    monkeypatch.setattr(matplotlib.axes.Axes, "axvspan",
                        lambda self, lo, hi, **kw: spans.append((self, lo, hi)) or real(self, lo, hi, **kw))
    rows = []
    for task, max_len, src_max, lengths in (("recall", 4, 13, range(5, 26, 4)), ("reverse", 12, 12, range(4, 25)),
                                            ("sort", 12, 12, range(4, 13))):
        for seed in (0, 1):
            rid = f"{task}{seed}"
            rows.append(dict(run_id=rid, variant="base", label=task, seed=seed, status="finished",
                             **{"task.name": task, "task.max_len": max_len, "max_train_src_len": src_max,
                                "test/seq_acc": 0.5}))
            (tmp_path / "runs" / rid).mkdir(parents=True)
            pd.DataFrame({"length": list(lengths), "n": 3, "token_acc": 0.5, "seq_acc": 0.4}).to_csv(
                tmp_path / "runs" / rid / "by_length.csv", index=False)
    df = pd.DataFrame(rows)
    s = summarize(df, "test/seq_acc", keys=["task.name"])
    fig = by_length(df, tmp_path / "runs", tmp_path / "plots", s)
    assert fig.files and not fig.skipped
    shaded = {ax.get_title(): (lo, hi) for ax, lo, hi in spans}
    assert shaded == {"recall": (13.5, 25.5), "reverse": (12.5, 24.5)}
    assert "grey = longer than any training input" in fig.caption
    assert fig.title == "How does accuracy fall with input length?"  # old runs: their one length, the input's


def by_length_store(tmp_path, runs: dict) -> tuple:
    """Runs (two seeds a row) whose by_length.csv is the given frame; result fields as given."""
    rows = []
    for label, (task, (extra, frame)) in runs.items():
        for seed in (0, 1):
            rid = f"{label}{seed}"
            rows.append(dict(run_id=rid, variant=label, label=label, seed=seed, status="finished",
                             **{"task.name": task, "test/seq_acc": 0.5}, **extra))
            (tmp_path / "runs" / rid).mkdir(parents=True)
            frame.to_csv(tmp_path / "runs" / rid / "by_length.csv", index=False)
    df = pd.DataFrame(rows)
    return df, summarize(df, "test/seq_acc", keys=["task.name"])


def test_by_length_draws_scan_length_by_output_length_and_older_runs_by_their_length(tmp_path, monkeypatch):
    """SCAN's length split is defined by output length: its panel's x axis is output length (pooled over the
    commands' lengths, weighted by examples and scored tokens), shaded past the longest training output; a run
    made before both lengths were recorded still draws by its one (input) length."""
    import ablate.report.plots as plots

    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, out, name, f=None: drawn.append(fig) or [out / f"{name}.png"])
    scan = pd.DataFrame({"src_len": [3, 5, 5, 7], "tgt_len": [24, 24, 30, 30], "n": [1, 3, 2, 2],
                         "tokens": [25, 75, 62, 62], "token_acc": [1.0, 0.6, 0.5, 0.25],
                         "seq_acc": [1.0, 0.0, 0.5, 0.0]})
    old = pd.DataFrame({"length": [4, 8, 12], "n": 3, "token_acc": 0.5, "seq_acc": [0.9, 0.5, 0.1]})
    df, s = by_length_store(tmp_path, {
        "scan": ("scan", ({"length_by": "tgt_len", "max_train_length": 22, "max_train_src_len": 9}, scan)),
        "old": ("reverse", ({"max_train_src_len": 8}, old))})
    fig = plots.by_length(df, tmp_path / "runs", tmp_path / "plots", s)
    assert not fig.skipped and "output length" in fig.caption and fig.title == "How does accuracy fall with length?"
    (mpl,) = drawn
    axes = {}
    for ax in mpl.axes:  # the first panel of each task: seq acc (token acc is the row below)
        if ax.get_visible() and ax.has_data():
            axes.setdefault(ax.get_title(), ax)
    assert set(axes) == {"scan", "reverse"}
    assert axes["scan"].get_xlabel().startswith("output length") and axes["reverse"].get_xlabel().startswith(
        "input length")
    (line,) = [ln for ln in axes["scan"].lines if len(ln.get_xdata()) == 2]
    assert list(line.get_xdata()) == [24, 30]
    assert line.get_ydata() == pytest.approx([0.25, 0.25])  # (1*1 + 3*0) / 4 examples; (2*0.5 + 2*0) / 4
    (span,) = [p for p in axes["scan"].patches if p.get_facecolor()[:3] != (1, 1, 1)] or [None]
    assert span is not None and span.get_x() == pytest.approx(22.5)  # past the longest training output
    data = plots.regroup(plots._runs_data(df, tmp_path / "runs", "by_length.csv", s),
                         dict(zip(df["run_id"], df.get("length_by"), strict=True)))
    tok = data[(data["run_id"] == "scan0") & (data["length"] == 24)]["token_acc"].item()
    assert tok == pytest.approx((25 * 1.0 + 75 * 0.6) / 100)  # token_acc pooled by scored tokens


def test_attention_map_of_a_long_input_is_one_raster_with_few_labels():
    """A 256-token map drawn cell by cell with a label per token took minutes per report (throughput's
    256-token runs): long maps are rasterized, without cell borders, with positions marked every few tokens."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from ablate.report.attend import draw

    n = 256
    w = np.full((n, n), 1.0 / n)
    fig, ax = plt.subplots()
    draw(ax, w, [f"t{i}" for i in range(n)], [f"t{i}" for i in range(n)], "long", colorbar=False)
    mesh = ax.collections[0]
    assert mesh.get_rasterized()
    assert len(ax.get_xticklabels()) <= 20 and len(ax.get_yticklabels()) <= 20
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["0", "50"]
    plt.close(fig)
    # a short map keeps one label per token
    fig, ax = plt.subplots()
    draw(ax, np.eye(5), list("abcde"), list("abcde"), "short", colorbar=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcde")
    assert not ax.collections[0].get_rasterized()
    plt.close(fig)


def draw_attention(tmp_path, src: list, out: list, heads: int, layer: int = 0):
    """The report's attention figure of a run whose encoder self- and decoder cross-attention maps are random
    (seeded) over src and out: the Figure record, with its PNG under tmp_path."""
    import numpy as np

    from ablate.report.attend import Attention
    from ablate.report.plots import Figure, _attention_figure

    rng = np.random.default_rng(0)
    maps = {f"encoder.layer{layer}.self": rng.dirichlet(np.ones(len(src)), size=(heads, len(src))),
            f"decoder.layer{layer}.cross": rng.dirichlet(np.ones(len(src)), size=(heads, len(out)))}
    att = Attention(tmp_path, "transformer", "base", src, out, ["<bos>", *out[:-1]], maps)
    fig = Figure("attention_transformer", "Where does the best transformer look?")
    best = pd.Series({"run_id": "abc", "seed": 0, "label": "base", "test/seq_acc": 1.0})
    _attention_figure(fig, att, tmp_path, best, "test/seq_acc", tmp_path, "base")
    return fig


@pytest.mark.parametrize("n,heads", [(12, 4), (12, 2), (256, 4)])
def test_attention_figure_fits_the_page(tmp_path, n, heads):
    """The page is ~1064 px wide: the report's attention figure fits it (two heads a row at 12 tokens, where
    four 0.36-inch-cell panels a row made a 2,600 px figure that scrolled sideways), every head drawn."""
    from PIL import Image

    from ablate.report.plots import DPI

    src = [str(i % 10) for i in range(n)]
    fig = draw_attention(tmp_path, src, src[::-1] + ["<eos>"], heads)
    assert len(fig.panels) == 2 * heads
    with Image.open(fig.files[0]) as im:
        assert im.width * 96 / DPI <= 1064, im.size


def test_attention_figure_sizes_cells_by_the_keys_so_a_long_output_keeps_maps_readable(tmp_path, monkeypatch):
    """SCAN: 9 command words, 25 actions out. Sized by the longest of rows and columns, every cell shrank to
    0.13 in, the 9x9 encoder maps had their weights written over each other and the actions were numbered, not
    named. Cells are sized by the keys: each weight written sits in a cell >= ANNOTATED_CELL wide, each
    panel's first column names its query tokens, and a row's later heads do not repeat them into the panel
    beside them."""
    import matplotlib.pyplot as plt

    import ablate.report.plots as plots

    src = "turn opposite right thrice after jump around left twice".split()
    out = ["I_TURN_LEFT", "I_JUMP"] * 8 + ["I_TURN_RIGHT"] * 8 + ["<eos>"]
    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, *a, **k: drawn.append(fig) or [tmp_path / "x.png"])
    draw_attention(tmp_path, src, out, 4, layer=1)
    (mfig,) = drawn
    mfig.canvas.draw()
    panels = [ax for ax in mfig.axes if ax.get_title()]
    assert len(panels) == 8
    for ax in panels:
        n_cols = len(ax.collections[0].get_array().reshape(-1)) // (25 if "cross" in ax.get_title() else 9)
        cell = ax.get_window_extent().width / mfig.dpi / n_cols
        if ax.texts:
            assert cell >= 0.3, (ax.get_title(), round(cell, 3))  # "0.00" at 7 points fits
        names = [t.get_text() for t in ax.get_yticklabels()]
        first = ax.get_ylabel() != ""
        want = out if "cross" in ax.get_title() else src
        assert names == want if first else not any(names), (ax.get_title(), names)
    assert sum(bool(ax.texts) for ax in panels) == 8  # 9 keys at >= 0.3 in: every map carries its weights
    plt.close(mfig)


def test_attention_figure_of_a_long_answer_to_a_short_input_stays_a_page_tall(tmp_path):
    """Cells are sized by the keys; a 256-token answer to 10 words would make 0.36-inch rows, 2 x 94 in of
    cross-attention panels. Each panel is capped at TALLEST (20 in)."""
    from PIL import Image

    from ablate.report.plots import DPI

    fig = draw_attention(tmp_path, [str(i) for i in range(10)], [str(i % 10) for i in range(255)] + ["<eos>"], 4)
    with Image.open(fig.files[0]) as im:
        assert im.height / DPI <= 2 * (20 + 1.4) + 2 * (0.36 * 10 + 1.4) + 1, im.size


def test_by_length_is_skipped_when_each_row_has_one_length(tmp_path):
    """throughput's rows are copy at 16, 64 and 256 tokens: one point a row is no curve (the page showed 12
    one-point panels); the figure says why it is not drawn. Two lengths in one row draw it."""
    from ablate.report.plots import by_length

    def report(lengths_of):
        rows = []
        for arch, lengths in lengths_of.items():
            rid = f"{arch}{lengths[0]}"
            rows.append(dict(run_id=rid, variant="", label=f"arch={arch}, len={lengths[0]}", seed=0,
                             status="finished", **{"task.name": "copy", "task.max_len": max(lengths),
                                                   "model.arch": arch, "grid.len": lengths[0],
                                                   "test/token_acc": 0.5}))
            (tmp_path / "runs" / rid).mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"length": lengths, "n": 3, "token_acc": 0.5, "seq_acc": 0.0}).to_csv(
                tmp_path / "runs" / rid / "by_length.csv", index=False)
        df = pd.DataFrame(rows)
        s = summarize(df, "test/token_acc", keys=["model.arch", "grid.len"])
        return by_length(df, tmp_path / "runs", tmp_path / "plots", s)

    fig = report({"rnn": [16], "cnn": [64], "lstm": [256]})
    assert fig.skipped and "single input length" in fig.skipped and "16, 64, 256" in fig.skipped and not fig.files
    fig = report({"rnn": [16, 17], "cnn": [64]})
    assert fig.files and not fig.skipped


def test_point_labels_of_tied_rows_do_not_cover_each_other():
    """architectures' SCAN panel: five rows within 0.03 of each other at ~40k parameters had labels printed
    over each other; each label now gets its own line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ablate.report.plots import label_points

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    pts = [(39_600 + 50 * i, 0.90 + 0.005 * i, f"scan: arch{i}, lr=0.003") for i in range(5)] + [(40_200, 0.18, "rnn")]
    ax.scatter([p[0] for p in pts], [p[1] for p in pts])
    ax.set_ylim(0, 1)
    texts = label_points(ax, pts)
    fig.canvas.draw()
    from matplotlib.text import Text

    boxes = [Text.get_window_extent(t) for t in texts]  # the text itself, without its leader line
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    assert {t.get_text() for t in texts} == {p[2] for p in pts}
    plt.close(fig)


def label_boxes(fig) -> tuple[list, list]:
    """(text, window box) of every point label, and of every other text of a drawn figure (titles, suptitle,
    tick and axis labels)."""
    from matplotlib.text import Text

    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    labels = [(t.get_text(), Text.get_window_extent(t, r)) for ax in fig.axes for t in ax.texts]
    placed = {id(t) for ax in fig.axes for t in ax.texts}
    others = [t for t in fig.findobj(Text) if id(t) not in placed and t.get_visible() and t.get_text().strip()]
    return labels, [(t.get_text(), t.get_window_extent(r)) for t in others]


def assert_apart(labels: list, titles: list) -> None:
    for i, (a, box) in enumerate(labels):
        for b, other in labels[i + 1:] + titles:
            assert not box.overlaps(other), (a, b)


def test_crowded_point_labels_cover_neither_each_other_nor_a_title(tmp_path, monkeypatch):
    """Fourteen rows a panel with long names, near-equal parameter counts and accuracies (some at the top of
    the axis, under the title), in two panels side by side: every label box is apart from every other label,
    every title and every tick or axis label, as matplotlib's renderer measures them."""
    import ablate.report.plots as plots

    drawn = []
    monkeypatch.setattr(plots, "save", lambda fig, out, name, f=None: drawn.append(fig) or [out / f"{name}.png"])
    rows = []
    for task in ("scan_length_split_with_a_long_name", "reverse"):
        for i in range(14):
            label = f"{task}: arch{i}, model.d_model=64, train.lr=0.003"
            for seed in (0, 1):
                rows.append(dict(run_id=f"{task}{i}s{seed}", variant=label, label=label, seed=seed,
                                 status="finished", params=40_000 + 37 * i, **{
                                     "task.name": task, "test/seq_acc": 0.985 + 0.001 * (i % 5) + 0.0001 * seed}))
    df = pd.DataFrame(rows)
    s = summarize(df, "test/seq_acc", keys=["task.name"])
    fig = plots.params_vs_metric(df, s, tmp_path)
    assert not fig.skipped, fig.skipped
    (mpl,) = drawn
    labels, titles = label_boxes(mpl)
    assert len(labels) == 28 and {"reverse", "scan_length_split_with_a_long_name"} <= {t for t, _ in titles}
    assert_apart(labels, titles)


def test_point_labels_keep_off_a_suptitle_and_other_panels_labels():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ablate.report.plots import label_points

    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    fig.suptitle("a suptitle right above the points")
    fig.tight_layout()
    for ax in axes:
        ax.set_title("panel")
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        pts = [(0.95 - 0.01 * i, 0.99 - 0.002 * i, f"a rather long label number {i}") for i in range(12)]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts])
        label_points(ax, pts)
    labels, titles = label_boxes(fig)
    assert len(labels) == 24 and {"panel", "a suptitle right above the points"} <= {t for t, _ in titles}
    assert_apart(labels, titles)
    plt.close(fig)


def test_a_report_names_the_machine_the_threads_and_the_wall_time(grid, tmp_path):
    import json
    import os

    from ablate.experiment.results import results_frame
    from ablate.report import build_report
    from ablate.report.page import made_on

    df = results_frame(grid)
    result = json.loads((grid / df["run_id"].iloc[0] / "result.json").read_text())
    assert result["reproduce"]["cpu"] and result["reproduce"]["cpu_count"] == os.cpu_count()
    # what the report's confound check compares: the device and dtype it ran with, uncommitted code changes
    assert result["reproduce"]["device"] == "cpu" and result["reproduce"]["dtype"] == "32-true"
    assert result["reproduce"]["dirty"] in (True, False, None) and "dirty" in df
    line = made_on(df)
    assert result["reproduce"]["cpu"] in line and "1 thread per run" in line  # the fixture runs one thread each
    # wall = first start to last end; run time = the sum; 8 tiny runs one after another: wall >= run time
    start, end = df["started"].min(), (df["started"] + df["wall_s"]).max()
    assert f"{int(round((end - start) / 60))} min wall" in line or f"{end - start:.0f} s wall" in line
    build_report(grid, tmp_path / "r")
    for page in ("README.md", "index.html"):
        assert "Made on host" in (tmp_path / "r" / page).read_text()
    # two-part wall time: a run store spread over sessions reads as hours
    late = df.assign(started=df["started"].min() + pd.Series([0] * (len(df) - 1) + [7200], index=df.index),
                     wall_s=60.0)
    assert "2 h 01 min wall" in made_on(late) and f"{len(df)} min of run time" in made_on(late)
    assert made_on(df.drop(columns=["started"])) is None  # older stores without timing: no line, no error
    mixed = df.assign(cpu_count=[None] + [os.cpu_count()] * (len(df) - 1))  # a store partly from before the field
    assert f"{os.cpu_count()} cores" in made_on(mixed) and ".0 cores" not in made_on(mixed)


def test_a_seed_that_stopped_at_its_target_holds_its_last_value_in_the_row_mean():
    """heads: one seed of three reached the target at 7,500 steps and stopped; the others ran to 8,000, so the
    row's mean curve fell from 0.35 to 0.04 in its last two points — a drop no model made."""
    from ablate.report.plots import hold_last

    fast = pd.DataFrame({"step": [250, 500], "val/seq_acc": [0.5, 1.0], "val/loss": [0.5, 0.01]})
    slow = pd.DataFrame({"step": [250, 500, 750, 1000], "val/seq_acc": [0.1, 0.2, 0.2, 0.2], "val/loss": [1.0] * 4})
    other_row = pd.DataFrame({"step": [250], "val/seq_acc": [0.0], "val/loss": [2.0]})
    val = pd.concat([fast.assign(run_id="a", seed=0, hue="h4", facet="t"),
                     slow.assign(run_id="b", seed=1, hue="h4", facet="t"),
                     other_row.assign(run_id="c", seed=0, hue="h1", facet="t")], ignore_index=True)
    out, held = hold_last(val, ["val/seq_acc", "val/loss"])
    assert held
    mean = out[out["hue"] == "h4"].groupby("step")["val/seq_acc"].mean()
    assert mean.to_dict() == pytest.approx({250: 0.3, 500: 0.6, 750: 0.6, 1000: 0.6})  # not 0.2 at 750 and 1000
    assert (out["run_id"] == "c").sum() == 1  # a row is held to its own longest run, not another row's
    assert len(out[out["run_id"] == "a"]) == 4 and set(out.loc[out["run_id"] == "a", "val/loss"]) == {0.5, 0.01}
    assert hold_last(val[val["run_id"] != "a"], ["val/seq_acc"])[1] is False  # nothing stopped sooner: no note


def test_an_edited_experiment_reports_the_newer_run_of_a_row_and_seed_not_both(tmp_path):
    """Raising a variant's step cap keeps its label, so the store then holds two runs per row and seed: the table
    averaged both (n = 2 seeds for one seed), mixing two experiments. The newer stands; the note names the older."""
    from ablate.cli import main
    from ablate.report import build_report

    exp = {"name": "edited", "task": {"name": "reverse", "vocab_size": 5, "min_len": 2, "max_len": 4, "n_train": 64,
                                      "n_val": 16, "n_test": 32},
           "model": {"arch": "gru", "d_model": 16, "n_layers": 1}, "train": {"max_epochs": 1, "batch_size": 32},
           "variants": {"gru": {}, "rnn": {"model.arch": "rnn"}}}
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    runs = tmp_path / "runs"
    assert main(["run", str(path), "--runs-dir", str(runs), "--no-report"]) == 0
    build_report(runs / "edited", tmp_path / "report")
    assert len([p for p in (tmp_path / "report" / "runs").iterdir() if p.is_dir()]) == 2  # + experiment.yaml
    exp["variants"]["rnn"]["train.max_epochs"] = 3  # the edit: same label, another run
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    assert main(["run", str(path), "--runs-dir", str(runs), "--no-report"]) == 0
    from ablate.experiment.results import results_frame

    every = results_frame(runs / "edited")
    assert len(every) == 3
    old = every.loc[(every["variant"] == "rnn") & (every["train.max_epochs"] == 1), "run_id"].item()
    build_report(runs / "edited", tmp_path / "report")
    table = pd.read_csv(tmp_path / "report" / "table.csv")
    assert sorted(zip(table["variant"], table["n"])) == [("gru", 1), ("rnn", 1)]
    assert table.loc[table["variant"] == "rnn", "train.max_epochs"].item() == 3
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "1 earlier run left out" in readme and old in readme
    copies = {d.name for d in (tmp_path / "report" / "runs").iterdir() if d.is_dir()}  # the first render's copy: gone
    assert copies == set(every["run_id"]) - {old}


@pytest.mark.parametrize("top", [9, 240, 3_000, 7_250, 120_000])
def test_step_axis_labels_do_not_run_into_each_other_in_a_third_of_the_page(top):
    """scan's length panel (0-7,250 steps, a third of the page) printed '3200400048005600640072 00'."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ablate.report.plots import whole_number_axis

    fig, ax = plt.subplots(figsize=(4.2, 3.0), dpi=100)
    ax.plot([0, top], [0, 1])
    whole_number_axis(ax.xaxis)
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    labels = [t for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert len(labels) >= 3
    boxes = [t.get_window_extent() for t in labels]
    for a, b in zip(boxes, boxes[1:]):
        assert a.x1 + 4 < b.x0, [t.get_text() for t in labels]  # a gap between neighbours
    assert all(float(t.get_position()[0]).is_integer() for t in labels)
    plt.close(fig)


def test_attend_into_an_unwritable_folder_fails_in_one_line(grid, tmp_path, capsys):
    from ablate.report.attend import attend

    (tmp_path / "a_file").write_text("x")
    assert attend(run_of(grid, "transformer"), "1 2 3", tmp_path / "a_file" / "att") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--out" in err and "a_file" in err and "Traceback" not in err
