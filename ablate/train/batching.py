"""Training batches without padding waste: length-bucketed shuffling and token-budget batches.

`train.batching: bucket` shuffles the training set, cuts it into large chunks,
sorts each chunk by length, batches it, and shuffles the batches (so each batch
holds examples of similar length, and the order of batches stays random).
`train.max_tokens: N` fills each batch with examples until it would hold more
than N padded source+target tokens (fairseq's --max-tokens); train.batch_size is
then not used for training. `train.batching: tokens` is both: bucketed (in smaller
chunks: TOKENS_CHUNK_BATCHES), under max_tokens or, unset, a budget of batch_size x
the mean example length; it is the default where lengths vary (`auto`, resolved in
ablate.config). Every draw comes from one seeded generator: the same seed gives
the same batches, and the generator's state at the start of an epoch plus the
number of batches trained (ResumableBatchSampler) is all a resume needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Optional

import torch

from ablate.tasks import Split
from ablate.train.checkpointing import ResumableBatchSampler

CHUNK_BATCHES = 100  # a bucketing chunk holds about this many batches: sorted enough, still shuffled well
# batching: tokens sorts within chunks of 10 batches: batches of nearer-uniform lengths (chunks of 100) trained
# to a lower BLEU in the same epochs (benchmarks/default_batching.py, seed 0: 73 with 100, 85 with 10, random
# batches 88), and 10 still keeps padding under 10% on caption-like lengths.
TOKENS_CHUNK_BATCHES = 10


def batch_cost(n: int, src_max: int, tgt_max: int) -> int:
    """Padded source+target tokens of a batch of n examples (what the model computes on)."""
    return n * (src_max + tgt_max)


def cut_batches(order: torch.Tensor, src_len: torch.Tensor, tgt_len: torch.Tensor, batch_size: int,
                max_tokens: int) -> list[list[int]]:
    """Consecutive examples of `order` in batches of batch_size, or (max_tokens > 0) of at most max_tokens padded
    tokens each; an example over the budget alone gets a batch of its own."""
    if max_tokens <= 0:
        idx = order.tolist()
        return [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    out: list[list[int]] = []
    cur: list[int] = []
    s_max = t_max = 0
    for i, s, t in zip(order.tolist(), src_len[order].tolist(), tgt_len[order].tolist(), strict=True):
        s2, t2 = max(s_max, s), max(t_max, t)
        if cur and batch_cost(len(cur) + 1, s2, t2) > max_tokens:
            out.append(cur)
            cur, s2, t2 = [], s, t
        cur.append(i)
        s_max, t_max = s2, t2
    if cur:
        out.append(cur)
    return out


def epoch_batches(src_len: torch.Tensor, tgt_len: torch.Tensor, batch_size: int, max_tokens: int, bucket: bool,
                  generator: torch.Generator, chunk_batches: int = CHUNK_BATCHES) -> list[list[int]]:
    """One epoch's batches (lists of example indices), drawn from `generator` (which moves on)."""
    n = len(src_len)
    order = torch.randperm(n, generator=generator)
    if not bucket:
        return cut_batches(order, src_len, tgt_len, batch_size, max_tokens)
    per_batch = batch_size if max_tokens <= 0 else max(1, max_tokens // max(1, int((src_len + tgt_len).float()
                                                                                       .mean())))
    chunk = max(1, chunk_batches * per_batch)
    parts = []
    for i, start in enumerate(range(0, n, chunk)):
        part = order[start:start + chunk]
        key = src_len[part] * (int(tgt_len.max()) + 1) + tgt_len[part]  # by source length, then target length
        part = part[torch.sort(key, stable=True).indices]
        # under a token budget, snake: every other chunk longest first, so neighbouring chunks meet at similar lengths
        parts.append(part.flip(0) if max_tokens > 0 and i % 2 else part)
    if max_tokens <= 0:  # batch_size examples: every chunk splits into whole batches
        batches = [b for part in parts for b in cut_batches(part, src_len, tgt_len, batch_size, max_tokens)]
    else:
        # Under a token budget a chunk rarely splits into whole batches: cut per chunk, each chunk's rest became a
        # batch of a few examples (1 to 12 on the benchmark's caption-like corpus, 13 of 147 batches an epoch),
        # each taking a full optimizer step on a noisy gradient. Cut across the chunks, only the epoch's last
        # batch can be short.
        batches = cut_batches(torch.cat(parts), src_len, tgt_len, batch_size, max_tokens)
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]


class PlannedBatchSampler(ResumableBatchSampler):
    """A ResumableBatchSampler whose batches come from epoch_batches (bucketed and/or token-budget).

    With several devices (world > 1) every rank draws the same epoch from the same seed and takes every
    world-th batch, the list first wrapped round so that all ranks train the same number of steps.
    """

    def __init__(self, split: Split, batch_size: int, max_tokens: int, bucket: bool, seed: int,
                 rank: int = 0, world: int = 1, chunk_batches: int = CHUNK_BATCHES):
        super().__init__(range(len(split)), max(1, batch_size))
        self.chunk_batches = chunk_batches
        self.src_len, self.tgt_len = split.src_len.cpu(), split.tgt_len.cpu()
        self.max_tokens, self.bucket, self.rank, self.world = max_tokens, bucket, rank, world
        self._gen = torch.Generator().manual_seed(seed)
        self._current: Optional[list[list[int]]] = None  # the epoch under way
        self._peek: Optional[tuple[torch.Tensor, int]] = None  # (generator state, batches it gives)

    @property
    def generator(self) -> torch.Generator:
        return self._gen

    def _plan(self, gen: torch.Generator) -> list[list[int]]:
        batches = epoch_batches(self.src_len, self.tgt_len, self.batch_size, self.max_tokens, self.bucket, gen,
                                self.chunk_batches)
        if self.world > 1:
            per_rank = -(-len(batches) // self.world)
            batches = (batches * self.world)[: per_rank * self.world][self.rank::self.world]
        return batches

    def _batches(self) -> Iterator[list[int]]:
        self._current = self._plan(self._gen)
        return iter(self._current)

    def _epoch_len(self) -> int:
        return len(self._current) if self._current is not None else len(self)

    def __len__(self) -> int:
        """Batches of the epoch under way; between epochs, of the next one (its count depends on its draw
        when batches have a token budget, so it is planned ahead on a copy of the generator, and cached)."""
        if self._current is not None and self.yielded < len(self._current):
            return len(self._current)
        resume = self._resume.get("generator") if self._resume is not None else None
        state = resume if resume is not None else self._gen.get_state()
        if self._peek is None or not torch.equal(self._peek[0], state):
            self._peek = (state, len(self._plan(torch.Generator().set_state(state))))
        return self._peek[1]


def budgeted(batching: str, max_tokens: int) -> bool:
    """Whether training batches have a token budget (and so a batch count that varies from epoch to epoch)."""
    return max_tokens > 0 or batching == "tokens"


def token_budget(split: Split, batch_size: int) -> int:
    """`batching: tokens` without max_tokens: batch_size examples' worth of the training split's mean
    source+target length, so an epoch has about as many steps as with batch_size-example batches, each of
    them near-full however long its examples are."""
    return max(1, round(batch_size * float((split.src_len + split.tgt_len).float().mean())))


def reload_every(batching: str, max_tokens: int) -> int:
    """Trainer's reload_dataloaders_every_n_epochs: a token-budget epoch's batch count depends on its draw, and
    Lightning counts an epoch's batches when it loads the loader, so it must look again every epoch."""
    return 1 if budgeted(batching, max_tokens) else 0


def padding_counts(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(real tokens, padded token slots) of a batch's source and target, the real count left on its device."""
    real = batch["src_len"].sum() + batch["tgt_len"].sum()
    slots = batch["src"].numel() + batch["tgt"].numel()
    return real, slots


def train_sampler(split: Split, batch_size: int, seed: int, batching: str = "random", max_tokens: int = 0,
                  rank: int = 0, world: int = 1) -> Optional[PlannedBatchSampler]:
    """The planned sampler for bucketed or token-budget batches; None: plain random batches (the old sampler)."""
    if batching == "random" and max_tokens <= 0:
        return None
    if batching == "tokens":
        return PlannedBatchSampler(split, batch_size, max_tokens if max_tokens > 0 else token_budget(split, batch_size),
                                   True, seed, rank, world, TOKENS_CHUNK_BATCHES)
    return PlannedBatchSampler(split, batch_size, max_tokens, batching == "bucket", seed, rank, world)
