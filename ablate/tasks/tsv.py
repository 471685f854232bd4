"""The user's own data: `source<TAB>target` pairs, one per line of UTF-8 text files (plain or .gz).

    task: {name: tsv, path: data/pairs.tsv}                                  # one file, split by seed
    task: {name: tsv, train: train.tsv, val: val.tsv, test: test.tsv}        # fixed splits
    task: {name: tsv, train: train.tsv.gz, tokens: bpe, vocab_size: 8000}    # val/test carved from train

Rules, so that a bad file fails early (when the experiment is planned) with the file name and line number:
- blank (whitespace-only) lines are skipped; every other line has exactly one tab;
- source and target are non-empty after stripping surrounding whitespace;
- no whitespace-separated word may be a reserved token (<pad>, <bos>, <eos>, <sep>, <unk>).
Identical (source, target) lines are kept once per file. Lines that share a source go to the same
split, so no source is in two carved splits. Missing val/test files are carved from the training
file by val_frac / test_frac and `seed`.

Vocabularies come from the training split only: by default one for the source and one for the
target (`vocab.shared: true` for one table), words seen fewer than `vocab.min_freq` times, or past
the `vocab.max_size` most frequent, become <unk>. With `tokens: bpe|unigram` a sentencepiece model
(`vocab_size` pieces, per side or shared) is trained on the training split and cached on disk.
Metrics: token_acc and seq_acc compare ids (so an <unk> predicted for an <unk> counts as right);
BLEU and chrF compare the detokenized hypothesis with the raw reference text, where <unk> never matches.
"""

from __future__ import annotations

import gzip
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ablate.tasks.base import TASKS, DecodeLimit, TaskConfig, TaskData, check_decode, pack
from ablate.tasks.subwords import SubwordModel, text_digest, train_or_load
from ablate.tasks.textmetrics import check_tokenize, text_metrics
from ablate.tasks.vocab import SPECIALS, Vocab

TOKENIZERS = ("word", "char", "bpe", "unigram")
SUBWORDS = ("bpe", "unigram")
SPACE = "▁"  # char tokens: a space becomes this visible symbol, as SentencePiece writes it
DEFAULT_PIECES = 8000
DATA_MARGIN = 10  # tokens over what the training data needs, in the default decoding cap
FIXED_RATIO, FIXED_MARGIN = 2.0, 10  # a cap set by hand: the key not given


@dataclass
class VocabConfig:
    shared: bool = False  # one table for source and target (false: one per side)
    min_freq: int = 1  # word/char tokens seen fewer times in the training split become <unk>
    max_size: int = 0  # > 0: keep only this many most frequent tokens per table (specials not counted)


@dataclass
class TsvConfig(TaskConfig):
    name: str = "tsv"
    path: str = ""  # one file, split into train/val/test by seed; relative paths are from the working directory
    train: str = ""  # or fixed splits: the training file ...
    val: str = ""  # ... and optional val / test files (missing ones are carved from train)
    test: str = ""
    tokens: str = "word"  # word: whitespace; char: characters (spaces as ▁); bpe | unigram: sentencepiece pieces
    vocab_size: int = 0  # bpe/unigram: pieces per model (0 = 8000); word/char tokens use vocab.min_freq/max_size
    vocab: VocabConfig = field(default_factory=VocabConfig)
    val_frac: float = 0.1  # shares of the distinct training sources carved out for val and test when not given
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
    # Free-running decoding stops at a cap from the source alone (never the reference), <eos> included. Unset
    # (the default): set from the training split, as fairseq's max_len_a * src + max_len_b is set from the data:
    # max(the longest training target, ceil(the largest training target/source ratio * source length))
    # + DATA_MARGIN tokens. Either one given: ceil(decode_ratio * source length + decode_margin), the one not
    # given at its fixed default (2.0, 10).
    decode_ratio: Optional[float] = None
    decode_margin: Optional[int] = None


Pair = tuple[str, str]  # (source text, target text), whitespace-normalised (char mode: stripped only)


def tokenize(text: str, mode: str) -> list[str]:
    if mode == "char":
        return [SPACE if c == " " else c for c in text]
    return text.split()


def detokenizer(mode: str):
    """Tokens -> text for a tokenisation: what BLEU, chrF and the sample outputs read."""
    if mode == "word":
        return lambda tokens: " ".join(tokens)
    if mode == "char":
        return lambda tokens: "".join(tokens).replace(SPACE, " ")
    return SubwordModel.decode


def detokenize(tokens: list[str], mode: str) -> str:
    """Tokens of `tokenize(text, mode)` (or subword pieces) -> the text again (for BLEU on text)."""
    return detokenizer(mode)(tokens)


def _parse_line(raw: bytes, where: str, mode: str) -> Pair | None:
    """One line -> (source text, target text); None for a blank line."""
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
    reserved = sorted(set(source.split() + target.split()) & set(SPECIALS))
    if reserved:
        raise ValueError(f"{where}: uses reserved token(s) {', '.join(reserved)}")
    if mode != "char":  # words and pieces do not see runs of spaces
        source, target = " ".join(source.split()), " ".join(target.split())
    return source, target


def _open(p: Path):
    return gzip.open(p, "rb") if p.suffix == ".gz" else p.open("rb")


_READ: dict[tuple, list[Pair]] = {}  # (path, size, mtime, mode) -> pairs: planning checks every run's task


def read_pairs(path: str | Path, mode: str = "word", key: str = "path") -> list[Pair]:
    """The file's distinct pairs in file order; ValueError naming file and line on bad input."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"tsv: file not found: {p} (set task.{key} to an existing source<TAB>target file)")
    stat = p.stat()
    cache_key = (str(p.resolve()), stat.st_size, stat.st_mtime_ns, mode)
    if cache_key in _READ:
        return _READ[cache_key]
    pairs: dict[Pair, None] = {}
    number = 0
    try:
        with _open(p) as f:
            for number, raw in enumerate(f, start=1):
                ex = _parse_line(raw, f"{p}:{number}", mode)
                if ex is not None:
                    pairs.setdefault(ex)
    except (OSError, EOFError) as e:  # e.g. a truncated or not-really-gzip .gz file
        raise ValueError(f"{p}:{number + 1}: cannot be read ({e})") from None
    if not pairs:
        raise ValueError(f"{p}: no source<TAB>target lines (the file is empty or blank)")
    _READ[cache_key] = list(pairs)
    return _READ[cache_key]


def _files(cfg: TsvConfig) -> dict[str, str]:
    """split -> file given for it (train always; val/test where given)."""
    if cfg.path:
        return {"train": cfg.path}
    return {k: getattr(cfg, k) for k in ("train", "val", "test") if getattr(cfg, k)}


def _check(cfg: TsvConfig) -> None:
    if cfg.path and (cfg.train or cfg.val or cfg.test):
        raise ValueError("tsv: give either path (one file, split by seed) or train/val/test files, not both")
    if not cfg.path and not cfg.train:
        if cfg.val or cfg.test:
            raise ValueError("tsv: val/test files need a train file too; set task.train")
        raise ValueError("tsv: no data; set task.path to a source<TAB>target file, or task.train (and val, test)")
    if cfg.tokens not in TOKENIZERS:
        raise ValueError(f"tsv: tokens={cfg.tokens!r} is invalid; valid: {', '.join(TOKENIZERS)}")
    if cfg.tokens in SUBWORDS:
        if cfg.vocab_size < 0 or 0 < cfg.vocab_size < 8:
            raise ValueError(f"tsv: vocab_size={cfg.vocab_size} must be 0 (= {DEFAULT_PIECES}) or >= 8 pieces")
        if cfg.vocab.min_freq != 1 or cfg.vocab.max_size != 0:
            raise ValueError(f"tsv: vocab.min_freq/max_size apply to word and char tokens; with tokens={cfg.tokens} "
                             "set vocab_size (pieces) instead")
    elif cfg.vocab_size:
        raise ValueError(f"tsv: vocab_size={cfg.vocab_size} applies to tokens bpe/unigram only; with "
                         f"tokens={cfg.tokens} use vocab.min_freq / vocab.max_size")
    if cfg.vocab.min_freq < 1:
        raise ValueError(f"tsv: vocab.min_freq={cfg.vocab.min_freq} must be >= 1")
    if cfg.vocab.max_size < 0:
        raise ValueError(f"tsv: vocab.max_size={cfg.vocab.max_size} must be >= 0 (0 = no limit)")
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
    for key, path in _files(cfg).items():  # reads each file once (cached): bad lines fail before any training
        read_pairs(path, cfg.tokens, "path" if cfg.path else key)
    if cfg.tokens in SUBWORDS:
        _check_pieces(cfg, _parts(cfg)["train"])


def _check_pieces(cfg: TsvConfig, train: list[Pair]) -> None:
    """sentencepiece needs a piece for every character of its training text (character_coverage 1.0) plus its
    <unk>: a smaller vocab_size fails inside the run with an internal error, so say it before any run starts."""
    pieces = cfg.vocab_size or DEFAULT_PIECES
    sides = {"both": [t for pair in train for t in pair]} if cfg.vocab.shared else \
        {"source": [s for s, _ in train], "target": [t for _, t in train]}
    for side, texts in sides.items():
        chars = {SPACE} | {SPACE if c.isspace() else c for text in texts for c in text}
        if pieces < len(chars) + 1:
            where = "the training split" if side == "both" else f"the training split's {side} side"
            raise ValueError(f"tsv: vocab_size={pieces} is below the {len(chars) + 1} pieces {cfg.tokens} needs for "
                             f"{where} (one per distinct character, {len(chars)}, and <unk>); set vocab_size >= "
                             f"{len(chars) + 1}, or tokens: char")


def _carve(pairs: list[Pair], cfg: TsvConfig, want: tuple[str, ...]) -> dict[str, list[Pair]]:
    """Shuffle the distinct sources by seed and carve the wanted splits (val, test) out of train."""
    groups: dict[str, list[Pair]] = {}
    for ex in pairs:
        groups.setdefault(ex[0], []).append(ex)
    sources = list(groups)
    if want:
        random.Random(cfg.seed).shuffle(sources)
    sizes = {k: round(getattr(cfg, f"{k}_frac") * len(sources)) for k in want}
    path = cfg.path or cfg.train
    if want and min(*sizes.values(), len(sources) - sum(sizes.values())) < 1:
        fracs = " and ".join(f"{k}_frac={getattr(cfg, f'{k}_frac')}" for k in want)
        raise ValueError(f"tsv: {path} has only {len(sources)} distinct sources, too few for "
                         f"{fracs} to leave every split non-empty")
    out, start = {}, 0
    for k in want:
        out[k] = [ex for s in sources[start : start + sizes[k]] for ex in groups[s]]
        start += sizes[k]
    out["train"] = [ex for s in sources[start:] for ex in groups[s]]
    return out


def _take(items: list[Pair], n: int, key: str, path: str) -> list[Pair]:
    if n == 0:
        return items
    if n > len(items):
        raise ValueError(f"tsv: {key}={n} but that split of {path} holds {len(items)} examples; "
                         f"ask for at most {len(items)}, or 0 for all")
    return items[:n]


def _parts(cfg: TsvConfig) -> dict[str, list[Pair]]:
    """The train, val and test pairs of this config: the given files, val/test carved from train where not
    given, each cut to its n_ size."""
    files = _files(cfg)
    given = {k: read_pairs(p, cfg.tokens) for k, p in files.items()}
    parts = _carve(given["train"], cfg, tuple(k for k in ("val", "test") if k not in given))
    parts.update({k: v for k, v in given.items() if k != "train"})
    sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    return {k: _take(parts[k], sizes[k], f"n_{k}", files.get(k, files["train"])) for k in ("train", "val", "test")}


def _tokenizers(cfg: TsvConfig, train: list[Pair]):
    """(source tokenizer, target tokenizer, source vocab, target vocab), from the training split only."""
    srcs, tgts = [s for s, _ in train], [t for _, t in train]
    shared = cfg.vocab.shared
    if cfg.tokens in SUBWORDS:
        # Keyed by the content of the training split itself (the file's lines that went to train), so an
        # edited file, another seed or other fractions train a new model and nothing else does.
        digest = text_digest(f"{s}\t{t}" for s, t in train)
        opts = {"model_type": cfg.tokens, "vocab_size": cfg.vocab_size or DEFAULT_PIECES}
        if shared:
            model = train_or_load(srcs + tgts, digest, {**opts, "side": "both"})
            src_model = tgt_model = model
        else:
            src_model = train_or_load(srcs, digest, {**opts, "side": "source"})
            tgt_model = train_or_load(tgts, digest, {**opts, "side": "target"})
        src_vocab = Vocab(src_model.pieces())
        tgt_vocab = src_vocab if shared else Vocab(tgt_model.pieces())
        return src_model.encode, tgt_model.encode, src_vocab, tgt_vocab
    tok = lambda text: tokenize(text, cfg.tokens)  # noqa: E731
    src_tokens = [t for s in srcs for t in tok(s)]
    tgt_tokens = [t for s in tgts for t in tok(s)]
    v = cfg.vocab
    if shared:
        src_vocab = tgt_vocab = Vocab.from_counts(src_tokens + tgt_tokens, v.min_freq, v.max_size)
    else:
        src_vocab = Vocab.from_counts(src_tokens, v.min_freq, v.max_size)
        tgt_vocab = Vocab.from_counts(tgt_tokens, v.min_freq, v.max_size)
    return tok, tok, src_vocab, tgt_vocab


@TASKS.register("tsv", check=_check, config=TsvConfig, kind="seq2seq", metrics=("bleu", "chrf"),
                lengths_vary=True,  # the default training batches are length-bucketed (train.batching: auto)
                help="your own source<TAB>target file(s) (path, or train/val/test; plain or .gz), "
                     "word/char/bpe/unigram tokens, separate or shared vocabularies; BLEU and chrF")
def build_tsv(cfg: TsvConfig) -> TaskData:
    _check(cfg)
    parts = _parts(cfg)
    src_tok, tgt_tok, src_vocab, tgt_vocab = _tokenizers(cfg, parts["train"])

    def split(pairs: list[Pair]):
        enc = [(src_vocab.encode(src_tok(s), strict=False), tgt_vocab.encode(tgt_tok(t), strict=False))
               for s, t in pairs]
        out = pack(enc, tgt_vocab)
        out.tgt_text, out.src_text = [t for _, t in pairs], [s for s, _ in pairs]
        return out

    train = split(parts["train"])
    detok = detokenizer(cfg.tokens)
    # The harness hands these metrics text (the detokenized hypothesis, the raw reference: TaskData.detokenize);
    # token lists (a CorpusMetric's own signature check) are detokenized first.
    as_text = lambda x: x if isinstance(x, str) else detok(x)  # noqa: E731
    return TaskData(tgt_vocab, train, split(parts["val"]), split(parts["test"]),
                    metrics=text_metrics(cfg.tokenize, as_text), src_vocab=src_vocab, detokenize=detok,
                    decode=decode_limit(cfg, train.src_len.tolist(), train.tgt_len.tolist()))


def decode_limit(cfg: TsvConfig, src_len: list[int], tgt_len: list[int]) -> DecodeLimit:
    """The decoding cap: by hand (decode_ratio/decode_margin), else covering the training split (lengths in
    tokens, targets with their <eos>): ratio the largest target/source ratio there, floor its longest target,
    both plus DATA_MARGIN."""
    if cfg.decode_ratio is not None or cfg.decode_margin is not None:
        return DecodeLimit(ratio=FIXED_RATIO if cfg.decode_ratio is None else cfg.decode_ratio,
                           margin=FIXED_MARGIN if cfg.decode_margin is None else cfg.decode_margin)
    ratio = max(t / max(s, 1) for s, t in zip(src_len, tgt_len, strict=True))
    return DecodeLimit(ratio=ratio, margin=DATA_MARGIN, floor=max(tgt_len) + DATA_MARGIN)
