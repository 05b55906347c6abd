"""The synthetic performance generator: musical ranges, determinism, the MAESTRO layout, resuming, workers."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from mtlnb.piano import maestro, performance


@pytest.fixture(scope="module")
def pieces():
    return [performance.compose(seed=7, index=i, seconds=20.0) for i in range(10)]


def test_compose_is_deterministic():
    a, b = performance.compose(3, 1, 10.0), performance.compose(3, 1, 10.0)
    notes = lambda pm: [(n.start, n.end, n.pitch, n.velocity) for n in pm.instruments[0].notes]  # noqa: E731
    assert notes(a) == notes(b)
    assert [(c.time, c.value) for c in a.instruments[0].control_changes] == \
        [(c.time, c.value) for c in b.instruments[0].control_changes]
    assert notes(a) != notes(performance.compose(3, 2, 10.0))
    assert notes(a) != notes(performance.compose(4, 1, 10.0))


def test_musical_ranges(pieces):
    textures, tempos = set(), []
    for pm in pieces:
        notes = pm.instruments[0].notes
        assert len(notes) > 20
        assert all(21 <= n.pitch <= 108 and 1 <= n.velocity <= 127 and n.end > n.start >= 0 for n in notes)
        assert 15.0 < pm.get_end_time() <= 21.0  # ends on the last bar line before 20 s (+ pedal release)
        vel = np.array([n.velocity for n in notes])
        assert vel.max() - vel.min() >= 20  # phrase dynamics, not one loudness
        description = pm.lyrics[0].text
        tempos.append(float(description.split(", ")[2].split()[0]))
        textures.update(description.split(", ")[3].split("/"))
    assert all(60 <= t <= 160 for t in tempos) and max(tempos) - min(tempos) > 30
    assert textures == set(performance.TEXTURES)


def test_no_overlapping_notes_on_one_key(pieces):
    for pm in pieces:
        by_key = {}
        for n in sorted(pm.instruments[0].notes, key=lambda n: n.start):
            if n.pitch in by_key:
                assert by_key[n.pitch] <= n.start, f"key {n.pitch} struck again before its release"
            by_key[n.pitch] = n.end


def test_pedal_curves_are_continuous_with_half_pedal(pieces):
    values = [np.array([c.value for c in pm.instruments[0].control_changes]) for pm in pieces]
    assert all(np.all((v >= 0) & (v <= 127)) for v in values)
    assert all(len(np.unique(v)) > 10 for v in values if v.max() > 0)  # ramps, not switches
    plateaus = np.concatenate([v[1:][np.diff(v) == 0] for v in values] + [v[-1:] for v in values])
    # depths held between ramps: some full presses (>= 110) and some half-pedal ones (40..100)
    depths = np.concatenate([v[:-1][(np.diff(v) < 0) & (np.r_[0, np.diff(v)[:-1]] >= 0)] for v in values])
    assert (depths >= 110).any() and ((depths >= 40) & (depths <= 100)).any(), (plateaus, depths)


def test_splits():
    names = performance.assign_splits(4, seed=0)
    assert sorted(names) == ["test", "train", "train", "validation"]
    big = performance.assign_splits(100, seed=0)
    assert big.count("validation") == 10 and big.count("test") == 10
    assert performance.assign_splits(100, seed=0) == big != performance.assign_splits(100, seed=1)


def test_generate_writes_maestro_layout_and_resumes(tmp_path):
    root = tmp_path / "synth"
    df = performance.generate(root, n_pieces=3, seconds=3.0, seed=5, workers=1, progress=False)
    meta = maestro.read_metadata(root, check_files=True)
    assert list(meta["id"]) == ["synthetic-00000", "synthetic-00001", "synthetic-00002"]
    assert sorted(meta["split"]) == ["test", "train", "validation"]
    for piece in maestro.pieces(root):
        info = sf.info(piece.audio_path)
        assert info.samplerate == 44100 and info.channels == 1
        end = maestro.midi_to_notes(piece.midi_path)[:, 1].max()
        assert info.frames / 44100 == pytest.approx(piece.duration, abs=1e-5)
        assert end < piece.duration <= end + 1.5  # ~1 s ring-out after the last event
        audio = maestro.load_audio(piece.audio_path)
        assert np.abs(audio).max() > 0.01
    assert list(df["duration"]) == list(meta["duration"])

    # Resume: existing pieces are not touched; a missing one comes back byte for byte.
    wav = root / "synthetic" / "synthetic-00001.wav"
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (root / "synthetic").iterdir()}
    wav.unlink()
    performance.generate(root, n_pieces=3, seconds=3.0, seed=5, workers=1, progress=False)
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (root / "synthetic").iterdir()}
    assert after["synthetic-00001.wav"][1] == before["synthetic-00001.wav"][1]
    assert after["synthetic-00000.wav"] == before["synthetic-00000.wav"]  # skipped, same mtime

    with pytest.raises(ValueError, match="other settings"):
        performance.generate(root, n_pieces=3, seconds=3.0, seed=6, progress=False)


def test_workers_give_the_same_files(tmp_path):
    performance.generate(tmp_path / "one", 2, 2.0, seed=1, workers=1, progress=False)
    performance.generate(tmp_path / "two", 2, 2.0, seed=1, workers=2, progress=False)
    one, two = tmp_path / "one", tmp_path / "two"
    for name in ("synthetic-00000.midi", "synthetic-00000.wav", "synthetic-00001.wav"):
        assert (one / "synthetic" / name).read_bytes() == (two / "synthetic" / name).read_bytes()
    assert (one / "maestro-v3.0.0.csv").read_text() == (two / "maestro-v3.0.0.csv").read_text()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="n_pieces"):
        performance.generate(tmp_path, 0, 1.0, progress=False)
    with pytest.raises(ValueError, match="seconds"):
        performance.compose(0, 0, 0.0)


# -- the stages of compose(), each on its own (same random stream order as compose)


def _stages(seed: int = 3, index: int = 1, seconds: float = 20.0):
    rng = np.random.default_rng([seed, index])
    f = performance._frame(rng, seconds, performance.CONFIG)
    roots = performance._chord_roots(rng, f, performance.CONFIG)
    notes, textures = performance._score(rng, f, roots, performance.CONFIG)
    return rng, f, roots, notes, textures


@pytest.mark.parametrize("seed", range(6))
def test_frame_fits_whole_bars_into_the_length(seed):
    f = performance._frame(np.random.default_rng([seed, 0]), 20.0, performance.CONFIG)
    assert f.bpb in (3, 4) and (f.per_bar == 1 or f.bpb == 4) and 60 <= f.bpm <= 160
    steps = np.diff(f.scale + [f.scale[0] + 12]) % 12
    assert f.scale[0] == f.tonic and list(steps) == ([2, 1, 2, 2, 1, 3, 1] if f.minor else [2, 2, 1, 2, 2, 2, 1])
    assert f.n_bars >= 2 and float(f.when(f.end_beat)) <= 20.0 < float(f.when(f.end_beat + f.bpb))
    assert f.chord_len * f.per_bar == f.bpb and f.chord_pcs(0) == [f.scale[0], f.scale[2], f.scale[4]]


def test_chord_roots_cover_the_bars_and_end_on_the_tonic():
    _, f, roots, _, _ = _stages()
    assert len(roots) == f.n_bars * f.per_bar and roots[-f.per_bar:] == [0] * f.per_bar
    assert all(0 <= r < 7 for r in roots)


def test_score_holds_the_final_chord_for_the_last_bar():
    _, f, roots, notes, textures = _stages()
    assert len(textures) == -(-f.n_bars // performance.CONFIG.phrase_bars)
    assert set(textures) <= set(performance.TEXTURES) and {n[3] for n in notes} <= {"melody", "bass", "accomp"}
    last_bar = f.end_beat - f.bpb
    final = [n for n in notes if n[0] >= last_bar]
    assert final and all(n[0] == last_bar and n[1] == f.bpb for n in final)
    assert {n[2] % 12 for n in final} <= set(f.chord_pcs(0))  # the tonic triad


def test_perform_and_pedal_give_playable_midi():
    rng, f, roots, notes, textures = _stages()
    midi_notes = performance._perform(rng, f, notes, len(textures), performance.CONFIG)
    assert all(0 <= s < e and 1 <= v <= 127 for s, e, _, v in midi_notes)
    last = max(n[1] for n in midi_notes)
    cc = performance._pedal(rng, f, len(roots), len(textures), last, performance.CONFIG)
    assert cc[0] == (0.0, 0) and cc[-1][1] == 0 and all(0 <= v <= 127 for _, v in cc)
    pm = performance._to_midi(midi_notes, cc + [(last + 1.0, 0)], "C major, 4/4, 100 bpm, melody",
                              performance.CONFIG)
    values = [c.value for c in pm.instruments[0].control_changes]
    assert all(a != b for a, b in zip(values, values[1:]))  # repeated values dropped
    assert len(pm.instruments[0].notes) == len(midi_notes) and pm.lyrics[0].text.startswith("C major")
