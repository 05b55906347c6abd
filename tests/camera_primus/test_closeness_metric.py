"""The closeness-aware error beside SER: substitution costs, the weighted Levenshtein, the corpus rate."""

import itertools
import math

import numpy as np
import pytest

from mtlnb.camera_primus import metrics

# (hypothesis symbol, reference symbol, cost) under the default Closeness
COSTS = [
    ("note-C4_quarter", "note-C4_quarter", 0.0),
    ("note-C4_eighth", "note-C4_quarter", 0.25),  # right pitch, half the length
    ("note-C4_half", "note-C4_quarter", 0.25),  # twice the length
    ("note-C4_sixteenth", "note-C4_quarter", 0.5),  # a factor 4: the whole duration share
    ("note-C5_quarter", "note-C4_quarter", 0.5),  # an octave: the whole pitch share
    ("note-F#4_quarter", "note-C4_quarter", 0.25),  # 6 semitones
    ("note-C#4_quarter", "note-C4_quarter", 0.1),  # one semitone: 1/24 < the floor
    ("note-Db4_quarter", "note-C#4_quarter", 0.1),  # enharmonic: 0 semitones, the floor
    ("note-C4_quarter_fermata", "note-C4_quarter", 0.1),
    ("note-C4_quarter.", "note-C4_quarter", 0.5 * math.log2(1.5) / 2),  # a dot: x1.5
    ("rest-quarter", "rest-half", 0.25),
    ("rest-quarter", "note-C4_quarter", 0.5),  # a rest for a note: the whole pitch share
    ("note-C2_whole", "note-C6_sixteenth", 1.0),
    ("clef-F4", "note-C4_quarter", 1.0),
    ("keySignature-DM", "keySignature-AM", 1.0),
    ("barline", "tie", 1.0),
    ("not-a-token", "note-C4_quarter", 1.0),
]


@pytest.mark.parametrize("hyp, ref, cost", COSTS)
def test_substitution_costs(hyp, ref, cost):
    assert metrics.substitution_cost(hyp, ref) == pytest.approx(cost)
    assert metrics.substitution_cost(ref, hyp) == pytest.approx(cost)  # symmetric


def _brute(h, r, closeness=metrics.CLOSENESS):
    d = [[0.0] * (len(r) + 1) for _ in range(len(h) + 1)]
    for i in range(len(h) + 1):
        for j in range(len(r) + 1):
            if i == 0 or j == 0:
                d[i][j] = float(i + j)
                continue
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + metrics.substitution_cost(h[i - 1], r[j - 1], closeness))
    return d[-1][-1]


ALPHABET = ["clef-G2", "barline", "note-C4_quarter", "note-D4_quarter", "note-C4_eighth", "rest-quarter",
            "note-C5_half.", "tie"]


def test_distance_agrees_with_a_plain_dynamic_programme():
    rng = np.random.default_rng(0)
    for _ in range(60):
        h = list(rng.choice(ALPHABET, size=rng.integers(0, 9)))
        r = list(rng.choice(ALPHABET, size=rng.integers(0, 9)))
        assert metrics.closeness_distance(h, r) == pytest.approx(_brute(h, r))


def test_never_above_the_edit_distance_and_zero_only_when_equal():
    rng = np.random.default_rng(1)
    for _ in range(60):
        h = list(rng.choice(ALPHABET, size=rng.integers(0, 8)))
        r = list(rng.choice(ALPHABET, size=rng.integers(1, 8)))
        d = metrics.closeness_distance(h, r)
        assert d <= metrics.edit_distance(h, r) + 1e-12
        assert (d == 0) == (h == r)


def test_near_miss_counts_less_than_a_far_one_where_ser_cannot_tell():
    ref = ["clef-G2", "note-C4_quarter", "note-E4_quarter", "barline"]
    near = ["clef-G2", "note-C4_quarter", "note-F4_quarter", "barline"]
    far = ["clef-G2", "note-C4_quarter", "clef-F4", "barline"]
    assert metrics.ser([near], [ref]) == metrics.ser([far], [ref])
    assert metrics.closeness_ser([near], [ref]) < metrics.closeness_ser([far], [ref])
    assert metrics.closeness_ser([far], [ref]) == pytest.approx(metrics.ser([far], [ref]))


def test_corpus_rate_is_total_cost_over_total_length():
    refs = [["note-C4_quarter", "barline"], ["rest-half"]]
    hyps = [["note-C4_eighth", "barline"], []]
    assert metrics.closeness_ser(hyps, refs) == pytest.approx(100 * (0.25 + 1) / 3)
    assert metrics.sample_closeness_ser(hyps, refs) == pytest.approx([12.5, 100.0])


def test_other_closeness_constants():
    strict = metrics.Closeness(floor=1.0)  # every substitution a full error: SER again
    for h, r in itertools.product(ALPHABET, repeat=2):
        assert metrics.substitution_cost(h, r, strict) == (0.0 if h == r else 1.0)
    with pytest.raises(ValueError, match="spans"):
        metrics.Closeness(pitch_span=0)
    with pytest.raises(ValueError, match="pitch_share"):
        metrics.Closeness(pitch_share=1.5)


def test_inputs_are_validated():
    with pytest.raises(ValueError, match="split the line first"):
        metrics.closeness_distance("note-C4_quarter barline", ["barline"])
    with pytest.raises(ValueError, match="empty"):
        metrics.closeness_ser([["barline"]], [[]])
    with pytest.raises(ValueError, match="hypotheses"):
        metrics.closeness_distances([["barline"]], [])
