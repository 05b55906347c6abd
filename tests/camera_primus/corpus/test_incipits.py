"""The synthetic incipit generator and its fitted statistics."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from mtlnb.camera_primus.corpus import incipits as g

# The test's own duration table (independent of the module's): quarter notes per figure.
FIG = {"quadruple_whole": 16, "double_whole": 8, "whole": 4, "half": 2, "quarter": 1, "eighth": Fraction(1, 2),
       "sixteenth": Fraction(1, 4), "thirty_second": Fraction(1, 8), "sixty_fourth": Fraction(1, 16),
       "hundred_twenty_eighth": Fraction(1, 32)}
BAR = {"C": 4, "C/": 4, "2/4": 2, "3/4": 3, "3/8": Fraction(3, 2), "6/8": 3, "3/2": 6, "3/1": 12}


def quarters(token: str) -> Fraction:
    """Time a note/rest token takes in its bar; grace notes none."""
    if token.startswith("gracenote-"):
        return Fraction(0)
    text = token.split("-", 1)[1].replace("_fermata", "")
    if token.startswith("note-"):
        text = text.split("_", 1)[1]
    figure = text.rstrip(".")
    dots = len(text) - len(figure)
    return FIG[figure] * [Fraction(1), Fraction(3, 2), Fraction(7, 4)][dots]


def bar_of(ts: str) -> Fraction:
    if ts in BAR:
        return Fraction(BAR[ts])
    num, den = ts.split("/")
    return Fraction(4 * int(num), int(den))


@pytest.fixture(scope="module")
def vocabulary(reference):
    return set((reference / "primus" / "vocabulary_semantic.txt").read_text().split())


@pytest.fixture(scope="module")
def incipits():
    return g.generate_incipits(300, seed=7)


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


def test_metrical_grid_rule_and_its_vectorised_form_agree():
    # 4/4: quarter-half-quarter allowed, a dotted quarter on an off-beat eighth not, an eighth across a beat not.
    fits = g._fits
    q, h, e = Fraction(1), Fraction(2), Fraction(1, 2)
    assert fits(Fraction(1), h, h, Fraction(4), q)
    assert not fits(Fraction(1, 2), Fraction(3, 2), q, Fraction(4), q)
    assert not fits(Fraction(3, 4), e, e, Fraction(4), q)
    assert not fits(Fraction(3), h, h, Fraction(4), q)  # overflows the bar
    # 6/8: a quarter on the second dotted-quarter beat is fine, a quarter starting on the third eighth is not.
    assert fits(Fraction(3, 2), q, q, Fraction(3), Fraction(3, 2))
    assert not fits(Fraction(1), q, q, Fraction(3), Fraction(3, 2))
    names = ["whole", "half.", "half", "quarter.", "quarter", "eighth.", "eighth", "sixteenth", "sixty_fourth"]
    for ts, length in (("3/4", 3), ("6/8", 3), ("C/", 8), ("3/8", Fraction(3, 2))):
        mask = g._bar_mask(names, Fraction(length), g.beat_length(ts))
        for i in range(mask.shape[0]):
            for j, n in enumerate(names):
                expect = fits(i * g.GRID, g.duration_value(n), g.FIGURES[n.rstrip(".")], Fraction(length),
                              g.beat_length(ts))
                assert mask[i, j] == expect, (ts, i, n)


# -- generation ---------------------------------------------------------------------------------------------------

def test_deterministic_under_a_seed():
    a = g.generate_incipit(np.random.default_rng(123))
    assert a == g.generate_incipit(np.random.default_rng(123))
    others = [g.generate_incipit(np.random.default_rng(s)) for s in range(124, 129)]
    assert any(o != a for o in others)
    # incipit i depends on (seed, i) only
    assert g.generate_incipits(3, seed=5) == g.generate_incipits(6, seed=5)[:3]


def test_every_token_in_the_vocabulary(vocabulary, incipits):
    bars_model = g.generate_incipits(100, seed=8, config=g.GeneratorConfig(length_model="bars"))
    outside = {t for inc in incipits + bars_model for t in inc if t not in vocabulary}
    assert not outside
    # the shipped supports are the vocabulary's
    s = g.default_stats()
    assert {f"note-{p}_{d}" for d, ps in s.note_support.items() for p in ps} <= vocabulary
    assert {f"clef-{c}" for c in s.clefs} | {f"timeSignature-{t}" for t in s.time_signatures} <= vocabulary


def check_structure(tokens: list[str]) -> None:
    """Header, then bars that fill the meter; pickup and truncation rules; ties and grace notes well placed."""
    assert tokens[0].startswith("clef-")
    i = 2 if tokens[1].startswith("keySignature-") else 1
    assert tokens[i].startswith("timeSignature-")
    ts = tokens[i].split("-", 1)[1]
    body = tokens[i + 1:]
    assert not any(t.startswith(("clef-", "keySignature-", "timeSignature-")) for t in body)
    segs, cur = [], []
    for t in body:
        if t == "barline":
            segs.append((cur, True))
            cur = []
        else:
            cur.append(t)
    if cur:
        segs.append((cur, False))
    for seg, _ in segs:
        assert seg, "two barlines in a row"
        if any(t.startswith("multirest-") for t in seg):
            assert len(seg) == 1, f"a multirest stands alone in its bar: {seg}"
    music = [(seg, closed) for seg, closed in segs if not seg[0].startswith("multirest-")]
    assert music
    lengths = [sum(quarters(t) for t in seg if t.startswith(("note-", "rest-", "gracenote-"))) for seg, _ in music]
    nominal = bar_of(ts)
    # bars last the time signature, or twice it (breve-barred C and C/)
    candidates = [nominal, 2 * nominal] if ts in ("C", "C/") else [nominal]

    def fits(bar: Fraction) -> bool:
        inner_ok = all(x == bar for x in lengths[1:-1])
        # first bar: full, or a pickup of at most half a bar followed by a barline
        first_ok = len(music) == 1 or lengths[0] == bar or (0 < lengths[0] <= bar / 2 and music[0][1])
        # last bar: full, or cut short (then no barline follows)
        last_ok = lengths[-1] == bar or (not music[-1][1] and 0 < lengths[-1] < bar)
        return inner_ok and first_ok and last_ok

    assert any(fits(bar) for bar in candidates), (ts, lengths)
    for k, t in enumerate(body):
        if t == "tie":
            prev, nxt = body[k - 1], body[k + 1] if body[k + 1] != "barline" else body[k + 2]
            assert prev.startswith("note-") and nxt.startswith("note-")
            assert prev.split("_")[0] == nxt.split("_")[0], (prev, nxt)  # same pitch
        if t.startswith("gracenote-"):
            assert body[k + 1].startswith("note-")


def test_every_bar_fills_its_meter(incipits):
    for inc in incipits:
        check_structure(inc)
    bars_model = g.generate_incipits(100, seed=9, config=g.GeneratorConfig(length_model="bars"))
    for inc in bars_model:
        check_structure(inc)


def test_truncated_ending_after_a_forced_second_bar_keeps_an_event():
    # This seed draws a pickup that alone reaches the target length and a truncated ending: the second bar, which a
    # pickup forces, used to be cut to nothing (IndexError while tying across its barline).
    inc = g.generate_incipit(np.random.default_rng([7, 16030]))
    check_structure(inc)
    assert inc[-1] != "barline" and inc.count("barline") == 1


def test_every_supported_meter_and_clef_generates(vocabulary):
    # Meters and clefs seen rarely or never in the 60 samples (floor probability) must work as well.
    base = g.default_stats()
    for i, ts in enumerate(sorted(base.time_signatures)):
        clef = sorted(base.clefs)[i % len(base.clefs)]
        stats = dataclasses.replace(base, time_signatures={ts: 1.0}, clefs={clef: 1.0})
        for inc in g.generate_incipits(3, seed=i, stats=stats):
            assert inc[0] == f"clef-{clef}" and f"timeSignature-{ts}" in inc
            assert set(inc) <= vocabulary
            check_structure(inc)


def test_check_structure_accepts_the_real_rules():
    # a pickup (one eighth in 6/8), a tie across a barline, a grace note, a truncated last bar
    check_structure(["clef-G2", "keySignature-FM", "timeSignature-6/8", "note-F4_eighth", "barline",
                     "note-F4_eighth.", "note-G4_sixteenth", "note-F4_eighth", "note-F4_quarter", "note-A4_eighth",
                     "tie", "barline", "note-A4_eighth", "gracenote-C5_eighth", "note-B4_quarter", "note-C5_quarter",
                     "rest-eighth", "barline", "note-C5_quarter"])
    with pytest.raises(AssertionError):  # an inner bar one eighth short
        check_structure(["clef-G2", "timeSignature-3/4", "note-F4_half.", "barline", "note-F4_half",
                         "note-F4_eighth", "barline", "note-F4_half.", "barline"])


def test_generated_corpus_resembles_the_real_one(primus_samples, incipits):
    real = [g.read_tokens(next(p.glob("*.semantic"))) for p in primus_samples]
    cmp = g.compare_corpora({"real": real, "synthetic": incipits})
    for col, tol in (("n_tokens", 0.2), ("n_note", 0.2), ("frac_note", 0.1), ("frac_barline", 0.15),
                     ("frac_rest", 0.35)):
        r, s = cmp.loc[col, ("real", "mean")], cmp.loc[col, ("synthetic", "mean")]
        assert abs(s - r) <= tol * r, (col, r, s)


def test_encoding_accepts_generated_incipits(incipits):
    encoding = pytest.importorskip("mtlnb.camera_primus.notation.semantic")
    if not hasattr(encoding, "parse_semantic"):
        pytest.skip("mtlnb.camera_primus.notation.semantic.parse_semantic is not there yet")
    for inc in incipits[:100]:
        assert encoding.parse_semantic("\t".join(inc) + "\t") == inc


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="length_model"):
        g.generate_incipit(np.random.default_rng(0), config=g.GeneratorConfig(length_model="notes"))


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
    for stats in (tiny, g.default_stats()):
        path = tmp_path / "stats.json"
        stats.save(path)
        assert g.IncipitStats.load(path) == stats
    with pytest.raises(ValueError, match="missing fields"):
        g.IncipitStats.from_dict({"clefs": {}})


def test_shipped_stats_are_the_fit_of_the_real_samples(reference):
    assert g.fit_reference_stats(reference / "primus") == g.default_stats()


def test_corpus_statistics_by_hand():
    df = g.corpus_statistics([A])
    row = df.iloc[0]
    assert (row.clef, row.key_signature, row.time_signature) == ("G2", "DM", "2/4")
    assert row.n_tokens == 13 and row.n_bars == 3
    assert (row.n_note, row.n_rest, row.n_barline, row.n_tie) == (5, 1, 3, 1)
    assert row.frac_note == pytest.approx(5 / 13)
    assert row.mean_abs_interval == pytest.approx(0.5)  # D E F# F# F#: steps 1 1 0 0
    assert row.pitch_span == 2
