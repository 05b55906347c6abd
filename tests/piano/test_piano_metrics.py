"""Framewise P/R/F1 and R² (paper Eq. 1–6), the note decoder and note-level F1, against hand-computed data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from mtlnb.piano import metrics as M

DATA = json.loads((Path(__file__).parents[1] / "data" / "piano_metrics_regression.json").read_text())


@pytest.mark.parametrize("case", DATA["framewise_prf"], ids=lambda c: c["name"])
def test_framewise_prf_regression(case):
    ref, est, thr, exp = case["reference"], case["estimate"], case["threshold"], case["expected"]
    assert M.framewise_counts(ref, est, thr) == (exp["tp"], exp["fp"], exp["fn"])
    assert M.framewise_prf(ref, est, thr) == pytest.approx((exp["precision"], exp["recall"], exp["f1"]), abs=1e-12)


@pytest.mark.parametrize("case", DATA["r2"], ids=lambda c: c["name"])
def test_r2_regression(case):
    value = M.r2_score(case["reference"], case["estimate"])
    if case["expected"] is None:
        assert math.isnan(value)
    else:
        assert value == pytest.approx(case["expected"], abs=1e-12)


def test_r2_matches_sklearn_variance_weighted_where_available():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    ref = rng.random((50, 4))
    est = ref + 0.1 * rng.standard_normal((50, 4))
    assert M.r2_score(ref, est) == pytest.approx(
        sklearn_metrics.r2_score(ref, est, multioutput="variance_weighted"), abs=1e-12)


def test_accumulator_per_piece_and_micro_in_any_order():
    acc_data = DATA["accumulator"]
    rows = []  # (piece, binary ref row, binary est row) and the regression rows, interleaved across pieces
    for k, piece in enumerate(acc_data["pieces"]):
        rows += [(k, "b", r, e) for r, e in zip(piece["binary_reference"], piece["binary_estimate"])]
        rows += [(k, "r", r, e) for r, e in zip(piece["regression_reference"], piece["regression_estimate"])]
    rng = np.random.default_rng(1)
    acc = M.FramewiseAccumulator()
    for i in rng.permutation(len(rows)):  # one row at a time, shuffled: pooling must not depend on the order
        k, kind, r, e = rows[i]
        task = "onsets" if kind == "b" else "velocity"
        acc.update({task: np.array([e])}, {task: np.array([r])}, np.array([k]))
    res = acc.result()
    exp = acc_data["expected"]
    for key in ("f1", "precision", "recall", "f1_micro", "precision_micro", "recall_micro"):
        assert res[f"onsets_{key}"] == pytest.approx(exp[key], abs=1e-12), key
    assert res["velocity_r2"] == pytest.approx(exp["r2"], abs=1e-12)
    assert res["velocity_r2_micro"] == pytest.approx(exp["r2_micro"], abs=1e-12)


def test_accumulator_leaves_pieces_with_undefined_r2_out_of_the_mean():
    acc = M.FramewiseAccumulator()
    acc.update({"sustain": np.array([[0.1], [0.3]])}, {"sustain": np.array([[0.3], [0.3]])}, np.array([0, 0]))
    acc.update({"sustain": np.array([[0.0], [1.0]])}, {"sustain": np.array([[0.0], [0.5]])}, np.array([1, 1]))
    res = acc.result()
    # piece 0 is constant (undefined); piece 1: SSE 0.25, SST 0.125 -> R2 = -1
    assert res["sustain_r2"] == pytest.approx(-1.0)
    # micro: refs 0.3, 0.3, 0, 0.5 (mean 0.275): SST 2·0.025² + 0.275² + 0.225² = 0.1275; SSE 0.2² + 0.5² = 0.29
    assert res["sustain_r2_micro"] == pytest.approx(1 - 0.29 / 0.1275)


def test_metric_inputs_are_validated():
    with pytest.raises(ValueError, match="differ in shape"):
        M.framewise_prf(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        M.r2_score([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="piece ids"):
        M.FramewiseAccumulator().update({"onsets": np.zeros((2, 1))}, {"onsets": np.zeros((2, 1))}, np.zeros(3))


def test_decode_notes_regression():
    case = DATA["decode_notes"]
    intervals, pitches, velocities = M.decode_notes(case["onsets"], case["frames"], case["velocity"],
                                                    threshold=case["threshold"], fps=case["fps"])
    np.testing.assert_allclose(intervals, case["expected_intervals"], atol=1e-12)
    assert pitches.tolist() == case["expected_pitches"]
    np.testing.assert_allclose(velocities, case["expected_velocities"], atol=1e-12)


def test_decode_notes_of_nothing():
    intervals, pitches, velocities = M.decode_notes(np.zeros((5, 88)), np.ones((5, 88)))
    assert intervals.shape == (0, 2) and len(pitches) == 0 and len(velocities) == 0


def test_note_scores_regression():
    case = DATA["note_scores"]
    args = (case["ref_intervals"], case["ref_pitches"], case["est_intervals"], case["est_pitches"])
    on = M.note_scores(*args, offset_ratio=None)
    off = M.note_scores(*args, offset_ratio=0.2)
    assert on == pytest.approx(tuple(case["expected_onset"][k] for k in ("precision", "recall", "f1")))
    assert off == pytest.approx(tuple(case["expected_offset"][k] for k in ("precision", "recall", "f1")))
    assert M.note_scores([], [], case["est_intervals"], case["est_pitches"]) == (0.0, 0.0, 0.0)


def test_piece_note_scores_on_perfect_predictions():
    # Two notes drawn as targets would draw them (onset max-filtered over 3 frames, frames inclusive) decode back.
    notes = np.array([[0.10, 0.30, 60, 80], [0.20, 0.26, 64, 40]])
    T = 30
    onsets, frames = np.zeros((T, 88)), np.zeros((T, 88))
    for on, off, pitch, _ in notes:
        s, e, k = round(on * 50), round(off * 50), int(pitch) - 21
        onsets[s - 1:s + 2, k] = [0.7, 0.9, 0.7]
        frames[s:e + 1, k] = 0.9
    scores = M.piece_note_scores(notes, {"onsets": onsets, "frames": frames})
    assert scores["note_f1"] == 1.0 and scores["note_offset_f1"] == 1.0
