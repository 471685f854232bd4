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
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from ablate.models import SeqModel
from ablate.tasks.vocab import Vocab
from ablate.train.accel import FiniteWatch
from ablate.train.batching import padding_counts
from ablate.train.lengths import output_lengths
from ablate.train.metrics import decode_counts
from ablate.train.texts import TextView

# The validation/test loss computes logits for at most this many floats at once (64 MB in fp32): one eval
# batch of a small vocabulary in one piece, as before; of an 8k-piece vocabulary, a few dozen rows at a time.
EVAL_LOGIT_FLOATS = 2**24


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (timings of asynchronous devices)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def writes_logs(trainer: pl.Trainer, steps_done: int) -> bool:
    """Whether Lightning writes the values logged at the step that makes `steps_done` optimizer steps (every
    log_every_n_steps, and when stopping). Only then are per-step values logged: each self.log goes through
    Lightning's bookkeeping (the largest Python cost of a step in a profile), and the other steps' values were
    never written (issue 28)."""
    n = trainer.log_every_n_steps
    return bool(n) and (steps_done % n == 0 or trainer.should_stop)


class SeqModule(pl.LightningModule):
    def __init__(self, model: SeqModel, train_cfg: Any, vocab: Vocab, kind: str = "seq2seq",
                 extra_metrics: dict[str, Callable] | None = None, texts: TextView | None = None, *,
                 decode_caps: Callable[[torch.Tensor], torch.Tensor], test_decoding: dict[str, Any] | None = None):
        super().__init__()
        self.model, self.cfg, self.vocab, self.kind = model, train_cfg, vocab, kind
        self.decode_caps = decode_caps  # src_len (B,) -> per-example decoding caps (B,)
        # eval.beam_size / length_penalty: the test only; validation stays greedy, so they never change
        # which checkpoint training keeps
        self.test_decoding = test_decoding or {}
        self.extra_metrics = extra_metrics or {}
        self.texts = texts or TextView(vocab, vocab)  # ids -> text for the metrics and the samples
        self._sums: dict[str, torch.Tensor] = {}
        self.val_stats: dict[str, float] = {}  # examples, tokens, E[nll^2] of the latest validation
        self.test_rows: list[dict[str, torch.Tensor]] = []  # per-example results of the test epoch
        self.test_text: list[tuple[Any, Any]] = []
        self.val_text: list[tuple[Any, Any]] = []  # (hypothesis, reference) of this validation, for BLEU/chrF
        self.test_samples: list[dict[str, Any]] = []  # every test example's source/reference/hypothesis
        self.train_tokens = 0  # real (unpadded) source+target tokens trained on
        self.train_slots = 0  # padded source+target token slots of the training batches
        self.decode_seconds, self.decode_tokens = 0.0, 0  # greedy decoding over the test split
        self.finite = FiniteWatch()

    @property
    def train_tokens(self) -> int:
        return self._tokens_base + (int(self._tokens_acc) if isinstance(self._tokens_acc, torch.Tensor) else 0)

    @train_tokens.setter
    def train_tokens(self, value: int) -> None:
        # counted on the batch's device (no sync per step); read when asked
        self._tokens_base, self._tokens_acc = int(value), 0

    @property
    def pad_fraction(self) -> float | None:
        """Share of the training batches' source+target token slots that were padding."""
        return 1.0 - self.train_tokens / self.train_slots if self.train_slots else None

    # ------------------------------------------------------------ training
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.model(batch["src"], batch["src_len"], batch["tgt_in"])
        return F.cross_entropy(logits.flatten(0, 1), batch["tgt"].flatten(), ignore_index=Vocab.pad,
                               label_smoothing=self.cfg.label_smoothing)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.finite.update(loss, self.global_step)  # reads the device only every few steps
        real, slots = padding_counts(batch)
        self._tokens_acc = self._tokens_acc + real.detach()
        self.train_slots += slots
        if self._logs_this_step():
            self.log("train/loss", loss, on_step=True, on_epoch=False, batch_size=batch["src"].size(0))
        return loss

    def _logs_this_step(self) -> bool:
        """Whether Lightning writes this step's logged values to the loggers: only then is train/loss logged."""
        return writes_logs(self.trainer, self.global_step + 1)  # in training_step: the step not yet counted

    def configure_optimizers(self):
        opt_cls = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[self.cfg.optimizer]
        betas = (0.9, 0.98) if self.cfg.schedule == "noam" else (0.9, 0.999)
        opt = opt_cls(self.parameters(), lr=self.cfg.lr, betas=betas, weight_decay=self.cfg.weight_decay)
        total = self.trainer.estimated_stepping_batches  # max_steps alone: max_steps (Lightning)
        # no limit at all: only schedules without a horizon get here (config refuses cosine and warm-up then)
        fn = lr_lambda(self.cfg.schedule, self.cfg.warmup_steps, int(total) if math.isfinite(total) else 0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, fn)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    # ------------------------------------------------------------ evaluation
    def _nll(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed teacher-forced NLL of a batch and the sum of its squares per token (no smoothing: the reported
        loss is the NLL per target token; the squares give its standard error for early stopping), the logits
        computed a few rows at a time: a whole eval batch's logits (rows x target length x vocabulary, held twice
        with the log-softmax) were the peak memory of a corpus run (docs/memory.md)."""
        tgt = batch["tgt"]
        step = max(1, EVAL_LOGIT_FLOATS // max(1, tgt.size(1) * len(self.vocab)))
        nll = tgt.new_zeros((), dtype=torch.float32)
        nll_sq = tgt.new_zeros((), dtype=torch.float32)
        for i in range(0, tgt.size(0), step):
            rows = slice(i, i + step)
            logits = self.model(batch["src"][rows], batch["src_len"][rows], batch["tgt_in"][rows])
            per_token = F.cross_entropy(logits.flatten(0, 1).float(), tgt[rows].flatten(), ignore_index=Vocab.pad,
                                        reduction="none")
            nll, nll_sq = nll + per_token.sum(), nll_sq + per_token.pow(2).sum()
        return nll, nll_sq

    def _evaluate(self, batch: dict[str, torch.Tensor], **decoding: Any) -> dict[str, torch.Tensor]:
        nll, nll_sq = self._nll(batch)
        timed = self.trainer is not None and self.trainer.testing  # decode tokens/s: the test split's decoding
        if timed:
            sync(batch["src"].device)
            t0 = time.perf_counter()
        caps = self.decode_caps(batch["src_len"])
        pred = self.model.generate(batch["src"], batch["src_len"], caps, **decoding)
        if timed:
            sync(batch["src"].device)
            self.decode_seconds += time.perf_counter() - t0
            self.decode_tokens += int((pred != Vocab.pad).sum())
        counts = decode_counts(pred, batch["tgt"], caps)
        n = batch["src"].size(0)
        sums = {"nll": nll.detach(), "nll_sq": nll_sq.detach(),
                "hit_cap": counts["hit_cap"].sum().float(), "cap_short": counts["cap_short"].sum().float(),
                "n": torch.tensor(float(n), device=nll.device),
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
               f"{stage}/seq_acc": s["seq_correct"] / s["n"], f"{stage}/hit_cap": s.get("hit_cap", 0.0),
               f"{stage}/cap_short": s.get("cap_short", 0.0)}
        if self.kind == "classification":
            out[f"{stage}/acc"] = out[f"{stage}/seq_acc"]
        if stage == "val":  # what early stopping's default min_delta (the metric's standard error) reads
            self.val_stats = {"n": s["n"], "tokens": s["tokens"], "nll_sq_mean": s.get("nll_sq", 0.0) / s["tokens"]}
        for k, v in out.items():
            self.log(k, v, sync_dist=False)
        return out

    def _metric_pairs(self, stage: str, batch: dict[str, torch.Tensor], pred: torch.Tensor) -> list[tuple]:
        index = batch["index"].tolist() if "index" in batch else [None] * pred.size(0)
        return [self.texts.metric_pair(stage, i, p, t)
                for i, p, t in zip(index, pred.tolist(), batch["tgt"].tolist(), strict=True)]

    def _log_text_metrics(self, stage: str, pairs: list[tuple]) -> None:
        """The task's corpus metrics (BLEU, chrF) over the whole split, every rank's share included."""
        if self.trainer.world_size > 1:
            pairs = [x for part in self._gather(pairs) for x in part]
        if self.extra_metrics and pairs:
            hyps, refs = zip(*pairs, strict=True)
            for name, fn in self.extra_metrics.items():
                self.log(f"{stage}/{name}", float(fn(list(hyps), list(refs))), sync_dist=False)

    def validation_step(self, batch, batch_idx):
        r = self._evaluate(batch)
        if self.extra_metrics:
            self.val_text += self._metric_pairs("val", batch, r["pred"])

    def on_validation_epoch_start(self):
        self.val_text = []
        if self.trainer.state.fn == "fit":
            self.finite.check(self.global_step)  # no validation of a model whose loss went nan

    def on_validation_epoch_end(self):
        self._log_epoch("val")
        self._log_text_metrics("val", self.val_text)
        self.val_text = []

    def on_test_epoch_start(self):
        self.test_rows, self.test_text, self.test_samples = [], [], []
        self.decode_seconds, self.decode_tokens = 0.0, 0

    def test_step(self, batch, batch_idx):
        r = self._evaluate(batch, **self.test_decoding)
        self.test_rows.append({"src_len": batch["src_len"].cpu(), "tgt_len": output_lengths(batch).cpu(),
                               "tokens": r["tokens"].cpu(),
                               "token_correct": r["token_correct"].cpu(), "seq_correct": r["seq_correct"].cpu()})
        if self.extra_metrics:
            self.test_text += self._metric_pairs("test", batch, r["pred"])
        if "index" in batch:
            for i, s, n, p, t, ok in zip(batch["index"].tolist(), batch["src"].tolist(), batch["src_len"].tolist(),
                                         r["pred"].tolist(), batch["tgt"].tolist(), r["seq_correct"].tolist(),
                                         strict=True):
                self.test_samples.append(self.texts.sample(i, s[:n], p, t, bool(ok)))

    def on_test_epoch_end(self):
        self._log_epoch("test")
        if self.trainer.world_size > 1:  # the ranks decode at once: all their tokens in the slowest one's time
            tok_s = self._gather((self.decode_tokens, self.decode_seconds))
            self.decode_tokens, self.decode_seconds = sum(t for t, _ in tok_s), max(s for _, s in tok_s)
        if self.trainer.world_size > 1:  # each rank tested its own share: every rank gets all of them
            self.test_rows = [r for part in self._gather(self.test_rows) for r in part]
            self.test_samples = [x for part in self._gather(self.test_samples) for x in part]
        self._log_text_metrics("test", self.test_text)

    def _gather(self, obj: Any) -> list[Any]:
        """obj of every rank, in rank order."""
        out: list[Any] = [None] * self.trainer.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def on_train_end(self):
        self.finite.check(self.global_step)
        if self.trainer.world_size > 1:  # tokens/s and pad_fraction count the tokens of every rank
            n = torch.tensor([float(self.train_tokens), float(self.train_slots)], device=self.device)
            tokens, slots = self.trainer.strategy.reduce(n, reduce_op="sum").tolist()
            self.train_tokens, self.train_slots = int(tokens), int(slots)

    @property
    def decode_tokens_per_s(self) -> float | None:
        return self.decode_tokens / self.decode_seconds if self.decode_seconds else None

    def by_length(self) -> list[dict[str, float]]:
        """Test metrics per (source length, target length) pair, from the last test epoch: a reader groups the
        rows by either length (tokens: the target tokens scored, so token_acc re-weights exactly)."""
        if not self.test_rows:
            return []
        cat = {k: torch.cat([r[k] for r in self.test_rows]) for k in self.test_rows[0]}
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, pair in enumerate(zip(cat["src_len"].tolist(), cat["tgt_len"].tolist(), strict=True)):
            groups[pair].append(i)
        rows = []
        for (src, tgt) in sorted(groups):
            idx = torch.tensor(groups[src, tgt])
            tokens = cat["tokens"][idx].sum()
            rows.append({"src_len": src, "tgt_len": tgt, "n": len(idx), "tokens": int(tokens),
                         "token_acc": float(cat["token_correct"][idx].sum() / tokens),
                         "seq_acc": float(cat["seq_correct"][idx].float().mean())})
        return rows
