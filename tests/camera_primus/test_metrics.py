"""Tests for mtlnb.camera_primus.metrics: hand-computed regression triples, the vectorised DP against the scalar one, validation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from mtlnb.camera_primus import metrics

REGRESSION = Path(__file__).parents[1] / "data" / "ser_regression.json"


@pytest.fixture(scope="module")
def regression():
    data = json.loads(REGRESSION.read_text(encoding="utf-8"))
    return data["cases"], data["corpus"]


def test_edit_distance_regression(regression):
    cases, _ = regression
    for case in cases:
        ref, est = case["reference"], case["estimate"]
        assert metrics.edit_distance(est, ref) == case["edit_distance"], case["why"]
        assert metrics.edit_distance(ref, est) == case["edit_distance"], case["why"]  # symmetric


def test_vectorised_regression(regression):
    cases, corpus = regression
    refs = [c["reference"] for c in cases]
    ests = [c["estimate"] for c in cases]
    np.testing.assert_array_equal(metrics.edit_distances(ests, refs), [c["edit_distance"] for c in cases])
    np.testing.assert_allclose(metrics.sample_ser(ests, refs), [c["sample_ser"] for c in cases], atol=1e-8)
    assert metrics.ser(ests, refs) == pytest.approx(corpus["ser"], abs=1e-8)
    assert sum(len(r) for r in refs) == corpus["reference_symbols"]
    # Corpus level is not the mean of the per-sample rates (which the long estimate of case 6 inflates).
    assert metrics.sample_ser(ests, refs).mean() == pytest.approx(corpus["mean_of_sample_ser"], abs=1e-8)


def test_vectorised_matches_scalar_on_random_pairs():
    # More pairs than one batch (512) and lengths from 0 to 40, so sorting, batching and padding are exercised.
    rng = np.random.default_rng(7)
    symbols = [f"s{i}" for i in range(6)]  # a small alphabet makes partial matches frequent
    hyps = [[str(x) for x in rng.choice(symbols, rng.integers(0, 41))] for _ in range(1100)]
    refs = [[str(x) for x in rng.choice(symbols, rng.integers(0, 41))] for _ in range(1100)]
    expected = [metrics.edit_distance(h, r) for h, r in zip(hyps, refs)]
    np.testing.assert_array_equal(metrics.edit_distances(hyps, refs), expected)


def test_edit_distance_bounds():
    rng = np.random.default_rng(3)
    for _ in range(50):
        a = [str(x) for x in rng.choice(list("abc"), rng.integers(0, 12))]
        b = [str(x) for x in rng.choice(list("abc"), rng.integers(0, 12))]
        d = metrics.edit_distance(a, b)
        assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))


def test_tuples_accepted():
    assert metrics.ser((("a", "b"),), (("a", "c"),)) == 50.0


@pytest.mark.parametrize(
    "hyps, refs, message",
    [
        ([["a"]], [["a"], ["b"]], "1 hypotheses but 2 references"),
        ([], [], "no samples"),
        (["a b"], [["a", "b"]], r"hypotheses\[0\] is str"),
        ([["a"]], ["a"], r"references\[0\] is str"),
        ([["a", 3]], [["a", "b"]], r"hypotheses\[0\]\[1\] is int"),
        ([["a"]], [[]], r"references\[0\] is empty"),
        ("ab", [["a"]], "hypotheses must be a sequence"),
    ],
)
def test_ser_validation(hyps, refs, message):
    with pytest.raises(ValueError, match=message):
        metrics.ser(hyps, refs)


def test_sample_ser_rejects_empty_reference_but_edit_distances_allows_it():
    with pytest.raises(ValueError, match="empty"):
        metrics.sample_ser([["a"]], [[]])
    np.testing.assert_array_equal(metrics.edit_distances([["a"], []], [[], []]), [1, 0])


def test_speed_5000_pairs():
    # The budget: 5,000 pairs of ~50 symbols well under a second (here 2 s, for a busy shared machine).
    rng = np.random.default_rng(0)
    vocab = [f"note-{i}" for i in range(300)]
    refs = [[str(x) for x in rng.choice(vocab, rng.integers(30, 70))] for _ in range(5000)]
    hyps = [r[: len(r) // 2] + [str(x) for x in rng.choice(vocab, 5)] + r[len(r) // 2 + 3 :] for r in refs]
    start = time.perf_counter()
    metrics.ser(hyps, refs)
    assert time.perf_counter() - start < 2.0


def test_numpy_string_symbols_are_symbols():
    # list(np.array([...])) gives numpy.str_ scalars, a subclass of str: they compare equal to plain strings
    assert metrics.ser([list(np.array(["a", "b"]))], [["a", "c"]]) == 50.0
    assert metrics.edit_distance(list(np.array(["a", "b"])), ["a", "b"]) == 0
    np.testing.assert_array_equal(metrics.edit_distances([list(np.array(["x"]))], [["x", "y"]]), [1])
    with pytest.raises(ValueError, match=r"hypotheses\[0\]\[0\] is bytes"):
        metrics.ser([[b"a"]], [["a"]])


def test_edit_table_and_alignment_agree_with_the_regression_cases(regression):
    cases, _ = regression
    for case in cases:
        ref, est = case["reference"], case["estimate"]
        table = metrics.edit_table(est, ref)
        assert len(table) == len(est) + 1 and all(len(row) == len(ref) + 1 for row in table)
        assert table[-1][-1] == case["edit_distance"], case["why"]
        ops = metrics.alignment(est, ref)
        assert sum(op != "match" for op, _, _ in ops) == case["edit_distance"], case["why"]
        assert [h for _, h, _ in ops if h is not None] == est and [r for _, _, r in ops if r is not None] == ref


def test_alignment_prefers_substitution_then_deletion():
    assert metrics.alignment(["b", "a"], ["a", "b"]) == [("substitution", "b", "a"), ("substitution", "a", "b")]
    assert metrics.alignment(["a"], ["a", "a"]) == [("deletion", None, "a"), ("match", "a", "a")]
    assert metrics.alignment([], []) == []
    assert metrics.mark_differences(["a", "a"], ["a"]) == "[+a] a"


def test_pairwise_distances_equal_the_scalar_ones_beyond_one_block(monkeypatch):
    rng = np.random.default_rng(5)
    a = [[str(x) for x in rng.choice(list("abc"), rng.integers(0, 6))] for _ in range(7)]
    b = [[str(x) for x in rng.choice(list("abcd"), rng.integers(0, 8))] for _ in range(5)]
    monkeypatch.setattr(metrics, "_PAIRWISE_CELLS", 1)  # one row of ``a`` per step
    d = metrics.pairwise_edit_distances(a, b)
    assert d.shape == (7, 5) and d.dtype == np.int64
    assert d.tolist() == [[metrics.edit_distance(x, y) for y in b] for x in a]
    with pytest.raises(ValueError, match="no sequences"):
        metrics.pairwise_edit_distances([], b)
