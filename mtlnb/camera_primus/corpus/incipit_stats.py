"""Fit the incipit generator's statistics to real incipits, and describe corpora of incipits side by side.

The generator (:mod:`mtlnb.camera_primus.corpus.incipits`) draws from an :class:`IncipitStats`; this module makes
one from real ``.semantic`` token lists (:func:`fit_stats`, :func:`fit_reference_stats`).  The package ships the fit
on the 60 real Camera-PrIMuS samples as ``mtlnb/camera_primus/corpus/data/incipit_stats.json``; refit it with::

    python -m mtlnb.camera_primus.corpus.incipit_stats [PRIMUS_DIR]

where ``PRIMUS_DIR`` holds ``samples/<id>/<id>.semantic`` and ``vocabulary_semantic.txt``.

Token format: semantic tokens as the ``.semantic`` files write them (grammar in
:mod:`mtlnb.camera_primus.notation.semantic`), grouped into the families of :data:`FAMILIES`.  Lengths are in
quarter notes (exact fractions), pitches are staff steps (:mod:`mtlnb.camera_primus.notation.music`).

:func:`fit_stats` runs in stages, each a function of its own:

1. **Supports** (:func:`_supports`): what the vocabulary allows, family by family: clefs, key and time signatures,
   multirest lengths, note / grace-note / rest tokens by duration suffix, the durations the generator may draw.
2. **Counting**, one incipit at a time: its shape (:func:`_shape`: header, bars, bar length, breve barring), then
   header and length counts (:func:`_count_shape`), the events and what lies between them (:func:`_count_events`:
   rests, ties, fermatas, grace notes, multirests, intervals, staff offsets, chromatic notes) and where each event
   starts in its bar (:func:`_count_duration_choices`).
3. **Durations** (:func:`_duration_weights`): the weights of the generator's sequential duration choice, per time
   signature, backed off to weights pooled over all meters (:func:`_choice_design`, :func:`_choice_weights`).
4. **Pitch ranges** (:func:`_pitch_ranges`) per clef.
5. **Assembly** into :class:`IncipitStats`, probabilities rounded to six significant digits (:func:`_round_fields`).

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

:func:`corpus_statistics` and :func:`compare_corpora` describe corpora (real and generated) for comparison.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import pandas as pd

from mtlnb.camera_primus.corpus.incipits import DEFAULT_STATS_PATH, ENDINGS, GRID, IncipitStats, _fits
from mtlnb.camera_primus.notation.music import (
    FIGURES,
    LETTERS,
    NO_KEY,
    bar_length,
    beat_length,
    clef_middle_line,
    denominator_shift,
    duration_value,
    key_alterations,
    meter_fraction,
    parse_pitch,
    pitch_name,
    shift_duration,
)

FAMILIES = ("clef", "keySignature", "timeSignature", "note", "gracenote", "rest", "multirest", "barline", "tie")
_HEADER_FAMILIES = ("clef", "keySignature", "timeSignature")


# ----------------------------------------------------------------------------------------------------------------
# Tokens
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


def _fillable(time_signature: str) -> bool:
    """Can bars of this meter be filled with binary figures on the generator's grid? (not 2/3, 3/6, 8/12, 2/48)."""
    _, den = meter_fraction(time_signature)
    return den & (den - 1) == 0 and den <= 64 and bar_length(time_signature) % GRID == 0


# ----------------------------------------------------------------------------------------------------------------
# Small helpers
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


# ----------------------------------------------------------------------------------------------------------------
# Stage 1: supports
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Supports:
    """What the vocabulary allows, per family (values without the family prefix)."""

    clefs: list[str]  # sorted: "C1", "G2", ...
    keys: list[str]  # NO_KEY first, then the key signatures, sorted
    time_signatures_all: list[str]  # every time signature of the vocabulary, sorted
    time_signatures: list[str]  # those whose bars the generator can fill (see _fillable)
    multirest_lengths: list[int]  # sorted
    notes: dict[str, list[str]]  # note duration suffix ("quarter._fermata") → pitches, lowest first
    graces: dict[str, list[str]]  # grace-note duration → pitches, lowest first
    rests: list[str]  # rest suffixes ("half", "quarter_fermata"), sorted
    durations: list[str]  # note and rest durations on the 1/64-note grid, longest first
    grace_durations: list[str]  # grace-note durations, longest first


def _supports(vocab: set[str]) -> _Supports:
    """Stage 1 of :func:`fit_stats`: the supports of every distribution, from the vocabulary.

    Raises ``ValueError`` if the vocabulary lacks ``barline`` or ``tie``, or holds a token outside :data:`FAMILIES`.
    """
    for needed in ("barline", "tie"):
        if needed not in vocab:
            raise ValueError(f"fit_stats: the vocabulary lacks {needed!r}")
    by_family: dict[str, list[str]] = {f: [] for f in FAMILIES}
    for t in sorted(vocab):
        by_family[token_family(t)].append(t.split("-", 1)[1] if "-" in t else t)

    ts_all = sorted(by_family["timeSignature"])
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
    return _Supports(
        clefs=sorted(by_family["clef"]),
        keys=[NO_KEY] + sorted(by_family["keySignature"]),
        time_signatures_all=ts_all,
        time_signatures=[ts for ts in ts_all if _fillable(ts)],
        multirest_lengths=sorted(int(v) for v in by_family["multirest"]),
        notes=note_support,
        graces=grace_support,
        rests=rest_support,
        durations=duration_support,
        grace_durations=sorted(grace_support, key=lambda n: (-duration_value(n), n)),
    )


# ----------------------------------------------------------------------------------------------------------------
# Stage 2: counting, one incipit at a time
# ----------------------------------------------------------------------------------------------------------------

class _Shape(NamedTuple):
    """One incipit's header and bars, as :func:`_shape` reads them."""

    clef: str
    key: str  # NO_KEY without a key signature
    time_signature: str
    body: list[str]  # the tokens after the header (header changes left out)
    header_changes: int  # later clef, key or time signature tokens, ignored
    segments: list[tuple[list[str], bool]]  # the body split at barlines (see _segments)
    breve_factor: int | None  # bar length / nominal bar length: 1, 2 or None when undecidable
    bar_length: Fraction  # in quarter notes: the nominal bar length times the breve factor (1 if undecidable)
    music: list[tuple[list[str], bool]]  # the segments that hold notes or rests


def _shape(tokens: Sequence[str], where: str) -> _Shape:
    """Stage 2a of :func:`fit_stats`: the header, the bars and the bar length of one incipit."""
    clef, key, ts, body, changes = _header(tokens, where)
    nominal = bar_length(ts)
    segs = _segments(body)
    factor = _breve_factor(segs, nominal)
    music = [(s, closed) for s, closed in segs if _is_music(s)]
    return _Shape(clef, key, ts, body, changes, segs, factor, nominal * (factor or 1), music)


@dataclass
class _Tally:
    """What :func:`fit_stats` counts over all incipits."""

    c: dict[str, Counter] = field(default_factory=lambda: {k: Counter() for k in (
        "clef", "key", "ts", "bars", "events", "endings", "mr_len", "intervals", "offsets", "grace_dur")})
    n: Counter = field(default_factory=Counter)  # scalar counts: incipits, notes, ties, ...
    choices: dict[tuple[str, bool], list[tuple[Fraction, Fraction, str, str]]] = field(default_factory=dict)
    #     per (time signature, breve-barred): (position in the bar, bar length, "note" | "rest", duration name)
    breve: dict[str, Counter] = field(default_factory=dict)  # per time signature: Counter of breve factors
    clef_offsets: dict[str, list[int]] = field(default_factory=dict)  # per clef: staff offsets of its notes


def _count_shape(tally: _Tally, shape: _Shape, cfg: FitConfig) -> None:
    """Stage 2b: header, breve barring, bars and events per incipit, pickups and the ending."""
    c, n = tally.c, tally.n
    n["header_changes_ignored"] += shape.header_changes
    c["clef"][shape.clef] += 1
    c["key"][shape.key] += 1
    c["ts"][shape.time_signature] += 1
    if shape.breve_factor is not None:
        tally.breve.setdefault(shape.time_signature, Counter())[shape.breve_factor] += 1
    music, segs, body, L = shape.music, shape.segments, shape.body, shape.bar_length
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


def _count_events(tally: _Tally, shape: _Shape, cfg: FitConfig) -> None:
    """Stage 2c: one pass over the body counting events and what lies between consecutive ones.

    Rest transitions, fermatas, grace notes and their figures, multirests (at the start or between bars) and their
    lengths, chromatic notes, staff offsets per clef, and for consecutive notes not separated by a multirest: ties
    within a bar and across a barline, and the melodic interval where no tie joins them.
    """
    c, n = tally.c, tally.n
    prev = None  # previous note or rest: {"kind", "step" (notes), "tie" (a tie token follows it)}
    boundary = multirest = False
    started = False
    for t in shape.body:
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
                key_alter = key_alterations(shape.key)[LETTERS[step % 7]]
                if alter != key_alter:
                    n["chromatic"] += 1
                    n["chromatic_up"] += alter > key_alter
                offset = step - clef_middle_line(shape.clef)
                tally.clef_offsets.setdefault(shape.clef, []).append(offset)
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
    n["boundaries"] += max(len(shape.music) - 1, 0)


def _count_duration_choices(tally: _Tally, shape: _Shape, duration_support: Sequence[str]) -> None:
    """Stage 2d: where each note and rest starts in its bar, for the duration choice model.

    A full bar starts at 0, a pickup is the end of a bar and a truncated last bar its start; bars of another length
    (engraving quirks) say nothing about the model and are only counted (``bars_irregular``).  Durations outside
    ``duration_support`` are counted as dropped but still advance the position.
    """
    n, L, music = tally.n, shape.bar_length, shape.music
    for j, (seg, closed) in enumerate(music):
        seg_len = _seg_length(seg)
        if seg_len == L:
            pos = Fraction(0)
        elif j == 0 and closed and len(music) > 1 and seg_len < L:
            pos = L - seg_len  # a pickup is the end of a bar
        elif j == len(music) - 1 and not closed and seg_len < L:
            pos = Fraction(0)  # a truncated last bar is the start of a bar
        else:
            n["bars_irregular"] += 1
            continue
        for tok in seg:
            if token_family(tok) in ("note", "rest"):
                name = _split_event(tok)[2]
                if name in duration_support:
                    tally.choices.setdefault((shape.time_signature, shape.breve_factor == 2), []).append(
                        (pos, L, token_family(tok), name))
                else:
                    n["durations_dropped"] += 1
                pos += duration_value(name)


# ----------------------------------------------------------------------------------------------------------------
# Stage 3: duration weights
# ----------------------------------------------------------------------------------------------------------------

def _choice_design(choices: Sequence[tuple[Fraction, Fraction, str, str]], beat: Fraction, shift: int,
                   note_durs: set[str], rest_durs: set[str], index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Choice sets and choices of one (meter, breve-barred) style's real events, ``shift`` figures longer.

    Parameters
    ----------
    choices : sequence of (position, bar length, kind, duration name)
        The style's events (:attr:`_Tally.choices`); position and bar length in quarter notes.
    beat : Fraction
        The meter's :func:`~mtlnb.camera_primus.notation.music.beat_length`, in quarter notes.
    shift : int
        Figures by which every duration is lengthened (the denominator shift, to pool meters); 0 keeps them.
    note_durs, rest_durs : set of str
        Durations the vocabulary has for notes and for rests (no fermata suffix).
    index : dict
        Duration name → column.

    Returns
    -------
    sets : bool ndarray (n_events, len(index))
        The shifted durations that fit where each event starts (:func:`~mtlnb.camera_primus.corpus.incipits._fits`),
        the chosen one always included (real bars sometimes break the grid rule).
    chosen : int ndarray (n_events,)
        Column of each event's shifted duration; events whose shifted duration has no column are left out.
    """
    rows, chosen = [], []
    for pos, length, kind, name in choices:
        allowed = note_durs if kind == "note" else rest_durs
        row = np.zeros(len(index), dtype=bool)
        for d in allowed:
            f = shift_duration(d, -shift)
            if f in index and _fits(pos, duration_value(d), FIGURES[d.rstrip(".")], length, beat):
                row[index[f]] = True
        f = shift_duration(name, -shift)
        if f not in index:
            continue
        row[index[f]] = True  # real bars sometimes break the grid rule: the choice made was possible
        rows.append(row)
        chosen.append(index[f])
    return np.array(rows, dtype=bool).reshape(-1, len(index)), np.array(chosen, dtype=int)


def _duration_weights(tally: _Tally, sup: _Supports, cfg: FitConfig
                      ) -> tuple[dict[str, float], dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Stage 3: ``(breve_bars, durations, breve_durations)`` of :class:`IncipitStats`, unrounded.

    Weights of the sequential choice model (:func:`_choice_weights`), pooled over meters relative to the
    denominator (maximum likelihood, then floor-smoothed), then per meter with the pooled weights shifted back to
    the meter's denominator as prior.
    """
    note_durs = {k for k in sup.notes if not k.endswith("_fermata")}
    rest_durs = {k for k in sup.rests if not k.endswith("_fermata")}
    index = {d: i for i, d in enumerate(sup.durations)}
    k = len(sup.durations)

    pooled_rows, pooled_chosen = [], []
    per_style = {}
    for style in sorted(st for st in tally.choices if st[0] in sup.time_signatures):
        beat = beat_length(style[0])
        per_style[style] = _choice_design(tally.choices[style], beat, 0, note_durs, rest_durs, index)
        rows, chosen = _choice_design(tally.choices[style], beat, denominator_shift(style[0]), note_durs, rest_durs,
                                      index)
        pooled_rows.append(rows)
        pooled_chosen.append(chosen)
    pooled_w = _choice_weights(np.concatenate(pooled_rows) if pooled_rows else np.zeros((0, k), bool),
                               np.concatenate(pooled_chosen) if pooled_chosen else np.zeros(0, int),
                               np.full(k, 1.0 / k), 0.0)
    pooled = {d: (1 - cfg.floor_mass) * pooled_w[i] + cfg.floor_mass / k for i, d in enumerate(sup.durations)}
    breve_bars = {ts: _rate(b[2], b[1] + b[2]) for ts, b in sorted(tally.breve.items())
                  if ts in sup.time_signatures}
    durations, breve_durations = {}, {}
    styles = [(ts, False) for ts in sup.time_signatures] + [(ts, True) for ts, p in breve_bars.items() if p > 0]
    for ts, is_breve in styles:
        shift = denominator_shift(ts)
        prior = np.array([pooled.get(shift_duration(d, -shift) or "", 0.0) for d in sup.durations])
        prior = prior / prior.sum() if prior.sum() > 0 else np.full(k, 1.0 / k)
        rows, chosen = per_style.get((ts, is_breve), (np.zeros((0, k), bool), np.zeros(0, int)))
        w = _choice_weights(rows, chosen, prior, cfg.duration_backoff)
        (breve_durations if is_breve else durations)[ts] = {
            d: float(w[i]) for i, d in enumerate(sup.durations) if w[i] > 0}
    return breve_bars, durations, breve_durations


# ----------------------------------------------------------------------------------------------------------------
# Stage 4: pitch ranges
# ----------------------------------------------------------------------------------------------------------------

def _pitch_ranges(clef_offsets: dict[str, list[int]], clefs: Sequence[str], cfg: FitConfig
                  ) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """Stage 4: per clef, the lowest and highest natural pitch, and whether they come from its ``"own"`` notes.

    The range is the ``cfg.range_quantiles`` of the staff offsets from the clef's middle line, taken from the clef's
    own notes where it has at least ``cfg.min_clef_notes``, otherwise from all clefs' notes (``"pooled"``; -6..6
    when there are no notes at all).
    """
    all_offsets = [o for offs in clef_offsets.values() for o in offs]
    q_lo, q_hi = cfg.range_quantiles
    pooled_range = ((int(np.quantile(all_offsets, q_lo, method="lower")),
                     int(np.quantile(all_offsets, q_hi, method="higher"))) if all_offsets else (-6, 6))
    ranges, range_sources = {}, {}
    for clef in clefs:
        offs = clef_offsets.get(clef, [])
        if len(offs) >= cfg.min_clef_notes:
            lo, hi = int(np.quantile(offs, q_lo, method="lower")), int(np.quantile(offs, q_hi, method="higher"))
            range_sources[clef] = "own"
        else:
            (lo, hi), range_sources[clef] = pooled_range, "pooled"
        mid = clef_middle_line(clef)
        ranges[clef] = (pitch_name(mid + lo), pitch_name(mid + hi))
    return ranges, range_sources


# ----------------------------------------------------------------------------------------------------------------
# Stage 5 and the whole fit
# ----------------------------------------------------------------------------------------------------------------

_ROUNDED_DISTRIBUTIONS = ("clefs", "key_signatures", "time_signatures", "breve_bars", "bars", "events", "endings",
                          "durations", "breve_durations", "rest_transitions", "tie_rates", "grace_durations",
                          "multirest_lengths", "intervals", "pitch_offsets")
_ROUNDED_RATES = ("pickup_rate", "fermata_rate", "grace_rate", "multirest_start_rate", "multirest_inner_rate",
                  "chromatic_rate", "chromatic_up")


def _round_fields(stats: IncipitStats) -> None:
    """Stage 5: round every probability of ``stats`` to six significant digits, in place."""
    for name in _ROUNDED_DISTRIBUTIONS:
        setattr(stats, name, _rounded(getattr(stats, name)))
    for name in _ROUNDED_RATES:
        setattr(stats, name, _round(getattr(stats, name)))


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
    sup = _supports(vocab)
    tally = _Tally()
    lists = [list(t) for t in semantic_token_lists]
    for i, tokens in enumerate(lists):
        where = f"fit_stats: incipit {i}"
        for t in tokens:
            if t not in vocab:
                raise ValueError(f"{where}: token {t!r} is not in the vocabulary")
        shape = _shape(tokens, where)
        _count_shape(tally, shape, cfg)
        _count_events(tally, shape, cfg)
        _count_duration_choices(tally, shape, sup.durations)
    c, n = tally.c, tally.n
    if not n["incipits"]:
        raise ValueError("fit_stats: no incipits given")

    breve_bars, durations, breve_durations = _duration_weights(tally, sup, cfg)
    ranges, range_sources = _pitch_ranges(tally.clef_offsets, sup.clefs, cfg)
    stats = IncipitStats(
        clefs=_smooth(c["clef"], sup.clefs, cfg.floor_mass),
        key_signatures=_smooth(c["key"], sup.keys, cfg.floor_mass),
        time_signatures=_smooth(c["ts"], sup.time_signatures, cfg.floor_mass),
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
        grace_durations=_smooth(c["grace_dur"], sup.grace_durations, cfg.floor_mass),
        multirest_start_rate=_rate(n["multirest_start"], n["incipits"]),
        multirest_inner_rate=_rate(n["multirest_inner"], n["boundaries"]),
        multirest_lengths=_smooth(c["mr_len"], sup.multirest_lengths, cfg.floor_mass),
        intervals=_smooth(c["intervals"], list(range(-cfg.max_interval, cfg.max_interval + 1)), cfg.floor_mass),
        pitch_offsets=_smooth(c["offsets"], list(range(-cfg.max_offset, cfg.max_offset + 1)), cfg.floor_mass),
        pitch_ranges=ranges,
        chromatic_rate=_rate(n["chromatic"], n["notes"]),
        chromatic_up=_rate(n["chromatic_up"], n["chromatic"], empty=0.5),
        note_support=sup.notes,
        gracenote_support=sup.graces,
        rest_support=sup.rests,
        counts={k: int(v) for k, v in sorted(n.items()) if not k.startswith(("after_", "rest_after_"))},
        notes=_fit_notes(cfg, n["incipits"], len(vocab),
                         sorted(set(sup.time_signatures_all) - set(sup.time_signatures)),
                         sorted({d.removesuffix("_fermata") for d in sup.notes} - set(sup.durations)),
                         range_sources),
    )
    _round_fields(stats)
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
    """:func:`fit_stats` on ``primus_dir/samples/<id>/<id>.semantic`` with ``primus_dir/vocabulary_semantic.txt``;
    how the shipped ``incipit_stats.json`` is made (``primus_dir``: a folder of real Camera-PrIMuS samples)."""
    primus_dir = Path(primus_dir)
    files = sorted((primus_dir / "samples").glob("*/*.semantic"))
    if not files:
        raise ValueError(f"fit_reference_stats: no samples/*/*.semantic under {primus_dir}")
    return fit_stats([read_tokens(f) for f in files], read_tokens(primus_dir / "vocabulary_semantic.txt"), config)


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
    """``python -m mtlnb.camera_primus.corpus.incipit_stats [PRIMUS_DIR]``: refit the shipped statistics.

    ``PRIMUS_DIR`` holds ``samples/<id>/<id>.semantic`` and ``vocabulary_semantic.txt``; without it, the
    ``primus`` folder of the reference data (:func:`mtlnb.core.paths.reference_root`) is used.
    """
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
