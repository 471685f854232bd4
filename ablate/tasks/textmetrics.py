"""Corpus BLEU and chrF as the field reports them: sacreBLEU on detokenized text.

A task's metrics receive token lists; they are first joined back into text
(`detokenize`), then scored by sacreBLEU with its own tokenizer, 13a by default,
exactly as `sacrebleu -tok 13a` scores plain-text files. Data that is already
tokenized the way it should be scored takes `tokenize: none`. Every score comes
with sacreBLEU's signature (tokenizer, smoothing, version, ...), which the run
records in result.json (`bleu_signature`, `chrf_signature`) and reports print.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

# sacreBLEU warns through its logger (e.g. "lines that end in a tokenized period"); keep it off the terminal.
logging.getLogger("sacrebleu").setLevel(logging.ERROR)

BLEU_TOKENIZERS = ("13a", "none", "intl", "char", "zh")  # sacreBLEU's that need no extra package or download
Detokenize = Callable[[list[str]], str]


def join_words(tokens: list[str]) -> str:
    """Word tokens -> text: words separated by single spaces."""
    return " ".join(tokens)


def check_tokenize(value: str, where: str) -> None:
    if value not in BLEU_TOKENIZERS:
        raise ValueError(f"{where}: tokenize={value!r} is invalid; valid: {', '.join(BLEU_TOKENIZERS)} "
                         "(sacreBLEU's tokenizer for BLEU; 'none' for data that is already tokenized)")


class CorpusMetric:
    """One sacreBLEU corpus metric as a task metric: fn(hypotheses, references) on token lists -> score.

    .signature is sacreBLEU's signature string (it names the tokenizer, smoothing and sacreBLEU's version).
    """

    def __init__(self, kind: str, tokenize: str = "13a", detokenize: Detokenize = join_words):
        if kind not in ("bleu", "chrf"):
            raise ValueError(f"CorpusMetric: kind={kind!r} is invalid; valid: bleu, chrf")
        check_tokenize(tokenize, kind)
        self.kind, self.tokenize, self.detokenize = kind, tokenize, detokenize
        self._signature: str | None = None

    @property
    def signature(self) -> str:
        if self._signature is None:  # sacreBLEU knows the number of references only after scoring a corpus
            self([["x"]], [["x"]])
        return self._signature  # type: ignore[return-value]

    def _scorer(self):
        from sacrebleu.metrics import BLEU, CHRF  # imported here: only runs that report BLEU pay for it

        return BLEU(tokenize=self.tokenize) if self.kind == "bleu" else CHRF()

    def __call__(self, hyps: list[list[str]], refs: list[list[str]]) -> float:
        if len(hyps) != len(refs):
            raise ValueError(f"{self.kind}: {len(hyps)} hypotheses but {len(refs)} references")
        scorer = self._scorer()
        hyp_text = [self.detokenize(h) for h in hyps] or [""]
        ref_text = [self.detokenize(r) for r in refs] or [""]
        score = scorer.corpus_score(hyp_text, [ref_text]).score
        self._signature = str(scorer.get_signature())
        return float(score) if hyps else 0.0


def text_metrics(tokenize: str = "13a", detokenize: Detokenize = join_words) -> dict[str, CorpusMetric]:
    """{"bleu", "chrf"} for a task's TaskData.metrics."""
    return {"bleu": CorpusMetric("bleu", tokenize, detokenize), "chrf": CorpusMetric("chrf", tokenize, detokenize)}


def signatures(metrics: dict[str, Callable]) -> dict[str, str]:
    """result.json keys `<name>_signature` for the task metrics that have one."""
    return {f"{name}_signature": fn.signature for name, fn in metrics.items() if isinstance(fn, CorpusMetric)}
