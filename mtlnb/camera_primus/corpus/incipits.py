"""Synthetic Camera-PrIMuS incipits: a generator of semantic tokens drawn from fitted statistics.

A real Camera-PrIMuS incipit is the opening phrase of a RISM piece, written in the ``.semantic`` grammar (see
:mod:`mtlnb.camera_primus.notation.semantic`): a clef, an optional key signature, a time signature, then bars of
notes and rests separated by barlines, with ties, fermatas, grace notes and multirests.  This module

- holds the distributions that describe such incipits (:class:`IncipitStats`, saved as JSON; the package ships
  ``mtlnb/camera_primus/corpus/data/incipit_stats.json``, fitted on the 60 real samples and loaded by
  :func:`default_stats`);
- generates new incipits from them (:func:`generate_incipit`, :func:`generate_incipits`), emitting only tokens of
  the real vocabulary.

Fitting the statistics, and describing corpora side by side, is :mod:`mtlnb.camera_primus.corpus.incipit_stats`'s
job (``python -m mtlnb.camera_primus.corpus.incipit_stats`` refits the shipped JSON); this module does not import
it.  Units: lengths and positions in a bar are quarter notes (exact fractions, on the :data:`GRID` of a sixty-fourth
note); pitches are staff steps (:mod:`mtlnb.camera_primus.notation.music`).

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
   meter exactly (breve-barred incipits have weights of their own).  Because the grid forces short notes to come
   in groups, the weights are not event frequencies but the maximum-a-posteriori weights of this very choice model
   on the real bars (:func:`mtlnb.camera_primus.corpus.incipit_stats._choice_weights`).
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

Smoothing of the fitted distributions, and the supports left out (meters whose bars binary figures cannot fill,
durations off the sixty-fourth-note grid): see :mod:`mtlnb.camera_primus.corpus.incipit_stats`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np

from mtlnb.core import io
from mtlnb.camera_primus.notation.music import (
    FIGURES,
    LETTERS,
    NO_KEY,
    bar_length,
    beat_length,
    clef_middle_line,
    duration_value,
    key_alterations,
    parse_pitch,
    pitch_name,
)

DEFAULT_STATS_PATH = Path(__file__).resolve().parent / "data" / "incipit_stats.json"
GRID = Fraction(1, 16)  # in quarter notes: every generated duration, bar and beat is a multiple of a sixty-fourth note
ENDINGS = ("barline", "complete", "truncated")  # how an incipit ends (see IncipitStats.endings)


# ----------------------------------------------------------------------------------------------------------------
# Statistics and configuration
# ----------------------------------------------------------------------------------------------------------------

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

    Made by :func:`mtlnb.camera_primus.corpus.incipit_stats.fit_stats`; read from and written to JSON here.

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
    #                                           and rests, summing to 1 (not frequencies: see incipit_stats)
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
    steps = [s for s in range(lo, hi + 1) if pitch_name(s, alters[LETTERS[s % 7]]) in pitches]
    if not steps:
        return None
    w = np.array([t.offsets.get(s - mid, 0.0) ** pull for s in steps])
    if prev_step is not None:
        w2 = w * np.array([t.intervals.get(s - prev_step, 0.0) for s in steps])
        w = w2 if w2.sum() > 0 else w
    if w.sum() <= 0:
        w = np.ones(len(steps))
    step = steps[int(rng.choice(len(steps), p=w / w.sum()))]
    return pitch_name(step, alters[LETTERS[step % 7]])


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
    _ties_and_fermatas(rng, s, bars, inner_multirest)
    _pitches(rng, s, cfg, bars, (lo, hi, mid), alters)
    return _tokens(rng, t, (clef, key, ts), start_multirest, bars, inner_multirest, ending)


def _ties_and_fermatas(rng, s: IncipitStats, bars: list[list[_Event]], inner_multirest: list[bool]) -> None:
    """Tie adjacent notes (within a bar, and across a barline no multirest bar interrupts) and put a fermata on the
    last note of a bar (its last rest if it has none), each with its fitted rate; sets ``tie`` and ``fermata``."""
    n_bars = len(bars)
    for b, events in enumerate(bars):
        for e1, e2 in zip(events, events[1:]):
            e1.tie = not e1.rest and not e2.rest and bool(rng.random() < s.tie_rates["within_bar"])
        if b + 1 < n_bars and not inner_multirest[b]:
            e1, e2 = events[-1], bars[b + 1][0]
            e1.tie = not e1.rest and not e2.rest and bool(rng.random() < s.tie_rates["across_barline"])
        if rng.random() < s.fermata_rate:
            notes = [e for e in events if not e.rest]
            (notes or events)[-1].fermata = True


def _pitches(rng, s: IncipitStats, cfg: GeneratorConfig, bars: list[list[_Event]], staff: tuple[int, int, int],
             alters: dict[str, int]) -> None:
    """Pitch every note, left to right: a tied note keeps its predecessor's pitch, the others walk the staff
    (:func:`_choose_pitch`), may be altered chromatically and may get a grace note before them.

    ``staff`` = (lowest, highest, middle-line) staff steps of the clef's range; ``alters`` the key signature's
    alteration per letter.  Sets ``pitch``, ``step`` and ``grace``; drops a tie whose pitch has no token with the
    next note's duration, a fermata no token carries, and the tie of the last note.
    """
    t = s._tables
    lo, hi, mid = staff
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


def _tokens(rng, t: _Tables, header: tuple[str, str, str], start_multirest: bool, bars: list[list[_Event]],
            inner_multirest: list[bool], ending: str) -> list[str]:
    """The semantic tokens of a planned incipit; ``header`` = (clef, key or :data:`NO_KEY`, time signature).

    Multirest bars (at the start, and after each bar whose ``inner_multirest`` is set) draw their length here.
    """
    clef, key, ts = header
    n_bars = len(bars)
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
        name = pitch_name(step + d, alters[LETTERS[(step + d) % 7]])
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
