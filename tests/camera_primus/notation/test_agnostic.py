"""Tests of mtlnb.camera_primus.notation.agnostic: semantic + engraved PAE -> the Camera-PrIMuS agnostic encoding.

The expectations are worked out by hand from the staff (lines and spaces counted from the bottom line) and from
standard key-signature placement; the real check is the 60 real samples, whose ``.agnostic`` files we reproduce
from their ``.semantic`` and ``regular_pae.pae``.
"""

from __future__ import annotations

import numpy as np
import pytest

from mtlnb.camera_primus.notation import agnostic
from mtlnb.camera_primus.notation import semantic as encoding
from mtlnb.camera_primus.corpus import incipits as generator
from mtlnb.camera_primus.notation.agnostic import (
    format_agnostic,
    key_signature_tokens,
    pae_events,
    parse_agnostic,
    position_name,
    semantic_to_agnostic,
    staff_step,
    time_signature_tokens,
)


def _edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        diag, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diag, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diag + (x != y))
    return row[-1]


# --------------------------------------------------------------------------------------------------------------
# staff positions, key and time signatures


@pytest.mark.parametrize("step, name", [(0, "L1"), (1, "S1"), (8, "L5"), (9, "S5"), (12, "L7"), (-1, "S0"),
                                        (-2, "L0"), (-3, "S-1"), (-4, "L-1")])
def test_position_names(step, name):
    assert position_name(step) == name


@pytest.mark.parametrize("pitch, clef, step", [
    ("E4", "G2", 0),    # treble bottom line
    ("F#5", "G2", 8),   # top line; the sharp does not move the note
    ("C4", "G2", -2),   # middle C: first ledger line below
    ("G4", "G1", 0),    # French violin clef: G4 on the bottom line
    ("C4", "C1", 0),    # soprano clef: C4 on the bottom line
    ("C4", "C3", 4),    # alto clef: middle line
    ("D3", "C4", 0),    # tenor clef: D3 on the bottom line
    ("A3", "F4", 8),    # bass clef top line
    ("D4", "F4", 11),   # bass clef, the space above the first ledger line (as in 211010539-1_1_2)
    ("E2", "F5", 0),    # sub-bass clef: F3 on the top line, so E2 at the bottom
])
def test_staff_steps(pitch, clef, step):
    assert staff_step(pitch, clef) == step


def test_staff_step_rejects_bad_clefs():
    with pytest.raises(ValueError, match="'X2' is not a clef"):
        staff_step("C4", "X2")
    with pytest.raises(ValueError, match="'G6' is not a clef"):
        staff_step("C4", "G6")


@pytest.mark.parametrize("key, clef, places", [
    ("EM", "G2", ["sharp-L5", "sharp-S3", "sharp-S5", "sharp-L4"]),  # F#5 C#5 G#5 D#5
    ("AbM", "F4", ["flat-L2", "flat-S3", "flat-S1", "flat-L3"]),     # Bb2 Eb3 Ab2 Db3
    ("DM", "C4", ["sharp-L2", "sharp-L4"]),                          # tenor: F#3 low, then C#4
    ("EbM", "C3", ["flat-S2", "flat-L4", "flat-L2"]),                # alto: Bb3 Eb4 Ab3
    ("C#M", "G2", ["sharp-L5", "sharp-S3", "sharp-S5", "sharp-L4", "sharp-S2", "sharp-S4", "sharp-L3"]),
    ("CM", "F4", []),
])
def test_key_signature_places(key, clef, places):
    assert key_signature_tokens(key, clef) == [f"accidental.{p}" for p in places]


def test_every_clef_and_key_of_the_vocabulary_has_places(reference):
    vocab = (reference / "primus" / "vocabulary_semantic.txt").read_text(encoding="utf-8").split()
    clefs = [t.split("-")[1] for t in vocab if t.startswith("clef-")]
    keys = [t.split("-")[1] for t in vocab if t.startswith("keySignature-")]
    for clef in clefs:
        for key in keys:
            tokens = key_signature_tokens(key, clef)
            assert len(tokens) == abs(encoding.KEY_FIFTHS[key])
            places = [t.split("-", 1)[1] for t in tokens]
            assert len(set(places)) == len(places), (clef, key)  # no two accidentals on one line or space


def test_key_signature_errors():
    with pytest.raises(ValueError, match="unknown key 'HM'"):
        key_signature_tokens("HM", "G2")
    with pytest.raises(ValueError, match="no key-signature places for clef 'G3'"):
        key_signature_tokens("DM", "G3")


def test_time_signatures():
    assert time_signature_tokens("3/4") == ["digit.3-L4", "digit.4-L2"]
    assert time_signature_tokens("12/8") == ["digit.12-L4", "digit.8-L2"]  # im3 writes each number whole
    assert time_signature_tokens("C") == ["metersign.C-L3"]
    assert time_signature_tokens("C/") == ["metersign.C/-L3"]
    with pytest.raises(ValueError, match="bad time signature '3'"):
        time_signature_tokens("3")


# --------------------------------------------------------------------------------------------------------------
# reading the PAE


def test_pae_events_beams_accidentals_and_skipped_changes():
    pae = "%G-2@c$xFü {8'AB}4-/=12/@3/4 $bB %F-4 b8,A{6xxCbbD}8qnE/"
    assert pae_events(pae) == [
        ("note", 0, None), ("note", 0, None), ("rest", None, None), ("multirest", None, None),
        ("note", None, -1),  # the flat written before the duration (b8A, as in 211010568-1_21_1)
        ("note", 1, 2), ("note", 1, -2), ("gracenote", None, 0),
    ]


def test_pae_events_errors():
    with pytest.raises(ValueError, match="no data section"):
        pae_events("%G-2@c$ 4C")
    with pytest.raises(ValueError, match="never closed"):
        pae_events("%G-2@c$ü {8CD")
    with pytest.raises(ValueError, match="without"):
        pae_events("%G-2@c$ü 8CD}")
    with pytest.raises(ValueError, match="nested"):
        pae_events("%G-2@c$ü {8C{D}}")


# --------------------------------------------------------------------------------------------------------------
# semantic + PAE -> agnostic, by hand

HAND_SEMANTIC = [
    "clef-G2", "keySignature-DM", "timeSignature-3/4",
    "note-F#4_eighth.", "note-G4_sixteenth", "note-C5_quarter", "note-C#5_quarter_fermata", "barline",
    "note-D5_half.", "tie", "barline",
    "note-D5_quarter", "rest-quarter.", "gracenote-B3_eighth", "note-C4_eighth", "barline",
    "rest-whole", "barline", "multirest-12", "barline",
]
HAND_PAE = "%G-2@3/4$xFCü {8.'F6G}4''nC(xC)/2.D+/4D4.-8,qB'nC/1-/=12/"
HAND_AGNOSTIC = [
    "clef.G-L2", "accidental.sharp-L5", "accidental.sharp-S3", "digit.3-L4", "digit.4-L2",
    "note.beamedRight1-S1", "dot-S1",              # F#4 in the first space, beamed to the right, one beam
    "note.beamedLeft2-L2",                         # G4: last of the beam, two beams of its own
    "accidental.natural-S3", "note.quarter-S3",    # C5 against the key's C#
    "fermata.above-S6", "accidental.sharp-S3", "note.quarter-S3",  # C#5 against the bar's C natural
    "barline-L1",
    "note.half-L4", "dot-S4", "slur.start-L4",     # D5 on a line: its dot in the space above
    "barline-L1",
    "slur.end-L4", "note.quarter-L4",
    "rest.quarter-L3", "dot-S3",
    "gracenote.eighth-S-1",                        # B3: the space below the first ledger line
    "accidental.natural-L0", "note.eighth-L0",     # C4: another octave than the bar's C5, so the key rules
    "barline-L1",
    "rest.whole-L4", "barline-L1",                 # the whole rest hangs from the fourth line
    "digit.1-S5", "digit.2-S5", "multirest-L3", "barline-L1",
]


def test_hand_made_incipit():
    assert semantic_to_agnostic(HAND_SEMANTIC, HAND_PAE) == HAND_AGNOSTIC
    # nothing here differs between the pitches and the written accidentals
    assert semantic_to_agnostic(HAND_SEMANTIC, HAND_PAE, accidentals="engraved") == HAND_AGNOSTIC


def test_corpus_accidentals_follow_the_pitches_and_the_written_ones():
    # E flat then E natural in one bar, the PAE writing only the flat (the corpus's own spelling, 211010547-1_1_1)
    sem = ["clef-G2", "timeSignature-2/4", "note-Eb4_quarter", "note-E4_quarter", "barline"]
    pae = "%G-2@2/4$ü 4'bEE/"
    assert semantic_to_agnostic(sem, pae) == [
        "clef.G-L2", "digit.2-L4", "digit.4-L2",
        "accidental.flat-L1", "note.quarter-L1", "accidental.natural-L1", "note.quarter-L1", "barline-L1"]
    assert semantic_to_agnostic(sem, pae, accidentals="engraved") == [
        "clef.G-L2", "digit.2-L4", "digit.4-L2",
        "accidental.flat-L1", "note.quarter-L1", "note.quarter-L1", "barline-L1"]
    # a flat the key already gives, written anyway, is drawn (211010569-1_18_1); a barline forgets accidentals
    sem = ["clef-G2", "keySignature-BbM", "timeSignature-2/4", "note-B4_quarter", "note-Bb4_quarter", "barline",
           "note-Bb4_quarter", "note-Bb4_quarter"]
    pae = "%G-2@2/4$bBEü 4'nBB/BbB"
    assert semantic_to_agnostic(sem, pae)[5:] == [
        "accidental.natural-L3", "note.quarter-L3", "accidental.flat-L3", "note.quarter-L3", "barline-L1",
        "note.quarter-L3", "accidental.flat-L3", "note.quarter-L3"]


def test_semantic_to_agnostic_errors():
    with pytest.raises(ValueError, match="event 1 is missing in the PAE and note in the semantic"):
        semantic_to_agnostic(["clef-G2", "note-C4_quarter", "note-D4_quarter"], "%G-2@$ü 4'C")
    with pytest.raises(ValueError, match="event 0 is rest in the PAE and note in the semantic"):
        semantic_to_agnostic(["clef-G2", "note-C4_quarter"], "%G-2@$ü 4-")
    with pytest.raises(ValueError, match="accidentals must be 'corpus' or 'engraved'"):
        semantic_to_agnostic(["clef-G2", "note-C4_quarter"], "%G-2@$ü 4'C", accidentals="pitch")
    with pytest.raises(ValueError, match="position 1"):
        semantic_to_agnostic(["clef-G2", "note-H4_quarter"], "%G-2@$ü 4'C")


def test_format_and_parse():
    assert format_agnostic(["clef.G-L2", "barline-L1"]) == "clef.G-L2\tbarline-L1\t"
    assert parse_agnostic("clef.G-L2\tbarline-L1\t\n") == ["clef.G-L2", "barline-L1"]
    with pytest.raises(ValueError, match="no tokens"):
        format_agnostic([])
    with pytest.raises(ValueError, match="empty"):
        parse_agnostic("\t\n")


# --------------------------------------------------------------------------------------------------------------
# the 60 real samples

# Where our agnostic differs from the real file.  Each reason is checked below.
TIE_MISPLACED = ("Verovio 2's PAE import misplaced the ties (see test_semantic's TIE_LOST): the MEI's tie ends on "
                 "another note than the one after the semantic 'tie', so slur.end sits elsewhere")
AGNOSTIC_EXCEPTIONS = {
    "211010576-1_2_1": TIE_MISPLACED,
    "211010582-1_5_1": TIE_MISPLACED,
}


def _real(sample):
    tokens = encoding.read_semantic(sample / f"{sample.name}.semantic")
    pae = (sample / "regular_pae.pae").read_text(encoding="utf-8").strip()
    text = (sample / f"{sample.name}.agnostic").read_text(encoding="utf-8")
    return tokens, pae, text


def test_every_real_sample(primus_samples):
    """58 of the 60 real ``.agnostic`` files come out exactly; the two others differ only in where a tie ends.

    Over all 60, the token edit distance is 4 in 1,674 tokens (0.24 %).
    """
    exact, distance, total = 0, 0, 0
    for sample in primus_samples:
        tokens, pae, text = _real(sample)
        real = parse_agnostic(text)
        ours = semantic_to_agnostic(tokens, pae)
        distance += _edit_distance(ours, real)
        total += len(real)
        if sample.name not in AGNOSTIC_EXCEPTIONS:
            assert ours == real, sample.name
            assert format_agnostic(ours) == text, sample.name  # byte for byte, trailing tab included
            exact += 1
            continue
        assert ours != real, f"{sample.name} is listed as an exception but matches"
        # the reason: the same slur.end count, and equal without them
        assert sum(t.startswith("slur.end") for t in ours) == sum(t.startswith("slur.end") for t in real)
        assert [t for t in ours if not t.startswith("slur.end")] == [t for t in real if not t.startswith("slur.end")]
    assert exact == 58
    assert distance == 4 and total == 1674


def test_engraved_accidentals_differ_from_the_corpus_only_by_carry_naturals(primus_samples):
    """Where the PAE leaves an accidental to the bar's earlier one, the corpus adds what the pitch needs: in the
    real samples that is always a natural after an altered note of the same step (Verovio 2's reading)."""
    differing = 0
    for sample in primus_samples:
        tokens, pae, _ = _real(sample)
        corpus = semantic_to_agnostic(tokens, pae)
        engraved = semantic_to_agnostic(tokens, pae, accidentals="engraved")
        extra = list(corpus)
        for t in engraved:
            extra.remove(t)
        assert all(t.startswith("accidental.natural-") for t in extra), sample.name
        assert len(corpus) == len(engraved) + len(extra)
        differing += bool(extra)
    assert differing == 6


# --------------------------------------------------------------------------------------------------------------
# the synthetic corpus's path: generator -> semantic -> our PAE -> agnostic


@pytest.mark.parametrize("beams", [True, False])
def test_synthetic_incipits_convert(beams):
    """Every generated incipit converts with the PAE the synthetic corpus engraves, one head per note."""
    for i in range(150):
        tokens = generator.generate_incipit(np.random.default_rng([11, i]))
        pae = encoding.semantic_to_pae(tokens, carry=False, beams=beams)
        out = semantic_to_agnostic(tokens, pae)
        heads = [t for t in out if t.startswith(("note.", "gracenote.", "rest.", "multirest-"))]
        assert len(heads) == sum(t.startswith(("note-", "gracenote-", "rest-", "multirest-")) for t in tokens)
        assert any("beamed" in t for t in out) or not beams or "{" not in pae
        if not beams:
            assert not any("beamed" in t for t in out)
        starts = [t.split("-", 1)[1] for t in out if t.startswith("slur.start-")]
        ends = [t.split("-", 1)[1] for t in out if t.startswith("slur.end-")]
        assert starts == ends  # the generator ties equal pitches only: both ends of each tie on one place


# --------------------------------------------------------------------------------------------------------------
# the steps of semantic_to_agnostic


def test_check_events_match():
    toks = encoding.parse_tokens(["clef-G2", "note-C4_quarter", "tie", "rest-half", "multirest-3"])
    agnostic._check_events_match(toks, pae_events("%G-2@4/4$ü 4'C+2-=3"))
    with pytest.raises(ValueError, match="event 1 is note in the PAE and rest in the semantic"):
        agnostic._check_events_match(toks, pae_events("%G-2@4/4$ü 4'C2C=3"))
    with pytest.raises(ValueError, match=r"event 2 is missing in the PAE and multirest in the semantic \(2 vs 3"):
        agnostic._check_events_match(toks, pae_events("%G-2@4/4$ü 4'C2-"))


def test_drawn_accidental_follows_im3_or_the_engraving():
    key, bar = {"F": 1, "C": 1}, {}  # D major
    drawn = [agnostic._drawn_accidental(p, None, "corpus", key, bar) for p in ("F#4", "F4", "F4", "F#4", "F5")]
    assert drawn == [None, 0, None, 1, 0]  # against the key, then against the bar's last accidental per octave
    assert bar == {("F", 4): 1, ("F", 5): 0}
    assert agnostic._drawn_accidental("F#5", 1, "corpus", key, {}) == 1  # written by the PAE: drawn, needed or not
    assert agnostic._drawn_accidental("Bb4", -1, "corpus", {}, {}) == -1
    bar = {}
    assert agnostic._drawn_accidental("F4", None, "engraved", key, bar) is None and bar == {}
    assert agnostic._drawn_accidental("F#4", 1, "engraved", key, bar) == 1


def test_note_tokens():
    tok = encoding.parse_token("note-F#5_eighth._fermata")
    assert agnostic._note_tokens(tok, 8, 1, "Right", True) == [
        "fermata.above-S6", "slur.end-L5", "accidental.sharp-L5", "note.beamedRight1-L5", "dot-S5"]
    tok = encoding.parse_token("gracenote-E4_quarter..")
    assert agnostic._note_tokens(tok, 1, None, "Left", False) == ["gracenote.quarter-S1", "dot-S1", "dot-S1"]
