"""Synthetic piano performances in the MAESTRO layout: the piano study's embedded default data.

MAESTRO itself (about 100 GB) is out of reach here, so :func:`generate` writes a folder that
:mod:`mtlnb.piano.maestro` reads like the real thing::

    <root>/maestro-v3.0.0.csv                 canonical_composer, canonical_title, split, year, midi_filename, ...
    <root>/synthetic/synthetic-00000.midi     one piano track: notes + continuous sustain pedal (CC64)
    <root>/synthetic/synthetic-00000.wav      44.1 kHz mono 16-bit, rendered with FluidSynth
    <root>/synthetic.json                     the seed and settings, so that a resumed run cannot mix two datasets

Each piece is tonal music with performance features the targets need (:func:`compose`):

- a key (major or harmonic minor), 3/4 or 4/4, a chord progression (a Markov chain over the diatonic triads,
  each phrase opening on I and closing with a cadence), one or two chords per bar;
- per phrase one texture: melody with accompaniment (bass + off-beat chords), block chords, arpeggios, or a
  melody over an Alberti bass; legato or staccato articulation;
- tempo 60-160 bpm with rubato (a smooth tempo curve per phrase, a ritardando into each cadence) and onset jitter;
- velocities following phrase dynamics (a crescendo-decrescendo arch around a drifting level), melody above the
  accompaniment, accented downbeats;
- a continuous sustain-pedal curve: CC64 ramps every 10 ms, released just after each harmony change and pressed
  again to a full or half-pedal depth (40-100) in pedalled phrases.

Choices where no paper speaks (the authors used MAESTRO): the musical rules above; FluidSynth's piano treats
CC64 as on/off at 64, so half-pedal values shape the targets but not the sound; pieces are ``seconds`` long
(ending on the last bar line before it) plus a 1 s ring-out; the split is a seeded 80/10/10 draw with at least one
validation and one test piece; ``year`` is 0 (not a recording year).

Pieces depend only on (seed, index): the output is the same for any number of worker processes and when a run is
resumed (pieces whose MIDI and audio exist are skipped).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pretty_midi
import soundfile as sf
from tqdm.auto import tqdm

from mtlnb.core import io
from mtlnb.piano import maestro
from mtlnb.core.synthesis import Renderer

SETTINGS_FILE = "synthetic.json"
GENERATOR_VERSION = 1  # bump when the music a seed produces changes
TEXTURES = ("melody", "chords", "arpeggio", "alberti")
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 11)  # harmonic minor: a major dominant for the cadences
# Diatonic progressions (scale degree of the chord root, 0 = I): common-practice moves, each target equally likely.
_NEXT = {0: (3, 4, 5, 1), 1: (4, 6, 4), 2: (5, 3), 3: (4, 0, 1), 4: (0, 5, 0), 5: (1, 3), 6: (0,)}
_RHYTHMS = {  # melody rhythms per bar, in beats
    3: ((1, 1, 1), (2, 1), (1, 0.5, 0.5, 1), (3,), (0.5,) * 6, (1.5, 0.5, 1)),
    4: ((1, 1, 1, 1), (2, 1, 1), (1, 0.5, 0.5, 1, 1), (2, 2), (0.5,) * 8, (1.5, 0.5, 1, 1), (3, 1)),
}


@dataclass(frozen=True)
class PerformanceConfig:
    """Settings of the synthetic performances."""

    tempo: tuple[float, float] = (60.0, 160.0)  # bpm range, one tempo drawn per piece (MAESTRO's typical range)
    rubato: float = 0.06  # amplitude of the smooth per-phrase tempo curve, relative: audible but not erratic
    ritardando: float = 0.3  # slow-down at the end of each phrase, relative: marks the cadences
    timing_jitter: float = 0.008  # s, std of per-note onset noise: chords are not perfectly together
    phrase_bars: int = 4  # bars per phrase: the unit of dynamics, texture, pedal use and cadences
    dynamics: tuple[int, int] = (30, 90)  # range of the phrase's base velocity (melody +10, arch +5..20): pp .. ff
    pedal_probability: float = 0.75  # share of phrases played with pedal; the rest give pedal-free targets
    half_pedal: tuple[int, int] = (40, 100)  # CC64 depth range of half-pedal presses (the others are 110-127)
    tail: float = 1.0  # s of audio after the last MIDI event, so that the final chord rings out
    sample_rate: int = 44100  # Hz, the piano study's rate
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / validation / test shares, like MAESTRO's
    resolution: int = 480  # MIDI ticks per quarter note at 120 bpm: ~1 ms timing grid


CONFIG = PerformanceConfig()


# ---------------------------------------------------------------------------------------------------- composition


def _tempo_map(rng: np.random.Generator, bpm: float, n_beats: int, beats_per_phrase: int,
               config: PerformanceConfig):
    """A function beat → seconds: the nominal tempo bent by rubato and phrase-final ritardandi."""
    grid = np.arange(n_beats * 12 + 1) / 12.0  # 1/12 beat resolves 16ths and triplets
    phase = rng.uniform(0, 2 * np.pi)
    speed = 1 + config.rubato * np.sin(2 * np.pi * grid / beats_per_phrase + phase)
    to_end = beats_per_phrase - (grid % beats_per_phrase)  # beats until the phrase ends
    speed *= 1 - config.ritardando * np.clip(1 - to_end / 2, 0, 1)  # slow down over the last two beats
    seconds = np.concatenate([[0.0], np.cumsum(60.0 / bpm / 12.0 / speed[:-1])])
    return lambda beats: np.interp(beats, grid, seconds)


def _pitches(pcs, lo: int, hi: int) -> np.ndarray:
    """All MIDI pitches in [lo, hi] whose pitch class is in ``pcs``."""
    p = np.arange(lo, hi + 1)
    return p[np.isin(p % 12, list(pcs))]


def _progression(rng: np.random.Generator, n_chords: int) -> list[int]:
    """Chord roots (scale degrees) of one phrase: opens on I, ends on a cadence (V-I, IV-I or a half close on V)."""
    chords = [0]
    while len(chords) < n_chords - 2:
        chords.append(int(rng.choice(_NEXT[chords[-1]])))
    cadence = [(4, 0), (3, 0), (1, 4)][rng.choice(3, p=[0.6, 0.2, 0.2])]
    return (chords + list(cadence))[-n_chords:] if n_chords >= 2 else [0]


def _melody(rng, start: float, bars: int, bpb: int, chord_at, scale_pcs, prev: int) -> tuple[list, int]:
    """A singable line: chord tones on strong beats, steps in between; returns notes (beat, beats, pitch), last."""
    line = _pitches(scale_pcs, 62, 88)
    notes, pos = [], int(np.argmin(np.abs(line - prev)))
    for bar in range(bars):
        beat = start + bar * bpb
        for dur in _RHYTHMS[bpb][rng.integers(len(_RHYTHMS[bpb]))]:
            if float(beat).is_integer() and rng.random() < 0.7:  # land on the nearest chord tone
                tones = np.flatnonzero(np.isin(line % 12, chord_at(beat)))
                pos = int(tones[np.argmin(np.abs(tones - pos - rng.integers(-2, 3)))])
            else:
                pos = int(np.clip(pos + rng.choice([-2, -1, -1, 1, 1, 2]), 0, len(line) - 1))
            notes.append((beat, dur, int(line[pos])))
            beat += dur
    return notes, int(line[pos])


def _accompaniment(rng, texture: str, start: float, length: float, pcs, root_pc: int, bpb: int) -> list:
    """Left hand (and, for chords and arpeggios, both hands) over one chord: (beat, beats, pitch, role)."""
    bass = _pitches([root_pc], 31, 50)
    bass = int(rng.choice(bass))
    out = [(start, min(length, bpb), bass, "bass")]
    if texture == "melody":  # bass on the downbeat, chords on the other beats (oom-pah-pah)
        chord = _pitches(pcs, 50, 67)[:3]
        for b in np.arange(start + 1, start + length):
            out += [(b, 1.0, int(p), "accomp") for p in chord]
    elif texture == "chords":
        step = float(rng.choice([1.0, 2.0])) if length >= 2 else length
        rh = _pitches(pcs, 55, 79)
        lo = rng.integers(0, max(1, len(rh) - 3))
        for b in np.arange(start, start + length, step):
            out += [(b, step, int(p), "accomp") for p in rh[lo:lo + int(rng.integers(3, 5))]]
    elif texture == "arpeggio":
        step = 0.25 if rng.random() < 0.4 else 0.5
        tones = _pitches(pcs, bass + 1, bass + 30)
        cycle = np.concatenate([tones, tones[-2:0:-1]]) if rng.random() < 0.5 else tones
        for i, b in enumerate(np.arange(start + step, start + length, step)):
            out.append((b, step, int(cycle[i % len(cycle)]), "accomp"))
    elif texture == "alberti":  # low-high-middle-high in eighths
        low, mid, high = _pitches(pcs, 48, 67)[:3]
        pattern = (low, high, mid, high)
        out = [(start, min(length, bpb), bass - 12 if bass >= 40 else bass, "bass")]
        for i, b in enumerate(np.arange(start, start + length, 0.5)):
            out.append((b, 0.5, int(pattern[i % 4]), "accomp"))
    else:
        raise ValueError(f"unknown texture {texture!r}; choose one of {TEXTURES}")
    return out


def _ramp(t0: float, t1: float, v0: float, v1: float) -> list[tuple[float, int]]:
    """CC64 samples every 10 ms from (t0, v0) to (t1, v1), as a Disklavier records a moving pedal."""
    n = max(1, int(round((t1 - t0) / 0.01)))
    return [(t0 + (t1 - t0) * i / n, int(round(v0 + (v1 - v0) * i / n))) for i in range(n + 1)]


@dataclass(frozen=True)
class _Frame:
    """What a piece is written in: key, metre, tempo curve, length (:func:`_frame`)."""

    tonic: int  # pitch class of the key's tonic
    minor: bool  # harmonic minor, else major
    scale: list[int]  # the key's seven pitch classes, tonic first
    bpb: int  # beats per bar (3 or 4)
    per_bar: int  # chords per bar
    bpm: float  # nominal tempo
    phrase_beats: int  # beats per phrase
    when: Callable  # beat → seconds (:func:`_tempo_map`)
    n_bars: int  # bars of the piece, the last one the final chord

    @property
    def chord_len(self) -> float:
        """Beats per chord."""
        return self.bpb / self.per_bar

    @property
    def end_beat(self) -> int:
        return self.n_bars * self.bpb

    def chord_pcs(self, root: int) -> list[int]:
        """Pitch classes of the triad on scale degree ``root``."""
        return [self.scale[(root + k) % 7] for k in (0, 2, 4)]


def _frame(rng: np.random.Generator, seconds: float, config: PerformanceConfig) -> _Frame:
    """Draw key, metre, chords per bar and tempo; fit the bars (at least two) into ``seconds``."""
    tonic, minor = int(rng.integers(12)), bool(rng.random() < 0.4)
    scale = [(tonic + s) % 12 for s in (_MINOR if minor else _MAJOR)]
    bpb = int(rng.choice([3, 4]))
    per_bar = int(rng.choice([1, 2])) if bpb == 4 else 1  # chords per bar
    bpm = float(rng.uniform(*config.tempo))
    phrase_beats = config.phrase_bars * bpb
    max_beats = int(np.ceil(seconds * config.tempo[1] / 60 * 1.6)) + phrase_beats
    when = _tempo_map(rng, bpm, max_beats, phrase_beats, config)
    n_bars = max(2, int(np.searchsorted(when(np.arange(0, max_beats, bpb) + bpb), seconds, side="right")))
    return _Frame(tonic, minor, scale, bpb, per_bar, bpm, phrase_beats, when, n_bars)


def _chord_roots(rng: np.random.Generator, f: _Frame, config: PerformanceConfig) -> list[int]:
    """Scale degrees of every chord, phrase by phrase (:func:`_progression`); the last bar holds the tonic."""
    roots: list[int] = []
    while len(roots) * f.chord_len < (f.n_bars - 1) * f.bpb:  # the last bar holds the final tonic chord
        roots += _progression(rng, config.phrase_bars * f.per_bar)
    return roots[: int((f.n_bars - 1) * f.per_bar)] + [0] * f.per_bar


def _score(rng: np.random.Generator, f: _Frame, roots: list[int],
           config: PerformanceConfig) -> tuple[list[tuple], list[str]]:
    """The notes in beats, phrase by phrase in each phrase's texture, the final chord held for the last bar.

    Returns
    -------
    notes : list of (beat, beats, pitch, role, phrase)
    textures : list of str, one per phrase
    """
    def chord_at(beat: float) -> list[int]:
        return f.chord_pcs(roots[min(int(beat // f.chord_len), len(roots) - 1)])

    notes: list[tuple[float, float, int, str, int]] = []  # beat, beats, pitch, role, phrase
    textures, prev_pitch, texture = [], int(rng.integers(66, 80)), str(rng.choice(TEXTURES))
    for phrase, bar0 in enumerate(range(0, f.n_bars, config.phrase_bars)):
        bars = min(config.phrase_bars, f.n_bars - bar0)
        if rng.random() < 0.4:
            texture = str(rng.choice(TEXTURES))
        textures.append(texture)
        for c in range(bar0 * f.per_bar, (bar0 + bars) * f.per_bar):
            for b, d, p, role in _accompaniment(rng, texture, c * f.chord_len, f.chord_len, f.chord_pcs(roots[c]),
                                                f.scale[roots[c]], f.bpb):
                notes.append((b, d, p, role, phrase))
        if texture in ("melody", "alberti"):
            line, prev_pitch = _melody(rng, bar0 * f.bpb, bars, f.bpb, chord_at, f.scale, prev_pitch)
            notes += [(b, d, p, "melody", phrase) for b, d, p in line]
    last_bar = f.end_beat - f.bpb
    final = [(b, d, p, r, ph) for b, d, p, r, ph in notes if b >= last_bar]  # the final chord: held
    notes = [n for n in notes if n[0] < last_bar] + [(last_bar, f.bpb, p, r, ph)
                                                     for b, d, p, r, ph in final if b == last_bar]
    return notes, textures


def _perform(rng: np.random.Generator, f: _Frame, notes: list[tuple], n_phrases: int,
             config: PerformanceConfig) -> list[list]:
    """Dynamics, articulation and timing: notes in beats → ``[start s, end s, pitch, velocity]``."""
    level = np.clip(np.cumsum(rng.normal(0, 8, n_phrases)) + rng.uniform(*config.dynamics), *config.dynamics)
    arch = rng.uniform(5, 20, n_phrases)
    legato = rng.random(n_phrases) < 0.75
    role_gain = {"melody": 10, "bass": 2, "accomp": -10}
    midi_notes = []
    for b, d, p, role, ph in notes:
        pos = (b - ph * f.phrase_beats) / f.phrase_beats
        vel = level[ph] + arch[ph] * np.sin(np.pi * pos) + role_gain[role] + 4 * (b % f.bpb == 0) + rng.normal(0, 3)
        art = rng.uniform(0.85, 1.0) if legato[ph] or b >= f.end_beat - f.bpb else rng.uniform(0.35, 0.6)
        start = float(f.when(b)) + rng.normal(0, config.timing_jitter)
        end = float(f.when(b + d * art))
        midi_notes.append([max(0.0, start), end, p, int(np.clip(round(vel), 1, 127))])
    return _separate_repeats(midi_notes)


def _pedal(rng: np.random.Generator, f: _Frame, n_chords: int, n_phrases: int, last: float,
           config: PerformanceConfig) -> list[tuple[float, int]]:
    """The CC64 curve ``[(time s, value)]``: lift just after each harmony change, press again to a full or half
    depth in pedalled phrases, release after the last note (``last``, s)."""
    cc, depth = [(0.0, 0)], 0
    pedalled = rng.random(n_phrases) < config.pedal_probability
    for c in range(n_chords):
        t = float(f.when(c * f.chord_len))
        ph = int(c * f.chord_len // f.phrase_beats)
        lift_at = t + rng.uniform(0.0, 0.04)
        if depth:
            up = lift_at + rng.uniform(0.04, 0.12)
            cc += _ramp(lift_at, up, depth, 0)
            lift_at, depth = up, 0
        if pedalled[ph]:
            depth = int(rng.integers(110, 128)) if rng.random() < 0.6 else int(rng.integers(*config.half_pedal))
            down = lift_at + rng.uniform(0.02, 0.1)
            cc += _ramp(down, down + rng.uniform(0.05, 0.15), 0, depth)
    if depth:
        cc += _ramp(last, last + rng.uniform(0.1, 0.3), depth, 0)
    return cc


def _to_midi(midi_notes: list[list], cc: list[tuple[float, int]], description: str,
             config: PerformanceConfig) -> pretty_midi.PrettyMIDI:
    """One piano track with the notes and the pedal curve (repeated CC64 values dropped); ``description`` as its
    lyric."""
    pm = pretty_midi.PrettyMIDI(resolution=config.resolution, initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    piano.notes = [pretty_midi.Note(velocity=v, pitch=int(p), start=s, end=e) for s, e, p, v in midi_notes]
    kept = [cc[0]] + [c for prev, c in zip(cc, cc[1:]) if c[1] != prev[1]]  # drop repeated values
    piano.control_changes = [pretty_midi.ControlChange(64, v, t) for t, v in kept]
    pm.instruments.append(piano)
    pm.lyrics.append(pretty_midi.Lyric(description, 0.0))
    return pm


def compose(seed: int, index: int, seconds: float, config: PerformanceConfig = CONFIG) -> pretty_midi.PrettyMIDI:
    """One synthetic performance, determined by (seed, index).

    The stages draw from one random stream in a fixed order: key, metre and tempo (:func:`_frame`), chords
    (:func:`_chord_roots`), the notes in beats (:func:`_score`), their performance (:func:`_perform`) and the
    pedal (:func:`_pedal`).

    Parameters
    ----------
    seed, index : int
        The random stream is ``numpy.random.default_rng([seed, index])``.
    seconds : float
        Target length; the piece ends with a tonic chord on the last bar line before it (at least two bars).
    config : PerformanceConfig

    Returns
    -------
    pretty_midi.PrettyMIDI
        One acoustic-grand-piano instrument with notes (pitches 28-91) and CC64 control changes; its
        ``texts`` hold a one-line description (key, metre, tempo, textures).
    """
    if seconds <= 0:
        raise ValueError(f"compose: seconds must be positive, got {seconds}")
    rng = np.random.default_rng([int(seed), int(index)])
    f = _frame(rng, seconds, config)
    roots = _chord_roots(rng, f, config)
    notes, textures = _score(rng, f, roots, config)
    midi_notes = _perform(rng, f, notes, len(textures), config)
    cc = _pedal(rng, f, len(roots), len(textures), max(n[1] for n in midi_notes), config)
    key = pretty_midi.note_number_to_name(60 + f.tonic)[:-1] + (" minor" if f.minor else " major")
    return _to_midi(midi_notes, cc, f"{key}, {f.bpb}/4, {f.bpm:.0f} bpm, {'/'.join(dict.fromkeys(textures))}", config)


def _separate_repeats(notes: list[list]) -> list[list]:
    """Drop duplicate keys struck together and end each note 10 ms before its key is struck again."""
    notes = sorted(notes, key=lambda n: (n[2], n[0], -n[3]))
    out = []
    for n in notes:
        if out and out[-1][2] == n[2]:
            prev = out[-1]
            if n[0] - prev[0] < 0.03:  # the same key twice at once (two hands): keep the louder
                continue
            prev[1] = min(prev[1], n[0] - 0.01)
        out.append(n)
    for n in out:
        n[1] = max(n[1], n[0] + 0.02)
    return sorted(out, key=lambda n: (n[0], n[2]))


# ------------------------------------------------------------------------------------------------------- dataset


def piece_id(index: int) -> str:
    return f"synthetic-{index:05d}"


def assign_splits(n_pieces: int, seed: int, config: PerformanceConfig = CONFIG) -> list[str]:
    """Split name of each piece: a seeded draw with the configured shares, at least one validation and one test
    piece once there are three."""
    n_val = int(round(config.splits[1] * n_pieces))
    n_test = int(round(config.splits[2] * n_pieces))
    if n_pieces >= 3:
        n_val, n_test = max(1, n_val), max(1, n_test)
    order = np.random.default_rng([int(seed), 2**31]).permutation(n_pieces)
    names = np.array(["train"] * n_pieces, dtype=object)
    names[order[:n_val]] = "validation"
    names[order[n_val:n_val + n_test]] = "test"
    return list(names)


_RENDERER = None  # one FluidSynth renderer per worker process (it keeps the soundfont loaded)


def _make_piece(args) -> tuple[int, float, str]:
    root, index, seed, seconds, config = args
    global _RENDERER
    midi_path = Path(root) / "synthetic" / f"{piece_id(index)}.midi"
    audio_path = midi_path.with_suffix(".wav")
    pm = compose(seed, index, seconds, config)
    with io.atomic_path(midi_path) as tmp:
        pm.write(str(tmp))
    pm = pretty_midi.PrettyMIDI(str(midi_path))  # render what the targets will be read from (tick-quantised)
    if _RENDERER is None or _RENDERER.sr != config.sample_rate:
        _RENDERER = Renderer(config.sample_rate)
    audio = _RENDERER.render(pm, duration=pm.get_end_time() + config.tail)
    with io.atomic_path(audio_path) as tmp:
        sf.write(tmp, audio, config.sample_rate, subtype="PCM_16")
    return index, len(audio) / config.sample_rate, pm.lyrics[0].text if pm.lyrics else ""


def generate(root: str | os.PathLike, n_pieces: int, seconds: float, seed: int = 0, workers: int | None = None,
             progress: bool = True, config: PerformanceConfig = CONFIG) -> pd.DataFrame:
    """Write ``n_pieces`` synthetic performances and their metadata CSV into ``root`` (resumable).

    Parameters
    ----------
    root : path
        Output folder (created).  If it already holds a synthetic dataset of other settings, ``ValueError``.
    n_pieces : int
        Number of performances.
    seconds : float
        Length of each (see :func:`compose`); the audio is about ``seconds + config.tail`` long.
    seed : int
        Everything is a function of the seed (and the soundfont).
    workers : int, optional
        Worker processes (default: the CPU count); 1 runs in this process.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    pandas.DataFrame
        The metadata as written to ``maestro-v3.0.0.csv`` (read it back with :func:`mtlnb.piano.maestro.read_metadata`).
    """
    if n_pieces < 1:
        raise ValueError(f"generate: n_pieces must be >= 1, got {n_pieces}")
    if seconds <= 0:
        raise ValueError(f"generate: seconds must be positive, got {seconds}")
    root = Path(root)
    settings = {"seed": int(seed), "seconds": float(seconds), "config": asdict(config), "version": GENERATOR_VERSION}
    settings_path = root / SETTINGS_FILE
    if settings_path.exists():
        old = io.read_json(settings_path)
        if {k: v for k, v in old.items() if k != "n_pieces"} != _jsonable(settings):
            raise ValueError(f"{root} holds synthetic performances of other settings ({settings_path}); "
                             "choose another folder or delete it")
    io.write_json(settings_path, {**settings, "n_pieces": int(n_pieces)})

    done, todo = {}, []
    for i in range(n_pieces):
        midi_path = root / "synthetic" / f"{piece_id(i)}.midi"
        audio_path = midi_path.with_suffix(".wav")
        if midi_path.is_file() and audio_path.is_file():
            info = sf.info(audio_path)
            pm = pretty_midi.PrettyMIDI(str(midi_path))
            done[i] = (info.frames / info.samplerate, pm.lyrics[0].text if pm.lyrics else "")
        else:
            todo.append((str(root), i, int(seed), float(seconds), config))
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    with ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=len(todo), desc="performances", unit="piece",
                                       disable=not progress or not todo))
        if workers == 1:
            results = map(_make_piece, todo)
        else:
            # "spawn": FluidSynth's threads do not survive a fork (a forked worker of a process that already
            # rendered deadlocks), so workers start fresh and load their own soundfont.
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            results = stack.enter_context(pool).map(_make_piece, todo)
        for index, duration, text in results:
            done[index] = (duration, text)
            bar.update()

    splits = assign_splits(n_pieces, seed, config)
    rows = [{"canonical_composer": "mtlnb synthetic", "canonical_title": f"Performance {i} ({done[i][1]})",
             "split": splits[i], "year": 0, "midi_filename": f"synthetic/{piece_id(i)}.midi",
             "audio_filename": f"synthetic/{piece_id(i)}.wav", "duration": round(done[i][0], 6)}
            for i in range(n_pieces)]
    df = pd.DataFrame(rows, columns=list(maestro.COLUMNS))
    io.write_text(root / maestro.CSV_NAMES[0], df.to_csv(index=False))
    return df


def _jsonable(obj):
    """``obj`` as it reads back from JSON (tuples become lists), to compare with a stored settings file."""
    return json.loads(json.dumps(obj))
