"""The user's own data: one `source<TAB>target` pair per line of a UTF-8 text file.

    task: {name: tsv, path: data/pairs.tsv, tokens: word}

Rules, so that a bad file fails early with the file name and line number:
- blank (whitespace-only) lines are skipped; every other line has exactly one tab;
- source and target are non-empty after stripping surrounding whitespace;
- no token may be a reserved one (<pad>, <bos>, <eos>, <sep>, <unk>).
Identical (source, target) lines are kept once. Lines that share a source go
to the same split, so no source is in two splits. Splits are drawn by `seed`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ablate.tasks.base import TASKS, DecodeLimit, TaskConfig, TaskData, check_decode, pack
from ablate.tasks.textmetrics import check_tokenize, text_metrics
from ablate.tasks.vocab import SPECIALS, Vocab

TOKENIZERS = ("word", "char")
SPACE = "▁"  # char tokens: a space becomes this visible symbol, as SentencePiece writes it


@dataclass
class TsvConfig(TaskConfig):
    name: str = "tsv"
    path: str = ""  # the file; relative paths are from the working directory
    tokens: str = "word"  # word: split on whitespace; char: one token per character (spaces as ▁)
    val_frac: float = 0.1  # shares of the distinct sources held out for val and test
    test_frac: float = 0.1
    # Sizes: 0 = all of the split (the default); a positive n takes exactly n examples of
    # that split (an error if it holds fewer).
    n_train: int = 0
    n_val: int = 0
    n_test: int = 0
    # BLEU and chrF score the detokenized text (word tokens joined by spaces, char tokens joined with ▁ as a
    # space) with sacreBLEU's tokenizer `tokenize` (13a, as sacreBLEU's default); none: the data is already
    # tokenized as it should be scored.
    tokenize: str = "13a"
    # Free-running decoding stops at decode_ratio * source length + decode_margin tokens (<eos> included),
    # never looking at the reference; raise them if your targets can be much longer than their sources.
    decode_ratio: float = 2.0
    decode_margin: int = 10


Example = tuple[list[str], list[str]]


def tokenize(text: str, mode: str) -> list[str]:
    if mode == "word":
        return text.split()
    return [SPACE if c == " " else c for c in text]


def detokenize(tokens: list[str], mode: str) -> str:
    """Tokens of `tokenize(text, mode)` -> the text again (for BLEU on text)."""
    if mode == "word":
        return " ".join(tokens)
    return "".join(" " if t == SPACE else t for t in tokens)


def _parse_line(raw: bytes, where: str, mode: str) -> Example | None:
    """One line -> (source tokens, target tokens); None for a blank line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{where}: not valid UTF-8 ({e.reason})") from None
    line = line.rstrip("\r\n")
    if not line.strip():
        return None
    if line.count("\t") != 1:
        found = "no tab" if "\t" not in line else f"{line.count(chr(9))} tabs"
        raise ValueError(f"{where}: expected 'source<TAB>target' with exactly one tab, found {found}")
    source, target = (part.strip() for part in line.split("\t"))
    for side, text in (("source", source), ("target", target)):
        if not text:
            raise ValueError(f"{where}: the {side} is empty")
    src, tgt = tokenize(source, mode), tokenize(target, mode)
    reserved = sorted(set(src + tgt) & set(SPECIALS))
    if reserved:
        raise ValueError(f"{where}: uses reserved token(s) {', '.join(reserved)}")
    return src, tgt


def read_pairs(path: str | Path, mode: str = "word") -> list[Example]:
    """The file's distinct pairs in file order; ValueError naming file and line on bad input."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"tsv: file not found: {p} (set task.path to an existing source<TAB>target file)")
    pairs: dict[tuple[tuple[str, ...], tuple[str, ...]], Example] = {}
    with p.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            ex = _parse_line(raw, f"{p}:{number}", mode)
            if ex is not None:
                pairs.setdefault((tuple(ex[0]), tuple(ex[1])), ex)
    if not pairs:
        raise ValueError(f"{p}: no source<TAB>target lines (the file is empty or blank)")
    return list(pairs.values())


def _check(cfg: TsvConfig) -> None:
    if not cfg.path:
        raise ValueError("tsv: path is empty; set task.path to a source<TAB>target file")
    if cfg.tokens not in TOKENIZERS:
        raise ValueError(f"tsv: tokens={cfg.tokens!r} is invalid; valid: {', '.join(TOKENIZERS)}")
    for key in ("val_frac", "test_frac"):
        if not 0.0 < getattr(cfg, key) < 1.0:
            raise ValueError(f"tsv: {key}={getattr(cfg, key)} must be strictly between 0 and 1")
    if cfg.val_frac + cfg.test_frac >= 1.0:
        raise ValueError(f"tsv: val_frac + test_frac = {cfg.val_frac + cfg.test_frac} leaves nothing to train on; "
                         "keep their sum below 1")
    for key in ("n_train", "n_val", "n_test"):
        if getattr(cfg, key) < 0:
            raise ValueError(f"tsv: {key}={getattr(cfg, key)} must be >= 0 (0 = all of the split)")
    check_tokenize(cfg.tokenize, "tsv")
    check_decode(cfg.decode_ratio, cfg.decode_margin, "tsv")
    if not Path(cfg.path).is_file():
        raise ValueError(f"tsv: file not found: {cfg.path} (set task.path to an existing source<TAB>target file)")


def _split_by_source(pairs: list[Example], cfg: TsvConfig) -> tuple[list[Example], list[Example], list[Example]]:
    """Shuffle the distinct sources by seed and cut them into train/val/test shares."""
    groups: dict[tuple[str, ...], list[Example]] = {}
    for ex in pairs:
        groups.setdefault(tuple(ex[0]), []).append(ex)
    sources = list(groups)
    random.Random(cfg.seed).shuffle(sources)
    n_val, n_test = round(cfg.val_frac * len(sources)), round(cfg.test_frac * len(sources))
    if min(n_val, n_test, len(sources) - n_val - n_test) < 1:
        raise ValueError(f"tsv: {cfg.path} has only {len(sources)} distinct sources, too few for "
                         f"val_frac={cfg.val_frac} and test_frac={cfg.test_frac} to leave every split non-empty")
    cuts = (sources[n_val + n_test :], sources[:n_val], sources[n_val : n_val + n_test])
    return tuple([ex for s in part for ex in groups[s]] for part in cuts)  # type: ignore[return-value]


def _take(items: list[Example], n: int, key: str, path: str) -> list[Example]:
    if n == 0:
        return items
    if n > len(items):
        raise ValueError(f"tsv: {key}={n} but that split of {path} holds {len(items)} examples; "
                         f"ask for at most {len(items)}, or 0 for all")
    return items[:n]


@TASKS.register("tsv", check=_check, config=TsvConfig, kind="seq2seq",
                help="your own source<TAB>target file, word or char tokens; sacreBLEU BLEU and chrF on the text")
def build_tsv(cfg: TsvConfig) -> TaskData:
    _check(cfg)
    pairs = read_pairs(cfg.path, cfg.tokens)
    parts = _split_by_source(pairs, cfg)
    sizes = {"n_train": cfg.n_train, "n_val": cfg.n_val, "n_test": cfg.n_test}
    train, val, test = (_take(xs, n, key, cfg.path) for xs, (key, n) in zip(parts, sizes.items(), strict=True))
    vocab = Vocab([t for s, g in pairs for t in s + g])
    enc = lambda xs: [(vocab.encode(s), vocab.encode(t)) for s, t in xs]  # noqa: E731
    metrics = text_metrics(cfg.tokenize, lambda tokens: detokenize(tokens, cfg.tokens))  # on text, so char data too
    return TaskData(vocab, pack(enc(train), vocab), pack(enc(val), vocab), pack(enc(test), vocab), metrics=metrics,
                    decode=DecodeLimit(ratio=cfg.decode_ratio, margin=cfg.decode_margin))
