"""Stratified subsets: sizes as the thesis's random subset, proportional shares, determinism, representation."""

import numpy as np
import pytest

from mtlnb.camera_primus.corpus.primus import Fold, subsample_fold
from mtlnb.camera_primus.corpus import strata


def _tokens(i: int) -> list[str]:
    clef = "clef-G2" if i % 4 else "clef-F4"  # a quarter in F4
    key = ["keySignature-DM"] if i % 3 == 0 else []
    return [clef, *key, "timeSignature-3/4", *(["note-C4_quarter"] * (5 + i % 7)), "barline"]


IDS = [f"s{i:03d}" for i in range(300)]
TOKENS = {sid: _tokens(i) for i, sid in enumerate(IDS)}


def test_attributes_and_stratum():
    edges = (6.0, 9.0)
    a = strata.attributes(["clef-C1", "timeSignature-C", "note-C4_quarter"], edges)
    assert a == {"clef": "C1", "key": "none", "meter": "C", "length": "short"}
    assert strata.stratum(TOKENS["s000"], edges) == "F4|DM|3/4|medium"


def test_sizes_equal_the_random_subsets():
    fold = Fold(0, tuple(IDS[:180]), tuple(IDS[180:240]), tuple(IDS[240:]))
    rand = subsample_fold(fold, 0.6, 42)
    strat = strata.stratified_subsample_fold(fold, 0.6, TOKENS.__getitem__, 42)
    assert strat.sizes() == rand.sizes() == (108, 36, 36)
    for split in ("train", "val", "test"):
        assert set(getattr(strat, split)) <= set(getattr(fold, split))
    assert strat == strata.stratified_subsample_fold(fold, 0.6, TOKENS.__getitem__, 42)  # seeded
    assert strat != strata.stratified_subsample_fold(fold, 0.6, TOKENS.__getitem__, 7)
    assert strata.stratified_subsample_fold(fold, 1.0, TOKENS.__getitem__) is fold


def test_each_stratum_gets_its_proportional_share():
    ids = [f"a{i}" for i in range(50)] + [f"b{i}" for i in range(30)] + [f"c{i}" for i in range(3)]
    groups = {sid: sid[0] for sid in ids}
    chosen = strata.stratified_sample(ids, groups, 0.6, np.random.default_rng(0))
    assert len(chosen) == round(0.6 * 83) == 50
    counts = {g: sum(1 for sid in chosen if sid[0] == g) for g in "abc"}
    assert counts["a"] == 30 and counts["b"] == 18 and counts["c"] == 2  # floors 30, 18, 1; one slot left to c


def test_stratified_represents_the_attributes_exactly_where_strata_are_large():
    chosen = strata.stratified_sample(IDS, strata.split_strata(IDS, TOKENS.__getitem__), 0.5,
                                      np.random.default_rng(3))
    tv = strata.representation(chosen, IDS, TOKENS.__getitem__)
    assert list(tv.index) == list(strata.ATTRIBUTES)
    assert tv["clef"] < 0.02 and tv["key"] < 0.02 and tv["meter"] == 0.0


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="fraction"):
        strata.stratified_sample(IDS, {}, 0.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="without a stratum"):
        strata.stratified_sample(IDS, {}, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="none of the population"):
        strata.representation(["x"], IDS, TOKENS.__getitem__)
