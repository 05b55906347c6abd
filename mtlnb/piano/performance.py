"""Synthetic piano performances in the MAESTRO layout: the piano study's embedded default data.

MAESTRO itself (about 100 GB) is out of reach here, so :func:`generate` writes a folder that
:mod:`mtlnb.piano.maestro` reads like the real thing::

    <root>/maestro-v3.0.0.csv                 canonical_composer, canonical_title, split, year, midi_filename, ...
    <root>/synthetic/synthetic-00000.midi     one piano track: notes + continuous sustain pedal (CC64)
    <root>/synthetic/synthetic-00000.wav      44.1 kHz mono 16-bit, rendered with FluidSynth
    <root>/synthetic.json                     the seed and settings, so that a resumed run cannot mix two datasets

Two generators, chosen by :class:`PerformanceConfig`'s ``style`` (named configurations in :data:`CONFIGS`):

``"pianist"`` (the default, :data:`CONFIG`) plays like MAESTRO's pianists.  Its numbers are tuned so that, measured
with :mod:`mtlnb.piano.performance_stats` (pretty_midi, key-release note lengths, pedal down at CC64 >= 64), a set of
pieces matches real MAESTRO performances in note density (~7.5 notes/s), median key-release length (~0.19 s),
polyphony while sounding (~2.2), velocity spread (std within a piece ~14) and pedal-down time (~54 %).  Per piece (:func:`compose`):

- a key (major or harmonic minor), 3/4 or 4/4, a chord progression (a Markov chain over the diatonic triads,
  each phrase opening on I and closing with a cadence), one or two chords per bar;
- per phrase one of :data:`PIANIST_TEXTURES`: a melody over a broken-chord left hand (nocturne), four-part block
  chords (chorale), running arpeggios, a melody over an Alberti bass, scale runs over bass and chords, a waltz-like
  bass-chord-chord; the running voice moves at 5-10.5 notes per second whatever the tempo (a pianist's
  passage-work), the melody in cells of quarters to sixteenths;
- articulation per phrase (legato, portato, staccato), and under the pedal the left hand and the chords let go of
  the keys early, as pianists do (the pedal holds the sound): most key-release lengths are short;
- timing: a tempo curve with rubato and phrase-final ritardandi, onset jitter, the melody leading its chord by a
  few ms and occasionally rolled chords;
- velocities: a piece level, phrase levels that drift around it, a swell (crescendo to a peak, then diminuendo)
  per phrase, melody above accompaniment, metric and occasional sforzando accents, a pianist's note-to-note spread;
- the sustain pedal as a Disklavier records it: CC64 ramps every 10 ms, "legato pedalling" (the pedal lifted
  just after each harmony change and pressed again), some changes only part-way up, depths mostly between 64
  and 100 (a real pedal is seldom pushed to 127), some half-pedal presses below 64, small wobbles while held,
  and dry (pedal-free) phrases, most of them scale runs and staccato phrases.

``"simple"`` is the first generator (``CONFIGS["simple"]``, the same music for a seed as before): the same keys,
metres and progressions with melody-and-accompaniment, block-chord, arpeggio and Alberti textures, slower and
longer notes (about 5 notes/s, median key-release length 0.3-0.4 s, polyphony 2.5-2.8, a velocity std of ~11
within a piece) and full or half pedal presses at every harmony change.

Real musical material (music21's bundled corpus, performed with humanised timing, dynamics and pedalling) was
weighed and left out.  Beside its few hundred four-part Bach chorales the corpus holds little keyboard music, and
chorales played as written move in even quarter notes: slower and longer than MAESTRO's notes (the very statistics
this module is tuned on) unless the performance adds figuration, i.e. a generator again.  Against that, music21 is
a large install (the corpus ships inside the package) with dependencies of its own, parses scores slowly (a full
object model per score) and its parsed output may change with its version, which a seed-determined dataset cannot
have.

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
GENERATOR_VERSION = 2  # bump when the music a seed produces changes
TEXTURES = ("melody", "chords", "arpeggio", "alberti")  # the simple generator's
PIANIST_TEXTURES = ("nocturne", "chorale", "arpeggio", "alberti", "scales", "waltz")
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
    """Settings of the synthetic performances; fields marked (simple) or (pianist) are read by that style only."""

    style: str = "pianist"  # which generator (STYLES): "pianist" (tuned to MAESTRO) or "simple" (the first one)
    tempo: tuple[float, float] = (60.0, 160.0)  # bpm range, one tempo drawn per piece (MAESTRO's typical range)
    rubato: float = 0.06  # amplitude of the smooth per-phrase tempo curve, relative: audible but not erratic
    ritardando: float = 0.3  # slow-down at the end of each phrase, relative: marks the cadences
    timing_jitter: float = 0.008  # s, std of per-note onset noise: chords are not perfectly together
    phrase_bars: int = 4  # bars per phrase: the unit of dynamics, texture, pedal use and cadences
    dynamics: tuple[int, int] = (30, 90)  # (simple) range of the phrase's base velocity (melody +10, arch +5..20)
    pedal_probability: float = 0.85  # share of phrases played with pedal (pianist: scale runs, staccato less)
    half_pedal: tuple[int, int] = (35, 64)  # CC64 depth range of half-pedal presses (simple: 40-100)
    # (pianist) Notes per second of a phrase's running voice, drawn per phrase: MAESTRO's passage-work is ~4-12.
    note_rate: tuple[float, float] = (5.0, 10.5)
    velocity: tuple[float, float] = (64.0, 4.5)  # (pianist) mean and std of a piece's base velocity
    phrase_drift: float = 8.0  # (pianist) std of a phrase's level around the piece's (velocity steps)
    swell: tuple[float, float] = (8.0, 22.0)  # (pianist) range of a phrase's crescendo-diminuendo height
    note_spread: float = 10.0  # (pianist) std of note-to-note velocity noise: a pianist's unevenness
    accent_probability: float = 0.05  # (pianist) share of onsets played sforzando (+8..18)
    pedal_depths: tuple[float, float, float] = (0.6, 0.25, 0.15)  # (pianist) P(64-100), P(full 100-127), P(half)
    tail: float = 1.0  # s of audio after the last MIDI event, so that the final chord rings out
    sample_rate: int = 44100  # Hz, the piano study's rate
    splits: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train / validation / test shares, like MAESTRO's
    resolution: int = 480  # MIDI ticks per quarter note at 120 bpm: ~1 ms timing grid


STYLES = ("pianist", "simple")
CONFIGS = {
    "pianist": PerformanceConfig(),
    # The first generator with its original settings: the same music for a seed as before "pianist" existed.
    "simple": PerformanceConfig(style="simple", pedal_probability=0.75, half_pedal=(40, 100)),
}
CONFIG = CONFIGS["pianist"]  # the default of compose() and generate()


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


# ------------------------------------------------------------------------------------------- the pianist generator


@dataclass(frozen=True)
class _Phrase:
    """How one phrase of the pianist generator is played (:func:`_plan_phrases`)."""

    texture: str  # one of PIANIST_TEXTURES
    unit: float  # beats per note of the running voice (_UNITS: 1 down to 1/8)
    articulation: str  # "legato", "portato" or "staccato"
    pedalled: bool  # played with the sustain pedal


_UNITS = (1.0, 0.5, 1 / 3, 0.25, 1 / 6, 0.125)  # subdivisions of the beat a running voice may move in
_ARTICULATIONS = {"legato": 0.55, "portato": 0.3, "staccato": 0.15}  # phrase shares
# Key-release length / written length per articulation and role (uniform ranges).  Under the pedal the bass and
# the chords are let go early (the pedal holds their sound): _PEDALLED_RELEASE replaces their ranges there.
_RELEASE = {
    "legato": {"melody": (0.9, 1.05), "figure": (0.9, 1.15), "inner": (0.65, 0.95), "bass": (0.7, 1.0)},
    "portato": {"melody": (0.6, 0.85), "figure": (0.65, 0.9), "inner": (0.45, 0.75), "bass": (0.4, 0.8)},
    "staccato": {"melody": (0.3, 0.5), "figure": (0.35, 0.6), "inner": (0.2, 0.45), "bass": (0.25, 0.5)},
}
_PEDALLED_RELEASE = {"inner": (0.4, 0.8), "bass": (0.3, 0.7)}
_ROLE_GAIN = {"melody": 7.0, "figure": -1.0, "inner": -6.0, "bass": 1.0}  # velocity steps: melody sings out
# Melody rhythm cells (beats), with weights for slow beats (> 0.5 s) and fast ones: sixteenths at a fast tempo
# would outrun the running voice.
_CELLS = ((1.0,), (0.5, 0.5), (0.75, 0.25), (0.25, 0.25, 0.5), (0.5, 0.25, 0.25), (0.25,) * 4, (1 / 3,) * 3,
          (2.0,))
_CELL_WEIGHTS = {"slow": (2, 3, 1, 1.5, 1.5, 1.5, 0.5, 1), "fast": (3, 3, 1, 0.3, 0.3, 0.2, 0.4, 1.5)}


def _unit(rng: np.random.Generator, bpm: float, config: PerformanceConfig) -> float:
    """The subdivision of the beat whose note rate (notes/s at ``bpm``) is nearest a rate drawn from
    ``config.note_rate``."""
    rate = rng.uniform(*config.note_rate)
    units = np.array(_UNITS)
    return float(units[np.argmin(np.abs(bpm / 60 / units - rate))])


def _plan_phrases(rng: np.random.Generator, f: _Frame, config: PerformanceConfig) -> list[_Phrase]:
    """Texture, running-voice unit, articulation and pedal of every phrase.  Scale runs and staccato phrases are
    mostly dry; a texture is often kept for the next phrase (pieces have sections)."""
    plans: list[_Phrase] = []
    texture = str(rng.choice(PIANIST_TEXTURES))
    n = len(range(0, f.n_bars, config.phrase_bars))
    # Stratified uniforms (one per 1/n of [0, 1), shuffled): each phrase is pedalled with the configured
    # probability, but a piece's share of pedalled phrases varies less than with independent draws.
    u = (rng.permutation(n) + rng.random(n)) / n
    for i in range(n):
        if plans and rng.random() < 0.5:
            texture = str(rng.choice(PIANIST_TEXTURES))
        articulation = str(rng.choice(list(_ARTICULATIONS), p=list(_ARTICULATIONS.values())))
        dry = texture == "scales" or articulation == "staccato"
        pedalled = bool(u[i] < config.pedal_probability * (0.4 if dry else 1.0))
        plans.append(_Phrase(texture, _unit(rng, f.bpm, config), articulation, pedalled))
    return plans


def _voicing(pcs, top: int, n: int) -> list[int]:
    """``n`` chord tones in close position whose highest is the chord tone nearest ``top``."""
    tones = _pitches(pcs, top - 14, top + 4)
    top = int(tones[np.argmin(np.abs(tones - top))])
    return [int(p) for p in tones[tones <= top][-n:]]


def _melody_line(rng, start: float, beats: float, f: _Frame, chord_at, prev: int) -> tuple[list, int]:
    """A melody over ``beats`` beats from ``start``: rhythm cells per beat, chord tones on the beats, steps and a
    few leaps in between, a long last note; returns notes (beat, beats, pitch) and the last pitch."""
    line = _pitches(f.scale, 60, 88)
    weights = np.array(_CELL_WEIGHTS["slow" if 60 / f.bpm > 0.5 else "fast"], dtype=float)
    notes, pos, beat, end = [], int(np.argmin(np.abs(line - prev))), start, start + beats
    while beat < end - 1e-9:
        left = end - beat
        if left <= 2:  # the phrase's last note: held to its end
            cell = (left,)
        else:
            cell = _CELLS[rng.choice(len(_CELLS), p=weights / weights.sum())]
        for dur in cell:
            if float(beat).is_integer() and rng.random() < 0.7:
                tones = np.flatnonzero(np.isin(line % 12, chord_at(beat)))
                pos = int(tones[np.argmin(np.abs(tones - pos - rng.integers(-2, 3)))])
            else:
                step = rng.choice([-4, -2, -1, -1, 1, 1, 2, 3])
                pos = int(np.clip(pos + step, 0, len(line) - 1))
            notes.append((beat, dur, int(line[pos])))
            beat += dur
    return notes, int(line[pos])


def _figure(rng, texture: str, start: float, length: float, pcs, root_pc: int, unit: float, top: int) -> list:
    """The accompaniment (and, for arpeggios and scale runs, the running voice) over one chord:
    (beat, beats, pitch, role) with roles "bass", "inner" (chord notes) and "figure" (a running voice)."""
    bass = int(rng.choice(_pitches([root_pc], 31, 50)))
    out = []
    if texture == "nocturne":  # a broken chord from the bass up and back in the left hand, at most in eighths
        lh_unit = unit if unit >= 0.5 else 2 * unit
        tones = _pitches(pcs, bass + 3, bass + 20)[:4]
        cycle = np.concatenate([[bass], tones, tones[-2:0:-1]])
        out += [(b, lh_unit, int(cycle[i % len(cycle)]), "bass" if i % len(cycle) == 0 else "figure")
                for i, b in enumerate(np.arange(start, start + length - 1e-9, lh_unit))]
    elif texture == "chorale":  # four-part block chords, one per beat or per chord
        step = 1.0 if rng.random() < 0.6 else length
        for b in np.arange(start, start + length - 1e-9, step):
            out.append((b, step, bass, "bass"))
            out += [(b, step, p, "inner") for p in _voicing(pcs, top, 3)[:-1]]  # the top voice is the melody's
    elif texture == "arpeggio":  # the bass, then the chord up and down over two octaves
        out.append((start, length, bass, "bass"))
        tones = _pitches(pcs, bass + 7, bass + 7 + int(rng.integers(19, 31)))
        cycle = np.concatenate([tones, tones[-2:0:-1]])
        steps = np.arange(start + unit, start + length - 1e-9, unit)
        out += [(b, unit, int(cycle[i % len(cycle)]), "figure") for i, b in enumerate(steps)]
    elif texture == "alberti":  # low-high-middle-high
        low, mid, high = _pitches(pcs, 48, 67)[:3]
        pattern = (low, high, mid, high)
        lh_unit = unit if unit >= 0.5 or rng.random() < 0.5 else 2 * unit  # not always as fast as the runs
        out += [(b, lh_unit, int(pattern[i % 4]), "figure")
                for i, b in enumerate(np.arange(start, start + length - 1e-9, lh_unit))]
        out.append((start, length, bass - 12 if bass >= 40 else bass, "bass"))
    elif texture == "scales":  # the bass, then two-note chords on the beats, under a scale run
        out.append((start, 1.0, bass, "bass"))
        out += [(b, 1.0, p, "inner") for b in np.arange(start + 1, start + length - 1e-9, 1.0)
                for p in _voicing(pcs, bass + 19, 2)]
    elif texture == "waltz":  # bass on the first beat, chords on the others
        out.append((start, 1.0, bass, "bass"))
        chord = _voicing(pcs, int(rng.integers(62, 68)), 3)
        for b in np.arange(start + 1, start + length - 1e-9, 1.0):
            out += [(b, 1.0, p, "inner") for p in chord]
    else:
        raise ValueError(f"unknown texture {texture!r}; choose one of {PIANIST_TEXTURES}")
    return out


def _scale_run(rng, start: float, length: float, f: _Frame, unit: float, prev: int) -> tuple[list, int]:
    """A running scale in the right hand over ``length`` beats, turning at the range's ends and now and then."""
    line = _pitches(f.scale, 60, 96)
    pos, direction, out = int(np.argmin(np.abs(line - prev))), int(rng.choice([-1, 1])), []
    for b in np.arange(start, start + length - 1e-9, unit):
        out.append((float(b), unit, int(line[pos]), "figure"))
        if not 0 < pos + direction < len(line) - 1 or rng.random() < 0.08:
            direction = -direction
        pos += direction
    return out, int(line[pos])


def _score_pianist(rng: np.random.Generator, f: _Frame, roots: list[int], plans: list[_Phrase],
                   config: PerformanceConfig) -> list[tuple]:
    """The notes in beats, phrase by phrase in each phrase's texture, the final chord held for the last bar.

    Returns
    -------
    list of (beat, beats, pitch, role, phrase), role one of "melody", "figure", "inner", "bass"
    """
    def chord_at(beat: float) -> list[int]:
        return f.chord_pcs(roots[min(int(beat // f.chord_len), len(roots) - 1)])

    notes: list[tuple] = []
    prev = int(rng.integers(66, 80))
    last_bar = f.n_bars - 1
    for phrase, bar0 in enumerate(range(0, last_bar, config.phrase_bars)):
        plan, bars = plans[phrase], min(config.phrase_bars, last_bar - bar0)
        start, beats = bar0 * f.bpb, bars * f.bpb
        melody: list = []
        if plan.texture in ("nocturne", "chorale", "alberti", "waltz"):
            line, prev = _melody_line(rng, start, beats, f, chord_at, prev)
            melody = [(b, d, p, "melody", phrase) for b, d, p in line]
        elif plan.texture == "scales":
            run, prev = _scale_run(rng, start, beats, f, plan.unit, prev)
            melody = [(b, d, p, r, phrase) for b, d, p, r in run]
        tops = {b: p for b, _, p, _, _ in melody}
        for c in range(bar0 * f.per_bar, (bar0 + bars) * f.per_bar):
            b0 = c * f.chord_len
            top = tops.get(b0, prev) - 2 if plan.texture == "chorale" else prev
            notes += [(b, d, p, r, phrase) for b, d, p, r in
                      _figure(rng, plan.texture, b0, f.chord_len, f.chord_pcs(roots[c]), f.scale[roots[c]],
                              plan.unit, top)]
        notes += melody
    # The final bar: the tonic chord, held, from the bass to the melody's last pitch.
    phrase = len(plans) - 1
    final = f.end_beat - f.bpb
    bass = int(_pitches([f.tonic], 31, 43)[0])
    notes += [(final, float(f.bpb), p, "bass", phrase) for p in (bass, bass + 12)]
    notes += [(final, float(f.bpb), p, "inner", phrase) for p in _voicing(f.chord_pcs(0), prev, 3)]
    return notes


def _velocities(rng: np.random.Generator, f: _Frame, notes: list[tuple], n_phrases: int,
                config: PerformanceConfig) -> np.ndarray:
    """MIDI velocity (1..127) of every note: piece level + phrase level + swell + role + metre + accents + spread."""
    base = rng.normal(*config.velocity)
    level = np.empty(n_phrases)
    for i in range(n_phrases):  # phrase levels: an AR(1) walk around the piece's level (sections, terraces)
        prev = level[i - 1] - base if i else 0.0
        level[i] = base + 0.5 * prev + rng.normal(0, config.phrase_drift)
    height = rng.uniform(*config.swell, n_phrases) * rng.choice([1, 1, 1, -1], n_phrases)  # a few "hairpins in"
    peak = rng.uniform(0.4, 0.8, n_phrases)
    onsets = sorted({n[0] for n in notes})
    accent = dict(zip(onsets, (rng.random(len(onsets)) < config.accent_probability) * rng.uniform(8, 18, len(onsets))))
    out = np.empty(len(notes))
    for i, (b, _, _, role, ph) in enumerate(notes):
        pos = np.clip((b - ph * f.phrase_beats) / f.phrase_beats, 0, 1)
        swell = height[ph] * (pos / peak[ph] if pos < peak[ph] else (1 - pos) / (1 - peak[ph])) - height[ph] / 2
        metre = 5.0 if b % f.bpb == 0 else 2.0 if float(b).is_integer() else 0.0
        out[i] = level[ph] + swell + _ROLE_GAIN[role] + metre + accent[b] + rng.normal(0, config.note_spread)
    return np.clip(np.round(out), 1, 127)


def _perform_pianist(rng: np.random.Generator, f: _Frame, notes: list[tuple], plans: list[_Phrase],
                     config: PerformanceConfig) -> list[list]:
    """Velocities, articulation and timing: notes in beats → ``[start s, end s, pitch, velocity]``."""
    velocities = _velocities(rng, f, notes, len(plans), config)
    final = f.end_beat - f.bpb
    rolled = {b for b in sorted({n[0] for n in notes}) if rng.random() < 0.1}  # onsets played as rolled chords
    order = {}
    midi_notes = []
    for (b, d, p, role, ph), vel in zip(notes, velocities):
        plan = plans[ph]
        lo, hi = (_PEDALLED_RELEASE[role] if plan.pedalled and role in _PEDALLED_RELEASE
                  else _RELEASE[plan.articulation][role])
        art = 1.0 if b >= final else rng.uniform(lo, hi)
        start = float(f.when(b)) + rng.normal(0, config.timing_jitter)
        if role == "melody":
            start -= rng.uniform(0.0, 0.02)  # the melody leads its chord
        elif b in rolled and role != "figure":
            order[b] = order.get(b, 0) + 1  # rolled upwards in the order the voices were written (bass first)
            start += 0.018 * order[b]
        end = max(float(f.when(b + d * art)), start + 0.035)  # even a staccato key is down 35 ms
        midi_notes.append([max(0.0, start), end, p, int(vel)])
    return _separate_repeats(midi_notes)


def _pedal_depth(rng: np.random.Generator, config: PerformanceConfig) -> int:
    """CC64 depth of one press: mostly 64-100 (a Disklavier's usual "down"), some full, some half pedal."""
    kind = rng.choice(3, p=config.pedal_depths)
    lo, hi = ((64, 101), (101, 128), config.half_pedal)[kind]
    return int(rng.integers(lo, hi))


def _wobble(rng: np.random.Generator, cc: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Small changes of a held pedal (a foot is never still): every 0.15-0.3 s, +-3 around the held depth, never
    across the threshold of 64 (a held pedal stays down, a held half pedal stays below)."""
    out = []
    for (t0, v0), (t1, _) in zip(cc, cc[1:] + [(cc[-1][0], 0)]):
        out.append((t0, v0))
        lo, hi = (64, 127) if v0 >= 64 else (1, 63)
        t = t0 + rng.uniform(0.15, 0.3)
        while v0 > 0 and t < t1 - 0.05:
            out.append((t, min(max(v0 + int(rng.integers(-3, 4)), lo), hi)))
            t += rng.uniform(0.15, 0.3)
    return out


def _pedal_pianist(rng: np.random.Generator, f: _Frame, roots: list[int], plans: list[_Phrase], last: float,
                   config: PerformanceConfig) -> list[tuple[float, int]]:
    """The CC64 curve ``[(time s, value)]``: legato pedalling at each harmony change of a pedalled phrase (lifted
    just after the new chord sounds, pressed again), sometimes lifted only part-way; released for dry phrases and
    after the last note (``last``, s)."""
    cc, value = [(0.0, 0)], 0
    for c, root in enumerate(roots):
        t = float(f.when(c * f.chord_len))
        ph = min(int(c * f.chord_len // f.phrase_beats), len(plans) - 1)
        if not plans[ph].pedalled:
            if value:
                up = t + rng.uniform(0.0, 0.05)
                cc += _ramp(up, up + rng.uniform(0.05, 0.15), value, 0)
                value = 0
            continue
        if value and c and root == roots[c - 1] and rng.random() < 0.7:
            continue  # the same harmony: keep the pedal
        at = t + rng.uniform(0.01, 0.07)  # after the new chord's onset: the old harmony is cleared, the new held
        floor = 0
        if value:
            floor = 0 if rng.random() < 0.75 else int(rng.integers(10, 40))  # a partial change
            up = at + rng.uniform(0.04, 0.1)
            cc += _ramp(at, up, value, floor)
            at = up + rng.uniform(0.02, 0.08)
        value = _pedal_depth(rng, config)
        cc += _ramp(at, at + rng.uniform(0.06, 0.2), floor, value)
    if value:
        cc += _ramp(last, last + rng.uniform(0.1, 0.3), value, 0)
    return _wobble(rng, cc)


def _compose_pianist(rng: np.random.Generator, seconds: float, config: PerformanceConfig):
    """(midi notes, CC64 curve, description) of one pianist-style performance."""
    f = _frame(rng, seconds, config)
    roots = _chord_roots(rng, f, config)
    plans = _plan_phrases(rng, f, config)
    notes = _score_pianist(rng, f, roots, plans, config)
    midi_notes = _perform_pianist(rng, f, notes, plans, config)
    cc = _pedal_pianist(rng, f, roots, plans, max(n[1] for n in midi_notes), config)
    textures = [p.texture for p in plans]
    return midi_notes, cc, _describe(f, textures)


def _compose_simple(rng: np.random.Generator, seconds: float, config: PerformanceConfig):
    """(midi notes, CC64 curve, description) of one performance of the first generator."""
    f = _frame(rng, seconds, config)
    roots = _chord_roots(rng, f, config)
    notes, textures = _score(rng, f, roots, config)
    midi_notes = _perform(rng, f, notes, len(textures), config)
    cc = _pedal(rng, f, len(roots), len(textures), max(n[1] for n in midi_notes), config)
    return midi_notes, cc, _describe(f, textures)


def _describe(f: _Frame, textures: list[str]) -> str:
    """"<key>, <metre>, <bpm> bpm, <textures joined by />": the MIDI lyric and the CSV title."""
    key = pretty_midi.note_number_to_name(60 + f.tonic)[:-1] + (" minor" if f.minor else " major")
    return f"{key}, {f.bpb}/4, {f.bpm:.0f} bpm, {'/'.join(dict.fromkeys(textures))}"


def compose(seed: int, index: int, seconds: float, config: PerformanceConfig = CONFIG) -> pretty_midi.PrettyMIDI:
    """One synthetic performance, determined by (seed, index).

    The stages draw from one random stream in a fixed order: key, metre and tempo (:func:`_frame`), chords
    (:func:`_chord_roots`), then for the pianist style the phrase plans (:func:`_plan_phrases`), the notes in beats
    (:func:`_score_pianist`), their performance (:func:`_perform_pianist`) and the pedal (:func:`_pedal_pianist`);
    for the simple style :func:`_score`, :func:`_perform` and :func:`_pedal`.

    Parameters
    ----------
    seed, index : int
        The random stream is ``numpy.random.default_rng([seed, index])``.
    seconds : float
        Target length; the piece ends with a tonic chord on the last bar line before it (at least two bars).
    config : PerformanceConfig
        ``config.style`` chooses the generator (:data:`CONFIGS` holds the named ones).

    Returns
    -------
    pretty_midi.PrettyMIDI
        One acoustic-grand-piano instrument with notes (pitches 28-96) and CC64 control changes; its
        ``lyrics`` hold a one-line description (key, metre, tempo, textures).
    """
    if seconds <= 0:
        raise ValueError(f"compose: seconds must be positive, got {seconds}")
    if config.style not in STYLES:
        raise ValueError(f"compose: unknown style {config.style!r}; choose one of {STYLES}")
    rng = np.random.default_rng([int(seed), int(index)])
    make = _compose_pianist if config.style == "pianist" else _compose_simple
    midi_notes, cc, description = make(rng, seconds, config)
    return _to_midi(midi_notes, cc, description, config)


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
    """Write one piece's MIDI and audio; any failure is raised as a ``RuntimeError`` naming the piece."""
    root, index = args[:2]
    try:
        return _write_piece(*args)
    except Exception as e:  # FluidSynth, the file system, ...: name the piece, keep the cause's words
        path = Path(root) / "synthetic" / piece_id(index)
        raise RuntimeError(f"{path}: could not be made ({type(e).__name__}: {e})") from e


def _write_piece(root, index: int, seed: int, seconds: float, config: PerformanceConfig) -> tuple[int, float, str]:
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
        Worker processes (default, or 0: the CPU count); 1 runs in this process.
    progress : bool
        Show a tqdm bar.
    config : PerformanceConfig
        The generator and its settings (:data:`CONFIGS`); a folder holds the performances of one configuration.

    Returns
    -------
    pandas.DataFrame
        The metadata as written to ``maestro-v3.0.0.csv`` (read it back with :func:`mtlnb.piano.maestro.read_metadata`).
    """
    if n_pieces < 1:
        raise ValueError(f"generate: n_pieces must be >= 1, got {n_pieces}")
    if seconds <= 0:
        raise ValueError(f"generate: seconds must be positive, got {seconds}")
    if workers is not None and workers < 0:
        raise ValueError(f"generate: workers must be >= 1 (or 0 / None for the CPU count), got {workers}")
    if config.style not in STYLES:
        raise ValueError(f"generate: unknown style {config.style!r}; choose one of {STYLES}")
    root = Path(root)
    settings = {"seed": int(seed), "seconds": float(seconds), "config": asdict(config), "version": GENERATOR_VERSION}
    settings_path = root / SETTINGS_FILE
    if settings_path.exists():
        old = io.read_json(settings_path)
        if {k: v for k, v in old.items() if k != "n_pieces"} != _jsonable(settings):
            made_by = "" if old.get("version") == GENERATOR_VERSION else \
                f", made by generator version {old.get('version')} (this is version {GENERATOR_VERSION})"
            raise ValueError(f"{root} holds synthetic performances of other settings ({settings_path}{made_by}); "
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
