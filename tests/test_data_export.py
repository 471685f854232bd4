"""`ablate data`: an experiment's task splits as TSV files, exactly the examples the runs use."""

from __future__ import annotations

from pathlib import Path

import yaml

from ablate.cli import main
from ablate.tasks import build_task
from ablate.tasks.scan import ScanConfig, interpret


def write(tmp_path: Path, exp: dict) -> Path:
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(exp, sort_keys=False))
    return p


SCAN = {"name": "scan_tiny", "task": {"name": "scan", "split": "addprim_jump", "n_train": 40, "n_val": 10,
                                      "n_test": 20},
        "model": {"arch": "gru", "d_model": 16, "n_layers": 1}}


def read(path: Path) -> list[tuple[list[str], list[str]]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        src, tgt = line.split("\t")
        out.append((src.split(" "), tgt.split(" ")))
    return out


def test_data_writes_each_split_as_the_runs_see_it(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["data", str(write(tmp_path, SCAN)), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["test.tsv", "train.tsv", "val.tsv"]
    data = build_task(ScanConfig(split="addprim_jump", n_train=40, n_val=10, n_test=20))
    for name in ("train", "val", "test"):
        pairs = read(out / f"{name}.tsv")
        assert len(pairs) == len(data.splits[name])
        assert all(tgt == interpret(src) for src, tgt in pairs)  # no <eos>, <pad> or <bos> in the files
    assert all("jump" in src for src, _ in read(out / "test.tsv"))
    assert sum(src == ["jump"] for src, _ in read(out / "train.tsv")) == 4  # 10% of 44 training examples
    assert str(out / "train.tsv") in capsys.readouterr().out


def test_data_takes_overrides_and_splits_a_task_grid_into_directories(tmp_path):
    exp = {**SCAN, "grid": {"task.split": ["simple", "length"]}}
    out = tmp_path / "data"
    assert main(["data", str(write(tmp_path, exp)), "task.n_test=5", "--out", str(out)]) == 0
    subdirs = sorted(p.name for p in out.iterdir())
    assert subdirs == ["task.split=length", "task.split=simple"]
    length = read(out / "task.split=length" / "test.tsv")
    assert len(length) == 5 and all(len(t) >= 24 for _, t in length)


def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "data"
    bad = {**SCAN, "task": {**SCAN["task"], "split": "addprim_jmp"}}
    assert main(["data", str(write(tmp_path, bad)), "--out", str(out)]) == 2
    assert "addprim_jump" in capsys.readouterr().err and not out.exists()
    # Valid per the options but too large to build: still exit 2, nothing written.
    assert main(["data", str(write(tmp_path, SCAN)), "task.n_test=9000", "--out", str(out)]) == 2
    assert "n_test=9000" in capsys.readouterr().err and not out.exists()
    assert main(["data", str(tmp_path / "missing.yaml"), "--out", str(out)]) == 2 and not out.exists()
