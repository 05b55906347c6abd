"""The Camera-PrIMuS agnostic encoding: what the staff shows, symbol by symbol, with its place on the staff.

Each sample's ``<id>.agnostic`` is one line of tab-separated tokens (with a trailing tab), ``shape-position``::

    clef.G-L2  accidental.sharp-L5  digit.2-L4  digit.4-L2  note.eighth-L1  dot-S1  note.beamedRight1-L5
    note.beamedLeft1-S4  barline-L1  metersign.C-L3  rest.quarter-L3  digit.1-S5  digit.0-S5  multirest-L3
    slur.start-S4  fermata.above-S6  gracenote.eighth-S4

Positions count lines ``L`` and spaces ``S`` from the bottom line ``L1``; ``S1`` is the space above it, ``S0``
the space below, ``L0`` the first ledger line below, ``S-1`` the space under that, and so on.

PrIMuS made these files with the im3 library (``MEI2GraphicSymbols``, University of Alicante) from the MEI that
Verovio 2 wrote of each incipit, the same MEI its ``.semantic`` files come from.  The rules below are im3's,
checked against all 60 real samples of the Camera-PrIMuS distribution:

- clef ``clef.<shape>-L<line>``; key signature: one ``accidental.sharp``/``accidental.flat`` per altered step, at
  the standard place for the clef (:data:`KEY_POSITIONS`); a key change to C major draws nothing (im3 writes no
  cancelling naturals); time signature ``digit.<numerator>-L4 digit.<denominator>-L2``, or ``metersign.C-L3`` /
  ``metersign.C/-L3``;
- note: ``fermata.above-S6`` (always S6, whatever the pitch), ``slur.end`` if a tie arrives, the accidental, the
  head ``note.<figure>`` or, inside a beam, ``note.beamedRight<n>`` / ``beamedBoth<n>`` / ``beamedLeft<n>`` (first,
  inner, last member of the beam; ``n`` = the note's own number of flags), then one ``dot`` per dot (in the
  note's space, or the space above a note on a line), then ``slur.start`` if a tie leaves it; ties sit at the
  position of their note; grace notes are the same with ``gracenote.`` for ``note.``;
- rest ``rest.<figure>-L3`` (a whole rest hangs from ``L4``), its dots at ``S3``; multi-rest: the digits of its
  bar count at ``S5``, then ``multirest-L3`` (``digit.1-S5 multirest-L3`` for a single bar);
- ``barline-L1`` for every semantic barline.

**Accidentals follow the pitches, not the page.**  im3 works out the accidentals from the pitches
(``Staff.createNoteAccidentalsToShow``): one is drawn where a note's pitch differs from what the key signature and
the earlier accidentals of the same step *and octave* in the bar make it; and an accidental the MEI writes
explicitly is drawn as well, needed or not (the PAE's ``bE`` in E-flat major).  The pitches are the semantic ones,
which ignore in-bar carry (see :mod:`mtlnb.camera_primus.notation.semantic`), so after ``bE E`` in one bar the
``.agnostic`` says ``accidental.flat``, ``accidental.natural`` while the image shows a flat and a plain E (sample 211010547-1_1_1;
also 211010551-1_1_1, 211010565-1_1_1, 211010568-1_21_1).  :func:`semantic_to_agnostic` follows the corpus by
default (``accidentals="corpus"``); ``accidentals="engraved"`` gives exactly the accidentals the PAE writes, which
is what Verovio draws.

**Beams are those of the engraving.**  Which notes share a beam is not in the semantic; it is in the PAE's ``{...}``
groups, which Verovio follows (notes outside a group keep their flags even where a musician would beam them), so
:func:`semantic_to_agnostic` reads them from the PAE that was engraved.
"""

from __future__ import annotations

from typing import Sequence

from mtlnb.camera_primus.notation.music import KEY_FIFTHS, LETTERS, clef_middle_line, key_alterations, split_pitch
from mtlnb.camera_primus.notation.semantic import Token, parse_tokens

# Number of flags (and so of beams) of each figure; a quarter or longer has none.
FLAGS: dict[str, int] = {
    "eighth": 1, "sixteenth": 2, "thirty_second": 3, "sixty_fourth": 4, "hundred_twenty_eighth": 5,
}  # fmt: skip

# Places of the key-signature accidentals per clef, in the order sharps (F C G D A E B) and flats (B E A D G C F)
# are added.  Verovio's own choice (6.4, read off its SVG for every clef), which agrees with every clef/key pair
# in the 60 real samples (C1, C3, C4, F4 and G2 with up to four accidentals); note the tenor and soprano clefs,
# whose sharps start low so that the group stays on the staff.
KEY_POSITIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "G1": (("L4", "S2", "S4", "L3", "S1", "S3", "L2"), ("L2", "S3", "S1", "L3", "L1", "S2", "S0")),
    "G2": (("L5", "S3", "S5", "L4", "S2", "S4", "L3"), ("L3", "S4", "S2", "L4", "L2", "S3", "S1")),
    "C1": (("S2", "L1", "L3", "S1", "S3", "L2", "L4"), ("L4", "L2", "S3", "S1", "L3", "L1", "S2")),
    "C2": (("S3", "L2", "L4", "S2", "S4", "L3", "L5"), ("S1", "L3", "L1", "S2", "L4", "L2", "S3")),
    "C3": (("S4", "L3", "L5", "S3", "L2", "L4", "S2"), ("S2", "L4", "L2", "S3", "S1", "L3", "L1")),
    "C4": (("L2", "L4", "S2", "S4", "L3", "L5", "S3"), ("S3", "L5", "L3", "S4", "S2", "L4", "L2")),
    "C5": (("L3", "S1", "S3", "L2", "L4", "S2", "S4"), ("S4", "S2", "L4", "L2", "S3", "S1", "L3")),
    "F3": (("L3", "S1", "S3", "L2", "L4", "S2", "S4"), ("S4", "S2", "L4", "L2", "S3", "S1", "L3")),
    "F4": (("L4", "S2", "S4", "L3", "S1", "S3", "L2"), ("L2", "S3", "S1", "L3", "L1", "S2", "S0")),
    "F5": (("L5", "S3", "S5", "L4", "S2", "S4", "L3"), ("L3", "S4", "S2", "L4", "S5", "S3", "L5")),
}

_ACCIDENTAL_NAMES = {1: "sharp", -1: "flat", 0: "natural", 2: "double_sharp", -2: "double_flat"}
_PAE_ACCIDENTALS = {"x": 1, "xx": 2, "b": -1, "bb": -2, "n": 0}


def position_name(step: int) -> str:
    """Agnostic name of a staff position counted in steps from the bottom line: 0 -> ``"L1"``, 1 -> ``"S1"``,
    8 -> ``"L5"``, -1 -> ``"S0"``, -2 -> ``"L0"``, -3 -> ``"S-1"``."""
    return f"L{step // 2 + 1}" if step % 2 == 0 else f"S{(step + 1) // 2}"


def staff_step(pitch: str, clef: str) -> int:
    """Staff position of a pitch under a clef, in steps from the bottom line (``"E4"`` under ``"G2"`` -> 0).

    Accidentals do not move a note: ``"F#5"`` and ``"F5"`` share the top line of the treble staff.
    """
    bottom_line = clef_middle_line(clef) - 4  # two lines, four steps, below the middle line
    step, _, octave = split_pitch(pitch)
    return 7 * octave + LETTERS.index(step) - bottom_line


def key_signature_tokens(key: str, clef: str) -> list[str]:
    """Agnostic tokens of a key signature (``"DM"``) under a clef (``"C1"``): ``accidental.sharp-S2 ...``."""
    if key not in KEY_FIFTHS:
        raise ValueError(f"key_signature_tokens: unknown key {key!r} (known: {', '.join(KEY_FIFTHS)})")
    if clef not in KEY_POSITIONS:
        raise ValueError(f"key_signature_tokens: no key-signature places for clef {clef!r} "
                         f"(known: {', '.join(KEY_POSITIONS)})")
    fifths = KEY_FIFTHS[key]
    sharps, flats = KEY_POSITIONS[clef]
    places, name = (sharps[:fifths], "sharp") if fifths >= 0 else (flats[:-fifths], "flat")
    return [f"accidental.{name}-{p}" for p in places]


def time_signature_tokens(meter: str) -> list[str]:
    """``"3/4"`` -> ``["digit.3-L4", "digit.4-L2"]``; ``"C"`` -> ``["metersign.C-L3"]``; ``"C/"`` likewise."""
    if meter in ("C", "C/"):
        return [f"metersign.{meter}-L3"]
    num, sep, den = meter.partition("/")
    if not (sep and num.isdigit() and den.isdigit()):
        raise ValueError(f"time_signature_tokens: bad time signature {meter!r}: expected n/d, C or C/")
    return [f"digit.{num}-L4", f"digit.{den}-L2"]


# --------------------------------------------------------------------------------------------------------------
# What the PAE says about beams and written accidentals


def pae_events(pae: str) -> list[tuple[str, int | None, int | None]]:
    """The notes, grace notes, rests and multi-rests of a Plaine & Easie incipit, in order, with their beams.

    Parameters
    ----------
    pae : str
        ``%clef@meter$keyü data`` as in ``regular_pae.pae`` and
        :func:`mtlnb.camera_primus.notation.semantic.semantic_to_pae`.

    Returns
    -------
    list of (kind, beam, accidental), length n_events
        ``kind`` is ``"note"``, ``"gracenote"``, ``"rest"`` or ``"multirest"``; ``beam`` numbers the ``{...}``
        group the event lies in (None outside groups); ``accidental`` is the alteration the PAE writes before a
        note (1 ``x``, 2 ``xx``, -1 ``b``, -2 ``bb``, 0 ``n``; None where it writes none).  Inline clef, key and
        meter changes are skipped; an accidental written before the duration or octave marks (``b8A``, as some
        corpus files have) still belongs to the next note.

    Raises
    ------
    ValueError
        If there is no ``ü`` (no data section), or braces do not pair up.
    """
    _, sep, data = pae.partition("ü")
    if not sep:
        raise ValueError(f"pae_events: no data section (no 'ü') in {pae[:60]!r}")
    events: list[tuple[str, int | None, int | None]] = []
    beam: int | None = None
    groups = 0
    accidental = ""
    grace = False
    i = 0
    while i < len(data):
        c = data[i]
        if c in "%$@":  # inline clef, key or meter change: runs to the next space
            end = data.find(" ", i)
            i = len(data) if end < 0 else end + 1
            continue
        if c == "{":
            if beam is not None:
                raise ValueError(f"pae_events: nested '{{' at data position {i} of {pae!r}")
            beam, groups = groups, groups + 1
        elif c == "}":
            if beam is None:
                raise ValueError(f"pae_events: '}}' without '{{' at data position {i} of {pae!r}")
            beam = None
        elif c in "xbn":
            accidental += c
        elif c in "qg":
            grace = True
        elif c in "ABCDEFG":
            alter = _PAE_ACCIDENTALS.get(accidental) if accidental else None
            events.append(("gracenote" if grace else "note", beam, alter))
            accidental, grace = "", False
        elif c == "-":
            events.append(("rest", beam, None))
        elif c == "=":
            events.append(("multirest", None, None))
            while i + 1 < len(data) and data[i + 1].isdigit():  # the bar count is no duration
                i += 1
        i += 1
    if beam is not None:
        raise ValueError(f"pae_events: '{{' never closed in {pae!r}")
    return events


def _beam_roles(events: Sequence[tuple[str, int | None, int | None]]) -> list[str | None]:
    """``"Right"``/``"Both"``/``"Left"`` for the first/inner/last member of each beam group, None elsewhere.

    Every event inside the braces counts as a member (a rest as well: it lies inside the MEI ``<beam>``).  A
    group of one is no beam; Verovio draws its note with a flag.
    """
    members: dict[int, list[int]] = {}
    for k, (_, beam, _) in enumerate(events):
        if beam is not None:
            members.setdefault(beam, []).append(k)
    roles: list[str | None] = [None] * len(events)
    for ks in members.values():
        if len(ks) > 1:
            for k in ks:
                roles[k] = "Right" if k == ks[0] else "Left" if k == ks[-1] else "Both"
    return roles


# --------------------------------------------------------------------------------------------------------------
# Semantic + PAE -> agnostic


def _figure(tok: Token, role: str | None) -> str:
    """``"eighth"``, or ``"beamedRight1"`` for the first eighth of a beam; a beamed figure without flags (a
    quarter inside braces, which Verovio does not beam) keeps its plain name."""
    if role is not None and tok.duration in FLAGS:
        return f"beamed{role}{FLAGS[tok.duration]}"
    return tok.duration


def _check_events_match(toks: Sequence[Token], events: Sequence[tuple[str, int | None, int | None]]) -> None:
    """Raise ``ValueError`` naming the first difference unless the PAE's events (:func:`pae_events`) are the
    semantic's notes, grace notes, rests and multi-rests, in the same order."""
    kinds = [t.kind for t in toks if t.kind in ("note", "gracenote", "rest", "multirest")]
    pae_kinds = [e[0] for e in events]
    if kinds != pae_kinds:
        k = next((k for k, (a, b) in enumerate(zip(kinds, pae_kinds)) if a != b), min(len(kinds), len(pae_kinds)))
        raise ValueError(
            f"semantic_to_agnostic: the PAE does not match the semantic: event {k} is "
            f"{pae_kinds[k] if k < len(pae_kinds) else 'missing'} in the PAE and "
            f"{kinds[k] if k < len(kinds) else 'missing'} in the semantic ({len(pae_kinds)} vs {len(kinds)} events)"
        )


def _drawn_accidental(pitch: str, written: int | None, accidentals: str, key_alter: dict[str, int],
                      bar: dict[tuple[str, int], int]) -> int | None:
    """The alteration drawn before a note (None: no accidental); ``bar`` remembers, per (step, octave), the
    alteration last drawn in the bar and is updated here.

    ``"engraved"``: what the PAE writes (``written``).  ``"corpus"`` (im3): the pitch's alteration where it differs
    from the bar's earlier accidental of this step and octave, else from the key signature; an accidental the PAE
    (and so the MEI) writes is drawn as written, needed or not.
    """
    if accidentals == "engraved":
        return written
    step, alter, octave = split_pitch(pitch)
    before = bar.get((step, octave), key_alter.get(step, 0))
    drawn = alter if alter != before else None
    if drawn is not None:
        bar[(step, octave)] = alter
    return written if written is not None else drawn


def _note_tokens(tok: Token, pos: int, drawn: int | None, role: str | None, tie_pending: bool) -> list[str]:
    """Agnostic tokens of a note or grace note at staff step ``pos``: fermata, the end of an arriving tie, the
    accidental ``drawn``, the head (beamed by ``role``), and its dots (in the space, or the space above a line)."""
    place = position_name(pos)
    out = ["fermata.above-S6"] if tok.fermata else []
    out += [f"slur.end-{place}"] if tie_pending else []
    out += [f"accidental.{_ACCIDENTAL_NAMES[drawn]}-{place}"] if drawn is not None else []
    out.append(f"{tok.kind}.{_figure(tok, role)}-{place}")
    out += [f"dot-{position_name(pos + 1 if pos % 2 == 0 else pos)}"] * tok.dots
    return out


def semantic_to_agnostic(tokens: Sequence[str | Token], pae: str, accidentals: str = "corpus") -> list[str]:
    """The agnostic tokens of an incipit, as the corpus's ``.agnostic`` files write them.

    Parameters
    ----------
    tokens : sequence of str or Token, length n_tokens
        The semantic sequence (as written to ``<id>.semantic``).
    pae : str
        The Plaine & Easie string that was engraved (``regular_pae.pae``, or
        :func:`mtlnb.camera_primus.notation.semantic.semantic_to_pae` of ``tokens``); its ``{...}`` groups give the
        beams, and its accidentals are drawn as written.  Its notes, grace notes, rests and multi-rests must be the
        semantic ones, in the same order.
    accidentals : {"corpus", "engraved"}
        ``"corpus"`` (default, im3's rule, as the real files): an accidental wherever the semantic pitch differs
        from the key signature and the earlier accidentals of that step and octave in the bar, and wherever the
        PAE writes one (see the module docstring).  ``"engraved"``: exactly the accidentals the PAE writes, i.e.
        what Verovio draws.

    Returns
    -------
    list of str, length n_agnostic
        E.g. ``["clef.G-L2", "accidental.sharp-L5", "digit.2-L4", "digit.4-L2", "note.eighth-L1", "dot-S1", ...]``.

    Raises
    ------
    ValueError
        For an invalid semantic token, a note before any clef, a PAE whose events do not line up with the
        semantic ones (naming the first difference), or an unknown ``accidentals`` mode.

    Notes
    -----
    A ``tie`` puts ``slur.start`` after the note before it and ``slur.end`` before the next note, at each note's
    position.  Two real samples (211010576-1_2_1, 211010582-1_5_1) differ from this: their ties were misplaced
    by Verovio 2's PAE import, so the MEI's tie ends on another note than the one after the semantic ``tie``.
    """
    if accidentals not in ("corpus", "engraved"):
        raise ValueError(f"semantic_to_agnostic: accidentals must be 'corpus' or 'engraved', got {accidentals!r}")
    toks = parse_tokens(tokens)
    events = pae_events(pae)
    _check_events_match(toks, events)
    roles = _beam_roles(events)

    out: list[str] = []
    clef: str | None = None
    key_alter: dict[str, int] = {}
    bar: dict[tuple[str, int], int] = {}  # alteration last drawn for (step, octave) in this bar
    tie_pending = False
    last_place: str | None = None  # position of the last note, where a tie leaves from
    k = 0  # index into events
    for tok in toks:
        if tok.kind == "clef":
            clef = tok.value
            out.append(f"clef.{clef[0]}-L{clef[1]}")
        elif tok.kind == "keySignature":
            if clef is None:
                raise ValueError("semantic_to_agnostic: a key signature before any clef has no place on the staff")
            key_alter = key_alterations(tok.value)
            out += key_signature_tokens(tok.value, clef)
        elif tok.kind == "timeSignature":
            out += time_signature_tokens(tok.value)
        elif tok.kind == "barline":
            out.append("barline-L1")
            bar.clear()
        elif tok.kind == "tie":
            if last_place is not None:
                out.append(f"slur.start-{last_place}")
                tie_pending = True
        elif tok.kind == "multirest":
            out += [f"digit.{d}-S5" for d in str(tok.count)] + ["multirest-L3"]
            last_place, tie_pending = None, False  # only notes take part in ties
            k += 1
        elif tok.kind == "rest":
            out += ["fermata.above-S6"] if tok.fermata else []
            out.append(f"rest.{tok.duration}-{'L4' if tok.duration == 'whole' else 'L3'}")
            out += ["dot-S3"] * tok.dots
            last_place, tie_pending = None, False
            k += 1
        else:  # note, gracenote
            if clef is None:
                raise ValueError("semantic_to_agnostic: a note before any clef has no place on the staff")
            pos = staff_step(tok.pitch, clef)
            drawn = _drawn_accidental(tok.pitch, events[k][2], accidentals, key_alter, bar)
            out += _note_tokens(tok, pos, drawn, roles[k], tie_pending)
            last_place, tie_pending = position_name(pos), False
            k += 1
    return out


def format_agnostic(tokens: Sequence[str]) -> str:
    """The text of an ``.agnostic`` file: the tokens tab-separated, with the trailing tab the real files have."""
    if not tokens:
        raise ValueError("format_agnostic: no tokens")
    return "\t".join(tokens) + "\t"


def parse_agnostic(text: str) -> list[str]:
    """Split the text of an ``.agnostic`` file into its tokens (a trailing tab and line break are allowed)."""
    body = text.rstrip("\r\n").rstrip("\t")
    if not body.strip():
        raise ValueError("parse_agnostic: empty agnostic text")
    return body.split("\t")
