"""The results table as a paper prints it: Δ beside its metric, config cells equal to the baseline's blank
(Vaswani et al. 2017, Table 3), bold only among comparable rows (same task and split), no bold for a speed
experiment, training and decoding tokens/s."""

from __future__ import annotations

import pandas as pd

from ablate.report.tables import grid, summarize


def runs(tasks=("copy",)) -> pd.DataFrame:
    rows = []
    for t, task in enumerate(tasks):
        for v, (heads, d_k, acc) in {"base": (4, 16, 0.90), "heads_1": (1, 64, 0.80), "d_k_8": (4, 8, 0.70)}.items():
            for seed in range(3):
                # the task with the lower accuracies is the one whose best row must still be bold
                rows.append({"run_id": f"{task}{v}{seed}", "variant": v, "label": f"{v}/{task}", "seed": seed,
                             "status": "finished", "task.name": task, "model.n_heads": heads, "model.d_k": d_k,
                             "test/seq_acc": acc - 0.5 * t + 0.01 * seed, "test/loss": 1 - acc + 0.01 * seed,
                             "params": 1000, "train_time_s": 1.0 + v.count("_"), "tokens_per_s": 100.0 + seed,
                             "decode_tokens_per_s": 50.0 + 10 * len(v)})
    return pd.DataFrame(rows)


def test_delta_sits_beside_its_metric_and_unchanged_config_cells_are_blank():
    s = summarize(runs(), "test/seq_acc", baseline="base", keys=["model.n_heads", "model.d_k"])
    g = grid(s)
    assert g.head[:5] == ["variant", "heads", "d_k", "seq acc ↑", "Δ seq acc"]
    rows = {r[0].text: [c.text for c in r] for r in g.body}
    assert rows["base"][1:3] == ["4", "16"]  # the baseline shows every value
    assert rows["heads_1"][1:3] == ["1", "64"]  # a row shows what it changes
    assert rows["d_k_8"][1:3] == ["", "8"]  # ... and only that
    assert rows["d_k_8"][4].startswith("-0.2")
    assert "decode tokens/s" in g.head


def test_best_is_bold_only_among_rows_of_the_same_task_and_a_speed_experiment_bolds_nothing():
    s = summarize(runs(("copy", "reverse")), "test/seq_acc", baseline="base",
                  keys=["task.name", "model.n_heads", "model.d_k"])
    g = grid(s)
    acc = g.head.index("seq acc ↑")
    bold = [(r[1].text, r[0].text) for r in g.body if r[acc].bold]
    assert sorted(bold) == [("copy", "base"), ("reverse", "base")]  # one best per task, not one overall
    assert all(r[1].text for r in g.body)  # the task column is never blanked
    s.bold = False
    assert not any(c.bold for r in grid(s).body for c in r)


def test_a_grid_axis_crossed_with_the_variants_is_never_blanked():
    # scaling: variants x d_model, each row compared with the baseline at its own width. Its width equals the
    # baseline row's by construction; blanking it would leave every non-baseline row without its width.
    rows = []
    for v, loss in {"transformer": 0.1, "lstm": 1.0}.items():
        for d in (64, 128):
            for seed in range(2):
                rows.append({"run_id": f"{v}{d}{seed}", "variant": v, "label": f"{v}/{d}", "seed": seed,
                             "status": "finished", "task.name": "copy", "model.d_model": d,
                             "model.arch": "transformer" if v == "transformer" else "seq2seq",
                             "test/loss": loss * 64 / d + 0.01 * seed, "params": d * 10})
    s = summarize(pd.DataFrame(rows), "test/loss", baseline="transformer", keys=["model.d_model", "model.arch"])
    g = grid(s)
    d_model, arch = g.head.index("d_model"), g.head.index("arch")
    lstm = [r for r in g.body if r[0].text.startswith("lstm")]
    assert sorted(r[d_model].text for r in lstm) == ["128", "64"]
    assert all(r[arch].text == "seq2seq" for r in lstm)  # what the variant changes shows too
