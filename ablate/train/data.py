"""LightningDataModule over a task's pre-built tensors: batches are index slices, no per-example work."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ablate.tasks import Split, TaskData
from ablate.tasks.vocab import Vocab
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
    batch = {"src": src, "src_len": src_len, "tgt": tgt, "tgt_len": tgt_len, "tgt_in": torch.cat([bos, tgt[:, :-1]], 1)}
    batch.update({k: v[idx] for k, v in split.extra.items()})
    return batch


def _identity(batch):
    return batch


class TaskDataModule(pl.LightningDataModule):
    def __init__(self, data: TaskData, batch_size: int, eval_batch_size: int = 256, seed: int = 0):
        super().__init__()
        self.data, self.batch_size, self.eval_batch_size, self.seed = data, batch_size, eval_batch_size, seed
        self.train_sampler: ResumableBatchSampler | None = None
        self.resume_sampler: dict | None = None  # set by ResumeCheckpoint when the run resumes

    def _loader(self, split: Split, batch_size: int, shuffle: bool) -> DataLoader:
        ds = SplitDataset(split)
        if shuffle:  # a seeded generator: the same seed gives the same batch order, resumable mid-epoch
            self.train_sampler = ResumableBatchSampler(
                RandomSampler(ds, generator=torch.Generator().manual_seed(self.seed)), batch_size)
            if self.resume_sampler is not None:
                self.train_sampler.load_state_dict(self.resume_sampler)
                self.resume_sampler = None
            return DataLoader(ds, batch_sampler=self.train_sampler, collate_fn=_identity)
        sampler = SequentialSampler(ds)
        return DataLoader(ds, batch_sampler=BatchSampler(sampler, batch_size, drop_last=False), collate_fn=_identity)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.data.train, self.batch_size, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.data.val, self.eval_batch_size, False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.data.test, self.eval_batch_size, False)
