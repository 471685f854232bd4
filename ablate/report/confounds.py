"""Confounds: what the compared rows' runs recorded of their environment, and where it differs.

A row's runs record (result.json `reproduce`) the threads, versions, CPU model, device, dtype and the git
commit of the code that trained them. Rows that differ in one of those differ in more than the factor the
table varies, so the report names the field and the rows. The code is compared by what decides the
numbers: `git diff --quiet A B -- ablate/models ablate/train ablate/tasks` between two runs' commits (two
commits that differ only elsewhere count as the same code); where the repository or a commit is not at hand
the page says it could not be checked. A field a run did not record is "not recorded", never a difference.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import pandas as pd

# field -> (results column, what the page calls it)
FIELDS: dict[str, tuple[str, str]] = {
    "threads": ("threads", "threads"), "torch": ("torch", "torch version"),
    "lightning": ("lightning", "Lightning version"), "python": ("python", "Python version"),
    "cpu": ("cpu", "CPU model"), "device": ("device", "device"), "dtype": ("dtype", "dtype"),
    "code": ("git_commit", "numerics code (ablate/models, ablate/train, ablate/tasks)"),
    "dirty": ("dirty", "uncommitted changes under ablate/"),
}
NUMERICS = ("ablate/models", "ablate/train", "ablate/tasks")


@dataclass
class Confound:
    field: str  # a key of FIELDS
    values: dict[str, list[str]]  # row label -> the values its runs recorded (sorted, "not recorded" left out)
    accepted: bool = False  # listed in report.accept_confounds

    def text(self, names: Optional[dict[str, str]] = None) -> str:
        names = names or {}
        what = FIELDS[self.field][1]
        rows = "; ".join(f"{names.get(lab, lab)}: {' / '.join(v)}" for lab, v in self.values.items())
        return f"compared rows differ in {what} ({rows})"


@dataclass
class Audit:
    confounds: list[Confound] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what could not be checked

    def warnings(self, names: Optional[dict[str, str]] = None) -> list[str]:
        """One line per field that differs, accepted ones saying so."""
        out = []
        for c in self.confounds:
            if c.accepted:
                out.append(f"Accepted on purpose (report.accept_confounds): {c.text(names)}.")
            else:
                out.append(f"Confound: {c.text(names)}; a difference between these rows may come from it "
                           f"(accept it on purpose with report.accept_confounds: [{c.field}]).")
        return out + self.notes

    def between(self, a: str, b: str) -> list[str]:
        """The unaccepted fields in which rows a and b differ."""
        return [c.field for c in self.confounds if not c.accepted and a in c.values and b in c.values
                and c.values[a] != c.values[b]]


def _text(v: Any) -> Optional[str]:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v == "":
        return None
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def project_root() -> Optional[Path]:
    """The git work tree holding this package, where runs' commits can be compared; None without git."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 else None


@lru_cache(maxsize=256)
def same_numerics(a: str, b: str, root: Optional[str]) -> Optional[bool]:
    """Whether commits a and b hold the same ablate/models, ablate/train, ablate/tasks; None: cannot tell."""
    if a == b:
        return True
    if root is None:
        return None
    try:
        out = subprocess.run(["git", "-C", root, "diff", "--quiet", a, b, "--", *NUMERICS], capture_output=True,
                             timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {0: True, 1: False}.get(out.returncode)


def code_classes(commits: list[str], root: Optional[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(commit -> the first earlier commit with the same numerics code, pairs that could not be compared);
    a commit that could not be compared with every earlier one it might equal is left out."""
    reps: list[str] = []
    of: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []
    for c in commits:
        answers = []
        for r in reps:
            answers.append(same_numerics(r, c, root))
            if answers[-1] is None:
                unknown.append((r, c))
            if answers[-1]:
                of[c] = r
                break
        else:
            if None not in answers:  # a commit that could not be compared is not recorded, not a difference
                reps.append(c)
                of[c] = c
    return of, unknown


def audit(runs: pd.DataFrame, panels: dict[str, str], accept: Optional[list[str]] = None,
          root: Optional[Path] = None) -> Audit:
    """The fields in which rows compared within one panel differ. runs: finished runs with 'label' and the
    recorded columns (results_frame); panels: row label -> its panel (rows in different panels are not
    compared); accept: fields accepted on purpose (still listed, marked as accepted)."""
    accept = list(accept or [])
    result = Audit()
    if runs.empty:
        return result
    runs = runs.copy()
    if "git_commit" in runs:
        commits = list(dict.fromkeys(c for c in map(_text, runs["git_commit"]) if c))
        where = str(root) if root is not None else None
        of, unknown = code_classes(commits, where)
        runs["git_commit"] = [(of.get(_text(c) or "") or "")[:8] or None for c in runs["git_commit"]]
        if unknown:
            pairs = ", ".join(f"{a[:8]}..{b[:8]}" for a, b in unknown[:4])
            result.notes.append(f"The numerics code could not be compared between the runs' commits {pairs} "
                                f"({'no git repository here' if where is None else 'a commit is not in ' + where}).")
    for name, (col, _) in FIELDS.items():
        if col not in runs:
            continue
        for panel in dict.fromkeys(panels.values()):
            labels = [lab for lab, p in panels.items() if p == panel]
            values = {}
            for lab in labels:
                seen = sorted({t for t in map(_text, runs.loc[runs["label"] == lab, col]) if t is not None})
                if seen:
                    values[lab] = seen
            if len({tuple(v) for v in values.values()}) > 1 or any(len(v) > 1 for v in values.values()):
                result.confounds.append(Confound(name, values, accepted=name in accept))
    return result
