"""Command line: argument parsing only; everything else is the API in the modules it calls."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Optional

from ablate.errors import ConfigError, ConfigErrors
from ablate.registry import UnknownName

EPILOG = "exit codes: 0 ok, 1 some runs failed, 2 invalid experiment or usage"
# Each command's help lists the exit codes it can return.
EXITS = {"run": EPILOG, "plan": "exit codes: 0 ok, 2 invalid experiment or usage",
         "data": "exit codes: 0 ok, 2 invalid experiment, usage or --out",
         "report": "exit codes: 0 ok, 2 not an experiment's runs, usage or --out",
         "attend": "exit codes: 0 ok, 2 not a trained run, an input outside its vocabulary, usage or --out",
         "hypotheses": "exit codes: 0 ok, 2 not a report, usage",
         "list": "exit codes: 0 ok, 2 usage"}


def parser() -> argparse.ArgumentParser:
    from ablate import __version__

    p = argparse.ArgumentParser(prog="ablate", description="Architecture ablations for sequence models.",
                                epilog=EPILOG)
    p.add_argument("--version", action="version", version=f"ablate {__version__}")
    p.add_argument("--plugin", action="append", default=[], metavar="MODULE",
                   help="import MODULE first (it may register archs, components, tasks); repeatable")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for add in (add_run, add_plan, add_data, add_report, add_hypotheses, add_list, add_attend):
        add(sub)
    return p


# One function per command: its arguments (each with help) and, below, what it does.
EXPERIMENT_HELP = "the experiment file (experiments/<name>.yaml)"
OVERRIDES_HELP = ("overrides of the experiment, e.g. model.d_model=128; KEY=a,b,c makes a grid axis (as Hydra's "
                  "multirun); a key the file's grid or variants also set is an error")
PLUGIN_HELP = "import MODULE first (it may register archs, components, tasks); repeatable"


def add_run(sub: Any) -> None:
    r = sub.add_parser("run", help="train every run of an experiment (resumes; skips finished runs)",
                       epilog=EXITS["run"])
    r.add_argument("experiment", type=Path, help=EXPERIMENT_HELP)
    r.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    r.add_argument("--workers", type=int, default=1, help="parallel runs on this machine (default 1)")
    r.add_argument("--executor", default="local", help="local | ray | slurm (default local)")
    r.add_argument("--address", default=None, help="ray: the cluster address (default: $RAY_ADDRESS or a local one)")
    r.add_argument("--runs-dir", type=Path, default=Path("runs"), help="runs go to DIR/<name>/ (default runs)")
    r.add_argument("--fresh", action="store_true", help="forget this experiment's earlier runs first")
    r.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    r.add_argument("--force", action="store_true",
                   help="write the report into reports/<name>/ even when its manifest.json names another experiment "
                        "(default: such a report is left alone and this one goes to reports/_<name>/)")
    r.add_argument("--no-wait", action="store_true",
                   help="do not wait for runs another live driver is training; name them and exit")
    r.add_argument("--stale-after", type=float, default=120.0, metavar="SECONDS",
                   help="a claim from another host with no heartbeat for this long is taken over (default 120)")
    r.add_argument("--max-retries", type=int, default=2, metavar="N",
                   help="ray: retries of a task lost with its node; slurm: requeues after a timeout (default 2)")
    r.add_argument("--plugin", action="append", default=[], metavar="MODULE", dest="plugin_sub", help=PLUGIN_HELP)


def add_plan(sub: Any) -> None:
    pl = sub.add_parser("plan", help="list the runs an experiment would do; trains nothing",
                        epilog=EXITS["plan"])
    pl.add_argument("experiment", type=Path, help=EXPERIMENT_HELP)
    pl.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    pl.add_argument("--runs-dir", type=Path, default=Path("runs"),
                    help="where to look for finished runs: DIR/<name>/ (default runs)")
    pl.add_argument("--flops", action="store_true",
                    help="also show each row's parameters and forward FLOPs per target token (builds the models: "
                         "needs torch, takes seconds per row)")
    pl.add_argument("--plugin", action="append", default=[], metavar="MODULE", dest="plugin_sub", help=PLUGIN_HELP)


def add_data(sub: Any) -> None:
    d = sub.add_parser("data", help="write the experiment's task splits as train/val/test.tsv (source TAB target)",
                       epilog=EXITS["data"])
    d.add_argument("experiment", type=Path, help=EXPERIMENT_HELP)
    d.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=OVERRIDES_HELP)
    d.add_argument("--out", type=Path, required=True, help="directory for train.tsv, val.tsv, test.tsv")
    d.add_argument("--plugin", action="append", default=[], metavar="MODULE", dest="plugin_sub", help=PLUGIN_HELP)


def add_report(sub: Any) -> None:
    rep = sub.add_parser("report", help="tables, plots and an index page for runs/<name>",
                         epilog=EXITS["report"])
    rep.add_argument("runs_dir", type=Path, nargs="+", metavar="RUNS_DIR",
                     help="an experiment's runs: runs/<name>; several (with --out): one report, rows labelled by "
                          "experiment")
    rep.add_argument("--out", type=Path, default=None, help="the report's folder (default reports/<name>)")
    rep.add_argument("--tex-columns", default=None, metavar="COL,COL",
                     help="the columns table.tex keeps, comma-separated: headings as in table.md ('seq acc'), "
                          "metric keys (test/seq_acc) or delta; the row-name columns always stay (default: all)")
    rep.add_argument("--force", action="store_true",
                     help="write into reports/<name>/ even when its manifest.json names another experiment "
                          "(default: such a report is left alone and this one goes to reports/_<name>/)")


def add_hypotheses(sub: Any) -> None:
    h = sub.add_parser("hypotheses", help="the declared hypotheses' computed verdicts, as one markdown table",
                       epilog=EXITS["hypotheses"])
    h.add_argument("report_dirs", type=Path, nargs="+", metavar="REPORT_DIR", help="reports: reports/<name>")


def add_list(sub: Any) -> None:
    sub.add_parser("list", help="architectures, components, tasks and the train, eval and logger options",
                   epilog=EXITS["list"])


def add_attend(sub: Any) -> None:
    a = sub.add_parser("attend", help="attention heatmaps of a trained run on one input",
                       epilog=EXITS["attend"])
    a.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="one trained run: runs/<name>/<run_id>")
    a.add_argument("text", help="the input, space-separated tokens of the run's vocabulary, in quotes")
    a.add_argument("--out", type=Path, default=None, help="folder for the heatmaps (default RUN_DIR/attend)")


def dash_hint(extra: list[str]) -> str:
    """'--model.d_model 64' -> a hint that overrides are written model.d_model=64."""
    for i, x in enumerate(extra):
        key = x.lstrip("-").partition("=")[0]
        if x.startswith("--") and "." in key:
            value = x.partition("=")[2] or (extra[i + 1] if i + 1 < len(extra) else "VALUE")
            return f"; overrides are KEY=VALUE without dashes: {key}={value}"
    return ""


def main(argv: Optional[list[str]] = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: spinning threads of parallel runs starve each other.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    p = parser()
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        p.print_help()
        return 0
    args, extra = p.parse_known_args(argv)
    if args.command is None:
        p.print_help()
        return 0
    # KEY=VALUE overrides may also come after the options (argparse stops collecting them at the first option).
    if extra and (args.command not in ("run", "plan", "data") or any("=" not in x or x.startswith("-") for x in extra)):
        subcommand(p, args.command).error(f"unrecognized arguments: {' '.join(extra)}{dash_hint(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    try:
        plugins = tuple(args.plugin + getattr(args, "plugin_sub", []))
        if plugins:
            from ablate.experiment.worker import load_plugins

            try:
                load_plugins(plugins)
            except ImportError as e:
                raise ConfigErrors([ConfigError("--plugin", e.name or str(e), f"cannot be imported: {e}")]) from None
        return COMMANDS[args.command](args, plugins)
    except ConfigErrors as e:
        for err in e.errors:
            print(f"error: {err.render()}", file=sys.stderr)
        return 2
    except UnknownName as e:  # e.g. --executor rayy
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # a path the tool reads or writes, in one line rather than a traceback
        where = f"{e.filename}: " if e.filename else ""
        print(f"error: {where}{e.strerror or e}", file=sys.stderr)
        return 2


def subcommand(p: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The parser of one command, so that its usage errors print its own usage."""
    action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def cmd_run(args: argparse.Namespace, plugins: tuple[str, ...]) -> int:
    from ablate.api import load, run_code

    for flag, value, least in (("--workers", args.workers, 1), ("--stale-after", args.stale_after, 1),
                               ("--max-retries", args.max_retries, 0)):
        if value < least:
            raise ConfigErrors([ConfigError(flag, value, f"must be >= {least}")])
    exp = load(args.experiment, args.overrides)
    options = {"address": args.address} if args.address else {}
    return run_code(exp, args.runs_dir, workers=args.workers, executor=args.executor, fresh=args.fresh,
                    report=not args.no_report, executor_options={**options, "max_retries": args.max_retries},
                    plugins=plugins, wait=not args.no_wait, stale_after=args.stale_after, force=args.force)


def cmd_plan(args: argparse.Namespace, plugins: tuple[str, ...]) -> int:
    from ablate.api import load
    from ablate.experiment.plan import model_sizes, plan
    from ablate.experiment.store import Store
    from ablate.experiment.tune import PENDING, tuned_plan

    exp = load(args.experiment, args.overrides)
    store = Store(args.runs_dir / exp.name)
    p, pending = tuned_plan(exp, store.root) if exp.tune else (plan(exp), [])
    from ablate.stopping import budget_text

    rows = [(r.run_id, r.variant or "-", ", ".join(f"{k}={v}" for k, v in {**r.point, **r.tuned}.items()) or "-",
             str(r.seed), PENDING if r.run_id == "-" else store.status(r.run_id), r.config.model.arch,
             budget_text(r.config.train, getattr(r.config.task, "n_train", 0) or None))
            for r in [*p.runs, *pending]]
    head = ("run_id", "variant", "grid point", "seed", "status", "arch", "step budget (binding limit)")
    if args.flops:
        sizes: dict[str, tuple[int, float]] = {}  # one count per distinct model and task (seeds share it)
        for i, r in enumerate([*p.runs, *pending]):
            key = repr((r.config.model, r.config.task))
            sizes[key] = sizes.get(key) or model_sizes(r.config)
            rows[i] = (*rows[i], f"{sizes[key][0]:,}", f"{sizes[key][1]:.4g}")
        head = (*head, "params", "FLOPs/token")
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    counts = {s: sum(row[4] == s for row in rows) for s in ("new", "finished", "failed", PENDING)}
    print(f"{exp.name}: {len(rows)} runs ({counts['new']} new, {counts['finished']} finished, "
          f"{counts['failed']} failed" + (f", {counts[PENDING]} {PENDING}" if pending else "") + ")")
    for note in p.notes:
        print(f"note: {note}")
    return 0


def cmd_data(args: argparse.Namespace, plugins: tuple[str, ...]) -> int:
    from ablate.api import load
    from ablate.experiment.export import export_data

    for path in export_data(load(args.experiment, args.overrides), args.out):
        print(path)
    return 0


def cmd_report(args: argparse.Namespace, plugins: tuple[str, ...]) -> int:
    from ablate.api import build_report

    cols = [c.strip() for c in args.tex_columns.split(",") if c.strip()] if args.tex_columns else None
    dirs = args.runs_dir[0] if len(args.runs_dir) == 1 else args.runs_dir
    print(build_report(dirs, args.out, force=args.force, tex_columns=cols))
    return 0


def cmd_hypotheses(args: argparse.Namespace, plugins: tuple[str, ...]) -> int:
    from ablate.api import hypotheses

    print(hypotheses(args.report_dirs), end="")
    return 0


def cmd_list(args: argparse.Namespace, plugins: tuple[str, ...]) -> int:
    from ablate.listing import listing

    print(listing())
    return 0


def cmd_attend(args: argparse.Namespace, plugins: tuple[str, ...]) -> int:
    from ablate.report.attend import attend

    return attend(args.run_dir, args.text, args.out)


COMMANDS = {"run": cmd_run, "plan": cmd_plan, "data": cmd_data, "report": cmd_report,
            "hypotheses": cmd_hypotheses, "list": cmd_list, "attend": cmd_attend}

if __name__ == "__main__":
    sys.exit(main())
