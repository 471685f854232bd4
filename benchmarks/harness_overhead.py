"""Our Lightning harness (ablate.train.fit.fit) vs a hand-written PyTorch loop doing the same work.

Apples to apples: the same RunConfig builds the same task, the same model (same seed, so the same
init), the same batches (TaskDataModule's seeded loader), AdamW with the same betas and LambdaLR
schedule, the same gradient clipping, deterministic algorithms on, the same number of epochs/steps,
and in BOTH the same per-epoch validation (teacher-forced loss + greedy decoding of the val split).

  fit time   : fit()'s own fit_time_s (trainer.fit: training + per-epoch validation)
               vs the hand loop's training + per-epoch validation.          goal <= 1.05x
  fit CPU    : the same spans in process CPU seconds: with one torch thread this is the work done,
               and far less disturbed by other tenants than wall time.      goal <= 1.05x (cross-check)
  whole call : fit() end to end (task build, Trainer set-up, fit, test on the best checkpoint, files)
               vs hand loop end to end (task build, model, train+val, test). reported, no goal
"""

from __future__ import annotations

import tempfile
import time
from unittest import mock

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from common import Row, cli, finish, interleave, spread

from ablate.config import build_run
from ablate.models import build_model
from ablate.tasks import build_task
from ablate.tasks.vocab import Vocab
from ablate.train.data import TaskDataModule
from ablate.train.decoding import decode_caps
from ablate.train.fit import fit
from ablate.train.metrics import decode_counts
from ablate.train.sizing import info_of


def config(quick: bool):
    tree = {
        "task": {"name": "reverse", "n_train": 128 if quick else 1000, "n_val": 64 if quick else 128,
                 "n_test": 64 if quick else 128, "min_len": 4, "max_len": 12},
        "model": {"arch": "transformer", "d_model": 64, "n_layers": 2, "n_heads": 4},
        "train": {"max_epochs": 1 if quick else 3, "batch_size": 64, "eval_batch_size": 256},
    }
    return build_run(tree, seed=0, where="benchmarks/harness_overhead.py")[0]


def run_harness(cfg) -> dict[str, float]:
    """fit_time_s as fit() reports it, CPU seconds of that trainer.fit, seconds of the whole fit() call."""
    cpu = {}
    trainer_fit = pl.Trainer.fit

    def cpu_timed_fit(self, *args, **kwargs):
        t0 = time.process_time()
        try:
            return trainer_fit(self, *args, **kwargs)
        finally:
            cpu["fit"] = time.process_time() - t0

    with tempfile.TemporaryDirectory() as d, mock.patch.object(pl.Trainer, "fit", cpu_timed_fit):
        t0 = time.perf_counter()
        out = fit(cfg, d)
        return {"fit": out["fit_time_s"], "fit_cpu": cpu["fit"], "call": time.perf_counter() - t0}


@torch.no_grad()
def evaluate(model, loader, label_smoothing: float, caps) -> dict[str, float]:
    """caps: the harness's per-example decoding caps (the task's, never the references'; here equal to the
    longest target), so that both sides decode as many steps whatever the task."""
    model.eval()
    sums = {"loss": 0.0, "n": 0}
    for b in loader:
        logits = model(b["src"], b["src_len"], b["tgt_in"])
        loss = F.cross_entropy(logits.flatten(0, 1), b["tgt"].flatten(), ignore_index=Vocab.pad,
                               label_smoothing=label_smoothing)
        cap = caps(b["src_len"])
        counts = decode_counts(model.generate(b["src"], b["src_len"], cap), b["tgt"], cap)
        sums["loss"] += float(loss) * b["src"].size(0)
        sums["n"] += b["src"].size(0)
        for k, v in counts.items():  # whatever decode_counts counts (listing them here broke once)
            sums[k] = sums.get(k, 0) + int(v.sum())
    return sums


def run_plain(cfg) -> dict[str, float]:
    """The hand-written loop: train + per-epoch validation seconds (wall, CPU), whole-call seconds."""
    t_call = time.perf_counter()
    t = cfg.train
    pl.seed_everything(cfg.seed, workers=True, verbose=False)  # what fit() does: same init, same order
    torch.use_deterministic_algorithms(True)  # what Trainer(deterministic=True) does
    data = build_task(cfg.task)
    model = build_model(cfg.model, info_of(data))
    caps = decode_caps(data, info_of(data).max_tgt_len)  # what fit() gives SeqModule
    dm = TaskDataModule(data, t.batch_size, t.eval_batch_size, seed=cfg.seed)
    train_loader, val_loader = dm.train_dataloader(), dm.val_dataloader()
    betas = (0.9, 0.98) if t.schedule == "noam" else (0.9, 0.999)
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, betas=betas, weight_decay=t.weight_decay)
    assert t.schedule == "none" and not t.warmup_steps, "the plain loop does the constant schedule only"
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)  # what SeqModule builds for schedule none
    t0, c0 = time.perf_counter(), time.process_time()
    for epoch in range(t.max_epochs):
        model.train()
        for b in train_loader:
            logits = model(b["src"], b["src_len"], b["tgt_in"])
            loss = F.cross_entropy(logits.flatten(0, 1), b["tgt"].flatten(), ignore_index=Vocab.pad,
                                   label_smoothing=t.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if t.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            opt.step()
            sched.step()
        if (epoch + 1) % t.val_every == 0:
            evaluate(model, val_loader, t.label_smoothing, caps)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    evaluate(model, dm.test_dataloader(), t.label_smoothing, caps)
    return {"fit": fit_s, "fit_cpu": fit_cpu, "call": time.perf_counter() - t_call}


def main() -> list[Row]:
    args = cli(__doc__.splitlines()[0])
    cfg = config(args.quick)
    got = interleave({"harness": lambda: run_harness(cfg), "plain": lambda: run_plain(cfg)},
                     repeats=1 if args.quick else 7, warmup=0 if args.quick else 1)
    col = lambda side, key: [g[key] for g in got[side]]
    print(f"{cfg.model.arch} d_model={cfg.model.d_model} on {cfg.task.name} n_train={cfg.task.n_train}, "
          f"{cfg.train.max_epochs} epochs of batch {cfg.train.batch_size}, validation every epoch in both")
    cases = {"fit": ("fit time (train + per-epoch val)", 1.05), "fit_cpu": ("fit CPU time (cross-check)", 1.05),
             "call": ("whole fit() call (+ setup, test)", None)}
    for key in cases:
        print(f"{key:8s} seconds: harness {spread(col('harness', key))}  plain {spread(col('plain', key))}")
    rows = [Row.of("harness_overhead", case, "s", col("harness", key), col("plain", key), goal, True)
            for key, (case, goal) in cases.items()]
    return finish(args, "harness vs hand-written loop (time ratio, lower is better)", rows)


if __name__ == "__main__":
    main()
