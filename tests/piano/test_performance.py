"""The synthetic performance generators (pianist, the default, and simple): musical ranges, determinism, the
statistics against MAESTRO's, the pedal and harmony, the MAESTRO layout, resuming, workers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import soundfile as sf

from mtlnb.piano import maestro, performance, performance_stats

SIMPLE = performance.CONFIGS["simple"]


@pytest.fixture(scope="module")
def pieces():
    return [performance.compose(seed=7, index=i, seconds=20.0) for i in range(10)]


@pytest.fixture(scope="module")
def simple_pieces():
    return [performance.compose(seed=7, index=i, seconds=20.0, config=SIMPLE) for i in range(10)]


def _notes(pm):
    return [(n.start, n.end, n.pitch, n.velocity) for n in pm.instruments[0].notes]


@pytest.mark.parametrize("style", performance.STYLES)
def test_compose_is_deterministic(style):
    config = performance.CONFIGS[style]
    a, b = performance.compose(3, 1, 10.0, config), performance.compose(3, 1, 10.0, config)
    assert _notes(a) == _notes(b)
    assert [(c.time, c.value) for c in a.instruments[0].control_changes] == \
        [(c.time, c.value) for c in b.instruments[0].control_changes]
    assert _notes(a) != _notes(performance.compose(3, 2, 10.0, config))
    assert _notes(a) != _notes(performance.compose(4, 1, 10.0, config))


def test_the_default_is_the_pianist_and_the_styles_differ():
    assert performance.CONFIG.style == "pianist" and performance.CONFIG == performance.CONFIGS["pianist"]
    assert _notes(performance.compose(3, 1, 10.0)) != _notes(performance.compose(3, 1, 10.0, SIMPLE))
    with pytest.raises(ValueError, match="unknown style"):
        performance.compose(0, 0, 5.0, dataclasses.replace(SIMPLE, style="jazz"))


@pytest.mark.parametrize("style", performance.STYLES)
def test_musical_ranges(style, pieces, simple_pieces):
    textures, tempos = set(), []
    for pm in pieces if style == "pianist" else simple_pieces:
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
    assert textures == set(performance.PIANIST_TEXTURES if style == "pianist" else performance.TEXTURES)


@pytest.mark.parametrize("style", performance.STYLES)
def test_no_overlapping_notes_on_one_key(style, pieces, simple_pieces):
    for pm in pieces if style == "pianist" else simple_pieces:
        by_key = {}
        for n in sorted(pm.instruments[0].notes, key=lambda n: n.start):
            if n.pitch in by_key:
                assert by_key[n.pitch] <= n.start, f"key {n.pitch} struck again before its release"
            by_key[n.pitch] = n.end


def _held_depths(values: np.ndarray) -> np.ndarray:
    """CC64 values where a rise ends (the depth a press reaches), from a curve of ramps."""
    d = np.diff(values)
    return values[1:-1][(d[:-1] > 0) & (d[1:] <= 0)]


@pytest.mark.parametrize("style", performance.STYLES)
def test_pedal_curves_are_continuous_with_half_pedal(style, pieces, simple_pieces):
    values = [np.array([c.value for c in pm.instruments[0].control_changes])
              for pm in (pieces if style == "pianist" else simple_pieces)]
    assert all(np.all((v >= 0) & (v <= 127)) for v in values)
    assert all(len(np.unique(v)) > 10 for v in values if v.max() > 0)  # ramps, not switches
    depths = np.concatenate([_held_depths(v) for v in values])
    lo, hi = (performance.CONFIG if style == "pianist" else SIMPLE).half_pedal
    assert (depths >= 110).any() and ((depths >= lo) & (depths < hi)).any(), depths
    if style == "pianist":  # most presses between 64 and 100, as a Disklavier records them
        assert 0.3 < np.mean((depths >= 64) & (depths <= 103)) < 0.9, depths


def test_pianist_matches_maestro_statistics(tmp_path):
    """8 pieces x 60 s: within 25 % of the MAESTRO values on notes/s, median length, polyphony, pedal share and
    velocity std, and closer than the simple generator on density and note length."""
    stats = {}
    for style in performance.STYLES:
        paths = []
        for i in range(8):
            paths.append(tmp_path / f"{style}-{i}.mid")
            performance.compose(11, i, 60.0, performance.CONFIGS[style]).write(str(paths[-1]))
        stats[style] = performance_stats.dataset_statistics(paths)
    for name, target in performance_stats.MAESTRO_REFERENCE.items():
        assert stats["pianist"][name] == pytest.approx(target, rel=0.25), (name, stats["pianist"][name])
    for name in ("notes per s", "median length s"):
        target = performance_stats.MAESTRO_REFERENCE[name]
        assert abs(stats["pianist"][name] - target) < abs(stats["simple"][name] - target), name
    assert stats["pianist"]["notes per chord"] > 1.2  # chords, not only single lines


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


def test_a_folder_holds_one_style(tmp_path):
    performance.generate(tmp_path, 1, 2.0, seed=1, workers=1, progress=False, config=SIMPLE)
    with pytest.raises(ValueError, match="other settings"):
        performance.generate(tmp_path, 1, 2.0, seed=1, workers=1, progress=False)


# -- the stages of the simple generator, each on its own (same random stream order as compose)


def _simple_stages(seed: int = 3, index: int = 1, seconds: float = 20.0):
    rng = np.random.default_rng([seed, index])
    f = performance._frame(rng, seconds, SIMPLE)
    roots = performance._chord_roots(rng, f, SIMPLE)
    notes, textures = performance._score(rng, f, roots, SIMPLE)
    return rng, f, roots, notes, textures


@pytest.mark.parametrize("seed", range(6))
def test_frame_fits_whole_bars_into_the_length(seed):
    f = performance._frame(np.random.default_rng([seed, 0]), 20.0, SIMPLE)
    assert f.bpb in (3, 4) and (f.per_bar == 1 or f.bpb == 4) and 60 <= f.bpm <= 160
    steps = np.diff(f.scale + [f.scale[0] + 12]) % 12
    assert f.scale[0] == f.tonic and list(steps) == ([2, 1, 2, 2, 1, 3, 1] if f.minor else [2, 2, 1, 2, 2, 2, 1])
    assert f.n_bars >= 2 and float(f.when(f.end_beat)) <= 20.0 < float(f.when(f.end_beat + f.bpb))
    assert f.chord_len * f.per_bar == f.bpb and f.chord_pcs(0) == [f.scale[0], f.scale[2], f.scale[4]]


def test_simple_chord_roots_cover_the_bars_and_end_on_the_tonic():
    _, f, roots, _, _ = _simple_stages()
    assert len(roots) == f.n_bars * f.per_bar and roots[-f.per_bar:] == [0] * f.per_bar
    assert all(0 <= r < 7 for r in roots)


def test_simple_score_holds_the_final_chord_for_the_last_bar():
    _, f, roots, notes, textures = _simple_stages()
    assert len(textures) == -(-f.n_bars // SIMPLE.phrase_bars)
    assert set(textures) <= set(performance.TEXTURES) and {n[3] for n in notes} <= {"melody", "bass", "accomp"}
    last_bar = f.end_beat - f.bpb
    final = [n for n in notes if n[0] >= last_bar]
    assert final and all(n[0] == last_bar and n[1] == f.bpb for n in final)
    assert {n[2] % 12 for n in final} <= set(f.chord_pcs(0))  # the tonic triad


def test_simple_perform_and_pedal_give_playable_midi():
    rng, f, roots, notes, textures = _simple_stages()
    midi_notes = performance._perform(rng, f, notes, len(textures), SIMPLE)
    assert all(0 <= s < e and 1 <= v <= 127 for s, e, _, v in midi_notes)
    last = max(n[1] for n in midi_notes)
    cc = performance._pedal(rng, f, len(roots), len(textures), last, SIMPLE)
    assert cc[0] == (0.0, 0) and cc[-1][1] == 0 and all(0 <= v <= 127 for _, v in cc)
    pm = performance._to_midi(midi_notes, cc + [(last + 1.0, 0)], "C major, 4/4, 100 bpm, melody",
                              SIMPLE)
    values = [c.value for c in pm.instruments[0].control_changes]
    assert all(a != b for a, b in zip(values, values[1:]))  # repeated values dropped
    assert len(pm.instruments[0].notes) == len(midi_notes) and pm.lyrics[0].text.startswith("C major")


# -- the stages of the pianist generator


def _pianist_stages(seed: int = 3, index: int = 1, seconds: float = 30.0):
    rng, config = np.random.default_rng([seed, index]), performance.CONFIG
    f = performance._frame(rng, seconds, config)
    roots = performance._chord_roots(rng, f, config)
    plans = performance._plan_phrases(rng, f, config)
    notes = performance._score_pianist(rng, f, roots, plans, config)
    return rng, f, roots, plans, notes


def test_phrase_plans_keep_scale_runs_and_staccato_mostly_dry():
    plans = [p for seed in range(60) for p in _pianist_stages(seed, seconds=60.0)[3]]
    dry = np.array([p.texture == "scales" or p.articulation == "staccato" for p in plans])
    pedalled = np.array([p.pedalled for p in plans])
    assert 0 < pedalled[dry].mean() < pedalled[~dry].mean() < 1
    assert {p.articulation for p in plans} == {"legato", "portato", "staccato"}
    assert {p.unit for p in plans} <= set(performance._UNITS) and len({p.unit for p in plans}) >= 3


@pytest.mark.parametrize("seed", range(4))
def test_pianist_score_roles_chords_and_final_tonic(seed):
    _, f, roots, plans, notes = _pianist_stages(seed)
    assert {n[3] for n in notes} <= {"melody", "figure", "inner", "bass"}
    assert {n[4] for n in notes} == set(range(len(plans)))
    final = [n for n in notes if n[0] >= f.end_beat - f.bpb]
    assert final and all(n[1] == f.bpb for n in final)
    assert {n[2] % 12 for n in final} <= set(f.chord_pcs(0))  # the tonic triad, held for the last bar
    for ph, plan in enumerate(plans[:-1]):
        if plan.texture == "chorale":  # block chords: a bass and two inner voices together
            onsets = [n[0] for n in notes if n[4] == ph and n[3] in ("bass", "inner")]
            assert max(onsets.count(b) for b in onsets) >= 3


def test_velocities_sing_the_melody_and_swell_by_phrase():
    rng, f, _, plans, notes = _pianist_stages(seconds=60.0)
    vel = performance._velocities(rng, f, notes, len(plans), performance.CONFIG)
    assert vel.min() >= 1 and vel.max() <= 127 and vel.std() > 8
    roles = np.array([n[3] for n in notes])
    assert vel[roles == "melody"].mean() > vel[roles == "inner"].mean() + 6
    phrase_means = [vel[[n[4] == ph for n in notes]].mean() for ph in range(len(plans))]
    assert np.ptp(phrase_means) > 5  # phrase dynamics, not one level


def test_articulation_and_pedal_shape_key_releases():
    """The same notes played staccato are released sooner than legato; under the pedal, sooner than dry."""
    rng, f, _, plans, notes = _pianist_stages(seconds=60.0)
    lengths = {}
    for name, articulation, pedalled in (("legato", "legato", False), ("staccato", "staccato", False),
                                         ("legato pedalled", "legato", True)):
        played = [dataclasses.replace(p, articulation=articulation, pedalled=pedalled) for p in plans]
        out = performance._perform_pianist(np.random.default_rng(0), f, notes, played, performance.CONFIG)
        assert all(0 <= s < e and 1 <= v <= 127 for s, e, _, v in out)
        lengths[name] = np.median([e - s for s, e, _, _ in out])
    assert lengths["staccato"] < 0.7 * lengths["legato"]
    assert lengths["legato pedalled"] < lengths["legato"]


@pytest.mark.parametrize("seed", range(5))
def test_pedal_changes_follow_the_harmony_changes(seed):
    rng, f, roots, plans, notes = _pianist_stages(seed)
    midi_notes = performance._perform_pianist(rng, f, notes, plans, performance.CONFIG)
    last = max(n[1] for n in midi_notes)
    cc = performance._pedal_pianist(rng, f, roots, plans, last, performance.CONFIG)
    assert cc[0] == (0.0, 0) and cc[-1][1] == 0 and all(0 <= v <= 127 for _, v in cc)
    assert all(a[0] <= b[0] for a, b in zip(cc, cc[1:]))
    t, v = np.array([c[0] for c in cc]), np.array([c[1] for c in cc])
    changes = np.array([float(f.when(c * f.chord_len)) for c in range(len(roots))])
    # Every lift through 64 comes just after a chord's onset (or after the last note): legato pedalling.
    for lift in t[1:][(v[1:] < 64) & (v[:-1] >= 64)]:
        assert lift >= last or np.any((lift >= changes) & (lift <= changes + 0.3)), lift
    # Every harmony change in a pedalled phrase clears the pedal (to <= 40) within 0.3 s of its onset.
    for c, onset in enumerate(changes):
        phrase = min(int(c * f.chord_len // f.phrase_beats), len(plans) - 1)
        if plans[phrase].pedalled and (c == 0 or roots[c] != roots[c - 1]):
            window = (t >= onset) & (t <= onset + 0.3)
            assert window.any() and v[window].min() <= 40, (c, onset)
