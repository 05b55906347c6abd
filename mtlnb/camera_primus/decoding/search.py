"""CTC word graphs: a beam search over the CTC topology with a symbol n-gram LM that yields a lattice, and what is
read off a lattice (best path, N-best, arc posteriors, confusion network, MBR decoding).

The baseline (``late-fusion-baseline.md`` §6) turned each network's per-frame posteriors into a word graph with
Kaldi (``latgen-faster-mapped --acoustic-scale=2.5 --beam=15 --lattice-beam=12``) over an HCLG graph built from an
SRILM n-gram and a two-state HMM per symbol; this module is our own implementation of the same pipeline.

Inputs
------
``logp``: float array ``(T, |V| + 1)``, natural-log softmax of a CTC network, **blank = last column** (the
baseline's convention), used directly as log-likelihoods (no prior division, §6).  ``-inf`` and anything below
``log(1e-11)`` are floored to ``log(1e-11)``, as the baseline did.  ``vocabulary[i]`` names column ``i``.

Search (:class:`WordGraphDecoder`)
----------------------------------
Token passing over (LM state, last symbol, CTC state).  Two topologies (``DecoderConfig.topology``):

- ``"kaldi"`` (default, §6): each symbol is an optional blank state followed by the symbol state.  Entering a
  symbol goes through its blank with probability ``blank_entry_prob`` (HMM_NAC_PROB = 0.5) or straight to the
  symbol state; both states loop with ``loop_prob`` (HMM_LOOP_PROB = 0.5) and leave with ``1 - loop_prob``.  As
  in any HMM concatenation, ``a a`` without a blank between them is two symbols (at the price of one more exit
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
  ``beam / acoustic_scale`` are dropped (acoustic pre-pruning, as the brief asks: a hypothesis using such a label
  is more than the beam behind the same history continued with the frame's best label, wherever the topology
  allows that continuation); then hypotheses worse than the frame's best by more than ``beam`` are dropped and
  at most ``max_active`` kept.
- LM: the state of a hypothesis is the LM's ``state(context)`` where it offers one (``mtlnb.camera_primus.decoding.ngram_lm.NGramLM`` does),
  else the last ``order - 1`` symbols.  A symbol the LM does not know (absent from its ``vocabulary``, and the LM
  has no ``<unk>``) scores ``oov_logprob`` and empties the history.  LM look-ups are cached per decoder.

Lattice
-------
Lattice nodes are symbol boundaries: (frame boundary, LM state, last symbol).  Each hypothesis carries, besides
its Viterbi score, the set of lattice nodes its current symbol may have started from (with the best
blank/symbol boundary for each and its score relative to the best); hypotheses that merge keep all start nodes
within ``lattice_beam`` — none further away can lie on a path within the lattice beam, because the merged
hypotheses share their future.  When a symbol ends, one arc per start node is recorded.  The arc's acoustic
score, transition costs and LM score are kept apart, as in a Kaldi lattice.  Finally arcs whose best complete
path (at the decoding scales) is worse than the best path by more than ``lattice_beam`` are pruned with a
forward-backward pass (Kaldi's lattice beam).  Every path of a lattice covers every frame exactly once.

Unlike Kaldi's lattices ours are **not determinized**: two paths may carry the same symbol sequence with
different boundaries.  Path posteriors (``posterior_of_path``) therefore sum over alignments, the normaliser of
a lattice is the sum over all its paths, and :meth:`Lattice.nbest` returns distinct sequences (each with its
best path's score).  With peaky CTC posteriors alternative alignments are rare.

Scores read off a lattice
-------------------------
As in a Kaldi lattice, an arc stores its **unscaled** acoustic log-likelihood (``acoustic``) and its graph score
(``graph`` = ``lm_weight · ln P_LM`` + transition log-probabilities + insertion penalty, i.e. minus Kaldi's graph
cost).  Everything read off the lattice scores an arc as ``acoustic_scale · acoustic + lm_scale · graph`` with
**Kaldi's tool defaults 1.0 and 1.0** (``lattice-best-path``, ``lattice-mbr-decode``, ``lattice-combine``): the
baseline ran those tools without scale options, so the decoding acoustic scale (2.5) shaped the search and the
pruning but not the read-off.  Pass ``acoustic_scale=lattice.config.acoustic_scale`` to read off at the
decoding scales (then :meth:`Lattice.best_path` is the search's Viterbi result).

Confusion networks and MBR (:meth:`ScoredLattice.mbr`)
-------------------------------------------------------
Xu, Povey, Mangu & Zhu (2011), as Kaldi's ``lattice-mbr-decode`` implements it (``lat/sausages.cc``): start from
the best path R, interleave ε, run the edit-distance forward recursion (Fig. 4, each node's edit distance the
posterior-weighted average over its incoming arcs) and the backward accumulation of γ(q, w) (Fig. 5), set R to
the per-bin argmax, repeat until R no longer changes.  The sausage is γ: ``2·|R| + 1`` bins, every bin summing
to 1, ε-dominated bins between the words (where insertions go).  The recursions are vectorised over the
hypothesis positions q and over all arcs entering nodes of the same topological level (checked against a
line-by-line port of Kaldi's loops in the tests).  Ties are broken as Kaldi does (posterior, then the larger
symbol index; ε is the smallest), with a 1e-9 tolerance so that float noise cannot flip exact ties; the loop
also stops when R comes back to an earlier value (Kaldi would cycle to its limit of 100 iterations).  Bin
entries below 1e-12 (float noise) are dropped.
"""

from __future__ import annotations

import heapq
import math
from array import array
from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence

import numpy as np

LOG_FLOOR = math.log(1e-11)  # the baseline replaced -inf (and we floor anything lower) with log(1e-11)
EPS = "<eps>"  # "no symbol" in confusion-network bins (Kaldi's epsilon)
BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
TOPOLOGIES = ("kaldi", "ctc")
_MBR_DELTA = 1e-5  # Kaldi's delta(): a tiny extra cost on insertions so that substitutions win ties
_TIE = 1e-9  # float tolerance when the MBR backward pass re-derives which edit operation won

ConfusionNetwork = list  # list of bins; a bin is a list of (symbol or EPS, posterior), most probable first


class LanguageModel(Protocol):
    """What the decoder needs from a symbol n-gram model (``mtlnb.camera_primus.decoding.ngram_lm.NGramLM`` satisfies it).

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
    """Best label per frame, repeats collapsed, blanks dropped (the baseline's unimodal decoding).

    Parameters
    ----------
    logp : array_like, shape (T, |V|+1)
        CTC log-posteriors (or posteriors, or logits: only the per-frame argmax is used); blank = last column.
    vocabulary : sequence of str, length |V|

    Returns
    -------
    list of str
    """
    try:
        x = np.asarray(logp, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"greedy_decode: logp must be a numeric (T, |V|+1) array ({err})") from None
    if x.ndim != 2 or x.shape[1] != len(vocabulary) + 1:
        raise ValueError(
            f"greedy_decode: logp must have shape (T, |V|+1) = (T, {len(vocabulary) + 1}), got {x.shape}"
        )
    best = x.argmax(axis=1) if len(x) else np.zeros(0, dtype=int)
    keep = np.ones(len(best), dtype=bool)
    keep[1:] = best[1:] != best[:-1]
    blank = len(vocabulary)
    return [vocabulary[i] for i in best[keep & (best != blank)]]


# ---------------------------------------------------------------------------------------------------------------
# decoder


@dataclass(frozen=True)
class DecoderConfig:
    """Word-graph search settings; defaults are the baseline's Kaldi recipe (``kaldi/run.sh``)."""

    acoustic_scale: float = 2.5  # ASF: --acoustic-scale; CTC posteriors are weighed 2.5× against the LM in the search
    lm_weight: float = 1.0  # GSF=1.0: scale of ln P_LM inside the graph score (Kaldi's LM scale at decoding)
    insertion_penalty: float = 0.0  # the recipe defines WIP=-0.8 but passes it to no tool, so in effect 0
    beam: float = 15.0  # --beam: hypotheses this far (scaled log units) below the frame's best are dropped
    lattice_beam: float = 12.0  # --lattice-beam: arcs whose best path is this far below the best path are dropped
    max_active: int = 2000  # hypotheses kept per frame; the recipe's 2e9 means none, a cap bounds time on flat output
    topology: str = "kaldi"  # "kaldi": optional blank + symbol HMM (§6); "ctc": plain CTC (switchable alternative)
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

    LM states (``lm.state(context)``, else the last ``order - 1`` symbols) are interned as ints so that the
    search's hypothesis keys are plain ints (cheap to hash, unlike nested tuples of str).  With an LM that offers
    ``score_next`` and ``token_index`` (``mtlnb.camera_primus.decoding.ngram_lm.NGramLM``) the probabilities of all symbols after a state come
    from one vectorised row (equal bit for bit to ``logprob``); with any other LM they come from ``logprob``
    calls, cached per (state, symbol).  For the search, :meth:`key_row` keeps per state two flat arrays over the
    symbols, filled lazily: the hypothesis key each symbol leads to and its ``lm_weight · ln P`` (the search
    reads a few entries per frame, where Python-level indexing beats NumPy); with a bigram the successor
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
            row = np.where(self.columns >= 0, full[self.columns], self.oov_logprob) if self.has_oov else full[self.columns]
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


class WordGraphDecoder:
    """Builds :class:`Lattice` word graphs from CTC log-posteriors with an optional n-gram LM.

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

    def decode(self, logp) -> "Lattice":
        """Word graph of one sample.

        Parameters
        ----------
        logp : array_like, shape (T, |V|+1)
            Natural-log CTC posteriors, blank last.

        Returns
        -------
        Lattice
        """
        cfg = self.config
        x = _as_logp(logp, len(self.vocabulary), "WordGraphDecoder.decode")
        T, C = x.shape
        blank = C - 1
        acw, beam, lbeam = cfg.acoustic_scale, cfg.beam, cfg.lattice_beam
        ins = cfg.insertion_penalty
        ctc = cfg.topology == "ctc"
        t_loop, t_exit, t_direct, t_nac = cfg.transition_logprobs()
        lm = self._lm
        lm_logprob = lm.logprob
        max_active = cfg.max_active
        nbeam = -lbeam
        key_rows, key_row = lm.key_rows, lm.key_row

        # Labels worth expanding per frame (see module notes), with their scaled acoustic scores; np.nonzero
        # lists them in column order, so the blank (last column), when kept, is a frame's last label.
        if T:
            rows, cols = np.nonzero(x >= (x.max(axis=1) - beam / acw)[:, None])
            starts = np.searchsorted(rows, np.arange(T + 1)).tolist()
            cols_l = cols.tolist()
            vals_l = (acw * x[rows, cols]).tolist()

        # Lattice under construction.  Node 0 is the start; a node is (boundary, LM state, last symbol).
        node_time = [0]
        node_lm = [lm.initial]  # LM state ids
        a_src: list[int] = []
        a_dst: list[int] = []
        a_sym: list[int] = []
        a_ts: list[int] = []
        a_tb: list[int] = []
        a_te: list[int] = []
        a_sid: list[int] = []  # LM state id before each arc's symbol

        def close_symbol(alts, symbol, t, sid):
            """End the symbol of a hypothesis at boundary t: a new node, one arc per start node."""
            node = len(node_time)
            node_time.append(t)
            node_lm.append(sid)
            starts = list(alts)
            k = len(starts)
            a_src.extend(starts)
            a_dst.extend([node] * k)
            a_sym.extend([symbol] * k)
            a_ts.extend([node_time[n] for n in starts])
            a_tb.extend([tb for _, tb in alts.values()])
            a_te.extend([t] * k)
            a_sid.extend([node_lm[n] for n in starts])  # LM scores are looked up once, after the search
            return node

        owned: set = set()  # keys of `new` whose alts dict this frame's merges made (safe to update in place)

        def merge(key, old, score, alts):
            """Two hypotheses with the same key: the better score, start nodes within the lattice beam."""
            s0, alts0 = old
            mine = key in owned
            if score > s0:
                s0, alts0, score, alts = score, alts, s0, alts0
                mine = False  # the incoming alts may be shared (``moved`` serves every symbol)
            shift = score - s0
            if shift < -lbeam:  # the worse one has no start node within the lattice beam
                if not mine:
                    owned.discard(key)
                return s0, alts0
            # other alts dicts are shared between hypotheses (and the previous frame's): never modified in place
            merged = alts0 if mine else dict(alts0)
            owned.add(key)
            for n, (d, tb) in alts.items():
                d += shift
                if d >= -lbeam:
                    cur = merged.get(n)
                    if cur is None or d > cur[0]:
                        merged[n] = (d, tb)
            return s0, merged

        # A hypothesis: key -> (score, alts).  The key (LM state id, last symbol, in blank?) is coded as the int
        # ((sid · C + last + 1) · 2 + in_blank); alts maps a start node to (score relative to the hypothesis,
        # first symbol frame); deltas ≤ 0, the best is 0.  Dict insertion order is part of the algorithm (it
        # fixes node numbering and which of equal scores survive max_active), as in the tuple-keyed original.
        tokens: dict = {}
        for t in range(T):
            lo, hi = starts[t], starts[t + 1]
            if hi > lo and cols_l[hi - 1] == blank:
                blank_ac = vals_l[hi - 1]
                hi -= 1
            else:
                blank_ac = None
            syms = cols_l[lo:hi]
            acs = vals_l[lo:hi]
            acd = dict(zip(syms, acs))

            new: dict = {}
            new_get = new.get
            owned.clear()
            # Merges are deferred: a key's later contributions wait in `pend` (in order) and are merged only when
            # the key is touched again in step 3 or survives the frame's pruning, so that the many blank -> symbol
            # moves that are pruned anyway cost no merge.  The merge sequence per key is the same as merging at
            # once; `top` keeps the best score of a key with pending contributions (the score a merge would give).
            pend: dict = {}
            top: dict = {}

            def resolve(k):
                """``merge`` of every pending contribution in turn, inlined: most of them are dropped at once."""
                s0, alts0 = new[k]
                mine = k in owned
                for sc, alts in pend.pop(k):
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
                del top[k]
                cur = new[k] = (s0, alts0)
                return cur
            # 1. stay in the current state (self-loops); keys stay distinct, so nothing merges here
            for key, (s, alts) in tokens.items():
                if key & 1:
                    if blank_ac is not None:
                        new[key] = (s + blank_ac + t_loop, alts)
                else:
                    a = acd.get((key >> 1) % C - 1)
                    if a is not None:
                        new[key] = (s + a + t_loop, alts)
            # 2. blank -> next symbol (the blank run and the symbol form one arc)
            if syms:
                for key, (s, alts) in tokens.items():
                    if not key & 1:
                        continue
                    sid = (key >> 1) // C
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
            best = max(max((v[0] for v in new.values()), default=-math.inf), max(top.values(), default=-math.inf))
            # 3. symbol -> boundary node -> next symbol or blank (the node is created only if a successor survives)
            if t == 0:
                exits = [(0.0, (lm.initial * C) * 2, None)]  # key of the start: initial state, no symbol yet
            else:
                exits = [(s + t_exit, key, alts) for key, (s, alts) in tokens.items() if not key & 1]
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
                node = 0 if alts is None else close_symbol(alts, last, t, sid)
                for k2, sc in succ:
                    fresh = {node: (0.0, -1 if k2 & 1 else t)}
                    old = new_get(k2)
                    if old is None:
                        new[k2] = (sc, fresh)
                    else:
                        if k2 in pend:
                            old = resolve(k2)
                        new[k2] = merge(k2, old, sc, fresh)
                    if sc > best:
                        best = sc
            # prune
            cutoff = best - beam
            top_get = top.get
            kept = [(sc, k) for sc, k in ((top_get(k, v[0]), k) for k, v in new.items()) if sc >= cutoff]
            if len(kept) > max_active:
                kept.sort(key=lambda item: item[0], reverse=True)
                kept = kept[:max_active]
            tokens = {k: resolve(k) if k in pend else new[k] for _, k in kept}

        # End of the sentence: close open symbols, then </s> arcs into the final node.
        finals = []  # (start node, first trailing-blank frame, LM state id)
        if T == 0:
            finals.append((0, 0, node_lm[0]))
        for key, (s, alts) in tokens.items():
            sid, last = divmod(key >> 1, C)
            if key & 1:
                for n in alts:
                    finals.append((n, node_time[n], sid))
            else:
                finals.append((close_symbol(alts, last - 1, T, sid), T, sid))
        final = len(node_time)
        node_time.append(T)
        node_lm.append(-1)  # after </s>: no state
        for n, ts, sid in finals:
            a_src.append(n)
            a_dst.append(final)
            a_sym.append(-1)
            a_ts.append(ts)
            a_tb.append(T)
            a_te.append(T)
            a_sid.append(sid)
        a_lm = [lm_logprob(sid, y) for sid, y in zip(a_sid, a_sym)]

        return Lattice._from_search(
            vocabulary=self.vocabulary,
            config=cfg,
            logp=x,
            node_time=np.asarray(node_time, dtype=np.int64),
            src=np.asarray(a_src, dtype=np.int64),
            dst=np.asarray(a_dst, dtype=np.int64),
            sym=np.asarray(a_sym, dtype=np.int64),
            ts=np.asarray(a_ts, dtype=np.int64),
            tb=np.asarray(a_tb, dtype=np.int64),
            te=np.asarray(a_te, dtype=np.int64),
            lm=np.asarray(a_lm, dtype=np.float64),
        )


def word_graph(logp, vocabulary: Sequence[str], lm: LanguageModel | None = None, config: DecoderConfig | None = None):
    """One-off :meth:`WordGraphDecoder.decode` (use a decoder object for many samples: it caches LM look-ups)."""
    return WordGraphDecoder(vocabulary, lm, config).decode(logp)


# ---------------------------------------------------------------------------------------------------------------
# lattice


@dataclass(frozen=True, eq=False)
class Lattice:
    """A word graph: a DAG of symbol arcs from node 0 (start) to node ``num_nodes - 1`` (final).

    Nodes are numbered in topological order (every arc has ``src < dst``).  Arcs into the final node carry
    ``</s>`` (symbol -1): its LM score and the trailing blanks.

    Attributes
    ----------
    vocabulary : tuple of str
        Symbol of each index.
    src, dst, symbol : ndarray int64, shape (A,)
        Arc end points and symbol index (-1 = ``</s>`` / no symbol).
    acoustic : ndarray float64, shape (A,)
        Unscaled acoustic log-likelihood of the arc's frames (its leading blanks and the symbol's frames).
    graph : ndarray float64, shape (A,)
        ``lm_weight · lm`` + transition log-probabilities + insertion penalty (minus Kaldi's graph cost).
    lm : ndarray float64, shape (A,)
        Natural-log LM probability of the arc's symbol (of ``</s>`` on final arcs), unweighted.
    t_start, t_symbol, t_end : ndarray int64, shape (A,)
        Frames ``[t_start, t_symbol)`` are the arc's blanks, ``[t_symbol, t_end)`` its symbol (0 for hand-built
        lattices).
    node_time : ndarray int64, shape (num_nodes,)
        Frame boundary of each node.
    num_frames : int
    config : DecoderConfig or None
        The search settings (None for hand-built lattices).
    """

    vocabulary: tuple
    num_nodes: int
    src: np.ndarray
    dst: np.ndarray
    symbol: np.ndarray
    acoustic: np.ndarray
    graph: np.ndarray
    lm: np.ndarray
    t_start: np.ndarray
    t_symbol: np.ndarray
    t_end: np.ndarray
    node_time: np.ndarray
    num_frames: int = 0
    config: DecoderConfig | None = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return (f"Lattice({self.num_frames} frames, {self.num_nodes} nodes, {self.num_arcs} arcs, "
                f"best path {' '.join(self.best_path()) or '(empty)'})")

    # -- construction --------------------------------------------------------------------------------------------

    @classmethod
    def _from_search(cls, vocabulary, config, logp, node_time, src, dst, sym, ts, tb, te, lm) -> "Lattice":
        """Scores from the closed forms (cumulative sums, transition counts), then lattice-beam pruning."""
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
        lat = cls(
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
        return lat._pruned(config.acoustic_scale, 1.0, config.lattice_beam)

    @classmethod
    def from_arcs(cls, vocabulary: Sequence[str], arcs) -> "Lattice":
        """A hand-built lattice (tests, examples).

        Parameters
        ----------
        vocabulary : sequence of str
        arcs : iterable of (src, dst, symbol, acoustic, graph)
            ``symbol`` is a vocabulary string or ``None`` (no symbol, e.g. the end of the sentence); scores are
            natural-log.  Nodes are ints; the smallest is the start, the largest the final node, and every arc
            must go from a smaller to a larger node (topological numbering).
        """
        vocabulary = tuple(vocabulary)
        index = {s: i for i, s in enumerate(vocabulary)}
        rows = list(arcs)
        if not rows:
            raise ValueError("Lattice.from_arcs: no arcs")
        try:
            src = np.array([int(r[0]) for r in rows])
            dst = np.array([int(r[1]) for r in rows])
            ac = np.array([float(r[3]) for r in rows])
            gr = np.array([float(r[4]) for r in rows])
        except (TypeError, ValueError, IndexError) as err:
            raise ValueError(
                f"Lattice.from_arcs: each arc must be (src, dst, symbol, acoustic, graph) ({err})"
            ) from None
        syms = []
        for r in rows:
            if r[2] is None:
                syms.append(-1)
            elif r[2] in index:
                syms.append(index[r[2]])
            else:
                raise ValueError(f"Lattice.from_arcs: symbol {r[2]!r} of arc {r[:2]} is not in the vocabulary")
        if (src >= dst).any():
            bad = int(np.argmax(src >= dst))
            raise ValueError(f"Lattice.from_arcs: arc {rows[bad][:2]} does not go from a smaller to a larger node")
        nodes = np.unique(np.concatenate([src, dst]))
        remap = {int(n): i for i, n in enumerate(nodes)}
        src = np.array([remap[int(n)] for n in src])
        dst = np.array([remap[int(n)] for n in dst])
        zeros = np.zeros(len(rows), dtype=np.int64)
        lat = cls(
            vocabulary=vocabulary,
            num_nodes=len(nodes),
            src=src,
            dst=dst,
            symbol=np.array(syms, dtype=np.int64),
            acoustic=ac,
            graph=gr,
            lm=np.zeros(len(rows)),
            t_start=zeros,
            t_symbol=zeros,
            t_end=zeros,
            node_time=np.zeros(len(nodes), dtype=np.int64),
        )
        dag = lat.scored()
        if not np.isfinite(dag.forward()[-1]):
            raise ValueError("Lattice.from_arcs: no path from the start node to the final node")
        return lat._pruned(1.0, 1.0, math.inf)

    @classmethod
    def from_paths(cls, vocabulary: Sequence[str], paths) -> "Lattice":
        """A lattice holding exactly the given symbol sequences, each as its own chain of arcs.

        Parameters
        ----------
        paths : iterable of (sequence of str, float)
            Symbol sequence and its probability (> 0; need not sum to 1), stored as the acoustic score of the
            chain's first arc (graph scores 0).
        """
        arcs = []
        final = 1 + sum(len(p) for p, _ in paths)  # enough room: node ids only need to be increasing
        nxt = 1
        for tokens, prob in paths:
            if not prob > 0:
                raise ValueError(f"Lattice.from_paths: probability of {list(tokens)} must be > 0, got {prob}")
            tokens = list(tokens)
            prev = 0
            score = math.log(prob)
            for tok in tokens:
                arcs.append((prev, nxt, tok, score, 0.0))
                score = 0.0
                prev, nxt = nxt, nxt + 1
            arcs.append((prev, final + 1, None, score, 0.0))
        return cls.from_arcs(vocabulary, arcs)

    def _pruned(self, acoustic_scale: float, lm_scale: float, beam: float) -> "Lattice":
        """Keep the arcs on complete paths within ``beam`` of the best; renumber nodes in order."""
        w = acoustic_scale * self.acoustic + lm_scale * self.graph
        dag = ScoredLattice(self.vocabulary, self.num_nodes, self.src, self.dst, self.symbol, w)
        fwd, bwd = dag.viterbi_forward(), dag.viterbi_backward()
        best = fwd[-1]
        if not np.isfinite(best):
            raise ValueError("Lattice: no complete path survived the search (empty lattice)")
        through = fwd[self.src] + w + bwd[self.dst]
        keep = through >= best - beam - 1e-9 * max(1.0, abs(best))
        used = np.zeros(self.num_nodes, dtype=bool)
        used[self.src[keep]] = True
        used[self.dst[keep]] = True
        new_id = np.cumsum(used) - 1
        src, dst = new_id[self.src[keep]], new_id[self.dst[keep]]
        order = np.lexsort((src, dst))  # the arc order of ScoredLattice, so per-arc results line up
        arcs = np.nonzero(keep)[0][order]
        return replace(
            self,
            num_nodes=int(used.sum()),
            src=src[order],
            dst=dst[order],
            symbol=self.symbol[arcs],
            acoustic=self.acoustic[arcs],
            graph=self.graph[arcs],
            lm=self.lm[arcs],
            t_start=self.t_start[arcs],
            t_symbol=self.t_symbol[arcs],
            t_end=self.t_end[arcs],
            node_time=self.node_time[used],
            _cache={},
        )

    # -- reading off ---------------------------------------------------------------------------------------------

    @property
    def num_arcs(self) -> int:
        return len(self.src)

    def scores(self, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> np.ndarray:
        """Per-arc log-score ``acoustic_scale · acoustic + lm_scale · graph``, shape (A,)."""
        return acoustic_scale * self.acoustic + lm_scale * self.graph

    def scored(self, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> "ScoredLattice":
        """The lattice with one log-weight per arc (cached per scales); every read-off goes through it."""
        key = ("scored", float(acoustic_scale), float(lm_scale))
        dag = self._cache.get(key)
        if dag is None:
            dag = ScoredLattice(
                self.vocabulary, self.num_nodes, self.src, self.dst, self.symbol, self.scores(acoustic_scale, lm_scale)
            )
            self._cache[key] = dag
        return dag

    def best_path(self, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> list[str]:
        """Symbols of the highest-scoring path."""
        return self.scored(acoustic_scale, lm_scale).best_path()[0]

    def nbest(self, n: int, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> list[tuple[list[str], float]]:
        """The ``n`` best distinct symbol sequences with their best path's log-score, best first."""
        return self.scored(acoustic_scale, lm_scale).nbest(n)

    def total_logprob(self, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> float:
        """``ln Σ_paths exp(score)``: the normaliser of the lattice's path distribution."""
        return self.scored(acoustic_scale, lm_scale).total_logprob()

    def arc_posteriors(self, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> np.ndarray:
        """Posterior of each arc (probability that the path goes through it), shape (A,)."""
        return self.scored(acoustic_scale, lm_scale).arc_posteriors()

    def posterior_of_path(self, path: Sequence[str], acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> float:
        """Posterior probability of a symbol sequence (summed over all its paths / alignments)."""
        return self.scored(acoustic_scale, lm_scale).posterior_of_path(path)

    def mbr(self, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> "MBRResult":
        """Xu et al. MBR decoding with the sausage (cached per scales)."""
        return self.scored(acoustic_scale, lm_scale).mbr()

    def confusion_network(self, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> ConfusionNetwork:
        """Sausage: ``2·|R| + 1`` bins of (symbol or ``EPS``, posterior), each bin summing to 1."""
        return self.mbr(acoustic_scale, lm_scale).sausage

    def mbr_decode(self, acoustic_scale: float = 1.0, lm_scale: float = 1.0) -> list[str]:
        """Consensus output: the argmax of every sausage bin, ε skipped."""
        return self.mbr(acoustic_scale, lm_scale).tokens


@dataclass(frozen=True)
class MBRResult:
    """What Kaldi's ``lattice-mbr-decode`` writes for one lattice."""

    tokens: list  # MBR 1-best (ε removed)
    confidences: list  # posterior of each output token in its bin, same length as tokens
    sausage: ConfusionNetwork  # the bins (γ), each a list of (symbol or EPS, posterior), most probable first
    bayes_risk: float  # expected edit distance between the lattice and the output


class ScoredLattice:
    """A lattice with one natural-log weight per arc; the algorithms live here.

    Parameters
    ----------
    vocabulary : tuple of str
    num_nodes : int
        Node 0 is the start, ``num_nodes - 1`` the final node; every arc has ``src < dst``.
    src, dst, symbol : array of int, shape (A,)
        ``symbol`` -1 is an arc without a symbol (ε / ``</s>``).
    weight : array of float, shape (A,)
    """

    def __init__(self, vocabulary, num_nodes: int, src, dst, symbol, weight):
        src = np.asarray(src, dtype=np.int64)
        dst = np.asarray(dst, dtype=np.int64)
        order = np.lexsort((src, dst))  # by destination: a valid forward processing order
        self.vocabulary = tuple(vocabulary)
        self.num_nodes = int(num_nodes)
        self.src = src[order]
        self.dst = dst[order]
        self.symbol = np.asarray(symbol, dtype=np.int64)[order]
        self.weight = np.asarray(weight, dtype=np.float64)[order]
        self._memo: dict = {}

    @staticmethod
    def union(parts: Sequence[tuple["ScoredLattice", float]]) -> "ScoredLattice":
        """Union of lattices sharing one start and one final node; ``parts`` = (lattice, log-weight added to its
        paths).  Parts with log-weight ``-inf`` are left out; vocabularies are merged by symbol."""
        parts = [(d, w) for d, w in parts if w > -math.inf]
        if not parts:
            raise ValueError("ScoredLattice.union: every part has weight 0")
        vocab: list[str] = []
        index: dict[str, int] = {}
        for d, _ in parts:
            for s in d.vocabulary:
                if s not in index:
                    index[s] = len(vocab)
                    vocab.append(s)
        total_inner = sum(d.num_nodes - 2 for d, _ in parts)
        final = total_inner + 1
        srcs, dsts, syms, ws = [], [], [], []
        offset = 1
        for d, lw in parts:
            remap = np.array([index[s] for s in d.vocabulary] + [-1], dtype=np.int64)
            ids = np.arange(d.num_nodes) - 1 + offset
            ids[0] = 0
            ids[-1] = final
            srcs.append(ids[d.src])
            dsts.append(ids[d.dst])
            syms.append(remap[d.symbol])  # index -1 picks the trailing -1
            ws.append(d.weight + np.where(d.src == 0, lw, 0.0))
            offset += d.num_nodes - 2
        return ScoredLattice(vocab, final + 1, np.concatenate(srcs), np.concatenate(dsts), np.concatenate(syms),
                             np.concatenate(ws))

    # -- single-source passes --------------------------------------------------------------------------------------

    def viterbi_forward(self) -> np.ndarray:
        """Best log-score from the start to each node, shape (num_nodes,)."""
        fwd = [-math.inf] * self.num_nodes
        fwd[0] = 0.0
        for s, d, w in zip(self.src.tolist(), self.dst.tolist(), self.weight.tolist()):
            v = fwd[s] + w
            if v > fwd[d]:
                fwd[d] = v
        return np.array(fwd)

    def viterbi_backward(self) -> np.ndarray:
        """Best log-score from each node to the final node, shape (num_nodes,)."""
        bwd = [-math.inf] * self.num_nodes
        bwd[-1] = 0.0
        order = np.argsort(-self.src, kind="stable")
        for s, d, w in zip(self.src[order].tolist(), self.dst[order].tolist(), self.weight[order].tolist()):
            v = bwd[d] + w
            if v > bwd[s]:
                bwd[s] = v
        return np.array(bwd)

    def forward(self) -> np.ndarray:
        """``ln Σ exp`` of the scores of all partial paths start → node, shape (num_nodes,)."""
        if "alpha" not in self._memo:
            self._memo["alpha"] = _log_pass(
                self.num_nodes, self.src.tolist(), self.dst.tolist(), self.weight.tolist(), 0
            )
        return self._memo["alpha"]

    def backward(self) -> np.ndarray:
        """``ln Σ exp`` of the scores of all partial paths node → final, shape (num_nodes,)."""
        if "beta" not in self._memo:
            order = np.argsort(-self.src, kind="stable")
            self._memo["beta"] = _log_pass(
                self.num_nodes, self.dst[order].tolist(), self.src[order].tolist(), self.weight[order].tolist(),
                self.num_nodes - 1,
            )
        return self._memo["beta"]

    def total_logprob(self) -> float:
        return float(self.forward()[-1])

    def arc_posteriors(self) -> np.ndarray:
        """Posterior of every arc (in this object's arc order), shape (A,)."""
        alpha, beta = self.forward(), self.backward()
        with np.errstate(invalid="ignore"):
            post = np.exp(alpha[self.src] + self.weight + beta[self.dst] - alpha[-1])
        return np.nan_to_num(post, nan=0.0)

    def best_path(self) -> tuple[list[str], float]:
        """Symbols and log-score of the best path."""
        if "best" not in self._memo:
            n = self.num_nodes
            fwd = [-math.inf] * n
            fwd[0] = 0.0
            back = [-1] * n
            for a, (s, d, w) in enumerate(zip(self.src.tolist(), self.dst.tolist(), self.weight.tolist())):
                v = fwd[s] + w
                if v > fwd[d]:
                    fwd[d] = v
                    back[d] = a
            arcs = []
            node = n - 1
            while node != 0:
                a = back[node]
                arcs.append(a)
                node = int(self.src[a])
            syms = [int(self.symbol[a]) for a in reversed(arcs)]
            self._memo["best"] = ([self.vocabulary[s] for s in syms if s >= 0], fwd[-1])
        tokens, score = self._memo["best"]
        return list(tokens), score

    def nbest(self, n: int, max_expansions: int = 200_000) -> list[tuple[list[str], float]]:
        """The ``n`` best distinct symbol sequences with the log-score of their best path, best first.

        Best-first search from the final node backwards with the exact forward Viterbi scores as the heuristic,
        so complete paths come out in score order; a sequence seen before (another alignment) is skipped.  The
        search stops after ``max_expansions`` partial paths, so a huge ``n`` on a big lattice may return fewer.
        """
        if n < 1:
            raise ValueError(f"ScoredLattice.nbest: n must be ≥ 1, got {n}")
        fwd = self.viterbi_forward()
        incoming: list[list[int]] = [[] for _ in range(self.num_nodes)]
        for a, d in enumerate(self.dst.tolist()):
            incoming[d].append(a)
        src, sym, w = self.src.tolist(), self.symbol.tolist(), self.weight.tolist()
        heap = [(-fwd[-1], 0, self.num_nodes - 1, 0.0, ())]
        seen: set = set()
        out = []
        counter = 1
        while heap and len(out) < n and counter < max_expansions:
            _, _, node, suffix, syms = heapq.heappop(heap)
            if node == 0:
                if syms not in seen:
                    seen.add(syms)
                    out.append(([self.vocabulary[s] for s in syms], suffix))
                continue
            for a in incoming[node]:
                s = src[a]
                if fwd[s] == -math.inf:
                    continue
                new_suffix = suffix + w[a]
                new_syms = ((sym[a],) + syms) if sym[a] >= 0 else syms
                heapq.heappush(heap, (-(fwd[s] + new_suffix), counter, s, new_suffix, new_syms))
                counter += 1
        return out

    def posterior_of_path(self, path: Sequence[str]) -> float:
        """Posterior of a symbol sequence, summed over every path that carries it."""
        index = {s: i for i, s in enumerate(self.vocabulary)}
        if any(s not in index for s in path):
            return 0.0  # a symbol the lattice cannot produce
        target = [index[s] for s in path]
        K = len(target)
        # alpha[node] = {position: log-mass of partial paths that have emitted target[:position]}
        alpha: list[dict] = [dict() for _ in range(self.num_nodes)]
        alpha[0][0] = 0.0
        for s, d, y, w in zip(self.src.tolist(), self.dst.tolist(), self.symbol.tolist(), self.weight.tolist()):
            for k, v in alpha[s].items():
                if y < 0:
                    k2 = k
                elif k < K and target[k] == y:
                    k2 = k + 1
                else:
                    continue
                cur = alpha[d].get(k2)
                alpha[d][k2] = v + w if cur is None else _logadd(cur, v + w)
        got = alpha[-1].get(K)
        return 0.0 if got is None else float(math.exp(got - self.total_logprob()))

    # -- MBR / confusion network -----------------------------------------------------------------------------------

    def mbr(self, max_iterations: int = 100) -> MBRResult:
        """Xu et al. (2011) MBR decoding and sausage, as Kaldi's ``MinimumBayesRisk`` (see the module notes).

        Stops when R no longer changes, when it returns to an earlier R (a cycle between equally good
        hypotheses; Kaldi would iterate to its limit) or after ``max_iterations``.
        """
        if "mbr" in self._memo:
            return self._memo["mbr"]
        prep = _MBRPrep(self)
        index = {s: i for i, s in enumerate(self.vocabulary)}
        R = tuple(index[s] for s in self.best_path()[0])
        seen = {R}
        for _ in range(max_iterations):
            r = np.full(2 * len(R) + 1, -1, dtype=np.int64)
            r[1::2] = R
            gamma, risk = prep.acc_stats(r)
            # argmax per bin; (near-)ties go to the larger column as in Kaldi (larger word id; ε, column 0, last)
            top = gamma >= gamma.max(axis=1, keepdims=True) - _TIE
            new_r = prep.col_sym[gamma.shape[1] - 1 - np.argmax(top[:, ::-1], axis=1)]
            R = tuple(int(v) for v in new_r if v >= 0)
            if np.array_equal(new_r, r) or R in seen:
                break
            seen.add(R)
        sausage = []
        for row in gamma:
            cols = np.nonzero(row > 1e-12)[0]
            order = sorted(cols.tolist(), key=lambda c: (-row[c], -c))
            sausage.append([(EPS if c == 0 else self.vocabulary[prep.col_sym[c]], float(row[c])) for c in order])
        tokens, conf = [], []
        column = {int(v): c for c, v in enumerate(prep.col_sym.tolist())}
        for q, v in enumerate(new_r.tolist()):
            if v >= 0:
                tokens.append(self.vocabulary[v])
                conf.append(float(gamma[q, column[v]]))
        result = MBRResult(tokens=tokens, confidences=conf, sausage=sausage, bayes_risk=float(risk))
        self._memo["mbr"] = result
        return result


def _logadd(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == -math.inf:
        return a
    return a + math.log1p(math.exp(b - a))


def _log_pass(n: int, frm: list, to: list, w: list, start: int) -> np.ndarray:
    """Log-sum-exp accumulation along arcs given in a valid order (``frm`` complete before it is read)."""
    acc = [-math.inf] * n
    acc[start] = 0.0
    exp, log1p, inf = math.exp, math.log1p, -math.inf
    for f, t, x in zip(frm, to, w):
        v = acc[f] + x
        cur = acc[t]
        if cur == inf:
            acc[t] = v
        elif v > cur:
            acc[t] = v + log1p(exp(cur - v))
        elif v != inf:
            acc[t] = cur + log1p(exp(v - cur))
    return np.array(acc)


class _MBRPrep:
    """What Kaldi's ``AccStats`` needs that does not depend on the hypothesis R, and ``acc_stats`` itself.

    Arcs are grouped by the topological level of their destination (longest distance from the start), so all
    arcs of a group can be processed together: their sources are complete in the forward pass, their
    destinations in the backward pass.  Scatter-adds into nodes use small incidence matrices.
    """

    def __init__(self, dag: ScoredLattice):
        alpha = dag.forward()
        with np.errstate(invalid="ignore"):
            frac = np.exp(alpha[dag.src] + dag.weight - alpha[dag.dst])  # share of dst's forward mass via the arc
        self.frac = np.nan_to_num(frac, nan=0.0)
        self.num_nodes = dag.num_nodes
        # γ columns: ε, then the symbols that occur on arcs, in index order (so column order = Kaldi's tie order)
        present = np.unique(dag.symbol[dag.symbol >= 0])
        self.col_sym = np.concatenate([[-1], present]).astype(np.int64)
        col_of = np.zeros(len(dag.vocabulary) + 1, dtype=np.int64)  # symbol + 1 -> column (ε -> 0)
        col_of[present + 1] = np.arange(1, len(present) + 1)
        self.n_columns = len(self.col_sym)
        level = [0] * dag.num_nodes
        for s, d in zip(dag.src.tolist(), dag.dst.tolist()):  # arcs are sorted by dst: src levels are final
            if level[s] + 1 > level[d]:
                level[d] = level[s] + 1
        arc_level = np.asarray(level)[dag.dst]
        order = np.argsort(arc_level, kind="stable")
        bounds = np.searchsorted(arc_level[order], np.arange(max(level) + 2)).tolist()
        n = dag.num_nodes
        # node ids made unique per group in one go: (level, node) -> dense id; then per-group local indices
        _, dst_ids = np.unique(arc_level[order] * n + dag.dst[order], return_inverse=True)
        _, src_ids = np.unique(arc_level[order] * n + dag.src[order], return_inverse=True)
        self.groups = []
        for i in range(1, max(level) + 1):
            lo, hi = bounds[i], bounds[i + 1]
            if hi == lo:
                continue
            g = order[lo:hi]
            k = hi - lo
            src, dst = dag.src[g], dag.dst[g]
            idst = dst_ids[lo:hi] - dst_ids[lo]
            isrc = src_ids[lo:hi] - src_ids[lo:hi].min()
            udst = np.empty(idst[-1] + 1, dtype=np.int64)
            udst[idst] = dst
            usrc = np.zeros(isrc.max() + 1, dtype=np.int64)
            usrc[isrc] = src
            to_src = np.zeros((len(usrc), k))
            to_src[isrc, np.arange(k)] = 1.0
            to_dst = np.zeros((len(udst), k))
            to_dst[idst, np.arange(k)] = self.frac[g]  # forward: weighted by the arc's share
            word = dag.symbol[g][:, None]
            cols = col_of[word[:, 0] + 1]
            ins_cost = (word != -1) + _MBR_DELTA  # l(w, ε) + delta(): inserting the arc's word
            self.groups.append((src, dst, word, usrc, to_src, udst, to_dst, ins_cost, self.frac[g][:, None],
                                np.arange(k)[:, None], cols))

    def acc_stats(self, r: np.ndarray):
        """Kaldi's ``AccStats`` (Xu et al. Figs. 4-5) for the ε-interleaved hypothesis ``r`` (symbol indices, ε =
        -1); returns γ, shape (Q, len(col_sym)) (column c holds symbol ``col_sym[c]``; column 0 is ε), and the
        expected edit distance."""
        N, Q = self.num_nodes, len(r)
        l_eps_r = (r != -1).astype(np.float64)  # l(ε, r_q), q = 1..Q
        c = np.concatenate([[0.0], np.cumsum(l_eps_r)])  # deletions from position 0 to q
        ad = np.zeros((N, Q + 1))  # alpha-dash: expected edit distance node vs r[:q]
        ad[0] = c  # Line 7
        cases = []  # per group: case-1 and case-3 indicators over q = 0..Q (the rest, and q = 0, is case 2)
        for src, dst, word, usrc, to_src, udst, to_dst, ins_cost, _, _, _ in self.groups:
            S = ad[src]
            a1 = S[:, :-1] + (word != r)  # substitution / match of the arc's word with r_q
            m = S + ins_cost  # a2: the arc's word inserted (column 0: Line 15)
            case1 = np.zeros(m.shape, dtype=bool)
            case1[:, 1:] = a1 <= m[:, 1:] + _TIE
            np.minimum(a1, m[:, 1:], out=m[:, 1:])
            x = np.minimum.accumulate(m - c, axis=1)  # then the deletion chain a3 (Line 17), in closed form
            x += c
            case3 = np.zeros(m.shape, dtype=bool)
            np.less(x[:, :-1] + (l_eps_r + _TIE), m[:, 1:], out=case3[:, 1:])  # a3 strictly best (Kaldi's order)
            case1 &= ~case3
            cases.append((case1, case3))
            ad[udst] += to_dst @ x
        risk = ad[N - 1, Q]

        bd = np.zeros((N, Q + 1))  # beta-dash
        bd[N - 1, Q] = 1.0
        subs, sub_cols = [], []
        eps_mass = np.zeros(Q + 1)
        cols = np.arange(Q + 1)
        for (src, dst, word, usrc, to_src, udst, to_dst, _, frac, rows, gcols), (case1, case3) in zip(
            reversed(self.groups), reversed(cases)
        ):
            barc = frac * bd[dst]  # Line 21
            if case3.any():  # the deletion chain carries the mass at q down to q - 1 inside the arc
                cont = np.zeros(case3.shape, dtype=bool)
                cont[:, :-1] = case3[:, 1:]
                end = np.minimum.accumulate(np.where(cont, Q + 1, cols)[:, ::-1], axis=1)[:, ::-1]
                rc = np.zeros((len(rows), Q + 2))
                np.cumsum(barc[:, ::-1], axis=1, out=rc[:, Q::-1])
                barc = rc[:, :-1] - rc[rows, end + 1]
                eps_mass += barc.sum(axis=0, where=case3)  # case 3: gamma(q, ε)
            down = np.where(case1, barc, 0.0)  # case 1: to (src, q - 1), and gamma(q, w)
            contrib = np.where(case1 | case3, 0.0, barc)  # case 2: to (src, q); Line 26 at q = 0
            contrib[:, :-1] += down[:, 1:]
            bd[usrc] += to_src @ contrib
            subs.append(down)
            sub_cols.append(gcols)
        gamma_t = np.zeros((self.n_columns, Q + 1))
        if subs:
            np.add.at(gamma_t, np.concatenate(sub_cols), np.concatenate(subs))
        gamma_t[0] += eps_mass
        gamma_t[0, 1:] += np.cumsum(bd[0, 1:][::-1])[::-1]  # Lines 29-33: deletions before the start node
        gamma_t = gamma_t[:, 1:]
        return gamma_t.T, risk

