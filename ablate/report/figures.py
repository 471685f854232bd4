"""A report figure and how it is saved (PNG + PDF); below the modules that draw (plots, forest) so both can use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 100  # PNG resolution (the page shows figures at 96 px per inch); keeps sample reports small


@dataclass
class Figure:
    name: str  # file stem under plots/
    title: str  # the question it answers
    files: list[Path] = field(default_factory=list)  # PNG first, then PDF
    caption: str = ""
    skipped: str = ""  # why there is no figure (empty when there is one)
    legend_entries: int = 0  # entries in all its legends (kept <= MAX_LEGEND)
    panels: list[str] = field(default_factory=list)  # titles of its panels (axes with data)
    wide: bool = False  # shown at full size in the page (scrolls sideways) rather than shrunk to the page
    # skipped only because the run files it is drawn from are not here (a committed report's run copies carry no
    # checkpoints, and those made before by_length.csv was copied carry none): an earlier render's file is kept
    inputs_missing: bool = False
    # values on hover (hover.py): the drawing code adds targets (transform, box, text); save() turns them into
    # hover, boxes in the saved PNG's pixels, which the page lays over the image
    targets: list = field(default_factory=list, repr=False)
    hover: list = field(default_factory=list, repr=False)


def describe_figure(fig: Any) -> tuple[int, list[str]]:
    """(legend entries, titles of the panels that hold data) of a matplotlib figure."""
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    panels = [ax.get_title() for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"
              and ax.has_data()]
    return sum(len(leg.get_texts()) for leg in legends), panels


def save(fig: Any, out: Path, name: str, figure: Optional[Figure] = None) -> list[Path]:
    if figure is not None:
        figure.legend_entries, figure.panels = describe_figure(fig)
        if figure.targets:  # the layout is final here: where the boxes land in the PNG
            from ablate.report.hover import to_png

            figure.hover, figure.targets = to_png(fig, figure.targets, DPI), []
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=DPI, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    shrink_png(paths[0])
    return paths


def shrink_png(path: Path) -> None:
    """Re-save a plot with a 256-colour palette: a third of the bytes, no visible change for charts."""
    from PIL import Image  # pillow comes with matplotlib

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
