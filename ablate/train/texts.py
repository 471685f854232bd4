"""Ids -> text for the harness: what BLEU/chrF compare, and the test outputs a report shows.

token_acc and seq_acc compare ids (an <unk> predicted for an <unk> counts as right). Where a task
detokenizes (tsv), BLEU and chrF compare the detokenized hypothesis with the raw reference text of
the split, so a word outside the vocabulary never matches; other tasks' metrics get token lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ablate.tasks import TaskData, Vocab

SAMPLES_FILE = "test_samples.jsonl"  # one JSON line per test example: index, source, reference, hypothesis, exact


@dataclass
class TextView:
    src_vocab: Vocab
    tgt_vocab: Vocab
    detokenize: Optional[Callable[[list[str]], str]] = None
    refs: dict[str, Optional[list[str]]] = field(default_factory=dict)  # stage -> raw target text per example
    test_sources: Optional[list[str]] = None  # raw source text of the test examples

    @classmethod
    def of(cls, data: TaskData) -> TextView:
        return cls(data.src_vocab, data.vocab, data.detokenize,
                   {"val": data.val.tgt_text, "test": data.test.tgt_text}, data.test.src_text)

    def text(self, tokens: list[str]) -> str:
        return self.detokenize(tokens) if self.detokenize else " ".join(tokens)

    def metric_pair(self, stage: str, index: int, pred: list[int], tgt: list[int]) -> tuple[Any, Any]:
        """(hypothesis, reference) as the task's metrics take them: text where the task detokenizes."""
        hyp = self.tgt_vocab.decode(pred)
        if self.detokenize is None:
            return hyp, self.tgt_vocab.decode(tgt)
        raw = self.refs.get(stage)
        return self.detokenize(hyp), raw[index] if raw is not None else self.detokenize(self.tgt_vocab.decode(tgt))

    def sample(self, index: int, src: list[int], pred: list[int], tgt: list[int], exact: bool) -> dict[str, Any]:
        """One test example as the report's samples show it."""
        raw = self.refs.get("test")
        ref = raw[index] if raw is not None else self.text(self.tgt_vocab.decode(tgt))
        source = self.test_sources[index] if self.test_sources is not None else self.text(self.src_vocab.decode(src))
        return {"index": index, "source": source, "reference": ref,
                "hypothesis": self.text(self.tgt_vocab.decode(pred)), "exact": bool(exact)}


def write_samples(path: str | Path, samples: list[dict[str, Any]]) -> None:
    rows = sorted(samples, key=lambda s: s["index"])
    Path(path).write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in rows), encoding="utf-8")


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
