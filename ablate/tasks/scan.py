"""SCAN (Lake & Baroni 2018): navigation commands -> action sequences.

Every command is generated from the paper's phrase-structure grammar and
translated by its interpretation function, so the task needs no download:

    C -> S and S | S after S | S        S -> V twice | V thrice | V
    V -> D opposite | D around | D | U  D -> U left | U right | turn left | turn right
    U -> walk | look | run | jump

34 V phrases -> 102 S phrases -> 102 + 2 * 102**2 = 20,910 commands,
at most 9 words and 48 actions.

Splits:
  simple             a seeded random 80/20 train/test split of all commands (the paper's is one fixed
                     random draw, so ours holds the same sizes but cannot equal the official files);
  length             train on commands of <= 22 actions, test on the longer ones (exactly the official split);
  addprim_jump       the primitive alone in training, every other command containing it in test (exactly the
  addprim_turn_left  official add-primitive files, as sets of distinct pairs; the bare primitive is repeated
                     to primitive_share of the training file, as the official files repeat it).
Validation is carved (n_val commands, seeded) out of the training portion; for the addprim splits never
the bare primitive, so train + val holds exactly the official training commands.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

from ablate.tasks.base import TASKS, DecodeLimit, TaskConfig, TaskData, pack
from ablate.tasks.vocab import Vocab

PRIMITIVES = ("walk", "look", "run", "jump")
DIRECTIONS = ("left", "right")
COMMAND_WORDS = PRIMITIVES + ("turn",) + DIRECTIONS + ("opposite", "around", "twice", "thrice", "and", "after")
ACTIONS = ("I_WALK", "I_LOOK", "I_RUN", "I_JUMP", "I_TURN_LEFT", "I_TURN_RIGHT")
SPLITS = ("simple", "length", "addprim_jump", "addprim_turn_left")
# The primitive each add-primitive split holds out (as words of the command).
ADDPRIM = {"addprim_jump": ("jump",), "addprim_turn_left": ("turn", "left")}
# The paper's length split: train on outputs of <= 22 actions, test on the longer ones (24-48; none has 23).
LENGTH_SPLIT_MAX_TRAIN_ACTIONS = 22


@dataclass
class ScanConfig(TaskConfig):
    name: str = "scan"
    # simple: a seeded random 80/20 train/test split of all commands;
    # length: train on commands of <= 22 actions, test on the longer ones;
    # addprim_jump / addprim_turn_left: the primitive alone in training, every other command with it in test.
    split: str = "simple"
    # Sizes: 0 means "all of the split"; a positive n asks for exactly n examples
    # (a seeded subset; asking for more than the split holds is an error).
    # val is carved out of the train portion first, so n_val must be positive.
    # For the addprim splits n_train counts the distinct commands other than the bare primitive.
    n_train: int = 0
    n_val: int = 1000
    n_test: int = 0
    # addprim splits: the bare primitive's share of the training examples (the official files: ~10%).
    primitive_share: float = 0.1


def _turn(direction: str) -> str:
    return "I_TURN_LEFT" if direction == "left" else "I_TURN_RIGHT"


def _primitive(word: str) -> list[str]:
    return [f"I_{word.upper()}"]


def _v_phrases() -> list[tuple[list[str], list[str]]]:
    """The 34 V phrases with their meanings."""
    out: list[tuple[list[str], list[str]]] = [([u], _primitive(u)) for u in PRIMITIVES]
    for x in PRIMITIVES + ("turn",):
        act = [] if x == "turn" else _primitive(x)  # "turn left" is the turn alone
        for d in DIRECTIONS:
            t = _turn(d)
            out.append(([x, d], [t] + act))  # D
            out.append(([x, "opposite", d], [t, t] + act))  # D opposite
            out.append(([x, "around", d], ([t] + act) * 4))  # D around
    return out


def _s_phrases() -> list[tuple[list[str], list[str]]]:
    """The 102 S phrases: each V alone, twice, thrice."""
    out = []
    for words, acts in _v_phrases():
        out.append((words, acts))
        out.append((words + ["twice"], acts * 2))
        out.append((words + ["thrice"], acts * 3))
    return out


@lru_cache(maxsize=1)
def _all_commands() -> tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]:
    """All 20,910 (command, actions) pairs in a fixed order."""
    s = _s_phrases()
    out = [(w, a) for w, a in s]
    for w1, a1 in s:
        for w2, a2 in s:
            out.append((w1 + ["and"] + w2, a1 + a2))
            out.append((w1 + ["after"] + w2, a2 + a1))  # "x after y" does y first
    return tuple((tuple(w), tuple(a)) for w, a in out)


def all_commands() -> list[tuple[list[str], list[str]]]:
    """Every SCAN command with its action sequence (fresh lists, safe to mutate)."""
    return [(list(w), list(a)) for w, a in _all_commands()]


def interpret(command: str | list[str]) -> list[str]:
    """The action sequence of one SCAN command (KeyError if it is not one)."""
    words = tuple(command.split() if isinstance(command, str) else command)
    table = _command_table()
    if words not in table:
        raise KeyError(f"not a SCAN command: {' '.join(words)!r}")
    return list(table[words])


@lru_cache(maxsize=1)
def _command_table() -> dict[tuple[str, ...], tuple[str, ...]]:
    return dict(_all_commands())


def _take(items: list, n: int, what: str, key: str) -> list:
    """All items for n == 0, else exactly n of them."""
    if n == 0:
        return items
    if n > len(items):
        raise ValueError(f"scan: {key}={n} but the {what} holds only {len(items)} commands; "
                         f"ask for at most {len(items)}, or 0 for all")
    return items[:n]


def _check(cfg: ScanConfig) -> None:
    if cfg.split not in SPLITS:
        raise ValueError(f"scan: split={cfg.split!r} is invalid; valid: {', '.join(SPLITS)}")
    for key in ("n_train", "n_test"):
        if getattr(cfg, key) < 0:
            raise ValueError(f"scan: {key}={getattr(cfg, key)} must be >= 0 (0 = all of the split)")
    if cfg.n_val <= 0:
        raise ValueError(f"scan: n_val={cfg.n_val} must be > 0 (val is carved out of the train portion)")
    if not 0 <= cfg.primitive_share < 1:
        raise ValueError(f"scan: primitive_share={cfg.primitive_share} must be in [0, 1) "
                         "(the bare primitive's share of the addprim training examples; official files: 0.1)")
    if cfg.split not in ADDPRIM and cfg.primitive_share != ScanConfig.primitive_share:
        raise ValueError(f"scan: primitive_share={cfg.primitive_share} applies only to the addprim splits "
                         f"({', '.join(ADDPRIM)}), not to split={cfg.split!r}")


def _contains(words: tuple[str, ...] | list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


def primitive_copies(n_other: int, share: float) -> int:
    """How many times the bare primitive appears beside n_other other commands so it is `share` of the file
    (at least once: the primitive must be seen). 13,203 others at 0.1 -> 1,467 (the official jump file's count)."""
    return max(1, round(share * n_other / (1 - share)))


@TASKS.register("scan", check=_check, config=ScanConfig, kind="seq2seq",
                help="SCAN commands -> actions from the paper's grammar (20,910 commands); split: simple (a seeded "
                     "random 80/20 split: same sizes as, but not equal to, the official random split) | length | "
                     "addprim_jump | addprim_turn_left (the official add-primitive sets; the bare primitive repeated "
                     "to primitive_share of train); validation: n_val commands carved from the train portion, "
                     "never the bare primitive")
def build_scan(cfg: ScanConfig) -> TaskData:
    _check(cfg)
    rng = random.Random(cfg.seed)
    pairs = all_commands()
    rng.shuffle(pairs)
    if cfg.split == "simple":
        cut = round(0.8 * len(pairs))
        train_part, test_part = pairs[:cut], pairs[cut:]
    elif cfg.split == "length":
        train_part = [p for p in pairs if len(p[1]) <= LENGTH_SPLIT_MAX_TRAIN_ACTIONS]
        test_part = [p for p in pairs if len(p[1]) > LENGTH_SPLIT_MAX_TRAIN_ACTIONS]
    else:
        prim = ADDPRIM[cfg.split]
        bare = [p for p in pairs if tuple(p[0]) == prim]
        train_part = [p for p in pairs if not _contains(p[0], prim)]
        test_part = [p for p in pairs if _contains(p[0], prim) and tuple(p[0]) != prim]
    if cfg.n_val >= len(train_part):
        raise ValueError(f"scan: n_val={cfg.n_val} leaves no training data "
                         f"(the {cfg.split} train portion holds {len(train_part)} commands)")
    val, rest = train_part[: cfg.n_val], train_part[cfg.n_val :]
    train = _take(rest, cfg.n_train, f"{cfg.split} train portion (after n_val)", "n_train")
    if cfg.split in ADDPRIM:  # the bare primitive: training only, repeated as in the official files
        train = train + bare * primitive_copies(len(train), cfg.primitive_share)
        rng.shuffle(train)
    test = _take(test_part, cfg.n_test, f"{cfg.split} test portion", "n_test")

    vocab = Vocab(list(COMMAND_WORDS) + list(ACTIONS))
    enc = lambda xs: [(vocab.encode(s), vocab.encode(t)) for s, t in xs]  # noqa: E731
    longest = max(len(a) for _, a in _all_commands()) + 1  # the grammar's longest action sequence + <eos>
    return TaskData(vocab, pack(enc(train), vocab), pack(enc(val), vocab), pack(enc(test), vocab),
                    decode=DecodeLimit(max_len=longest),
                    length_by="target" if cfg.split == "length" else "source")  # the length split: by actions
