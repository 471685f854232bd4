"""The forest plot stays readable when a few rows collapse: those get their own panel (a broken axis)."""

from __future__ import annotations

import pandas as pd

from ablate.report.forest import x_panels


def rows(deltas: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"delta": deltas, "low": [d - 0.02 for d in deltas], "high": [d + 0.02 for d in deltas]})


def test_rows_that_collapse_get_their_own_panel_and_the_rest_keep_a_readable_scale():
    (far, main) = x_panels(rows([-0.005, 0.007, -0.978, 0.001, -0.981, 0.003, -0.009, 0.0]))
    assert far[0] < -1.0 and -0.96 < far[1] < main[0]  # the collapsed rows, alone
    assert main[0] < -0.029 and main[1] > 0.027 and main[1] - main[0] < 0.1  # the others' ±0.02 intervals


def test_one_panel_when_nothing_stands_apart_or_most_rows_move():
    assert len(x_panels(rows([-0.005, 0.007, 0.01, -0.02]))) == 1
    assert len(x_panels(rows([-0.9, -0.8, 0.01, -0.85]))) == 1  # most rows moved: one scale shows them all


def test_an_architecture_keeps_its_colour_and_place_in_every_figure():
    from ablate.report.plots import arch_ordered, hue_colors

    one = hue_colors(arch_ordered(["transformer", "lstm"]))
    other = hue_colors(arch_ordered(["lstm", "mlp", "seq2seq_attention", "transformer", "gru"]))
    assert one["transformer"] == other["transformer"] and one["lstm"] == other["lstm"]
    assert arch_ordered(["transformer", "lstm", "mlp"]) == ["mlp", "lstm", "transformer"]
    mixed = hue_colors(["transformer", "no_pe", "base"])  # variants take colours no architecture uses
    assert len(set(mixed.values())) == 3


def test_samples_come_from_short_middle_and_long_inputs_and_mark_the_wrong_tokens():
    from ablate.report.samples import marked, spread

    lengths = {i: i for i in range(90)}  # input i has i tokens
    got = spread(list(lengths), lengths.__getitem__, 6)
    assert len(got) == 6 and sum(i < 30 for i in got) == sum(30 <= i < 60 for i in got) == sum(i >= 60 for i in got)
    assert marked("a <b> c d", "a x c") == "a <mark>&lt;b&gt;</mark> c <mark>d</mark>"


def test_rows_compared_at_their_own_grid_point_say_so_on_the_axis_and_in_each_hover(tmp_path):
    """A variant crossed with a grid axis is compared with the baseline variant at the same grid value: the x
    label names the variant and the axis, not the first row's baseline as if it were everyone's, and each
    row's hover names its own baseline."""
    from ablate.report.forest import forest
    from ablate.report.tables import summarize

    rows = [dict(run_id=f"{v}{d}{i}", variant=v, label=f"{v}, d={d}", seed=i, status="finished",
                 **{"model.d_model": d, "test/loss": x + 0.01 * i})
            for v, off in (("transformer", 0.0), ("lstm", 1.0)) for d in (64, 128)
            for i, x in enumerate([off + 1 / d] * 3)]
    df = pd.DataFrame(rows)
    fig = forest(df, summarize(df, "test/loss", baseline="transformer", keys=["model.d_model"]), tmp_path)
    assert "transformer at the row's own model.d_model" in fig.caption
    hovers = {t.text.splitlines()[0]: t.text for t in fig.hover}
    assert "of transformer, d_model=64" in hovers["lstm, d_model=64"]
    assert "of transformer, d_model=128" in hovers["lstm, d_model=128"]
