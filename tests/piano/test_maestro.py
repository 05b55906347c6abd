"""MAESTRO layout reader: metadata, audio and the pedal-extended notes (against madmom and hand-made MIDI)."""

from __future__ import annotations

import mido
import numpy as np
import pytest
import soundfile as sf

from mtlnb.piano import maestro

TPB = 480  # ticks per quarter at 120 bpm: 1 tick = 1/960 s


def write_midi(path, events, tpb=TPB):
    """A type-0 file from (time s, message) pairs at 120 bpm."""
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)])
    now = 0
    for t, msg in sorted(events, key=lambda e: e[0]):
        tick = round(t * 2 * tpb)
        track.append(msg.copy(time=tick - now))
        now = tick
    f = mido.MidiFile(type=0, ticks_per_beat=tpb)
    f.tracks.append(track)
    f.save(path)
    return path


def on(t, pitch, vel=80):
    return t, mido.Message("note_on", note=pitch, velocity=vel)


def off(t, pitch):
    return t, mido.Message("note_off", note=pitch, velocity=0)


def pedal(t, value):
    return t, mido.Message("control_change", control=64, value=value)


# -------------------------------------------------------------------------------------------------- madmom


@pytest.fixture(scope="module")
def madmom_notes(reference):
    d = np.load(reference / "madmom" / "sustained_notes.npz")
    return reference / "maestro" / str(d["midi_file"]), d["notes"], d["sustained_notes"]


def test_sustained_notes_equal_madmom(madmom_notes):
    path, _, expected = madmom_notes
    ours = maestro.midi_to_notes(path, sustain_threshold=64)
    assert ours.shape == (len(expected), 4) == (882, 4)
    np.testing.assert_allclose(ours[:, 0], expected[:, 0], rtol=0, atol=1e-9)  # onsets
    np.testing.assert_array_equal(ours[:, 2], expected[:, 1])  # pitches
    np.testing.assert_allclose(ours[:, 1] - ours[:, 0], expected[:, 2], rtol=0, atol=1e-9)  # durations
    np.testing.assert_array_equal(ours[:, 3], expected[:, 3])  # velocities


def test_key_release_notes_equal_madmom(madmom_notes):
    path, expected, sustained = madmom_notes
    ours = maestro.midi_to_notes(path, apply_sustain=False)
    np.testing.assert_allclose(ours[:, 1] - ours[:, 0], expected[:, 2], rtol=0, atol=1e-9)
    assert (sustained[:, 2] != expected[:, 2]).sum() == 146  # the pedal really matters in this file


def test_real_files_parse(reference):
    for path in sorted((reference / "maestro").glob("*.mid")):
        notes = maestro.midi_to_notes(path)
        assert len(notes) > 100
        assert np.all(notes[:, 1] >= notes[:, 0]) and np.all(np.diff(notes[:, 0]) >= 0)
        assert notes[:, 2].min() >= 21 and notes[:, 2].max() <= 108
        pedal_curve = maestro.sustain_events(path)
        assert len(np.unique(pedal_curve[:, 1])) > 10  # continuous pedal values, not just on/off


# ---------------------------------------------------------------------------------------------- hand-made


def test_pedal_extends_and_same_pitch_cuts(tmp_path):
    path = write_midi(tmp_path / "a.mid", [
        pedal(0.0, 0),
        on(0.0, 60), off(0.5, 60),  # released while the pedal is down (0.25 .. 1.0): ends at 1.0
        pedal(0.25, 100), pedal(0.5, 90), pedal(1.0, 10),  # 90: still down, must not restart the press
        on(0.0, 64, 70), off(0.5, 64),  # re-struck at 0.75 while sustained: cut there
        on(0.75, 64, 90), off(0.875, 64),  # extended to 1.0
        on(1.25, 67, 50), off(1.5, 67),  # pedal up: unchanged
        pedal(1.75, 127), on(2.0, 72), off(2.25, 72), (3.0, mido.MetaMessage("marker", text="end")),
    ])  # the last press is never released: it ends with the last message (3.0 s)
    notes = maestro.midi_to_notes(path)
    expected = [[0.0, 1.0, 60, 80], [0.0, 0.75, 64, 70], [0.75, 1.0, 64, 90], [1.25, 1.5, 67, 50],
                [2.0, 3.0, 72, 80]]
    np.testing.assert_allclose(notes, expected, atol=1e-9)
    raw = maestro.midi_to_notes(path, apply_sustain=False)
    np.testing.assert_allclose(raw[:, 1], [0.5, 0.5, 0.875, 1.5, 2.25], atol=1e-9)


def test_sustain_threshold(tmp_path):
    path = write_midi(tmp_path / "b.mid", [pedal(0.0, 64), on(0.0, 60), off(0.5, 60), pedal(1.0, 0)])
    assert maestro.midi_to_notes(path, sustain_threshold=64)[0, 1] == pytest.approx(1.0)  # madmom: >= 64
    assert maestro.midi_to_notes(path, sustain_threshold=65)[0, 1] == pytest.approx(0.5)  # the paper: > 64
    with pytest.raises(ValueError, match="sustain_threshold"):
        maestro.midi_to_notes(path, sustain_threshold=0)


def test_note_on_velocity_zero_is_a_note_off(tmp_path):
    path = write_midi(tmp_path / "c.mid", [on(0.5, 60, 99), on(1.0, 60, 0)])
    np.testing.assert_allclose(maestro.midi_to_notes(path), [[0.5, 1.0, 60, 99]], atol=1e-9)


def test_sustain_events(tmp_path):
    path = write_midi(tmp_path / "d.mid", [pedal(0.0, 0), pedal(0.5, 40), pedal(0.75, 127), on(0, 60), off(1, 60)])
    np.testing.assert_allclose(maestro.sustain_events(path), [[0.0, 0], [0.5, 40], [0.75, 127]], atol=1e-9)


def test_unreadable_midi(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a midi file")
    with pytest.raises(ValueError, match="bad.mid"):
        maestro.midi_to_notes(bad)


# ------------------------------------------------------------------------------------------ metadata, audio


def write_csv(root, rows, name="maestro-v3.0.0.csv"):
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / name, index=False)


ROW = dict(canonical_composer="C", canonical_title="T", year=2004, duration=1.5)


def test_read_metadata(tmp_path):
    rows = [dict(ROW, split=s, midi_filename=f"2004/p{i}.midi", audio_filename=f"2004/p{i}.wav")
            for i, s in enumerate(["train", "train", "validation", "test"])]
    write_csv(tmp_path, rows, "maestro-v2.0.0.csv")  # v2's name is found too
    df = maestro.read_metadata(tmp_path)
    assert list(df["id"]) == ["p0", "p1", "p2", "p3"]
    assert df["midi_path"][2] == tmp_path.resolve() / "2004" / "p2.midi"
    assert list(maestro.read_metadata(tmp_path, "train")["id"]) == ["p0", "p1"]
    pieces = maestro.pieces(tmp_path, "test")
    assert len(pieces) == 1 and pieces[0].split == "test" and pieces[0].year == 2004 and pieces[0].duration == 1.5
    with pytest.raises(ValueError, match="missing"):
        maestro.read_metadata(tmp_path, check_files=True)
    with pytest.raises(ValueError, match="split"):
        maestro.read_metadata(tmp_path, "dev")


def test_read_metadata_rejects_bad_tables(tmp_path):
    with pytest.raises(FileNotFoundError, match="maestro-v3.0.0.csv"):
        maestro.read_metadata(tmp_path)
    write_csv(tmp_path / "a", [dict(ROW, split="train", midi_filename="x.midi")])
    with pytest.raises(ValueError, match="audio_filename"):
        maestro.read_metadata(tmp_path / "a")
    write_csv(tmp_path / "b", [dict(ROW, split="dev", midi_filename="x.midi", audio_filename="x.wav")])
    with pytest.raises(ValueError, match="dev"):
        maestro.read_metadata(tmp_path / "b")


def test_load_audio_downmixes_and_resamples(tmp_path):
    sr = 48000
    t = np.arange(sr) / sr  # 1 s
    stereo = np.stack([0.8 * np.sin(2 * np.pi * 1000 * t), np.zeros_like(t)], axis=1)
    sf.write(tmp_path / "x.wav", stereo, sr, subtype="FLOAT")
    y = maestro.load_audio(tmp_path / "x.wav")
    assert y.dtype == np.float32 and y.shape == (44100,)
    spectrum = np.abs(np.fft.rfft(y[4410:-4410]))
    assert np.argmax(spectrum) * 44100 / len(y[4410:-4410]) == pytest.approx(1000, abs=2)
    assert np.abs(y[4410:-4410]).max() == pytest.approx(0.4, abs=0.01)  # mean of 0.8 sine and silence
    same = maestro.load_audio(tmp_path / "x.wav", sr=48000)
    np.testing.assert_allclose(same, 0.4 * np.sin(2 * np.pi * 1000 * t), atol=1e-6)
    with pytest.raises(FileNotFoundError):
        maestro.load_audio(tmp_path / "absent.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF????")
    with pytest.raises(ValueError, match="bad.wav"):
        maestro.load_audio(tmp_path / "bad.wav")
