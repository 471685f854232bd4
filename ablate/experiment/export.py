"""`ablate data`: write the splits an experiment trains and tests on as TSV files a person can read.

One line per example, `source TAB target`, tokens separated by single spaces
(no <bos>/<eos>/<pad>), so the data behind a table can be compared with
published files (e.g. SCAN's tasks_train_*.txt, after the IN:/OUT: prefixes).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ablate.errors import ConfigError, ConfigErrors
from ablate.experiment.store import writable
from ablate.tasks.base import Split, TaskConfig, TaskData, build_task
from ablate.tasks.vocab import Vocab

SPLIT_NAMES = ("train", "val", "test")


def split_lines(split: Split, src_vocab: Vocab, tgt_vocab: Vocab) -> list[str]:
    """'src tokens<TAB>tgt tokens' for every example, in the split's order."""
    out = []
    for i in range(len(split)):
        src = src_vocab.decode(split.src[i, : int(split.src_len[i])].tolist(), strip=False)
        tgt = tgt_vocab.decode(split.tgt[i, : int(split.tgt_len[i])].tolist())  # stops at <eos>
        out.append(" ".join(src) + "\t" + " ".join(tgt))
    return out


def task_files(data: TaskData) -> dict[str, str]:
    """{'train.tsv': text, 'val.tsv': ..., 'test.tsv': ...} of one task's data."""
    src_vocab = getattr(data, "src_vocab", None) or data.vocab
    tgt_vocab = getattr(data, "tgt_vocab", None) or data.vocab
    return {f"{name}.tsv": "".join(line + "\n" for line in split_lines(data.splits[name], src_vocab, tgt_vocab))
            for name in SPLIT_NAMES}


def experiment_tasks(exp: Any) -> list[tuple[str, TaskConfig]]:
    """The distinct task configs of an experiment's runs, each with the first row label that uses it."""
    from ablate.experiment.plan import plan

    seen: dict[str, tuple[str, TaskConfig]] = {}
    for r in plan(exp).runs:  # validates every run: bad input raises ConfigErrors before anything is built
        key = repr(sorted(asdict(r.config.task).items()))
        seen.setdefault(key, (r.label, r.config.task))
    return list(seen.values())


def _slug(label: str) -> str:
    return re.sub(r"[^\w.=-]+", "_", label).strip("_") or "base"


def export_data(exp: Any, out: str | Path) -> list[Path]:
    """Write the experiment's task splits under out; returns the files written.

    One task: out/train.tsv, out/val.tsv, out/test.tsv. Several (a grid or variants that change the task):
    one subdirectory per task, named by the first row that uses it. Everything is built before anything is
    written, so bad input leaves nothing behind.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigErrors([ConfigError("--out", str(out), "exists and is not a directory")])
    tasks = experiment_tasks(exp)
    files: dict[Path, str] = {}
    for label, cfg in tasks:
        try:
            data = build_task(cfg)
        except (ValueError, KeyError, OSError) as e:
            raise ConfigErrors([ConfigError("task", cfg.name, f"cannot be built: {e}", label)]) from None
        sub = out if len(tasks) == 1 else out / _slug(label)
        files.update({sub / name: text for name, text in task_files(data).items()})
    writable(out, "--out")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
