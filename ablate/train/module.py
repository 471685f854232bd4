"""One LightningModule for every architecture and task: the training loop only.

Loss is teacher-forced cross-entropy; validation and test decode free-running
(greedy, from <bos>, feeding back the model's own tokens) for token_acc/seq_acc,
each example up to its own cap (decode_caps, from the task). The reported
val/test loss is the NLL summed over every target token of the split divided by
their count (exact over batches and ranks), without the label-smoothing term
that the training objective may add.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ablate.models import SeqModel
from ablate.tasks.vocab import Vocab
from ablate.train.metrics import decode_counts


def lr_lambda(schedule: str, warmup: int, total: int) -> Callable[[int], float]:
    """Multiplier on the base lr at each optimizer step."""
    warmup = max(warmup, 0)
    if schedule == "noam":  # Vaswani et al.: linear warmup then 1/sqrt(step), normalised to peak 1.0
        w = max(warmup, 1)
        return lambda s: min((s + 1) / w, (w / (s + 1)) ** 0.5)
    if schedule == "cosine":
        return lambda s: (s + 1) / warmup if s < warmup else 0.5 * (
            1 + math.cos(math.pi * min(1.0, (s - warmup) / max(1, total - warmup))))
    return lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0


class SeqModule(pl.LightningModule):
    def __init__(self, model: SeqModel, train_cfg: Any, vocab: Vocab, kind: str = "seq2seq",
                 extra_metrics: dict[str, Callable] | None = None, *,
                 decode_caps: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.model, self.cfg, self.vocab, self.kind = model, train_cfg, vocab, kind
        self.decode_caps = decode_caps  # src_len (B,) -> per-example decoding caps (B,)
        self.extra_metrics = extra_metrics or {}
        self._sums: dict[str, torch.Tensor] = {}
        self.test_rows: list[dict[str, torch.Tensor]] = []  # per-example results of the test epoch
        self.test_text: list[tuple[list[str], list[str]]] = []
        self.train_tokens = 0

    # ------------------------------------------------------------ training
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model(batch["src"], batch["src_len"], batch["tgt_in"])
        return F.cross_entropy(logits.flatten(0, 1), batch["tgt"].flatten(), ignore_index=Vocab.pad,
                               label_smoothing=self.cfg.label_smoothing)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss.item()} at step {self.global_step}")
        self.train_tokens += int(batch["src_len"].sum() + batch["tgt_len"].sum())
        self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=batch["src"].size(0))
        return loss

    def configure_optimizers(self):
        opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.cfg.optimizer]
        betas = (0.9, 0.98) if self.cfg.schedule == "noam" else (0.9, 0.999)
        opt = opt_cls(self.parameters(), lr=self.cfg.lr, betas=betas, weight_decay=self.cfg.weight_decay)
        total = self.trainer.estimated_stepping_batches
        fn = lr_lambda(self.cfg.schedule, self.cfg.warmup_steps, int(total))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------ evaluation
    def _evaluate(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits = self.model(batch["src"], batch["src_len"], batch["tgt_in"])
        nll = F.cross_entropy(logits.flatten(0, 1).float(), batch["tgt"].flatten(), ignore_index=Vocab.pad,
                              reduction="sum")  # no smoothing: the reported loss is the NLL per target token
        pred = self.model.generate(batch["src"], batch["src_len"], self.decode_caps(batch["src_len"]))
        counts = decode_counts(pred, batch["tgt"])
        n = batch["src"].size(0)
        sums = {"nll": nll.detach(), "n": torch.tensor(float(n), device=nll.device),
                "tokens": counts["tokens"].sum().float(), "token_correct": counts["token_correct"].sum().float(),
                "seq_correct": counts["seq_correct"].sum().float()}
        for k, v in sums.items():
            self._sums[k] = self._sums.get(k, 0) + v
        return {"pred": pred, **counts}

    def _log_epoch(self, stage: str) -> dict[str, float]:
        keys = sorted(self._sums)
        if not keys:
            return {}
        vec = torch.stack([torch.as_tensor(self._sums[k], device=self.device).float() for k in keys])
        vec = self.trainer.strategy.reduce(vec, reduce_op="sum")  # exact totals across ranks
        s = dict(zip(keys, vec.tolist(), strict=True))
        self._sums = {}
        out = {f"{stage}/loss": s["nll"] / s["tokens"], f"{stage}/token_acc": s["token_correct"] / s["tokens"],
               f"{stage}/seq_acc": s["seq_correct"] / s["n"]}
        if self.kind == "classification":
            out[f"{stage}/acc"] = out[f"{stage}/seq_acc"]
        for k, v in out.items():
            self.log(k, v, sync_dist=False)
        return out

    def validation_step(self, batch, batch_idx):
        self._evaluate(batch)

    def on_validation_epoch_end(self):
        self._log_epoch("val")

    def on_test_epoch_start(self):
        self.test_rows, self.test_text = [], []

    def test_step(self, batch, batch_idx):
        r = self._evaluate(batch)
        self.test_rows.append({"length": batch["src_len"].cpu(), "tokens": r["tokens"].cpu(),
                               "token_correct": r["token_correct"].cpu(), "seq_correct": r["seq_correct"].cpu()})
        if self.extra_metrics:
            for p, t in zip(r["pred"].tolist(), batch["tgt"].tolist(), strict=True):
                self.test_text.append((self.vocab.decode(p), self.vocab.decode(t)))

    def on_test_epoch_end(self):
        self._log_epoch("test")
        if self.trainer.world_size > 1:  # each rank tested its own share: every rank gets all of them
            self.test_rows = [r for part in self._gather(self.test_rows) for r in part]
            self.test_text = [x for part in self._gather(self.test_text) for x in part]
        if self.extra_metrics and self.test_text:
            hyps, refs = zip(*self.test_text, strict=True)
            for name, fn in self.extra_metrics.items():
                self.log(f"test/{name}", float(fn(list(hyps), list(refs))))

    def _gather(self, obj: Any) -> list[Any]:
        """obj of every rank, in rank order."""
        out: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def on_train_end(self):
        if self.trainer.world_size > 1:  # tokens/s counts the tokens of every rank
            n = torch.tensor(float(self.train_tokens), device=self.device)
            self.train_tokens = int(self.trainer.strategy.reduce(n, reduce_op="sum"))

    def by_length(self) -> list[dict[str, float]]:
        """Test metrics per input length, from the last test epoch."""
        if not self.test_rows:
            return []
        cat = {k: torch.cat([r[k] for r in self.test_rows]) for k in self.test_rows[0]}
        groups: dict[int, list[int]] = defaultdict(list)
        for i, n in enumerate(cat["length"].tolist()):
            groups[n].append(i)
        rows = []
        for n in sorted(groups):
            idx = torch.tensor(groups[n])
            rows.append({"length": n, "n": len(idx),
                         "token_acc": float(cat["token_correct"][idx].sum() / cat["tokens"][idx].sum()),
                         "seq_acc": float(cat["seq_correct"][idx].float().mean())})
        return rows
