"""Performance statistics on hand-made MIDI files with known answers, the sources they read, pooling over a set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pretty_midi
import pytest

from mtlnb.piano import maestro, performance_stats as ps

# Times on the MIDI tick grid (480 ticks per quarter at 120 bpm: 1/960 s), so that they read back exactly.
NOTES = [(0.0, 1.0, 60, 50), (0.5, 1.5, 64, 70), (2.0, 2.5, 67, 90), (2.0125, 2.5, 72, 60)]  # start, end, pitch, vel
PEDAL = [(0.0, 0), (0.5, 100), (1.0, 50), (1.5, 0), (2.0, 127), (3.0, 0)]  # time, CC64


def write_midi(path, notes=NOTES, pedal=PEDAL):
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=v, pitch=p, start=s, end=e) for s, e, p, v in notes]
    piano.control_changes = [pretty_midi.ControlChange(64, v, t) for t, v in pedal]
    pm.instruments.append(piano)
    pm.write(str(path))
    return path


def test_known_answers(tmp_path):
    s = ps.midi_statistics(write_midi(tmp_path / "a.mid"))
    assert set(s) == set(ps.COLUMNS)
    assert s["minutes"] == pytest.approx(3.0 / 60)  # the last event is the pedal release at 3 s
    assert s["notes per s"] == pytest.approx(4 / 3.0)
    assert s["median length s"] == pytest.approx((0.5 + 1.0) / 2)  # lengths 1, 1, 0.5, 0.4875
    # Sounding: [0, 1.5] and [2, 2.5] = 2 s; the notes add up to 2.9875 s.
    assert s["polyphony"] == pytest.approx(2.9875 / 2.0, abs=1e-3)
    assert s["velocity mean"] == pytest.approx(67.5)
    assert s["velocity std"] == pytest.approx(np.sqrt(875 / 4))  # population std of 50, 70, 90, 60
    assert s["pitch span"] == 12
    assert s["notes per chord"] == pytest.approx(4 / 3)  # 2.0 and 2.0125 s are one chord
    assert s["pedal down share"] == pytest.approx(1.5 / 3.0)  # 0.5-1.0 at 100, 2.0-3.0 at 127; 50 is not down
    assert s["pedal presses per min"] == pytest.approx(2 / 3.0 * 60)
    assert s["half-pedal share"] == pytest.approx(0.5 / 2.0)  # 1.0-1.5 at 50 of 2 s at >= 20


def test_no_pedal_and_a_nested_note(tmp_path):
    notes = [(0.0, 2.0, 48, 64), (0.5, 1.0, 50, 64), (3.0, 4.0, 52, 64)]  # the second lies inside the first
    s = ps.midi_statistics(write_midi(tmp_path / "b.mid", notes, pedal=[]))
    assert s["polyphony"] == pytest.approx(3.5 / 3.0)  # 3.5 s of notes over 3 s sounding
    assert s["pedal down share"] == 0 and s["pedal presses per min"] == 0 and s["half-pedal share"] == 0
    assert s["velocity std"] == 0 and s["notes per s"] == pytest.approx(3 / 4.0)


def test_a_set_averages_its_pieces(tmp_path):
    a = write_midi(tmp_path / "a.mid")
    b = write_midi(tmp_path / "b.mid", [(0.0, 0.25, 80, 100), (0.25, 0.5, 81, 90)], pedal=[])
    one, two = ps.midi_statistics(a), ps.midi_statistics(b)
    assert two["velocity std"] == pytest.approx(5.0) and two["notes per s"] == pytest.approx(4.0)
    both = ps.dataset_statistics([a, b])
    assert both["pieces"] == 2 and both["minutes"] == pytest.approx((3.0 + 0.5) / 60)  # the total
    for name in ("notes per s", "median length s", "polyphony", "velocity std", "pedal down share"):
        assert both[name] == pytest.approx((one[name] + two[name]) / 2), name  # each piece counts once
    # Not the pooled notes: their velocity std (50, 70, 90, 60, 100, 90) adds the pieces' different levels.
    assert both["velocity std"] < np.std([50, 70, 90, 60, 100, 90]) - 5


def test_sources_file_folder_and_maestro_layout(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    write_midi(plain / "b.midi")
    write_midi(plain / "a.mid")
    (plain / "notes.txt").write_text("not MIDI")
    assert [p.name for p in ps.midi_files(plain)] == ["a.mid", "b.midi"]
    assert ps.midi_files(plain / "a.mid") == [plain / "a.mid"]
    table = ps.piece_table(plain)
    assert list(table.index) == ["a", "b"] and list(table.columns) == list(ps.COLUMNS)

    layout = tmp_path / "maestro"
    (layout / "2004").mkdir(parents=True)
    write_midi(layout / "2004" / "one.midi")
    write_midi(layout / "2004" / "unlisted.midi")
    (layout / "2004" / "one.wav").write_bytes(b"")
    pd.DataFrame([{"canonical_composer": "X", "canonical_title": "Y", "split": "train", "year": 2004,
                   "midi_filename": "2004/one.midi", "audio_filename": "2004/one.wav", "duration": 3.0}]
                 ).to_csv(layout / maestro.CSV_NAMES[0], index=False)
    assert [p.name for p in ps.midi_files(layout)] == ["one.midi"]  # the CSV decides, not the folder

    table = ps.compare({"plain": plain, "layout": layout})
    assert list(table.columns) == ["plain", "layout", "MAESTRO (reference)"]
    assert table.loc["pieces", "plain"] == 2 and table.loc["pieces", "layout"] == 1
    assert table.loc["polyphony", "MAESTRO (reference)"] == ps.MAESTRO_REFERENCE["polyphony"]
    assert "MAESTRO (reference)" not in ps.compare({"plain": plain}, reference=None)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a MIDI file nor a folder"):
        ps.midi_files(tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="no maestro-v3.0.0.csv"):
        ps.midi_files(tmp_path)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"not a MIDI file")
    with pytest.raises(ValueError, match="bad.mid: not a readable MIDI file"):
        ps.midi_statistics(bad)
    empty = write_midi(tmp_path / "empty.mid", notes=[], pedal=[(0.0, 0)])
    with pytest.raises(ValueError, match="empty.mid: no notes"):
        ps.midi_statistics(empty)
    with pytest.raises(ValueError, match="no MIDI files"):
        ps.dataset_statistics([])


def test_real_maestro_files_agree_with_the_maestro_reader(reference):
    """On real Disklavier MIDI: the same note count as the MAESTRO reader, and the same pedal-down time as its
    pedal presses (two parsers, mido's and pretty_midi's)."""
    for path in sorted((reference / "maestro").glob("*.mid")):
        s = ps.midi_statistics(path)
        notes = maestro.midi_to_notes(path, apply_sustain=False)
        seconds = s["minutes"] * 60
        assert s["notes per s"] * seconds == pytest.approx(len(notes))
        assert s["median length s"] == pytest.approx(np.median(notes[:, 1] - notes[:, 0]), abs=2e-3)
        content = maestro._read_midi(path)
        presses = maestro._pedal_intervals(content.sustain, content.end_time, ps.PEDAL_DOWN)
        # A press still held at the end lasts to the last event here, to the end-of-track message there.
        down = sum(min(up, seconds) - start for _, start, up in presses)
        assert s["pedal down share"] * seconds == pytest.approx(down, abs=0.01)
        assert s["pedal presses per min"] * seconds / 60 == pytest.approx(len(presses))
