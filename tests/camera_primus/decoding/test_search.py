"""Tests for mtlnb.camera_primus.decoding.search: greedy decoding, the word-graph search, lattice read-offs, MBR / sausages.

Fixtures follow the pipeline stages (posteriors -> word graphs -> decoded) and never run a network.  Expected
values are worked out by hand in the comments or come from independent, deliberately naive implementations in
this file (an exhaustive search over all HMM state paths; a line-by-line port of Kaldi's ``AccStats`` loops).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from mtlnb.camera_primus.decoding.lattice import EPS, Lattice, ScoredLattice, _MBRPrep
from mtlnb.camera_primus.decoding.search import LOG_FLOOR, DecoderConfig, WordGraphDecoder, greedy_decode, word_graph

VOCAB = ["a", "b"]


class BigramLM:
    """A tiny hand-written bigram model: P(token | previous symbol) from a table, a floor elsewhere."""

    order = 2

    def __init__(self, table: dict, floor: float = 1e-3, vocabulary=None):
        self.table = table
        self.floor = floor
        if vocabulary is not None:
            self.vocabulary = list(vocabulary)

    def logprob(self, token, context):
        prev = context[-1] if context else "<s>"
        return math.log(self.table.get((prev, token), self.floor))


# P(a|a) = 0.6 is twice P(b|a) = 0.3; the sentence end is equally likely after a and after b.
FLIP_LM = BigramLM(
    {
        ("<s>", "a"): 0.5, ("<s>", "b"): 0.5,
        ("a", "a"): 0.6, ("a", "b"): 0.3, ("a", "</s>"): 0.1,
        ("b", "a"): 0.45, ("b", "b"): 0.45, ("b", "</s>"): 0.1,
    }
)


@pytest.fixture
def flip_posteriors():
    """Stage 1 (posteriors): 'a', a blank, then a frame that slightly favours 'b' over 'a' (0.54 vs 0.45)."""
    p = np.array(
        [
            [0.98, 0.01, 0.01],  # a
            [0.01, 0.01, 0.98],  # blank
            [0.45, 0.54, 0.01],  # b slightly ahead of a
        ]
    )
    return np.log(p)


# ---------------------------------------------------------------------------------------------------------------
# greedy decoding


def test_greedy_decode_collapses_repeats_and_drops_blanks():
    # frame argmax: a a _ a b b _  ->  collapse: a _ a b _  ->  drop blanks: a a b
    labels = [0, 0, 2, 0, 1, 1, 2]
    logp = np.log(np.full((7, 3), 0.05))
    logp[np.arange(7), labels] = np.log(0.9)
    assert greedy_decode(logp, VOCAB) == ["a", "a", "b"]
    assert greedy_decode(np.zeros((0, 3)), VOCAB) == []


def test_greedy_decode_rejects_wrong_shape():
    with pytest.raises(ValueError, match="greedy_decode"):
        greedy_decode(np.zeros((4, 2)), VOCAB)


# ---------------------------------------------------------------------------------------------------------------
# the LM-weight flip


def test_lm_weight_flips_the_best_path(flip_posteriors):
    # Stage 2 (word graphs) -> stage 3 (decoded).  The competitors "a b" and "a a" share every transition
    # (a entered directly, a blank, the last symbol entered through it) and the LM terms P(a|<s>) and
    # P(</s>|·) = 0.1; they differ by
    #   acoustics:  ln(0.54 / 0.45) = 0.1823 for "a b"
    #   LM:         lm_weight · ln(0.6 / 0.3) = lm_weight · 0.6931 for "a a".
    # Read off at Kaldi's default acoustic scale 1: "a a" wins once lm_weight > 0.1823 / 0.6931 = 0.263.
    # At the decoding acoustic scale 2.5 the acoustic margin is 2.5 · 0.1823 = 0.4558: threshold 0.658.
    lat0 = word_graph(flip_posteriors, VOCAB, FLIP_LM, DecoderConfig(lm_weight=0.0))
    assert lat0.best_path() == ["a", "b"]
    lat_half = word_graph(flip_posteriors, VOCAB, FLIP_LM, DecoderConfig(lm_weight=0.5))
    assert lat_half.best_path() == ["a", "a"]  # 0.5 · 0.693 = 0.347 > 0.182
    assert lat_half.best_path(acoustic_scale=2.5) == ["a", "b"]  # 0.347 < 0.456
    lat1 = word_graph(flip_posteriors, VOCAB, FLIP_LM, DecoderConfig(lm_weight=1.0))
    assert lat1.best_path() == ["a", "a"]
    assert lat1.best_path(acoustic_scale=2.5) == ["a", "a"]  # 0.693 > 0.456
    # the stored LM scores are the table's, unweighted
    best_arcs = lat1.lm[lat1.symbol >= 0]
    assert np.isclose(best_arcs, math.log(0.5)).any() and np.isclose(best_arcs, math.log(0.6)).any()


def test_search_score_matches_hand_computation(flip_posteriors):
    # "a a" at lm_weight 1, decoding scales: acoustic 2.5·(ln .98 + ln .98 + ln .45);
    # transitions: a entered directly (ln .5), a's exit (ln .5), blank entered (ln .5), blank -> a (ln .5),
    # a's exit (ln .5) = 5 ln .5; LM ln .5 + ln .6 + ln .1.
    expected = 2.5 * (2 * math.log(0.98) + math.log(0.45)) + 5 * math.log(0.5) + math.log(0.5 * 0.6 * 0.1)
    lat = word_graph(flip_posteriors, VOCAB, FLIP_LM)
    tokens, score = lat.scored(2.5, 1.0).best_path()
    assert tokens == ["a", "a"]
    assert score == pytest.approx(expected, abs=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# the search against exhaustive enumeration


def exhaustive(logp, vocab, lm, cfg):
    """Best score of every symbol sequence over all HMM state paths (a naive re-statement of the topology)."""
    T, C = logp.shape
    blank = C - 1
    t_loop, t_exit, t_direct, t_nac = cfg.transition_logprobs()
    ctc = cfg.topology == "ctc"
    states = [("blank",)] + [("sym", c, new) for c in range(blank) for new in (True, False)]
    best: dict = {}
    for seq in itertools.product(states, repeat=T):
        score, ctx, prev, syms, ok = 0.0, ("<s>",), None, [], True
        for t, st in enumerate(seq):
            if st[0] == "blank":
                score += cfg.acoustic_scale * logp[t, blank]
                score += t_nac if prev is None else (t_loop if prev[0] == "blank" else t_exit + t_nac)
            else:
                _, c, new = st
                score += cfg.acoustic_scale * logp[t, c]
                if not new:  # continuing the same symbol
                    if prev is None or prev[0] != "sym" or prev[1] != c:
                        ok = False
                        break
                    score += t_loop
                else:
                    if prev is None:
                        score += t_direct
                    elif prev[0] == "blank":
                        score += t_exit
                    else:
                        if ctc and prev[1] == c:
                            ok = False
                            break
                        score += t_exit + t_direct
                    lp = lm.logprob(vocab[c], ctx) if lm else 0.0
                    score += cfg.lm_weight * lp + cfg.insertion_penalty
                    ctx, syms = ctx + (vocab[c],), syms + [vocab[c]]
            prev = st
        if not ok:
            continue
        if prev is not None:
            score += t_exit
        score += cfg.lm_weight * (lm.logprob("</s>", ctx) if lm else 0.0)
        key = tuple(syms)
        best[key] = max(best.get(key, -math.inf), score)
    return best


@pytest.mark.parametrize("topology", ["kaldi", "ctc"])
def test_lattice_holds_exactly_the_sequences_within_the_lattice_beam(topology):
    rng = np.random.default_rng(7)
    lattice_beam = 4.0
    for trial in range(6):
        T = 4 + trial % 2
        logp = np.log(rng.dirichlet([0.6, 0.6, 0.6], size=T))
        lm = None if trial % 3 == 0 else FLIP_LM
        cfg = DecoderConfig(beam=100.0, lattice_beam=lattice_beam, topology=topology, lm_weight=0.7,
                            insertion_penalty=-0.2)
        lat = word_graph(logp, VOCAB, lm, cfg)
        truth = exhaustive(logp, VOCAB, lm, cfg)
        top = max(truth.values())
        found = {tuple(s): score for s, score in lat.nbest(10_000, acoustic_scale=cfg.acoustic_scale)}
        for seq, score in truth.items():
            if score >= top - lattice_beam + 1e-9:  # every sequence within the beam, with its best score
                assert seq in found, (trial, seq)
                assert found[seq] == pytest.approx(score, abs=1e-9)
        best_seq = max(truth, key=truth.get)
        assert lat.best_path(acoustic_scale=cfg.acoustic_scale) == list(best_seq)
        # paths assembled from kept arcs may lie outside the beam, but never beat the true score
        for seq, score in found.items():
            assert score <= truth[seq] + 1e-9


def test_lm_weight_zero_wide_beam_equals_greedy_on_random_posteriors():
    # Plain CTC topology, no LM: the search maximises the sum of frame scores, whose maximum is the frame-wise
    # argmax path, i.e. greedy decoding -- on any posteriors.
    rng = np.random.default_rng(3)
    vocab = ["a", "b", "c", "d"]
    for _ in range(10):
        logp = np.log(rng.dirichlet(np.full(5, 0.4), size=30))
        lat = word_graph(logp, vocab, None, DecoderConfig(topology="ctc", lm_weight=0.0, beam=200, lattice_beam=1))
        assert lat.best_path() == greedy_decode(logp, vocab)


@pytest.mark.parametrize("topology", ["kaldi", "ctc"])
def test_lm_weight_zero_equals_greedy_on_peaky_posteriors(topology):
    # With LM weight 0 the Kaldi topology still charges each symbol one extra ln 0.5 of transitions; on peaky
    # posteriors (as a trained CTC network gives) no frame is close enough for that to matter.
    rng = np.random.default_rng(11)
    vocab = [f"s{i}" for i in range(12)]
    for _ in range(10):
        T = 80
        labels = np.where(rng.random(T) < 0.6, 12, rng.integers(0, 12, size=T))
        logits = rng.normal(0.0, 1.0, size=(T, 13))
        logits[np.arange(T), labels] += 9.0
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        lm = BigramLM({}, floor=0.05)
        lat = word_graph(logp, vocab, lm, DecoderConfig(topology=topology, lm_weight=0.0, beam=60))
        assert lat.best_path() == greedy_decode(logp, vocab)


# ---------------------------------------------------------------------------------------------------------------
# lattice structure and read-offs on decoded lattices


@pytest.fixture
def decoded_lattices():
    """Stage 2 (word graphs) from random, moderately peaky posteriors with the flip LM."""
    rng = np.random.default_rng(5)
    lats = []
    for _ in range(6):
        T = 25
        logits = rng.normal(0.0, 1.5, size=(T, 3))
        logits[:, 2] += 1.0
        logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        lats.append(word_graph(logp, VOCAB, FLIP_LM))
    return lats


def test_lattice_is_a_topologically_numbered_dag_whose_arcs_tile_time(decoded_lattices):
    for lat in decoded_lattices:
        assert (lat.src < lat.dst).all()
        assert lat.node_time[0] == 0 and lat.node_time[-1] == lat.num_frames
        # an arc starts where its source node is and ends where its destination node is
        assert (lat.node_time[lat.src] == lat.t_start).all()
        assert (lat.node_time[lat.dst] == lat.t_end).all()
        sym = lat.symbol >= 0
        assert (lat.t_symbol[sym] < lat.t_end[sym]).all()  # a symbol arc has at least one symbol frame
        assert (lat.symbol[lat.dst == lat.num_nodes - 1] == -1).all()  # only </s> arcs reach the final node


def test_arc_posteriors_on_every_frame_sum_to_one(decoded_lattices):
    for lat in decoded_lattices:
        post = lat.arc_posteriors()
        assert (post >= 0).all() and (post <= 1 + 1e-12).all()
        for t in range(lat.num_frames):
            covering = (lat.t_start <= t) & (t < lat.t_end)
            total = post[covering].sum()
            assert total <= 1 + 1e-9
            assert total == pytest.approx(1.0, abs=1e-9)  # every path covers every frame exactly once


def test_total_logprob_is_the_log_sum_over_all_paths():
    # two paths, e^-1 and e^-2 (acoustic), plus a graph score of -0.5 on one of them
    lat = Lattice.from_arcs(["a", "b"], [(0, 1, "a", -1.0, 0.0), (0, 1, "b", -2.0, -0.5), (1, 2, None, 0.0, 0.0)])
    assert lat.total_logprob() == pytest.approx(math.log(math.exp(-1.0) + math.exp(-2.5)))
    assert lat.total_logprob(lm_scale=0.0) == pytest.approx(math.log(math.exp(-1.0) + math.exp(-2.0)))
    assert lat.total_logprob(acoustic_scale=2.0) == pytest.approx(math.log(math.exp(-2.0) + math.exp(-4.5)))


def test_nbest_is_ordered_distinct_and_starts_with_the_best_path(decoded_lattices):
    for lat in decoded_lattices:
        nb = lat.nbest(20)
        scores = [s for _, s in nb]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(p) for p, _ in nb}) == len(nb)
        assert nb[0][0] == lat.best_path()


def test_path_posteriors_of_a_hand_built_lattice():
    # Three sequences with probabilities 0.5, 0.3, 0.2; "a b" appears twice (two alignments, 0.3 + 0.2).
    lat = Lattice.from_paths(["a", "b", "c"], [(["a", "b"], 0.3), (["c"], 0.5), (["a", "b"], 0.2)])
    assert lat.posterior_of_path(["a", "b"]) == pytest.approx(0.5)
    assert lat.posterior_of_path(["c"]) == pytest.approx(0.5)
    assert lat.posterior_of_path(["a"]) == 0.0
    assert lat.posterior_of_path(["z"]) == 0.0
    nb = lat.nbest(5)
    assert [p for p, _ in nb] == [["c"], ["a", "b"]]  # distinct sequences; "a b" scored by its best path
    assert nb[1][1] == pytest.approx(math.log(0.3))


def test_posteriors_of_all_sequences_sum_to_one():
    rng = np.random.default_rng(8)
    for _ in range(3):
        lat = word_graph(np.log(rng.dirichlet([0.5, 0.5, 0.5], size=6)), VOCAB, FLIP_LM)
        seqs = [p for p, _ in lat.nbest(100_000)]  # all of them: a short utterance has few
        assert sum(lat.posterior_of_path(s) for s in seqs) == pytest.approx(1.0, abs=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# confusion networks and MBR


def test_sausage_bins_sum_to_one(decoded_lattices):
    for lat in decoded_lattices:
        for lm_scale in (1.0, 0.0):
            res = lat.mbr(lm_scale=lm_scale)
            assert len(res.sausage) == 2 * len(res.tokens) + 1
            for b in res.sausage:
                assert sum(p for _, p in b) == pytest.approx(1.0, abs=1e-9)
                assert [p for _, p in b] == sorted((p for _, p in b), reverse=True)


def test_mbr_differs_from_map_on_a_hand_built_lattice():
    # Paths: "a b" 0.4, "c d" 0.3, "c b" 0.3.  MAP = "a b".  Position-wise (all paths align by substitution):
    #   position 1: a 0.4, c 0.6  -> c;   position 2: b 0.7, d 0.3  -> b.   MBR = "c b".
    # Expected errors: "c b" -> 0.4·1 + 0.3·1 = 0.7 < "a b" -> 0.3·2 + 0.3·1 = 0.9.
    lat = Lattice.from_paths(["a", "b", "c", "d"], [(["a", "b"], 0.4), (["c", "d"], 0.3), (["c", "b"], 0.3)])
    assert lat.best_path() == ["a", "b"]
    res = lat.mbr()
    assert res.tokens == ["c", "b"]
    assert res.confidences == pytest.approx([0.6, 0.7])
    assert res.bayes_risk == pytest.approx(0.7, abs=1e-4)  # plus Kaldi's tiny delta() on insertions
    expected = [[(EPS, 1.0)], [("c", 0.6), ("a", 0.4)], [(EPS, 1.0)], [("b", 0.7), ("d", 0.3)], [(EPS, 1.0)]]
    assert [[s for s, _ in b] for b in res.sausage] == [[s for s, _ in b] for b in expected]
    for got, want in zip(res.sausage, expected):
        assert [p for _, p in got] == pytest.approx([p for _, p in want])
    assert lat.confusion_network() == res.sausage
    assert lat.mbr_decode() == ["c", "b"]


def test_mbr_puts_an_uncertain_insertion_in_an_epsilon_bin():
    # "a b" 0.7, "a x b" 0.3: x is an insertion with posterior 0.3 -> the ε bin between a and b holds x 0.3.
    lat = Lattice.from_paths(["a", "b", "x"], [(["a", "b"], 0.7), (["a", "x", "b"], 0.3)])
    res = lat.mbr()
    assert res.tokens == ["a", "b"]
    assert [s for s, _ in res.sausage[2]] == [EPS, "x"]
    assert [p for _, p in res.sausage[2]] == pytest.approx([0.7, 0.3])


def kaldi_acc_stats(num_nodes, arcs, r, tol):
    """Line-by-line port of Kaldi's ``MinimumBayesRisk::AccStats`` / ``EditDistance`` loops (lat/sausages.cc).

    ``arcs``: (src, dst, word, loglike) with word -1 = ε; ``r``: ε-interleaved hypothesis.  ``tol`` widens the
    comparisons exactly as the implementation under test does (Kaldi: 0)."""
    N, Q, delta = num_nodes, len(r), 1e-5

    def l(x, y):
        return 0.0 if x == y else 1.0

    pre = [[] for _ in range(N)]
    for i, a in enumerate(arcs):
        pre[a[1]].append(i)
    alpha = [-math.inf] * N
    alpha[0] = 0.0
    ad = [[0.0] * (Q + 1) for _ in range(N)]
    for q in range(1, Q + 1):
        ad[0][q] = ad[0][q - 1] + l(-1, r[q - 1])
    for n in range(1, N):
        for i in pre[n]:
            s, _, _, p = arcs[i]
            alpha[n] = np.logaddexp(alpha[n], alpha[s] + p)
        for i in pre[n]:
            s, _, w, p = arcs[i]
            ada = [0.0] * (Q + 1)
            for q in range(Q + 1):
                if q == 0:
                    ada[q] = ad[s][0] + l(w, -1) + delta
                else:
                    a1 = ad[s][q - 1] + l(w, r[q - 1])
                    a2 = ad[s][q] + l(w, -1) + delta
                    ada[q] = min(a1, a2, ada[q - 1] + l(-1, r[q - 1]))
                ad[n][q] += math.exp(alpha[s] + p - alpha[n]) * ada[q]
    bd = [[0.0] * (Q + 1) for _ in range(N)]
    bd[N - 1][Q] = 1.0
    gamma = [dict() for _ in range(Q + 1)]
    for n in range(N - 1, 0, -1):
        for i in pre[n]:
            s, _, w, p = arcs[i]
            ada, b = [0.0] * (Q + 1), [0] * (Q + 1)
            ada[0] = ad[s][0] + l(w, -1) + delta
            for q in range(1, Q + 1):
                a1 = ad[s][q - 1] + l(w, r[q - 1])
                a2 = ad[s][q] + l(w, -1) + delta
                a3 = ada[q - 1] + l(-1, r[q - 1])
                if a1 <= a2 + tol:
                    b[q], ada[q] = (1, a1) if a1 <= a3 + tol else (3, a3)
                else:
                    b[q], ada[q] = (2, a2) if a2 <= a3 + tol else (3, a3)
            bda = [0.0] * (Q + 1)
            f = math.exp(alpha[s] + p - alpha[n])
            for q in range(Q, 0, -1):
                bda[q] += f * bd[n][q]
                if b[q] == 1:
                    bd[s][q - 1] += bda[q]
                    gamma[q][w] = gamma[q].get(w, 0.0) + bda[q]
                elif b[q] == 2:
                    bd[s][q] += bda[q]
                else:
                    bda[q - 1] += bda[q]
                    gamma[q][-1] = gamma[q].get(-1, 0.0) + bda[q]
            bda[0] += f * bd[n][0]
            bd[s][0] += bda[0]
    bda = [0.0] * (Q + 1)
    for q in range(Q, 0, -1):
        bda[q] += bd[0][q]
        bda[q - 1] += bda[q]
        gamma[q][-1] = gamma[q].get(-1, 0.0) + bda[q]
    return gamma[1:], ad[N - 1][Q]


def test_vectorised_mbr_statistics_equal_the_kaldi_loops_on_random_dags():
    rng = np.random.default_rng(1)
    V = 3
    for _ in range(150):
        N = int(rng.integers(2, 8))
        arcs = [(s, d, int(rng.integers(-1, V)), float(rng.normal()))
                for d in range(1, N) for s in range(d) if s == d - 1 or rng.random() < 0.5]
        dag = ScoredLattice([f"w{i}" for i in range(V)], N, *zip(*[(a[0], a[1], a[2], a[3]) for a in arcs]))
        sorted_arcs = list(zip(dag.src.tolist(), dag.dst.tolist(), dag.symbol.tolist(), dag.weight.tolist()))
        K = int(rng.integers(0, 4))
        r = [-1] * (2 * K + 1)
        r[1::2] = rng.integers(0, V, size=K).tolist()
        want_gamma, want_risk = kaldi_acc_stats(N, sorted_arcs, r, tol=1e-9)
        prep = _MBRPrep(dag)
        gamma, risk = prep.acc_stats(np.array(r))
        assert risk == pytest.approx(want_risk, abs=1e-9)
        column = {int(s): c for c, s in enumerate(prep.col_sym)}
        for q, bins in enumerate(want_gamma):
            want = np.zeros(len(column))
            for w, v in bins.items():
                want[column[w]] += v
            np.testing.assert_allclose(gamma[q], want, atol=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# LMs, OOV, edge cases, validation


def test_decoder_with_mtlnb_ngram_lm_stores_its_log_probabilities():
    lm_mod = pytest.importorskip("mtlnb.camera_primus.decoding.ngram_lm")
    corpus = [["a", "b", "a"], ["a", "a", "b"], ["b", "a"]]
    lm = lm_mod.NGramLM(order=3, smoothing="witten_bell").fit(corpus, vocabulary=VOCAB)
    rng = np.random.default_rng(2)
    logp = np.log(rng.dirichlet([0.3, 0.3, 0.3], size=12))
    lat = word_graph(logp, VOCAB, lm)
    dag = lat.scored()
    # walk the best path and compare every stored LM score with the model
    fwd = dag.viterbi_forward()
    node, arcs = lat.num_nodes - 1, []
    while node != 0:
        cand = [i for i in range(lat.num_arcs) if lat.dst[i] == node
                and math.isclose(fwd[lat.src[i]] + dag.weight[i], fwd[node], abs_tol=1e-9)]
        arcs.append(cand[0])
        node = lat.src[cand[0]]
    history = ("<s>",)
    for i in reversed(arcs):
        token = "</s>" if lat.symbol[i] < 0 else VOCAB[lat.symbol[i]]
        assert lat.lm[i] == pytest.approx(lm.logprob(token, history))
        history += (token,)


def test_symbol_unknown_to_the_lm_gets_the_oov_score_and_cuts_the_history():
    lm = BigramLM({("<s>", "a"): 0.5, ("a", "</s>"): 0.5, ("<s>", "</s>"): 0.5}, floor=0.01, vocabulary=["a"])
    # a clear "b", then a blank: read off at acoustic scale 1, "b" costs ln 1e-4 (OOV) against ln 1e-6 for
    # explaining its frame as a blank
    logp = np.log(np.array([[1e-6, 1.0 - 2e-6, 1e-6], [1e-6, 1e-6, 1.0 - 2e-6]]))
    cfg = DecoderConfig(oov_logprob=math.log(1e-4))
    lat = word_graph(logp, VOCAB, lm, cfg)
    assert lat.best_path() == ["b"]
    b_arcs = lat.symbol == 1
    assert np.allclose(lat.lm[b_arcs], math.log(1e-4))
    # after the OOV symbol the LM history is empty: </s> is scored after () -> the floor P(</s>|<s>) here
    end = (lat.symbol == -1) & (lat.t_start == 1)
    assert np.allclose(lat.lm[end], math.log(0.5))


def test_empty_input_gives_the_empty_sentence():
    lat = word_graph(np.zeros((0, 3)), VOCAB, FLIP_LM)
    assert lat.best_path() == []
    assert lat.num_arcs == 1 and lat.symbol[0] == -1


def test_all_blank_input_gives_the_empty_sentence():
    lat = word_graph(np.log(np.tile([0.001, 0.001, 0.998], (10, 1))), VOCAB, FLIP_LM)
    assert lat.best_path() == []
    assert lat.mbr_decode() == []


def test_minus_infinity_is_floored():
    with np.errstate(divide="ignore"):
        logp = np.log(np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))  # -inf entries
    lat = word_graph(logp, VOCAB, None)
    assert lat.best_path() == ["a"]
    assert np.isfinite(lat.acoustic).all() and lat.acoustic.min() >= 2 * LOG_FLOOR


def test_decoding_is_deterministic(flip_posteriors):
    dec = WordGraphDecoder(VOCAB, FLIP_LM)
    a, b = dec.decode(flip_posteriors), dec.decode(flip_posteriors)
    for field in ("src", "dst", "symbol", "acoustic", "graph", "t_start", "t_end"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_max_active_one_still_gives_a_path(flip_posteriors):
    lat = word_graph(flip_posteriors, VOCAB, FLIP_LM, DecoderConfig(max_active=1))
    assert lat.best_path() in (["a", "a"], ["a", "b"])


@pytest.mark.parametrize(
    "logp, match",
    [
        (np.zeros((3, 2)), "columns"),
        (np.zeros(3), "shape"),
        (np.full((2, 3), np.nan), "NaN"),
        (np.ones((2, 3)), "log-probabilities"),
    ],
)
def test_bad_posteriors_are_rejected(logp, match):
    with pytest.raises(ValueError, match=match):
        WordGraphDecoder(VOCAB).decode(logp)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"acoustic_scale": 0.0}, "acoustic_scale"),
        ({"beam": -1.0}, "beam"),
        ({"topology": "hmm"}, "topology"),
        ({"loop_prob": 1.0}, "loop_prob"),
        ({"max_active": 0}, "max_active"),
    ],
)
def test_bad_config_is_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DecoderConfig(**kwargs)


def test_bad_vocabulary_and_arcs_are_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        WordGraphDecoder(["a", "a"])
    with pytest.raises(ValueError, match="reserved"):
        WordGraphDecoder(["a", EPS])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        Lattice.from_arcs(["a"], [(0, 1, "z", 0.0, 0.0)])
    with pytest.raises(ValueError, match="smaller to a larger"):
        Lattice.from_arcs(["a"], [(1, 0, "a", 0.0, 0.0)])
