"""CTC word graphs: a beam search over the CTC topology with a symbol n-gram LM that yields a lattice
(:class:`mtlnb.camera_primus.decoding.lattice.Lattice`, where the read-offs live).

The baseline (Alfaro-Contreras et al. 2023, the Kaldi recipe of the repository
``mariaalfaroc/late-fusion-music-transcription``) turned each network's per-frame posteriors into a word graph with
Kaldi (``latgen-faster-mapped --acoustic-scale=2.5 --beam=15 --lattice-beam=12``) over an HCLG graph built from an
SRILM n-gram and a two-state HMM per symbol; this module is our own implementation of the same pipeline.

Inputs
------
``logp``: float array ``(T, |V| + 1)``, natural-log softmax of a CTC network, **blank = last column** (the
baseline's convention), used directly as log-likelihoods (no prior division, as in the baseline).  ``-inf`` and
anything below ``log(1e-11)`` are floored to ``log(1e-11)``, as the baseline did.  ``vocabulary[i]`` names
column ``i``.  :func:`greedy_decode` is the baseline's unimodal decoding of the same input, as symbols (the greedy
CTC decoder itself is :func:`mtlnb.camera_primus.networks.ctc_tasks.greedy_decode`).

Search (:class:`WordGraphDecoder`)
----------------------------------
Token passing over (LM state, last symbol, CTC state).  Two topologies (``DecoderConfig.topology``):

- ``"kaldi"`` (default, the baseline's): each symbol is an optional blank state followed by the symbol state.
  Entering a symbol goes through its blank with probability ``blank_entry_prob`` (HMM_NAC_PROB = 0.5) or straight
  to the symbol state; both states loop with ``loop_prob`` (HMM_LOOP_PROB = 0.5) and leave with ``1 - loop_prob``.
  As in any HMM concatenation, ``a a`` without a blank between them is two symbols (at the price of one more exit
  and entry).  Trailing blanks after the last symbol are the same blank state before the end of the sentence.
- ``"ctc"``: plain CTC: no transition costs, and a symbol repeated needs a blank between its copies.

A hypothesis's score is ``acoustic_scale · Σ log p_ac + lm_weight · Σ ln P_LM + Σ ln(transitions) +
insertion_penalty · #symbols``, the LM including ``</s>`` at the end.  **Choices where Kaldi's HCLG search is
not reproduced literally** (all equivalent for the best path and for the paths of the lattice; they only change
what the beam sees):

- In HCLG the output symbol sits on the arc *entering* the symbol's HMM, i.e. a blank frame already belongs to a
  particular next symbol.  Here a run of blanks is one hypothesis and the next symbol is chosen at its first
  symbol frame; the blank frames still belong to that symbol's arc.
- Before a frame is expanded, labels whose log-posterior is below the frame's maximum by more than
  ``beam / acoustic_scale`` are dropped (acoustic pre-pruning: a hypothesis using such a label is more than the
  beam behind the same history continued with the frame's best label, wherever the topology allows that
  continuation); then hypotheses worse than the frame's best by more than ``beam`` are dropped and at most
  ``max_active`` kept.
- LM: the state of a hypothesis is the LM's ``state(context)`` where it offers one
  (:class:`mtlnb.camera_primus.decoding.ngram_lm.NGramLM` does), else the last ``order - 1`` symbols.  A symbol
  the LM does not know (absent from its ``vocabulary``, and the LM has no ``<unk>``) scores ``oov_logprob`` and
  empties the history.  LM look-ups are cached per decoder.

Stages of one decode (after pyctcdecode's beam search, each a function tested on its own)
------------------------------------------------------------------------------------------
1. :func:`_as_logp` validates and floors the posteriors; :func:`_frame_labels` pre-prunes each frame's labels and
   scales them.
2. Per frame, on the hypotheses of the previous frame: :func:`_stay` (self-loops), :func:`_enter_from_blank`
   (a blank run goes on to a symbol; its merges deferred), :func:`_leave_symbols` (a symbol ends at a lattice
   node and the next symbol or blank starts), then :meth:`_Frame.survivors` (the beam and ``max_active``).
   :class:`_Frame` holds the frame's hypotheses and merges them (:meth:`_Frame.merge`, :meth:`_Frame.resolve`);
   :class:`_LMScorer` scores the LM.
3. :meth:`_LatticeBuilder.close_sentence` (``</s>`` arcs into the final node), then :func:`_lattice_from_search`
   (arc scores in closed form, lattice-beam pruning).

Lattice construction
--------------------
Lattice nodes are symbol boundaries: (frame boundary, LM state, last symbol).  Each hypothesis carries, besides
its Viterbi score, the set of lattice nodes its current symbol may have started from (with the best
blank/symbol boundary for each and its score relative to the best); hypotheses that merge keep all start nodes
within ``lattice_beam`` — none further away can lie on a path within the lattice beam, because the merged
hypotheses share their future.  When a symbol ends, one arc per start node is recorded.  The arc's acoustic
score, transition costs and LM score are kept apart, as in a Kaldi lattice.  Finally arcs whose best complete
path (at the decoding scales) is worse than the best path by more than ``lattice_beam`` are pruned with a
forward-backward pass (Kaldi's lattice beam).  Every path of a lattice covers every frame exactly once.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple, Protocol, Sequence

import numpy as np

from mtlnb.camera_primus.decoding.lattice import EPS, Lattice
from mtlnb.camera_primus.decoding.ngram_lm import BOS, EOS, UNK
from mtlnb.camera_primus.networks import ctc_tasks

LOG_FLOOR = math.log(1e-11)  # the baseline replaced -inf (and we floor anything lower) with log(1e-11)
TOPOLOGIES = ("kaldi", "ctc")


class LanguageModel(Protocol):
    """What the decoder needs from a symbol n-gram model (:class:`~mtlnb.camera_primus.decoding.ngram_lm.NGramLM`
    satisfies it).

    ``logprob(token, context)`` is the natural-log probability of ``token`` (a symbol or ``"</s>"``) after
    ``context`` (preceding symbols, most recent last, starting with ``"<s>"``).  Optional extras the decoder uses
    when present: ``state(context)`` (a hashable reduced context, so that hypotheses the model cannot tell apart
    merge) and ``vocabulary`` (the symbols it knows).
    """

    order: int

    def logprob(self, token: str, context: tuple[str, ...]) -> float: ...


# ---------------------------------------------------------------------------------------------------------------
# inputs


def _as_logp(logp, n_symbols: int | None, where: str) -> np.ndarray:
    """Validate a CTC log-posterior matrix and floor it at ``LOG_FLOOR``; float64 ``(T, C)``."""
    try:
        x = np.asarray(logp, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: logp must be a numeric (T, |V|+1) array ({err})") from None
    if x.ndim != 2:
        raise ValueError(f"{where}: logp must have shape (T, |V|+1), got {x.shape}")
    if n_symbols is not None and x.shape[1] != n_symbols + 1:
        raise ValueError(
            f"{where}: logp has {x.shape[1]} columns but the vocabulary has {n_symbols} symbols "
            f"(expected |V|+1 = {n_symbols + 1}, blank last)"
        )
    if x.shape[1] < 1:
        raise ValueError(f"{where}: logp needs at least the blank column")
    if np.isnan(x).any():
        raise ValueError(f"{where}: logp contains NaN")
    if (x > 1e-6).any():
        raise ValueError(f"{where}: logp must be log-probabilities (≤ 0); max is {x.max():.4g}")
    return np.maximum(x, LOG_FLOOR)


def greedy_decode(logp, vocabulary: Sequence[str]) -> list[str]:
    """Greedy CTC decoding of one sample, as symbols: :func:`mtlnb.camera_primus.networks.ctc_tasks.greedy_decode`
    (best label per frame, repeats collapsed, blanks dropped; the baseline's unimodal decoding) on a batch of one.

    Parameters
    ----------
    logp : array_like, shape (T, |V|+1)
        CTC log-posteriors (or posteriors, or logits: only the per-frame argmax is used); blank = last column.
    vocabulary : sequence of str, length |V|

    Returns
    -------
    list of str, at most T symbols
    """
    try:
        x = np.asarray(logp, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"greedy_decode: logp must be a numeric (T, |V|+1) array ({err})") from None
    if x.ndim != 2 or x.shape[1] != len(vocabulary) + 1:
        raise ValueError(
            f"greedy_decode: logp must have shape (T, |V|+1) = (T, {len(vocabulary) + 1}), got {x.shape}"
        )
    (ids,) = ctc_tasks.greedy_decode(x[None], np.array([len(x)]), len(vocabulary))
    return [vocabulary[i] for i in ids]


# ---------------------------------------------------------------------------------------------------------------
# settings and LM look-ups


@dataclass(frozen=True)
class DecoderConfig:
    """Word-graph search settings; defaults are the baseline's Kaldi recipe (``kaldi/run.sh``)."""

    acoustic_scale: float = 2.5  # ASF: --acoustic-scale; CTC posteriors are weighed 2.5× against the LM in the search
    lm_weight: float = 1.0  # GSF=1.0: scale of ln P_LM inside the graph score (Kaldi's LM scale at decoding)
    insertion_penalty: float = 0.0  # the recipe defines WIP=-0.8 but passes it to no tool, so in effect 0
    beam: float = 15.0  # --beam: hypotheses this far (scaled log units) below the frame's best are dropped
    lattice_beam: float = 12.0  # --lattice-beam: arcs whose best path is this far below the best path are dropped
    max_active: int = 2000  # hypotheses kept per frame; the recipe's 2e9 means none, a cap bounds time on flat output
    topology: str = "kaldi"  # "kaldi": optional blank + symbol HMM (the baseline's); "ctc": plain CTC (an option)
    loop_prob: float = 0.5  # HMM_LOOP_PROB: self-loop of the blank and the symbol state
    blank_entry_prob: float = 0.5  # HMM_NAC_PROB: a symbol is entered through its optional blank with this probability
    oov_logprob: float = math.log(1e-6)  # ln P_LM of a symbol the LM does not know (and cannot map to <unk>)

    def __post_init__(self):
        if not self.acoustic_scale > 0:
            raise ValueError(f"DecoderConfig.acoustic_scale must be > 0, got {self.acoustic_scale}")
        for name in ("beam", "lattice_beam"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"DecoderConfig.{name} must be ≥ 0, got {getattr(self, name)}")
        if self.max_active < 1:
            raise ValueError(f"DecoderConfig.max_active must be ≥ 1, got {self.max_active}")
        if self.topology not in TOPOLOGIES:
            raise ValueError(f"DecoderConfig.topology must be one of {TOPOLOGIES}, got {self.topology!r}")
        for name in ("loop_prob", "blank_entry_prob"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"DecoderConfig.{name} must be in (0, 1), got {getattr(self, name)}")
        if not self.oov_logprob <= 0:
            raise ValueError(f"DecoderConfig.oov_logprob must be ≤ 0, got {self.oov_logprob}")

    def transition_logprobs(self) -> tuple[float, float, float, float]:
        """``(loop, exit, direct entry, entry through blank)`` log-probabilities; all 0 for plain CTC."""
        if self.topology == "ctc":
            return 0.0, 0.0, 0.0, 0.0
        return (
            math.log(self.loop_prob),
            math.log1p(-self.loop_prob),
            math.log1p(-self.blank_entry_prob),
            math.log(self.blank_entry_prob),
        )


class _LMScorer:
    """LM look-ups for the search on integer state ids; one per decoder, shared across samples.

    LM states (``lm.state(context)``, else the last ``order - 1`` symbols) are interned as ints so that the search's
    hypothesis keys are plain ints (cheap to hash, unlike nested tuples of str).  With an LM that offers
    ``score_next`` and ``token_index`` (:class:`~mtlnb.camera_primus.decoding.ngram_lm.NGramLM`) the probabilities of
    all symbols after a state come from one vectorised row (equal bit for bit to ``logprob``); with any other LM they
    come from ``logprob`` calls, cached per (state, symbol).  For the search, :meth:`key_row` keeps per state two flat
    arrays over the symbols, filled lazily: the hypothesis key each symbol leads to and its ``lm_weight · ln P`` (the
    search reads a few entries per frame, where Python-level indexing beats NumPy); with a bigram the successor
    depends on the symbol alone, so all states share one key array.

    OOV rule: a symbol the LM does not know (its ``vocabulary`` lacks it and has no ``<unk>``) scores
    ``oov_logprob`` and cuts the history (the next state is the empty context), so the LM never sees it.
    Symbol ``-1`` is ``</s>`` (no next state).
    """

    def __init__(self, lm: LanguageModel | None, vocabulary: Sequence[str], oov_logprob: float, cache_size: int,
                 lm_weight: float = 1.0):
        self.lm = lm
        self.lm_weight = lm_weight
        self.vocabulary = list(vocabulary)
        self.oov_logprob = oov_logprob
        self.cache_size = cache_size
        self.n_symbols = len(self.vocabulary)
        self.state_id: dict[tuple, int] = {}  # LM state -> id (grows with the states reached: bounded by the LM)
        self.states: list[tuple] = []  # id -> LM state
        self.key_rows: dict[int, tuple] = {}  # sid -> (successor key per symbol, weighted ln P per symbol)
        self.context_cache: dict[tuple, int] = {}  # last order - 1 symbols -> their state's id (NGramLM path)
        self.lp_cache: dict[int, float] = {}  # the same key -> ln P, for LMs without score_next
        self.rows: dict[int, array] = {}  # sid -> ln P of every symbol and </s> (score_next path)
        self.columns = None  # decoder symbol (and </s> at index |V|) -> column of the row; None: no row path
        self.shared_keys = None  # one key row for every state where the successor depends on the symbol alone
        if lm is None:
            self.initial = self._intern(())
            self.known = None
            return
        order = int(lm.order)
        if order < 1:
            raise ValueError(f"WordGraphDecoder: lm.order must be ≥ 1, got {order}")
        self.keep = order - 1
        self.reduce = getattr(lm, "state", None)
        lm_vocab = getattr(lm, "vocabulary", None)
        self.known = None if lm_vocab is None or UNK in lm_vocab else set(lm_vocab)
        self.initial = self._intern(self._state((BOS,)))
        if hasattr(lm, "score_next") and hasattr(lm, "token_index") and self.reduce is not None:
            try:
                cols = [
                    -1 if self.known is not None and s not in self.known else int(lm.token_index(s))
                    for s in self.vocabulary
                ]
                cols.append(int(lm.token_index(EOS)))
            except ValueError:  # a symbol the LM refuses: keep the per-call path, which raises where it is used
                cols = None
            if cols is not None:
                self.columns = np.asarray(cols, dtype=np.int64)
                self.has_oov = bool((self.columns < 0).any())
                if self.keep <= 1:  # successors come from the last symbol alone (see _next): shared by all states
                    self.shared_keys = array("q", [-1]) * self.n_symbols

    def _intern(self, state: tuple) -> int:
        sid = self.state_id.get(state)
        if sid is None:
            sid = self.state_id[state] = len(self.states)
            self.states.append(state)
        return sid

    def _state(self, context: tuple[str, ...]) -> tuple:
        if self.keep == 0:
            return ()
        if self.reduce is not None:
            return tuple(self.reduce(context))
        return context[-self.keep :]

    def _row(self, sid: int) -> array:
        """ln P of every decoder symbol and </s> (last) after state ``sid`` (score_next path).

        Kept as an ``array('d')``: the search reads single entries, and indexing one gives a Python float (the
        same double) far more cheaply than a NumPy gather or scalar."""
        row = self.rows.get(sid)
        if row is None:
            full = self.lm.score_next(self.states[sid])
            row = (np.where(self.columns >= 0, full[self.columns], self.oov_logprob) if self.has_oov
                   else full[self.columns])
            row = array("d", np.ascontiguousarray(row, dtype=np.float64).tobytes())
            if len(self.rows) >= 4096:  # ~23 MB at |V| = 700; rows are cheap to rebuild
                self.rows.clear()
            self.rows[sid] = row
        return row

    def _next(self, sid: int, symbol: int) -> int:
        """Successor state id after ``symbol`` (≥ 0)."""
        if self.lm is None:
            return sid
        token = self.vocabulary[symbol]
        if self.known is not None and token not in self.known:
            return self._intern(self._state(()))
        context = tuple(self.states[sid]) + (token,)
        if self.columns is None:
            return self._intern(self._state(context))
        # NGramLM.state only reads the last order - 1 symbols, so states that share them share successors
        # (with a bigram: every state); caching on that suffix saves most state() calls.
        context = context[len(context) - self.keep :] if self.keep else ()
        nxt = self.context_cache.get(context)
        if nxt is None:
            if len(self.context_cache) >= self.cache_size:  # suffixes of search paths: unbounded over a fold
                self.context_cache.clear()
            nxt = self.context_cache[context] = self._intern(self._state(context))
        return nxt

    def logprob(self, sid: int, symbol: int) -> float:
        """ln P of ``symbol`` (``-1``: ``</s>``) after state ``sid``."""
        if self.lm is None:
            return 0.0
        if self.columns is not None:
            return self._row(sid)[symbol]  # index -1 is </s>
        key = sid * (self.n_symbols + 1) + symbol
        lp = self.lp_cache.get(key)
        if lp is None:
            state = self.states[sid]
            if symbol < 0:
                lp = float(self.lm.logprob(EOS, state))
            else:
                token = self.vocabulary[symbol]
                if self.known is not None and token not in self.known:
                    lp = self.oov_logprob
                else:
                    lp = float(self.lm.logprob(token, state))
            if len(self.lp_cache) >= self.cache_size:
                self.lp_cache.clear()
            self.lp_cache[key] = lp
        return lp

    def key_row(self, sid: int) -> tuple[array, array]:
        """Per symbol c after state ``sid``: the search key of the symbol hypothesis it starts,
        ``(successor · (|V|+1) + c + 1) · 2`` (-1: not computed yet, see :meth:`key`), and ``lm_weight · ln P(c)``
        (NaN: not computed yet, see :meth:`weighted`).  Filled lazily and kept across frames and samples."""
        kr = self.key_rows.get(sid)
        if kr is None:
            if len(self.key_rows) >= 2048:  # 16 bytes per symbol: ~23 MB at |V| = 700
                self.key_rows.clear()
            if self.shared_keys is not None:
                keys = self.shared_keys
            else:
                keys = array("q", [-1]) * self.n_symbols
            if self.lm is None:
                weighted = array("d", [self.lm_weight * 0.0]) * self.n_symbols
            elif self.columns is not None:
                row = self._row(sid)
                weighted = array("d", (self.lm_weight * np.frombuffer(row, dtype=np.float64)[:-1]).tobytes())
            else:
                weighted = array("d", [math.nan]) * self.n_symbols
            kr = self.key_rows[sid] = (keys, weighted)
        return kr

    def key(self, sid: int, symbol: int, keys: array) -> int:
        """Compute (and store in ``keys``, the row of ``sid``) the search key of ``symbol`` after ``sid``."""
        k = keys[symbol] = (self._next(sid, symbol) * (self.n_symbols + 1) + symbol + 1) * 2
        return k

    def weighted(self, sid: int, symbol: int, weighted: array) -> float:
        """Compute (and store in ``weighted``, the row of ``sid``) ``lm_weight · ln P(symbol)`` after ``sid``."""
        w = weighted[symbol] = self.lm_weight * self.logprob(sid, symbol)
        return w


# ---------------------------------------------------------------------------------------------------------------
# search stages
#
# A hypothesis is ``key -> (score, alts)``.  The key codes (LM state id ``sid``, last symbol, in its blank?) as the
# int ``(sid · C + last + 1) · 2 + in_blank`` (C = |V| + 1 classes; ``last`` -1 before the first symbol): see
# :func:`_hyp_key`.  The hot loops decode it inline.  ``score`` is the Viterbi score (scaled natural log);
# ``alts`` maps each lattice node the current symbol may have started from to (score relative to the
# hypothesis, first symbol frame or -1 while in the blank), deltas ≤ 0, the best 0.  An ``alts`` dict may be
# shared between hypotheses (and with the previous frame's): only a dict a merge of this frame made is updated
# in place (:attr:`_Frame.owned`).  Dict insertion order is part of the algorithm: it fixes the node numbering
# and which of equal scores survive ``max_active``.


_first = itemgetter(0)  # a hypothesis's score
_new_tuple = tuple.__new__


def _hyp_key(sid: int, last: int, in_blank: bool, n_classes: int) -> int:
    """Search key of a hypothesis: LM state id ``sid``, last symbol ``last`` (-1: none yet), whether it is in the
    blank before its next symbol; ``n_classes`` = |V| + 1."""
    return (sid * n_classes + last + 1) * 2 + int(in_blank)


def _split_key(key: int, n_classes: int) -> tuple[int, int, bool]:
    """Inverse of :func:`_hyp_key`: ``(sid, last, in_blank)``."""
    sid, last = divmod(key >> 1, n_classes)
    return sid, last - 1, bool(key & 1)


class _Costs(NamedTuple):
    """Log-probabilities of the topology's transitions (all 0 for plain CTC) and the insertion penalty."""

    loop: float  # a state's self-loop
    exit: float  # leaving a state
    direct: float  # entering a symbol straight into its symbol state
    through_blank: float  # entering a symbol through its optional blank
    insertion: float  # added per symbol

    @classmethod
    def of(cls, config: DecoderConfig) -> _Costs:
        return cls(*config.transition_logprobs(), config.insertion_penalty)


class _Labels(NamedTuple):
    """The labels of one frame worth expanding, with ``acoustic_scale · log p`` (scaled natural log)."""

    symbols: list  # non-blank columns kept, in column order
    scores: list  # their scaled log-posteriors
    by_symbol: dict  # symbol -> scaled log-posterior (the same pairs)
    blank: float | None  # the blank's scaled log-posterior, None when pre-pruned


def _frame_labels(x: np.ndarray, beam: float, acoustic_scale: float) -> list[_Labels]:
    """Stage 1: per frame, the labels within ``beam / acoustic_scale`` of the frame's best (see the module notes).

    Parameters
    ----------
    x : ndarray float64, shape (T, C)
        Floored natural-log posteriors, blank last (:func:`_as_logp`).
    beam, acoustic_scale : float

    Returns
    -------
    list of _Labels, length T
    """
    T, C = x.shape
    if not T:
        return []
    blank = C - 1
    # np.nonzero lists the labels in column order, so the blank (last column), when kept, is a frame's last label
    rows, cols = np.nonzero(x >= (x.max(axis=1) - beam / acoustic_scale)[:, None])
    starts = np.searchsorted(rows, np.arange(T + 1)).tolist()
    cols_l = cols.tolist()
    vals_l = (acoustic_scale * x[rows, cols]).tolist()
    frames = []
    for t in range(T):
        lo, hi = starts[t], starts[t + 1]
        if hi > lo and cols_l[hi - 1] == blank:
            blank_ac = vals_l[hi - 1]
            hi -= 1
        else:
            blank_ac = None
        syms = cols_l[lo:hi]
        acs = vals_l[lo:hi]
        # tuple.__new__ skips the NamedTuple constructor's Python frame (one per frame: it shows in the timings)
        frames.append(_new_tuple(_Labels, (syms, acs, dict(zip(syms, acs)) if syms else {}, blank_ac)))
    return frames


class _LatticeBuilder:
    """The lattice under construction: nodes (frame boundary, LM state id) and arcs, in creation order.

    Node 0 is the start.  Arc lists: ``src``, ``dst``, ``symbol`` (-1: ``</s>``), ``t_start`` (first frame),
    ``t_symbol`` (first symbol frame), ``t_end`` (one past the last frame), ``sid`` (the LM state id before the
    arc's symbol: LM scores are looked up once, after the search).
    """

    def __init__(self, initial_sid: int):
        self.node_time = [0]
        self.node_lm = [initial_sid]
        self.src: list[int] = []
        self.dst: list[int] = []
        self.symbol: list[int] = []
        self.t_start: list[int] = []
        self.t_symbol: list[int] = []
        self.t_end: list[int] = []
        self.sid: list[int] = []

    def close_symbol(self, alts: dict, symbol: int, t: int, sid: int) -> int:
        """End ``symbol`` of a hypothesis at frame boundary ``t``: a new node (LM state ``sid`` after the symbol)
        and one arc per start node in ``alts``; returns the node."""
        node_time, node_lm = self.node_time, self.node_lm
        node = len(node_time)
        node_time.append(t)
        node_lm.append(sid)
        starts = list(alts)
        k = len(starts)
        self.src.extend(starts)
        self.dst.extend([node] * k)
        self.symbol.extend([symbol] * k)
        self.t_start.extend([node_time[n] for n in starts])
        self.t_symbol.extend([tb for _, tb in alts.values()])
        self.t_end.extend([t] * k)
        self.sid.extend([node_lm[n] for n in starts])
        return node

    def close_sentence(self, tokens: dict, T: int, n_classes: int) -> None:
        """Stage 3: close the open symbols of the surviving hypotheses ``tokens``, then ``</s>`` arcs from their end
        nodes (or, for a hypothesis in its trailing blank, from its start nodes) into the final node."""
        finals = []  # (start node, first trailing-blank frame, LM state id)
        if T == 0:
            finals.append((0, 0, self.node_lm[0]))
        for key, (s, alts) in tokens.items():
            sid, last, in_blank = _split_key(key, n_classes)
            if in_blank:
                for n in alts:
                    finals.append((n, self.node_time[n], sid))
            else:
                finals.append((self.close_symbol(alts, last, T, sid), T, sid))
        final = len(self.node_time)
        self.node_time.append(T)
        self.node_lm.append(-1)  # after </s>: no state
        for n, ts, sid in finals:
            self.src.append(n)
            self.dst.append(final)
            self.symbol.append(-1)
            self.t_start.append(ts)
            self.t_symbol.append(T)
            self.t_end.append(T)
            self.sid.append(sid)


class _Frame:
    """The hypotheses of the frame being expanded, ``new`` (key -> (score, alts)), with deferred merges.

    :func:`_enter_from_blank` makes many contributions to a key that the beam drops anyway; they wait in ``pend``
    (in order) and are merged only when the key is touched again (:func:`_leave_symbols`) or survives the pruning
    (:meth:`survivors`).  The merge sequence per key is the same as merging at once; ``top`` keeps the best score
    of a key with pending contributions (the score a merge would give).  ``owned`` holds the keys whose alts dict
    a merge of this frame made (safe to update in place).
    """

    __slots__ = ("new", "pend", "top", "owned", "nbeam")

    def __init__(self, new: dict, lattice_beam: float):
        self.new = new
        self.pend: dict = {}
        self.top: dict = {}
        self.owned: set = set()
        self.nbeam = -lattice_beam

    def merge(self, key: int, old: tuple, score: float, alts: dict) -> tuple:
        """Two hypotheses with the same key: the better score, start nodes within the lattice beam of it."""
        owned, nbeam = self.owned, self.nbeam
        s0, alts0 = old
        mine = key in owned
        if score > s0:
            s0, alts0, score, alts = score, alts, s0, alts0
            mine = False  # the incoming alts may be shared (``moved`` serves every symbol)
        shift = score - s0
        if shift < nbeam:  # the worse one has no start node within the lattice beam
            if not mine:
                owned.discard(key)
            return s0, alts0
        # other alts dicts are shared between hypotheses (and the previous frame's): never modified in place
        merged = alts0 if mine else dict(alts0)
        owned.add(key)
        for n, (d, tb) in alts.items():
            d += shift
            if d >= nbeam:
                cur = merged.get(n)
                if cur is None or d > cur[0]:
                    merged[n] = (d, tb)
        return s0, merged

    def resolve(self, k: int) -> tuple:
        """:meth:`merge` of every pending contribution to ``k`` in turn (inlined: most of them are dropped at once);
        stores and returns the merged hypothesis."""
        new, owned, nbeam = self.new, self.owned, self.nbeam
        s0, alts0 = new[k]
        mine = k in owned
        for sc, alts in self.pend.pop(k):
            if sc > s0:
                shift = s0 - sc
                if shift < nbeam:
                    s0, alts0, mine = sc, alts, False
                    continue
                s0, alts0, alts, mine = sc, alts, alts0, False
            else:
                shift = sc - s0
                if shift < nbeam:
                    continue
            if not mine:
                alts0 = dict(alts0)
                mine = True
            for n, (d, tb) in alts.items():
                d += shift
                if d >= nbeam:
                    cur = alts0.get(n)
                    if cur is None or d > cur[0]:
                        alts0[n] = (d, tb)
        if mine:
            owned.add(k)
        else:
            owned.discard(k)
        del self.top[k]
        cur = new[k] = (s0, alts0)
        return cur

    def best(self) -> float:
        """Best score of the frame so far, pending contributions included (``-inf`` when empty)."""
        return max(max(map(_first, self.new.values()), default=-math.inf), max(self.top.values(), default=-math.inf))

    def survivors(self, cutoff: float, max_active: int) -> dict:
        """The pruning: hypotheses scoring ≥ ``cutoff``, at most ``max_active`` of the best (a stable sort: equal
        scores keep their order), their pending merges resolved; key -> (score, alts) in frame order."""
        new, pend, resolve = self.new, self.pend, self.resolve
        top_get = self.top.get
        kept = [(sc, k) for k, v in new.items() if (sc := top_get(k, v[0])) >= cutoff]
        if len(kept) > max_active:
            kept.sort(key=lambda item: item[0], reverse=True)
            kept = kept[:max_active]
        elif not pend and len(kept) == len(new):  # every hypothesis kept as it is (most frames): no copy
            return new
        return {k: resolve(k) if k in pend else new[k] for _, k in kept}


def _stay(tokens: dict, labels: _Labels, n_classes: int, t_loop: float) -> dict:
    """Stage 2a: every hypothesis stays in its state (self-loop) where the frame kept its label.

    Keys stay distinct, so nothing merges; returns the frame's first hypotheses (alts shared with ``tokens``)."""
    new = {}
    blank_ac, acd = labels.blank, labels.by_symbol
    for key, (s, alts) in tokens.items():
        if key & 1:
            if blank_ac is not None:
                new[key] = (s + blank_ac + t_loop, alts)
        else:
            a = acd.get((key >> 1) % n_classes - 1)
            if a is not None:
                new[key] = (s + a + t_loop, alts)
    return new


def _enter_from_blank(tokens: dict, labels: _Labels, t: int, frame: _Frame, lm: _LMScorer, n_classes: int,
                      costs: _Costs) -> None:
    """Stage 2b: every hypothesis in a blank goes on to each kept symbol of frame ``t`` (the blank run and the
    symbol form one arc, whose symbol starts at ``t``); a contribution to a key already in ``frame`` is deferred."""
    new, pend, top = frame.new, frame.pend, frame.top
    new_get = new.get
    key_rows, key_row = lm.key_rows, lm.key_row
    syms, acs = labels.symbols, labels.scores
    t_exit, ins = costs.exit, costs.insertion
    for key, (s, alts) in tokens.items():
        if not key & 1:
            continue
        sid = (key >> 1) // n_classes
        keys, wlp = key_rows.get(sid) or key_row(sid)
        moved = {n: (d, t) for n, (d, _) in alts.items()}
        base = s + t_exit
        for c, a in zip(syms, acs):
            k2 = keys[c]
            if k2 < 0:
                k2 = lm.key(sid, c, keys)
            w = wlp[c]
            if w != w:  # NaN: not looked up yet
                w = lm.weighted(sid, c, wlp)
            sc = base + a + w + ins
            old = new_get(k2)
            if old is None:
                new[k2] = (sc, moved)
            else:
                waiting = pend.get(k2)
                if waiting is None:
                    pend[k2] = [(sc, moved)]
                    top[k2] = sc if sc > old[0] else old[0]
                else:
                    waiting.append((sc, moved))
                    if sc > top[k2]:
                        top[k2] = sc


def _leave_symbols(tokens: dict, labels: _Labels, t: int, best: float, frame: _Frame, builder: _LatticeBuilder,
                   lm: _LMScorer, n_classes: int, costs: _Costs, beam: float, ctc: bool) -> float:
    """Stage 2c: every hypothesis in a symbol (at ``t = 0``: the start) ends it at boundary ``t`` and enters each
    kept symbol directly or the blank before its next symbol.  Successors worse than the frame's best by more
    than ``beam`` are not made; a lattice node is created only if a successor survives.  Returns the frame's
    best score so far."""
    new, pend = frame.new, frame.pend
    new_get = new.get
    key_rows, key_row = lm.key_rows, lm.key_row
    syms, acs, blank_ac = labels.symbols, labels.scores, labels.blank
    t_direct, t_nac, ins = costs.direct, costs.through_blank, costs.insertion
    C = n_classes
    if t == 0:
        exits = [(0.0, _hyp_key(lm.initial, -1, False, C), None)]  # the start: initial LM state, no symbol yet
    else:
        exits = [(s + costs.exit, key, alts) for key, (s, alts) in tokens.items() if not key & 1]
    for f, key, alts in exits:
        sid, last = divmod(key >> 1, C)
        last -= 1
        succ = []
        cut = best - beam
        if syms:
            keys, wlp = key_rows.get(sid) or key_row(sid)
            base = f + t_direct
            for c, a in zip(syms, acs):
                if ctc and c == last:
                    continue
                k2 = keys[c]
                if k2 < 0:
                    k2 = lm.key(sid, c, keys)
                w = wlp[c]
                if w != w:
                    w = lm.weighted(sid, c, wlp)
                sc = base + a + w + ins
                if sc >= cut:
                    succ.append((k2, sc))
        if blank_ac is not None:
            sc = f + t_nac + blank_ac
            if sc >= cut:
                succ.append((key | 1, sc))
        if not succ:
            continue
        node = 0 if alts is None else builder.close_symbol(alts, last, t, sid)
        for k2, sc in succ:
            fresh = {node: (0.0, -1 if k2 & 1 else t)}
            old = new_get(k2)
            if old is None:
                new[k2] = (sc, fresh)
            else:
                if k2 in pend:
                    old = frame.resolve(k2)
                new[k2] = frame.merge(k2, old, sc, fresh)
            if sc > best:
                best = sc
    return best


def _lattice_from_search(vocabulary: Sequence[str], config: DecoderConfig, logp: np.ndarray,
                         builder: _LatticeBuilder, lm_logprob) -> Lattice:
    """Stage 3: the :class:`Lattice` of a finished search: arc scores in closed form, then lattice-beam pruning.

    Parameters
    ----------
    vocabulary : sequence of str, length |V|
    config : DecoderConfig
    logp : ndarray float64, shape (T, |V|+1)
        The floored log-posteriors the search ran on.
    builder : _LatticeBuilder
        Nodes and arcs of the search (closed with :meth:`_LatticeBuilder.close_sentence`).
    lm_logprob : callable (sid, symbol) -> float
        Unweighted ``ln P_LM`` of ``symbol`` (-1: ``</s>``) after LM state ``sid`` (:meth:`_LMScorer.logprob`).

    Notes
    -----
    An arc's acoustic score is ``Σ log p(blank)`` over ``[t_start, t_symbol)`` plus ``Σ log p(symbol)`` over
    ``[t_symbol, t_end)`` (differences of cumulative sums); its transitions are counted from the same frame
    boundaries: entry (through the blank: ``through_blank`` + the blank's loops + its exit; else ``direct``), the
    symbol's loops and its exit.
    """
    lm = np.asarray([lm_logprob(sid, y) for sid, y in zip(builder.sid, builder.symbol)], dtype=np.float64)
    node_time = np.asarray(builder.node_time, dtype=np.int64)
    src = np.asarray(builder.src, dtype=np.int64)
    dst = np.asarray(builder.dst, dtype=np.int64)
    sym = np.asarray(builder.symbol, dtype=np.int64)
    ts = np.asarray(builder.t_start, dtype=np.int64)
    tb = np.asarray(builder.t_symbol, dtype=np.int64)
    te = np.asarray(builder.t_end, dtype=np.int64)
    T, C = logp.shape
    blank = C - 1
    cum = np.zeros((T + 1, C))
    np.cumsum(logp, axis=0, out=cum[1:])
    symc = np.where(sym >= 0, sym, blank)
    acoustic = cum[tb, blank] - cum[ts, blank] + cum[te, symc] - cum[tb, symc]
    t_loop, t_exit, t_direct, t_nac = config.transition_logprobs()
    n_blank = tb - ts
    is_sym = sym >= 0
    entry_blank = t_nac + (n_blank - 1) * t_loop + t_exit  # into the blank, its loops, then on to the symbol
    entry = np.where(n_blank > 0, entry_blank, np.where(is_sym, t_direct, 0.0))
    body = np.where(is_sym, (te - tb - 1) * t_loop + t_exit, 0.0)  # the symbol's loops and its exit
    graph = config.lm_weight * lm + entry + body + config.insertion_penalty * is_sym
    lat = Lattice(
        vocabulary=tuple(vocabulary),
        num_nodes=len(node_time),
        src=src,
        dst=dst,
        symbol=sym,
        acoustic=acoustic,
        graph=graph,
        lm=lm,
        t_start=ts,
        t_symbol=tb,
        t_end=te,
        node_time=node_time,
        num_frames=T,
        config=config,
    )
    return lat.pruned(config.acoustic_scale, 1.0, config.lattice_beam)


# ---------------------------------------------------------------------------------------------------------------
# decoder


class WordGraphDecoder:
    """Builds :class:`~mtlnb.camera_primus.decoding.lattice.Lattice` word graphs from CTC log-posteriors with an
    optional n-gram LM.

    Parameters
    ----------
    vocabulary : sequence of str
        Symbol of each non-blank column of the posteriors (|V| entries; blank is column |V|).
    lm : LanguageModel, optional
        Symbol n-gram model; ``None`` decodes without one (all LM scores 0).
    config : DecoderConfig, optional

    Notes
    -----
    LM look-ups are cached per decoder, so decode a whole test set with one decoder.
    """

    def __init__(self, vocabulary: Sequence[str], lm: LanguageModel | None = None, config: DecoderConfig | None = None):
        vocabulary = list(vocabulary)
        if not all(isinstance(s, str) and s for s in vocabulary):
            raise ValueError("WordGraphDecoder: vocabulary must be a list of non-empty str")
        if len(set(vocabulary)) != len(vocabulary):
            raise ValueError("WordGraphDecoder: vocabulary has duplicate symbols")
        if EPS in vocabulary:
            raise ValueError(f"WordGraphDecoder: {EPS!r} is reserved for confusion-network epsilon")
        self.vocabulary = tuple(vocabulary)
        self.config = config if config is not None else DecoderConfig()
        self.lm = lm
        # bounds the per-call ln P cache and the context-suffix cache: ~20 MB each at most
        self._lm = _LMScorer(lm, vocabulary, self.config.oov_logprob, cache_size=200_000,
                             lm_weight=self.config.lm_weight)

    def decode(self, logp) -> Lattice:
        """Word graph of one sample.

        Parameters
        ----------
        logp : array_like, shape (T, |V|+1)
            Natural-log CTC posteriors, blank last.

        Returns
        -------
        Lattice
            ``num_frames`` = T; every path covers the T frames once.
        """
        cfg = self.config
        x = _as_logp(logp, len(self.vocabulary), "WordGraphDecoder.decode")
        T, C = x.shape
        lm = self._lm
        costs = _Costs.of(cfg)
        beam, lattice_beam, max_active, ctc = cfg.beam, cfg.lattice_beam, cfg.max_active, cfg.topology == "ctc"
        builder = _LatticeBuilder(lm.initial)
        tokens: dict = {}  # the hypotheses after the previous frame
        for t, labels in enumerate(_frame_labels(x, beam, cfg.acoustic_scale)):
            frame = _Frame(_stay(tokens, labels, C, costs.loop), lattice_beam)
            if labels.symbols:
                _enter_from_blank(tokens, labels, t, frame, lm, C, costs)
            best = _leave_symbols(tokens, labels, t, frame.best(), frame, builder, lm, C, costs, beam, ctc)
            tokens = frame.survivors(best - beam, max_active)
        builder.close_sentence(tokens, T, C)
        return _lattice_from_search(self.vocabulary, cfg, x, builder, lm.logprob)


def word_graph(logp, vocabulary: Sequence[str], lm: LanguageModel | None = None, config: DecoderConfig | None = None):
    """One-off :meth:`WordGraphDecoder.decode` (use a decoder object for many samples: it caches LM look-ups)."""
    return WordGraphDecoder(vocabulary, lm, config).decode(logp)
