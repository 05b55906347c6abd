"""Tests for mtlnb.camera_primus.fusion.methods: the five late-fusion methods on hand-built word graphs.

Each fixture is a pair of small lattices built from explicit paths and probabilities (stage 2 of the pipeline);
the expected fused output at α ∈ {0, 0.5, 1} is worked out by hand in the comments.  One end-to-end test goes
from posteriors through the decoder.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtlnb.camera_primus.fusion import methods as fusion
from mtlnb.camera_primus.fusion.methods import (
    FusionConfig,
    align_confusion_networks,
    combine_confusion_networks,
    consensus,
    fuse,
    smith_waterman,
)
from mtlnb.camera_primus.decoding.lattice import EPS, Lattice
from mtlnb.camera_primus.decoding.search import DecoderConfig, word_graph

V = list("abcdexyzqw")


def lat(*paths):
    """A word graph holding exactly these (symbols, probability) paths."""
    return Lattice.from_paths(V, [(list(s), p) for s, p in paths])


# ---------------------------------------------------------------------------------------------------------------
# 1. lattice combination (the baseline's "MBR") and its MBR-decoding variant


@pytest.fixture
def combination_pair():
    # OMR: "a b" 0.45, "c d" 0.30, "c b" 0.25  (MAP "a b"; position-wise c 0.55 > a 0.45, b 0.70 > d 0.30)
    # A2S: "c d" 0.70, "a d" 0.30              (MAP "c d"; c 0.70, d 1.0)
    return lat(("ab", 0.45), ("cd", 0.30), ("cb", 0.25)), lat(("cd", 0.70), ("ad", 0.30))


@pytest.mark.parametrize(
    "alpha, expected",
    [
        (1.0, ["a", "b"]),  # OMR's best path
        (0.0, ["c", "d"]),  # A2S's best path
        # weighted posteriors of the two best paths: 0.5 · 0.45 = 0.225 (OMR) < 0.5 · 0.70 = 0.35 (A2S)
        (0.5, ["c", "d"]),
        # 0.65 · 0.45 = 0.2925 > 0.35 · 0.70 = 0.245: OMR's path wins
        (0.65, ["a", "b"]),
    ],
)
def test_lattice_combination(combination_pair, alpha, expected):
    omr, a2s = combination_pair
    assert fusion.lattice_combination(omr, a2s, alpha) == expected


@pytest.mark.parametrize(
    "alpha, expected",
    [
        # α = 1: MBR of OMR alone: position 1 c 0.55 vs a 0.45, position 2 b 0.70 vs d 0.30 -> "c b"
        (1.0, ["c", "b"]),
        # α = 0: MBR of A2S alone -> "c d"
        (0.0, ["c", "d"]),
        # α = 0.5: union "a b" 0.225, "c d" 0.15 + 0.35, "c b" 0.125, "a d" 0.15:
        # position 1: c 0.625, a 0.375; position 2: d 0.65, b 0.35 -> "c d"
        (0.5, ["c", "d"]),
    ],
)
def test_lattice_combination_mbr(combination_pair, alpha, expected):
    omr, a2s = combination_pair
    assert fusion.lattice_combination_mbr(omr, a2s, alpha) == expected


def test_combined_lattice_is_the_weighted_mixture(combination_pair):
    omr, a2s = combination_pair
    union = fusion.combined_lattice(omr, a2s, 0.5)
    assert union.total_logprob() == pytest.approx(0.0, abs=1e-12)  # 0.5 · 1 + 0.5 · 1
    # "c d" is on both sides: 0.5 · 0.30 + 0.5 · 0.70
    assert union.posterior_of_path(["c", "d"]) == pytest.approx(0.5)
    assert union.posterior_of_path(["a", "b"]) == pytest.approx(0.225)
    only_omr = fusion.combined_lattice(omr, a2s, 1.0)
    assert only_omr.posterior_of_path(["c", "d"]) == pytest.approx(0.30)


# ---------------------------------------------------------------------------------------------------------------
# 2. confusion-network combination


def test_confusion_network_dtw_and_labels_with_an_omr_insertion():
    # OMR has an extra bin [x 0.8, ε 0.2]; otherwise both sausages read "a b".
    cn_omr = [[(EPS, 1.0)], [("a", 1.0)], [(EPS, 1.0)], [("x", 0.8), (EPS, 0.2)], [(EPS, 1.0)], [("b", 1.0)],
              [(EPS, 1.0)]]
    cn_a2s = [[(EPS, 1.0)], [("a", 1.0)], [(EPS, 1.0)], [("b", 1.0)], [(EPS, 1.0)]]
    # Costs (ED of the symbol lists / length of the OMR list): equal lists 0, [x ε] vs [ε] 0.5, otherwise 1.
    # DTW table D (rows OMR bins 0-6, columns A2S bins 0-4), D[i][j] = cost + min(up, left, diagonal):
    #   row 0: 0   1   1   2   2
    #   row 1: 1   0   1   2   3
    #   row 2: 1   1   0   1   1
    #   row 3: 1.5 2   .5  1   1.5
    #   row 4: 1.5 2.5 .5  1.5 1
    #   row 5: 2.5 2.5 1.5 .5  1.5
    #   row 6: 2.5 3.5 1.5 1.5 .5
    # Back-trace from (6, 4), ties in the order up, left, diagonal:
    #   (6,4) -> diag (5,3) -> diag (4,2) -> up (3,2) -> up (2,2) -> diag (1,1) -> diag (0,0).
    path, lab_omr, lab_a2s = align_confusion_networks(cn_omr, cn_a2s)
    assert path == [(0, 0), (1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (6, 4)]
    # (3, 2) costs 0.5 but shares ε -> Combine; A2S bin 2 is also on Anchor pairs and keeps Anchor.
    assert lab_omr == ["Anchor", "Anchor", "Anchor", "Combine", "Anchor", "Anchor", "Anchor"]
    assert lab_a2s == ["Anchor"] * 5
    # (3, 2) is Combine-Anchor -> merge(OMR bin 3, A2S bin 2 = [ε 1]) with g = 1e-3, n_OMR = 2, n_A2S = 1:
    #   x: p'_OMR = 0.801/1.002 = 0.79940, p'_A2S = 0.001/1.001 = 0.000999
    #   ε: p'_OMR = 0.201/1.002 = 0.20060, p'_A2S = 1.001/1.001 = 1
    # α = 1: x 0.7994 > ε 0.2006 -> x kept: "a x b" (OMR's reading)
    # α = 0: ε wins -> "a b" (A2S's reading)
    # α = 0.5: x √(0.79940 · 0.000999) = 0.0283 < ε √0.20060 = 0.4479 -> "a b"
    for alpha, expected in ((1.0, ["a", "x", "b"]), (0.0, ["a", "b"]), (0.5, ["a", "b"])):
        merged = combine_confusion_networks(cn_omr, cn_a2s, alpha)
        assert len(merged) == 7
        assert consensus(merged) == expected
    x_bin = dict(combine_confusion_networks(cn_omr, cn_a2s, 0.5)[3])
    s_x, s_e = math.sqrt(0.801 / 1.002 * 0.001 / 1.001), math.sqrt(0.201 / 1.002 * 1.0)
    assert x_bin["x"] == pytest.approx(s_x / (s_x + s_e))


def test_confusion_network_one_bin_against_several_is_emitted_once():
    # One OMR bin [a 0.6, b 0.4] against two A2S bins [a 0.9, ε 0.1] [b 0.9, ε 0.1].  Costs: ED([a b], [a ε]) / 2
    # = 0.5, ED([a b], [b ε]) / 2 = 1, so D's only row is 0.5 1.5 and the path pairs OMR bin 0 with both; both
    # pairs share a symbol -> Combine.
    cn_omr = [[("a", 0.6), ("b", 0.4)]]
    cn_a2s = [[("a", 0.9), (EPS, 0.1)], [("b", 0.9), (EPS, 0.1)]]
    path, lab_omr, lab_a2s = align_confusion_networks(cn_omr, cn_a2s)
    assert path == [(0, 0), (0, 1)]
    assert lab_omr == ["Combine"] and lab_a2s == ["Combine", "Combine"]
    # (0, 0): merge(OMR 0, A2S 0); (0, 1): OMR bin 0 is already out -> merge(⟨ε, 1⟩, A2S 1), g = 1e-3:
    #   bin 0, α = 0.5: a √(0.601/1.002 · 0.901/1.002) = 0.734 beats b 0.020 and ε 0.010 -> a (a at α = 0, 1 too)
    #   bin 1: ε √(1 · 0.101/1.002) = 0.317 > b √(0.001/1.001 · 0.901/1.002) = 0.030 at α = 0.5; ε at α = 1;
    #   b (0.899 vs 0.101) at α = 0.
    # Emitting per pair would merge OMR bin 0 twice: "a a" at α = 1.
    for alpha, expected in ((1.0, ["a"]), (0.0, ["a", "b"]), (0.5, ["a"])):
        merged = combine_confusion_networks(cn_omr, cn_a2s, alpha)
        assert len(merged) == 2 and consensus(merged) == expected


@pytest.fixture
def substitution_sausages():
    # One-to-one: the third bin disagrees, b 0.6 / c 0.4 (OMR) against c 0.7 / b 0.3 (A2S).
    cn_omr = [[(EPS, 1.0)], [("a", 0.9), (EPS, 0.1)], [(EPS, 1.0)], [("b", 0.6), ("c", 0.4)], [(EPS, 1.0)]]
    cn_a2s = [[(EPS, 1.0)], [("a", 0.8), (EPS, 0.2)], [(EPS, 1.0)], [("c", 0.7), ("b", 0.3)], [(EPS, 1.0)]]
    return cn_omr, cn_a2s


@pytest.mark.parametrize(
    "alpha, expected",
    [
        # bin 3 is Combine (cost ED([b c],[c b])/2 = 1, but symbols shared); g = 1e-3, n = 2 on both sides:
        #   b: (0.601/1.002)^α (0.301/1.002)^(1-α);   c: (0.401/1.002)^α (0.701/1.002)^(1-α)
        (1.0, ["a", "b"]),  # b 0.5998 > c 0.4002
        (0.5, ["a", "c"]),  # b √(0.5998 · 0.3004) = 0.4245 < c √(0.4002 · 0.6996) = 0.5291
        (0.0, ["a", "c"]),  # c 0.6996 > b 0.3004
    ],
)
def test_confusion_network_combination_of_a_substitution(substitution_sausages, alpha, expected):
    cn_omr, cn_a2s = substitution_sausages
    path, lab_omr, lab_a2s = align_confusion_networks(cn_omr, cn_a2s)
    assert path == [(i, i) for i in range(5)]  # D's diagonal is the cheapest (worked out in the module's style)
    assert lab_omr == lab_a2s == ["Anchor", "Anchor", "Anchor", "Combine", "Anchor"]
    merged = combine_confusion_networks(cn_omr, cn_a2s, alpha)
    assert consensus(merged) == expected
    for b in merged:
        assert sum(p for _, p in b) == pytest.approx(1.0)


@pytest.mark.parametrize("alpha, expected", [(1.0, ["a", "b"]), (0.5, ["a", "c"]), (0.0, ["a", "c"])])
def test_confusion_network_combination_from_word_graphs(alpha, expected):
    # Word graphs whose sausages are [ε] [a 1] [ε] [b 0.6, c 0.4] [ε] (OMR) and [ε] [a 1] [ε] [c 0.7, b 0.3] [ε]
    # (A2S): bin 3 as above with n = 2 and no ε in bin 1 -> the same outputs.
    omr, a2s = lat(("ab", 0.6), ("ac", 0.4)), lat(("ac", 0.7), ("ab", 0.3))
    assert fusion.confusion_network_combination(omr, a2s, alpha) == expected


def test_consensus_prefers_a_symbol_tied_with_epsilon():
    assert consensus([[("a", 0.5), (EPS, 0.5)], [(EPS, 0.9), ("b", 0.1)]]) == ["a"]


# ---------------------------------------------------------------------------------------------------------------
# 3. Smith-Waterman


def test_smith_waterman_mismatch_keeps_the_more_probable_token():
    # ¡ a b c !  (OMR, reference) against  ¡ a x c d !  (A2S, query):
    # ¡/¡ +2, a/a +2, b/x −1, c/c +2, gap for d −1, !/! +2 = 6, the only alignment reaching 6.
    # b (0.4) vs x (0.6): x; d is in a gap: kept.
    assert smith_waterman(list("abc"), [0.9, 0.4, 0.8], list("axcd"), [0.7, 0.6, 0.9, 0.5]) == list("axcd")
    # with b at 0.7 > 0.6 the reference token wins
    assert smith_waterman(list("abc"), [0.9, 0.7, 0.8], list("axcd"), [0.7, 0.6, 0.9, 0.5]) == list("abcd")
    # a tie goes to the query (A2S)
    assert smith_waterman(list("abc"), [0.9, 0.6, 0.8], list("axcd"), [0.7, 0.6, 0.9, 0.5]) == list("axcd")


def test_smith_waterman_gap_in_the_query_keeps_the_reference_token():
    # ¡ a b c ! vs ¡ a c !: a/a, b against a gap (−1), c/c -> b is kept
    assert smith_waterman(list("abc"), [0.9, 0.2, 0.8], list("ac"), [0.7, 0.9]) == list("abc")


def test_smith_waterman_validates_lengths():
    with pytest.raises(ValueError, match="ref_probs"):
        smith_waterman(["a"], [], ["a"], [1.0])


def test_smith_waterman_fusion_of_word_graphs():
    # OMR MBR: "a b c" with confidences 1, 0.6, 1;  A2S MBR: "a x c d" with 1, 0.7, 1, 1.
    # b (0.6) vs x (0.7) -> x;  d is an insertion -> kept.  No α: the same at every α.
    omr, a2s = lat(("abc", 0.6), ("azc", 0.4)), lat(("axcd", 0.7), ("abcd", 0.3))
    out = fuse(omr, a2s, alphas=(0.0, 0.5, 1.0), methods=["smith_waterman"])
    assert out["smith_waterman"] == {0.0: list("axcd"), 0.5: list("axcd"), 1.0: list("axcd")}


# ---------------------------------------------------------------------------------------------------------------
# 4./5. lightly supervised


@pytest.fixture
def light_pair():
    # OMR: "a b c" 0.6, "a x d" 0.4;   A2S: "a y z" 0.7, "a x d" 0.3
    return lat(("abc", 0.6), ("axd", 0.4)), lat(("ayz", 0.7), ("axd", 0.3))


def test_lightly_supervised_maximises_matches_before_scores(light_pair):
    omr, a2s = light_pair
    # lightly-supervised OMR (reference OMR, output an A2S path): "a y z" matches at most 1 symbol of an OMR
    # path, "a x d" matches all 3 of OMR's "a x d" -> "a x d" despite its lower score.
    assert fusion.lightly_supervised_omr(omr, a2s) == ["a", "x", "d"]
    # lightly-supervised A2S (reference A2S, output an OMR path): "a b c" matches 1, "a x d" 3 -> "a x d".
    assert fusion.lightly_supervised_a2s(omr, a2s) == ["a", "x", "d"]


def test_lightly_supervised_breaks_ties_by_the_hypothesis_score():
    omr, a2s = lat(("abc", 0.6), ("abd", 0.4)), lat(("axd", 0.8), ("ebc", 0.2))
    # reference OMR: "a x d" matches 2 of "a b d", "e b c" 2 of "a b c" -> tie -> the better A2S path "a x d"
    assert fusion.lightly_supervised_omr(omr, a2s) == ["a", "x", "d"]
    # reference A2S: "a b c" matches 2 of "e b c", "a b d" 2 of "a x d" -> tie -> the better OMR path "a b c"
    assert fusion.lightly_supervised_a2s(omr, a2s) == ["a", "b", "c"]


def test_lightly_supervised_counts_matches_as_a_common_subsequence():
    # "a c d" is a subsequence of the reference "a b c d" (3 matches); "x y" matches nothing.
    omr, a2s = lat(("abcd", 1.0)), lat(("xy", 0.6), ("acd", 0.4))
    assert fusion.lightly_supervised_omr(omr, a2s) == ["a", "c", "d"]
    # nothing in common at all: the hypothesis's best path
    assert fusion.lightly_supervised_omr(lat(("q", 1.0)), a2s) == ["x", "y"]


# ---------------------------------------------------------------------------------------------------------------
# every method at α ∈ {0, 0.5, 1} through the sweep


def test_fuse_sweeps_every_method_in_one_call(combination_pair):
    omr, a2s = combination_pair
    out = fuse(omr, a2s, alphas=(0.0, 0.5, 1.0))
    assert set(out) == set(fusion.METHODS)
    # hand results above: lattice combination
    assert out["lattice_combination"] == {0.0: ["c", "d"], 0.5: ["c", "d"], 1.0: ["a", "b"]}
    assert out["lattice_combination_mbr"] == {0.0: ["c", "d"], 0.5: ["c", "d"], 1.0: ["c", "b"]}
    # CN: sausages [ε][c .55 a .45][ε][b .7 d .3][ε] (OMR) and [ε][c .7 a .3][ε][d 1][ε] (A2S, LM scale 0);
    # bin 1: the same symbol list [c a] -> Anchor; c (.551/1.002)^α (.701/1.002)^(1-α) beats
    # a (.451/1.002)^α (.301/1.002)^(1-α) at every α.
    # bin 3: [b d] vs [d]: ED 1 / 2, shares d -> Combine; n = 2 vs 1:
    #   b (.701/1.002)^α (.001/1.001)^(1-α),  d (.301/1.002)^α (1.001/1.001)^(1-α)
    #   α = 1: b .6996 > d .3004 -> b;  α = 0.5: b .0264 < d .5481 -> d;  α = 0: d.
    assert out["confusion_network"] == {0.0: ["c", "d"], 0.5: ["c", "d"], 1.0: ["c", "b"]}
    # methods without α give one answer for all α
    for name in ("smith_waterman", "lightly_supervised_omr", "lightly_supervised_a2s"):
        assert out[name][0.0] == out[name][0.5] == out[name][1.0]
    # Smith-Waterman of the MBR outputs "c b" (OMR, .55 .70) and "c d" (A2S, .70 1.0): c matches,
    # b (.70) vs d (1.0) -> d
    assert out["smith_waterman"][0.5] == ["c", "d"]
    # lightly supervised, reference OMR, hypotheses "c d" (.7) and "a d" (.3): "c d" matches OMR's "c d"
    # fully (2) -> "c d"
    assert out["lightly_supervised_omr"][0.5] == ["c", "d"]
    # reference A2S, hypotheses "a b" (.45), "c d" (.30), "c b" (.25): "c d" matches 2 -> "c d"
    assert out["lightly_supervised_a2s"][0.5] == ["c", "d"]


def test_fuse_and_methods_validate_their_inputs(combination_pair):
    omr, a2s = combination_pair
    with pytest.raises(ValueError, match="alpha"):
        fusion.lattice_combination(omr, a2s, 1.5)
    with pytest.raises(ValueError, match="unknown method"):
        fuse(omr, a2s, methods=["average"])
    with pytest.raises(ValueError, match="Lattice"):
        fusion.lattice_combination(omr, [["a"]], 0.5)
    with pytest.raises(ValueError, match="cn_granularity"):
        FusionConfig(cn_granularity=0.0)


# ---------------------------------------------------------------------------------------------------------------
# end to end: posteriors -> word graphs -> fused


def test_end_to_end_from_posteriors():
    # OMR reads "a b" confidently; A2S reads "a x b" but its x is weak (0.4 against 0.6 blank).
    vocab = ["a", "b", "x"]

    def post(rows):  # zeros become the floor log(1e-11), as the baseline's -inf replacement
        return np.log(np.maximum(np.array(rows, dtype=float), 1e-11))

    omr_logp = post([[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]])  # a _ b
    a2s_logp = post([[1, 0, 0, 0], [0, 0, 0.4, 0.6], [0, 0, 0, 1], [0, 1, 0, 0]])  # a (x|_) _ b
    cfg = DecoderConfig(topology="ctc")
    omr, a2s = word_graph(omr_logp, vocab, None, cfg), word_graph(a2s_logp, vocab, None, cfg)
    assert omr.best_path() == ["a", "b"]
    assert a2s.best_path() == ["a", "b"]  # 0.6 > 0.4: x is not on the best path, but in the lattice
    assert a2s.posterior_of_path(["a", "x", "b"]) == pytest.approx(0.4, abs=1e-6)
    out = fuse(omr, a2s, alphas=(0.0, 0.5, 1.0))
    for name, by_alpha in out.items():
        for alpha, tokens in by_alpha.items():
            assert tokens == ["a", "b"], (name, alpha)


# ---------------------------------------------------------------------------------------------------------------
# cross-checks on random decoded word graphs against direct definitions


def _random_lattices(seed, n, T=6, vocab=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        logp = np.log(rng.dirichlet(np.full(len(vocab) + 1, 0.5), size=T))
        out.append(word_graph(logp, list(vocab), None, DecoderConfig(lattice_beam=6.0)))
    return out


def _lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def test_lattice_combination_is_the_best_path_of_the_weighted_union():
    lats = _random_lattices(4, 12)
    for omr, a2s in zip(lats[::2], lats[1::2]):
        for alpha in (0.2, 0.5, 0.8):
            union = fusion.combined_lattice(omr, a2s, alpha)
            assert union.best_path()[0] == fusion.lattice_combination(omr, a2s, alpha)
            assert union.total_logprob() == pytest.approx(0.0, abs=1e-9)  # α + (1 − α)


def test_lightly_supervised_against_enumeration_of_all_path_pairs():
    lats = _random_lattices(9, 12)
    for ref, hyp in zip(lats[::2], lats[1::2]):
        ref_seqs = [s for s, _ in ref.nbest(100_000)]
        hyp_best = {tuple(s): score for s, score in hyp.nbest(100_000)}  # best path score per sequence
        matches = {h: max(_lcs(h, r) for r in ref_seqs) for h in hyp_best}
        top = max(matches.values())
        expected = max((h for h in hyp_best if matches[h] == top), key=hyp_best.get)
        assert tuple(fusion.lightly_supervised(ref, hyp)) == expected


def _naive_dtw_path(cn1, cn2):
    """The baseline's DTW written out with plain loops (cost = ED of the bins' symbol lists / len(OMR bin))."""
    def ed(a, b):
        prev = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            cur = [i]
            for j, y in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
            prev = cur
        return prev[-1]

    n1, n2 = len(cn1), len(cn2)
    D = [[math.inf] * (n2 + 1) for _ in range(n1 + 1)]
    D[0][0] = 0.0
    move = [[0] * (n2 + 1) for _ in range(n1 + 1)]
    for i in range(1, n1 + 1):
        for j in range(1, n2 + 1):
            s1, s2 = [s for s, _ in cn1[i - 1]], [s for s, _ in cn2[j - 1]]
            nb = [D[i - 1][j], D[i][j - 1], D[i - 1][j - 1]]
            D[i][j] = ed(s1, s2) / len(s1) + min(nb)
            move[i][j] = nb.index(min(nb))
    path, i, j = [], n1, n2
    while not (i == j == 0):
        path.append((i - 1, j - 1))
        v = move[i][j]
        i, j = (i if v == 1 else i - 1), (j if v == 0 else j - 1)
    return path[::-1]


def test_dtw_matches_the_naive_loops_on_random_sausages():
    rng = np.random.default_rng(12)
    symbols = [EPS, "a", "b", "c"]

    def sausage(n):
        out = []
        for _ in range(n):
            k = int(rng.integers(1, 4))
            syms = list(rng.choice(symbols, size=k, replace=False))
            p = np.sort(rng.dirichlet(np.ones(k)))[::-1]
            out.append([(str(s), float(x)) for s, x in zip(syms, p)])
        return out

    for _ in range(40):
        cn1, cn2 = sausage(int(rng.integers(1, 9))), sausage(int(rng.integers(1, 9)))
        path, _, _ = align_confusion_networks(cn1, cn2)
        assert path == _naive_dtw_path(cn1, cn2)


def test_vectorised_bin_edit_distances_equal_the_plain_dynamic_programme():
    # _align compares all distinct bin pairs at once; every entry must equal the textbook DP, including empty
    # sequences, repeats and sequences of unequal length
    import random

    from mtlnb.camera_primus.metrics import edit_distance as _edit_distance
    from mtlnb.camera_primus.metrics import pairwise_edit_distances as _edit_distances

    rng = random.Random(3)
    for _ in range(60):
        a = [tuple(rng.choice("abcd") for _ in range(rng.randint(0, 7))) for _ in range(rng.randint(1, 5))]
        b = [tuple(rng.choice("abcde") for _ in range(rng.randint(0, 9))) for _ in range(rng.randint(1, 5))]
        d = _edit_distances(a, b)
        assert d.shape == (len(a), len(b))
        for i, x in enumerate(a):
            for j, y in enumerate(b):
                assert d[i, j] == _edit_distance(x, y)
    assert _edit_distances([("a", "b", "c")], [("a", "c"), ()]).tolist() == [[1, 3]]  # one deletion; all deleted


# ---------------------------------------------------------------------------------------------------------------
# Smith-Waterman, stage by stage


def test_sw_table_scores_moves_and_end():
    # ref "a b", query "a c b": a matches (2), c is a gap in the reference (-1), b matches (+2) -> 3 at (3, 2)
    val, op, end = fusion._sw_table(list("ab"), list("acb"), 2.0, -1.0, -1.0, -1.0)
    assert len(val) == 4 and all(len(row) == 3 for row in val)
    assert val[1][1] == 2.0 and op[1][1] == "m"
    assert val[2][1] == 1.0 and op[2][1] == "i"  # the query's c against the reference's a: a gap opened
    assert end == (3, 2) and val[3][2] == 3.0 and op[3][2] == "m"
    assert [row[0] for row in op[1:]] == ["i"] * 3 and op[0][1:] == ["d"] * 2
    # a cell that every move would make negative starts afresh at 0
    val, op, _ = fusion._sw_table(["a"], ["b"], 2.0, -1.0, -1.0, -1.0)
    assert val[1][1] == 0.0 and op[1][1] == "x"


def test_sw_traceback_stops_at_zero_and_returns_the_first_aligned_pair():
    val, op, end = fusion._sw_table(list("xab"), list("acb"), 2.0, -1.0, -1.0, -1.0)
    ops, start = fusion._sw_traceback(val, op, end)
    assert ops == ["m", "i", "m"]  # a = a, query c alone, b = b
    assert start == (1, 0)  # the reference's a (after its x), the query's first token


def test_sw_fuse_keeps_matches_the_more_probable_mismatch_and_gap_tokens():
    ref, qry = list("abz"), list("acz")
    # a = a (kept); b vs c (query more probable: c); a gap in the query keeps the reference's z
    assert fusion._sw_fuse(["m", "m", "d"], (0, 0), ref, [1, 0.4, 1], qry, [1, 0.6, 1]) == list("acz")
    assert fusion._sw_fuse(["m", "m"], (0, 0), ref, [1, 0.6, 1], qry, [1, 0.4, 1]) == list("ab")
    assert fusion._sw_fuse(["m", "m"], (0, 0), ref, [1, 0.5, 1], qry, [1, 0.5, 1]) == list("ac")  # tie: query's
    assert fusion._sw_fuse(["i", "m"], (0, 1), ref, [1, 1, 1], qry, [1, 1, 1]) == list("cz")  # c alone; a vs z
