"""Token <-> id tables: one shared by a task's source and target sides, or one per side."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

PAD, BOS, EOS, SEP, UNK = "<pad>", "<bos>", "<eos>", "<sep>", "<unk>"
SPECIALS = (PAD, BOS, EOS, SEP, UNK)


class Vocab:
    """Specials first (pad=0, bos=1, eos=2, sep=3, unk=4), then the task's tokens in order."""

    pad, bos, eos, sep, unk = range(5)

    def __init__(self, tokens: list[str]):
        seen = dict.fromkeys(t for t in tokens if t not in SPECIALS)
        self.itos: list[str] = list(SPECIALS) + list(seen)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def from_counts(cls, tokens: Iterable[str], min_freq: int = 1, max_size: int = 0) -> Vocab:
        """The tokens seen at least min_freq times, most frequent first (ties: first seen first);
        max_size > 0 keeps that many (specials not counted). The rest encode as <unk>."""
        counts = Counter(tokens)  # Counter keeps first-seen order, and sorted() is stable
        kept = [t for t, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= min_freq and t not in SPECIALS]
        return cls(kept[:max_size] if max_size > 0 else kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def encode(self, tokens: list[str], strict: bool = True) -> list[int]:
        if strict:
            missing = [t for t in tokens if t not in self.stoi]
            if missing:
                raise KeyError(f"tokens not in the vocabulary: {missing[:10]}")
        return [self.stoi.get(t, self.unk) for t in tokens]

    def decode(self, ids: list[int], strip: bool = True) -> list[str]:
        """Tokens of ids; with strip, stop at <eos> and drop <pad>/<bos>."""
        out = []
        for i in ids:
            if strip and i == self.eos:
                break
            if strip and i in (self.pad, self.bos):
                continue
            out.append(self.itos[i])
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.itos[len(SPECIALS):]))

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        return cls(json.loads(Path(path).read_text()))
