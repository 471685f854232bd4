"""Values on hover: the boxes laid over a figure's PNG land on what they describe, their titles carry the
plotted numbers, and the page shows them as inert text."""

from __future__ import annotations

import numpy as np


def test_hover_boxes_land_on_their_points_in_the_saved_png(tmp_path):
    """savefig crops to the figure's tight box (a long y label, a title): a box computed from data coordinates
    lands on its marker's pixels in the PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from ablate.report.figures import Figure, save

    fig, (a, b) = plt.subplots(1, 2, figsize=(6, 3))
    a.set_ylabel("a long y label\non two lines")
    fig.suptitle("a title")
    points = {(a, 0.2, 0.8): "red", (a, 0.7, 0.3): "blue", (b, 5.0, 50.0): "green"}
    for (ax, x, y), colour in points.items():
        ax.plot([x], [y], "s", color=colour, markersize=12)
    a.set_xlim(0, 1), a.set_ylim(0, 1), b.set_xlim(0, 10), b.set_ylim(0, 100)
    fig.tight_layout()
    f = Figure("geo", "where")
    f.targets = [(ax.transData, (x, y, x, y), colour) for (ax, x, y), colour in points.items()]
    save(fig, tmp_path, "geo", f)
    with Image.open(tmp_path / "geo.png") as im:
        rgb = np.asarray(im.convert("RGB")).astype(int)
    want = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 128, 0)}
    for t in f.hover:
        x, y, w, h = t.box
        assert w == 0 and h == 0
        pixel = rgb[round(y), round(x)]
        assert np.abs(pixel - want[t.text]).max() < 40, (t.text, pixel)


def test_overlay_escapes_its_text():
    from ablate.report.hover import Target, overlay

    svg = overlay([Target((1, 2, 3, 4), '</title><script>x()</script> & "q"')], 10, 20)
    assert "<script>" not in svg and "&lt;/title&gt;&lt;script&gt;" in svg and "&amp;" in svg
    assert svg.startswith('<svg class="hover" viewBox="0 0 10 20"')


def test_line_figures_hover_texts_carry_each_rows_mean_and_seed_range(tmp_path):
    """By-length (SCAN's length split: by output length) and learning curves: one hover box per x column, its
    text the panel, the x value and each row's mean over seeds with their range, as drawn."""
    import pandas as pd

    from ablate.report.plots import by_length, learning_curves
    from ablate.report.tables import summarize

    rows = []
    for label, accs in (("lstm", (0.2, 0.4)), ("transformer", (0.6, 0.6))):
        for seed, acc in enumerate(accs):
            rid = f"{label}{seed}"
            rows.append(dict(run_id=rid, variant=label, label=label, seed=seed, status="finished",
                             length_by="tgt_len", max_train_length=22,
                             **{"task.name": "scan", "model.arch": label, "test/seq_acc": acc}))
            (tmp_path / "runs" / rid).mkdir(parents=True)
            pd.DataFrame({"src_len": [3, 5], "tgt_len": [24, 30], "n": 2, "tokens": 50, "token_acc": acc,
                          "seq_acc": [acc, acc / 2]}).to_csv(tmp_path / "runs" / rid / "by_length.csv", index=False)
            pd.DataFrame({"step": [99, 199, 299], "val/seq_acc": [acc / 4, acc / 2, acc],
                          "val/loss": 1.0}).to_csv(tmp_path / "runs" / rid / "metrics.csv", index=False)
    df = pd.DataFrame(rows)
    s = summarize(df, "test/seq_acc", keys=["model.arch"])
    fig = by_length(df, tmp_path / "runs", tmp_path / "plots", s)
    texts = [t.text for t in fig.hover]
    assert len(texts) == 4  # two lengths, two panels (seq acc, token acc)
    at24 = next(t for t in texts if t.startswith("output length 24, seq acc"))
    assert "lstm: 0.300 (seeds 0.200 to 0.400)" in at24 and "transformer: 0.600" in at24, at24
    assert "seeds" not in at24.split("transformer")[1]  # no range where the seeds agree
    curves = learning_curves(df, tmp_path / "runs", tmp_path / "plots", s)
    first = [t.text for t in curves.hover if t.text.startswith("training step 299, seq acc")]
    assert first and "lstm: 0.300 (seeds 0.200 to 0.400)" in first[0] and "transformer: 0.600" in first[0]
    assert all(t.box[2] > 0 and t.box[3] > 0 for t in curves.hover)
