"""Music primitives shared by the encodings and the incipit generator: note values, pitches, keys, meters, clefs.

Conventions (every module of the study uses these, and only these, definitions):

- **Lengths** are exact :class:`fractions.Fraction` counts of **quarter notes** (a dotted half is 3), with one
  exception named as such: :func:`meter_fraction`, the bar as a fraction of a **whole note** (``(3, 8)``).
- **Figures** are the undotted note values of the semantic encoding, longest first: ``"quadruple_whole"`` …
  ``"hundred_twenty_eighth"`` (:data:`FIGURES`).  A **duration name** is a figure plus up to two dots
  (``"quarter."``); one dot adds half the figure, two dots three quarters (:data:`DOT_FACTORS`).
- **Pitch names** are a letter ``A``-``G``, an optional ``#``, ``##``, ``b`` or ``bb`` and an octave in scientific
  pitch notation (``"C4"`` is middle C, MIDI 60; ``"B#3"`` is 60 too, ``"Cb4"`` 59).  Pitches are absolute: the
  accidental is the sounding alteration, whatever the key signature.
- **Staff steps** count lines and spaces: ``7 · octave + letter index`` (C = 0 … B = 6), so ``"C4"`` is 28 and one
  step is one line or space of the staff.
- **Key signatures** are named as the semantic files name them, by their major key (``"EbM"``), and counted in
  fifths (negative = flats, :data:`KEY_FIFTHS`); :data:`NO_KEY` (``"none"``) stands for an incipit without a key
  signature.
- **Time signatures** are ``"n/d"``, ``"C"`` (4/4) or ``"C/"`` (2/2).
- **Clefs** are a sign and the staff line it sits on, counted from the bottom: ``"G2"``, ``"C1"``, ``"F4"``.

Two notions of "beat" exist, for two jobs, and they disagree on purpose (see :func:`beat_length` and
:func:`beam_beat_length`): the incipit generator's metrical grid, and the grouping of short notes under one beam
when an incipit is written as Plaine & Easie.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

# --------------------------------------------------------------------------------------------------------------
# Note values

# Length of each figure in quarter notes, longest first (the order defines "one figure shorter").
FIGURES: dict[str, Fraction] = {
    "quadruple_whole": Fraction(16),
    "double_whole": Fraction(8),
    "whole": Fraction(4),
    "half": Fraction(2),
    "quarter": Fraction(1),
    "eighth": Fraction(1, 2),
    "sixteenth": Fraction(1, 4),
    "thirty_second": Fraction(1, 8),
    "sixty_fourth": Fraction(1, 16),
    "hundred_twenty_eighth": Fraction(1, 32),
}
_FIGURE_ORDER = list(FIGURES)

# Length factor of no, one and two dots: one dot adds half the figure, two dots three quarters of it (the PrIMuS
# authors' converter, im3: x1.5, x1.75).
DOT_FACTORS = (Fraction(1), Fraction(3, 2), Fraction(7, 4))


def duration_value(name: str) -> Fraction:
    """Length in quarter notes of a duration name: a figure plus up to two dots (``"quarter."`` → 3/2)."""
    figure = name.rstrip(".")
    dots = len(name) - len(figure)
    if figure not in FIGURES or dots > 2:
        raise ValueError(f"duration_value: {name!r} is not a figure with at most two dots")
    return FIGURES[figure] * DOT_FACTORS[dots]


def shift_duration(name: str, levels: int) -> str | None:
    """The same duration name ``levels`` figures shorter (negative: longer), dots kept; None beyond the figures.

    ``shift_duration("quarter.", 1)`` → ``"eighth."``; ``shift_duration("whole", -3)`` → None.
    """
    figure = name.rstrip(".")
    i = _FIGURE_ORDER.index(figure) + levels
    if not 0 <= i < len(_FIGURE_ORDER):
        return None
    return _FIGURE_ORDER[i] + name[len(figure):]


# --------------------------------------------------------------------------------------------------------------
# Pitches

LETTERS = "CDEFGAB"  # step letters in staff order; the index is the step within the octave
_STEP_SEMITONES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_ALTERS = {"": 0, "#": 1, "##": 2, "b": -1, "bb": -2}

# A pitch as the semantic grammar writes it: one octave digit.  The semantic token expressions embed it.
PITCH_PATTERN = r"(?P<step>[A-G])(?P<alter>##|#|bb|b)?(?P<octave>[0-9])"
# Any integer octave, for staff-step arithmetic (pitch_name writes whatever step it is given).
_ANY_OCTAVE_PITCH_RE = re.compile(r"^([A-G])(#{1,2}|b{1,2})?(-?\d+)$")


def split_pitch(pitch: str) -> tuple[str, int, int]:
    """``"C#5"`` → ``("C", 1, 5)``: step letter, alteration in semitones, octave (0-9, as the grammar allows)."""
    m = re.fullmatch(PITCH_PATTERN, pitch)
    if m is None:
        raise ValueError(f"bad pitch {pitch!r}: expected a letter A-G, an optional #, ##, b or bb, and an octave 0-9")
    return m["step"], _ALTERS[m["alter"] or ""], int(m["octave"])


def pitch_to_midi(pitch: str) -> int:
    """MIDI note number of a semantic pitch name such as ``"Bb4"`` or ``"E#3"`` (C4 = 60, so B#3 = 60, Cb4 = 59)."""
    step, alter, octave = split_pitch(pitch)
    return 12 * (octave + 1) + _STEP_SEMITONES[step] + alter


def parse_pitch(pitch: str) -> tuple[int, int]:
    """``(staff step, alteration)`` of a pitch name: ``"C4"`` → (28, 0), ``"Bb3"`` → (27, -1).

    The staff step is ``7 · octave + letter index`` (C = 0 … B = 6): one unit per line or space of the staff.  Any
    integer octave is read (:func:`split_pitch` keeps to the grammar's 0-9).
    """
    m = _ANY_OCTAVE_PITCH_RE.match(pitch)
    if not m:
        raise ValueError(f"parse_pitch: {pitch!r} is not a pitch like 'C#5' or 'Bb3'")
    letter, acc, octave = m.groups()
    acc = acc or ""
    return 7 * int(octave) + LETTERS.index(letter), acc.count("#") - acc.count("b")


def pitch_name(step: int, alteration: int = 0) -> str:
    """Inverse of :func:`parse_pitch`: ``(27, -1)`` → ``"Bb3"``."""
    if not -2 <= alteration <= 2:
        raise ValueError(f"pitch_name: alteration {alteration} outside -2..2")
    octave, letter = divmod(step, 7)
    return f"{LETTERS[letter]}{'#' * alteration if alteration > 0 else 'b' * -alteration}{octave}"


# --------------------------------------------------------------------------------------------------------------
# Key signatures

# Key signatures as fifths (negative = flats).  The semantic files only write major keys: Verovio's MEI carries
# the number of accidentals, not the mode.
KEY_FIFTHS: dict[str, int] = {
    "CbM": -7, "GbM": -6, "DbM": -5, "AbM": -4, "EbM": -3, "BbM": -2, "FM": -1, "CM": 0,
    "GM": 1, "DM": 2, "AM": 3, "EM": 4, "BM": 5, "F#M": 6, "C#M": 7,
}  # fmt: skip
SHARP_ORDER = "FCGDAEB"  # the order in which a key signature adds sharps
FLAT_ORDER = "BEADGCF"  # and flats
NO_KEY = "none"  # the key-signature value of an incipit that has no keySignature token: all naturals


def key_alterations(key: str | None) -> dict[str, int]:
    """Letter → alteration the key signature gives it, for all seven letters (``"DM"``: F and C +1, others 0).

    ``None`` and :data:`NO_KEY` (no key signature) give all naturals; ``ValueError`` for an unknown key.
    """
    if key is None or key == NO_KEY:
        return {c: 0 for c in LETTERS}
    if key not in KEY_FIFTHS:
        raise ValueError(f"key_alterations: unknown key signature {key!r} (known: {', '.join(KEY_FIFTHS)})")
    fifths = KEY_FIFTHS[key]
    alters = {c: 0 for c in LETTERS}
    for c in (SHARP_ORDER if fifths > 0 else FLAT_ORDER)[: abs(fifths)]:
        alters[c] = 1 if fifths > 0 else -1
    return alters


# --------------------------------------------------------------------------------------------------------------
# Meters

_TS_RE = re.compile(r"^(\d+)/(\d+)$")


def meter_fraction(time_signature: str) -> tuple[int, int]:
    """``(numerator, denominator)`` of a time signature: ``"3/4"`` → (3, 4); ``"C"`` = 4/4, ``"C/"`` = 2/2.

    The bar lasts ``numerator / denominator`` **whole notes**; :func:`bar_length` gives it in quarter notes.
    """
    if time_signature == "C":
        return 4, 4
    if time_signature == "C/":
        return 2, 2
    m = _TS_RE.match(time_signature)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise ValueError(f"meter_fraction: {time_signature!r} is not a time signature like '3/4', 'C' or 'C/'")
    return int(m.group(1)), int(m.group(2))


def bar_length(time_signature: str) -> Fraction:
    """Nominal bar length of a time signature in **quarter notes**: 4 × :func:`meter_fraction` (``"6/8"`` → 3)."""
    num, den = meter_fraction(time_signature)
    return Fraction(4 * num, den)


def beat_length(time_signature: str) -> Fraction:
    """The beat of the incipit generator's metrical grid, in **quarter notes**.

    The denominator's note, or three of them in compound meters (a numerator that is a multiple of 3 above 3):
    3/4 → 1, 6/8 → 3/2, 3/8 → 1/2 (3/8 counts in eighths), C/ → 2.  The generator lets an event no longer than this
    beat start only inside one beat, on a multiple of its figure, and a longer event only on a beat; the shipped
    duration weights were fitted under this very grid, which is why it is not :func:`beam_beat_length`.
    """
    num, den = meter_fraction(time_signature)
    unit = Fraction(4, den)
    return 3 * unit if num % 3 == 0 and num > 3 else unit


def beam_beat_length(time_signature: str | None) -> Fraction:
    """The span within which short notes share one beam when an incipit is written as PAE, in **quarter notes**.

    Three denominator notes where the denominator is 8 or more and the numerator a multiple of 3 (6/8 and 3/8 → a
    dotted quarter, 9/16 → 3/4); a quarter otherwise, including C/, 3/2 and 6/4 and an incipit without a time
    signature (``None``): a 3/8 bar of eighths is one beam, eighths in C/ are beamed in pairs.  It differs from
    the generator's :func:`beat_length` on 3/8, 2/8, 4/8, C/, 2/2, 3/2, 6/4 and others: the grid decides where
    a note may start (and the shipped statistics were fitted under it), this rule only how the notes already
    drawn are beamed on the page.  Each is kept as it is because changing either changes the corpus.
    """
    if time_signature is None:
        return Fraction(1)
    num, den = meter_fraction(time_signature)
    return Fraction(12, den) if den >= 8 and num % 3 == 0 else Fraction(1)


def denominator_shift(time_signature: str) -> int:
    """Figures between the time signature's denominator note and the quarter (3/8 → 1, C/ → −1, 3/4 → 0)."""
    return int(round(math.log2(meter_fraction(time_signature)[1] / 4)))


# --------------------------------------------------------------------------------------------------------------
# Clefs

_CLEF_LINE_PITCH = {"G": "G4", "C": "C4", "F": "F3"}  # the pitch each clef sign marks on its line


def clef_middle_line(clef: str) -> int:
    """Staff step of the middle (third) line under a clef such as ``"G2"``, ``"C3"``, ``"F4"``.

    The clef sign marks its pitch on its line (G → G4, C → C4, F → F3; lines counted from the bottom) and lines are
    two steps apart, so the middle line is ``sign pitch + 2 · (3 − line)``: G2 → B4, C1 → G4, F4 → D3.
    """
    if len(clef) != 2 or clef[0] not in _CLEF_LINE_PITCH or not clef[1].isdigit() or not 1 <= int(clef[1]) <= 5:
        raise ValueError(f"clef_middle_line: {clef!r} is not a clef like 'G2', 'C1' or 'F4'")
    return parse_pitch(_CLEF_LINE_PITCH[clef[0]])[0] + 2 * (3 - int(clef[1]))
