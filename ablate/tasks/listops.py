"""ListOps (Long Range Arena): the value, 0-9, of a nested list expression.

    [MAX 2 9 [MIN 4 7 ] 0 ]  ->  9

Operators MIN, MAX, MED (median), SM (sum mod 10) over digits 0-9, each list
closed by `]`. The generator is LRA's: at depth < max_depth a node is an
operator with probability 0.25 (else a digit), with 2..max_args arguments;
the root is depth 1. Examples are rejection-sampled to min_len..max_len tokens.
MED is LRA's `int(np.median(values))`: the middle value of the sorted list,
or for an even count the mean of the two middle values rounded down.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

from ablate.tasks.base import TASKS, DecodeLimit, TaskConfig, TaskData, pack, split_three, unique_examples
from ablate.tasks.vocab import Vocab

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
DIGITS = tuple(str(d) for d in range(10))
END = "]"
OPERATOR_P = 0.25  # LRA's VALUE_P: a node is an operator when random() <= 0.25

Tree = Union[int, tuple[str, list["Tree"]]]


@dataclass
class ListOpsConfig(TaskConfig):
    name: str = "listops"
    max_depth: int = 4  # LRA uses 10; operators appear only at depth < max_depth (root = depth 1)
    max_args: int = 5  # LRA uses 10; every operator takes 2..max_args arguments
    min_len: int = 10  # bounds on the source length in tokens (LRA: 500..2000)
    max_len: int = 60


def median(values: list[int]) -> int:
    """LRA's MED: int(np.median(values)), i.e. the lower-rounded mean of the middle pair for even counts."""
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) // 2


def apply(op: str, values: list[int]) -> int:
    if op == "[MIN":
        return min(values)
    if op == "[MAX":
        return max(values)
    if op == "[MED":
        return median(values)
    if op == "[SM":
        return sum(values) % 10
    raise ValueError(f"unknown ListOps operator {op!r}")


def generate_tree(rng: random.Random, depth: int, max_depth: int, max_args: int) -> Tree:
    """LRA's generate_tree: an operator node with probability 0.25 while depth < max_depth."""
    if depth < max_depth and rng.random() <= OPERATOR_P:
        n_args = rng.randint(2, max_args)
        return rng.choice(OPERATORS), [generate_tree(rng, depth + 1, max_depth, max_args) for _ in range(n_args)]
    return rng.randrange(10)


def tokens(tree: Tree) -> list[str]:
    if isinstance(tree, int):
        return [str(tree)]
    op, args = tree
    return [op] + [t for a in args for t in tokens(a)] + [END]


def value(tree: Tree) -> int:
    if isinstance(tree, int):
        return tree
    op, args = tree
    return apply(op, [value(a) for a in args])


def _sampler(cfg: ListOpsConfig) -> Callable[[random.Random], tuple[list[str], list[str]]]:
    def sample(rng: random.Random) -> tuple[list[str], list[str]]:
        # Rejection sampling on length, as LRA does; bounded so an unreachable range fails loudly.
        for _ in range(100_000):
            tree = generate_tree(rng, 1, cfg.max_depth, cfg.max_args)
            toks = tokens(tree)
            if cfg.min_len <= len(toks) <= cfg.max_len:
                return toks, [str(value(tree))]
        raise ValueError(f"listops: no expression of {cfg.min_len}..{cfg.max_len} tokens in 100000 draws with "
                         f"max_depth={cfg.max_depth}, max_args={cfg.max_args}; "
                         "lower min_len or raise max_depth/max_args")

    return sample


def max_tokens(max_depth: int, max_args: int) -> int:
    """The longest expression the generator can produce."""
    if max_depth <= 1:
        return 1
    return 2 + max_args * max_tokens(max_depth - 1, max_args)


def _check(cfg: ListOpsConfig) -> None:
    for key in ("n_train", "n_val", "n_test"):
        if getattr(cfg, key) <= 0:
            raise ValueError(f"listops: {key}={getattr(cfg, key)} must be > 0")
    if cfg.max_depth < 2:
        raise ValueError(f"listops: max_depth={cfg.max_depth} must be >= 2 (with 1 the root can only be a digit)")
    if cfg.max_args < 2:
        raise ValueError(f"listops: max_args={cfg.max_args} must be >= 2 (every operator takes 2..max_args arguments)")
    if not 1 <= cfg.min_len <= cfg.max_len:
        raise ValueError(f"listops: need 1 <= min_len <= max_len, got min_len={cfg.min_len}, max_len={cfg.max_len}")
    longest = max_tokens(cfg.max_depth, cfg.max_args)
    if cfg.min_len > longest:
        raise ValueError(f"listops: min_len={cfg.min_len} but max_depth={cfg.max_depth}, max_args={cfg.max_args} "
                         f"allow at most {longest} tokens; lower min_len or raise max_depth/max_args")


@TASKS.register("listops", check=_check, config=ListOpsConfig, kind="classification",
                help="nested MAX/MIN/MED/SM lists over digits (Long Range Arena); 10 classes")
def build_listops(cfg: ListOpsConfig) -> TaskData:
    _check(cfg)
    rng = random.Random(cfg.seed)
    pool = unique_examples(_sampler(cfg), cfg.n_train + cfg.n_val + cfg.n_test, rng, "listops")
    vocab = Vocab(list(OPERATORS) + [END] + list(DIGITS))
    enc = [(vocab.encode(s), vocab.encode(t)) for s, t in pool]
    train, val, test = split_three(enc, cfg.n_train, cfg.n_val, cfg.n_test)
    return TaskData(vocab, *(pack(xs, vocab, add_eos=False) for xs in (train, val, test)), kind="classification",
                    decode=DecodeLimit(max_len=1))  # the answer: one label token
