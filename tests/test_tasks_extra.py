"""scan, coref, listops, translate, tsv: determinism, disjoint splits, sizes, and each task's own facts.

Where a task computes answers (SCAN actions, ListOps values, translations, coref
labels), the test checks them with its own small, independent implementation.
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from functools import cache

import pytest
import torch
from omegaconf import OmegaConf

from ablate.tasks import TASKS, TaskData, Vocab, build_task, task_config_class
from ablate.tasks.coref import ACTIONS as COREF_ACTIONS
from ablate.tasks.coref import AGENT_ADJECTIVES, AGENTS, CorefConfig, sampler
from ablate.tasks.listops import ListOpsConfig, median
from ablate.tasks.scan import ScanConfig, all_commands, interpret
from ablate.tasks.translate import (
    ADJECTIVES,
    NOUNS,
    PREPOSITIONS,
    VERBS,
    TranslateConfig,
    bleu,
    source_words,
    target_words,
)
from ablate.tasks.tsv import TsvConfig, VocabConfig

NEW_TASKS = {"scan": "seq2seq", "coref": "classification", "listops": "classification",
             "translate": "seq2seq", "tsv": "seq2seq"}


# ---------------------------------------------------------------- helpers


def rows(data: TaskData, split: str) -> list[tuple[list[str], list[str]]]:
    """Decoded (source, target) tokens of every example of a split."""
    s = data.splits[split]
    return [(data.src_vocab.decode(s.src[i, : s.src_len[i]].tolist(), strip=False),
             data.vocab.decode(s.tgt[i, : s.tgt_len[i]].tolist()))
            for i in range(len(s))]


def sources(data: TaskData, split: str) -> set[tuple[str, ...]]:
    if data.splits[split].src_text is not None:  # tsv: the raw text (words outside train's vocabulary are <unk>)
        return {tuple(src.split()) for src in data.splits[split].src_text}
    return {tuple(src) for src, _ in rows(data, split)}


def same_data(a: TaskData, b: TaskData) -> bool:
    if a.vocab.itos != b.vocab.itos or a.src_vocab.itos != b.src_vocab.itos:
        return False
    for name in ("train", "val", "test"):
        x, y = a.splits[name], b.splits[name]
        tensors = [(x.src, y.src), (x.src_len, y.src_len), (x.tgt, y.tgt), (x.tgt_len, y.tgt_len)]
        tensors += [(x.extra[k], y.extra.get(k)) for k in x.extra]
        if set(x.extra) != set(y.extra) or not all(u.shape == v.shape and torch.equal(u, v) for u, v in tensors):
            return False
    return True


def write_tsv(path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


GOOD_TSV = [f"x{i} y{i % 7} z\tout{i} w{i % 3}" for i in range(60)]


@pytest.fixture
def good_tsv(tmp_path) -> str:
    return write_tsv(tmp_path / "pairs.tsv", GOOD_TSV)


# Small configs of every task, one factory per case (tsv needs a file).
CASES = {
    "scan_simple": lambda p: ScanConfig(n_train=400, n_val=100, n_test=200),
    "scan_length": lambda p: ScanConfig(split="length", n_train=400, n_val=100, n_test=200),
    "coref_random": lambda p: CorefConfig(n_train=300, n_val=50, n_test=100),
    "coref_heldout": lambda p: CorefConfig(split="heldout_adjectives", n_train=300, n_val=50, n_test=100),
    "listops": lambda p: ListOpsConfig(n_train=300, n_val=50, n_test=100),
    "translate": lambda p: TranslateConfig(n_train=300, n_val=50, n_test=100),
    "tsv_word": lambda p: TsvConfig(path=p, n_train=40, n_val=6, n_test=6),
    "tsv_char": lambda p: TsvConfig(path=p, tokens="char", n_train=40, n_val=6, n_test=6),
}


# ---------------------------------------------------------------- all tasks


def test_registered_with_kind_and_structured_config():
    for name, kind in NEW_TASKS.items():
        meta = TASKS.meta(name)
        assert meta["kind"] == kind and meta["help"]
        cfg = OmegaConf.structured(task_config_class(name))
        assert cfg.name == name  # the default names the task, so build_task(Config()) works


@pytest.mark.parametrize("case", CASES)
def test_deterministic_sizes_disjoint_roundtrip(case, good_tsv):
    cfg = CASES[case](good_tsv)
    data = build_task(cfg)
    assert same_data(data, build_task(CASES[case](good_tsv)))
    cfg.seed = 1
    assert not same_data(data, build_task(cfg))

    assert [len(data.splits[s]) for s in ("train", "val", "test")] == [cfg.n_train, cfg.n_val, cfg.n_test]
    tr, va, te = (sources(data, s) for s in ("train", "val", "test"))
    assert len(tr) == cfg.n_train and not (tr & va) and not (tr & te) and not (va & te)

    vocab = data.src_vocab
    for split in data.splits.values():
        for i in range(len(split)):
            ids = split.src[i, : split.src_len[i]].tolist()
            assert vocab.encode(vocab.decode(ids, strip=False)) == ids
            assert (split.src[i, split.src_len[i]:] == vocab.pad).all()
    if data.kind == "classification":
        assert (data.train.tgt_len == 1).all() and data.train.tgt.size(1) == 1
    else:
        ends = data.train.tgt[torch.arange(len(data.train)), data.train.tgt_len - 1]
        assert (ends == data.vocab.eos).all()


def test_vocab_save_load(tmp_path):
    vocab = build_task(CASES["translate"](None)).vocab
    vocab.save(tmp_path / "v.json")
    assert Vocab.load(tmp_path / "v.json").itos == vocab.itos


@pytest.mark.parametrize("cfg, words", [
    (ScanConfig(split="random"), ["split", "random", "simple", "length"]),
    (CorefConfig(split="heldout_nouns"), ["split", "heldout_nouns", "heldout_adjectives"]),
    (ListOpsConfig(max_args=1), ["max_args", "1"]),
    (ListOpsConfig(min_len=500), ["min_len", "500"]),
    (TranslateConfig(min_len=3), ["min_len", "3"]),
    (TranslateConfig(min_len=20, max_len=10), ["max_len", "10"]),
    (TsvConfig(path="x.tsv", tokens="wordpiece"), ["tokens", "wordpiece", "word", "char", "bpe", "unigram"]),
    (TsvConfig(path="x.tsv", tokens="bpe", vocab=VocabConfig(min_freq=2)), ["min_freq", "vocab_size"]),
    (TsvConfig(path="x.tsv", vocab_size=100), ["vocab_size", "bpe"]),
    (TsvConfig(path="x.tsv", vocab=VocabConfig(max_size=-1)), ["max_size", "-1"]),
    (TsvConfig(path="x.tsv", train="t.tsv"), ["path", "train"]),
    (TsvConfig(val="v.tsv"), ["train"]),
    (TsvConfig(path="x.tsv", val_frac=0.5, test_frac=0.5), ["val_frac", "test_frac"]),
    (TsvConfig(), ["path"]),
])
def test_bad_options_name_key_and_value(cfg, words):
    with pytest.raises(ValueError) as e:
        build_task(cfg)
    assert cfg.name in str(e.value)
    for w in words:
        assert w in str(e.value)


# ---------------------------------------------------------------- scan

PRIM = {"walk": ["I_WALK"], "look": ["I_LOOK"], "run": ["I_RUN"], "jump": ["I_JUMP"], "turn": []}
TURN = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}


def reference_scan(words: list[str]) -> list[str]:
    """An independent SCAN interpreter, straight from the paper's semantics."""
    if "and" in words:
        i = words.index("and")
        return reference_scan(words[:i]) + reference_scan(words[i + 1:])
    if "after" in words:
        i = words.index("after")
        return reference_scan(words[i + 1:]) + reference_scan(words[:i])
    if words[-1] in ("twice", "thrice"):
        return reference_scan(words[:-1]) * (2 if words[-1] == "twice" else 3)
    if len(words) == 1:
        return PRIM[words[0]]
    x, d = words[0], words[-1]
    if len(words) == 2:
        return [TURN[d]] + PRIM[x]
    if words[1] == "opposite":
        return [TURN[d], TURN[d]] + PRIM[x]
    assert words[1] == "around"
    return ([TURN[d]] + PRIM[x]) * 4


@cache
def scan_full(split: str) -> TaskData:
    return build_task(ScanConfig(split=split))


def test_scan_space_is_exactly_the_papers():
    cmds = all_commands()
    assert len(cmds) == 20910 and len({tuple(w) for w, _ in cmds}) == 20910
    assert max(len(w) for w, _ in cmds) == 9 and max(len(a) for _, a in cmds) == 48
    assert not [w for w, a in cmds if a != reference_scan(w)]
    assert not any(len(a) == 23 for _, a in cmds)  # why the length split has a gap between 22 and 24


@pytest.mark.parametrize("command, actions", [
    ("jump twice after walk left", "I_TURN_LEFT I_WALK I_JUMP I_JUMP"),
    ("turn around right", "I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT"),
    ("walk opposite left", "I_TURN_LEFT I_TURN_LEFT I_WALK"),
    ("look around left thrice", " ".join(["I_TURN_LEFT I_LOOK"] * 12)),
    ("turn opposite right", "I_TURN_RIGHT I_TURN_RIGHT"),
    ("run and turn left twice", "I_RUN I_TURN_LEFT I_TURN_LEFT"),
    ("jump", "I_JUMP"),
])
def test_scan_interpretation(command, actions):
    assert interpret(command) == actions.split()


def test_scan_simple_split_is_80_20_of_everything():
    data = scan_full("simple")
    assert (len(data.train) + len(data.val), len(data.test)) == (16728, 4182)
    assert len(data.val) == 1000
    assert not [s for s, t in rows(data, "test")[:500] if t != reference_scan(s)]


def test_scan_length_split():
    data = scan_full("length")
    assert (len(data.train) + len(data.val), len(data.test)) == (16990, 3920)  # the paper's split sizes
    assert max(data.train.tgt_len.max(), data.val.tgt_len.max()) - 1 <= 22  # tgt_len counts <eos>
    assert data.test.tgt_len.min() - 1 >= 24 and data.test.tgt_len.max() - 1 == 48


def test_scan_asking_for_too_much_is_an_error():
    with pytest.raises(ValueError, match="n_test=5000.*3920"):
        build_task(ScanConfig(split="length", n_test=5000))


# ---------------------------------------------------------------- coref

ALL_OBJECT_ADJS = {a for act in COREF_ACTIONS for a in act.object_adjectives}


def nouns_of(src: list[str]) -> list[str]:
    """The two nouns, in sentence order: each follows a "the"."""
    return [src[i + 1] for i, w in enumerate(src) if w == "the"]


def test_coref_seed_sentences_are_generated_with_the_right_label():
    sample = sampler(AGENT_ADJECTIVES, {a.base: a.object_adjectives for a in COREF_ACTIONS})
    want = {"the animal didn't cross the street because it was too tired": "animal",
            "the animal didn't cross the street because it was too wide": "street"}
    rng, found = random.Random(0), {}
    for _ in range(500_000):
        src, label = sample(rng)
        if " ".join(src) in want:
            found[" ".join(src)] = label[0]
            if len(found) == 2:
                break
    assert found == want


def test_coref_labels_it_pos_and_both_orders():
    data = build_task(CorefConfig())
    assert data.kind == "classification"
    order = Counter()
    for name, split in data.splits.items():
        assert (split.src[torch.arange(len(split)), split.extra["it_pos"]] == data.vocab.stoi["it"]).all()
        for src, (label,) in rows(data, name):
            first, second = nouns_of(src)
            adjective = src[-1]
            agent = first if first in AGENTS else second
            obj = second if agent == first else first
            assert obj not in AGENTS and src[-4:-1] == ["it", "was", "too"]
            assert label == (agent if adjective in AGENT_ADJECTIVES else obj)
            assert adjective in AGENT_ADJECTIVES or adjective in ALL_OBJECT_ADJS
            order[(first == agent, label == first)] += 1
    # Agent first and object first both occur, each with both answers: "the first noun" is no shortcut.
    assert len(order) == 4 and min(order.values()) > 0.15 * sum(order.values())


def test_coref_heldout_adjectives_absent_from_training():
    data = build_task(CorefConfig(split="heldout_adjectives"))
    seen = {w for name in ("train", "val") for src, _ in rows(data, name) for w in src}
    test_adjs = {src[-1] for src, _ in rows(data, "test")}
    assert test_adjs and not (test_adjs & seen)
    assert test_adjs & set(AGENT_ADJECTIVES) and test_adjs & ALL_OBJECT_ADJS  # both kinds of answer tested
    labels = {label for _, (label,) in rows(data, "test")}
    assert labels & set(AGENTS) and labels - set(AGENTS)


# ---------------------------------------------------------------- listops


def reference_listops(tokens: list[str]) -> int:
    """Evaluate by translating to a Python expression; MED via statistics.median, truncated as LRA's int()."""
    fns = {"[MIN": "min_(", "[MAX": "max_(", "[MED": "med_(", "[SM": "sm_("}
    expr = "".join(fns.get(t, ")," if t == "]" else t + ",") for t in tokens)
    env = {"min_": lambda *a: min(a), "max_": lambda *a: max(a), "med_": lambda *a: int(statistics.median(a)),
           "sm_": lambda *a: sum(a) % 10}
    return eval(expr, env)[0]


def test_listops_median_is_lras():
    assert median([3, 1, 2]) == 2 and median([1, 4]) == 2 and median([1, 2, 3, 9]) == 2 and median([0, 9]) == 4


def test_listops_values_lengths_and_depth():
    cfg = ListOpsConfig(n_train=400, n_val=50, n_test=100)
    data = build_task(cfg)
    labels = Counter()
    for name in data.splits:
        for src, (label,) in rows(data, name):
            assert cfg.min_len <= len(src) <= cfg.max_len
            assert int(label) == reference_listops(src)
            depth, deepest = 0, 0
            for t in src:
                depth += t.startswith("[") - (t == "]")
                deepest = max(deepest, depth)
            assert depth == 0 and 1 <= deepest < cfg.max_depth  # operators only at depth < max_depth
            labels[label] += 1
    assert set(labels) == {str(d) for d in range(10)}  # all 10 classes occur
    assert set(data.vocab.itos[5:]) == {"[MIN", "[MAX", "[MED", "[SM", "]", *map(str, range(10))}


# ---------------------------------------------------------------- translate

EN_NOUN = {w: (stem, plural) for sg, pl, stem in NOUNS for w, plural in ((sg, False), (pl, True))}
EN_ADJ = dict(ADJECTIVES)
EN_VERB = {w: (stem, plural) for sg, pl, stem in VERBS for w, plural in ((sg, False), (pl, True))}
EN_PREP = dict(PREPOSITIONS)


class ReferenceTranslator:
    """Parse the English-like source and write the target, independently of the generator."""

    def __init__(self, words: list[str]):
        self.words, self.i = words, 0

    def take(self) -> str:
        self.i += 1
        return self.words[self.i - 1]

    def peek(self) -> str | None:
        return self.words[self.i] if self.i < len(self.words) else None

    def simple_np(self) -> tuple[list[str], bool]:
        det = {"the": "ka", "a": "nu", "an": "nu", "some": "nu"}[self.take()]
        adjs = []
        while self.peek() in EN_ADJ:
            adjs.append(EN_ADJ[self.take()])
        stem, plural = EN_NOUN[self.take()]
        noun = stem + ("i" if plural else "")
        return [noun] + [a + ("e" if plural else "a") for a in reversed(adjs)] + [det], plural

    def verb(self, plural: bool) -> str:
        stem, verb_plural = EN_VERB[self.take()]
        assert verb_plural == plural, "the source verb must agree too"
        return stem + ("on" if plural else "et")

    def np(self) -> tuple[list[str], bool]:
        out, plural = self.simple_np()
        if self.peek() in EN_PREP:
            post = EN_PREP[self.take()]
            out += self.simple_np()[0] + [post]
        if self.peek() == "that":
            self.take()
            verb = self.verb(plural)
            out += ["ke"] + self.simple_np()[0] + [verb]
        return out, plural

    def sentence(self) -> list[str]:
        out: list[str] = []
        while True:
            subj, plural = self.np()
            verb = self.verb(plural)
            out += subj + ["ga"] + self.np()[0] + ["o", verb]
            if self.peek() is None:
                return out
            assert self.take() == "and"
            out.append("to")


def reference_translate(sentence: str) -> str:
    return " ".join(ReferenceTranslator(sentence.split()).sentence())


def test_translate_hand_checked_sov_example():
    # subject "dog" -> vask, object "cat" -> mirel, verb last with singular agreement (-et), adjective after noun.
    assert reference_translate("the big dog sees a cat") == "vask groma ka ga mirel nu o miret"
    assert reference_translate("some dogs see an old cat") == "vaski nu ga mirel sena nu o miron"


def test_translate_every_pair_follows_the_rules():
    cfg = TranslateConfig(n_train=400, n_val=50, n_test=100)
    data = build_task(cfg)
    lengths = Counter()
    for name in data.splits:
        for src, tgt in rows(data, name):
            assert " ".join(tgt) == reference_translate(" ".join(src))
            lengths[len(src)] += 1
    assert set(lengths) == set(range(cfg.min_len, cfg.max_len + 1))  # lengths drawn across the whole range
    # SOV: in one-clause sentences the target ends in object marker + verb; the source ends in a noun.
    verb_forms = {stem + suffix for _, _, stem in VERBS for suffix in ("et", "on")}
    one_clause = [(s, t) for s, t in rows(data, "train") if "and" not in s]
    assert one_clause and all(t[-2] == "o" and t[-1] in verb_forms and s[-1] in EN_NOUN for s, t in one_clause)


def test_translate_lexicons_disjoint_and_unambiguous():
    src, tgt = source_words(), target_words()
    assert not set(src) & set(tgt)
    forms = [stem + suffix for _, _, stem in NOUNS for suffix in ("", "i")]
    forms += [stem + suffix for _, stem in ADJECTIVES for suffix in ("a", "e")]
    forms += [stem + suffix for _, _, stem in VERBS for suffix in ("et", "on")]
    assert len(forms) == len(set(forms)) and set(forms) <= set(tgt)


def test_translate_bleu():
    data = build_task(CASES["translate"](None))
    assert set(data.metrics) == {"bleu", "chrf"}
    refs = [t for _, t in rows(data, "test")]
    assert data.metrics["bleu"](refs, refs) == pytest.approx(100.0)
    shuffled = refs[1:] + refs[:1]
    assert bleu(shuffled, refs) < 50.0
    half = [r[: len(r) // 2] for r in refs]
    assert bleu(shuffled, refs) < bleu(half, refs) < 100.0
    with pytest.raises(ValueError):
        bleu(refs[:-1], refs)


# ---------------------------------------------------------------- tsv


def test_tsv_word_file_loads_everything(good_tsv):
    data = build_task(TsvConfig(path=good_tsv))
    assert (len(data.train), len(data.val), len(data.test)) == (48, 6, 6)
    got = {s + "\t" + t for split in data.splits.values() for s, t in zip(split.src_text, split.tgt_text)}
    assert got == set(GOOD_TSV)
    # the training split's ids decode to its text exactly (the vocabularies come from it)
    assert {" ".join(s) + "\t" + " ".join(t) for s, t in rows(data, "train")} == {
        s + "\t" + t for s, t in zip(data.train.src_text, data.train.tgt_text)}
    assert "bleu" in data.metrics


def test_tsv_char_tokens(tmp_path):
    path = write_tsv(tmp_path / "c.tsv", [f"ab {i}\tba{i}" for i in range(20)])
    data = build_task(TsvConfig(path=path, tokens="char"))
    pairs = {tuple(s): t for s, t in rows(data, "train")}
    src = next(s for s in data.train.src_text if s.startswith("ab 1"))
    assert pairs[tuple(src.replace(" ", "▁"))] == list(src.replace("ab ", "ba"))
    assert sum(len(s) for s in data.splits.values()) == 20
    assert set(data.metrics) == {"bleu", "chrf"}  # on the detokenized text
    words = [["a", "▁", "b", "▁", "c", "▁", "d"]]
    assert data.metrics["bleu"](words, words) == pytest.approx(100.0)


def test_tsv_duplicates_and_shared_sources(tmp_path):
    lines = [f"s{i}\tt{i}" for i in range(30)] + ["s0\tt0", "s1\tother"] + ["", "   "]  # blank lines are skipped
    data = build_task(TsvConfig(path=write_tsv(tmp_path / "d.tsv", lines)))
    all_rows = [(s, t) for split in data.splits.values() for s, t in zip(split.src_text, split.tgt_text)]
    assert len(all_rows) == 31 and ("s0", "t0") in all_rows  # the identical line kept once
    split_of = {name: sources(data, name) for name in data.splits}
    assert sum(("s1",) in srcs for srcs in split_of.values()) == 1  # both s1 lines in one split


def test_tsv_sizes_are_exact_or_an_error(good_tsv):
    data = build_task(TsvConfig(path=good_tsv, n_train=10, n_val=2, n_test=3))
    assert (len(data.train), len(data.val), len(data.test)) == (10, 2, 3)
    with pytest.raises(ValueError, match="n_train=100"):
        build_task(TsvConfig(path=good_tsv, n_train=100))


@pytest.mark.parametrize("lines, line_no, what", [
    (["a\tb", "no tab here"], 2, "no tab"),
    (["a\tb", "a\tb\tc"], 2, "2 tabs"),
    (["a\tb", "", "\tb"], 3, "source is empty"),
    (["a\tb", "a\t  "], 2, "target is empty"),
    (["a <eos>\tb"], 1, "<eos>"),
])
def test_tsv_bad_lines_name_file_and_line(tmp_path, lines, line_no, what):
    path = write_tsv(tmp_path / "bad.tsv", lines)
    with pytest.raises(ValueError) as e:
        build_task(TsvConfig(path=path))
    assert f"{path}:{line_no}" in str(e.value) and what in str(e.value)


def test_tsv_bad_files(tmp_path):
    missing = str(tmp_path / "nope.tsv")
    with pytest.raises(ValueError, match="not found") as e:
        build_task(TsvConfig(path=missing))
    assert missing in str(e.value)
    empty = write_tsv(tmp_path / "empty.tsv", [])
    with pytest.raises(ValueError, match="no source<TAB>target lines") as e:
        build_task(TsvConfig(path=empty))
    assert empty in str(e.value)
    latin = tmp_path / "latin.tsv"
    latin.write_bytes(b"a\tb\ncaf\xe9\tx\n")
    with pytest.raises(ValueError, match="UTF-8") as e:
        build_task(TsvConfig(path=str(latin)))
    assert f"{latin}:2" in str(e.value)
    tiny = write_tsv(tmp_path / "tiny.tsv", ["a\tb", "c\td"])
    with pytest.raises(ValueError, match="too few"):
        build_task(TsvConfig(path=tiny))
