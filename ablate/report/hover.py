"""Values on hover, offline and without a script or library: a figure's PNG stays as it is, and the page lays a
transparent inline SVG of the PNG's size over it, one box per point (or per x column, or per forest row) with a
<title> holding the values. Browsers show an SVG <title> as a tooltip, from file:// too; the SVG scales with
the image, so the boxes stay on their points at any width.

The drawing code names its targets in data (or axes) coordinates; save() turns them into PNG pixels once the
layout is final, reproducing savefig's bbox_inches="tight" crop (the figure's tight box, padded)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

BUDGET = 200_000  # bytes of hover markup in one page at most (the page's script and CSS fit in the rest of 300 KB)
MAX_COLUMNS = 25  # x columns with a tooltip per panel of a line figure (a long curve: every k-th validation)


@dataclass
class Target:
    """A hover box: (left, top, width, height) in the saved PNG's pixels, from its top-left, and its text."""

    box: tuple[float, float, float, float]
    text: str


def to_png(fig: Any, targets: list[tuple[Any, tuple[float, float, float, float], str]], dpi: float) -> list[Target]:
    """Targets (transform, (x0, y0, x1, y1) in that transform's coordinates, text) as boxes in the pixels of the
    PNG savefig(dpi=dpi, bbox_inches="tight") writes of fig; call with the layout final, before saving."""
    import matplotlib

    fig.canvas.draw()
    pad = matplotlib.rcParams["savefig.pad_inches"]
    tight = fig.get_tightbbox(fig.canvas.get_renderer()).padded(pad if isinstance(pad, (int, float)) else 0.1)
    out = []
    for transform, (x0, y0, x1, y1), text in targets:
        (a, b), (c, d) = transform.transform([(x0, y0), (x1, y1)]) / fig.dpi  # inches from the figure's corner
        left, top = (min(a, c) - tight.x0) * dpi, (tight.y1 - max(b, d)) * dpi
        out.append(Target((round(left, 1), round(top, 1), round(abs(c - a) * dpi, 1), round(abs(d - b) * dpi, 1)),
                          text))
    return out


def overlay(targets: list[Target], width: int, height: int) -> str:
    """The inline SVG laid over a PNG of width x height pixels; every text XML/HTML-escaped (it holds variant
    names and config values: inert text, never markup)."""
    boxes = "".join(f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}"><title>{html.escape(t.text)}</title>'
                    "</rect>" for t in targets for x, y, w, h in [t.box])
    # inline in HTML: no xmlns needed (the page names no http address at all)
    return f'<svg class="hover" viewBox="0 0 {width} {height}" preserveAspectRatio="none">{boxes}</svg>'


def num(v: float) -> str:
    """A value in a tooltip: 3 decimals for small numbers, a count ('30.4k') for large ones; real minus signs."""
    if v != v:  # nan
        return "–"
    from ablate.report.tables import fmt_count

    text = f"{v:.3f}" if abs(v) < 1000 else fmt_count(v)
    return text.replace("-", "−")
