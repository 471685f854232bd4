"""SCAN's add-primitive splits: the official sets of (command, actions) pairs, generated from the grammar.

Counts are the paper's (REFERENCES.md): jump 13,204 distinct training commands / 7,706 test; turn left
19,702 / 1,208. Actions are checked with the independent interpreter of test_tasks_extra.
"""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest
from test_tasks_extra import reference_scan, rows

from ablate.tasks import TaskData, build_task
from ablate.tasks.scan import ScanConfig, primitive_copies

# split -> (primitive words, distinct train+val commands, test commands)
OFFICIAL = {"addprim_jump": ("jump", 13204, 7706), "addprim_turn_left": ("turn left", 19702, 1208)}


def has(words: list[str], primitive: str) -> bool:
    return f" {primitive} " in f" {' '.join(words)} "


@cache
def full(split: str) -> TaskData:
    return build_task(ScanConfig(split=split))


@pytest.mark.parametrize("split", list(OFFICIAL))
def test_addprim_split_is_the_official_one(split):
    prim, n_train, n_test = OFFICIAL[split]
    data = full(split)
    train, val, test = rows(data, "train"), rows(data, "val"), rows(data, "test")
    seen = {(tuple(s), tuple(t)) for s, t in train + val}
    assert len(seen) == n_train and len({s for s, _ in seen}) == n_train
    assert len(test) == n_test and len({tuple(s) for s, _ in test}) == n_test
    # Every test command holds the primitive; no training command does, except the bare primitive itself.
    assert all(has(s, prim) and s != prim.split() for s, _ in test)
    assert [s for s, _ in seen if has(list(s), prim)] == [tuple(prim.split())]
    # Train and test together are the whole grammar, with the right meanings.
    assert len(seen) + n_test == 20910
    assert not [s for s, t in train + val + test if t != reference_scan(s)]


@pytest.mark.parametrize("split", list(OFFICIAL))
def test_bare_primitive_is_a_tenth_of_train_and_never_in_val(split):
    prim = OFFICIAL[split][0].split()
    data = full(split)
    counts = Counter(tuple(s) for s, _ in rows(data, "train"))
    bare = counts.pop(tuple(prim))
    assert set(counts.values()) == {1}  # every other command once
    assert bare / len(data.train) == pytest.approx(0.1, abs=0.001)
    assert all(s != prim for s, _ in rows(data, "val"))
    assert len(data.val) == 1000


def test_primitive_share_matches_the_official_files_counts():
    # The official jump file: 13,203 other commands; 10% of the file is the bare primitive.
    n = primitive_copies(13203, 0.1)
    assert n == 1467 and n / (n + 13203) == pytest.approx(0.1, abs=1e-4)
    assert primitive_copies(10, 0.0) == 1  # the primitive is always seen at least once


def test_addprim_sizes_and_share_options():
    data = build_task(ScanConfig(split="addprim_turn_left", n_train=90, n_val=50, n_test=100, primitive_share=0.25))
    train = rows(data, "train")
    bare = sum(s == ["turn", "left"] for s, _ in train)
    assert (len(train) - bare, bare, len(data.val), len(data.test)) == (90, 30, 50, 100)
    with pytest.raises(ValueError, match="primitive_share=1.0"):
        build_task(ScanConfig(split="addprim_jump", primitive_share=1.0))
    with pytest.raises(ValueError, match="addprim_jump"):
        build_task(ScanConfig(split="addprim"))
    with pytest.raises(ValueError, match="primitive_share=0.2 applies only to the addprim splits"):
        build_task(ScanConfig(split="simple", primitive_share=0.2))
