"""Example outputs: the same K test inputs with every row's output, side by side (samples.md + a page section).

Each finished run saves its test outputs (ablate/train/texts.py, test_samples.jsonl). The K examples are
drawn once by a fixed seed from the test examples every row has, in turn from the short, middle and long
thirds of their source lengths, so every row shows the same inputs;
each row shows its lowest seed's run. An output that equals the reference exactly (seq_acc's exact
match, compared on ids) is marked ✓.
"""

from __future__ import annotations

import html
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from ablate.train.texts import SAMPLES_FILE, read_samples

K = 8  # examples shown
SEED = 0  # which ones: fixed, so reports of the same task show the same inputs
MAX_CHARS = 400  # longer texts are cut (listops inputs run to thousands of characters)


@dataclass
class Samples:
    rows: list[str]  # row names, in table order
    examples: list[dict[str, Any]]  # index, source, reference, outputs: {row: (hypothesis, exact)}
    markdown: Path


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def collect(df: pd.DataFrame, root: Path, names: Optional[dict[str, str]] = None, k: int = K,
            seed: int = SEED) -> tuple[list[str], list[dict[str, Any]]]:
    """(row names, K examples with each row's output) from the finished runs' saved test outputs."""
    names = names or {}
    if df.empty or "label" not in df:
        return [], []
    done = df[df["status"] == "finished"].sort_values("seed")
    per_row: dict[str, dict[int, dict[str, Any]]] = {}
    order = {label: i for i, label in enumerate(names)}
    for label in sorted(dict.fromkeys(done["label"]), key=lambda x: (order.get(x, len(order)), str(x))):
        for run_id in done[done["label"] == label]["run_id"]:  # lowest seed with saved outputs
            samples = read_samples(root / str(run_id) / SAMPLES_FILE)
            if samples:
                per_row[names.get(label) or str(label)] = {s["index"]: s for s in samples}
                break
    if not per_row:
        return [], []
    common = sorted(set.intersection(*(set(v) for v in per_row.values())))
    first = next(iter(per_row.values()))
    chosen = spread(common, lambda i: len(str(first[i]["source"]).split()), k, seed)
    examples = [{"index": i, "source": first[i]["source"], "reference": first[i]["reference"],
                 "outputs": {row: (v[i]["hypothesis"], bool(v[i]["exact"])) for row, v in per_row.items()}}
                for i in chosen]
    return list(per_row), examples


def spread(indexes: list[int], length: Any, k: int, seed: int = SEED) -> list[int]:
    """k of indexes drawn (fixed seed) from the short, middle and long thirds by length(index) in turn, so the
    samples show what happens on long inputs too, not only the common lengths."""
    by_len = sorted(indexes, key=lambda i: (length(i), i))
    n = len(by_len)
    thirds = [by_len[: n // 3], by_len[n // 3: 2 * n // 3], by_len[2 * n // 3:]]
    rng = random.Random(seed)
    pools = [rng.sample(part, len(part)) for part in thirds]
    chosen: list[int] = []
    while len(chosen) < min(k, n):
        for pool in pools:
            if pool and len(chosen) < min(k, n):
                chosen.append(pool.pop())
    return sorted(chosen, key=lambda i: (length(i), i))


def marked(hypothesis: str, reference: str) -> str:
    """hypothesis as HTML (escaped), its tokens that differ from the reference's at the same place in <mark>."""
    ref = reference.split()
    return " ".join(html.escape(tok) if i < len(ref) and tok == ref[i] else f"<mark>{html.escape(tok)}</mark>"
                    for i, tok in enumerate(hypothesis.split()))


def write_samples(df: pd.DataFrame, root: Path, out: Path, names: Optional[dict[str, str]] = None,
                  k: int = K) -> Optional[Samples]:
    """samples.md in out; None when no run saved test outputs."""
    rows, examples = collect(df, root, names, k)
    if not examples:
        return None
    lines = ["# Sample outputs", "", f"{len(examples)} test examples (the same for every row, drawn with seed {SEED});"
             " each row's lowest-seed run. ✓ = exactly the reference.", ""]
    for n, ex in enumerate(examples, 1):
        lines += [f"## Example {n} (test #{ex['index']})", "", f"- **source:** {_md(ex['source'])}",
                  f"- **reference:** {_md(ex['reference'])}", "", "| row | output | exact |", "|:---|:---|:---:|"]
        for row, (hyp, exact) in ex["outputs"].items():
            lines.append(f"| {_md(row)} | {_md(hyp) or '*(empty)*'} | {'✓' if exact else ''} |")
        lines.append("")
    path = out / "samples.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return Samples(rows, examples, path)


def _md(text: str) -> str:
    return _cut(text).replace("|", "\\|").replace("\n", " ")


def samples_html(s: Optional[Samples]) -> list[str]:
    """The index page's section (empty when there are no samples)."""
    if s is None:
        return []
    e = html.escape
    body = ['<h2 id="samples">Sample outputs</h2>',
            f'<p class="meta">{len(s.examples)} test examples, the same for every row (each row\'s lowest-seed run); '
            f'✓ = exactly the reference; <mark>marked</mark> = a token that differs from the reference\'s at '
            f'that place; drawn from short, middle and long inputs. Also in '
            f'<a href="{s.markdown.name}">{s.markdown.name}</a>.</p>']
    for n, ex in enumerate(s.examples, 1):
        body.append(f"<h3>Example {n} <span class='meta'>(test #{ex['index']})</span></h3>"
                    f"<p><b>source:</b> <code>{e(_cut(ex['source']))}</code><br>"
                    f"<b>reference:</b> <code>{e(_cut(ex['reference']))}</code></p>")
        body.append("<table class='samples'><thead><tr><th class='l'>row</th><th class='l'>output</th>"
                    "<th>exact</th></tr></thead><tbody>")
        for row, (hyp, exact) in ex["outputs"].items():
            body.append(f"<tr><td class='l'>{e(row)}</td><td class='l'><code>{marked(_cut(hyp), ex['reference'])}"
                        "</code></td>"
                        f"<td>{'✓' if exact else ''}</td></tr>")
        body.append("</tbody></table>")
    return body
