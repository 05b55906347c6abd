"""Word graphs (lattices) and what is read off them: best path, N-best, arc and path posteriors, confusion
networks and MBR decoding.

A :class:`Lattice` is what :mod:`mtlnb.camera_primus.decoding.search` builds from one sample's CTC posteriors (or
what :meth:`Lattice.from_arcs` / :meth:`Lattice.from_paths` build by hand); :class:`ScoredLattice` is the same
graph with one log-weight per arc, where the algorithms live.  This module knows nothing about the search.

Structure
---------
A directed acyclic graph from node 0 (start) to node ``num_nodes - 1`` (final), nodes numbered in topological
order (every arc has ``src < dst``); nodes of a searched lattice are symbol boundaries (a frame boundary, an LM
state and the last symbol).  Arcs into the final node carry ``</s>`` (symbol -1).  Every path of a searched
lattice covers every frame exactly once.

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
baseline (Alfaro-Contreras et al. 2023) ran those tools without scale options, so the decoding acoustic scale
(2.5) shaped the search and the pruning but not the read-off.  Pass ``acoustic_scale=lattice.config.acoustic_scale``
to read off at the decoding scales (then :meth:`Lattice.best_path` is the search's Viterbi result).

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
from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np

EPS = "<eps>"  # "no symbol" in confusion-network bins (Kaldi's epsilon)
_MBR_DELTA = 1e-5  # Kaldi's delta(): a tiny extra cost on insertions so that substitutions win ties
_TIE = 1e-9  # float tolerance when the MBR backward pass re-derives which edit operation won

ConfusionNetwork = list  # list of bins; a bin is a list of (symbol or EPS, posterior), most probable first


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
        Frames T of the sample the lattice was searched on (0 for hand-built lattices).
    config : mtlnb.camera_primus.decoding.search.DecoderConfig or None
        The search settings (None for hand-built lattices); stored, never read here.
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
    config: object | None = None  # a search.DecoderConfig (this module does not import the search)
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __repr__(self) -> str:
        return (f"Lattice({self.num_frames} frames, {self.num_nodes} nodes, {self.num_arcs} arcs, "
                f"best path {' '.join(self.best_path()) or '(empty)'})")

    # -- construction --------------------------------------------------------------------------------------------

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
        return lat.pruned(1.0, 1.0, math.inf)

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

    def pruned(self, acoustic_scale: float, lm_scale: float, beam: float) -> "Lattice":
        """The lattice without the arcs whose best complete path is more than ``beam`` below the best path.

        Parameters
        ----------
        acoustic_scale, lm_scale : float
            Arc score ``acoustic_scale · acoustic + lm_scale · graph`` (natural log) used for the pruning.
        beam : float
            Natural-log units; ``math.inf`` keeps every arc on a complete path.

        Returns
        -------
        Lattice
            Nodes renumbered in order, arcs sorted by (dst, src) (the arc order of :class:`ScoredLattice`, so
            per-arc results line up); ``ValueError`` when no complete path exists.
        """
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
