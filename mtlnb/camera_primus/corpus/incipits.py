"""Synthetic Camera-PrIMuS incipits: statistics fitted to real incipits, and a generator of semantic tokens.

A real Camera-PrIMuS incipit is the opening phrase of a RISM piece, written in the ``.semantic`` grammar
(``late-fusion-baseline.md`` §1): a clef, an optional key signature, a time signature, then bars of notes and rests
separated by barlines, with ties, fermatas, grace notes and multirests.  This module

- fits the distributions that describe such incipits (:func:`fit_stats` → :class:`IncipitStats`, saved as JSON;
  the package ships ``mtlnb/data/incipit_stats.json``, fitted on the 60 real samples);
- generates new incipits from them (:func:`generate_incipit`), emitting only tokens of the real vocabulary;
- describes corpora for side-by-side comparison (:func:`token_family`, :func:`corpus_statistics`,
  :func:`compare_corpora`).

The generative model, stage by stage (every probability below is a field of :class:`IncipitStats`):

1. **Header.** Clef, key signature (``"none"``: no token, no accidentals) and time signature are drawn
   independently.  Where the time signature is ``C`` or ``C/``, the incipit may be *breve-barred*: real RISM
   incipits in alla breve (and some in ``C``) put a barline only every two notated measures, so their bars last
   twice the time signature.
2. **Plan.** Whether the incipit opens with a multirest bar; whether the first bar is a pickup; how it ends
   (``barline``: a full last bar and a final barline; ``complete``: a full last bar without one; ``truncated``: the
   incipit is cut inside its last bar, as RISM incipits often are); its length.  Length (switchable,
   ``GeneratorConfig.length_model``): by default the number of notes and rests is drawn and bars are added until it
   is reached (a truncated incipit ends on that event; otherwise the bar count whose total is nearest is kept),
   because real incipits are cut by length: in the 60 samples, bars per incipit and events per bar correlate at
   r = −0.70.  The alternative draws the number of bars.  Before each bar after the first, a multirest bar is
   inserted with the fitted per-boundary rate.
3. **Rhythm.** Each bar is filled from left to right.  Note or rest follows a two-state Markov chain
   (P(rest | start), P(rest | after a note), P(rest | after a rest)), which reproduces the runs of rests with which
   parts enter.  The duration (figure and dots) is drawn with the time signature's duration weights among the
   durations that fit the rest of the bar and sit on the metrical grid (:func:`_fits`), so every bar fills its
   meter exactly (breve-barred incipits have weights of their own).  Because the grid forces short notes to come in groups, the weights are not event frequencies
   but the maximum-a-posteriori weights of this very choice model on the real bars (:func:`_choice_weights`).
   *Pickup rule*: a pickup is the tail of a generated full bar, cut at a note onset so that at most
   ``GeneratorConfig.max_pickup_fraction`` of the bar remains.  *Truncation rule*: a truncated last bar is the
   head of a generated full bar (cut after the target event; in the bars model at a uniformly chosen onset).
4. **Ties, fermatas.** Two adjacent notes are tied (same pitch) with one probability inside a bar and another
   across a barline.  A bar carries a fermata, on its last note (on its last rest if it has no note), with the
   fitted per-bar rate.
5. **Pitch.** A melodic walk in scale steps: each note's staff position is drawn with weight
   ``P(interval from the previous note) · P(offset from the clef's middle line) ** register_pull`` among the
   positions inside the clef's fitted range, and spelled with the key signature's accidentals; a note is
   chromatically altered (one semitone up or down from the key's spelling) with the fitted rate.
6. **Grace notes.** A note (not a tied continuation) is preceded by a grace note with the fitted per-note rate; its
   pitch is a scale step above or below the main note (the papers and the data are silent: upper and lower
   neighbour appoggiature are both common in the 18th century, so each is equally likely), its figure from the
   fitted grace-duration distribution.

Vocabulary guarantee: a note, grace note or rest token is only ever chosen among tokens of the vocabulary the
statistics were fitted with (``IncipitStats.note_support`` etc. carry it), so the output never leaves it.  A choice
with no valid token is dropped (a fermata, a tie, a grace note, a chromatic alteration) or falls back to the nearest
valid one (a pitch), never emitted outside the vocabulary.

Smoothing (60 samples is little data): every categorical distribution over a vocabulary family (clef, key and time
signatures, multirest lengths, grace-note figures) and over a bounded integer range (bars and events per incipit,
intervals, offsets) is mixed with a uniform distribution over its support, ``(1 - floor_mass) · empirical +
floor_mass / |support|``, so that every vocabulary clef/key/time signature can occur.  Duration weights per time
signature back off to the weights pooled over all meters, expressed relative to the time signature's denominator (an
eighth in 3/8 counts as a quarter in 3/4), with ``duration_backoff`` pseudo-events (see :func:`_choice_weights`).
Rates (rest transitions, ties, fermatas, grace notes, multirests, pickups, chromatic notes) are plain relative
frequencies.  Time signatures whose bars cannot be filled with binary figures (denominators 3, 6, 12, 48) are left
out of the support; so are the hundred-twenty-eighth and dotted sixty-fourth figures (5 and 1 pitches in the whole
vocabulary), so every bar position is a multiple of a sixty-fourth note and a bar can always be completed.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from mtlnb.core import io
from mtlnb.camera_primus.notation.semantic import DOT_FACTORS, DURATIONS, KEY_FIFTHS

DEFAULT_STATS_PATH = Path(__file__).resolve().parent / "data" / "incipit_stats.json"

# Figure name → length in quarter notes, longest first (the order defines "one figure shorter"): the encoding's.
FIGURES: dict[str, Fraction] = DURATIONS
_FIGURE_ORDER = list(FIGURES)
_DOT_FACTORS = DOT_FACTORS  # no, one, two dots (PrIMuS converter)
GRID = Fraction(1, 16)  # every generated duration, bar and beat is a multiple of a sixty-fourth note
FAMILIES = ("clef", "keySignature", "timeSignature", "note", "gracenote", "rest", "multirest", "barline", "tie")
_HEADER_FAMILIES = ("clef", "keySignature", "timeSignature")
NO_KEY = "none"  # key_signatures entry for incipits without a keySignature token
ENDINGS = ("barline", "complete", "truncated")
_LETTERS = "CDEFGAB"
_SHARP_ORDER = "FCGDAEB"
_FLAT_ORDER = "BEADGCF"
_KEY_FIFTHS = KEY_FIFTHS
_CLEF_LINE_PITCH = {"G": "G4", "C": "C4", "F": "F3"}  # the pitch each clef sign marks on its line
_PITCH_RE = re.compile(r"^([A-G])(#{1,2}|b{1,2})?(-?\d+)$")
_TS_RE = re.compile(r"^(\d+)/(\d+)$")


# ----------------------------------------------------------------------------------------------------------------
# Tokens, durations, pitches
# ----------------------------------------------------------------------------------------------------------------

def token_family(token: str) -> str:
    """The grammar family of a semantic token: one of :data:`FAMILIES`.

    ``"note-C#5_eighth"`` → ``"note"``, ``"barline"`` → ``"barline"``; ``ValueError`` for anything else.
    """
    if token in ("barline", "tie"):
        return token
    prefix, sep, rest = token.partition("-")
    if sep and rest and prefix in FAMILIES:
        return prefix
    raise ValueError(f"token_family: {token!r} is not a semantic token (families: {', '.join(FAMILIES)})")


def duration_value(name: str) -> Fraction:
    """Length in quarter notes of a duration name: figure plus up to two dots (``"quarter."`` → 3/2)."""
    figure = name.rstrip(".")
    dots = len(name) - len(figure)
    if figure not in FIGURES or dots > 2:
        raise ValueError(f"duration_value: {name!r} is not a figure with at most two dots")
    return FIGURES[figure] * _DOT_FACTORS[dots]


def _split_event(token: str) -> tuple[str, str | None, str, bool]:
    """``(family, pitch or None, duration name, fermata)`` of a note, grace note or rest token."""
    family = token_family(token)
    if family not in ("note", "gracenote", "rest"):
        raise ValueError(f"{token!r}: not a note, grace note or rest")
    body = token.split("-", 1)[1]
    if family == "rest":
        pitch, text = None, body
    else:
        pitch, sep, text = body.partition("_")
        if not sep:
            raise ValueError(f"{token!r}: a {family} token needs a pitch and a duration")
    fermata = text.endswith("_fermata")
    name = text[: -len("_fermata")] if fermata else text
    duration_value(name)  # validates
    return family, pitch, name, fermata


def event_duration(token: str) -> Fraction:
    """Time a note or rest token takes in its bar, in quarter notes; grace notes take none (0).

    ``ValueError`` for tokens that are not notes, grace notes or rests.
    """
    family, _, name, _ = _split_event(token)
    return Fraction(0) if family == "gracenote" else duration_value(name)


def parse_pitch(pitch: str) -> tuple[int, int]:
    """``(staff step, alteration)`` of a pitch name: ``"C4"`` → (28, 0), ``"Bb3"`` → (27, -1).

    The staff step is ``7 · octave + letter index`` (C = 0 … B = 6): one unit per line or space of the staff.
    """
    m = _PITCH_RE.match(pitch)
    if not m:
        raise ValueError(f"parse_pitch: {pitch!r} is not a pitch like 'C#5' or 'Bb3'")
    letter, acc, octave = m.groups()
    acc = acc or ""
    return 7 * int(octave) + _LETTERS.index(letter), acc.count("#") - acc.count("b")


def pitch_name(step: int, alteration: int = 0) -> str:
    """Inverse of :func:`parse_pitch`: ``(27, -1)`` → ``"Bb3"``."""
    if not -2 <= alteration <= 2:
        raise ValueError(f"pitch_name: alteration {alteration} outside -2..2")
    octave, letter = divmod(step, 7)
    return f"{_LETTERS[letter]}{'#' * alteration if alteration > 0 else 'b' * -alteration}{octave}"


def key_alterations(key: str) -> dict[str, int]:
    """Letter → alteration implied by a key signature (``"DM"`` → F and C sharp); ``"none"`` → all naturals."""
    if key == NO_KEY:
        return {c: 0 for c in _LETTERS}
    if key not in _KEY_FIFTHS:
        raise ValueError(f"key_alterations: unknown key signature {key!r} (known: {', '.join(_KEY_FIFTHS)})")
    fifths = _KEY_FIFTHS[key]
    alters = {c: 0 for c in _LETTERS}
    for c in (_SHARP_ORDER if fifths > 0 else _FLAT_ORDER)[: abs(fifths)]:
        alters[c] = 1 if fifths > 0 else -1
    return alters


def clef_middle_line(clef: str) -> int:
    """Staff step of the middle (third) line under a clef such as ``"G2"``, ``"C3"``, ``"F4"``.

    The clef sign marks its pitch on its line (G → G4, C → C4, F → F3; lines counted from the bottom) and lines are
    two steps apart, so the middle line is ``sign pitch + 2 · (3 − line)``: G2 → B4, C1 → G4, F4 → D3.
    """
    if len(clef) != 2 or clef[0] not in _CLEF_LINE_PITCH or not clef[1].isdigit() or not 1 <= int(clef[1]) <= 5:
        raise ValueError(f"clef_middle_line: {clef!r} is not a clef like 'G2', 'C1' or 'F4'")
    return parse_pitch(_CLEF_LINE_PITCH[clef[0]])[0] + 2 * (3 - int(clef[1]))


def meter_fraction(time_signature: str) -> tuple[int, int]:
    """``(numerator, denominator)`` of a time signature: ``"3/4"`` → (3, 4); ``"C"`` = 4/4, ``"C/"`` = 2/2."""
    if time_signature == "C":
        return 4, 4
    if time_signature == "C/":
        return 2, 2
    m = _TS_RE.match(time_signature)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise ValueError(f"meter_fraction: {time_signature!r} is not a time signature like '3/4', 'C' or 'C/'")
    return int(m.group(1)), int(m.group(2))


def bar_length(time_signature: str) -> Fraction:
    """Nominal bar length of a time signature in quarter notes (``"6/8"`` → 3)."""
    num, den = meter_fraction(time_signature)
    return Fraction(4 * num, den)


def beat_length(time_signature: str) -> Fraction:
    """The beat used for metrical alignment, in quarter notes: the denominator's note, or three of them in compound
    meters (numerator a multiple of 3 above 3: 6/8 → dotted quarter)."""
    num, den = meter_fraction(time_signature)
    unit = Fraction(4, den)
    return 3 * unit if num % 3 == 0 and num > 3 else unit


def _fillable(time_signature: str) -> bool:
    """Can bars of this meter be filled with binary figures on the generator's grid? (not 2/3, 3/6, 8/12, 2/48)."""
    _, den = meter_fraction(time_signature)
    return den & (den - 1) == 0 and den <= 64 and bar_length(time_signature) % GRID == 0


def _shift_duration(name: str, levels: int) -> str | None:
    """The same duration ``levels`` figures shorter (negative: longer), or None beyond the figure table."""
    figure = name.rstrip(".")
    i = _FIGURE_ORDER.index(figure) + levels
    if not 0 <= i < len(_FIGURE_ORDER):
        return None
    return _FIGURE_ORDER[i] + name[len(figure):]


def _denominator_shift(time_signature: str) -> int:
    """Figures between the time signature's denominator note and the quarter (3/8 → 1, C/ → −1)."""
    return int(round(math.log2(meter_fraction(time_signature)[1] / 4)))


# ----------------------------------------------------------------------------------------------------------------
# Statistics
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FitConfig:
    """Hyper-parameters of :func:`fit_stats`."""

    floor_mass: float = 0.05  # share spread uniformly over a family's vocabulary support: with 60 samples most clefs,
    #                           keys and meters are seen 0-2 times, and each still has to be generable
    duration_backoff: float = 20.0  # pseudo-events of the pooled (denominator-relative) durations per meter: a
    #                                 meter seen once (~20 events) gets half its mass from the pool
    max_bars: int = 16  # support of bars per incipit; the 60 real incipits have 2-9 music bars
    max_events: int = 48  # support of notes and rests per incipit; the 60 real incipits have 9-28
    max_interval: int = 14  # support of melodic intervals, in steps (two octaves); larger leaps are dropped
    max_offset: int = 16  # support of staff offsets from the clef's middle line (about five ledger lines out)
    range_quantiles: tuple[float, float] = (0.02, 0.98)  # a clef's range: these offset quantiles, so that one
    #                                                      stray note does not widen it
    min_clef_notes: int = 50  # fewer notes than this under a clef → use the pooled offsets of all clefs for its range


@dataclass(frozen=True)
class GeneratorConfig:
    """Hyper-parameters of :func:`generate_incipit` that are choices, not fitted statistics."""

    register_pull: float = 0.5  # exponent on P(offset from the middle line): a pure interval walk drifts to the
    #                             edges of the range, real melodies stay around the staff's centre; of 0, 0.5 and 1,
    #                             0.5 matches the real pitch span per incipit best (5.4 vs 5.2 staff steps)
    max_pickup_fraction: float = 0.5  # a pickup lasts at most this share of a bar (all pickups in the data do)
    length_model: str = "events"  # "events": draw the number of notes and rests, add bars until it is reached (real
    #                               incipits are cut by length: bars and events per bar correlate at r = -0.70 in
    #                               the 60 samples); "bars": draw the number of bars


_INT_KEYED = ("bars", "events", "multirest_lengths", "intervals", "pitch_offsets")


def _int_keys(d: dict) -> dict[int, float]:
    return {int(k): float(v) for k, v in d.items()}


@dataclass
class IncipitStats:
    """Fitted distributions of real incipits (see the module docstring for how the generator uses each one).

    Probabilities are floats; categorical distributions are dicts (value → probability) summing to 1.  Treat an
    instance as read-only once it has generated: the sampling tables are derived once and cached on it.
    """

    clefs: dict[str, float]  # P(clef), e.g. "G2"
    key_signatures: dict[str, float]  # P(key signature), e.g. "DM"; "none" = no keySignature token
    time_signatures: dict[str, float]  # P(time signature), e.g. "3/4", "C", "C/"
    breve_bars: dict[str, float]  # per time signature: P(bars last twice the time signature)
    bars: dict[int, float]  # P(number of music bars), pickup and truncated last bar included
    events: dict[int, float]  # P(number of notes and rests), grace notes and multirests not counted
    pickup_rate: float  # P(the first bar is an incomplete pickup bar)
    endings: dict[str, float]  # P(ending) over "barline", "complete", "truncated"
    durations: dict[str, dict[str, float]]  # per time signature: choice weight of each duration ("eighth.") of notes
    #                                           and rests, summing to 1 (see _choice_weights: not frequencies)
    breve_durations: dict[str, dict[str, float]]  # the same for breve-barred incipits (a style of its own: C/ barred
    #                                               by the breve is stile antico, halves and wholes; C/ barred by the
    #                                               measure is written like C, in quarters and eighths)
    rest_transitions: dict[str, float]  # P(rest) given the previous event: "start", "note", "rest"
    tie_rates: dict[str, float]  # P(tie) for adjacent notes "within_bar" and "across_barline"
    fermata_rate: float  # fermatas per music bar
    grace_rate: float  # grace notes per note
    grace_durations: dict[str, float]  # P(figure of a grace note)
    multirest_start_rate: float  # P(the incipit opens with a multirest bar)
    multirest_inner_rate: float  # P(multirest bar) at each boundary between two music bars
    multirest_lengths: dict[int, float]  # P(N) of multirest-N
    intervals: dict[int, float]  # P(melodic interval in staff steps) between consecutive, untied notes
    pitch_offsets: dict[int, float]  # P(staff steps from the clef's middle line) of notes
    pitch_ranges: dict[str, tuple[str, str]]  # per clef: lowest and highest natural pitch the generator uses
    chromatic_rate: float  # P(a note is altered away from the key signature)
    chromatic_up: float  # P(up | altered)
    note_support: dict[str, list[str]]  # vocabulary: note duration suffix ("quarter._fermata") → pitches
    gracenote_support: dict[str, list[str]]  # vocabulary: grace-note duration → pitches
    rest_support: list[str]  # vocabulary: rest suffixes ("half", "quarter_fermata")
    counts: dict[str, int] = field(default_factory=dict)  # sizes of what was fitted (documentation only)
    notes: list[str] = field(default_factory=list)  # how it was fitted and smoothed (documentation only)

    # -- serialisation ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """JSON-ready dict: integer keys become strings, pitch lists become space-separated strings."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _INT_KEYED:
            d[name] = {str(k): v for k, v in sorted(d[name].items())}
        for name in ("note_support", "gracenote_support"):
            d[name] = {k: " ".join(v) for k, v in d[name].items()}
        d["pitch_ranges"] = {k: list(v) for k, v in d["pitch_ranges"].items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "IncipitStats":
        names = {f.name for f in fields(cls)}
        missing, unknown = names - set(d) - {"counts", "notes"}, set(d) - names
        if missing or unknown:
            raise ValueError(f"IncipitStats.from_dict: missing fields {sorted(missing)}, unknown {sorted(unknown)}")
        d = dict(d)
        for name in _INT_KEYED:
            d[name] = _int_keys(d[name])
        for name in ("note_support", "gracenote_support"):
            d[name] = {k: v.split() for k, v in d[name].items()}
        d["pitch_ranges"] = {k: (v[0], v[1]) for k, v in d["pitch_ranges"].items()}
        for name in ("durations", "breve_durations"):
            d[name] = {ts: dict(p) for ts, p in d[name].items()}
        return cls(**d)

    def save(self, path: str | Path) -> None:
        """Write as sorted, indented JSON (atomically, through :mod:`mtlnb.core.io`)."""
        io.write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "IncipitStats":
        return cls.from_dict(io.read_json(path))

    @functools.cached_property
    def _tables(self) -> "_Tables":
        return _Tables(self)


@functools.lru_cache(maxsize=1)
def default_stats() -> IncipitStats:
    """The statistics shipped with the package (fitted on the 60 real Camera-PrIMuS samples); cached, read-only."""
    return IncipitStats.load(DEFAULT_STATS_PATH)


def _smooth(counts: Counter, support: Sequence, floor_mass: float) -> dict:
    """``(1 − floor_mass) · relative frequency + floor_mass / |support|`` over ``support`` (uniform if no counts)."""
    if not support:
        return {}
    n = sum(counts[s] for s in support)
    if n == 0:
        return {s: 1.0 / len(support) for s in support}
    return {s: (1 - floor_mass) * counts[s] / n + floor_mass / len(support) for s in support}


def _choice_weights(choice_sets: np.ndarray, chosen: np.ndarray, prior: np.ndarray, strength: float,
                    iterations: int = 2000, tol: float = 1e-12) -> np.ndarray:
    """MAP weights of a sequential choice model, ``P(d | A) = w_d / Σ_{e ∈ A} w_e`` (Luce's choice axiom).

    The generator fills a bar left to right, drawing each duration among those that fit (``A``), so short notes are
    often forced; counting real durations would over-produce them.  The weights that make the real choices most
    likely are found with the MM algorithm (Hunter 2004, "MM algorithms for generalized Bradley-Terry models"),
    with ``strength`` pseudo-events of ``prior``::

        w_d ← (c_d + strength · prior_d) / (E_d + strength),   E_d = Σ_i [d ∈ A_i] / Σ_{e ∈ A_i} w_e

    whose fixed point sums to 1 when ``strength > 0`` (we renormalise every step, which also serves ``strength = 0``,
    the maximum-likelihood case).  Where every choice set holds all durations, this is ``(c + strength · prior) /
    (n + strength)``: plain smoothed frequencies.

    Parameters
    ----------
    choice_sets : bool ndarray (n_events, n_durations)
        Durations that could have been chosen at each event (the chosen one included).
    chosen : int ndarray (n_events,)
        Column of the duration chosen at each event.
    prior : float ndarray (n_durations,)
        Sums to 1.
    strength : float
        Pseudo-events of ``prior``; 0 = maximum likelihood.

    Returns
    -------
    float ndarray (n_durations,)
        Weights summing to 1 (``prior`` itself when there are no events).
    """
    k = choice_sets.shape[1]
    if len(chosen) == 0:
        return prior.copy()
    if not choice_sets[np.arange(len(chosen)), chosen].all():
        raise ValueError("_choice_weights: a chosen duration is missing from its choice set")
    counts = np.bincount(chosen, minlength=k).astype(float) + strength * prior
    sets = choice_sets.astype(float)
    w = np.where(prior > 0, prior, 1.0 / k)
    for _ in range(iterations):
        exposure = sets.T @ (1.0 / (sets @ w)) + strength
        new = np.divide(counts, exposure, out=np.zeros(k), where=exposure > 0)
        new /= new.sum()
        if np.abs(new - w).max() < tol:
            return new
        w = new
    return w


def _rate(k: float, n: float, empty: float = 0.0) -> float:
    return k / n if n else empty


def _round(x: float) -> float:
    return float(f"{x:.6g}")  # six significant digits keep the committed JSON short and its diffs readable


def _rounded(obj):
    if isinstance(obj, float):
        return _round(obj)
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    return obj


def _segments(body: Sequence[str]) -> list[tuple[list[str], bool]]:
    """Split the tokens after the header at barlines: ``(tokens, closed by a barline)``; empty segments dropped."""
    segs, cur = [], []
    for t in body:
        if t == "barline":
            if cur:
                segs.append((cur, True))
            cur = []
        else:
            cur.append(t)
    if cur:
        segs.append((cur, False))
    return segs


def _is_music(seg: Sequence[str]) -> bool:
    return any(token_family(t) in ("note", "rest") for t in seg)


def _seg_length(seg: Sequence[str]) -> Fraction:
    return sum((event_duration(t) for t in seg if token_family(t) in ("note", "rest")), Fraction(0))


def _header(tokens: Sequence[str], where: str) -> tuple[str, str, str, list[str], int]:
    """``(clef, key, time signature, body, ignored header changes)`` of one incipit."""
    first: dict[str, str] = {}
    body, changes = [], 0
    for t in tokens:
        fam = token_family(t)
        if fam in _HEADER_FAMILIES:
            if fam in first:
                changes += 1  # mid-incipit clef/key/meter changes are rare; the model has one header
            else:
                first[fam] = t.split("-", 1)[1]
        else:
            body.append(t)
    if "clef" not in first or "timeSignature" not in first:
        raise ValueError(f"{where}: an incipit needs a clef and a time signature token")
    return first["clef"], first.get("keySignature", NO_KEY), first["timeSignature"], body, changes


def _breve_factor(segs, nominal: Fraction) -> int | None:
    """1 or 2: bar length / nominal bar length as the most common length of the closed music bars (the first one
    left out where there are others, as it may be a pickup); None when undecidable."""
    closed = [s for s, c in segs if c and _is_music(s)]
    if len(closed) > 1:
        closed = closed[1:]
    ratios = Counter(_seg_length(s) / nominal for s in closed)
    if not ratios:
        return None
    best = max(sorted(ratios), key=lambda r: ratios[r])
    return int(best) if best in (1, 2) else None


def fit_stats(semantic_token_lists: Iterable[Sequence[str]], vocabulary: Iterable[str],
              config: FitConfig | None = None) -> IncipitStats:
    """Fit :class:`IncipitStats` to real incipits.

    Parameters
    ----------
    semantic_token_lists : iterable of token sequences
        One list of semantic tokens per incipit (a ``.semantic`` file split on whitespace).
    vocabulary : iterable of str
        The semantic vocabulary (``vocabulary_semantic.txt``); it defines every support, and every token of the
        incipits must be in it.
    config : FitConfig, optional

    Returns
    -------
    IncipitStats
        Probabilities rounded to six significant digits.  Smoothing: see the module docstring; the returned
        ``notes`` say the same for the JSON reader.
    """
    cfg = config or FitConfig()
    vocab = set(vocabulary)
    for needed in ("barline", "tie"):
        if needed not in vocab:
            raise ValueError(f"fit_stats: the vocabulary lacks {needed!r}")
    by_family: dict[str, list[str]] = {f: [] for f in FAMILIES}
    for t in sorted(vocab):
        by_family[token_family(t)].append(t.split("-", 1)[1] if "-" in t else t)

    # Supports, from the vocabulary.
    clef_support = sorted(by_family["clef"])
    key_support = [NO_KEY] + sorted(by_family["keySignature"])
    ts_all = sorted(by_family["timeSignature"])
    ts_support = [ts for ts in ts_all if _fillable(ts)]
    mr_support = sorted(int(v) for v in by_family["multirest"])
    note_support: dict[str, list[str]] = {}
    for body in by_family["note"]:
        pitch, _, suffix = body.partition("_")
        note_support.setdefault(suffix, []).append(pitch)
    grace_support: dict[str, list[str]] = {}
    for body in by_family["gracenote"]:
        pitch, _, suffix = body.partition("_")
        grace_support.setdefault(suffix, []).append(pitch)
    for sup in (note_support, grace_support):
        for suffix in sup:
            sup[suffix].sort(key=lambda p: (parse_pitch(p), p))
    rest_support = sorted(by_family["rest"])
    duration_support = sorted({s.removesuffix("_fermata") for s in list(note_support) + rest_support
                               if duration_value(s.removesuffix("_fermata")) % GRID == 0},
                              key=lambda n: (-duration_value(n), n))
    grace_dur_support = sorted(grace_support, key=lambda n: (-duration_value(n), n))

    c: dict[str, Counter] = {k: Counter() for k in (
        "clef", "key", "ts", "bars", "events", "endings", "mr_len", "intervals", "offsets", "grace_dur")}
    choices: dict[tuple, list[tuple]] = {}  # per (meter, breve-barred): (position, bar length, kind, duration)
    breve: dict[str, Counter] = {}
    clef_offsets: dict[str, list[int]] = {}
    n = Counter()  # scalar counters

    lists = [list(t) for t in semantic_token_lists]
    for i, tokens in enumerate(lists):
        where = f"fit_stats: incipit {i}"
        for t in tokens:
            if t not in vocab:
                raise ValueError(f"{where}: token {t!r} is not in the vocabulary")
        clef, key, ts, body, changes = _header(tokens, where)
        n["header_changes_ignored"] += changes
        c["clef"][clef] += 1
        c["key"][key] += 1
        c["ts"][ts] += 1
        nominal = bar_length(ts)
        segs = _segments(body)
        factor = _breve_factor(segs, nominal)
        if factor is not None:
            breve.setdefault(ts, Counter())[factor] += 1
        L = nominal * (factor or 1)
        music = [(s, closed) for s, closed in segs if _is_music(s)]
        c["bars"][min(len(music), cfg.max_bars)] += 1
        c["events"][min(sum(token_family(x) in ("note", "rest") for x in body), cfg.max_events)] += 1
        n["incipits"] += 1
        n["music_bars"] += len(music)
        if len(music) > 1 and music[0][1] and _seg_length(music[0][0]) < L:
            n["pickups"] += 1
        if body and body[-1] == "barline" or not segs or not _is_music(segs[-1][0]):
            c["endings"]["barline"] += 1
        else:
            c["endings"]["complete" if _seg_length(segs[-1][0]) >= L else "truncated"] += 1

        # One pass over the body: events, and what lies between consecutive events.
        prev = None  # previous note or rest: {"kind", "step" (notes), "tie" (a tie token follows it)}
        boundary = multirest = False
        started = False
        for t in body:
            fam = token_family(t)
            if fam == "barline":
                boundary = True
            elif fam == "multirest":
                c["mr_len"][int(t.split("-", 1)[1])] += 1
                n["multirest_start" if not started else "multirest_inner"] += 1
                multirest = True
            elif fam == "tie":
                if prev is not None:
                    prev["tie"] = True
            elif fam == "gracenote":
                n["grace"] += 1
                c["grace_dur"][_split_event(t)[2]] += 1
            elif fam in ("note", "rest"):
                _, pitch, name, fermata = _split_event(t)
                n["fermata"] += fermata
                state = "start" if prev is None else prev["kind"]
                n[f"after_{state}"] += 1
                n[f"rest_after_{state}"] += fam == "rest"
                cur = {"kind": fam, "tie": False, "step": None}
                if fam == "note":
                    step, alter = parse_pitch(pitch)
                    cur["step"] = step
                    n["notes"] += 1
                    key_alter = key_alterations(key)[_LETTERS[step % 7]]
                    if alter != key_alter:
                        n["chromatic"] += 1
                        n["chromatic_up"] += alter > key_alter
                    offset = step - clef_middle_line(clef)
                    clef_offsets.setdefault(clef, []).append(offset)
                    if abs(offset) <= cfg.max_offset:
                        c["offsets"][offset] += 1
                # A melody resumed after a multirest gives no interval and no tie opportunity.
                if prev is not None and not multirest and prev["kind"] == "note" and fam == "note":
                    where_ = "across" if boundary else "within"
                    n[f"pairs_{where_}"] += 1
                    n[f"ties_{where_}"] += prev["tie"]
                    if not prev["tie"]:
                        interval = cur["step"] - prev["step"]
                        if abs(interval) <= cfg.max_interval:
                            c["intervals"][interval] += 1
                        else:
                            n["intervals_dropped"] += 1
                prev, boundary, multirest, started = cur, False, False, True
        n["boundaries"] += max(len(music) - 1, 0)

        # Where each event starts in its bar, for the duration choice model.
        for j, (seg, closed) in enumerate(music):
            seg_len = _seg_length(seg)
            if seg_len == L:
                pos = Fraction(0)
            elif j == 0 and closed and len(music) > 1 and seg_len < L:
                pos = L - seg_len  # a pickup is the end of a bar
            elif j == len(music) - 1 and not closed and seg_len < L:
                pos = Fraction(0)  # a truncated last bar is the start of a bar
            else:
                n["bars_irregular"] += 1  # bars of another length (engraving quirks) say nothing about the model
                continue
            for tok in seg:
                if token_family(tok) in ("note", "rest"):
                    name = _split_event(tok)[2]
                    if name in duration_support:
                        choices.setdefault((ts, factor == 2), []).append((pos, L, token_family(tok), name))
                    else:
                        n["durations_dropped"] += 1
                    pos += duration_value(name)

    if not n["incipits"]:
        raise ValueError("fit_stats: no incipits given")

    # Durations: weights of the sequential choice model (see _choice_weights), pooled over meters relative to the
    # denominator, then per meter with the shifted pooled weights as prior.
    note_durs = {k for k in note_support if not k.endswith("_fermata")}
    rest_durs = {k for k in rest_support if not k.endswith("_fermata")}
    index = {d: i for i, d in enumerate(duration_support)}

    def design(style: tuple[str, bool], shift: int) -> tuple[np.ndarray, np.ndarray]:
        """Choice sets (events × durations, bool) and choices of a (meter, breve-barred) style's real events,
        ``shift`` figures longer."""
        beat = beat_length(style[0])
        rows, chosen = [], []
        for pos, length, kind, name in choices[style]:
            allowed = note_durs if kind == "note" else rest_durs
            row = np.zeros(len(duration_support), dtype=bool)
            for d in allowed:
                f = _shift_duration(d, -shift)
                if f in index and _fits(pos, duration_value(d), FIGURES[d.rstrip(".")], length, beat):
                    row[index[f]] = True
            f = _shift_duration(name, -shift)
            if f not in index:
                continue
            row[index[f]] = True  # real bars sometimes break the grid rule: the choice made was possible
            rows.append(row)
            chosen.append(index[f])
        return np.array(rows, dtype=bool).reshape(-1, len(duration_support)), np.array(chosen, dtype=int)

    pooled_rows, pooled_chosen = [], []
    per_style = {}
    for style in sorted(st for st in choices if st[0] in ts_support):
        per_style[style] = design(style, 0)
        rows, chosen = design(style, _denominator_shift(style[0]))
        pooled_rows.append(rows)
        pooled_chosen.append(chosen)
    k = len(duration_support)
    pooled_w = _choice_weights(np.concatenate(pooled_rows) if pooled_rows else np.zeros((0, k), bool),
                               np.concatenate(pooled_chosen) if pooled_chosen else np.zeros(0, int),
                               np.full(k, 1.0 / k), 0.0)
    pooled = {d: (1 - cfg.floor_mass) * pooled_w[i] + cfg.floor_mass / k for i, d in enumerate(duration_support)}
    breve_bars = {ts: _rate(b[2], b[1] + b[2]) for ts, b in sorted(breve.items()) if ts in ts_support}
    durations, breve_durations = {}, {}
    for ts, is_breve in [(ts, False) for ts in ts_support] + [(ts, True) for ts, p in breve_bars.items() if p > 0]:
        shift = _denominator_shift(ts)
        prior = np.array([pooled.get(_shift_duration(d, -shift) or "", 0.0) for d in duration_support])
        prior = prior / prior.sum() if prior.sum() > 0 else np.full(k, 1.0 / k)
        rows, chosen = per_style.get((ts, is_breve), (np.zeros((0, k), bool), np.zeros(0, int)))
        w = _choice_weights(rows, chosen, prior, cfg.duration_backoff)
        (breve_durations if is_breve else durations)[ts] = {
            d: float(w[i]) for i, d in enumerate(duration_support) if w[i] > 0}

    # Pitch ranges per clef (natural pitches), from the clef's own offsets or the pooled ones.
    all_offsets = [o for offs in clef_offsets.values() for o in offs]
    q_lo, q_hi = cfg.range_quantiles
    pooled_range = ((int(np.quantile(all_offsets, q_lo, method="lower")),
                     int(np.quantile(all_offsets, q_hi, method="higher"))) if all_offsets else (-6, 6))
    ranges, range_sources = {}, {}
    for clef in clef_support:
        offs = clef_offsets.get(clef, [])
        if len(offs) >= cfg.min_clef_notes:
            lo, hi = int(np.quantile(offs, q_lo, method="lower")), int(np.quantile(offs, q_hi, method="higher"))
            range_sources[clef] = "own"
        else:
            (lo, hi), range_sources[clef] = pooled_range, "pooled"
        mid = clef_middle_line(clef)
        ranges[clef] = (pitch_name(mid + lo), pitch_name(mid + hi))

    stats = IncipitStats(
        clefs=_smooth(c["clef"], clef_support, cfg.floor_mass),
        key_signatures=_smooth(c["key"], key_support, cfg.floor_mass),
        time_signatures=_smooth(c["ts"], ts_support, cfg.floor_mass),
        breve_bars=breve_bars,
        bars=_smooth(c["bars"], list(range(1, cfg.max_bars + 1)), cfg.floor_mass),
        events=_smooth(c["events"], list(range(1, cfg.max_events + 1)), cfg.floor_mass),
        pickup_rate=_rate(n["pickups"], n["incipits"]),
        endings=_smooth(c["endings"], list(ENDINGS), 0.0),
        durations=durations,
        breve_durations=breve_durations,
        rest_transitions={s: _rate(n[f"rest_after_{s}"], n[f"after_{s}"]) for s in ("start", "note", "rest")},
        tie_rates={"within_bar": _rate(n["ties_within"], n["pairs_within"]),
                   "across_barline": _rate(n["ties_across"], n["pairs_across"])},
        fermata_rate=_rate(n["fermata"], n["music_bars"]),
        grace_rate=_rate(n["grace"], n["notes"]),
        grace_durations=_smooth(c["grace_dur"], grace_dur_support, cfg.floor_mass),
        multirest_start_rate=_rate(n["multirest_start"], n["incipits"]),
        multirest_inner_rate=_rate(n["multirest_inner"], n["boundaries"]),
        multirest_lengths=_smooth(c["mr_len"], mr_support, cfg.floor_mass),
        intervals=_smooth(c["intervals"], list(range(-cfg.max_interval, cfg.max_interval + 1)), cfg.floor_mass),
        pitch_offsets=_smooth(c["offsets"], list(range(-cfg.max_offset, cfg.max_offset + 1)), cfg.floor_mass),
        pitch_ranges=ranges,
        chromatic_rate=_rate(n["chromatic"], n["notes"]),
        chromatic_up=_rate(n["chromatic_up"], n["chromatic"], empty=0.5),
        note_support=note_support,
        gracenote_support=grace_support,
        rest_support=rest_support,
        counts={k: int(v) for k, v in sorted(n.items()) if not k.startswith(("after_", "rest_after_"))},
        notes=_fit_notes(cfg, n["incipits"], len(vocab), sorted(set(ts_all) - set(ts_support)),
                         sorted({d.removesuffix("_fermata") for d in note_support} - set(duration_support)),
                         range_sources),
    )
    for name in ("clefs", "key_signatures", "time_signatures", "breve_bars", "bars", "events", "endings", "durations",
                 "breve_durations",
                 "rest_transitions", "tie_rates", "grace_durations", "multirest_lengths", "intervals",
                 "pitch_offsets"):
        setattr(stats, name, _rounded(getattr(stats, name)))
    for name in ("pickup_rate", "fermata_rate", "grace_rate", "multirest_start_rate", "multirest_inner_rate",
                 "chromatic_rate", "chromatic_up"):
        setattr(stats, name, _round(getattr(stats, name)))
    return stats


def _fit_notes(cfg: FitConfig, n_incipits: int, n_vocab: int, ts_out: list[str], durations_out: list[str],
               range_sources: dict[str, str]) -> list[str]:
    """The JSON's human-readable account of how the statistics were fitted and smoothed."""
    lam, kappa = cfg.floor_mass, cfg.duration_backoff
    return [
        f"Fitted on {n_incipits} incipits; supports come from a vocabulary of {n_vocab} tokens.",
        f"Smoothed with a floor: categorical distributions over vocabulary families (clefs, key signatures, time "
        f"signatures, multirest lengths, grace-note figures) and over integer ranges (bars 1..{cfg.max_bars}, events "
        f"1..{cfg.max_events}, intervals +-{cfg.max_interval} steps, offsets +-{cfg.max_offset} steps) are "
        f"(1 - {lam}) * relative frequency + {lam} / |support|, so every vocabulary item can occur.",
        f"durations[ts] are the weights w of the generator's sequential choice model P(d | durations A that fit) = "
        f"w_d / sum_A w, not event frequencies (the metrical grid forces short notes into groups), fitted by MAP "
        f"with the MM algorithm: w_d = (c_d + {kappa} * prior_d) / (E_d + {kappa}), E_d = sum_i [d in A_i] / "
        f"sum_(A_i) w. prior = the weights pooled over all meters relative to the denominator (an eighth in 3/8 "
        f"counts as a quarter), floor-smoothed, shifted back to the meter's denominator.",
        f"Left out of the supports: time signatures whose bars binary figures cannot fill ({', '.join(ts_out) or '-'})"
        f"; durations off the 1/64-note grid ({', '.join(durations_out) or '-'}).",
        "breve_bars: relative frequency of incipits whose bars last twice the time signature (C/ barred every "
        "breve), among the incipits of that meter with a decidable bar length; 0 where unseen.",
        "Rates (rest_transitions, tie_rates, fermata_rate per bar, grace_rate per note, multirest rates, pickup_rate, "
        "chromatic_rate) are plain relative frequencies; endings are not smoothed.",
        f"pitch_ranges: offsets from the clef's middle line at quantiles {list(cfg.range_quantiles)}, from the clef's "
        f"own notes where it has >= {cfg.min_clef_notes}, else from all clefs' notes pooled: "
        + ", ".join(f"{k} {v}" for k, v in range_sources.items()) + ".",
        "note_support / gracenote_support / rest_support list the vocabulary's note, grace-note and rest tokens "
        "(duration suffix -> pitches) so that the generator never emits a token outside the vocabulary.",
    ]


def read_tokens(path: str | Path) -> list[str]:
    """Tokens of a ``.semantic`` file (whitespace-separated; the trailing tab is harmless)."""
    return Path(path).read_text(encoding="utf-8").split()


def fit_reference_stats(primus_dir: str | Path, config: FitConfig | None = None) -> IncipitStats:
    """:func:`fit_stats` on ``primus_dir/samples/<id>/<id>.semantic`` with ``primus_dir/vocabulary_semantic.txt``
    (``primus_dir`` = ``<reference>/primus``); how the shipped ``incipit_stats.json`` is made."""
    primus_dir = Path(primus_dir)
    files = sorted((primus_dir / "samples").glob("*/*.semantic"))
    if not files:
        raise ValueError(f"fit_reference_stats: no samples/*/*.semantic under {primus_dir}")
    return fit_stats([read_tokens(f) for f in files], read_tokens(primus_dir / "vocabulary_semantic.txt"), config)


# ----------------------------------------------------------------------------------------------------------------
# Generation
# ----------------------------------------------------------------------------------------------------------------

class _Tables:
    """Arrays derived once per :class:`IncipitStats` for fast sampling (keys sorted, so draws are reproducible)."""

    def __init__(self, s: IncipitStats):
        self.clefs = _categorical(s.clefs)
        self.keys = _categorical(s.key_signatures)
        self.meters = _categorical(s.time_signatures)
        self.bars = _categorical(s.bars)
        self.events = _categorical(s.events)
        self.endings = _categorical(s.endings)
        self.mr_lengths = _categorical(s.multirest_lengths)
        self.grace = _categorical(s.grace_durations)
        self.durations = {(ts, False): _categorical(p) for ts, p in s.durations.items()}
        self.durations.update({(ts, True): _categorical(p) for ts, p in s.breve_durations.items()})
        self.units = {style: [int(duration_value(n) / GRID) for n in names]
                      for style, (names, _) in self.durations.items()}
        self.note_support = {k: set(v) for k, v in s.note_support.items()}
        self.grace_support = {k: set(v) for k, v in s.gracenote_support.items()}
        self.rest_support = set(s.rest_support)
        self.rest_durations = {r for r in s.rest_support if not r.endswith("_fermata")}
        self.intervals = s.intervals
        self.offsets = s.pitch_offsets
        self._note_durations: dict[str, set[str]] = {}
        self._masks: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def masks(self, style: tuple[str, bool], clef: str, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(note mask, rest mask) for a (time signature, breve-barred) style: :func:`_bar_mask` restricted to the
        durations the vocabulary has for notes in the clef's range and for rests (cached)."""
        key = (style, clef)
        if key not in self._masks:
            ts, breve = style
            names = self.durations[style][0]
            fits = _bar_mask(names, bar_length(ts) * (2 if breve else 1), beat_length(ts))
            notes = np.array([n in self.note_durations(clef, lo, hi) for n in names])
            rests = np.array([n in self.rest_durations for n in names])
            self._masks[key] = (fits & notes, fits & rests)
        return self._masks[key]

    def note_durations(self, clef: str, lo: int, hi: int) -> set[str]:
        """Durations that some vocabulary pitch inside the clef's range has (so a pitch can always be found)."""
        if clef not in self._note_durations:
            self._note_durations[clef] = {
                suffix for suffix, pitches in self.note_support.items()
                if not suffix.endswith("_fermata") and any(lo <= parse_pitch(p)[0] <= hi for p in pitches)}
        return self._note_durations[clef]


def _categorical(p: dict) -> tuple[list, np.ndarray]:
    keys = sorted(p, key=lambda k: (isinstance(k, str), k))
    w = np.array([p[k] for k in keys], dtype=float)
    if len(keys) == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"not a probability distribution: {dict(list(p.items())[:5])}...")
    return keys, w / w.sum()


def _draw(rng: np.random.Generator, table: tuple[list, np.ndarray]):
    keys, p = table
    return keys[int(rng.choice(len(keys), p=p))]


@dataclass
class _Event:
    rest: bool
    duration: str
    fermata: bool = False
    tie: bool = False  # tied to the next note
    pitch: str | None = None
    step: int | None = None
    grace: str | None = None  # grace-note token emitted before this note


def _fits(pos: Fraction, d: Fraction, figure: Fraction, length: Fraction, beat: Fraction) -> bool:
    """May an event of duration ``d`` (undotted figure ``figure``) start at ``pos`` of a bar of ``length``?

    Metrical grid, the usual engraving rule: an event no longer than a beat stays inside one beat and starts on a
    multiple of its figure counted from the beat; a longer event starts on a beat (so 4/4 allows quarter–half–
    quarter but not a dotted quarter on an off-beat eighth).
    """
    if pos + d > length:
        return False
    if d <= beat:
        inner = pos % beat
        return inner + d <= beat and inner % figure == 0
    return pos % beat == 0


def _fill_bar(rng, durations, units, masks, p_rest, state) -> tuple[list[_Event], str]:
    """Events filling a bar exactly; ``state`` is the previous event's kind ("start", "note", "rest").

    ``masks`` = (note mask, rest mask), each bool (grid positions in the bar, durations): which durations may start
    at each sixty-fourth-note position (:func:`_fits`, and the vocabulary); ``units`` the durations in grid units.
    """
    names, probs = durations
    n_pos = masks[0].shape[0]
    pos, events = 0, []
    while pos < n_pos:
        rest = bool(rng.random() < p_rest[state])
        w = probs * masks[rest][pos]
        if w.sum() <= 0:  # no note (rest) figure fits here: the other kind does (rests exist down to 1/64)
            rest = not rest
            w = probs * masks[rest][pos]
        if w.sum() <= 0:
            raise ValueError(f"generate_incipit: the statistics' vocabulary cannot complete a bar at position "
                             f"{pos * GRID} of {n_pos * GRID} quarters")
        i = int(rng.choice(len(names), p=w / w.sum()))
        events.append(_Event(rest=rest, duration=names[i]))
        pos += units[i]
        state = "rest" if rest else "note"
    return events, state


def _bar_mask(names: Sequence[str], length: Fraction, beat: Fraction) -> np.ndarray:
    """bool (length / GRID, len(names)): may ``names[j]`` start at grid position ``i``?  :func:`_fits` for every
    position at once, in integer grid units."""
    pos = np.arange(int(length / GRID))[:, None]
    d = np.array([int(duration_value(n) / GRID) for n in names])[None, :]
    f = np.array([int(FIGURES[n.rstrip(".")] / GRID) for n in names])[None, :]
    b, inner = int(beat / GRID), pos % int(beat / GRID)
    short = (d <= b) & (inner + d <= b) & (inner % f == 0)
    long = (d > b) & (inner == 0)
    return (pos + d <= int(length / GRID)) & (short | long)


def _rhythm(rng, s: IncipitStats, cfg: GeneratorConfig, style: tuple[str, bool], length: Fraction, masks
            ) -> tuple[list[list[_Event]], list[bool], str]:
    """Bars of events, whether a multirest bar follows each bar but the last, and the ending."""
    t = s._tables
    ending = _draw(rng, t.endings)
    pickup = bool(rng.random() < s.pickup_rate)
    if cfg.length_model == "events":
        target, n_bars = int(_draw(rng, t.events)), None
    elif cfg.length_model == "bars":
        target, n_bars = None, int(_draw(rng, t.bars))
        pickup = pickup and n_bars > 1  # a lone pickup bar is no incipit
    else:
        raise ValueError(f"GeneratorConfig.length_model must be 'events' or 'bars', got {cfg.length_model!r}")

    bars: list[list[_Event]] = []
    multirests: list[bool] = []
    state, total = "start", 0
    while not bars or (len(bars) < n_bars if target is None else total < target or (pickup and len(bars) < 2)):
        if bars:
            multirests.append(bool(rng.random() < s.multirest_inner_rate))
            state = "rest" if multirests[-1] else state
        events, state = _fill_bar(rng, t.durations[style], t.units[style], masks, s.rest_transitions, state)
        if not bars and pickup:
            events = _pickup(rng, events, length, cfg.max_pickup_fraction) or events
        bars.append(events)
        total += len(events)

    last = bars[-1]
    if ending == "truncated" and len(last) > 1:
        # Bars model: cut at a uniformly chosen onset.  Events model: end on the target-th event, but keep one
        # event at least (a pickup forces a second bar even when the pickup alone reaches the target).
        cut = int(rng.integers(1, len(last))) if target is None else max(1, len(last) - (total - target))
        bars[-1] = last[:cut]
    elif target is not None and len(bars) > 1 + pickup and total - target > target - (total - len(last)):
        bars.pop()  # the incipit ends with whole bars: keep the bar count whose total is nearest the target
        multirests.pop()
    return bars, multirests, ending


def _pickup(rng, events: list[_Event], length: Fraction, max_fraction: float) -> list[_Event] | None:
    """The tail of a full bar, starting on a note and lasting at most ``max_fraction`` of it (None if none)."""
    cuts = [j for j in range(1, len(events))
            if not events[j].rest and sum(duration_value(e.duration) for e in events[j:]) <= max_fraction * length]
    return events[cuts[int(rng.integers(len(cuts)))]:] if cuts else None


def _suffix(ev: _Event) -> str:
    """The token's text after the pitch: ``"quarter."``, ``"half_fermata"``."""
    return ev.duration + ("_fermata" if ev.fermata else "")


def _choose_pitch(rng, t: _Tables, ev: _Event, prev_step: int | None, lo: int, hi: int, mid: int,
                  alters: dict[str, int], pull: float) -> str | None:
    """A key-spelled pitch in [lo, hi] whose token exists for this event, weighted by interval × register."""
    pitches = t.note_support.get(_suffix(ev), set())
    steps = [s for s in range(lo, hi + 1) if pitch_name(s, alters[_LETTERS[s % 7]]) in pitches]
    if not steps:
        return None
    w = np.array([t.offsets.get(s - mid, 0.0) ** pull for s in steps])
    if prev_step is not None:
        w2 = w * np.array([t.intervals.get(s - prev_step, 0.0) for s in steps])
        w = w2 if w2.sum() > 0 else w
    if w.sum() <= 0:
        w = np.ones(len(steps))
    step = steps[int(rng.choice(len(steps), p=w / w.sum()))]
    return pitch_name(step, alters[_LETTERS[step % 7]])


def _nearest_pitch(t: _Tables, suffix: str, target: int, lo: int, hi: int) -> str:
    """Fallback: the vocabulary pitch with this suffix nearest to ``target`` (inside the range where possible)."""
    pitches = sorted(t.note_support[suffix], key=lambda p: (parse_pitch(p), p))
    inside = [p for p in pitches if lo <= parse_pitch(p)[0] <= hi] or pitches
    return min(inside, key=lambda p: (abs(parse_pitch(p)[0] - target), abs(parse_pitch(p)[1])))


def generate_incipit(rng: np.random.Generator, stats: IncipitStats | None = None,
                     config: GeneratorConfig | None = None) -> list[str]:
    """One synthetic incipit as semantic tokens (same grammar and vocabulary as the ``.semantic`` files).

    Parameters
    ----------
    rng : numpy.random.Generator
        The only source of randomness: equal generator states give equal incipits.
    stats : IncipitStats, optional
        Defaults to :func:`default_stats` (fitted on the 60 real samples).
    config : GeneratorConfig, optional

    Returns
    -------
    list of str
        ``clef-…``, optional ``keySignature-…``, ``timeSignature-…``, then bars.  Every bar lasts exactly the bar
        length (the time signature, twice it when breve-barred), except a pickup first bar (at most
        ``max_pickup_fraction`` of a bar) and a truncated last bar (not followed by a barline).  Grace notes take no
        time; a multirest stands alone between barlines.
    """
    s = stats if stats is not None else default_stats()
    cfg = config or GeneratorConfig()
    t = s._tables

    clef, key, ts = _draw(rng, t.clefs), _draw(rng, t.keys), _draw(rng, t.meters)
    breve = bool(rng.random() < s.breve_bars.get(ts, 0.0))
    style = (ts, breve)
    if style not in t.durations:
        raise ValueError(f"generate_incipit: no duration weights for time signature {ts!r} (breve-barred: {breve})")
    length = bar_length(ts) * (2 if breve else 1)
    start_multirest = bool(rng.random() < s.multirest_start_rate)

    mid = clef_middle_line(clef)
    lo, hi = (parse_pitch(p)[0] for p in s.pitch_ranges[clef])
    alters = key_alterations(key)
    masks = t.masks(style, clef, lo, hi)

    bars, inner_multirest, ending = _rhythm(rng, s, cfg, style, length, masks)
    n_bars = len(bars)

    # Ties and fermatas.
    for b, events in enumerate(bars):
        for e1, e2 in zip(events, events[1:]):
            e1.tie = not e1.rest and not e2.rest and bool(rng.random() < s.tie_rates["within_bar"])
        if b + 1 < n_bars and not inner_multirest[b]:
            e1, e2 = events[-1], bars[b + 1][0]
            e1.tie = not e1.rest and not e2.rest and bool(rng.random() < s.tie_rates["across_barline"])
        if rng.random() < s.fermata_rate:
            notes = [e for e in events if not e.rest]
            (notes or events)[-1].fermata = True

    # Pitches, chromatic alterations and grace notes.
    prev: _Event | None = None
    for events in bars:
        for ev in events:
            if ev.rest:
                if ev.fermata and f"{ev.duration}_fermata" not in t.rest_support:
                    ev.fermata = False
                continue
            if prev is not None and prev.tie:
                if prev.pitch in t.note_support.get(_suffix(ev), ()):
                    ev.pitch, ev.step = prev.pitch, prev.step
                    prev = ev
                    continue
                prev.tie = False  # the held pitch has no token with this duration: drop the tie
            prev_step = prev.step if prev is not None else None
            pitch = _choose_pitch(rng, t, ev, prev_step, lo, hi, mid, alters, cfg.register_pull)
            if pitch is None and ev.fermata:
                ev.fermata = False
                pitch = _choose_pitch(rng, t, ev, prev_step, lo, hi, mid, alters, cfg.register_pull)
            if pitch is None:
                pitch = _nearest_pitch(t, _suffix(ev), prev_step if prev_step is not None else mid, lo, hi)
            step, alter = parse_pitch(pitch)
            if rng.random() < s.chromatic_rate:
                up = alter < 1 and (alter <= -1 or bool(rng.random() < s.chromatic_up))
                altered = pitch_name(step, alter + (1 if up else -1))
                if altered in t.note_support[_suffix(ev)]:
                    pitch = altered
            ev.pitch, ev.step = pitch, step
            if rng.random() < s.grace_rate:
                ev.grace = _grace(rng, t, step, alters)
            prev = ev
    if prev is not None:
        prev.tie = False

    # Tokens.
    out = [f"clef-{clef}"] + ([f"keySignature-{key}"] if key != NO_KEY else []) + [f"timeSignature-{ts}"]
    if start_multirest:
        out += [f"multirest-{_draw(rng, t.mr_lengths)}", "barline"]
    for b, events in enumerate(bars):
        for ev in events:
            if ev.grace:
                out.append(ev.grace)
            fermata = "_fermata" if ev.fermata else ""
            out.append(f"rest-{ev.duration}{fermata}" if ev.rest else f"note-{ev.pitch}_{ev.duration}{fermata}")
            if ev.tie:
                out.append("tie")
        last = b == n_bars - 1
        if not last or ending == "barline":
            out.append("barline")
        if not last and inner_multirest[b]:
            out += [f"multirest-{_draw(rng, t.mr_lengths)}", "barline"]
    return out


def _grace(rng, t: _Tables, step: int, alters: dict[str, int]) -> str | None:
    """A grace-note token a step above or below ``step``, or None where the vocabulary has neither."""
    figure = _draw(rng, t.grace)
    pitches = t.grace_support.get(figure, set())
    for d in (1, -1) if rng.random() < 0.5 else (-1, 1):
        name = pitch_name(step + d, alters[_LETTERS[(step + d) % 7]])
        if name in pitches:
            return f"gracenote-{name}_{figure}"
    return None


def generate_incipits(n: int, seed: int, stats: IncipitStats | None = None,
                      config: GeneratorConfig | None = None) -> list[list[str]]:
    """``n`` incipits; incipit ``i`` comes from ``numpy.random.default_rng([seed, i])``, so each one is
    reproducible on its own, whatever ``n``."""
    if n < 0:
        raise ValueError(f"generate_incipits: n must be >= 0, got {n}")
    return [generate_incipit(np.random.default_rng([seed, i]), stats, config) for i in range(n)]


# ----------------------------------------------------------------------------------------------------------------
# Corpus description
# ----------------------------------------------------------------------------------------------------------------

def corpus_statistics(token_lists: Iterable[Sequence[str]]) -> pd.DataFrame:
    """One row per incipit describing its content.

    Columns: ``clef``, ``key_signature``, ``time_signature`` (str); ``n_tokens``; ``n_bars`` (music bars: bars
    holding notes or rests, pickup and incomplete last bar included); ``n_<family>`` and ``frac_<family>`` (count,
    and share of the tokens) for every family in :data:`FAMILIES`; ``n_fermata``, ``n_dotted`` (events);
    ``mean_abs_interval`` (mean |step| between consecutive notes, NaN with fewer than two notes) and
    ``pitch_span`` (highest − lowest note, in staff steps).
    """
    rows = []
    for i, tokens in enumerate(token_lists):
        tokens = list(tokens)
        fams = Counter(token_family(t) for t in tokens)
        row = {"clef": None, "key_signature": NO_KEY, "time_signature": None}
        for tok in tokens:
            fam = token_family(tok)
            if fam in _HEADER_FAMILIES:
                col = {"clef": "clef", "keySignature": "key_signature", "timeSignature": "time_signature"}[fam]
                if row[col] in (None, NO_KEY):
                    row[col] = tok.split("-", 1)[1]
        body = [t for t in tokens if token_family(t) not in _HEADER_FAMILIES]
        events = [_split_event(t) for t in tokens if token_family(t) in ("note", "rest")]
        steps = [parse_pitch(p)[0] for fam, p, _, _ in events if fam == "note"]
        row["n_tokens"] = len(tokens)
        row["n_bars"] = sum(_is_music(s) for s, _ in _segments(body))
        for fam in FAMILIES:
            row[f"n_{fam}"] = fams[fam]
        for fam in FAMILIES:
            row[f"frac_{fam}"] = fams[fam] / len(tokens) if tokens else float("nan")
        row["n_fermata"] = sum(f for *_, f in events)
        row["n_dotted"] = sum(name.endswith(".") for _, _, name, _ in events)
        row["mean_abs_interval"] = float(np.mean(np.abs(np.diff(steps)))) if len(steps) > 1 else float("nan")
        row["pitch_span"] = max(steps) - min(steps) if steps else 0
        rows.append(row)
    return pd.DataFrame(rows)


def compare_corpora(corpora: dict[str, Iterable[Sequence[str]]]) -> pd.DataFrame:
    """Mean and standard deviation of every numeric :func:`corpus_statistics` column, side by side.

    Returns a frame indexed by statistic with columns ``(corpus name, "mean" | "sd")``.
    """
    parts = {}
    for name, lists in corpora.items():
        df = corpus_statistics(lists).select_dtypes("number")
        parts[name] = pd.DataFrame({"mean": df.mean(), "sd": df.std()})
    return pd.concat(parts, axis=1)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mtlnb.camera_primus.corpus.incipits [PRIMUS_DIR]``: refit the shipped statistics from the real samples."""
    import sys

    from mtlnb.core.paths import reference_root

    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        primus = Path(args[0])
    else:
        root = reference_root()
        if root is None:
            raise SystemExit("no reference folder: give the path of a folder holding samples/ and "
                             "vocabulary_semantic.txt")
        primus = root / "primus"
    fit_reference_stats(primus).save(DEFAULT_STATS_PATH)
    print(f"wrote {DEFAULT_STATS_PATH}")


if __name__ == "__main__":
    main()
