"""The report page in headless Chromium at 1280 px: it answers first (question, verdicts, then the results table
within the first 900 px of every committed report), and the experiment's notes close it, collapsed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from browser import CHROMIUM, SKIP_REASON, run_in_pages

ROOT = Path(__file__).resolve().parent.parent
STORES = sorted(p.parent for p in ROOT.glob("reports/*/runs/experiment.yaml"))
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)


def render_page(store: Path, out: Path) -> Path:
    """index.html of a committed report's runs, without its figures (they come after the table), with the
    hypotheses its experiments/<name>.yaml declares where the stored copy predates them."""
    from ablate.report.facets import short_names
    from ablate.report.page import audit_and_verdicts, load_summary, write_pages
    from ablate.report.tables import write_tables

    ctx = load_summary(store)
    src = ROOT / "experiments" / f"{store.parent.name}.yaml"
    if src.is_file() and not ctx["raw"].get("hypotheses"):
        ctx["raw"]["hypotheses"] = yaml.safe_load(src.read_text()).get("hypotheses")
    out.mkdir(parents=True)
    ctx["out"], s = out, ctx["summary"]
    tables = write_tables(s, out)
    ctx["names"] = short_names(ctx["runs"], s)
    audit_and_verdicts(ctx, s, ctx["runs"], ctx["rep"])
    return write_pages(ctx, s, [], tables)


@pytest.fixture(scope="module")
def committed_pages(tmp_path_factory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("pages")
    return [render_page(store, tmp / store.parent.name) for store in STORES]


LAYOUT = """
const top = el => el ? el.getBoundingClientRect().top + win.scrollY : null;
const notes = doc.querySelector('details#notes');
return {table: top(doc.querySelector('table.results')), verdicts: top(doc.querySelector('table.verdicts')),
        question: top(doc.querySelector('p.question')), notes_open: notes ? notes.open : null,
        notes_last: notes ? !notes.nextElementSibling : null, width: win.innerWidth};
"""


@needs_chromium
def test_every_committed_report_opens_with_question_verdicts_and_the_table_within_900_px(committed_pages):
    assert len(committed_pages) == len(STORES) >= 11
    got = dict(zip([p.parent.name for p in committed_pages], run_in_pages(committed_pages, LAYOUT,
                                                                         committed_pages[0].parent.parent)))
    for name, g in got.items():
        assert g["width"] == 1280, g
        assert g["question"] is not None and g["question"] < 150, (name, g)
        assert g["table"] is not None and g["table"] < 900, (name, g)
        if g["verdicts"] is not None:
            assert g["question"] < g["verdicts"] < g["table"], (name, g)
        assert g["notes_open"] is False and g["notes_last"], (name, g)  # notes collapsed, at the end
    assert sum(g["verdicts"] is not None for g in got.values()) >= 9  # the experiments that declare hypotheses
