"""Verdicts of an experiment's declared hypotheses, computed, never written by hand.

Each hypothesis compares two rows on one metric: Welch's t-test for a metric's value, Fisher's exact test for
the fraction of seeds that reached the target, the log-rank test for steps to the target (seeds that never
reached it censored at their last step). The p-values of one experiment's hypotheses are one family,
Holm-adjusted. Verdict, in this order:

- inconclusive: fewer than 3 finished seeds on a side; or the rows differ in a recorded environment field
  (a confound, unless report.accept_confounds accepts it); or a run of either row was capped while still
  improving (result.json stop_reason max_steps / max_epochs / time_limit with still_improving true) —
  except where the metric is `reached` or `steps_to_target`: those ask "within the budget", so a seed
  capped before the target is the answer (not reached; censored at its last step), not a lower bound;
  or no test was possible;
- supported: adjusted p < alpha, in the expected direction;
- contradicted: adjusted p < alpha, the other way;
- not significant: otherwise.

hypotheses.json in the report holds them; hypotheses_table() renders them (from any number of reports) as the
markdown table `ablate hypotheses` prints.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from ablate.experiment.hypotheses import Hypothesis
from ablate.report import stats, target
from ablate.report.confounds import Audit
from ablate.report.stops import capped_improving
from ablate.report.tables import fmt, metric_name, welch_p

FILE = "hypotheses.json"
# Metrics that ask what happens within the step budget: a run capped before the target answers them.
BUDGETED = ("reached", "steps_to_target")
MIN_SEEDS = 3
VERDICTS = ("supported", "not significant", "contradicted", "inconclusive")


def _same(v: Any, want: Any) -> bool:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v) == str(want)


def resolve(row: Any, frame: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    """The table rows a hypothesis's row means: the row with that label, else the rows of that variant; a
    mapping {dotted key: value} means the rows all of whose runs have those values."""
    if isinstance(row, dict):
        out = []
        for lab in frame["label"]:
            mine = runs[runs["label"] == lab]
            if len(mine) and all(k in mine and all(_same(v, want) for v in mine[k]) for k, want in row.items()):
                out.append(lab)
        return out
    if (frame["label"] == row).any():
        return [row]
    return list(frame.loc[frame["variant"] == row, "label"]) if "variant" in frame else []


def row_text(row: Any) -> str:
    return row if isinstance(row, str) else ", ".join(f"{k}={v}" for k, v in row.items())


def _values(runs: pd.DataFrame, metric: str) -> np.ndarray:
    if metric not in runs:
        return np.array([], float)
    v = pd.to_numeric(runs[metric], errors="coerce").to_numpy(float)
    return v[~np.isnan(v)]


def caps_tried(runs: pd.DataFrame) -> str:
    """The caps the runs capped while improving stopped at, for the verdict's reason: '6,000 steps', or the stop
    reason where the cap is not a step count."""
    hit = runs[capped_improving(runs)]
    caps = [f"{int(r['steps']):,} steps" if r["stop_reason"] == "max_steps" and pd.notna(r.get("steps")) else
            str(r["stop_reason"]) for _, r in hit.iterrows()]
    return ", ".join(dict.fromkeys(caps))


def measure(h: Hypothesis, a: pd.DataFrame, b: pd.DataFrame) -> dict[str, Any]:
    """The comparison's numbers: n, each row's value, Δ (and interval), raw p, the direction seen."""
    if h.metric == "reached":
        (_, ea), (_, eb) = target.times(a), target.times(b)
        ka, kb = int(ea.sum()), int(eb.sum())
        d = (ka / len(ea) - kb / len(eb)) if len(ea) and len(eb) else math.nan
        return {"test": "Fisher's exact test", "n": [len(ea), len(eb)], "ours": [f"{ka}/{len(ea)}", f"{kb}/{len(eb)}"],
                "delta": d, "ci": [math.nan, math.nan], "p": stats.fisher_reached(ka, len(ea), kb, len(eb)),
                "sign": np.sign(d) if not math.isnan(d) else 0.0}
    if h.metric == target.COL:
        (ta, ea), (tb, eb) = target.times(a), target.times(b)
        p, o_e = stats.logrank_steps(ta, ea, tb, eb)

        def median(t: np.ndarray, e: np.ndarray) -> str:
            if not len(t):
                return "–"
            return f"{'≥' if not e.all() else ''}{np.median(t):,.0f} ({int(e.sum())}/{len(e)} reached)"

        # fewer steps = reaching sooner = more reaches than expected under the null (O - E > 0)
        return {"test": "log-rank test, unreached seeds censored", "n": [len(ta), len(tb)],
                "ours": [median(ta, ea), median(tb, eb)], "delta": math.nan, "ci": [math.nan, math.nan], "p": p,
                "sign": -float(np.sign(o_e)) if not math.isnan(o_e) else 0.0}
    va, vb = _values(a, h.metric), _values(b, h.metric)
    d, lo, hi = stats.welch_ci(va, vb)
    if len(vb):
        lo, hi, _ = stats.clip_interval(lo, hi, stats.delta_bounds(h.metric, float(vb.mean())))

    def pm(v: np.ndarray) -> str:
        return "–" if not len(v) else fmt(float(v.mean())) + (f" ± {fmt(float(v.std(ddof=1)))}" if len(v) > 1 else "")

    return {"test": "Welch's t-test", "n": [len(va), len(vb)], "ours": [pm(va), pm(vb)], "delta": d, "ci": [lo, hi],
            "p": welch_p(va, vb), "sign": float(np.sign(d)) if not math.isnan(d) else 0.0}


def verdicts(hyps: list[Hypothesis], runs: pd.DataFrame, frame: pd.DataFrame, audit: Audit,
             names: Optional[dict[str, str]] = None, experiment: str = "") -> list[dict[str, Any]]:
    """One record per hypothesis (what hypotheses.json holds). runs: the finished runs the table averages;
    frame: the table's rows (label, variant); audit: the report's confounds."""
    names = names or {}
    ok = runs[runs["status"] == "finished"] if "status" in runs else runs
    out = []
    for h in hyps:
        rec: dict[str, Any] = {"name": h.name, "experiment": experiment, "claim": h.claim, "metric": h.metric,
                               "expect": h.expect, "alpha": h.alpha, "published": h.published, "note": h.note}
        found = [resolve(r, frame, ok) for r in h.rows]
        rec["rows"] = [names.get(f[0], f[0]) if len(f) == 1 else row_text(r)
                       for r, f in zip(h.rows, found, strict=True)]
        if any(len(f) != 1 for f in found):
            bad = [f"{row_text(r)!r} matches {len(f)} rows" for r, f in zip(h.rows, found, strict=True)
                   if len(f) != 1]
            rec.update(verdict="inconclusive", reason="; ".join(bad) + " (name one row: its label)", p=math.nan,
                       test="", n=[0, 0], ours=["–", "–"], delta=math.nan, ci=[math.nan, math.nan], sign=0.0)
            out.append(rec)
            continue
        la, lb = found[0][0], found[1][0]
        a, b = ok[ok["label"] == la], ok[ok["label"] == lb]
        rec.update(measure(h, a, b))
        reasons = []
        if min(rec["n"]) < MIN_SEEDS:
            reasons.append(f"fewer than {MIN_SEEDS} seeds ({rec['n'][0]} and {rec['n'][1]})")
        if fields := audit.between(la, lb):
            reasons.append(f"a confound: the rows differ in {', '.join(fields)}")
        capped = int(capped_improving(a).sum() + capped_improving(b).sum())
        if capped and h.metric not in BUDGETED:
            at = caps_tried(pd.concat([a, b]))
            reasons.append(f"runs capped while improving ({capped} of {len(a) + len(b)}{', at ' + at if at else ''})")
        rec["reasons"] = reasons
        out.append(rec)
    adjusted = stats.holm([r["p"] for r in out])
    for r, p_adj in zip(out, adjusted, strict=True):
        r["p_adj"] = float(p_adj)
        r["correction"] = f"Holm over the {int(np.sum(~np.isnan(adjusted)))} hypotheses of this experiment"
        if "verdict" in r:
            continue
        reasons = r.pop("reasons")
        if not reasons and math.isnan(p_adj):
            reasons = ["no test possible"]
        if reasons:
            r["verdict"], r["reason"] = "inconclusive", "; ".join(reasons)
        elif p_adj < r["alpha"]:
            seen = "higher" if r["sign"] > 0 else "lower"
            r["verdict"] = "supported" if seen == r["expect"] else "contradicted"
            r["reason"] = ""
        else:
            r["verdict"], r["reason"] = "not significant", ""
    for r in out:
        r.pop("reasons", None)
        r.pop("sign", None)
    return out


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, (np.floating, np.integer)):
        return _json_safe(x.item())
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def write_json(records: list[dict[str, Any]], out: Path) -> Optional[Path]:
    """out/hypotheses.json (removed when the experiment declares none, so no stale verdicts stay)."""
    path = Path(out) / FILE
    if not records:
        path.unlink(missing_ok=True)
        return None
    path.write_text(json.dumps(_json_safe(records), indent=1, ensure_ascii=False) + "\n")
    return path


def ours_text(r: dict[str, Any]) -> str:
    """'0.010 ± 0.000 vs 0.988 ± 0.010 (Δ -0.978 [-0.99, -0.97]; Welch's t-test, p_adj < 0.001)'."""
    a, b = r.get("ours") or ["–", "–"]
    parts = []
    d, ci = r.get("delta"), r.get("ci") or [None, None]
    if d is not None and not (isinstance(d, float) and math.isnan(d)) and r.get("metric") not in ("reached",):
        interval = "" if ci[0] is None or math.isnan(ci[0]) else f" [{ci[0]:+.3g}, {ci[1]:+.3g}]"
        parts.append(f"Δ {d:+.3g}{interval}")
    p = r.get("p_adj")
    if p is not None and not (isinstance(p, float) and math.isnan(p)):
        parts.append(f"{r.get('test')}, {stats.fmt_p(p).replace('p', 'p_adj', 1)}")
    n = r.get("n") or [0, 0]
    parts.append(f"n = {n[0]}/{n[1]}")
    return f"{a} vs {b} ({'; '.join(parts)})"


def load(report_dirs: list[str | Path]) -> list[tuple[Path, dict[str, Any]]]:
    """(report dir, record) for every hypothesis in the reports' hypotheses.json, in the order given."""
    out = []
    for d in report_dirs:
        path = Path(d) / FILE
        if path.is_file():
            out += [(Path(d), r) for r in json.loads(path.read_text())]
    return out


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def hypotheses_table(report_dirs: list[str | Path], start: str | Path = ".") -> str:
    """The declared hypotheses of the reports as one markdown table: claim (linking its report), source and
    published figure, ours, verdict. Links are relative to `start` (where the table will live)."""
    lines = ["| claim | rows, metric | source, published figure | ours | verdict |", "|---|---|---|---|---|"]
    for d, r in load(report_dirs):
        link = os.path.relpath(d / "README.md", start).replace(os.sep, "/")
        rows = r.get("rows") or ["?", "?"]
        what = f"{rows[0]} vs {rows[1]}, {metric_name(r['metric'])} ({r['expect']} expected)"
        pub = r.get("published") or {}
        source = "; ".join(x for x in (pub.get("source"), pub.get("figure")) if x) or "–"
        verdict = f"**{r['verdict']}**" + (f" ({r['reason']})" if r.get("reason") else "")
        verdict += f" — {r['note']}" if r.get("note") else ""
        lines.append(f"| {_cell(r['claim'])} ([{d.name}]({link})) | {_cell(what)} | {_cell(source)} | "
                     f"{_cell(ours_text(r))} | {_cell(verdict)} |")
    return "\n".join(lines) + "\n"
