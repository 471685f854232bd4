"""build_report: tables + plots + index.html + README.md for one experiment's runs.

index.html is self-contained (inline CSS, no network); every image and link in it
is relative, so the report directory can be moved together with the runs.
"""

from __future__ import annotations

import datetime
import html
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

import pandas as pd
import yaml

from ablate.config import ReportConfig, flatten, header_comment
from ablate.experiment.results import newest_per_cell, results_frame
from ablate.experiment.tune import chosen_columns, report_runs, stored_tune_keys
from ablate.report.manifest import write_manifest
from ablate.report.samples import samples_html, write_samples
from ablate.report.tables import (
    Summary,
    grid,
    key_name,
    metric_name,
    pick_columns,
    summarize,
    to_html,
    to_markdown,
    write_tables,
)
from ablate.report.verdicts import ours_text, verdicts, write_json

CSS = """
body{font:15px/1.5 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1.2em;color:#222}
h1{margin-bottom:.1em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
.meta{color:#666;font-size:.9em}
.desc{background:#f6f8fa;border-left:4px solid #8aa;padding:.6em 1em;white-space:pre-wrap}
table{border-collapse:collapse;font-size:.88em;margin:.6em 0}
th,td{padding:.25em .6em;border-bottom:1px solid #e3e3e3;vertical-align:top}
thead th{border-bottom:2px solid #444;border-top:2px solid #444;white-space:nowrap}
tbody tr:last-child td{border-bottom:2px solid #444}
td.r,th.r{text-align:right;white-space:nowrap}td.l,th.l{text-align:left}
.notes{font-size:.85em;color:#555;padding-left:1.2em}
figure{margin:1em 0 2em}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.88em;color:#444;max-width:900px}
.skip{color:#8a5a00;background:#fff8e6;padding:.4em .8em;border-left:4px solid #e0b050}
.err{color:#a00;font-size:.85em;white-space:pre-wrap;max-width:600px}
nav a{margin-right:1em}code{background:#f2f2f2;padding:0 .25em}
.question{font-size:1.12em;margin:.2em 0 .5em}table.verdicts{font-size:.8em;line-height:1.3}
h2#hypotheses,h2#results{margin-top:1em}details{margin:2em 0}summary{cursor:pointer;font-weight:600}
.v-supported{color:#1a6b1a}.v-contradicted{color:#a00}.v-inconclusive{color:#8a5a00}.v-not-significant{color:#555}
.scroll{overflow-x:auto;max-width:100%}.scroll table{margin:0}
table.results th:first-child,table.results td:first-child{position:sticky;left:0;background:#fff;z-index:1}
sup{line-height:0}th.sort{cursor:pointer}th[data-dir=asc]::after{content:" ▲"}th[data-dir=desc]::after{content:" ▼"}
input.filter{font:inherit;font-size:.85em;padding:.1em .4em;margin:.3em 0;width:14em}
figure.wide{overflow-x:auto}figure.wide img{max-width:none}
.hov{position:relative;display:inline-block;max-width:100%}.hov img{display:block}
svg.hover{position:absolute;left:0;top:0;width:100%;height:100%}
svg.hover rect{fill:#000;fill-opacity:0;pointer-events:all}svg.hover rect:hover{fill-opacity:.07}
"""


# Sorting and filtering in the page, offline and without a library: it reads the cells already in the page (no
# data of its own, so nothing the user wrote passes through a script) and only reorders or hides rows.
SCRIPT = r"""
(function () {
  function num(s) {
    var m = s.replace(/^[\u2265\u2264]/, '').replace('\u2212', '-').match(/^([-+]?\d*\.?\d+(?:e[-+]?\d+)?)([kMG]?)/);
    return m ? parseFloat(m[1]) * ({k: 1e3, M: 1e6, G: 1e9}[m[2]] || 1) : null;
  }
  document.querySelectorAll('table.sortable').forEach(function (t) {
    var body = t.tBodies[0], heads = t.tHead ? t.tHead.rows[0].cells : [];
    if (!body) return;
    var rows = Array.prototype.slice.call(body.rows);
    var box = document.createElement('input');
    box.type = 'search'; box.placeholder = 'filter rows'; box.className = 'filter';
    box.addEventListener('input', function () {
      var q = box.value.toLowerCase();
      rows.forEach(function (r) { r.style.display = r.textContent.toLowerCase().indexOf(q) < 0 ? 'none' : ''; });
    });
    var host = t.parentNode.classList.contains('scroll') ? t.parentNode : t;
    host.parentNode.insertBefore(box, host);
    Array.prototype.forEach.call(heads, function (th, i) {
      th.classList.add('sort'); th.title = 'sort by this column (click again to reverse)';
      th.addEventListener('click', function () {
        var dir = th.getAttribute('data-dir') === 'asc' ? -1 : 1;
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute('data-dir'); });
        th.setAttribute('data-dir', dir === 1 ? 'asc' : 'desc');
        var keyed = rows.map(function (r, k) {
          var s = r.cells[i] ? r.cells[i].textContent.trim() : '';
          return {r: r, k: k, n: num(s), s: s};
        });
        keyed.sort(function (a, b) {  // numbers first, then text; blanks last; ties keep the page's order
          if ((a.s === '') !== (b.s === '')) return a.s === '' ? 1 : -1;
          if ((a.n === null) !== (b.n === null)) return a.n === null ? 1 : -1;
          var c = a.n !== null ? a.n - b.n : a.s.localeCompare(b.s);
          return c ? dir * c : a.k - b.k;
        });
        keyed.forEach(function (x) { body.appendChild(x.r); });
      });
    });
  });
})();
"""


def read_experiment(root: Path) -> dict[str, Any]:
    """runs/<name>/experiment.yaml as a dict (empty when missing or unreadable)."""
    path = root / "experiment.yaml"
    if not path.is_file():
        return {}
    text = path.read_text()
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return {}
    if not isinstance(raw, dict):
        return {}
    if not raw.get("description"):
        raw["description"] = header_comment(text)
    return raw


def report_config(raw: dict[str, Any]) -> ReportConfig:
    rep = raw.get("report") or {}
    known = ReportConfig.__dataclass_fields__
    return ReportConfig(**{k: v for k, v in rep.items() if k in known}) if isinstance(rep, dict) else ReportConfig()


def row_order(raw: dict[str, Any]) -> list[str]:
    """Row labels in the experiment's order: variants as written, crossed with the grid in order."""
    from ablate.experiment.plan import PlannedRun, grid_points

    variants = raw.get("variants") or {"": {}}
    grid = {k: v for k, v in (raw.get("grid") or {}).items() if isinstance(v, list)}
    return [PlannedRun("", None, v, p, 0).label for v in variants for p in grid_points(grid)]


def varied_keys(raw: dict[str, Any]) -> Optional[list[str]]:
    """The config keys the experiment varies (grid axes, then variant overrides); None if unknown."""
    if not raw:
        return None
    keys = list(raw.get("grid") or {})
    for over in (raw.get("variants") or {}).values():
        keys += list(flatten(over or {}))
    return list(dict.fromkeys(keys))


def rel(target: Path, start: Path) -> str:
    """A URL-quoted relative link from directory start to target."""
    return quote(os.path.relpath(target.resolve(), start.resolve()).replace(os.sep, "/"))


RUN_FILES = ("config.yaml", "result.json", "metrics.csv", "by_length.csv")


def in_place(root: Path, out: Path) -> bool:
    """The report is rendered from its own copies (ablate report reports/<name>/runs): nothing to copy or prune."""
    return (out / "runs").resolve() == root.resolve()


def copy_run_files(run_dir: Path, out: Path, run_id: Optional[str] = None) -> dict[str, Path]:
    """Copies of a run's small files under out/runs/<id>/, so the report stands alone (and can be committed);
    run_id '<experiment>/<id>' in a report over several."""
    dest = out / "runs" / (run_id or run_dir.name)
    copies = {}
    for f in RUN_FILES:
        if (run_dir / f).is_file():
            dest.mkdir(parents=True, exist_ok=True)
            if (run_dir / f).resolve() != (dest / f).resolve():
                shutil.copyfile(run_dir / f, dest / f)
            copies[f] = dest / f
    return copies


def copy_experiment(root: Path, out: Path, name: str = "") -> None:
    """The stored experiment.yaml goes with the run copies, so the report can be re-rendered from its own folder
    (name: the experiment's folder under runs/ in a report over several)."""
    src, dest = root / "experiment.yaml", out / "runs" / name / "experiment.yaml"
    if src.is_file() and not in_place(root, out) and src.resolve() != dest.resolve():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


def load_summary(runs_root: str | Path) -> dict[str, Any]:
    """Read runs_root and summarize it into the results table, writing nothing: the context build_report renders
    ("summary" is None when no run has a result yet)."""
    root = Path(runs_root)
    raw = read_experiment(root)
    name = str(raw.get("name") or root.name)
    rep = report_config(raw)
    runs, older = newest_per_cell(results_frame(root), tuple(stored_tune_keys(raw)))
    df, every, tune_notes = report_runs(runs, raw, root)  # tune: each row at its chosen setting
    ctx: dict[str, Any] = {"name": name, "root": root, "raw": raw, "rep": rep, "df": every, "runs": df,
                           "notes": [], "summary": None}
    if len(older):
        ctx["notes"].append(f"{len(older)} earlier run{'s' * (len(older) > 1)} left out: a later run has the same "
                            "row and seed, so the experiment was edited since (a setting its row labels do not "
                            f"show); still in the store: {', '.join(map(str, older['run_id']))}")
    if df.empty:
        ctx["notes"].append(f"no runs with a result yet in {root}")
        return ctx
    metric = rep.metric
    if metric not in df.columns:
        fallback = next((m for m in ("test/seq_acc", "test/acc", "test/token_acc", "test/loss") if m in df), None)
        ctx["notes"].append(f"report.metric {metric!r} is not recorded by these runs; using {fallback}")
        metric = fallback or metric
    order = row_order(raw) if raw else []
    s = summarize(df, metric, rep.metrics, rep.baseline, varied_keys(raw), order)
    chosen_columns(s, df, raw)
    s.bold = rep.bold
    s.notes += tune_notes
    ctx["summary"] = s
    return ctx


def build_report(runs_root: str | Path | list[str | Path], out_dir: str | Path,
                 tex_columns: Optional[list[str]] = None) -> Path:
    """Write table.{md,tex,csv}, plots/, index.html and README.md for runs_root into out_dir; returns index.html.

    runs_root: one experiment's runs, or a list of several: one report whose rows say which experiment they come
    from (combined()). tex_columns: the columns table.tex keeps (tables.pick_columns); a name that is no column
    raises ConfigErrors before anything is written."""
    roots = [Path(r) for r in runs_root] if isinstance(runs_root, (list, tuple)) else [Path(runs_root)]
    if len(roots) > 1:
        with tempfile.TemporaryDirectory() as tmp:
            return _render(combined(roots, Path(tmp)), Path(out_dir), tex_columns)
    return _render(load_summary(roots[0]), Path(out_dir), tex_columns)


def combined(roots: list[Path], tmp: Path) -> dict[str, Any]:
    """The context of one report over several experiments. Each is summarized and audited on its own (its rows,
    baseline, Holm families and hypotheses stay its own), then the rows are put together, labelled
    '<experiment>: <label>'. The runs are reached through tmp/runs/<experiment> (a link to each store), so each
    run's id becomes '<experiment>/<id>' and its copies go to the report's runs/<experiment>/<id>/."""
    from ablate.report.facets import short_names
    from ablate.report.tables import merge_summaries

    store = tmp / "runs"
    store.mkdir()
    parts, names, verdict_records, warnings, notes = [], [], [], [], []
    for root in roots:
        part = load_summary(root)
        name = part["name"]
        while name in names:  # two stores of one experiment name: both kept, told apart
            name += "'"
        names.append(name)
        (store / name).symlink_to(root.resolve(), target_is_directory=True)
        part["name"], part["out"] = name, tmp / name
        part["out"].mkdir()
        if part["summary"] is not None:
            part["names"] = short_names(part["runs"], part["summary"])
            audit_and_verdicts(part, part["summary"], part["runs"], part["rep"])
            warnings += [f"{name}: {w}" for w in part.get("warnings", [])]
            for r in part.get("verdicts", []):
                verdict_records.append({**r, "experiment": name, "rows": [f"{name}: {x}" for x in r["rows"]]})
        notes += [f"{name}: {n}" for n in part["notes"]]
        parts.append(part)

    def tagged(df: pd.DataFrame, name: str) -> pd.DataFrame:
        if df.empty:
            return df
        label = df["label"].fillna("").replace("", "base") if "label" in df else pd.Series("base", index=df.index)
        return df.assign(experiment=name, label=name + ": " + label.astype(str),
                         run_id=name + "/" + df["run_id"].astype(str))

    done = [(n, p) for n, p in zip(names, parts, strict=True) if p["summary"] is not None]
    s = merge_summaries([(n, p["summary"]) for n, p in done]) if done else None
    return {"name": " + ".join(names), "root": store, "where": ", ".join(map(str, roots)),
            "raw": {"name": " + ".join(names), "description": "Across experiments: " + "; ".join(
                f"{n}: {question(p['raw'].get('description')) or '(no description)'}"
                for n, p in zip(names, parts, strict=True))},
            "rep": parts[0]["rep"], "df": pd.concat([tagged(p["df"], n) for n, p in zip(names, parts, strict=True)],
                                                    ignore_index=True),
            "runs": pd.concat([tagged(p["runs"], n) for n, p in done], ignore_index=True) if done else pd.DataFrame(),
            "notes": notes, "summary": s, "parts": list(zip(names, roots, strict=True)),
            "warnings": warnings, "verdicts": verdict_records}


def _render(ctx: dict[str, Any], out: Path, tex_columns: Optional[list[str]]) -> Path:
    root, s = ctx["root"], ctx["summary"]
    if s is not None and tex_columns:
        pick_columns(grid(s), s, tex_columns)  # bad names fail here, before a file is written
    out.mkdir(parents=True, exist_ok=True)
    ctx["out"] = out
    for name, part_root in ctx.get("parts") or [("", root)]:
        copy_experiment(part_root, out, name)
    every, df, raw, rep = ctx["df"], ctx["runs"], ctx["raw"], ctx["rep"]
    write_manifest(out, raw, every["run_id"] if "run_id" in every else [])
    if s is None:
        write_json([], out)
        return write_pages(ctx, None, [], {})
    tables = write_tables(s, out, caption=f"{ctx['name']}.", tex_columns=tex_columns)
    from ablate.report.facets import short_names
    from ablate.report.plots import all_plots  # matplotlib/seaborn/torch only when a report is written
    from ablate.report.scaling import with_compute_figures

    ctx["names"] = short_names(df, s)
    if "parts" in ctx:  # audited per experiment (combined())
        write_json(ctx["verdicts"], out)
    else:
        audit_and_verdicts(ctx, s, df, rep)
    figures = all_plots(df, root, out / "plots", s, getattr(rep, "samples", None), getattr(rep, "x", "step"))
    figures = with_compute_figures(figures, df, root, out / "plots", s)
    keep_earlier(out / "plots", figures)
    prune_plots(out / "plots", figures)
    ctx["samples"] = write_samples(df, root, out, ctx["names"])  # samples.md: every row's test outputs
    return write_pages(ctx, s, figures, tables)


def audit_and_verdicts(ctx: dict[str, Any], s: Summary, df: pd.DataFrame, rep: ReportConfig) -> None:
    """ctx["warnings"]: the environment fields compared rows differ in; ctx["verdicts"]: the declared hypotheses'
    computed verdicts, also written to hypotheses.json."""
    from ablate.experiment.hypotheses import check_hypotheses, parse_hypotheses
    from ablate.report.confounds import audit, project_root
    from ablate.report.tables import panels

    ok = df[df["status"] == "finished"]
    ok = ok.assign(label=ok["label"].fillna("").replace("", "base")) if "label" in ok else ok.assign(label="base")
    found = audit(ok, dict(zip(s.frame["label"], panels(s), strict=True)), rep.accept_confounds, project_root())
    ctx["warnings"] = found.warnings(ctx.get("names"))
    raw = ctx["raw"]
    errors = check_hypotheses(raw.get("hypotheses"), raw, "experiment.yaml")
    if errors:
        ctx["notes"].append("hypotheses not evaluated: " + "; ".join(e.render() for e in errors))
    hyps = [] if errors else parse_hypotheses(raw, s.primary)
    ctx["verdicts"] = verdicts(hyps, ok, s.frame, found, ctx.get("names"), ctx["name"])
    write_json(ctx["verdicts"], ctx["out"])


# ------------------------------------------------------------------ the two pages
def _runs(ctx: dict[str, Any], metric: Optional[str]) -> list[dict[str, Any]]:
    """One entry per run: label, seed, status, score, links (relative to the report dir), why it stopped."""
    from ablate.report.plots import pretty_label
    from ablate.report.stops import run_text

    names = ctx.get("names", {})
    df, root, out = ctx["df"], ctx["root"], ctx["out"]
    out_runs = []
    order = {label: i for i, label in enumerate(names)}
    df = df.assign(_o=df["label"].map(lambda x: order.get(x, len(order)))).sort_values(["_o", "label", "seed"])
    for _, r in df.iterrows():
        links = {f: rel(copy, out) for f, copy in copy_run_files(root / str(r["run_id"]), out,
                                                                  str(r["run_id"])).items()}
        score = r.get(metric) if metric else None
        out_runs.append({"label": names.get(r["label"]) or pretty_label(r["label"]), "seed": r["seed"],
                         "status": r["status"], "id": r["run_id"], "score": score, "links": links,
                         "stop": run_text(r),
                         "error": r.get("error")})
    if not in_place(root, out) and "parts" not in ctx:  # in place, the copies are the store: the runs left out stay
        prune_run_copies(out, set(df["run_id"].astype(str)))
    return out_runs


EARLIER = ("Drawn when this report was first rendered, from its full run store; the run files kept with the "
           "report do not carry what it is drawn from (checkpoints; by_length.csv for runs made before it was "
           "copied), so a re-render keeps the figure as it was.")


def keep_earlier(plots: Path, figures: list) -> None:
    """A figure this render cannot draw only because its inputs are not among the run copies keeps the file an
    earlier render drew (a committed report re-rendered from its own folder loses no evidence), said in its
    caption."""
    for f in figures:
        png = plots / f"{f.name}.png"
        if f.skipped and f.inputs_missing and png.is_file():
            f.files = [p for p in (png, png.with_suffix(".pdf")) if p.is_file()]
            f.caption, f.skipped = EARLIER, ""


def prune_plots(plots: Path, figures: list) -> None:
    """Remove the figures an earlier render wrote that this page does not show (a figure now skipped), so the
    folder holds only what the page links to."""
    shown = {p.resolve() for f in figures for p in (f.files or [])}
    for p in plots.glob("*") if plots.is_dir() else []:
        if p.is_file() and p.suffix in (".png", ".pdf", ".svg") and p.resolve() not in shown:
            p.unlink()


def prune_run_copies(out: Path, keep: set[str]) -> None:
    """Remove the copies an earlier render made of runs this report no longer shows (left out, or gone from the
    store), so a committed report holds no orphans; only directories holding nothing but run-file copies."""
    for d in (out / "runs").iterdir() if (out / "runs").is_dir() else []:
        if d.name not in keep and d.is_dir() and all(f.is_file() and f.name in RUN_FILES for f in d.iterdir()):
            shutil.rmtree(d)


def _summary_line(ctx: dict[str, Any]) -> str:
    df = ctx["df"]
    if df.empty:
        return "no runs yet"
    n_ok = int((df["status"] == "finished").sum())
    parts = [f"{len(df)} runs ({n_ok} finished, {len(df) - n_ok} failed)"]
    for col, what in (("task.name", "task"), ("model.arch", "arch")):
        if col in df:
            parts.append(f"{what}: {', '.join(dict.fromkeys(df[col].astype(str)))}")
    parts.append(f"seeds: {', '.join(str(x) for x in sorted(set(df['seed'].dropna().astype(int))))}")
    from ablate.report.stops import header_line

    parts += [line for line in [header_line(df)] if line]
    return "; ".join(parts)


def made_on(df: pd.DataFrame) -> Optional[str]:
    """Where and how long: the machine (CPU model, cores), torch, threads per run, and the wall time from the
    first run's start to the last one's end beside the summed run time (they differ by the parallelism)."""
    if df.empty or "started" not in df or "wall_s" not in df:
        return None
    start = pd.to_numeric(df["started"], errors="coerce")
    took = pd.to_numeric(df["wall_s"], errors="coerce")
    end = start + took
    if start.isna().all() or end.isna().all():
        return None

    def values(col: str) -> str:
        # a column with gaps (runs from before a field existed) holds floats: 2.0 cores reads as 2
        seen = [str(int(v) if isinstance(v, float) and v.is_integer() else v)
                for v in dict.fromkeys(df[col].dropna())] if col in df else []
        return " / ".join(seen)

    hosts, cpu, cores, threads, torch = (values(c) for c in ("claim_host", "cpu", "cpu_count", "threads", "torch"))
    machine = ", ".join(x for x in (cpu, f"{cores} cores" if cores else "") if x) or "CPU model not recorded"
    where = f"host {hosts} ({machine})" if hosts else machine
    first, last = (datetime.datetime.fromtimestamp(t, datetime.UTC) for t in (start.min(), end.max()))
    return (f"Made on {where}" + (f", torch {torch}" if torch else "")
            + (f", {threads} thread{'' if threads == '1' else 's'} per run" if threads else "")
            + f"; runs from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC: {_duration(end.max() - start.min())}"
            f" wall, {_duration(took.sum())} of run time")


def _duration(seconds: float) -> str:
    m = int(round(seconds / 60))
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min" if m else f"{seconds:.0f} s"


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and not pd.isna(x) else "–"


def write_pages(ctx: dict[str, Any], s: Optional[Summary], figures: list, tables: dict[str, Path]) -> Path:
    out = ctx["out"]
    metric = s.primary if s else None
    runs = _runs(ctx, metric)
    (out / "README.md").write_text(readme(ctx, s, figures, tables, runs))
    index = out / "index.html"
    index.write_text(page(ctx, s, figures, tables, runs))
    return index


def question(description: Optional[str]) -> str:
    """The experiment's question: the first paragraph of its description, on one line."""
    return " ".join((description or "").strip().split("\n\n")[0].split())


def page(ctx: dict[str, Any], s: Optional[Summary], figures: list, tables: dict[str, Path],
         runs: list[dict[str, Any]]) -> str:
    """The page answers first: the question, the computed verdicts, the results table and the forest plot; the
    figures, samples and runs follow, and the experiment's notes close it, collapsed."""
    e, out, raw = html.escape, ctx["out"], ctx["raw"]
    metric = s.primary if s else None
    desc = raw.get("description")
    body = [f"<h1>{e(ctx['name'])}</h1>",
            f'<p class="question">{e(question(desc))}</p>' if desc else
            '<p class="meta">(The experiment file has no description: write one as a comment block at its top, '
            "or a <code>description:</code> key; its first paragraph is the question this page opens with.)</p>",
            '<nav><a href="#results">Results</a><a href="#figures">Figures</a>'
            + ('<a href="#samples">Samples</a>' if ctx.get("samples") else "") + '<a href="#runs">Runs</a>'
            + ('<a href="#notes">Notes</a>' if desc else "") + '<a href="README.md">README.md</a></nav>']
    body += verdicts_html(ctx.get("verdicts"))
    # a confound qualifies the verdicts above it and the table below: it stays between them
    body += [f"<p class='skip'>{e(n)}</p>" for n in ctx.get("warnings", [])]
    body.append('<h2 id="results">Results</h2>')
    if s is not None:
        lead = grid(s).head[: grid(s).n_lead]
        full = {key_name(k): f"{key_name(k)} ({k})" for k in s.keys}
        what = f"Rows: {', '.join(full.get(h, h) for h in lead)}." if s.keys else ""
        body.append(to_html(s))
        body.append(f'<p class="meta">Test metrics of each row over its seeds. {e(what)} Download: '
                    + " · ".join(f'<a href="{rel(p, out)}">{p.name}</a>' for p in tables.values()) + "</p>")
    from ablate.report.hover import BUDGET

    budget = [BUDGET]  # bytes of hover markup left for this page (figures past it have none)
    body += [_figure_html(f, out, budget) for f in figures if f.name == "forest"]  # the answer, after the table
    body += [f'<p class="meta">{e(VERDICT_NOTE)}</p>'] if ctx.get("verdicts") else []
    body += [f"<p class='skip'>{e(n)}</p>" for n in ctx["notes"]]
    where = str(ctx.get("where") or ctx["root"])
    body.append(f'<p class="meta">{e(_summary_line(ctx))}. Runs in <code>{e(where)}</code>; report '
                f"written {datetime.datetime.now():%Y-%m-%d %H:%M}.</p>")
    body += [f'<p class="meta">{e(made)}.</p>'] if (made := made_on(ctx["df"])) else []
    if s is not None and not s.failed.empty:
        body.append("<h3>Failed runs (not in the averages)</h3><table><thead><tr><th class='l'>row</th>"
                    "<th class='r'>seed</th><th class='l'>run</th><th class='l'>error</th></tr></thead><tbody>")
        for r in runs:
            if r["status"] != "finished":
                err = str(r["error"] or "")[-600:]
                body.append(f"<tr><td class='l'>{e(r['label'])}</td><td class='r'>{r['seed']}</td>"
                            f"<td class='l'>{_links_html(r)}</td><td class='l'><div class='err'>{e(err)}</div>"
                            "</td></tr>")
        body.append("</tbody></table>")
    body.append('<h2 id="figures">Figures</h2>')
    body += [_figure_html(f, out, budget) for f in figures if f.name != "forest"]
    body += samples_html(ctx.get("samples"))
    body.append('<h2 id="runs">Runs</h2><table class="sortable"><thead><tr><th class="l">row</th>'
                '<th class="r">seed</th>'
                f'<th class="l">status</th><th class="r">{e(metric_name(metric) if metric else "")}</th>'
                '<th class="l">stopped</th><th class="l">run</th></tr></thead><tbody>')
    for r in runs:
        body.append(f"<tr><td class='l'>{e(r['label'])}</td><td class='r'>{r['seed']}</td>"
                    f"<td class='l'>{e(str(r['status']))}</td><td class='r'>{_num(r['score'])}</td>"
                    f"<td class='l'>{e(r.get('stop', ''))}</td><td class='l'>{_links_html(r)}</td></tr>")
    body.append("</tbody></table>")
    if desc:  # the experiment file's header: read once the answer is known
        body.append(f'<details id="notes"><summary>The experiment\'s notes (its file\'s header)</summary>'
                    f'<div class="desc">{e(desc)}</div></details>')
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(ctx["name"])} — ablate '
            f"report</title>\n<style>{CSS}</style></head>\n<body>\n" + "\n".join(body)
            + f"\n<script>{SCRIPT}</script>\n</body></html>\n")


VERDICT_NOTE = ("Each verdict is computed from the runs: the test named, its p Holm-adjusted over this experiment's "
                "hypotheses; supported / contradicted = significant at the hypothesis's α in / against the expected "
                "direction; inconclusive = fewer than 3 seeds a side, rows that differ in a recorded environment "
                "field, or runs capped while still improving (but for seeds reached and steps to target, which "
                "ask what happens within the step cap). The published figure is shown beside ours, never "
                "tested. All of it is in hypotheses.json.")


def _verdict_rows(records: list[dict[str, Any]]) -> list[list[str]]:
    rows = []
    for r in records:
        pub = r.get("published") or {}
        rows.append([r["claim"], f"{r['rows'][0]} vs {r['rows'][1]}, {metric_name(r['metric'])} "
                     f"({r['expect']} expected, α = {r['alpha']:g})",
                     "; ".join(x for x in (pub.get("source"), pub.get("figure")) if x) or "–", ours_text(r),
                     r["verdict"], (r.get("reason") or "") + (" — " if r.get("reason") and r.get("note") else "")
                     + (r.get("note") or "")])
    return rows


def verdicts_html(records: Optional[list[dict[str, Any]]]) -> list[str]:
    """The computed verdicts, first thing after the question."""
    if not records:
        return []
    e = html.escape
    body = ['<h2 id="hypotheses">Hypotheses and verdicts</h2><div class="scroll"><table class="verdicts"><thead><tr>'
            '<th class="l">claim</th><th class="l">compared</th><th class="l">published</th><th class="l">ours</th>'
            '<th class="l">verdict</th></tr></thead><tbody>']
    for claim, what, pub, ours, verdict, why in _verdict_rows(records):
        body.append(f"<tr><td class='l'>{e(claim)}</td><td class='l'>{e(what)}</td><td class='l'>{e(pub)}</td>"
                    f"<td class='l'>{e(ours)}</td><td class='l'><b class='v-{verdict.replace(' ', '-')}'>"
                    f"{e(verdict)}</b>{'<br>' + e(why) if why else ''}</td></tr>")
    body.append("</tbody></table></div>")  # VERDICT_NOTE follows the results table: the answer comes first
    return body


def verdicts_md(records: Optional[list[dict[str, Any]]]) -> list[str]:
    if not records:
        return []
    lines = ["## Hypotheses and verdicts", "", "| claim | compared | published | ours | verdict |",
             "|---|---|---|---|---|"]
    for claim, what, pub, ours, verdict, why in _verdict_rows(records):
        cells = [claim, what, pub, ours, f"**{verdict}**" + (f" ({why})" if why else "")]
        lines.append("| " + " | ".join(" ".join(c.split()).replace("|", "\\|") for c in cells) + " |")
    return [*lines, "", VERDICT_NOTE, ""]


def _figure_html(f: Any, out: Path, budget: Optional[list[int]] = None) -> str:
    e = html.escape
    cls = ' class="wide"' if f.wide else ""  # wide heatmaps scroll sideways instead of shrinking illegibly
    body = [f"<figure{cls}><h3>{e(f.title)}</h3>"]
    if f.skipped:
        body.append(f'<p class="skip">Not drawn: {e(f.skipped)}.</p>')
    else:
        png, *more = f.files
        img = f'<img src="{rel(png, out)}" alt="{e(f.title)}"{_width(png)}>'
        hover = _hover(f, png, budget)
        body.append(f'<div class="hov">{img}{hover}</div>' if hover else img)
        extra = " ".join(f'(<a href="{rel(p, out)}">{p.suffix[1:].upper()}</a>)' for p in more)
        tip = " Hover over the figure for its values." if hover else ""
        body.append(f"<figcaption>{_code(e(f.caption))}{tip} {extra}</figcaption>")
    body.append("</figure>")
    return "\n".join(body)


def _hover(f: Any, png: Path, budget: Optional[list[int]]) -> str:
    """The figure's hover overlay (hover.py), while the page's budget lasts; '' without one."""
    if not getattr(f, "hover", None) or f.wide or budget is None:
        return ""
    from PIL import Image

    from ablate.report.hover import overlay

    with Image.open(png) as im:
        svg = overlay(f.hover, im.width, im.height)
    if len(svg.encode()) > budget[0]:
        return ""
    budget[0] -= len(svg.encode())
    return svg


def _width(png: Path) -> str:
    """A width attribute that shows every figure at the same scale (96 px per inch; they are saved at 130 dpi)."""
    try:
        from PIL import Image

        from ablate.report.plots import DPI

        with Image.open(png) as im:
            return f' width="{round(im.width * 96 / DPI)}"'
    except (ImportError, OSError):
        return ""


def _code(text: str) -> str:
    """`inline code` in (already escaped) text -> <code>."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def _links_html(r: dict[str, Any]) -> str:
    links = r["links"]
    first = f'<a href="{links["config.yaml"]}"><code>{html.escape(r["id"])}</code></a>' if "config.yaml" in links \
        else f"<code>{html.escape(r['id'])}</code>"
    rest = " ".join(f'<a href="{href}">{html.escape(f.split(".")[0])}</a>' for f, href in links.items()
                    if f != "config.yaml")
    return f"{first} {rest}".strip()


def readme(ctx: dict[str, Any], s: Optional[Summary], figures: list, tables: dict[str, Path],
           runs: list[dict[str, Any]]) -> str:
    out, raw = ctx["out"], ctx["raw"]
    lines = [f"# {ctx['name']}", ""] + ([question(raw["description"]), ""] if raw.get("description") else [])
    lines += verdicts_md(ctx.get("verdicts"))
    lines += [x for n in ctx.get("warnings", []) for x in (f"*{n}*", "")]
    lines += ["## Results", ""]
    if s is not None:
        lines += [to_markdown(s), "Download: " + " · ".join(f"[{p.name}]({rel(p, out)})" for p in tables.values()), ""]
    lines += [x for n in ctx["notes"] for x in (f"*{n}*", "")]
    lines += [f"{_summary_line(ctx)}.", ""]
    if made := made_on(ctx["df"]):
        lines += [f"{made}.", ""]
    if s is not None:
        failed = [r for r in runs if r["status"] != "finished"]
        if failed:
            lines += ["### Failed runs (not in the averages)", ""]
            for r in failed:
                err = " ".join(str(r["error"] or "").split())[-300:]
                lines.append(f"- {r['label']}, seed {r['seed']}: [{r['id']}]({r['links'].get('config.yaml', '')})"
                             f" — {err}")
            lines.append("")
    lines += ["## Figures", ""]
    for f in figures:
        lines += [f"### {f.title}", ""]
        if f.skipped:
            lines += [f"*Not drawn: {f.skipped}.*", ""]
        else:
            lines += [f"![{f.title}]({rel(f.files[0], out)})", "", f.caption, ""]
    if ctx.get("samples"):
        lines += ["## Sample outputs", "", "The same test inputs with every row's output: [samples.md](samples.md)", ""]
    lines += ["## Runs", "", f"| row | seed | status | {metric_name(s.primary) if s else ''} | stopped | config |",
              "|:---|---:|:---|---:|:---|:---|"]
    for r in runs:
        cfg = f"[{r['id']}]({r['links']['config.yaml']})" if "config.yaml" in r["links"] else r["id"]
        lines.append(f"| {r['label']} | {r['seed']} | {r['status']} | {_num(r['score'])} | {r.get('stop', '')} "
                     f"| {cfg} |")
    if raw.get("description"):  # the experiment file's header, after the answer
        lines += ["", "## The experiment's notes", "",
                  *(f"> {line}".rstrip() for line in raw["description"].splitlines())]
    return "\n".join(lines) + "\n"
