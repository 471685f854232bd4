"""What every task produces: a vocabulary and three splits of padded id tensors.

Tasks know nothing of models. A task is a config dataclass plus a builder
registered in TASKS; the builder returns a TaskData whose splits are
pre-built tensors, so the training loop does no per-example Python work.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from ablate.registry import Registry
from ablate.tasks.vocab import Vocab

if TYPE_CHECKING:  # torch loads only when data is built, so planning stays fast
    import torch

TASKS = Registry("task")


@dataclass
class TaskConfig:
    """Fields every task has; a task subclasses this with its own options."""

    name: str = "reverse"
    n_train: int = 2000
    n_val: int = 200
    n_test: int = 500
    seed: int = 0  # the data's seed; fixed across run seeds so runs differ only in init/order


@dataclass
class Split:
    """One split: src (N, S) and tgt (N, T) right-padded with pad; tgt ends with <eos>."""

    src: torch.Tensor
    src_len: torch.Tensor  # (N,) true source lengths: the "input length" of by-length metrics
    tgt: torch.Tensor
    tgt_len: torch.Tensor  # (N,) including <eos>
    # Per-example extras a task wants kept, each (N, ...): e.g. coref's position of "it".
    extra: dict[str, torch.Tensor] = field(default_factory=dict)
    # The raw text of each example, where the task has one (tsv): BLEU/chrF's references, so a word
    # outside the vocabulary (<unk> in tgt) never matches the hypothesis; and the sources the samples show.
    tgt_text: Optional[list[str]] = None
    src_text: Optional[list[str]] = None

    def __len__(self) -> int:
        return self.src.size(0)

    def subset(self, idx: torch.Tensor) -> Split:
        extra = {k: v[idx] for k, v in self.extra.items()}
        pick = lambda texts: None if texts is None else [texts[i] for i in idx.tolist()]  # noqa: E731
        return Split(self.src[idx], self.src_len[idx], self.tgt[idx], self.tgt_len[idx], extra,
                     pick(self.tgt_text), pick(self.src_text))


@dataclass(frozen=True)
class DecodeLimit:
    """How long a free-running hypothesis may grow, decided from the source alone (never its reference).

    Either the task's declared maximum target length (`max_len`, <eos> included: synthetic tasks know it from
    their options), or for open-ended data `ratio * source length + margin` (rounded up); with both, the smaller.
    Each example gets its own cap, so decoding does not depend on which examples share its batch. `floor`: no
    cap below it (a default set from the training data: its longest target).
    """

    max_len: Optional[int] = None
    ratio: Optional[float] = None
    margin: int = 0
    floor: int = 1

    def caps(self, src_len: torch.Tensor) -> torch.Tensor:
        """(B,) per-example caps for source lengths src_len (B,)."""
        import torch

        caps = torch.full_like(src_len, self.max_len if self.max_len is not None else torch.iinfo(torch.long).max)
        if self.ratio is not None:
            caps = torch.minimum(caps, torch.ceil(self.ratio * src_len.double() + self.margin).long())
        return caps.clamp(min=max(self.floor, 1))


@dataclass
class TaskData:
    vocab: Vocab  # the target vocabulary (what models predict over); also the source one when shared
    train: Split
    val: Split
    test: Split
    kind: str = "seq2seq"  # or "classification": the target is one label token
    # Extra corpus-level metrics: name -> fn(hypotheses, references), on token lists; when `detokenize`
    # is set they get text instead: detokenized hypotheses and the splits' raw tgt_text references.
    metrics: dict[str, Callable[[list, list], float]] = field(default_factory=dict)
    src_vocab: Optional[Vocab] = None  # None: the same table as vocab (shared)
    # Tokens -> text (tsv: words joined by spaces, characters, or subword pieces decoded).
    detokenize: Optional[Callable[[list[str]], str]] = None

    def __post_init__(self) -> None:
        if self.src_vocab is None:
            self.src_vocab = self.vocab

    @property
    def tgt_vocab(self) -> Vocab:
        return self.vocab

    @property
    def shared_vocab(self) -> bool:
        return self.src_vocab is self.vocab
    # Decoding caps for free-running evaluation; None (a task that declares nothing) caps every example at the
    # widest target of the task, which is the same for every batch.
    decode: Optional[DecodeLimit] = None
    # The length the task's split (its length story) is defined by, which the by-length figure is drawn
    # against: "source" (input tokens; most synthetic tasks) or "target" (output tokens without <eos>: SCAN's
    # length split holds out the long action sequences, whatever their commands' length).
    length_by: str = "source"

    @property
    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    @property
    def max_src_len(self) -> int:
        return max(s.src.size(1) for s in self.splits.values())

    @property
    def max_tgt_len(self) -> int:
        return max(s.tgt.size(1) for s in self.splits.values())

    def decode_caps(self, src_len: torch.Tensor) -> torch.Tensor:
        """(B,) decoding caps (<eos> included) for examples of source lengths src_len: the task's DecodeLimit."""
        limit = self.decode or DecodeLimit(max_len=self.max_tgt_len)
        return limit.caps(src_len)


def pack(pairs: Sequence[tuple[list[int], list[int]]], vocab: Vocab, add_eos: bool = True) -> Split:
    """List of (src ids, tgt ids) -> padded Split; appends <eos> to targets."""
    import torch

    tgts = [list(t) + ([vocab.eos] if add_eos else []) for _, t in pairs]
    srcs = [list(s) for s, _ in pairs]
    S = max((len(s) for s in srcs), default=1)
    T = max((len(t) for t in tgts), default=1)
    src = torch.full((len(pairs), S), vocab.pad, dtype=torch.long)
    tgt = torch.full((len(pairs), T), vocab.pad, dtype=torch.long)
    for i, (s, t) in enumerate(zip(srcs, tgts)):
        src[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        tgt[i, : len(t)] = torch.tensor(t, dtype=torch.long)
    return Split(
        src,
        torch.tensor([len(s) for s in srcs], dtype=torch.long),
        tgt,
        torch.tensor([len(t) for t in tgts], dtype=torch.long),
    )


def unique_examples(
    sample: Callable[[random.Random], tuple[list[str], list[str]]],
    n: int,
    rng: random.Random,
    what: str,
) -> list[tuple[list[str], list[str]]]:
    """n distinct examples (by source) drawn from sample; errors if the space is too small."""
    seen: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    tries = 0
    while len(seen) < n:
        src, tgt = sample(rng)
        seen.setdefault(tuple(src), (src, tgt))
        tries += 1
        if tries > 20 * n + 1000:
            raise ValueError(
                f"{what}: could only draw {len(seen)} distinct examples of the {n} asked for "
                "(n_train + n_val + n_test); widen the lengths or vocabulary, or ask for fewer"
            )
    return list(seen.values())


def split_three(items: list, n_train: int, n_val: int, n_test: int) -> tuple[list, list, list]:
    return items[:n_train], items[n_train : n_train + n_val], items[n_train + n_val : n_train + n_val + n_test]


def check_decode(ratio: Optional[float], margin: Optional[int], where: str) -> None:
    """Options of a ratio decoding cap (DecodeLimit) of an open-ended task (None: not given)."""
    if ratio is not None and not ratio > 0:
        raise ValueError(f"{where}: decode_ratio={ratio} must be > 0 (the cap is decode_ratio * source length "
                         "+ decode_margin tokens)")
    if margin is not None and margin < 0:
        raise ValueError(f"{where}: decode_margin={margin} must be >= 0")


def task_config_class(name: str) -> type[TaskConfig]:
    return TASKS.meta(name)["config"]


def build_task(cfg: TaskConfig) -> TaskData:
    """Build the task named by cfg.name. Registered as

        @TASKS.register("reverse", config=SeqTaskConfig, kind="seq2seq", help="...")
        def build_reverse(cfg: SeqTaskConfig) -> TaskData: ...
    """
    return TASKS.get(cfg.name)(cfg)
