"""Fitting the incipit generator's statistics, and describing corpora (mtlnb.camera_primus.corpus.incipit_stats)."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from mtlnb.camera_primus.corpus import incipit_stats as g
from mtlnb.camera_primus.corpus import incipits as generator


@pytest.fixture(scope="module")
def incipits():
    return generator.generate_incipits(300, seed=7)


# -- tokens, durations, pitches ---------------------------------------------------------------------------------

def test_token_family():
    assert g.token_family("note-C#5_eighth._fermata") == "note"
    assert g.token_family("gracenote-E5_eighth") == "gracenote"
    assert g.token_family("rest-half") == "rest"
    assert g.token_family("multirest-23") == "multirest"
    assert g.token_family("keySignature-EbM") == "keySignature"
    assert g.token_family("timeSignature-C/") == "timeSignature"
    assert g.token_family("barline") == "barline" and g.token_family("tie") == "tie"
    for bad in ("chord-C4", "note", "", "barline2"):
        with pytest.raises(ValueError, match="not a semantic token"):
            g.token_family(bad)


def test_durations_pitches_keys_clefs():
    assert g.duration_value("quarter.") == Fraction(3, 2)
    assert g.duration_value("eighth..") == Fraction(7, 8)
    assert g.event_duration("note-Bb4_half._fermata") == 3
    assert g.event_duration("gracenote-C5_eighth") == 0
    with pytest.raises(ValueError):
        g.event_duration("barline")
    assert g.parse_pitch("C4") == (28, 0) and g.parse_pitch("Bb3") == (27, -1)
    assert g.pitch_name(27, -1) == "Bb3" and g.pitch_name(38, 1) == "F#5"
    assert {c for c, a in g.key_alterations("DM").items() if a} == {"F", "C"}
    assert {c: a for c, a in g.key_alterations("EbM").items() if a} == {"B": -1, "E": -1, "A": -1}
    assert set(g.key_alterations("none").values()) == {0}
    # middle lines: G2 -> B4, C1 -> G4, C3 -> C4, F4 -> D3
    assert [g.pitch_name(g.clef_middle_line(c)) for c in ("G2", "C1", "C3", "F4")] == ["B4", "G4", "C4", "D3"]
    assert g.bar_length("6/8") == 3 and g.bar_length("C/") == 4
    assert g.beat_length("6/8") == Fraction(3, 2) and g.beat_length("3/4") == 1 and g.beat_length("C/") == 2



def test_generated_corpus_resembles_the_real_one(primus_samples, incipits):
    real = [g.read_tokens(next(p.glob("*.semantic"))) for p in primus_samples]
    cmp = g.compare_corpora({"real": real, "synthetic": incipits})
    for col, tol in (("n_tokens", 0.2), ("n_note", 0.2), ("frac_note", 0.1), ("frac_barline", 0.15),
                     ("frac_rest", 0.35)):
        r, s = cmp.loc[col, ("real", "mean")], cmp.loc[col, ("synthetic", "mean")]
        assert abs(s - r) <= tol * r, (col, r, s)


# -- fitting ------------------------------------------------------------------------------------------------------

TINY_VOCAB = ["clef-G2", "clef-F4", "keySignature-DM", "timeSignature-2/4", "timeSignature-3/4",
              "timeSignature-3/8", "timeSignature-2/3", "note-D5_quarter", "note-E5_quarter", "note-F#5_quarter",
              "note-D5_half", "note-D5_eighth", "rest-quarter", "barline", "tie", "multirest-2", "multirest-3",
              "gracenote-E5_eighth"]
# A: 3 full bars of 2/4 in D major, a tie across the second barline, ends with a barline.
A = ["clef-G2", "keySignature-DM", "timeSignature-2/4", "note-D5_quarter", "note-E5_quarter", "barline",
     "note-F#5_quarter", "note-F#5_quarter", "tie", "barline", "note-F#5_quarter", "rest-quarter", "barline"]
# B: 3/4, a multirest bar first, a full bar, then a truncated bar (2 of 3 quarters) with a grace note.
B = ["clef-G2", "timeSignature-3/4", "multirest-2", "barline", "rest-quarter", "note-D5_half", "barline",
     "gracenote-E5_eighth", "note-D5_quarter", "note-E5_quarter"]


@pytest.fixture(scope="module")
def tiny():
    return g.fit_stats([A, B], TINY_VOCAB, g.FitConfig(duration_backoff=0.0))


def test_fit_header_and_length_frequencies(tiny):
    approx = lambda x: pytest.approx(x, rel=1e-5)  # noqa: E731  (the JSON keeps six significant digits)
    # floor 0.05 spread over the vocabulary support
    assert tiny.clefs == {"G2": approx(0.95 + 0.025), "F4": approx(0.025)}
    assert tiny.key_signatures == {"none": approx(0.5), "DM": approx(0.5)}
    assert set(tiny.time_signatures) == {"2/4", "3/4", "3/8"}  # 2/3 cannot be filled with binary figures
    assert tiny.time_signatures["3/8"] == approx(0.05 / 3)
    assert tiny.bars[3] == approx(0.95 * 0.5 + 0.05 / 16) and tiny.bars[2] == tiny.bars[3]
    assert tiny.bars[1] == approx(0.05 / 16)
    assert tiny.events[6] == approx(0.95 * 0.5 + 0.05 / 48) and tiny.events[4] == tiny.events[6]
    assert tiny.endings == {"barline": 0.5, "complete": 0.0, "truncated": 0.5}
    assert tiny.pickup_rate == 0.0
    assert tiny.breve_bars == {"2/4": 0.0, "3/4": 0.0}
    assert tiny.multirest_start_rate == 0.5 and tiny.multirest_inner_rate == 0.0
    assert tiny.multirest_lengths == {2: approx(0.975), 3: approx(0.025)}


def test_fit_event_rates(tiny):
    approx = lambda x: pytest.approx(x, rel=1e-5)  # noqa: E731
    # events: A = D E F# F#~ F# r ; B = r D(half) | D E.  Starts: A note, B rest.
    # after a note: A 5 events (1 rest), B 2 events (0 rests); after a rest: B's half note.
    assert tiny.rest_transitions == {"start": 0.5, "note": approx(1 / 7), "rest": 0.0}
    # note pairs within a bar: D-E, F#-F# (A), D-E (B): no tie; across a barline: E-F#, F#~F# (A), D-D (B): one tie
    assert tiny.tie_rates == {"within_bar": 0.0, "across_barline": approx(1 / 3)}
    assert tiny.grace_rate == approx(1 / 8) and tiny.grace_durations == {"eighth": 1.0}
    assert tiny.fermata_rate == 0.0 and tiny.chromatic_rate == 0.0 and tiny.chromatic_up == 0.5
    # untied intervals: +1 +1 0 (A), 0 +1 (B); support -14..14 (29 values)
    assert tiny.intervals[1] == approx(0.95 * 3 / 5 + 0.05 / 29)
    assert tiny.intervals[0] == approx(0.95 * 2 / 5 + 0.05 / 29)
    assert tiny.intervals[-3] == approx(0.05 / 29)
    # offsets from B4 (G2's middle line): D5 +2 (x3), E5 +3 (x2), F#5 +4 (x3); support -16..16
    assert tiny.pitch_offsets[2] == approx(0.95 * 3 / 8 + 0.05 / 33)
    assert tiny.pitch_offsets[3] == approx(0.95 * 2 / 8 + 0.05 / 33)
    # ranges: offsets 2..4 (too few notes for a clef of its own: pooled) around each clef's middle line
    assert tiny.pitch_ranges == {"G2": ("D5", "F5"), "F4": ("F3", "A3")}


def test_fit_duration_choice_weights(tiny):
    approx = lambda x: pytest.approx(x, rel=1e-5)  # noqa: E731
    # 2/4 (maximum likelihood): every choice was a quarter -> weight 1.
    assert tiny.durations["2/4"] == {"quarter": 1.0}
    # 3/4: the rest (only rest-quarter exists) is forced; the half was chosen from {half, quarter, eighth} at beat 2,
    # and the truncated bar's two quarters from the same set: likelihood h q^2 -> h = 1/3, q = 2/3.
    assert tiny.durations["3/4"] == {"half": approx(1 / 3), "quarter": approx(2 / 3)}
    # pooled over both: q^5 h -> q = 5/6, h = 1/6, floor 0.05/3; 3/8 (unseen) shifts it one figure shorter:
    # its quarter gets the pool's half, its eighth the pool's quarter.
    ph, pq = 0.95 / 6 + 0.05 / 3, 0.95 * 5 / 6 + 0.05 / 3
    assert tiny.durations["3/8"] == {"quarter": approx(ph / (ph + pq)), "eighth": approx(pq / (ph + pq))}


def test_choice_weights_with_full_choice_sets_are_smoothed_frequencies():
    sets = np.ones((4, 3), dtype=bool)
    w = g._choice_weights(sets, np.array([0, 0, 1, 2]), np.array([0.2, 0.4, 0.4]), 4.0)
    assert w == pytest.approx([(2 + 0.8) / 8, (1 + 1.6) / 8, (1 + 1.6) / 8])


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match="incipit 1.*not in the vocabulary"):
        g.fit_stats([A, ["clef-G2", "timeSignature-2/4", "note-G9_quarter"]], TINY_VOCAB)
    with pytest.raises(ValueError, match="incipit 0.*clef and a time signature"):
        g.fit_stats([["clef-G2", "note-D5_quarter"]], TINY_VOCAB)
    with pytest.raises(ValueError, match="lacks 'tie'"):
        g.fit_stats([A], [t for t in TINY_VOCAB if t != "tie"])


def test_stats_round_trip_through_json(tmp_path, tiny):
    for stats in (tiny, generator.default_stats()):
        path = tmp_path / "stats.json"
        stats.save(path)
        assert g.IncipitStats.load(path) == stats
    with pytest.raises(ValueError, match="missing fields"):
        g.IncipitStats.from_dict({"clefs": {}})


def test_shipped_stats_are_the_fit_of_the_real_samples(reference):
    assert g.fit_reference_stats(reference / "primus") == generator.default_stats()


def test_corpus_statistics_by_hand():
    df = g.corpus_statistics([A])
    row = df.iloc[0]
    assert (row.clef, row.key_signature, row.time_signature) == ("G2", "DM", "2/4")
    assert row.n_tokens == 13 and row.n_bars == 3
    assert (row.n_note, row.n_rest, row.n_barline, row.n_tie) == (5, 1, 3, 1)
    assert row.frac_note == pytest.approx(5 / 13)
    assert row.mean_abs_interval == pytest.approx(0.5)  # D E F# F# F#: steps 1 1 0 0
    assert row.pitch_span == 2


# -- the stages of fit_stats, one by one ----------------------------------------------------------------------------

def test_supports_come_from_the_vocabulary():
    sup = g._supports(set(TINY_VOCAB))
    assert sup.clefs == ["F4", "G2"] and sup.keys == ["none", "DM"]
    assert sup.time_signatures_all == ["2/3", "2/4", "3/4", "3/8"]
    assert sup.time_signatures == ["2/4", "3/4", "3/8"]  # 2/3 cannot be filled with binary figures
    assert sup.multirest_lengths == [2, 3]
    assert sup.notes == {"quarter": ["D5", "E5", "F#5"], "half": ["D5"], "eighth": ["D5"]}
    assert sup.graces == {"eighth": ["E5"]} and sup.rests == ["quarter"]
    assert sup.durations == ["half", "quarter", "eighth"] and sup.grace_durations == ["eighth"]
    with pytest.raises(ValueError, match="not a semantic token"):
        g._supports(set(TINY_VOCAB) | {"chord-C4"})
    with pytest.raises(ValueError, match="lacks 'barline'"):
        g._supports(set(TINY_VOCAB) - {"barline"})


def test_supports_leave_out_durations_off_the_grid():
    vocab = {"barline", "tie", "note-C4_hundred_twenty_eighth", "note-C4_sixty_fourth.", "note-C4_sixty_fourth",
             "rest-eighth_fermata"}
    sup = g._supports(vocab)
    assert sup.durations == ["eighth", "sixty_fourth"]  # the fermata suffix is dropped; 1/32 and 3/32 are off it


def test_shape_reads_header_bars_and_bar_length():
    a = g._shape(A, "A")
    assert (a.clef, a.key, a.time_signature, a.header_changes) == ("G2", "DM", "2/4", 0)
    assert a.body == A[3:] and len(a.segments) == 3 and len(a.music) == 3
    assert (a.breve_factor, a.bar_length) == (1, 2)
    b = g._shape(B, "B")
    assert (b.key, b.breve_factor, b.bar_length) == ("none", 1, 3)
    assert [closed for _, closed in b.segments] == [True, True, False]
    assert [seg for seg, _ in b.music] == [["rest-quarter", "note-D5_half"],
                                           ["gracenote-E5_eighth", "note-D5_quarter", "note-E5_quarter"]]
    # C/ barred every breve: closed bars (the first, a possible pickup, left out) last 8 quarters
    breve = ["clef-G2", "timeSignature-C/", "note-D5_whole", "note-D5_whole", "barline", "note-D5_whole",
             "note-D5_whole", "barline", "clef-F4"]
    s = g._shape(breve, "breve")
    assert (s.breve_factor, s.bar_length, s.header_changes) == (2, 8, 1)
    # a bar of 3/2 of the meter: undecidable, the nominal length is kept
    odd = ["clef-G2", "timeSignature-2/4", "note-D5_half.", "barline"]
    s = g._shape(odd, "odd")
    assert (s.breve_factor, s.bar_length) == (None, 2)
    with pytest.raises(ValueError, match="odd: an incipit needs a clef"):
        g._shape(["clef-G2", "note-D5_half"], "odd")


def test_count_shape():
    tally = g._Tally()
    for tokens in (A, B):
        g._count_shape(tally, g._shape(tokens, ""), g.FitConfig())
    c, n = tally.c, tally.n
    assert c["clef"] == {"G2": 2} and c["key"] == {"DM": 1, "none": 1} and c["ts"] == {"2/4": 1, "3/4": 1}
    assert tally.breve == {"2/4": {1: 1}, "3/4": {1: 1}}
    assert c["bars"] == {3: 1, 2: 1} and c["events"] == {6: 1, 4: 1}
    assert c["endings"] == {"barline": 1, "truncated": 1}
    assert (n["incipits"], n["music_bars"], n["pickups"]) == (2, 5, 0)
    # a pickup (one quarter of 2/4) and a full last bar without a barline; caps at max_bars / max_events
    pickup = ["clef-G2", "timeSignature-2/4", "note-D5_quarter", "barline", "note-D5_half"]
    g._count_shape(tally, g._shape(pickup, ""), g.FitConfig(max_bars=1, max_events=1))
    assert n["pickups"] == 1 and c["endings"]["complete"] == 1
    assert c["bars"][1] == 1 and c["events"][1] == 1


def test_count_events():
    tally = g._Tally()
    cfg = g.FitConfig()
    for tokens in (A, B):
        g._count_events(tally, g._shape(tokens, ""), cfg)
    c, n = tally.c, tally.n
    # A: D5 E5 | F#5 F#5~ | F#5 r |   B: =2 | r D5 | (grace E5) D5 E5
    assert (n["after_start"], n["rest_after_start"]) == (2, 1)
    assert (n["after_note"], n["rest_after_note"], n["after_rest"], n["rest_after_rest"]) == (7, 1, 1, 0)
    assert (n["pairs_within"], n["ties_within"], n["pairs_across"], n["ties_across"]) == (3, 0, 3, 1)
    assert c["intervals"] == {1: 3, 0: 2}
    assert (n["notes"], n["chromatic"], n["grace"], n["fermata"]) == (8, 0, 1, 0)
    assert c["grace_dur"] == {"eighth": 1} and c["mr_len"] == {2: 1}
    assert (n["multirest_start"], n["multirest_inner"], n["boundaries"]) == (1, 0, 3)
    assert c["offsets"] == {2: 3, 3: 2, 4: 3}  # from B4, G2's middle line
    assert tally.clef_offsets == {"G2": [2, 3, 4, 4, 4, 2, 2, 3]}


def test_count_events_chromatic_notes_leaps_and_multirests():
    tally = g._Tally()
    tokens = ["clef-G2", "keySignature-DM", "timeSignature-2/4", "note-F5_quarter", "note-F#5_quarter", "barline",
              "multirest-2", "barline", "note-G#4_quarter", "note-C#6_half_fermata"]
    g._count_events(tally, g._shape(tokens, ""), g.FitConfig(max_interval=9, max_offset=7))
    c, n = tally.c, tally.n
    assert (n["chromatic"], n["chromatic_up"]) == (2, 1)  # F natural is below the key's F#, G# above G
    assert n["multirest_inner"] == 1 and n["fermata"] == 1
    # F5-F#5 within a bar (interval 0); the multirest breaks F#5-G#4; G#4-C#6 leaps 10 steps > 9: dropped
    assert (n["pairs_within"], n["pairs_across"], n["intervals_dropped"]) == (2, 0, 1)
    assert c["intervals"] == {0: 1}
    # offsets from B4: F5 +4, F#5 +4, G#4 -2, C#6 +8 (beyond max_offset: kept for the range only)
    assert c["offsets"] == {4: 2, -2: 1}
    assert tally.clef_offsets["G2"] == [4, 4, -2, 8]


def test_count_duration_choices():
    tally = g._Tally()
    g._count_duration_choices(tally, g._shape(B, ""), ["half", "quarter", "eighth"])
    # the full bar from 0; the truncated last bar is the start of a bar (the grace note takes no time)
    assert tally.choices == {("3/4", False): [(0, 3, "rest", "quarter"), (1, 3, "note", "half"),
                                              (0, 3, "note", "quarter"), (1, 3, "note", "quarter")]}
    # a pickup is the end of a bar; a short inner bar is irregular; a duration outside the support is dropped
    tokens = ["clef-G2", "timeSignature-2/4", "note-D5_quarter", "barline", "note-D5_quarter", "barline",
              "note-D5_eighth", "note-D5_eighth", "note-D5_quarter", "barline"]
    tally = g._Tally()
    g._count_duration_choices(tally, g._shape(tokens, ""), ["half", "quarter"])
    assert tally.choices == {("2/4", False): [(1, 2, "note", "quarter"), (1, 2, "note", "quarter")]}
    assert (tally.n["bars_irregular"], tally.n["durations_dropped"]) == (1, 2)


CHOICES_34 = [(Fraction(0), Fraction(3), "rest", "quarter"), (Fraction(1), Fraction(3), "note", "half"),
              (Fraction(0), Fraction(3), "note", "quarter"), (Fraction(1), Fraction(3), "note", "quarter")]


def test_choice_design():
    index = {"half": 0, "quarter": 1, "eighth": 2}
    notes, rests = {"half", "quarter", "eighth"}, {"quarter"}
    sets, chosen = g._choice_design(CHOICES_34, Fraction(1), 0, notes, rests, index)
    assert sets.tolist() == [[False, True, False], [True, True, True], [True, True, True], [True, True, True]]
    assert chosen.tolist() == [1, 0, 1, 1]
    # one figure longer (pooling 3/8-like meters): the half becomes a whole, which has no column: its event goes
    sets, chosen = g._choice_design(CHOICES_34, Fraction(1), 1, notes, rests, index)
    assert sets.tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    assert chosen.tolist() == [0, 0, 0]
    # a choice that breaks the grid (a half on the off-beat eighth) is still in its own choice set
    sets, chosen = g._choice_design([(Fraction(1, 2), Fraction(3), "note", "half")], Fraction(1), 0, notes, rests,
                                    index)
    assert sets.tolist() == [[True, False, True]] and chosen.tolist() == [0]
    sets, chosen = g._choice_design([], Fraction(1), 0, notes, rests, index)
    assert sets.shape == (0, 3) and chosen.shape == (0,)


def test_duration_weights_before_rounding():
    cfg = g.FitConfig(duration_backoff=0.0)
    sup = g._supports(set(TINY_VOCAB))
    tally = g._Tally()
    for tokens in (A, B):
        shape = g._shape(tokens, "")
        g._count_shape(tally, shape, cfg)
        g._count_duration_choices(tally, shape, sup.durations)
    breve_bars, durations, breve_durations = g._duration_weights(tally, sup, cfg)
    assert breve_bars == {"2/4": 0.0, "3/4": 0.0} and breve_durations == {}
    assert durations["2/4"] == {"quarter": pytest.approx(1.0)}
    assert durations["3/4"] == {"half": pytest.approx(1 / 3, abs=1e-9), "quarter": pytest.approx(2 / 3, abs=1e-9)}
    ph, pq = 0.95 / 6 + 0.05 / 3, 0.95 * 5 / 6 + 0.05 / 3
    assert durations["3/8"] == {"quarter": pytest.approx(ph / (ph + pq)), "eighth": pytest.approx(pq / (ph + pq))}


def test_duration_weights_for_breve_barred_incipits():
    vocab = set(TINY_VOCAB) | {"timeSignature-C/", "note-D5_whole"}
    breve = ["clef-G2", "timeSignature-C/", "note-D5_whole", "note-D5_whole", "barline", "note-D5_whole",
             "note-D5_whole", "barline"]
    cfg = g.FitConfig()
    sup = g._supports(vocab)
    tally = g._Tally()
    shape = g._shape(breve, "")
    g._count_shape(tally, shape, cfg)
    g._count_duration_choices(tally, shape, sup.durations)
    breve_bars, durations, breve_durations = g._duration_weights(tally, sup, cfg)
    assert breve_bars == {"C/": 1.0}
    assert set(breve_durations) == {"C/"} and "C/" in durations
    assert max(breve_durations["C/"], key=breve_durations["C/"].get) == "whole"


def test_pitch_ranges():
    cfg = g.FitConfig(range_quantiles=(0.0, 1.0))
    ranges, sources = g._pitch_ranges({"G2": list(range(-10, 11)) * 5, "F4": [0]}, ["F4", "G2"], cfg)
    assert sources == {"F4": "pooled", "G2": "own"}
    assert ranges == {"G2": ("F3", "E6"), "F4": ("A1", "G4")}  # middle lines B4 and D3, +-10 steps
    # the default quantiles (0.02 lower, 0.98 higher) of the tiny fit's offsets 2, 3, 4, 4, 4
    ranges, sources = g._pitch_ranges({"G2": [2, 3, 4, 4, 4]}, ["F4", "G2"], g.FitConfig())
    assert ranges == {"G2": ("D5", "F5"), "F4": ("F3", "A3")} and set(sources.values()) == {"pooled"}
    ranges, _ = g._pitch_ranges({}, ["C3"], g.FitConfig())
    assert ranges == {"C3": ("D3", "B4")}  # no notes at all: -6..6 steps around C4


def test_round_fields(tiny):
    stats = dataclasses.replace(tiny, clefs={"G2": 1 / 3, "F4": 2 / 3}, durations={"3/4": {"half": 1 / 7}},
                                pickup_rate=2 / 3, counts={"incipits": 2})
    g._round_fields(stats)
    assert stats.clefs == {"G2": 0.333333, "F4": 0.666667}
    assert stats.durations == {"3/4": {"half": 0.142857}}
    assert stats.pickup_rate == 0.666667 and stats.counts == {"incipits": 2}


def test_fit_stats_counts_what_the_stages_counted(tiny):
    # counters that never moved are absent (rest transitions, "after_*", are left out of counts)
    assert tiny.counts == {
        "header_changes_ignored": 0, "incipits": 2, "music_bars": 5, "fermata": 0, "notes": 8, "pairs_within": 3,
        "ties_within": 0, "pairs_across": 3, "ties_across": 1, "boundaries": 3, "grace": 1, "multirest_start": 1}
