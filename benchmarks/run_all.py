"""Run every benchmark (each in a fresh interpreter) and print one summary table; what `make bench` calls.

    .venv/bin/python benchmarks/run_all.py [--quick] [--only NAME ...] [--strict]

Each figure is a ratio of ours against a plain reference measured in the same process (see common.py).
Exit status: 1 if a benchmark crashed, or (with --strict) if a goal was missed; else 0.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Row, print_rows

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["harness_overhead", "transformer_layer", "lstm_encoder", "attention_style", "grid_scaling", "ssm",
              "corpus", "decode", "batching", "dropout", "default_batching"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smoke-run each benchmark (figures are not meaningful)")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, default=BENCHMARKS)
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed")
    args = p.parse_args()
    rows: list[Row] = []
    crashed = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            out = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, str(HERE / f"{name}.py"), "--json", str(out)] + (["--quick"] * args.quick)
            print(f"\n=== {name}", flush=True)
            t0 = time.perf_counter()
            if subprocess.run(cmd).returncode != 0 or not out.is_file():
                crashed.append(name)
                continue
            rows += [Row.from_dict(d) for d in json.loads(out.read_text())]
            print(f"=== {name}: {time.perf_counter() - t0:.0f}s", flush=True)
    print_rows("SUMMARY (ratio = ours / plain reference, median of interleaved per-round ratios)", rows)
    missed = [r for r in rows if r.ok is False]
    print(f"\n{sum(r.ok is True for r in rows)} goals met, {len(missed)} missed"
          + (f", crashed: {', '.join(crashed)}" if crashed else ""))
    return 1 if crashed or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
