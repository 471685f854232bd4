"""One checkpoint, evaluated at several eval batch sizes: the numbers must not move.

    .venv/bin/python benchmarks/eval_batch_sizes.py RUN_DIR [--sizes 1 7 8 64 128 256] [--epochs 3]

RUN_DIR is trained first (a small translate Transformer with label smoothing 0.1, about a minute on 2 CPU
cores) unless it already holds a checkpoint; then its test split is evaluated once per batch size with the
code on PYTHONPATH. Point PYTHONPATH at an older checkout to compare that code's figures on the same weights.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
from pathlib import Path

TREE = {
    "task": {"name": "translate", "min_len": 5, "max_len": 20, "n_train": 2000, "n_val": 200, "n_test": 300},
    "model": {"arch": "transformer", "d_model": 64, "n_layers": 2, "n_heads": 4, "d_ff": 128, "dropout": 0.1},
    "train": {"max_epochs": 3, "batch_size": 64, "lr": 1.0e-3, "label_smoothing": 0.1},
}


def train(run_dir: Path, epochs: int) -> None:
    from ablate.config import build_run
    from ablate.train.fit import fit

    tree = {**TREE, "train": {**TREE["train"], "max_epochs": epochs}}
    cfg, _ = build_run(tree, seed=0, where="eval_batch_sizes")
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(json.dumps({"seed": 0, **tree}))  # unresolved: older code reads it too
    res = fit(cfg, run_dir)
    (run_dir / "result.json").write_text(json.dumps(res, default=str))


def evaluate(run_dir: Path, sizes: list[int]) -> list[dict]:
    import pytorch_lightning as pl

    from ablate.report.attend import load_config, load_model
    from ablate.tasks import build_task
    from ablate.train.data import TaskDataModule
    from ablate.train.module import SeqModule
    from ablate.train.sizing import info_of

    cfg, _ = load_config(run_dir)
    data = build_task(cfg.task)
    info = info_of(data)
    model = load_model(run_dir, cfg, info).eval()
    kw = {}
    if "decode_caps" in inspect.signature(SeqModule.__init__).parameters:  # code with per-example caps
        from ablate.train.decoding import decode_caps

        kw["decode_caps"] = decode_caps(data, info.max_tgt_len)
    rows = []
    for bs in sizes:
        module = SeqModule(model, cfg.train, data.vocab, data.kind, data.metrics, **kw)
        trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)
        m = trainer.test(module, datamodule=TaskDataModule(data, bs, bs), verbose=False)[0]
        rows.append({"eval_batch_size": bs, **{k.removeprefix("test/"): round(v, 6) for k, v in m.items()}})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 7, 8, 64, 128, 256])
    p.add_argument("--epochs", type=int, default=3, help="training epochs when RUN_DIR has no checkpoint yet")
    args = p.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    if not (args.run_dir / "checkpoints").is_dir():
        train(args.run_dir, args.epochs)
    for row in evaluate(args.run_dir, args.sizes):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
