"""`ablate report runs/a runs/b --out DIR`: one report over several experiments, whose rows, run-file copies,
baselines and correction families stay per experiment."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from ablate.cli import main


def store(root: Path, name: str, accs: dict[str, list[float]], baseline: str = "base") -> Path:
    """An experiment's run store as `ablate run` leaves it: run ids run000, run001, ... (the same in every
    store, as two experiments' ids may be), variants named alike."""
    root.mkdir(parents=True)
    raw = {"name": name, "description": f"Does {name} hold?", "task": {"name": "reverse"},
           "model": {"arch": "transformer"}, "seeds": [0, 1, 2], "variants": {v: {} for v in accs},
           "report": {"metric": "test/seq_acc", "baseline": baseline}}
    (root / "experiment.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    i = 0
    for v, xs in accs.items():
        for seed, x in enumerate(xs):
            d = root / f"run{i:03d}"
            d.mkdir()
            (d / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "task": {"name": "reverse"},
                                                           "model": {"arch": "transformer"}}))
            (d / "result.json").write_text(json.dumps({"status": "finished", "variant": v, "label": v, "seed": seed,
                                                       "metrics": {"test/seq_acc": x}, "steps": 100,
                                                       "started": 1e9 + i, "wall_s": 1.0}))
            i += 1
    return root


def test_one_report_over_two_experiments_keeps_rows_copies_and_baselines_apart(tmp_path, capsys):
    a = store(tmp_path / "runs" / "a", "a", {"base": [0.5, 0.52, 0.51], "big": [0.8, 0.82, 0.81]})
    b = store(tmp_path / "runs" / "b", "b", {"small": [0.1, 0.12, 0.11], "base": [0.9, 0.92, 0.91]})
    out = tmp_path / "both"
    assert main(["report", str(a), str(b), "--out", str(out)]) == 0
    t = pd.read_csv(out / "table.csv")
    assert list(zip(t["experiment"], t["variant"])) == [("a", "base"), ("a", "big"), ("b", "small"), ("b", "base")]
    assert t["label"].is_unique  # two `base` rows, one per experiment
    delta = dict(zip(t["label"], t["delta/test/seq_acc"]))
    assert abs(delta["a: big"] - 0.30) < 1e-9 and abs(delta["b: small"] + 0.80) < 1e-9  # each against its own base
    # one comparison per experiment: each is its own Holm family, so neither p is adjusted for the other
    assert (t["p_adj/test/seq_acc"].dropna().to_numpy() == t["p/test/seq_acc"].dropna().to_numpy()).all()
    for exp in ("a", "b"):  # run copies per experiment, though both stores have a run000
        assert json.loads((out / "runs" / exp / "run000" / "result.json").read_text())["label"] == \
            ("base" if exp == "a" else "small")
        assert (out / "runs" / exp / "experiment.yaml").is_file()
    page = (out / "index.html").read_text()
    assert "a: base" in page and "runs/b/run000/config.yaml" in page
    md = (out / "table.md").read_text()
    assert "| experiment | variant |" in md  # the experiment leads the row
    # the report re-renders from its own copies
    assert main(["report", str(out / "runs" / "a"), str(out / "runs" / "b"), "--out", str(out)]) == 0
    assert pd.read_csv(out / "table.csv").equals(t)


def test_several_runs_dirs_need_an_out(tmp_path, capsys):
    a = store(tmp_path / "runs" / "a", "a", {"base": [0.5, 0.52, 0.51]})
    assert main(["report", str(a), str(a)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--out" in err[0]


def test_a_figure_the_page_does_not_show_is_not_left_in_plots(tmp_path):
    from ablate.report.page import build_report

    a = store(tmp_path / "runs" / "a", "a", {"base": [0.5, 0.52, 0.51], "big": [0.8, 0.82, 0.81]})
    (tmp_path / "rep" / "plots").mkdir(parents=True)
    (tmp_path / "rep" / "plots" / "throughput.png").write_bytes(b"from an earlier render")
    (tmp_path / "rep" / "plots" / "by_length.png").write_bytes(b"from an earlier render, from the full store")
    page = build_report(a, tmp_path / "rep").read_text()
    left = sorted(p.name for p in (tmp_path / "rep" / "plots").iterdir())
    assert "throughput.png" not in left and left  # not a figure of this report: gone; the forest plot stays
    assert all(f"plots/{n}" in page for n in left)
    # by_length.png could not be drawn only because these run copies carry no by_length.csv (as a committed
    # report's older runs): the earlier render's figure is kept, shown, and its caption says so
    assert "by_length.png" in left and "first rendered, from its full run store" in page
