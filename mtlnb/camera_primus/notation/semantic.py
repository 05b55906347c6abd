"""The Camera-PrIMuS semantic encoding: parsing and validation, and conversion to MIDI and Plaine & Easie.

A ``.semantic`` file is one line of tab-separated tokens (grammar: the ANTLR grammar of the PrIMuS authors' im3
library, ``davidrizo/im3``)::

    clef-G2  keySignature-EbM  timeSignature-3/4  note-Bb4_quarter.  note-C#5_eighth_fermata  gracenote-C5_eighth
    rest-half  multirest-23  tie  barline

Pitches are absolute: key-signature accidentals are already applied.  A caveat found in the real data: the
PrIMuS semantic files were made from Verovio's MEI, which stores only the *written* accidentals, with the key
signature but **without carrying an accidental to later notes of the same bar**.  So ``note-Eb4 note-E4`` in one
bar of a C major incipit is engraved ``bE E`` in the real ``regular_pae.pae`` and images, although a musician (and
Verovio 6) reads the second note as E flat.  The semantic tokens are the ground truth of the corpus, so here they
are taken literally: MIDI plays E natural, and :func:`semantic_to_pae` writes ``bE nE`` unless asked for the
PrIMuS spelling (``carry=False``).

The three conversions:

- :func:`semantic_to_midi` follows the PrIMuS authors' converter (im3 ``SemanticImporter``);
- :func:`semantic_to_pae` writes Plaine & Easie in the form of the corpus's ``regular_pae.pae`` files, which
  Verovio engraves as the same music;
- :func:`semantic_duration` is the length of the music in seconds, trailing rests included.

Units: musical time is counted in quarter notes (exact fractions) until the MIDI, which is in seconds.  Figure
names, pitch names, key and time signatures follow :mod:`mtlnb.camera_primus.notation.music`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from os import PathLike
from pathlib import Path
from typing import Iterable, Sequence

import pretty_midi

from mtlnb.camera_primus.notation.music import (
    DOT_FACTORS,
    FIGURES,
    FLAT_ORDER,
    KEY_FIFTHS,
    PITCH_PATTERN,
    SHARP_ORDER,
    bar_length,
    beam_beat_length,
    key_alterations,
    pitch_to_midi,
    split_pitch,
)

KINDS = ("clef", "keySignature", "timeSignature", "note", "gracenote", "rest", "multirest", "tie", "barline")

_DUR = "|".join(sorted(FIGURES, key=len, reverse=True))  # longest first: "double_whole" before "whole"
_NOTE_RE = re.compile(
    rf"(?P<kind>note|gracenote)-{PITCH_PATTERN}_(?P<dur>{_DUR})(?P<dots>\.{{0,2}})(?P<fermata>_fermata)?"
)
_REST_RE = re.compile(rf"rest-(?P<dur>{_DUR})(?P<dots>\.{{0,2}})(?P<fermata>_fermata)?")
_CLEF_RE = re.compile(r"clef-(?P<value>[CFG][1-5])")
_KEY_RE = re.compile(r"keySignature-(?P<value>[A-G][#b]?M)")
_TIME_RE = re.compile(r"timeSignature-(?P<value>[1-9][0-9]*/[1-9][0-9]*|C/?)")
_MULTIREST_RE = re.compile(r"multirest-(?P<count>[1-9][0-9]*)")


@dataclass(frozen=True)
class Token:
    """One semantic token, parsed.

    ``kind`` is the token's prefix (one of :data:`KINDS`).  Notes, grace notes and rests fill ``duration`` (a key
    of :data:`mtlnb.camera_primus.notation.music.FIGURES`), ``dots`` and ``fermata``; notes and grace notes also
    ``pitch`` (``"C#5"``).  Clefs, key and time signatures keep their argument in ``value`` (``"G2"``, ``"EbM"``,
    ``"3/4"``, ``"C/"``); multi-rests their number of bars in ``count``.
    """

    kind: str
    pitch: str | None = None
    duration: str | None = None
    dots: int = 0
    fermata: bool = False
    value: str | None = None
    count: int | None = None

    @property
    def quarters(self) -> Fraction:
        """Written length in quarter notes (dots applied); zero for tokens that take no time of their own."""
        if self.duration is None:
            return Fraction(0)
        return FIGURES[self.duration] * DOT_FACTORS[self.dots]

    @property
    def midi_pitch(self) -> int:
        """MIDI note number of ``pitch`` (C4 = 60)."""
        if self.pitch is None:
            raise ValueError(f"a {self.kind} token has no pitch")
        return pitch_to_midi(self.pitch)


@lru_cache(maxsize=8192)
def parse_token(text: str) -> Token:
    """Parse and validate one semantic token; raise ``ValueError`` saying what is wrong with it."""
    if text in ("tie", "barline"):
        return Token(text)
    for regex in (_NOTE_RE, _REST_RE):
        m = regex.fullmatch(text)
        if m:
            groups = m.groupdict()
            pitch = f"{m['step']}{m['alter'] or ''}{m['octave']}" if "step" in groups else None
            return Token(
                groups.get("kind", "rest"), pitch, m["dur"], len(m["dots"]), m["fermata"] is not None
            )
    m = _CLEF_RE.fullmatch(text)
    if m:
        return Token("clef", value=m["value"])
    m = _KEY_RE.fullmatch(text)
    if m:
        if m["value"] not in KEY_FIFTHS:
            raise ValueError(f"unknown key signature {m['value']!r} (known: {', '.join(KEY_FIFTHS)})")
        return Token("keySignature", value=m["value"])
    m = _TIME_RE.fullmatch(text)
    if m:
        return Token("timeSignature", value=m["value"])
    m = _MULTIREST_RE.fullmatch(text)
    if m:
        return Token("multirest", count=int(m["count"]))
    kind = text.split("-", 1)[0]
    if kind in KINDS:
        raise ValueError(f"malformed {kind} token")
    raise ValueError(f"unknown token kind {kind!r} (expected one of {', '.join(KINDS)})")


def parse_tokens(tokens: Iterable[str | Token], source: str | None = None) -> list[Token]:
    """Parse every token, naming the position, the token and ``source`` in the error."""
    parsed = []
    for i, tok in enumerate(tokens):
        if isinstance(tok, Token):
            parsed.append(tok)
            continue
        try:
            parsed.append(parse_token(tok))
        except (ValueError, TypeError) as e:
            where = f"{source}: " if source else ""
            raise ValueError(f"{where}invalid semantic token at position {i} ({tok!r}): {e}") from None
    return parsed


def parse_semantic(text: str, source: str | None = None) -> list[str]:
    """Split the text of a ``.semantic`` file into its tokens and validate each.

    Parameters
    ----------
    text : str
        One line of tab-separated tokens; a trailing tab and line break are allowed (the corpus has both).
    source : str, optional
        Where the text comes from (a file name), named in error messages.

    Returns
    -------
    list of str, length n_tokens
        The tokens, unchanged.

    Raises
    ------
    ValueError
        If the text is empty, has an empty token (two tabs in a row) or a token outside the grammar; the message
        names the token's position (0-based), the token and ``source``.
    """
    where = f"{source}: " if source else ""
    body = text.rstrip("\r\n").rstrip("\t")
    if not body.strip():
        raise ValueError(f"{where}empty semantic text")
    tokens = body.split("\t")
    try:
        parse_tokens(tokens, source)
    except ValueError as e:
        bad = next((i for i, t in enumerate(tokens) if " " in t.strip()), None)
        if bad is None:
            raise
        raise ValueError(f"{e} (token {bad} holds spaces: tokens are separated by tabs)") from None
    return tokens


def read_semantic(path: str | PathLike) -> list[str]:
    """Read and validate a ``.semantic`` file (see :func:`parse_semantic`); ``ValueError`` naming ``path`` for a file
    that is not UTF-8 text."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})") from None
    return parse_semantic(text, source=str(path))


# --------------------------------------------------------------------------------------------------------------
# Semantic -> MIDI


@dataclass(frozen=True)
class MidiSettings:
    """How :func:`semantic_to_midi` renders tokens (defaults: the im3 converter's)."""

    # im3 writes no tempo event, so MIDI's default 120 BPM applies: a quarter note lasts 0.5 s.
    seconds_per_quarter: float = 0.5
    # im3's resolution; every written length down to a double-dotted 64th is a whole number of ticks.
    ticks_per_quarter: int = 960
    # im3 writes every note at full velocity.
    velocity: int = 127
    # General MIDI 0, acoustic grand piano, as im3.
    program: int = 0
    # Length a grace note takes from the note after it, in quarters (a 32nd: 62.5 ms at 120 BPM).  The semantic
    # does not say whether a grace note is an appoggiatura or an acciaccatura; the short reading moves the
    # principal note least, so the audio stays closest to the written rhythm.
    grace_quarters: Fraction = Fraction(1, 8)


@dataclass(frozen=True)
class _Event:
    """A note of the rendered score, in quarters from the start."""

    pitch: int
    start: Fraction
    end: Fraction
    name: str = ""  # spelled pitch, for ties


def _meter_or_raise(meter: str | None, index: int) -> Fraction:
    if meter is None:
        raise ValueError(f"multirest at position {index} comes before any time signature, so its length is unknown")
    return bar_length(meter)


def _timeline(tokens: Sequence[Token], settings: MidiSettings,
              unresolved: list[int] | None = None) -> tuple[list[_Event], Fraction]:
    """Place every note on a time line in quarters; return the notes and the end of the music.  The positions of
    ties that join no note are appended to ``unresolved``.

    Rules (im3 ``SemanticImporter`` where it is known):

    - notes and rests last their written length times the dot factor; a multi-rest lasts N bars of the current
      time signature;
    - ``tie`` joins the last note before it to the first note after it (barlines, clefs, key and time signatures
      may lie between) into one note, when both have the same spelled pitch; a tie that reaches no such note
      (the incipit ends, a rest or another pitch follows) is ignored, as Verovio ignores an unresolved tie, so
      that real incipits still convert (the corpus has ties misplaced onto the wrong note by Verovio 2's PAE
      import, e.g. ``note-A4_half tie note-G4_half`` in 211010576-1_2_1);
    - grace notes (our choice; the im3 timing is unknown) sound *on the beat*: each takes
      ``settings.grace_quarters`` from the start of the next note or rest, at most half of it shared among
      consecutive grace notes, and the principal note starts later by that much.  Taking the time from the
      following note keeps the conversion a single left-to-right pass, keeps the total length equal to the sum
      of the written lengths (so multi-rests and audio length do not depend on ornaments), and is what Verovio's
      MIDI does with an appoggiatura.  Grace notes at the very end take their own length after the music.
    """
    events: list[_Event] = []
    graces: list[int] = []  # pitches of grace notes waiting for their principal note
    t = Fraction(0)
    meter: str | None = None
    tie_from: int | None = None  # index in ``events`` of the note a pending tie starts from
    tie_at: int | None = None  # position of the pending tie token
    stray: list[int] = [] if unresolved is None else unresolved

    def place_graces(span: Fraction) -> Fraction:
        """Put waiting grace notes at ``t``; return the time they take from an event ``span`` long."""
        if not graces:
            return Fraction(0)
        g = min(settings.grace_quarters, span / (2 * len(graces))) if span > 0 else settings.grace_quarters
        for k, p in enumerate(graces):
            events.append(_Event(p, t + k * g, t + (k + 1) * g))
        used = g * len(graces)
        graces.clear()
        return used

    for i, tok in enumerate(tokens):
        if tok.kind == "timeSignature":
            meter = tok.value
        elif tok.kind == "tie":
            # A tie continues from the last note, whether or not a tie led to it (chains of ties).
            tie_from = len(events) - 1 if events and not graces and events[-1].end == t else None
            tie_at = i if tie_from is not None else None
            if tie_from is None:
                stray.append(i)
        elif tok.kind == "note":
            length = tok.quarters
            prev = events[tie_from] if tie_from is not None else None
            if prev is not None and prev.name == tok.pitch and not graces:
                events[tie_from] = _Event(prev.pitch, prev.start, t + length, prev.name)
            else:
                if tie_at is not None:
                    stray.append(tie_at)
                start = t + place_graces(length)
                events.append(_Event(tok.midi_pitch, start, t + length, tok.pitch))
            tie_from = tie_at = None
            t += length
        elif tok.kind in ("gracenote", "rest", "multirest"):
            if tie_at is not None:
                stray.append(tie_at)
            tie_from = tie_at = None
            if tok.kind == "gracenote":
                graces.append(tok.midi_pitch)
            else:
                length = tok.quarters if tok.kind == "rest" else tok.count * _meter_or_raise(meter, i)
                place_graces(length)
                t += length
        # clef, keySignature and barline take no time and do not break a tie
    if tie_at is not None:
        stray.append(tie_at)
    t += place_graces(Fraction(0))
    return events, t


def semantic_to_midi(tokens: Sequence[str | Token], settings: MidiSettings = MidiSettings(),
                     unresolved_ties: list[int] | None = None) -> pretty_midi.PrettyMIDI:
    """Render semantic tokens as MIDI by the PrIMuS converter's rules.

    Parameters
    ----------
    tokens : sequence of str or Token, length n_tokens
        A semantic sequence, e.g. from :func:`read_semantic`.
    settings : MidiSettings
        Tempo, resolution, velocity, program and the grace-note length.
    unresolved_ties : list, optional
        The positions of ``tie`` tokens that join no note (rendered as if absent) are appended here, so that the
        caller can report them.

    Returns
    -------
    pretty_midi.PrettyMIDI
        One piano instrument; note times in seconds (quarter = ``settings.seconds_per_quarter``).  When the
        music ends in silence (rests, multi-rests), a text event ``"end"`` marks its end, so that
        ``get_end_time()`` equals :func:`semantic_duration` and an audio rendering keeps the trailing rests.

    Raises
    ------
    ValueError
        For an invalid token (naming its position), or a multi-rest before any time signature.
    """
    toks = parse_tokens(tokens)
    events, end = _timeline(toks, settings, unresolved_ties)
    spq = Fraction(settings.seconds_per_quarter)
    midi = pretty_midi.PrettyMIDI(resolution=settings.ticks_per_quarter, initial_tempo=60.0 / float(spq))
    piano = pretty_midi.Instrument(program=settings.program, name="piano")
    for e in sorted(events, key=lambda e: (e.start, e.pitch)):
        piano.notes.append(pretty_midi.Note(settings.velocity, e.pitch, float(e.start * spq), float(e.end * spq)))
    midi.instruments.append(piano)
    if not events or max(e.end for e in events) < end:
        midi.text_events.append(pretty_midi.Text("end", float(end * spq)))
    return midi


def semantic_duration(tokens: Sequence[str | Token], settings: MidiSettings = MidiSettings()) -> float:
    """Length of the music in seconds, trailing rests and multi-rests included."""
    _, end = _timeline(parse_tokens(tokens), settings)
    return float(end * Fraction(settings.seconds_per_quarter))


# --------------------------------------------------------------------------------------------------------------
# Semantic -> Plaine & Easie

# PAE duration digits: 0 longa, 9 breve, 1 whole, 2 half, 4 quarter, 8 eighth, 6 16th, 3 32nd, 5 64th, 7 128th.
PAE_DURATIONS: dict[str, str] = {
    "quadruple_whole": "0",
    "double_whole": "9",
    "whole": "1",
    "half": "2",
    "quarter": "4",
    "eighth": "8",
    "sixteenth": "6",
    "thirty_second": "3",
    "sixty_fourth": "5",
    "hundred_twenty_eighth": "7",
}
_PAE_ACCIDENTALS = {0: "n", 1: "x", 2: "xx", -1: "b", -2: "bb"}


def pae_key(key: str) -> str:
    """PAE key signature for a semantic key: ``"AM"`` -> ``"xFCG"``, ``"EbM"`` -> ``"bBEA"``, ``"CM"`` -> ``""``."""
    fifths = KEY_FIFTHS[key]
    return "x" + SHARP_ORDER[:fifths] if fifths > 0 else "b" + FLAT_ORDER[:-fifths] if fifths < 0 else ""


def pae_octave(octave: int) -> str:
    """PAE octave mark: ``'`` is the octave from middle C (4), ``''`` 5, ``,`` 3, ``,,`` 2, ..."""
    return "'" * (octave - 3) if octave >= 4 else "," * (4 - octave)


def pae_clef(clef: str) -> str:
    """``"G2"`` -> ``"G-2"`` (PAE modern clef: shape, ``-``, staff line)."""
    return f"{clef[0]}-{clef[1]}"


def pae_meter(meter: str) -> str:
    """``"C"`` -> ``"c"``, ``"C/"`` -> ``"c/"``, ``"3/4"`` unchanged."""
    return meter.lower() if meter.startswith("C") else meter


def _beam_groups(tokens: Sequence[Token]) -> list[tuple[int, int]]:
    """(first, last) token indices of the beam groups :func:`semantic_to_pae` writes.

    Consecutive notes shorter than a quarter that start and end within one beat
    (:func:`mtlnb.camera_primus.notation.music.beam_beat_length`) are beamed; rests, grace notes and barlines
    break a group.  Positions are counted from each barline; a first bar that a barline closes
    short of the meter is an upbeat, so its positions are counted back from its end.
    """
    meter = next((t.value for t in tokens if t.kind == "timeSignature"), None)
    first_bar, closed = Fraction(0), False
    for tok in tokens:
        if tok.kind in ("barline", "multirest"):
            closed = tok.kind == "barline"
            break
        first_bar += tok.quarters if tok.kind in ("note", "rest") else 0
    upbeat = closed and meter is not None and first_bar < bar_length(meter)
    pos = bar_length(meter) - first_bar if upbeat else Fraction(0)
    groups: list[tuple[int, int]] = []
    run: list[int] = []  # token indices of the notes in the open group
    run_beat = None
    for i, tok in enumerate(tokens):
        if tok.kind == "timeSignature":
            meter = tok.value
        if tok.kind in ("timeSignature", "clef", "keySignature", "tie"):
            continue
        if tok.kind == "note" and tok.quarters < 1:
            beat = beam_beat_length(meter)
            index = pos // beat
            fits = pos + tok.quarters <= (index + 1) * beat
            if run and (index != run_beat or not fits):
                groups += [(run[0], run[-1])] if len(run) > 1 else []
                run = []
            if fits:
                run.append(i)
                run_beat = index
        else:
            groups += [(run[0], run[-1])] if len(run) > 1 else []
            run = []
        pos = Fraction(0) if tok.kind == "barline" else pos + (tok.quarters if tok.kind in ("note", "rest") else 0)
    groups += [(run[0], run[-1])] if len(run) > 1 else []
    return groups


def _ties(tokens: Sequence[Token]) -> tuple[set[int], set[int]]:
    """Ties that join two notes of the same spelled pitch (the rule of :func:`_timeline`): token indices of the
    notes they start from, and of the continuing notes that lie after a barline."""
    starts, over_bar = set(), set()
    between = ("barline", "clef", "keySignature", "timeSignature", "tie")
    for i, tok in enumerate(tokens):
        if tok.kind != "tie":
            continue
        j = i - 1
        while j >= 0 and tokens[j].kind in between:
            j -= 1
        k = i + 1
        while k < len(tokens) and tokens[k].kind in between:
            k += 1
        if j >= 0 and k < len(tokens) and tokens[j].kind == tokens[k].kind == "note":
            if tokens[j].pitch == tokens[k].pitch:
                starts.add(j)
                if any(t.kind == "barline" for t in tokens[j:k]):
                    over_bar.add(k)
    return starts, over_bar


def semantic_to_pae(tokens: Sequence[str | Token], carry: bool = True, beams: bool = True) -> str:
    """Write semantic tokens as Plaine & Easie, in the form of the corpus's ``regular_pae.pae`` files.

    Parameters
    ----------
    tokens : sequence of str or Token, length n_tokens
        A semantic sequence.  Leading clef, key and time signature go into the header; later ones are written
        inline as changes.  Without a leading clef the header says G-2 (PAE needs one); without a key or time
        signature those fields stay empty.
    carry : bool
        True (default): accidentals are written so that PAE's reading rules give back the semantic pitches: the
        key signature applies, and an accidental holds for later notes of the same step and octave until the
        barline (checked against Verovio 6), so naturals and re-sharpenings are written where needed.  A note
        tied over a barline takes its pitch from the tie and is written without accidental.
        False: the PrIMuS spelling, an accidental wherever the pitch differs from the key signature, as the
        semantic files were derived (see the module docstring).  Verovio then carries accidentals the semantic
        did not, but the page looks like the corpus's own engravings.
    beams : bool
        Group consecutive short notes within a beat into PAE beams ``{...}`` (see :func:`_beam_groups`), as
        engravings of real incipits show; False writes flags only.  Beams do not change the music.

    Returns
    -------
    str
        ``%<clef>@<meter>$<key>ü <data>``, e.g. ``%G-2@2/4$xFCGü 8.'E6E8EC/`` (no line break).

    Notes
    -----
    Octave marks and durations are written only when they change (PAE keeps them); every duration written is
    followed by its note, so PAE's rhythmic patterns (several durations in a row) never arise.  Grace notes are
    written as appoggiaturas (``q``), the only kind the corpus shows; the semantic does not tell them apart.
    Multi-rests: ``=`` for one bar, ``=N`` otherwise, as in the corpus.
    """
    toks = parse_tokens(tokens)
    head = {"clef": "G2", "keySignature": None, "timeSignature": None}
    start = 0
    while start < len(toks) and toks[start].kind in head:
        head[toks[start].kind] = toks[start].value
        start += 1
    key = head["keySignature"]
    key_alter = key_alterations(key)
    header = (
        f"%{pae_clef(head['clef'])}@{pae_meter(head['timeSignature']) if head['timeSignature'] else ''}"
        f"${pae_key(key) if key else ''}ü "
    )
    groups = _beam_groups(toks) if beams else []
    group_starts = {a for a, _ in groups}
    group_ends = {b for _, b in groups}
    tie_starts, over_bar = _ties(toks)

    out: list[str] = []
    bar_alter: dict[tuple[str, int], int] = {}
    octave: int | None = None
    duration: str | None = None
    for i, tok in enumerate(toks[start:], start):
        if tok.kind == "barline":
            out.append("/")
            bar_alter.clear()
        elif tok.kind == "clef":
            out.append(f"%{pae_clef(tok.value)} ")
        elif tok.kind == "keySignature":
            key_alter = key_alterations(tok.value)
            out.append(f"${pae_key(tok.value)} ")
        elif tok.kind == "timeSignature":
            out.append(f"@{pae_meter(tok.value)} ")
        elif tok.kind == "tie":
            pass  # written as "+" right after the note it starts from, where it joins two equal pitches
        elif tok.kind == "multirest":
            out.append("=" if tok.count == 1 else f"={tok.count}")
            duration = None  # write the next duration again rather than rely on PAE keeping it over a multi-rest
        else:  # note, gracenote, rest: [beam] duration octave [fermata( ] [q] accidental step [ )] [tie] [beam]
            text = "{" if i in group_starts else ""
            dur = PAE_DURATIONS[tok.duration] + "." * tok.dots
            if dur != duration:
                text += dur
                duration = dur
            if tok.kind == "rest":
                symbol = "-"
            else:
                step, alter, oct_ = split_pitch(tok.pitch)
                if oct_ != octave:
                    text += pae_octave(oct_)
                    octave = oct_
                expected = bar_alter.get((step, oct_), key_alter.get(step, 0)) if carry else key_alter.get(step, 0)
                accidental = ""
                if alter != expected and i not in over_bar:
                    accidental = _PAE_ACCIDENTALS[alter]
                    if carry:
                        bar_alter[(step, oct_)] = alter
                symbol = ("q" if tok.kind == "gracenote" else "") + accidental + step
            text += f"({symbol})" if tok.fermata else symbol
            text += "+" if i in tie_starts else ""
            text += "}" if i in group_ends else ""
            out.append(text)
    return header + "".join(out)


# -- reductions for error analysis ----------------------------------------------------------------------------------
# Symbol error rates on reduced sequences say which part of a transcription goes wrong (the sim-to-real study,
# mtlnb.camera_primus.evaluation.sim2real): a reduction maps every token to a coarser one and keeps the sequence's
# length, so the SER of reduced sequences is over the same reference symbols.


def without_accidentals(tokens: Sequence[str]) -> list[str]:
    """The tokens with every note's and grace note's alteration dropped: ``note-C#5_quarter`` → ``note-C5_quarter``,
    ``gracenote-Bb4_eighth`` → ``gracenote-B4_eighth``.  Other tokens (key signatures too) are unchanged."""
    out = []
    for text, tok in zip(tokens, parse_tokens(tokens)):
        if tok.pitch is not None:
            step, _, octave = split_pitch(tok.pitch)
            text = text.replace(f"-{tok.pitch}_", f"-{step}{octave}_", 1)
        out.append(text)
    return out


def without_durations(tokens: Sequence[str]) -> list[str]:
    """The tokens with every length dropped: notes and grace notes keep their kind and pitch (``note-C#5_quarter.``
    → ``note-C#5``; a fermata, written on the duration, goes with it), rests become ``rest`` and multi-rests
    ``multirest``.  Clefs, signatures, ties and barlines are unchanged."""
    out = []
    for text, tok in zip(tokens, parse_tokens(tokens)):
        if tok.pitch is not None:
            text = f"{tok.kind}-{tok.pitch}"
        elif tok.kind in ("rest", "multirest"):
            text = tok.kind
        out.append(text)
    return out


def pitch_skeleton(tokens: Sequence[str]) -> list[str]:
    """Notes reduced to pitch letter and octave (``note-C#5_quarter.`` → ``note-C5``): :func:`without_accidentals`
    then :func:`without_durations`."""
    return without_durations(without_accidentals(tokens))
