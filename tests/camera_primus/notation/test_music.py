"""The music primitives (mtlnb.camera_primus.notation.music): note values, pitches, keys, meters, clefs."""

from __future__ import annotations

from fractions import Fraction

import pytest

from mtlnb.camera_primus.notation import music

# -- note values ----------------------------------------------------------------------------------------------------


def test_figures_are_halvings_longest_first():
    values = list(music.FIGURES.values())
    assert values[0] == 16 and values[-1] == Fraction(1, 32)  # quadruple whole .. hundred-twenty-eighth, in quarters
    assert all(a == 2 * b for a, b in zip(values, values[1:]))
    assert music.FIGURES["quarter"] == 1 and music.FIGURES["eighth"] == Fraction(1, 2)


def test_duration_value_applies_dots():
    assert music.duration_value("half") == 2
    assert music.duration_value("half.") == 3
    assert music.duration_value("half..") == Fraction(7, 2)
    assert music.duration_value("sixty_fourth.") == Fraction(3, 32)
    for bad in ("crotchet", "quarter...", ""):
        with pytest.raises(ValueError, match="not a figure"):
            music.duration_value(bad)


def test_shift_duration_moves_along_the_figures_and_keeps_dots():
    assert music.shift_duration("quarter.", 1) == "eighth."
    assert music.shift_duration("quarter", -2) == "whole"
    assert music.shift_duration("eighth..", 0) == "eighth.."
    assert music.shift_duration("quadruple_whole", -1) is None
    assert music.shift_duration("hundred_twenty_eighth", 1) is None


# -- pitches --------------------------------------------------------------------------------------------------------


def test_split_pitch_and_midi():
    assert music.split_pitch("C#5") == ("C", 1, 5)
    assert music.split_pitch("Ebb2") == ("E", -2, 2)
    assert music.pitch_to_midi("C4") == 60 and music.pitch_to_midi("A4") == 69
    assert music.pitch_to_midi("B#3") == 60 and music.pitch_to_midi("Cb4") == 59
    for bad in ("H4", "C10", "Cx4", "C-1", "C#"):  # the grammar has one octave digit
        with pytest.raises(ValueError, match="bad pitch"):
            music.split_pitch(bad)


def test_parse_pitch_counts_staff_steps_for_any_octave():
    assert music.parse_pitch("C4") == (28, 0)
    assert music.parse_pitch("B3") == (27, 0)  # one step below C4
    assert music.parse_pitch("F##5") == (38, 2)
    assert music.parse_pitch("C10") == (70, 0) and music.parse_pitch("B-1") == (-1, 0)
    with pytest.raises(ValueError, match="not a pitch"):
        music.parse_pitch("C#")


def test_pitch_name_inverts_parse_pitch():
    for step in range(-3, 75):
        for alteration in (-2, -1, 0, 1, 2):
            assert music.parse_pitch(music.pitch_name(step, alteration)) == (step, alteration)
    with pytest.raises(ValueError, match="outside -2..2"):
        music.pitch_name(28, 3)


def test_split_and_parse_agree_on_grammar_pitches():
    for letter in music.LETTERS:
        for acc, alter in (("", 0), ("#", 1), ("##", 2), ("b", -1), ("bb", -2)):
            for octave in range(10):
                pitch = f"{letter}{acc}{octave}"
                step, alter_, octave_ = music.split_pitch(pitch)
                assert music.parse_pitch(pitch) == (7 * octave_ + music.LETTERS.index(step), alter_) == (
                    7 * octave + music.LETTERS.index(letter), alter)


# -- key signatures -------------------------------------------------------------------------------------------------


def test_key_alterations_follow_the_orders_of_sharps_and_flats():
    assert music.key_alterations("DM") == {"C": 1, "D": 0, "E": 0, "F": 1, "G": 0, "A": 0, "B": 0}
    assert {c: a for c, a in music.key_alterations("AbM").items() if a} == {"B": -1, "E": -1, "A": -1, "D": -1}
    for key, fifths in music.KEY_FIFTHS.items():
        alters = music.key_alterations(key)
        assert set(alters) == set(music.LETTERS)
        altered = [c for c in (music.SHARP_ORDER if fifths > 0 else music.FLAT_ORDER) if alters[c]]
        assert len(altered) == abs(fifths)
        assert all(alters[c] == (1 if fifths > 0 else -1) for c in altered)


def test_no_key_signature_means_naturals():
    assert music.key_alterations(None) == music.key_alterations(music.NO_KEY) == music.key_alterations("CM")
    assert set(music.key_alterations(None).values()) == {0}
    with pytest.raises(ValueError, match="unknown key signature 'HM'"):
        music.key_alterations("HM")


# -- meters ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ts, fraction, quarters", [
    ("3/4", (3, 4), 3), ("6/8", (6, 8), 3), ("3/8", (3, 8), Fraction(3, 2)), ("C", (4, 4), 4), ("C/", (2, 2), 4),
    ("3/1", (3, 1), 12), ("12/16", (12, 16), 3),
])
def test_meter_fraction_in_whole_notes_and_bar_length_in_quarters(ts, fraction, quarters):
    assert music.meter_fraction(ts) == fraction
    assert music.bar_length(ts) == quarters == 4 * Fraction(*fraction)


def test_bad_time_signatures():
    for bad in ("3", "0/4", "3/0", "c", "3/4/4", ""):
        with pytest.raises(ValueError, match="is not a time signature"):
            music.meter_fraction(bad)


# The two beat rules, side by side (quarter notes): the generator's grid beat and the PAE beam span.
BEATS = {  # time signature: (beat_length, beam_beat_length)
    "2/4": (1, 1), "3/4": (1, 1), "C": (1, 1), "6/8": (Fraction(3, 2), Fraction(3, 2)),
    "12/8": (Fraction(3, 2), Fraction(3, 2)), "9/16": (Fraction(3, 4), Fraction(3, 4)),
    "3/8": (Fraction(1, 2), Fraction(3, 2)), "2/8": (Fraction(1, 2), 1), "C/": (2, 1), "2/2": (2, 1),
    "3/2": (2, 1), "6/4": (3, 1),
}


@pytest.mark.parametrize("ts", sorted(BEATS))
def test_the_grid_beat_and_the_beam_beat(ts):
    grid, beam = BEATS[ts]
    assert music.beat_length(ts) == grid
    assert music.beam_beat_length(ts) == beam


def test_beam_beat_without_a_time_signature_is_a_quarter():
    assert music.beam_beat_length(None) == 1


def test_denominator_shift():
    assert [music.denominator_shift(ts) for ts in ("3/4", "3/8", "6/16", "C/", "3/1", "C")] == [0, 1, 2, -1, -2, 0]


# -- clefs ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clef, middle", [("G2", "B4"), ("G1", "D5"), ("C1", "G4"), ("C3", "C4"), ("C4", "A3"),
                                          ("F4", "D3"), ("F3", "F3"), ("F5", "B2")])
def test_clef_middle_line(clef, middle):
    assert music.clef_middle_line(clef) == music.parse_pitch(middle)[0]


def test_bad_clefs():
    for bad in ("X2", "G6", "G0", "G", "G22"):
        with pytest.raises(ValueError, match="is not a clef"):
            music.clef_middle_line(bad)
