"""The five frame targets: hand-computed examples and agreement with madmom's notes on a real MAESTRO file."""

from __future__ import annotations

import numpy as np
import pytest

from mtlnb.piano import maestro, targets as pt

C4 = 60 - 21  # column of MIDI pitch 60


def test_hand_example():
    # 60: 0.00-0.10 s -> frames 0..5, velocity 127;  62: 0.20-0.30 s -> frames 10..15, velocity 64
    notes = np.array([[0.0, 0.1, 60, 127], [0.2, 0.3, 62, 64]])
    y = pt.frame_targets(notes, None, n_frames=20)
    assert set(y) == set(pt.TARGET_NAMES)
    assert all(v.dtype == np.float32 for v in y.values())
    assert y["onsets"].shape == y["velocity"].shape == (20, 88) and y["sustain"].shape == (20, 1)
    col = lambda name, pitch: np.flatnonzero(y[name][:, pitch - 21]).tolist()  # noqa: E731
    assert col("frames", 60) == [0, 1, 2, 3, 4, 5] and col("frames", 62) == list(range(10, 16))
    assert col("onsets", 60) == [0, 1] and col("onsets", 62) == [9, 10, 11]  # width-3 maximum filter
    assert col("offsets", 60) == [4, 5, 6] and col("offsets", 62) == [14, 15, 16]
    assert col("velocity", 60) == list(range(0, 7)) and col("velocity", 62) == list(range(9, 17))
    assert y["velocity"][3, C4] == 1.0  # 127 / 127 exactly
    assert y["velocity"][12, 62 - 21] == np.float32(64) / np.float32(127)
    assert y["frames"].sum() == 12 and y["sustain"].sum() == 0
    assert set(np.unique(y["onsets"])) == {0.0, 1.0}


def test_no_filter():
    y = pt.frame_targets(np.array([[0.2, 0.3, 62, 64]]), None, 20, pt.TargetConfig(max_filter=1))
    assert np.flatnonzero(y["onsets"][:, 62 - 21]).tolist() == [10]
    assert np.flatnonzero(y["offsets"][:, 62 - 21]).tolist() == [15]


def test_sustain_is_sample_and_hold():
    events = np.array([[0.0, 0], [0.04, 100], [0.1, 40], [0.1, 41], [0.3, 127]])
    s = pt.frame_targets(np.zeros((0, 4)), events, 12)["sustain"][:, 0]
    expected = np.array([0, 0, 100, 100, 100, 41, 41, 41, 41, 41, 41, 41], np.float32) / np.float32(127)
    np.testing.assert_array_equal(s, expected)  # 0.3 s is frame 15: beyond the end
    np.testing.assert_array_equal(pt.sustain_frames(None, 3), np.zeros((3, 1), np.uint8))


def test_notes_at_the_edges():
    notes = np.array([[0.9, 2.0, 60, 50],   # starts at frame 45, still sounding at the last frame (49)
                      [1.5, 1.6, 61, 50]])  # starts after the end: dropped
    y = pt.encode_targets(notes, None, 50)
    assert np.flatnonzero(y["frames"][:, C4]).tolist() == list(range(45, 50))
    assert y["offsets"].sum() == 0 and y["frames"][:, C4 + 1].sum() == 0


def test_re_struck_key_takes_the_later_velocity():
    notes = np.array([[0.0, 0.1, 60, 30], [0.1, 0.2, 60, 90]])  # meet on frame 5
    y = pt.encode_targets(notes, None, 12, pt.TargetConfig(max_filter=1))
    assert y["velocity"][:, C4].tolist() == [30] * 5 + [90] * 6 + [0]


def test_bad_input():
    with pytest.raises(ValueError, match="pitch 20"):
        pt.frame_targets(np.array([[0, 1, 20, 50]]), None, 10)
    with pytest.raises(ValueError, match=r"\(n_notes, 4\)"):
        pt.frame_targets(np.zeros((3, 5)), None, 10)
    with pytest.raises(ValueError, match="before it starts"):
        pt.frame_targets(np.array([[1.0, 0.5, 60, 50]]), None, 10)
    with pytest.raises(ValueError, match="non-decreasing"):
        pt.frame_targets(np.zeros((0, 4)), np.array([[1.0, 10], [0.5, 0]]), 10)


def test_decode_needs_every_target():
    with pytest.raises(ValueError, match="sustain"):
        pt.decode_targets({n: np.zeros((1, 88), np.uint8) for n in pt.TARGET_NAMES[:4]})


def test_real_file_agrees_with_madmom_notes(reference):
    """Targets from our reading of the MIDI equal targets built from madmom's own sustained notes."""
    d = np.load(reference / "madmom" / "sustained_notes.npz")
    path = reference / "maestro" / str(d["midi_file"])
    m = d["sustained_notes"]
    madmom_notes = np.column_stack([m[:, 0], m[:, 0] + m[:, 2], m[:, 1], m[:, 3]])
    n_frames = int(np.ceil(madmom_notes[:, 1].max() * 50)) + 10
    ours = pt.midi_targets(path, n_frames)
    theirs = pt.frame_targets(madmom_notes, maestro.sustain_events(path), n_frames)
    for name in pt.TARGET_NAMES:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    # every note's onset frame is marked, and there is no onset mark further than one frame from an onset
    starts = np.rint(madmom_notes[:, 0] * 50).astype(int)
    keys = madmom_notes[:, 2].astype(int) - 21
    assert np.all(ours["onsets"][starts, keys] == 1)
    raw = np.zeros_like(ours["onsets"])
    raw[starts, keys] = 1
    np.testing.assert_array_equal(ours["onsets"], np.maximum(np.maximum(raw, np.roll(raw, 1, 0)), np.roll(raw, -1, 0)))
    assert 0 < ours["sustain"].mean() < 1 and len(np.unique(ours["sustain"])) > 10  # continuous pedal
