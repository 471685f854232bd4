"""The committed sample reports stand alone: every relative link of every reports/*/index.html (and README.md)
resolves to a file in the repository, and the run files a report copies are not ignored by git."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(ROOT.glob("reports/*/index.html"))


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.targets += [v for k, v in attrs if k in ("href", "src") and v]


def relative(target: str) -> bool:
    return not (target.startswith("#") or urlparse(target).scheme)


def test_there_are_committed_reports():
    assert PAGES, "no reports/*/index.html"


@pytest.mark.parametrize("page", PAGES, ids=[p.parent.name for p in PAGES])
def test_every_relative_link_of_a_committed_report_resolves(page):
    parser = Links()
    parser.feed(page.read_text())
    targets = [t for t in parser.targets if relative(t)]
    assert targets
    dead = [t for t in targets if not (page.parent / unquote(t.split("#")[0])).is_file()]
    assert not dead, f"{len(dead)} of {len(targets)} links dead in {page}, e.g. {dead[:3]}"
    readme = page.parent / "README.md"
    md = [t for t in re.findall(r"\]\(([^)\s]+)\)", readme.read_text()) if relative(t)]
    dead = [t for t in md if not (page.parent / unquote(t.split("#")[0])).is_file()]
    assert not dead, f"dead links in {readme}: {dead[:3]}"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_a_reports_run_copies_are_not_ignored_but_the_run_store_is():
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path]).returncode == 0

    assert not ignored("reports/quickstart/runs/0123456789ab/config.yaml")
    assert ignored("runs/quickstart/0123456789ab/config.yaml")


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs the git checkout")
def test_make_quickstart_writes_only_ignored_paths():
    recipe = (ROOT / "Makefile").read_text().split("\nquickstart:")[1].split("\n\n")[0]
    assert "--no-report" in recipe and "--out reports/_quickstart" in recipe  # never the committed sample
    for path in ("runs/quickstart/0123456789ab/result.json", "reports/_quickstart/index.html",
                 "reports/_quickstart/runs/0123456789ab/config.yaml"):
        assert subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", path]).returncode == 0, path
    assert "reports/_quickstart/index.html" in (ROOT / "README.md").read_text()  # where the user's report is


@pytest.mark.parametrize("page", PAGES, ids=[p.parent.name for p in PAGES])
def test_a_committed_report_names_its_experiment_and_runs_in_its_manifest(page):
    """`ablate run`/`ablate report` leave a report folder alone when its manifest names another experiment, so
    a committed report's manifest must name the experiment file as committed and the runs the report shows."""
    from ablate.config import load_experiment
    from ablate.report.manifest import experiment_hash, read_manifest

    report = page.parent
    manifest = read_manifest(report)
    assert manifest, f"{report}/manifest.json is missing"
    # the experiment as run: the report's own copy (my_corpus ran with the decoding cap the tsv task had then, which
    # its experiment file no longer states, so `ablate run experiments/my_corpus.yaml` rightly writes beside it)
    own = report / "runs" / "experiment.yaml"
    exp = load_experiment(own if own.is_file() else ROOT / "experiments" / f"{report.name}.yaml")
    assert manifest["experiment_hash"] == experiment_hash(exp.raw), f"{report.name}: made from another experiment"
    assert manifest["run_ids"] == sorted(d.name for d in (report / "runs").iterdir() if d.is_dir())
