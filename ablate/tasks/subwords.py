"""Subword models (BPE / unigram) through sentencepiece, trained on a task's training split and cached on disk.

The cache key is a hash of the training split's content (the file lines it holds) and every option
that shapes the model, so a second run with the same file and options reuses the model, and an
edited file trains a new one.
Cache directory: $ABLATE_CACHE_DIR, else $XDG_CACHE_HOME/ablate, else ~/.cache/ablate.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

SPACE = "▁"  # sentencepiece's visible space: a piece starting with it starts a word


def cache_dir() -> Path:
    root = os.environ.get("ABLATE_CACHE_DIR")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ablate"
    return Path(root) / "sentencepiece"


def text_digest(lines: Iterable[str]) -> str:
    """Content hash of the training texts (one line each)."""
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return h.hexdigest()


class SubwordModel:
    """A trained sentencepiece model: text -> pieces, pieces -> text."""

    def __init__(self, proto: bytes):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_proto=proto)

    def pieces(self) -> list[str]:
        """Every piece of the model, in its id order (its own <unk> first)."""
        return [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())]

    def encode(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    @staticmethod
    def decode(pieces: Sequence[str]) -> str:
        """Pieces back to text: joined, the visible space made a space (what sentencepiece's decode does with
        the identity normalisation used here), so any piece sequence decodes, <unk> included."""
        return "".join(pieces).replace(SPACE, " ").strip()


def train_or_load(texts: Sequence[str], digest: str, options: dict[str, Any]) -> SubwordModel:
    """The model for these texts (identified by digest, the hash of the file(s) they come from) and options;
    trained and written to the cache the first time, read from it afterwards."""
    key = hashlib.sha256(json.dumps({"data": digest, **options}, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_dir() / f"{key}.model"
    if path.is_file():
        return SubwordModel(path.read_bytes())
    proto = _train(texts, options)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as f:
        f.write(proto)  # atomic: two runs training the same model at once each write a whole file
    os.replace(f.name, path)
    (path.with_suffix(".json")).write_text(json.dumps({"data": digest, **options}, indent=1))
    return SubwordModel(proto)


def _train(texts: Sequence[str], options: dict[str, Any]) -> bytes:
    import sentencepiece as spm

    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=out, model_type=options["model_type"],
        vocab_size=options["vocab_size"],
        hard_vocab_limit=False,  # a small corpus gets the pieces it has, not an error
        character_coverage=1.0, normalization_rule_name="identity",  # pieces decode back to the exact text
        pad_id=-1, bos_id=-1, eos_id=-1, unk_id=0,  # ablate's Vocab adds its own specials
        num_threads=1,  # deterministic, and runs share the cores
        minloglevel=2,  # its training log stays off the terminal
    )
    return out.getvalue()
