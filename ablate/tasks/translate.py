"""A synthetic, rule-based language pair: English-like SVO -> an invented SOV language.

Source (English-like):
    S    -> CLAUSE ("and" CLAUSE)*
    CLAUSE -> NP V NP                 V agrees with the subject: "sees" (singular) / "see" (plural)
    NP   -> SNP [P SNP] ["that" V SNP]   a prepositional phrase and/or a relative clause
    SNP  -> DET ADJ* N               DET: the/a (singular), the/some (plural)

Target (invented words, one fixed dictionary):
    CLAUSE -> NP "ga" NP "o" V      subject, object, then the verb (SOV) with case markers
    NP   -> SNP [SNP postposition] ["ke" SNP V]
    SNP  -> N ADJ* DET              noun first, adjectives after it in mirrored order
    agreement: plural nouns end in -i, adjectives agree with their noun (-a / -e),
    verbs agree with their subject (-et / -on), "the" -> ka, "a"/"some" -> nu, "and" -> to.

    the big dog sees a cat  ->  vask groma ka ga mirel nu o miret

Modifier phrases hold only simple noun phrases, so every source sentence has one
parse and one translation. Lengths are drawn uniformly in [min_len, max_len] words.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from ablate.tasks.base import TASKS, DecodeLimit, TaskConfig, TaskData, check_decode, pack, split_three, unique_examples
from ablate.tasks.textmetrics import CorpusMetric, check_tokenize, text_metrics
from ablate.tasks.vocab import Vocab

# (English singular, English plural, target stem)
NOUNS = (
    ("dog", "dogs", "vask"), ("cat", "cats", "mirel"), ("man", "men", "toram"), ("woman", "women", "selin"),
    ("child", "children", "pabor"), ("bird", "birds", "kiwen"), ("horse", "horses", "dalup"),
    ("teacher", "teachers", "norag"), ("farmer", "farmers", "gufel"), ("king", "kings", "rodan"),
    ("house", "houses", "belom"), ("tree", "trees", "sunak"), ("car", "cars", "fitor"), ("book", "books", "lemin"),
    ("river", "rivers", "hasot"), ("garden", "gardens", "purel"), ("ball", "balls", "zokim"),
    ("table", "tables", "wemar"), ("apple", "apples", "jutak"), ("friend", "friends", "kolen"),
)
# (English, target stem)
ADJECTIVES = (
    ("big", "grom"), ("small", "tiv"), ("red", "ruv"), ("old", "sen"), ("happy", "fel"), ("young", "nov"),
    ("green", "vir"), ("tall", "hok"), ("angry", "zar"), ("quiet", "mus"), ("strong", "dor"), ("sad", "tris"),
)
# (English 3rd person singular, English plural, target stem)
VERBS = (
    ("sees", "see", "mir"), ("likes", "like", "lub"), ("chases", "chase", "kas"), ("finds", "find", "nal"),
    ("helps", "help", "pom"), ("watches", "watch", "gled"), ("follows", "follow", "sled"),
    ("carries", "carry", "nos"), ("knows", "know", "zan"), ("hears", "hear", "slu"), ("pushes", "push", "tol"),
    ("calls", "call", "zov"),
)
# (English preposition, target postposition)
PREPOSITIONS = (("near", "bli"), ("behind", "zad"), ("under", "pod"), ("with", "sam"), ("above", "nad"))
DETERMINERS = {False: (("the", "ka"), ("a", "nu")), True: (("the", "ka"), ("some", "nu"))}  # by plural
CONJ, RELATIVE, SUBJECT, OBJECT = ("and", "to"), ("that", "ke"), "ga", "o"
SHORTEST = 5  # "the dog sees the cat"


@dataclass
class TranslateConfig(TaskConfig):
    name: str = "translate"
    min_len: int = 5  # source length in words, drawn uniformly in [min_len, max_len]; the shortest sentence has 5
    max_len: int = 30
    max_adjectives: int = 2  # adjectives per noun phrase: 0..max_adjectives (>= 1, so every length is reachable)
    tokenize: str = "13a"  # sacreBLEU's tokenizer for BLEU on the detokenized text; none: score the words as they are
    # Free-running decoding stops at decode_ratio * source length + decode_margin tokens (<eos> included): the
    # grammar's targets have at most 4/3 * source length + 4/3 tokens, so a cap never cuts a correct translation.
    decode_ratio: float = 1.5
    decode_margin: int = 5


def noun(i: int, plural: bool) -> tuple[str, str]:
    sg, pl, stem = NOUNS[i]
    return (pl, stem + "i") if plural else (sg, stem)


def adjective(i: int, plural: bool) -> tuple[str, str]:
    en, stem = ADJECTIVES[i]
    return en, stem + ("e" if plural else "a")


def verb(i: int, plural_subject: bool) -> tuple[str, str]:
    sg, pl, stem = VERBS[i]
    return (pl, stem + "on") if plural_subject else (sg, stem + "et")


Pair = tuple[list[str], list[str]]  # (source words, target words) of one phrase
# A noun phrase's shape: adjectives on its head, on its PP's noun, on its relative clause's object (None = absent).
NPShape = tuple[int, Optional[int], Optional[int]]
ClauseShape = tuple[NPShape, NPShape]  # subject, object


def _np_len(shape: NPShape) -> int:
    head, pp, rc = shape
    return 2 + head + (0 if pp is None else 3 + pp) + (0 if rc is None else 4 + rc)


def _clause_len(shape: ClauseShape) -> int:
    return _np_len(shape[0]) + 1 + _np_len(shape[1])


class _Generator:
    """Random sentences as aligned (source, target) word lists.

    Lengths are hit by rejection on shapes (a few integers) before any word is
    drawn, which keeps generation of exact lengths cheap.
    """

    def __init__(self, rng: random.Random, max_adjectives: int):
        self.rng, self.max_adjectives = rng, max_adjectives

    def n_adjectives(self) -> int:
        return self.rng.randint(0, self.max_adjectives)

    def np_shape(self) -> NPShape:
        pp = self.n_adjectives() if self.rng.random() < 0.35 else None
        rc = self.n_adjectives() if self.rng.random() < 0.35 else None
        return self.n_adjectives(), pp, rc

    def fitting_clause(self, room: int) -> ClauseShape | None:
        """A clause shape that fills room words exactly or leaves room for "and" + another clause."""
        for _ in range(200):
            shape = (self.np_shape(), self.np_shape())
            n = _clause_len(shape)
            if n == room or n + 1 + SHORTEST <= room:
                return shape
        return None

    def sentence_shape(self, length: int) -> list[ClauseShape] | None:
        """Clause shapes that, joined by "and", have exactly length source words."""
        shapes: list[ClauseShape] = []
        used = -1  # no "and" before the first clause
        while used < length:
            shape = self.fitting_clause(length - used - 1)
            if shape is None:
                return None
            shapes.append(shape)
            used += 1 + _clause_len(shape)
        return shapes

    def simple_np(self, n_adjs: int) -> tuple[Pair, bool]:
        rng = self.rng
        plural = rng.random() < 0.5
        det_en, det_tg = rng.choice(DETERMINERS[plural])
        n_en, n_tg = noun(rng.randrange(len(NOUNS)), plural)
        adjs = [adjective(i, plural) for i in rng.sample(range(len(ADJECTIVES)), n_adjs)]
        src = [det_en] + [a for a, _ in adjs] + [n_en]
        if det_en == "a" and src[1][0] in "aeiou":  # English: "an apple", "an angry dog"
            src[0] = "an"
        tgt = [n_tg] + [t for _, t in reversed(adjs)] + [det_tg]
        return (src, tgt), plural

    def np(self, shape: NPShape) -> tuple[Pair, bool]:
        head, pp, rc = shape
        (src, tgt), plural = self.simple_np(head)
        if pp is not None:  # prepositional phrase: "near the house" -> "belom ka bli"
            (p_src, p_tgt), _ = self.simple_np(pp)
            prep_en, post_tg = self.rng.choice(PREPOSITIONS)
            src, tgt = src + [prep_en] + p_src, tgt + p_tgt + [post_tg]
        if rc is not None:  # relative clause on the head: "that sees the cat" -> "ke mirel ka miret"
            (o_src, o_tgt), _ = self.simple_np(rc)
            v_en, v_tg = verb(self.rng.randrange(len(VERBS)), plural)
            src, tgt = src + [RELATIVE[0], v_en] + o_src, tgt + [RELATIVE[1]] + o_tgt + [v_tg]
        return (src, tgt), plural

    def clause(self, shape: ClauseShape) -> Pair:
        (s_src, s_tgt), plural = self.np(shape[0])
        (o_src, o_tgt), _ = self.np(shape[1])
        v_en, v_tg = verb(self.rng.randrange(len(VERBS)), plural)
        return s_src + [v_en] + o_src, s_tgt + [SUBJECT] + o_tgt + [OBJECT, v_tg]

    def sentence(self, shapes: list[ClauseShape]) -> Pair:
        src, tgt = self.clause(shapes[0])
        for shape in shapes[1:]:
            c_src, c_tgt = self.clause(shape)
            src, tgt = src + [CONJ[0]] + c_src, tgt + [CONJ[1]] + c_tgt
        return src, tgt


def _sampler(cfg: TranslateConfig) -> Callable[[random.Random], Pair]:
    def sample(rng: random.Random) -> Pair:
        gen = _Generator(rng, cfg.max_adjectives)
        length = rng.randint(cfg.min_len, cfg.max_len)
        for _ in range(1000):  # every length >= 5 is reachable; this bound only guards against surprises
            shapes = gen.sentence_shape(length)
            if shapes is not None:
                return gen.sentence(shapes)
        raise ValueError(f"translate: could not generate a sentence of {length} words")

    return sample


def _lexicon(side: int) -> list[str]:
    """Every word of one side (0 = source, 1 = target), in a fixed order."""
    pairs = [CONJ, RELATIVE, *PREPOSITIONS, *DETERMINERS[False], *DETERMINERS[True], ("an", "nu")]
    for plural in (False, True):
        pairs += [noun(i, plural) for i in range(len(NOUNS))]
        pairs += [adjective(i, plural) for i in range(len(ADJECTIVES))]
        pairs += [verb(i, plural) for i in range(len(VERBS))]
    words = [p[side] for p in pairs] + ([SUBJECT, OBJECT] if side else [])
    return list(dict.fromkeys(words))


def source_words() -> list[str]:
    return _lexicon(0)


def target_words() -> list[str]:
    return _lexicon(1)


def all_tokens() -> list[str]:
    """Both languages' words: the vocabulary. The two word lists are disjoint (checked in the tests)."""
    return source_words() + target_words()


def bleu(hyps: list[list[str]], refs: list[list[str]]) -> float:
    """Corpus BLEU (sacreBLEU, 0-100) of word lists, joined by spaces and scored with its 13a tokenizer."""
    return CorpusMetric("bleu")(hyps, refs)


def _check(cfg: TranslateConfig) -> None:
    for key in ("n_train", "n_val", "n_test"):
        if getattr(cfg, key) <= 0:
            raise ValueError(f"translate: {key}={getattr(cfg, key)} must be > 0")
    if cfg.min_len < SHORTEST:
        raise ValueError(f"translate: min_len={cfg.min_len} is too short; the shortest sentence has {SHORTEST} words")
    if cfg.max_len < cfg.min_len:
        raise ValueError(f"translate: max_len={cfg.max_len} must be >= min_len={cfg.min_len}")
    if not 1 <= cfg.max_adjectives <= len(ADJECTIVES):  # with none, some lengths (e.g. 10) cannot be built
        raise ValueError(f"translate: max_adjectives={cfg.max_adjectives} must be in 1..{len(ADJECTIVES)}")
    check_tokenize(cfg.tokenize, "translate")
    check_decode(cfg.decode_ratio, cfg.decode_margin, "translate")


@TASKS.register("translate", check=_check, config=TranslateConfig, kind="seq2seq", metrics=("bleu", "chrf"),
                lengths_vary=True,  # the default training batches are length-bucketed (train.batching: auto)
                help="synthetic English-like SVO -> invented SOV language with agreement; reports BLEU and chrF")
def build_translate(cfg: TranslateConfig) -> TaskData:
    _check(cfg)
    rng = random.Random(cfg.seed)
    pool = unique_examples(_sampler(cfg), cfg.n_train + cfg.n_val + cfg.n_test, rng, "translate")
    vocab = Vocab(all_tokens())
    enc = [(vocab.encode(s), vocab.encode(t)) for s, t in pool]
    train, val, test = split_three(enc, cfg.n_train, cfg.n_val, cfg.n_test)
    return TaskData(vocab, pack(train, vocab), pack(val, vocab), pack(test, vocab),
                    metrics=text_metrics(cfg.tokenize),
                    decode=DecodeLimit(ratio=cfg.decode_ratio, margin=cfg.decode_margin))
