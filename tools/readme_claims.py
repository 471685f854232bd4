"""Rewrite the README's claims table with `ablate hypotheses reports/*` (run from the repository root after the
committed reports are re-rendered): the table between the two markers is replaced, nothing else changes."""

from __future__ import annotations

import sys
from pathlib import Path

from ablate.report.verdicts import hypotheses_table

START, END = "<!-- ablate hypotheses reports/* -->\n", "<!-- end of ablate hypotheses -->"


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    readme = root / "README.md"
    text = readme.read_text()
    if START not in text or END not in text:
        print(f"README.md has no {START.strip()} ... {END} block", file=sys.stderr)
        return 2
    table = hypotheses_table(sorted(p for p in (root / "reports").iterdir() if p.is_dir()), start=root)
    head, rest = text.split(START, 1)
    readme.write_text(head + START + table + END + rest.split(END, 1)[1])
    print(f"README.md: claims table rewritten ({table.count(chr(10)) - 2} hypotheses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
