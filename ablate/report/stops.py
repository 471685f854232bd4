"""What the report says about how its runs ended: rows resting on runs stopped at a step or epoch cap while
still improving (their numbers are not converged), rows with test references longer than their decoding cap
(no output could be right: raise the cap), and the resolution of steps-to-target (the validation interval).

Reads results.csv's stop_reason / still_improving / stop_source and test/cap_short (test/hit_cap for runs made
before cap_short was recorded) where present; a missing column is "not recorded" and marks nothing.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import pandas as pd

CAPS = ("max_steps", "max_epochs", "max_flops", "time_limit")
CAPPED_MARK = "†"  # a row with runs capped while improving
CUT_MARK = "‡"  # a row with test references longer than their decoding cap
COUNTS = ("test/hit_cap", "val/hit_cap", "test/cap_short", "val/cap_short")  # shown by the marks, not as columns
INTERVAL_KEY = "train.val_every_n_steps"
SUBSET_KEY = "train.val_subset"  # > 0: validation (and the target check) on a fixed subset of this many examples


def capped_improving(runs: pd.DataFrame) -> pd.Series:
    """Per run: stopped at a step/epoch cap while the still-improving rule held."""
    if "stop_reason" not in runs or "still_improving" not in runs:
        return pd.Series(False, index=runs.index)
    improving = runs["still_improving"].map(lambda v: v is True or v == 1 or str(v).lower() == "true")
    return runs["stop_reason"].isin(CAPS) & improving


def cut_outputs(runs: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per run: (test examples cut by the decoding cap, whether that count is known to be the cap's fault).

    Known (test/cap_short): references longer than their cap, so no output could be right. Runs made before
    that was recorded have only test/hit_cap, outputs that ran to the cap without <eos>: a model that never
    stops does that too, so those counts are marked unknown. 0 where neither is recorded."""
    short, ran = _column(runs, "test/cap_short"), _column(runs, "test/hit_cap")
    known = short.notna()
    return short.where(known, ran).fillna(0.0), known


def _column(runs: pd.DataFrame, key: str) -> pd.Series:
    """runs[key] as numbers; NaN for a column not recorded."""
    return pd.to_numeric(runs[key], errors="coerce") if key in runs else pd.Series(float("nan"), index=runs.index)


def interval(runs: pd.DataFrame) -> Optional[int]:
    """The validation interval in optimizer steps the rows' targets were checked at (None: per epoch, or mixed)."""
    if INTERVAL_KEY not in runs:
        return None
    steps = set(pd.to_numeric(runs[INTERVAL_KEY], errors="coerce").dropna().astype(int))
    return steps.pop() if len(steps) == 1 and min(steps, default=0) > 0 else None


def cap_words(reasons: Any, article: str = "the") -> str:
    """What stopped capped runs, in words ("the step cap", "a compute cap (FLOP budget, train.max_flops)"): a
    compute cap is a FLOP budget, not a step cap; the table's footnote and the page header both say it so."""
    found = {r for r in (reasons if isinstance(reasons, (set, list, tuple)) else str(reasons or "").split(","))
             if r}
    kinds = [w for r, w in (("max_steps", "step"), ("max_epochs", "epoch"), ("max_flops", "compute")) if r in found]
    art = "an" if article == "a" and kinds and kinds[0][0] in "aeiou" else article  # "an epoch cap"
    words = f"{art} {' or '.join(kinds)} cap" if kinds else ""
    if "max_flops" in found:
        words += " (FLOP budget, train.max_flops)" if kinds == ["compute"] else " (FLOP budget)"
    if "time_limit" in found:
        limit = f"{article} time limit" + ("" if words else " (train.max_time)")
        return f"{words} or {limit}" if words else limit
    return words or f"{article} step cap"


def row_stats(good: pd.DataFrame) -> dict[str, Any]:
    """stops/* columns of one table row from its finished runs."""
    (cut, known), capped = cut_outputs(good), capped_improving(good)
    return {"stops/capped_improving": int(capped.sum()),
            "stops/capped_reasons": ",".join(sorted(set(good.loc[capped, "stop_reason"]))) if capped.any() else "",
            "stops/n": len(good),
            "stops/cut_runs": int((cut > 0).sum()), "stops/cut_outputs": float(cut.sum()),
            "stops/cut_unknown": int(((cut > 0) & ~known).sum()),
            "stops/interval": interval(good), "stops/val_subset": _subset(good)}


def _subset(runs: pd.DataFrame) -> Optional[int]:
    """The validation subset size the target was checked on (None: the whole validation split, or mixed)."""
    if SUBSET_KEY not in runs:
        return None
    sizes = set(pd.to_numeric(runs[SUBSET_KEY], errors="coerce").dropna().astype(int))
    return sizes.pop() if len(sizes) == 1 and min(sizes, default=0) > 0 else None


def row_mark(row: pd.Series) -> str:
    """The marks after a row's name."""
    marks = CAPPED_MARK if (row.get("stops/capped_improving") or 0) > 0 else ""
    return marks + (CUT_MARK if (row.get("stops/cut_runs") or 0) > 0 else "")


def footnotes(frame: pd.DataFrame, names: dict[str, str]) -> list[str]:
    """The marks' footnotes, naming each marked row with its k of n."""
    notes = []
    if "stops/capped_improving" not in frame:
        return notes
    capped = frame[frame["stops/capped_improving"] > 0]
    if len(capped):
        rows = "; ".join(f"{names.get(r['label'], r['label'])}: {int(r['stops/capped_improving'])} of "
                         f"{int(r['stops/n'])}" for _, r in capped.iterrows())
        reasons = set() if "stops/capped_reasons" not in capped else {
            r for v in capped["stops/capped_reasons"] for r in str(v or "").split(",") if r}
        # not "a lower bound": on a loss (lower is better) a capped row's number is an upper bound
        notes.append(f"{CAPPED_MARK} k of n runs stopped at {cap_words(reasons)} while improving: not converged, "
                     f"the row would likely do better with more steps ({rows}). "
                     "Still improving: the best validation value of the last 3 checks beat the best before them "
                     "by more than min_delta.")
    cut = frame[frame["stops/cut_runs"] > 0]
    if len(cut):
        rows = "; ".join(f"{names.get(r['label'], r['label'])}: {int(r['stops/cut_runs'])} of {int(r['stops/n'])} "
                         f"runs, {int(r['stops/cut_outputs'])} outputs" for _, r in cut.iterrows())
        unknown = int(cut["stops/cut_unknown"].sum()) if "stops/cut_unknown" in cut else 0
        if unknown == int(cut["stops/cut_runs"].sum()):
            notes.append(f"{CUT_MARK} test outputs ran to their decoding cap without <eos> ({rows}); these runs "
                         "predate the record of whether the references fit the cap: where they did not, the cap "
                         "cut answers short (re-run, or raise the task's decode_ratio / decode_margin).")
        else:
            older = "; runs older than this record count outputs that ran to the cap" if unknown else ""
            notes.append(f"{CUT_MARK} test references longer than their decoding cap, so those outputs could not "
                         f"be right ({rows}{older}); raise the task's decoding cap (decode_ratio / decode_margin).")
    return notes


def header_line(df: pd.DataFrame) -> Optional[str]:
    """The page header's count of runs capped while improving (None when none are, or nothing was recorded)."""
    if df.empty or "stop_reason" not in df:
        return None
    ok = df[df["status"] == "finished"] if "status" in df else df
    k = int(capped_improving(ok).sum())
    if not k:
        return None
    inferred = int((ok.get("stop_source", pd.Series(dtype=str)) == "inferred").sum())
    how = f"; inferred from metrics.csv for {inferred} runs made before this was recorded" if inferred else ""
    cap = cap_words(set(ok.loc[capped_improving(ok), "stop_reason"]), article="a")
    return (f"{k} of {len(ok)} runs stopped at {cap} while still improving ({CAPPED_MARK}: their "
            f"rows are not converged and would likely do better with more steps{how})")


def steps_text(median: float, reached: int, n: int, every: Optional[int]) -> str:
    """The steps-to-target number at its resolution: '≤ 250' when met at the first check, '≥' a lower bound."""
    num = f"{median:.0f}" if float(median).is_integer() else f"{median:.1f}"
    if reached < n:
        return f"≥{num}"
    if every is not None and not math.isnan(median) and median <= every:
        return f"≤ {every}"
    return num


def interval_note(frame: pd.DataFrame) -> Optional[str]:
    """The validation interval behind steps to target (its resolution)."""
    if "stops/interval" not in frame:
        return None
    steps = set(frame["stops/interval"].dropna().astype(int))
    subsets = set(frame["stops/val_subset"].dropna().astype(int)) if "stops/val_subset" in frame else set()
    on = (f"a fixed subset of {subsets.pop()} validation examples (train.val_subset)" if len(subsets) == 1
          and frame["stops/val_subset"].notna().all() else "validation")
    if len(steps) == 1 and frame["stops/interval"].notna().all():
        every = steps.pop()
        return (f"Targets were checked every {every} optimizer steps on {on}: a step count is the first "
                f"check that met the target, up to {every} steps late (≤ {every}: met at the first check).")
    return "Targets were checked at each validation (per epoch, or at intervals that differ between rows)."


def run_text(run: pd.Series) -> str:
    """A run's line in the report's run list: why it stopped and the step it was tested at."""
    reason = run.get("stop_reason")
    if not isinstance(reason, str) or not reason:
        return ""
    improving = run.get("still_improving")
    text = reason + (" while improving" if reason in CAPS and (improving is True or str(improving) == "True") else "")
    step = pd.to_numeric(pd.Series([run.get("tested_step")]), errors="coerce").iloc[0]
    text += f"; tested step {int(step)}" if not math.isnan(step) else ""
    return text + (" (inferred)" if run.get("stop_source") == "inferred" else "")
