"""LightningDataModule over a task's pre-built tensors: batches are index slices, no per-example work."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ablate.tasks import Split, TaskData
from ablate.tasks.vocab import Vocab
from ablate.train.batching import budgeted, train_sampler
from ablate.train.checkpointing import ResumableBatchSampler


class SplitDataset(Dataset):
    """Indexable by a list of indices (DataLoader's __getitems__), returning a whole batch dict."""

    def __init__(self, split: Split):
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitems__(self, idx: list[int]) -> dict[str, torch.Tensor]:
        return make_batch(self.split, torch.as_tensor(idx))


def make_batch(split: Split, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Rows idx, trimmed to the longest source/target among them; tgt_in = <bos> + tgt[:-1]."""
    src_len, tgt_len = split.src_len[idx], split.tgt_len[idx]
    src = split.src[idx, : int(src_len.max())]
    tgt = split.tgt[idx, : int(tgt_len.max())]
    bos = torch.full((len(idx), 1), Vocab.bos, dtype=tgt.dtype)
    batch = {"src": src, "src_len": src_len, "tgt": tgt, "tgt_len": tgt_len, "tgt_in": torch.cat([bos, tgt[:, :-1]], 1),
             "index": idx}  # which examples: the harness looks up their raw reference text
    batch.update({k: v[idx] for k, v in split.extra.items()})
    return batch


def val_subset_of(split: Split, n: int, seed: int) -> Split:
    """A fixed subset of n validation examples (the same for every validation of the run, drawn from the run's
    seed); the whole split when n is 0 or at least its size. Test always uses the whole test split."""
    if n <= 0 or n >= len(split):
        return split
    idx = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))[:n]
    return split.subset(idx.sort().values)


def _identity(batch):
    return batch


class TaskDataModule(pl.LightningDataModule):
    def __init__(self, data: TaskData, batch_size: int, eval_batch_size: int = 256, seed: int = 0, *,
                 batching: str = "random", max_tokens: int = 0, val_subset: int = 0):
        super().__init__()
        self.data, self.batch_size, self.eval_batch_size, self.seed = data, batch_size, eval_batch_size, seed
        self.batching, self.max_tokens = batching, max_tokens  # ablate.train.batching
        self.val_split = val_subset_of(data.val, val_subset, seed)
        self.train_sampler: ResumableBatchSampler | None = None
        self.resume_sampler: dict | None = None  # set by ResumeCheckpoint when the run resumes

    def _loader(self, split: Split, batch_size: int, shuffle: bool) -> DataLoader:
        ds = SplitDataset(split)
        if shuffle:  # a seeded generator: the same seed gives the same batch order, resumable mid-epoch
            # A reload (token budgets: every epoch, see reload_every) keeps the sampler, so its generator moves on.
            if not (budgeted(self.batching, self.max_tokens) and self.train_sampler is not None):
                self.train_sampler = train_sampler(split, batch_size, self.seed, self.batching, self.max_tokens) or \
                    ResumableBatchSampler(RandomSampler(ds, generator=torch.Generator().manual_seed(self.seed)),
                                          batch_size)
            if self.resume_sampler is not None:
                self.train_sampler.load_state_dict(self.resume_sampler)
                self.resume_sampler = None
            return DataLoader(ds, batch_sampler=self.train_sampler, collate_fn=_identity)
        sampler = SequentialSampler(ds)
        return DataLoader(ds, batch_sampler=BatchSampler(sampler, batch_size, drop_last=False), collate_fn=_identity)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data.train, self.batch_size, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, self.eval_batch_size, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data.test, self.eval_batch_size, False)
