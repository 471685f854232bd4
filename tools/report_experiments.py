"""Give each committed report its experiment.yaml (reports/<name>/runs/experiment.yaml), reconstructed from
experiments/<name>.yaml where the run store's own copy is gone, so the report re-renders from its own folder:

    python tools/report_experiments.py            # every reports/<name>/ with a runs/ folder and no experiment.yaml
    ablate report reports/<name>/runs             # then re-renders reports/<name>/ in place

`AS_RUN` holds what a report's runs were made with that the experiment file no longer says (a default changed
since): the reconstruction states it, so the file re-plans to the committed run ids.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ablate.config import load_experiment
from ablate.experiment.store import write_yaml

ROOT = Path(__file__).resolve().parent.parent
# my_corpus ran before the tsv task's decoding cap came from the training data: its fixed 2 * source + 10 then.
AS_RUN = {"my_corpus": {"task": {"decode_ratio": 2.0, "decode_margin": 10}}}


def reconstruct(name: str, force: bool = False) -> Path | None:
    dest = ROOT / "reports" / name / "runs" / "experiment.yaml"
    src = ROOT / "experiments" / f"{name}.yaml"
    if (dest.is_file() and not force) or not src.is_file():
        return None
    exp = load_experiment(src)
    raw = {**exp.raw, "description": exp.description}
    for section, values in AS_RUN.get(name, {}).items():
        raw[section] = {**raw.get(section, {}), **values}
    write_yaml(dest, raw)
    return dest


if __name__ == "__main__":
    force = "--force" in sys.argv
    for d in sorted((ROOT / "reports").glob("*/runs")):
        written = reconstruct(d.parent.name, force)
        print(f"{d.parent.name}: {written.relative_to(ROOT) if written else 'kept'}")
