"""Winograd-style pronoun resolution: which noun does "it" refer to?

    the animal didn't cross the street because it was too tired   -> animal
    the animal didn't cross the street because it was too wide    -> street

Each sentence has an agent (an animate noun) and an object (something the
agent acts on). The adjective after "it was too" decides the answer: agent
adjectives (tired, scared, ...) can only describe the agent, object adjectives
(wide, heavy, ...) only the object. Active templates put the agent first and
passive ones put the object first, so "the first noun" scores only 50%: the
model has to tie the adjective to the right noun.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ablate.tasks.base import TASKS, DecodeLimit, Split, TaskConfig, TaskData, pack, split_three, unique_examples
from ablate.tasks.vocab import Vocab

# Animals only: English refers to them as "it" (people would be he/she). One word each: the label is one token.
AGENTS = (
    "animal", "dog", "cat", "horse", "donkey", "goat", "cow", "sheep", "pig",
    "fox", "rabbit", "mouse", "monkey", "bear", "deer", "puppy", "kitten",
)

# Adjectives that can only describe the agent; none of them fits any object below.
AGENT_ADJECTIVES = (
    "tired", "scared", "sleepy", "lazy", "sick", "nervous", "clumsy", "frightened", "exhausted", "timid",
)


@dataclass(frozen=True)
class Action:
    """A verb with the objects it takes and the adjectives that can only describe those objects."""

    base: str  # "cross": after didn't / could not / to
    participle: str  # "crossed": in the passive templates
    objects: tuple[str, ...]
    object_adjectives: tuple[str, ...]


ACTIONS = (
    # Object adjectives are picked so that none could describe an animal: no "wet", "hot", "full", "weak".
    Action("cross", "crossed", ("street", "road", "river", "bridge", "field"),
           ("wide", "busy", "long", "flooded", "icy")),
    Action("climb", "climbed", ("wall", "fence", "tree", "hill", "ladder"),
           ("high", "tall", "steep", "slippery", "smooth")),
    Action("carry", "carried", ("box", "bag", "rock", "table", "crate"),
           ("heavy", "big", "awkward", "bulky", "large")),
    Action("eat", "eaten", ("apple", "bread", "soup", "cake", "meat"),
           ("burnt", "dry", "salty", "spicy", "stale")),
)

# {A} = agent, {O} = object, {V} = verb base form, {P} = participle, {J} = adjective.
AGENT_FIRST = (
    "the {A} didn't {V} the {O} because it was too {J}",
    "the {A} could not {V} the {O} because it was too {J}",
    "the {A} refused to {V} the {O} since it was too {J}",
)
OBJECT_FIRST = (
    "the {O} was not {P} by the {A} because it was too {J}",
    "the {O} could not be {P} by the {A} since it was too {J}",
    "the {O} was never {P} by the {A} because it was too {J}",
)
SPLITS = ("random", "heldout_adjectives")


@dataclass
class CorefConfig(TaskConfig):
    name: str = "coref"
    # random: one pool, split at random; heldout_adjectives: test sentences use
    # adjectives that never occur in train or val (val is in-distribution).
    split: str = "random"
    heldout_frac: float = 0.25  # heldout_adjectives: share of each adjective list held out (at least one)


def _sentence(template: str, agent: str, action: Action, obj: str, adjective: str) -> list[str]:
    return template.format(A=agent, O=obj, V=action.base, P=action.participle, J=adjective).split()


def sampler(
    agent_adjs: tuple[str, ...], object_adjs: dict[str, tuple[str, ...]]
) -> Callable[[random.Random], tuple[list[str], list[str]]]:
    """Draws (sentence, [label]) with the label half the time the agent, half the object."""

    def sample(rng: random.Random) -> tuple[list[str], list[str]]:
        action = rng.choice(ACTIONS)
        agent, obj = rng.choice(AGENTS), rng.choice(action.objects)
        template = rng.choice(rng.choice((AGENT_FIRST, OBJECT_FIRST)))
        if rng.random() < 0.5:
            adjective, label = rng.choice(agent_adjs), agent
        else:
            adjective, label = rng.choice(object_adjs[action.base]), obj
        return _sentence(template, agent, action, obj, adjective), [label]

    return sample


def _hold_out(adjectives: tuple[str, ...], frac: float, rng: random.Random) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(seen, held out): a seeded share of the list, at least one of each."""
    k = min(len(adjectives) - 1, max(1, round(frac * len(adjectives))))
    held = set(rng.sample(adjectives, k))
    return tuple(a for a in adjectives if a not in held), tuple(a for a in adjectives if a in held)


def all_tokens() -> list[str]:
    """Every word any template can produce, in a fixed order (the vocabulary)."""
    words = [w for t in AGENT_FIRST + OBJECT_FIRST for w in t.split() if not w.startswith("{")]
    words += list(AGENTS) + list(AGENT_ADJECTIVES)
    for a in ACTIONS:
        words += [a.base, a.participle, *a.objects, *a.object_adjectives]
    return words


def _check(cfg: CorefConfig) -> None:
    if cfg.split not in SPLITS:
        raise ValueError(f"coref: split={cfg.split!r} is invalid; valid: {', '.join(SPLITS)}")
    if not 0.0 < cfg.heldout_frac < 1.0:
        raise ValueError(f"coref: heldout_frac={cfg.heldout_frac} must be strictly between 0 and 1")
    for key in ("n_train", "n_val", "n_test"):
        if getattr(cfg, key) <= 0:
            raise ValueError(f"coref: {key}={getattr(cfg, key)} must be > 0")


def _with_it_pos(split: Split, examples: list[tuple[list[str], list[str]]]) -> Split:
    import torch  # loaded with the data, not at import: planning stays fast

    split.extra["it_pos"] = torch.tensor([src.index("it") for src, _ in examples], dtype=torch.long)
    return split


@TASKS.register("coref", check=_check, config=CorefConfig, kind="classification",
                help="Winograd-style: which noun 'it' means ('...because it was too tired/wide'); "
                "split: random|heldout_adjectives")
def build_coref(cfg: CorefConfig) -> TaskData:
    _check(cfg)
    rng = random.Random(cfg.seed)
    object_adjs = {a.base: a.object_adjectives for a in ACTIONS}
    n_seen = cfg.n_train + cfg.n_val
    if cfg.split == "random":
        pool = unique_examples(sampler(AGENT_ADJECTIVES, object_adjs), n_seen + cfg.n_test, rng, "coref")
        train, val, test = split_three(pool, cfg.n_train, cfg.n_val, cfg.n_test)
    else:
        seen_agent, held_agent = _hold_out(AGENT_ADJECTIVES, cfg.heldout_frac, rng)
        seen_obj, held_obj = {}, {}
        for verb, adjs in object_adjs.items():
            seen_obj[verb], held_obj[verb] = _hold_out(adjs, cfg.heldout_frac, rng)
        pool = unique_examples(sampler(seen_agent, seen_obj), n_seen, rng, "coref (train + val)")
        train, val = pool[: cfg.n_train], pool[cfg.n_train :]
        # The adjectives differ, so no test sentence can equal a train or val one.
        test = unique_examples(sampler(held_agent, held_obj), cfg.n_test, rng, "coref (held-out test)")

    vocab = Vocab(all_tokens())
    enc = lambda xs: [(vocab.encode(s), vocab.encode(t)) for s, t in xs]  # noqa: E731
    splits = [_with_it_pos(pack(enc(xs), vocab, add_eos=False), xs) for xs in (train, val, test)]
    return TaskData(vocab, *splits, kind="classification", decode=DecodeLimit(max_len=1))  # one label token
