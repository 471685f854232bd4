"""copy, reverse, sort and associative recall over random symbol strings."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from ablate.tasks.base import TASKS, DecodeLimit, TaskConfig, TaskData, pack, split_three, unique_examples
from ablate.tasks.vocab import Vocab


@dataclass
class SeqTaskConfig(TaskConfig):
    vocab_size: int = 10  # content symbols, "0" .. "vocab_size-1"
    min_len: int = 4
    max_len: int = 12
    # Optional length-generalisation test: test inputs drawn from [test_min_len, test_max_len].
    test_min_len: Optional[int] = None
    test_max_len: Optional[int] = None


@dataclass
class RecallConfig(TaskConfig):
    vocab_size: int = 16  # keys "k*" from one half, values "v*" from the other (as Zoology MQAR)
    min_len: int = 2  # number of key-value pairs
    max_len: int = 6
    n_queries: int = 1
    test_min_len: Optional[int] = None
    test_max_len: Optional[int] = None


def _build(
    cfg: SeqTaskConfig | RecallConfig,
    symbols: list[str],
    sampler: Callable[[random.Random, int, int], tuple[list[str], list[str]]],
    longest_target: int,
) -> TaskData:
    """longest_target: the most target symbols any example of these options can have (without <eos>)."""
    vocab = Vocab(symbols)
    rng = random.Random(cfg.seed)
    lo_t = cfg.test_min_len if cfg.test_min_len is not None else cfg.min_len
    hi_t = cfg.test_max_len if cfg.test_max_len is not None else cfg.max_len
    if (lo_t, hi_t) == (cfg.min_len, cfg.max_len):
        n = cfg.n_train + cfg.n_val + cfg.n_test
        pool = unique_examples(lambda r: sampler(r, cfg.min_len, cfg.max_len), n, rng, cfg.name)
        train, val, test = split_three(pool, cfg.n_train, cfg.n_val, cfg.n_test)
    else:  # a shifted test distribution: draw train+val, then test apart from them
        pool = unique_examples(lambda r: sampler(r, cfg.min_len, cfg.max_len), cfg.n_train + cfg.n_val, rng, cfg.name)
        train, val = pool[: cfg.n_train], pool[cfg.n_train :]
        taken = {tuple(s) for s, _ in pool}
        test = [e for e in unique_examples(lambda r: sampler(r, lo_t, hi_t), cfg.n_test + len(taken), rng, cfg.name)
                if tuple(e[0]) not in taken][: cfg.n_test]
    enc = lambda xs: [(vocab.encode(s), vocab.encode(t)) for s, t in xs]  # noqa: E731
    return TaskData(vocab, pack(enc(train), vocab), pack(enc(val), vocab), pack(enc(test), vocab),
                    decode=DecodeLimit(max_len=longest_target + 1))


def _digits(cfg: SeqTaskConfig) -> list[str]:
    return [str(i) for i in range(cfg.vocab_size)]


def _string_task(transform: Callable[[list[str]], list[str]]):
    def build(cfg: SeqTaskConfig) -> TaskData:
        syms = _digits(cfg)

        def sample(rng: random.Random, lo: int, hi: int) -> tuple[list[str], list[str]]:
            s = [rng.choice(syms) for _ in range(rng.randint(lo, hi))]
            return s, transform(s)

        return _build(cfg, syms, sample, max(cfg.max_len, cfg.test_max_len or 0))  # as long as the input

    return build


def _check(cfg: SeqTaskConfig | RecallConfig) -> None:
    """Option problems, found before anything is generated (the planner calls this)."""
    for key in ("n_train", "n_val", "n_test", "vocab_size", "min_len", "max_len"):
        if getattr(cfg, key) <= 0:
            raise ValueError(f"{cfg.name}: {key}={getattr(cfg, key)} must be > 0")
    for lo, hi in (("min_len", "max_len"), ("test_min_len", "test_max_len")):
        a, b = getattr(cfg, lo), getattr(cfg, hi)
        if a is not None and b is not None and a > b:
            raise ValueError(f"{cfg.name}: {lo}={a} must be <= {hi}={b}")
    if isinstance(cfg, RecallConfig):
        most = max(cfg.max_len, cfg.test_max_len or 0)
        if most > cfg.vocab_size // 2:
            raise ValueError(f"recall: max_len={most} key-value pairs need vocab_size >= {2 * most} "
                             f"(distinct keys from half the vocabulary), got vocab_size={cfg.vocab_size}")


def _register(name: str, help: str, transform: Callable[[list[str]], list[str]]) -> None:
    TASKS.register(name, config=SeqTaskConfig, check=_check, kind="seq2seq", help=help)(_string_task(transform))


_register("copy", "output = input", list)
_register("reverse", "output = input reversed", lambda s: s[::-1])
_register("sort", "output = input sorted (the order of the input does not matter)", lambda s: sorted(s, key=int))


@TASKS.register("recall", config=RecallConfig, check=_check, kind="seq2seq",
                help="associative recall: k1 v1 .. kn vn <sep> queries -> values")
def build_recall(cfg: RecallConfig) -> TaskData:
    half = cfg.vocab_size // 2
    keys = [f"k{i}" for i in range(half)]
    values = [f"v{i}" for i in range(cfg.vocab_size - half)]

    def sample(rng: random.Random, lo: int, hi: int) -> tuple[list[str], list[str]]:
        n = rng.randint(lo, hi)
        ks = rng.sample(keys, n)
        vs = [rng.choice(values) for _ in ks]
        src = [t for kv in zip(ks, vs) for t in kv] + ["<sep>"]
        qs = [rng.randrange(n) for _ in range(cfg.n_queries)]
        return src + [ks[q] for q in qs], [vs[q] for q in qs]

    return _build(cfg, keys + values, sample, cfg.n_queries)
