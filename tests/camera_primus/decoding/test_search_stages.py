"""Tests for the stages of mtlnb.camera_primus.decoding.search's beam search, one at a time.

Each stage is fed a small hand-made state (hypotheses, frame labels, a lattice builder) and its output is checked
against values worked out in the comments.  The end-to-end behaviour of the decoder is tested in test_search.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtlnb.camera_primus.decoding import search
from mtlnb.camera_primus.decoding.search import (
    DecoderConfig,
    _Costs,
    _enter_from_blank,
    _Frame,
    _frame_labels,
    _hyp_key,
    _Labels,
    _lattice_from_search,
    _LatticeBuilder,
    _leave_symbols,
    _LMScorer,
    _split_key,
    _stay,
)

VOCAB = ["a", "b", "c"]
C = len(VOCAB) + 1  # classes: a, b, c, blank
A, B, CC, BLANK = 0, 1, 2, 3


def labels(scores: dict, blank: float | None) -> _Labels:
    """Frame labels from ``{symbol: scaled log-posterior}`` (in column order) and the blank's (None: pruned)."""
    syms = sorted(scores)
    return _Labels(syms, [scores[s] for s in syms], {s: scores[s] for s in syms}, blank)


def no_lm() -> _LMScorer:
    return _LMScorer(None, VOCAB, math.log(1e-6), cache_size=100)


def plain_costs(insertion: float = 0.0) -> _Costs:
    return _Costs(loop=0.0, exit=0.0, direct=0.0, through_blank=0.0, insertion=insertion)


# ---------------------------------------------------------------------------------------------------------------
# hypothesis keys and costs


def test_hypothesis_keys_round_trip_and_match_the_lm_scorers_keys():
    for sid, last, in_blank in [(0, -1, False), (0, 2, True), (7, 0, False), (123, 2, True)]:
        key = _hyp_key(sid, last, in_blank, C)
        assert _split_key(key, C) == (sid, last, in_blank)
        assert bool(key & 1) == in_blank  # the hot loops test the blank bit directly
    # the LM scorer builds the key of the symbol hypothesis a symbol starts: (successor, symbol, not in blank)
    lm = no_lm()
    keys, _ = lm.key_row(lm.initial)
    assert lm.key(lm.initial, B, keys) == _hyp_key(lm.initial, B, False, C) == keys[B]


def test_costs_are_the_configs_transition_log_probabilities_and_penalty():
    kaldi = _Costs.of(DecoderConfig(loop_prob=0.25, blank_entry_prob=0.4, insertion_penalty=-0.8))
    assert kaldi == (math.log(0.25), math.log(0.75), math.log(0.6), math.log(0.4), -0.8)
    assert _Costs.of(DecoderConfig(topology="ctc", insertion_penalty=0.5)) == (0.0, 0.0, 0.0, 0.0, 0.5)


# ---------------------------------------------------------------------------------------------------------------
# stage 1: frame labels


def test_frame_labels_keep_labels_within_the_scaled_beam_and_split_off_the_blank():
    x = np.log(np.array([
        [0.70, 0.20, 0.05, 0.05],  # beam / scale = 1: keep ln p ≥ ln 0.7 - 1 (p ≥ 0.2575): a only
        [0.40, 0.00001, 0.19999, 0.40],  # a and the blank tie at the top; c (ln 0.2 > ln 0.4 - 1) kept; b dropped
        [0.01, 0.01, 0.01, 0.97],  # blank only
    ]))
    frames = _frame_labels(x, beam=2.0, acoustic_scale=2.0)
    assert len(frames) == 3
    assert frames[0].symbols == [A] and frames[0].blank is None
    assert frames[0].scores == [2.0 * x[0, A]] and frames[0].by_symbol == {A: 2.0 * x[0, A]}
    assert frames[1].symbols == [A, CC] and frames[1].blank == 2.0 * x[1, BLANK]
    assert frames[1].by_symbol == dict(zip([A, CC], frames[1].scores))
    assert frames[2].symbols == [] and frames[2].scores == [] and frames[2].by_symbol == {}
    assert frames[2].blank == 2.0 * x[2, BLANK]
    assert _frame_labels(np.zeros((0, C)), 15.0, 2.5) == []


def test_frame_labels_with_a_zero_beam_keep_only_the_argmax():
    rng = np.random.default_rng(0)
    x = np.log(rng.dirichlet(np.ones(C), size=20))
    for t, lab in enumerate(_frame_labels(x, beam=0.0, acoustic_scale=1.0)):
        best = int(np.argmax(x[t]))
        assert (lab.symbols, lab.blank is not None) == (([], True) if best == BLANK else ([best], False))


# ---------------------------------------------------------------------------------------------------------------
# stage 2a: self-loops


def test_stay_loops_every_hypothesis_whose_label_the_frame_kept():
    in_blank = _hyp_key(0, A, True, C)
    in_a, in_b = _hyp_key(0, A, False, C), _hyp_key(0, B, False, C)
    alts = {1: (0.0, 3)}
    tokens = {in_blank: (-1.0, alts), in_a: (-2.0, alts), in_b: (-3.0, alts)}
    new = _stay(tokens, labels({A: -0.5}, blank=-0.25), C, t_loop=-0.7)
    assert list(new) == [in_blank, in_a]  # b was not kept at this frame: its hypothesis cannot loop
    assert new[in_blank][0] == -1.0 + -0.25 + -0.7 and new[in_a][0] == -2.0 + -0.5 + -0.7
    assert new[in_blank][1] is alts  # alts are shared, not copied
    assert list(_stay(tokens, labels({A: -0.5}, blank=None), C, 0.0)) == [in_a]  # blank pruned: no blank loop


# ---------------------------------------------------------------------------------------------------------------
# the frame's hypotheses: merges


def test_merge_keeps_the_better_score_and_the_start_nodes_within_the_lattice_beam():
    frame = _Frame({}, lattice_beam=2.0)
    key = _hyp_key(0, A, False, C)
    old_alts = {1: (0.0, 4), 2: (-1.5, 5)}
    score, merged = frame.merge(key, (-10.0, old_alts), -9.0, {3: (0.0, 6)})
    # the incoming hypothesis is 1 better: its node 3 stays at 0; the old nodes shift by -1; node 2 (-2.5) is
    # beyond the lattice beam
    assert score == -9.0 and merged == {3: (0.0, 6), 1: (-1.0, 4)}
    assert old_alts == {1: (0.0, 4), 2: (-1.5, 5)}  # shared dicts are never modified
    # a worse contribution beyond the beam leaves the hypothesis as it is
    assert frame.merge(key, (score, merged), -20.0, {9: (0.0, 0)}) == (-9.0, merged)
    # the same node through both: the better relative score wins
    score, again = frame.merge(key, (score, merged), -9.5, {1: (0.0, 7)})
    assert again[1] == (-0.5, 7)


def test_merge_updates_only_alts_dicts_this_frame_made():
    frame = _Frame({}, lattice_beam=5.0)
    key = _hyp_key(0, A, False, C)
    shared = {1: (0.0, 0)}
    _, first = frame.merge(key, (0.0, shared), -1.0, {2: (0.0, 1)})
    assert first is not shared and key in frame.owned
    _, second = frame.merge(key, (0.0, first), -2.0, {3: (0.0, 2)})
    assert second is first  # made by this frame's merge: updated in place
    assert second == {1: (0.0, 0), 2: (-1.0, 1), 3: (-2.0, 2)}


def test_resolve_equals_merging_the_pending_contributions_one_by_one():
    rng = np.random.default_rng(3)
    for trial in range(200):
        key = 10
        n = int(rng.integers(1, 6))
        contributions = []
        for _ in range(n + 1):
            nodes = rng.choice(8, size=int(rng.integers(1, 4)), replace=False)
            alts = {int(v): (float(-rng.exponential(1.0)) * (i > 0), int(rng.integers(0, 9)))
                    for i, v in enumerate(nodes)}
            contributions.append((float(rng.normal(0, 2)), alts))
        deferred = _Frame({key: contributions[0]}, lattice_beam=1.5)
        deferred.pend[key] = list(contributions[1:])
        deferred.top[key] = max(sc for sc, _ in contributions)
        got = deferred.resolve(key)
        at_once = _Frame({}, lattice_beam=1.5)
        want = contributions[0]
        for sc, alts in contributions[1:]:
            want = at_once.merge(key, want, sc, alts)
        assert got == want and deferred.new[key] == got, trial
        assert key not in deferred.pend and key not in deferred.top


def test_best_counts_pending_contributions():
    frame = _Frame({1: (-3.0, {}), 2: (-1.0, {})}, lattice_beam=1.0)
    assert frame.best() == -1.0
    frame.top[1] = -0.5
    assert frame.best() == -0.5
    assert _Frame({}, 1.0).best() == -math.inf


# ---------------------------------------------------------------------------------------------------------------
# pruning


def test_survivors_apply_the_beam_and_max_active_with_stable_ties():
    new = {k: (sc, {k: (0.0, 0)}) for k, sc in [(10, -1.0), (12, -5.0), (14, -2.0), (16, -1.0), (18, -9.5)]}
    frame = _Frame(dict(new), lattice_beam=1.0)
    kept = frame.survivors(cutoff=-9.0, max_active=10)
    assert list(kept) == [10, 12, 14, 16] and kept[12] == new[12]  # the beam drops 18; frame order is kept
    frame = _Frame(dict(new), lattice_beam=1.0)
    assert list(frame.survivors(cutoff=-9.0, max_active=3)) == [10, 16, 14]  # best first; equal scores in order


def test_survivors_resolve_pending_merges_and_rank_by_the_merged_score():
    frame = _Frame({10: (-4.0, {1: (0.0, 0)}), 12: (-2.0, {2: (0.0, 0)})}, lattice_beam=3.0)
    frame.pend[10] = [(-1.0, {3: (0.0, 5)})]  # a pending contribution makes 10 the best
    frame.top[10] = -1.0
    kept = frame.survivors(cutoff=-10.0, max_active=1)
    assert list(kept) == [10] and kept[10] == (-1.0, {3: (0.0, 5), 1: (-3.0, 0)})
    assert not frame.pend


# ---------------------------------------------------------------------------------------------------------------
# stage 2b: blank -> symbol


def test_enter_from_blank_moves_each_blank_hypothesis_to_every_kept_symbol():
    lm = no_lm()
    s0 = lm.initial
    blank_after_a = _hyp_key(s0, A, True, C)
    blank_after_b = _hyp_key(s0, B, True, C)
    in_c = _hyp_key(s0, CC, False, C)
    tokens = {blank_after_a: (-1.0, {4: (0.0, -1)}), in_c: (-0.5, {5: (0.0, 2)}),
              blank_after_b: (-3.0, {6: (0.0, -1), 7: (-0.5, -1)})}
    lab = labels({A: -0.2, B: -0.4}, blank=-0.1)
    frame = _Frame({}, lattice_beam=10.0)
    costs = _Costs(loop=-0.7, exit=-0.6, direct=-0.3, through_blank=-0.9, insertion=-0.05)
    _enter_from_blank(tokens, lab, 9, frame, lm, C, costs)
    to_a, to_b = _hyp_key(s0, A, False, C), _hyp_key(s0, B, False, C)
    # score: previous + exit + acoustic + LM (0 without an LM) + insertion; the symbol starts at frame 9
    assert frame.new == {to_a: (-1.0 + -0.6 + -0.2 + 0.0 + -0.05, {4: (0.0, 9)}),
                         to_b: (-1.0 + -0.6 + -0.4 + 0.0 + -0.05, {4: (0.0, 9)})}
    # the second blank hypothesis reaches the same keys (no LM: one state): deferred, best score in `top`
    moved = {6: (0.0, 9), 7: (-0.5, 9)}
    assert frame.pend == {to_a: [(-3.0 + -0.6 + -0.2 + 0.0 + -0.05, moved)],
                          to_b: [(-3.0 + -0.6 + -0.4 + 0.0 + -0.05, moved)]}
    assert frame.top == {to_a: frame.new[to_a][0], to_b: frame.new[to_b][0]}
    assert tokens[blank_after_b][1] == {6: (0.0, -1), 7: (-0.5, -1)}  # the previous frame's alts are untouched


def test_enter_from_blank_adds_the_weighted_lm_score():
    class Unigram:
        order = 1

        def logprob(self, token, context):
            return {"a": math.log(0.5), "b": math.log(0.25)}.get(token, math.log(0.125))

    lm = _LMScorer(Unigram(), VOCAB, math.log(1e-6), cache_size=100, lm_weight=2.0)
    key = _hyp_key(lm.initial, -1, True, C)
    frame = _Frame({}, lattice_beam=1.0)
    _enter_from_blank({key: (0.0, {0: (0.0, -1)})}, labels({B: -1.0}, None), 0, frame, lm, C, plain_costs())
    ((k, (score, _)),) = frame.new.items()
    assert _split_key(k, C) == (lm.initial, B, False) and score == -1.0 + 2.0 * math.log(0.25)


# ---------------------------------------------------------------------------------------------------------------
# stage 2c: a symbol ends


def test_leave_symbols_at_the_first_frame_starts_from_node_zero():
    lm = no_lm()
    builder = _LatticeBuilder(lm.initial)
    frame = _Frame({}, lattice_beam=5.0)
    costs = _Costs(loop=-0.7, exit=-0.6, direct=-0.3, through_blank=-0.9, insertion=0.0)
    best = _leave_symbols({}, labels({A: -0.2}, blank=-2.0), 0, -math.inf, frame, builder, lm, C, costs, 15.0, False)
    start = _hyp_key(lm.initial, -1, False, C)
    assert frame.new == {_hyp_key(lm.initial, A, False, C): (-0.3 + -0.2, {0: (0.0, 0)}),
                         start | 1: (-0.9 + -2.0, {0: (0.0, -1)})}  # the blank before the first symbol
    assert best == -0.5
    assert builder.node_time == [0] and builder.src == []  # no symbol ended: no node, no arc


def test_leave_symbols_closes_the_symbol_at_a_new_node():
    lm = no_lm()
    s0 = lm.initial
    builder = _LatticeBuilder(s0)
    builder.node_time.append(2)  # node 1: a boundary at frame 2
    builder.node_lm.append(s0)
    in_a = _hyp_key(s0, A, False, C)
    tokens = {in_a: (-1.0, {0: (-0.5, 0), 1: (0.0, 2)})}
    frame = _Frame({}, lattice_beam=5.0)
    best = _leave_symbols(tokens, labels({B: -0.2}, blank=None), 5, -math.inf, frame, builder, lm, C,
                          plain_costs(), 15.0, False)
    # node 2 at frame 5 ends symbol a; one arc per start node (with its first symbol frame)
    assert builder.node_time == [0, 2, 5] and builder.node_lm == [s0, s0, s0]
    assert (builder.src, builder.dst, builder.symbol) == ([0, 1], [2, 2], [A, A])
    assert (builder.t_start, builder.t_symbol, builder.t_end) == ([0, 2], [0, 2], [5, 5])
    assert frame.new == {_hyp_key(s0, B, False, C): (-1.2, {2: (0.0, 5)})} and best == -1.2


def test_leave_symbols_skips_repeats_in_plain_ctc_and_successors_outside_the_beam():
    lm = no_lm()
    s0 = lm.initial
    in_a = _hyp_key(s0, A, False, C)
    tokens = {in_a: (-1.0, {0: (0.0, 0)})}
    lab = labels({A: -0.1, B: -0.2}, blank=None)
    frame = _Frame({}, lattice_beam=5.0)
    builder = _LatticeBuilder(s0)
    _leave_symbols(tokens, lab, 3, -math.inf, frame, builder, lm, C, plain_costs(), 15.0, True)
    assert list(frame.new) == [_hyp_key(s0, B, False, C)]  # "a a" needs a blank in between in plain CTC
    frame = _Frame({}, lattice_beam=5.0)
    builder = _LatticeBuilder(s0)
    best = _leave_symbols(tokens, lab, 3, 10.0, frame, builder, lm, C, plain_costs(), 1.0, False)
    assert frame.new == {} and best == 10.0 and builder.node_time == [0]  # nothing within the beam: no node


# ---------------------------------------------------------------------------------------------------------------
# stage 3: the end of the sentence and the lattice


def test_close_sentence_sends_every_survivor_to_the_final_node():
    builder = _LatticeBuilder(0)
    builder.node_time.append(2)
    builder.node_lm.append(4)
    in_b = _hyp_key(4, B, False, C)
    in_blank = _hyp_key(4, A, True, C)
    builder.close_sentence({in_b: (-1.0, {1: (0.0, 3)}), in_blank: (-2.0, {0: (0.0, -1), 1: (-1.0, -1)})}, 6, C)
    # node 2 (frame 6) ends b; node 3 is final; </s> arcs from node 2 and from the blank's start nodes 0 and 1
    assert builder.node_time == [0, 2, 6, 6] and builder.node_lm == [0, 4, 4, -1]
    assert builder.src == [1, 2, 0, 1] and builder.dst == [2, 3, 3, 3] and builder.symbol == [B, -1, -1, -1]
    assert builder.t_start == [2, 6, 0, 2] and builder.t_symbol == [3, 6, 6, 6] and builder.t_end == [6, 6, 6, 6]
    assert builder.sid == [4, 4, 4, 4]
    empty = _LatticeBuilder(0)
    empty.close_sentence({}, 0, C)
    assert (empty.src, empty.dst, empty.symbol, empty.node_time) == ([0], [1], [-1], [0, 0])


def test_lattice_from_search_scores_arcs_in_closed_form():
    cfg = DecoderConfig(loop_prob=0.25, blank_entry_prob=0.4, insertion_penalty=-0.8, lm_weight=0.5)
    rng = np.random.default_rng(1)
    x = np.log(rng.dirichlet(np.ones(C), size=5))
    builder = _LatticeBuilder(0)
    builder.node_time.append(3)  # node 1: after "a" = 2 blanks (frames 0-1) + 1 symbol frame (2)
    builder.node_lm.append(0)
    for arc in [(0, 1, A, 0, 2, 3), (1, 2, B, 3, 3, 5)]:  # then "b" on frames 3-4, no blank
        for lst, v in zip((builder.src, builder.dst, builder.symbol, builder.t_start, builder.t_symbol,
                           builder.t_end), arc):
            lst.append(v)
        builder.sid.append(0)
    builder.node_time.append(5)
    builder.node_lm.append(0)
    builder.close_sentence({}, 5, C)  # no survivors: only the final node (no </s> arc reaches it) ...
    builder.src.append(2)  # ... so add the </s> arc by hand
    builder.dst.append(3)
    builder.symbol.append(-1)
    builder.t_start.append(5)
    builder.t_symbol.append(5)
    builder.t_end.append(5)
    builder.sid.append(0)
    lm_lp = {A: -1.0, B: -2.0, -1: -0.5}
    lat = _lattice_from_search(VOCAB, cfg, x, builder, lambda sid, y: lm_lp[y])
    loop, ext, direct, nac = cfg.transition_logprobs()
    np.testing.assert_allclose(lat.acoustic, [x[0, BLANK] + x[1, BLANK] + x[2, A], x[3, B] + x[4, B], 0.0])
    np.testing.assert_allclose(lat.graph, [
        0.5 * -1.0 + (nac + loop + ext) + ext - 0.8,  # through the blank (2 frames: one loop), the symbol's exit
        0.5 * -2.0 + direct + (loop + ext) - 0.8,  # straight in, 2 symbol frames
        0.5 * -0.5,  # </s>: the LM only
    ])
    assert lat.lm.tolist() == [-1.0, -2.0, -0.5] and lat.num_frames == 5 and lat.config is cfg
    assert lat.best_path() == ["a", "b"]


def test_lattice_from_search_prunes_with_the_lattice_beam():
    cfg = DecoderConfig(topology="ctc", lattice_beam=1.0)
    x = np.log(np.array([[0.6, 0.3, 0.05, 0.05]]))
    builder = _LatticeBuilder(0)
    for sym in (A, B):  # two one-frame alternatives from node 0 to their own node, then </s>
        node = len(builder.node_time)
        builder.node_time.append(1)
        builder.node_lm.append(0)
        for lst, v in zip((builder.src, builder.dst, builder.symbol, builder.t_start, builder.t_symbol,
                           builder.t_end, builder.sid), (0, node, sym, 0, 0, 1, 0)):
            lst.append(v)
    builder.node_time.append(1)
    builder.node_lm.append(-1)
    for node in (1, 2):
        for lst, v in zip((builder.src, builder.dst, builder.symbol, builder.t_start, builder.t_symbol,
                           builder.t_end, builder.sid), (node, 3, -1, 1, 1, 1, 0)):
            lst.append(v)
    # at acoustic scale 2.5, b is 2.5 · ln(0.6 / 0.3) = 1.73 behind a: beyond the lattice beam of 1
    lat = _lattice_from_search(VOCAB, cfg, x, builder, lambda sid, y: 0.0)
    assert lat.symbol.tolist() == [A, -1] and lat.num_nodes == 3
    wide = _lattice_from_search(VOCAB, DecoderConfig(topology="ctc", lattice_beam=2.0), x, builder,
                                lambda sid, y: 0.0)
    assert sorted(wide.symbol.tolist()) == [-1, -1, A, B]


# ---------------------------------------------------------------------------------------------------------------
# the stages together


@pytest.mark.parametrize("topology", ["kaldi", "ctc"])
def test_the_stages_in_sequence_are_the_decoder(topology):
    rng = np.random.default_rng(5)
    x = np.log(rng.dirichlet(np.full(C, 0.4), size=15))
    cfg = DecoderConfig(topology=topology, beam=8.0, lattice_beam=5.0, max_active=6)
    decoder = search.WordGraphDecoder(VOCAB, None, cfg)
    lm = decoder._lm
    costs = _Costs.of(cfg)
    builder = _LatticeBuilder(lm.initial)
    tokens: dict = {}
    for t, lab in enumerate(_frame_labels(search._as_logp(x, len(VOCAB), "test"), cfg.beam, cfg.acoustic_scale)):
        frame = _Frame(_stay(tokens, lab, C, costs.loop), cfg.lattice_beam)
        if lab.symbols:
            _enter_from_blank(tokens, lab, t, frame, lm, C, costs)
        best = _leave_symbols(tokens, lab, t, frame.best(), frame, builder, lm, C, costs, cfg.beam, topology == "ctc")
        tokens = frame.survivors(best - cfg.beam, cfg.max_active)
        assert 1 <= len(tokens) <= cfg.max_active
    builder.close_sentence(tokens, len(x), C)
    by_hand = _lattice_from_search(VOCAB, cfg, search._as_logp(x, len(VOCAB), "test"), builder, lm.logprob)
    decoded = decoder.decode(x)
    for name in ("src", "dst", "symbol", "acoustic", "graph", "lm", "t_start", "t_symbol", "t_end", "node_time"):
        assert np.array_equal(getattr(by_hand, name), getattr(decoded, name)), name
