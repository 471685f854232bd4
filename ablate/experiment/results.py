"""results.csv as a pandas DataFrame: one row per run, config flattened into columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from ablate.config import flatten
from ablate.experiment.stops import STOP_FIELDS, infer_stop
from ablate.experiment.store import atomic_write, read_result

FIRST = ["run_id", "variant", "label", "seed", "status"]


def results_frame(root: str | Path) -> pd.DataFrame:
    rows = []
    for d in sorted(Path(root).iterdir()) if Path(root).is_dir() else []:
        res = read_result(d)
        if res is None or not (d / "config.yaml").is_file():
            continue
        cfg = yaml.safe_load((d / "config.yaml").read_text()) or {}
        row = {"run_id": d.name, "variant": res.get("variant", ""), "label": res.get("label", ""),
               "seed": cfg.get("seed"), "status": res.get("status")}
        sections = {k: cfg[k] for k in ("task", "model", "train", "eval") if k in cfg}
        row.update({k: v for k, v in flatten(sections).items()})
        row.update(res.get("metrics", {}))
        for k in ("params", "train_time_s", "tokens_per_s", "peak_mem_mb", "epochs", "steps", "steps_to_target",
                  "eval_time_s", "max_train_src_len", "max_train_tgt_len", "length_by", "max_train_length",
                  "bleu_signature", "chrf_signature",
                  "resumed_at_step", "pad_fraction", "decode_tokens_per_s", "started", "wall_s",
                  "train_flops", "train_flops_per_token", "decode_flops_per_token", "flops_per_s", "flops_lower_bound",
                  "flops_to_target", "seconds_to_target", "peak_flops_per_s", "flops_utilization"):
            if k in res:
                row[k] = res[k]
        # why it stopped: as recorded, or for a run from before these fields, inferred from its metrics.csv
        stops = {k: res[k] for k in STOP_FIELDS if k in res} if "stop_reason" in res else infer_stop(cfg, res,
                                                                                                      d / "metrics.csv")
        row.update(stops)
        # the machine and code it ran on: the report's "made on" line and its confound check
        for k in ("threads", "cpu", "cpu_count", "torch", "lightning", "python", "device", "dtype", "git_commit",
                  "dirty"):
            if k in res.get("reproduce", {}):
                row[k] = res["reproduce"][k]
        if isinstance(res.get("claim"), dict):  # which driver trained it (claims.py)
            row["claim_host"], row["claim_pid"] = res["claim"].get("host"), res["claim"].get("pid")
        if res.get("error"):
            row["error"] = res["error"]
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=FIRST)
    return df[FIRST + [c for c in df.columns if c not in FIRST]]


def load_results(path: str | Path) -> pd.DataFrame:
    """The results table of runs/<name> (rebuilt from its run directories), rows sorted by label, seed, run id.

    Raises ConfigErrors when path is not an experiment's runs (missing, empty, a parent of experiments or one
    run's directory), listing the experiments found there.
    """
    from ablate.experiment.locate import check_experiment_dir

    df = results_frame(check_experiment_dir(path, "path", need_runs=True))
    # The run directories are named by hash: order rows as a reader looks for them, the same on every call.
    return df.sort_values(["label", "seed", "run_id"], kind="stable").reset_index(drop=True)


def rebuild_results(root: str | Path) -> Path:
    """results.csv rebuilt from every run directory, atomically: it is derived, so a corrupt one is replaced,
    and two drivers finishing at once each write a whole file."""
    path = Path(root) / "results.csv"
    atomic_write(path, results_frame(root).to_csv(index=False))
    return path


def newest_per_cell(df: pd.DataFrame, keys: tuple[str, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the newest run of each table cell, the older ones). A cell is a row label and a seed (and the tuned
    keys' values: tuning candidates share a label). Two runs in one cell mean the experiment was edited in a way
    its labels do not show (a cap raised, a variant's setting changed): averaging both would mix two
    experiments, so the later one stands and the earlier is kept in the store but left out."""
    if df.empty or "started" not in df:
        return df, df.iloc[0:0]
    cell = ["label", "seed", *[k for k in keys if k in df]]
    order = df.assign(_t=pd.to_numeric(df["started"], errors="coerce").fillna(float("-inf")))
    order = order.sort_values("_t", kind="stable")
    older = order.duplicated(cell, keep="last")
    return df.loc[order.index[~older]].sort_index(), df.loc[order.index[older]].sort_index()
