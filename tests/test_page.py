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
        notes_last: notes ? [...doc.body.children].filter(e => e.tagName !== 'SCRIPT').pop() === notes : null,
        width: win.innerWidth};
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


# ------------------------------------------------------------------ interactive, offline, inert user text
SCRIPT_TAG = "<script>window.__ran = 1</script>"
IMG_TAG = "</script><img src=x onerror=\"window.__ran = 2\">"
HOSTILE = {"base": 0.50, SCRIPT_TAG: 0.90, IMG_TAG: 0.20}  # variant names, with their accuracy


def hostile_store(root: Path) -> Path:
    """Three variants named with markup, and a corpus line of markup in every run's saved test outputs."""
    import json

    root.mkdir(parents=True)
    raw = {"name": "hostile", "description": f"Is {SCRIPT_TAG} inert?\n\nNotes {IMG_TAG}.",
           "task": {"name": "reverse"}, "model": {"arch": "transformer"}, "seeds": [0, 1, 2],
           "variants": {v: {} for v in HOSTILE}, "report": {"metric": "test/seq_acc", "baseline": "base"}}
    (root / "experiment.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    for i, (v, acc) in enumerate((v, a) for v, a in HOSTILE.items() for _ in range(3)):
        d = root / f"run{i:03d}"
        d.mkdir()
        (d / "config.yaml").write_text(yaml.safe_dump({"seed": i % 3, "task": {"name": "reverse"},
                                                       "model": {"arch": "transformer"}}))
        (d / "result.json").write_text(json.dumps({
            "status": "finished", "variant": v, "label": v, "seed": i % 3, "steps": 100, "started": 1e9 + i,
            "wall_s": 1.0, "metrics": {"test/seq_acc": acc + 0.01 * (i % 3)}}))
        (d / "test_samples.jsonl").write_text("".join(json.dumps(
            {"index": k, "source": f"a {SCRIPT_TAG} b", "reference": IMG_TAG, "hypothesis": IMG_TAG, "exact": True})
            + "\n" for k in range(3)))
    return root


INTERACT = """
const th = [...doc.querySelectorAll('table.results thead th')];
const first = () => [...doc.querySelectorAll('table.results tbody tr')].map(r => r.cells[0].textContent.trim());
const before = first();
th.find(h => h.textContent.startsWith('seq acc')).click();
const up = first();
th.find(h => h.textContent.startsWith('seq acc')).click();
const down = first();
const box = doc.querySelector('input.filter');
box.value = 'img'; box.dispatchEvent(new win.Event('input'));
const shown = [...doc.querySelectorAll('table.results tbody tr')].filter(r => r.style.display !== 'none').length;
const svg = doc.querySelector('figure svg.hover'), img = svg && svg.parentNode.querySelector('img');
const rect = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
const hits = svg ? [...svg.querySelectorAll('rect')].map(r => { const b = r.getBoundingClientRect();
  const at = doc.elementFromPoint(b.left + b.width / 2, b.top + b.height / 2);
  return at === r; }) : [];
const hover = svg ? {titles: [...svg.querySelectorAll('rect > title')].map(t => t.textContent),
                     markup: svg.querySelectorAll("title *").length, svg: rect(svg), img: rect(img), hits} : null;
return {hover, before, up, down, shown, ran: win.__ran || 0, imgs: doc.querySelectorAll('img[onerror]').length,
        scripts: doc.querySelectorAll('script').length, text: doc.body.textContent,
        external: [...doc.querySelectorAll('[src],link[href]')].map(e => e.getAttribute('src') || e.href)
                  .filter(u => /^(https?:)?\\/\\//.test(u))};
"""


@needs_chromium
def test_user_text_stays_inert_and_tables_sort_and_filter_offline(tmp_path):
    from ablate.report.page import build_report

    index = build_report(hostile_store(tmp_path / "runs" / "hostile"), tmp_path / "report")
    html_text = index.read_text()
    assert SCRIPT_TAG not in html_text and IMG_TAG not in html_text  # escaped in the page source too
    import re

    hover = sum(len(x.encode()) for x in re.findall(r'<svg class="hover".*?</svg>', html_text, re.S))
    assert hover and len(html_text.encode()) - len(html_text.split("<script>")[0].encode()) + hover < 300_000
    (g,) = run_in_pages([index], INTERACT, tmp_path)
    assert g["ran"] == 0 and g["imgs"] == 0 and g["scripts"] == 1, g  # nothing the user wrote executed
    for text in (SCRIPT_TAG, IMG_TAG, f"a {SCRIPT_TAG} b"):
        assert text in g["text"]  # ... and it reads as written
    assert g["before"] == list(HOSTILE)  # the experiment's order
    assert g["up"] == [IMG_TAG, "base", SCRIPT_TAG]  # a click sorts by seq acc, ascending
    assert g["down"] == [SCRIPT_TAG, "base", IMG_TAG]  # a second click reverses
    assert g["shown"] == 1 and not g["external"]
    # values on hover: the forest's rows, their names as written (inert text, no element in a title) and their
    # numbers; the overlay lies exactly on the image and a point under each box hits the box
    hover = g["hover"]
    assert hover and hover["markup"] == 0, hover
    assert all(abs(a - b) < 1.5 for a, b in zip(hover["svg"], hover["img"], strict=True)), hover
    assert hover["hits"] and all(hover["hits"]), hover
    by_row = {t.split("\n")[0]: t for t in hover["titles"]}
    assert set(by_row) == {SCRIPT_TAG, IMG_TAG}, by_row
    assert "Δ seq acc = +0.400" in by_row[SCRIPT_TAG] and "Δ seq acc = −0.300" in by_row[IMG_TAG], by_row
    assert "3 seeds vs 3 of base" in by_row[IMG_TAG]
