"""Headless Chromium for the page tests: one launch loads a harness page that opens each report in a 1280-px
iframe, runs a check in it and writes the answers into the DOM, which --dump-dom prints."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Optional

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
SKIP_REASON = "headless Chromium not installed (apt-get install chromium)"


def run_in_pages(pages: list[Path], check_js: str, harness_dir: Path, wait_ms: int = 1500) -> list[dict]:
    """For each page, check_js (the body of a function of `doc`, the page's document, and `win`, its window,
    returning a JSON-able value) run after the page loaded, in an iframe 1280 px wide and 900 px high."""
    frames = "".join(f'<iframe src="{p.resolve().as_uri()}" width="1280" height="900"></iframe>' for p in pages)
    harness = harness_dir / "harness.html"
    harness.write_text(
        f"<!DOCTYPE html><html><body style='margin:0'>{frames}<pre id='out'></pre><script>"
        f"function check(doc, win){{{check_js}}}"
        "window.addEventListener('load', () => setTimeout(() => {"
        " const res = [...document.querySelectorAll('iframe')].map(f => {"
        "  try { return check(f.contentDocument, f.contentWindow); } catch (e) { return {error: String(e)}; } });"
        f" document.getElementById('out').textContent = 'RESULT' + JSON.stringify(res) + 'END'; }}, {wait_ms}));"
        "</script></body></html>")
    dom = run_chromium(harness, wait_ms + 4000)
    text = dom.split("RESULT", 1)[1].split("END", 1)[0]
    import html

    return json.loads(html.unescape(text))


def run_chromium(page: Path, budget_ms: int, extra: Optional[list[str]] = None) -> str:
    """The DOM of page after its scripts ran (file:// pages may read each other: --allow-file-access-from-files)."""
    assert CHROMIUM, SKIP_REASON
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
           "--allow-file-access-from-files", f"--virtual-time-budget={budget_ms}", *(extra or []), "--dump-dom",
           page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
