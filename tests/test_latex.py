"""table.tex compiles with pdflatex as it is, in the README's minimal preamble: every committed report's table as
the current code writes it, and a table of hostile names (skipped, saying why, where pdflatex is absent)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from ablate.report.page import load_summary
from ablate.report.tables import latex_number, summarize, to_latex

ROOT = Path(__file__).resolve().parent.parent
STORES = sorted(p.parent for p in ROOT.glob("reports/*/runs/experiment.yaml"))
# The preamble the README documents for table.tex.
PREAMBLE = "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
needs_pdflatex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed (apt-get "
                                    "install texlive-latex-recommended; .ci/run installs it where apt-get exists)")


def compile_tables(tables: dict[str, str], tmp: Path) -> None:
    """One pdflatex run over all tables (one start-up is most of the cost); the failing table is named."""
    for name, tex in tables.items():
        (tmp / f"{name}.tex").write_text(tex)
    doc = PREAMBLE + "\\begin{document}\n" + "".join(f"\\typeout{{TABLE {n}}}\\input{{{n}}}\\clearpage\n"
                                                        for n in tables) + "\\end{document}\n"
    (tmp / "doc.tex").write_text(doc)
    r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=tmp,
                       capture_output=True, text=True, timeout=120)
    log = r.stdout
    failing = log.rsplit("TABLE ", 1)[-1].split()[0] if "TABLE " in log else "?"
    assert r.returncode == 0, f"table {failing} does not compile:\n" + "\n".join(
        line for line in log.splitlines() if line.startswith("!") or line.startswith("l."))[:2000]
    # Overfull boxes wider than a few points mean a table runs into the margin.
    over = [line for line in log.splitlines() if line.startswith("Overfull \\hbox") and
            float(line.split("(")[1].split("pt")[0]) > 5]
    assert not over, over


def test_numbers_get_real_minus_signs_and_exponents_keep_their_hyphen():
    assert latex_number("-0.980") == "$-$0.980"
    assert latex_number("+0.012") == "$+$0.012"
    assert latex_number("1e-3") == "1e-3"
    assert latex_number("0.5 ± 0.1") == r"0.5 $\pm$ 0.1"


@needs_pdflatex
def test_every_committed_reports_table_compiles(tmp_path):
    assert STORES, "no reports/*/runs/experiment.yaml"
    tables = {}
    for store in STORES:
        s = load_summary(store)["summary"]
        if s is not None:
            tables[store.parent.name.replace("_", "")] = to_latex(s, f"{store.parent.name}.")
    assert len(tables) == len(STORES)
    compile_tables(tables, tmp_path)


@needs_pdflatex
def test_a_table_of_hostile_names_and_many_columns_compiles(tmp_path):
    rows = []
    names = ["base", "ñandú_50%&#$", "分词 ≥ → ħ", "a{b}^~\\c", "−0.5 — “x” …"]
    for i, v in enumerate(names):
        for seed in range(2):
            rows.append({"run_id": f"r{i}{seed}", "variant": v, "label": v, "seed": seed, "status": "finished",
                         "test/seq_acc": 0.1 * i + 0.01 * seed, "test/loss": -1.5 + i, "test/bleu": 30.0 + i,
                         "test/chrf": 50.0 + i, "test/token_acc": 0.9 - 0.1 * i, "params": 10**6 * (i + 1),
                         "train_time_s": 123.4 + i, "tokens_per_s": 5e4 + i * 1e3, "eval_time_s": 2.0 + i})
    s = summarize(pd.DataFrame(rows), "test/seq_acc", baseline="base", keys=[])
    tex = to_latex(s, "hostile.")
    assert "\\resizebox{\\linewidth}" in tex  # ten columns: scaled to the text width, not into the margin
    assert "$-$" in tex
    compile_tables({"hostile": tex, "narrow": to_latex(s, columns=["seq acc", "delta"])}, tmp_path)


def test_tex_columns_naming_no_column_fails_in_one_line_before_anything_is_written(tmp_path, capsys):
    from ablate.cli import main

    store = ROOT / "reports" / "quickstart" / "runs"
    assert main(["report", str(store), "--out", str(tmp_path / "r"), "--tex-columns", "seq acc,bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tex-columns='bogus'" in err[0] and "seq acc" in err[0]
    assert not (tmp_path / "r").exists()  # --out was checked writable, and the folder made for the check removed
