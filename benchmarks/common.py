"""Shared helpers for the benchmarks: interleaved repeats, medians, ratios, tables, --quick/--json.

Every figure a benchmark reports is a RATIO of ours against a plain reference
measured in the same process, in alternation (ours, ref, ref, ours, ...), so slow
spells of a noisy machine hit both sides alike; the ratio is the median of the
per-round ratios, and the raw medians are shown beside it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional


@dataclass
class Row:
    """One comparison: ours and ref are medians of the repeats; ratio is the median of the per-round
    ratios ours_i / ref_i (each pair measured back to back, so drift in the machine's load cancels).
    Met when ratio <= goal (lower_is_better) or >= goal; goal None: reported only."""

    bench: str
    case: str
    unit: str
    ours: float
    ref: float
    ratio: float
    goal: Optional[float]
    lower_is_better: bool

    @classmethod
    def of(cls, bench: str, case: str, unit: str, ours: list[float], ref: list[float], goal: Optional[float],
           lower_is_better: bool) -> Row:
        paired = [o / r for o, r in zip(ours, ref, strict=True)]
        return cls(bench, case, unit, median(ours), median(ref), median(paired), goal, lower_is_better)

    @property
    def ok(self) -> Optional[bool]:
        if self.goal is None:
            return None
        return self.ratio <= self.goal if self.lower_is_better else self.ratio >= self.goal

    @property
    def goal_text(self) -> str:
        return "-" if self.goal is None else f"{'<=' if self.lower_is_better else '>='} {self.goal:g}x"

    @property
    def met(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.ok]

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}

    @classmethod
    def from_dict(cls, d: dict) -> Row:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


def interleave(measures: dict[str, Callable[[], Any]], repeats: int, warmup: int = 0) -> dict[str, list[Any]]:
    """Call each measure in turn, `repeats` rounds after `warmup` discarded ones; name -> its return values.

    A measure returns a number, or a dict of numbers (several figures from one call)."""
    out: dict[str, list[Any]] = {k: [] for k in measures}
    for i in range(warmup + repeats):
        order = list(measures) if i % 2 == 0 else list(reversed(measures))  # no side always goes first
        for name in order:
            value = measures[name]()
            shown = "  ".join(f"{k} {v:.4g}" for k, v in value.items()) if isinstance(value, dict) else f"{value:.4g}"
            print(f"  [{'warmup' if i < warmup else f'round {i - warmup + 1}/{repeats}'}] {name}: {shown}",
                  file=sys.stderr, flush=True)
            if i >= warmup:
                out[name].append(value)
    return out


def seq_training_rate(model: Any, src: Any, src_len: Any, tgt_in: Any, tgt: Any, n_steps: int,
                      tokens: int) -> Callable[[], float]:
    """A measure for interleave(): tokens/s of n_steps teacher-forced AdamW steps of a SeqModel on one batch."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(n_steps):
            logits = model(src, src_len, tgt_in)
            loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return n_steps * tokens / (time.perf_counter() - t0)

    return run


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float]) -> str:
    """'min..max' of the repeats, to show how noisy a median is."""
    return f"{min(xs):.3g}..{max(xs):.3g}"


def print_table(title: str, head: list[str], rows: list[list[object]]) -> None:
    cells = [[f"{c:.3g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(head)]
    print(f"\n{title}")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))


def print_rows(title: str, rows: list[Row]) -> None:
    print_table(title, ["bench", "case", "ours", "ref", "unit", "ratio", "goal", "met"],
                [[r.bench, r.case, r.ours, r.ref, r.unit, f"{r.ratio:.3f}x", r.goal_text, r.met]
                 for r in rows])


def cli(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (figures are not meaningful)")
    p.add_argument("--json", type=Path, default=None, help="also write the result rows here (for run_all.py)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads for both sides (default 1: on a small shared machine a second thread mostly "
                        "spin-waits on other tenants' load)")
    args = p.parse_args()
    if "torch" in sys.modules:  # benchmarks that train import torch first; the CLI one does not need it
        sys.modules["torch"].set_num_threads(args.threads)
    return args


def finish(args: argparse.Namespace, title: str, rows: list[Row]) -> list[Row]:
    print_rows(title, rows)
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in rows], indent=2))
    return rows
