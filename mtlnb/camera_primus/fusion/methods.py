"""Late fusion of the OMR and the A2S word graph of one sample: the baseline's five methods (Alfaro-Contreras et
al. 2023).

Every method takes the two :class:`~mtlnb.camera_primus.decoding.lattice.Lattice` objects of a sample (``omr``,
``a2s``) and returns a token sequence.  α is the OMR weight (1 − α the A2S weight) where a method has one;
:func:`fuse` runs several methods over a sweep of α in one call, reusing everything that does not depend on α.

Methods (names as in :data:`METHODS`)
-------------------------------------
``lattice_combination`` — the thesis's "MBR" row, i.e. what the baseline's code runs: Kaldi's
    ``lattice-combine --lat-weights=α:1-α`` then ``lattice-best-path``.  Each lattice is normalised to a
    distribution over its paths, scaled by its weight, the two are joined; the best path of the union is, per
    sample, whichever modality's best path has the larger weighted posterior ``w · exp(best) / Z``.  α = 1 and
    α = 0 give the unimodal best paths (Kaldi refuses a weight of 0; the baseline ran the unimodal systems
    separately).  On an exact tie the OMR path wins (it is the union's first lattice).
``lattice_combination_mbr`` — Kaldi's own intent for ``lattice-combine`` (Xu et al. 2011): MBR decoding
    (:meth:`~mtlnb.camera_primus.decoding.lattice.ScoredLattice.mbr`) of that weighted union.  α = 1 / 0 give each
    modality's MBR output.
``confusion_network`` — Granell & Martínez-Hinarejos (2015) as the baseline's ``cn_combination.py`` does it;
    see :func:`combine_confusion_networks`.  Sausages from each lattice's MBR, with the baseline's LM scales
    (``lattice-mbr-decode --lm-scale=1`` for OMR, ``--lm-scale=0`` for A2S).
``smith_waterman`` — de la Fuente et al. (2021): see :func:`smith_waterman`.  The sequences are each modality's
    MBR output with each token's bin posterior (the baseline's ``ObtainSWProbs``: ``lattice-mbr-decode``
    sausage stats, default scales).  No α.
``lightly_supervised_omr`` / ``lightly_supervised_a2s`` — Fainberg et al. (2019) ``lattice-combine-light``:
    see :func:`lightly_supervised`.  No α.  "Lightly-supervised X" means X's lattice is the (light) supervision,
    i.e. the reference, and the other modality's lattice the hypothesis whose path is output: the baseline's
    code runs ``lattice-combine-light OMR AMT`` for its ``Light_OMR_AMT`` output (reference first), and in the
    thesis's Table 3 (baseline as reported) "lightly-supervised OMR" reads 25.8 / 17.1 / 9.1 in scenarios 1-3
    and about the same in 4-6 and 7-9 -- it follows the A2S level, so its output is the A2S path -- while
    "lightly-supervised A2S" (28.5 / 20.7 / 10.9 in scenarios 1 / 4 / 7) follows the OMR level.

Read-off scales: as in the baseline, lattices are read with Kaldi's tool defaults (acoustic scale 1, LM scale 1)
unless :class:`FusionConfig` says otherwise (see the ``wordgraph`` module notes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from mtlnb.camera_primus import metrics
from mtlnb.camera_primus.decoding.lattice import EPS, ConfusionNetwork, Lattice, ScoredLattice

# the baseline's confusion-network sweep 0 … 1 in steps of 0.1 (its lattice-combination sweep ran 0.1 … 0.9)
DEFAULT_ALPHAS = tuple(round(0.1 * i, 1) for i in range(11))
_TOL = 1e-9  # float tolerance for ties in the DTW back-trace and the consensus argmax


@dataclass(frozen=True)
class FusionConfig:
    """Settings of the fusion methods; defaults are the baseline's."""

    acoustic_scale: float = 1.0  # lattice read-off: Kaldi's tool default, which the baseline never changed
    lm_scale: float = 1.0  # idem (lattice-combine, lattice-best-path, lattice-mbr-decode for Smith-Waterman)
    cn_omr_lm_scale: float = 1.0  # run.sh: OMR sausages from lattice-mbr-decode --lm-scale=1
    cn_a2s_lm_scale: float = 0.0  # run.sh: A2S sausages from lattice-mbr-decode --lm-scale=0
    cn_granularity: float = 1e-3  # g of the smoothing p' = (p + g) / (1 + n g) (cn_combination.py: 10e-4)
    cn_omr_insert: float = 0.75  # an unmatched OMR bin is "Insert" if its top posterior exceeds this, else "Delete"
    cn_a2s_insert: float = 0.25  # the same threshold for A2S bins
    sw_match: float = 2.0  # de la Fuente et al.'s match score, the baseline's default (others were swept)
    sw_mismatch: float = -1.0  # the baseline's mismatch score
    sw_gap: float = -1.0  # the baseline's gap (opening) penalty
    sw_gap_extension: float = -1.0  # swalign's default extension penalty, which the baseline never set

    def __post_init__(self):
        for name in ("acoustic_scale", "lm_scale", "cn_omr_lm_scale", "cn_a2s_lm_scale"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"FusionConfig.{name} must be ≥ 0, got {getattr(self, name)}")
        if not self.cn_granularity > 0:
            raise ValueError(f"FusionConfig.cn_granularity must be > 0, got {self.cn_granularity}")


def _check_alpha(alpha, where: str) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: alpha must be a number in [0, 1], got {alpha!r}") from None
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"{where}: alpha must be in [0, 1], got {alpha}")
    return a


def _check_lattices(omr, a2s, where: str) -> None:
    for name, lat in (("omr", omr), ("a2s", a2s)):
        if not isinstance(lat, Lattice):
            raise ValueError(f"{where}: {name} must be a mtlnb.camera_primus.decoding.lattice.Lattice, "
                             f"got {type(lat).__name__}")


# ---------------------------------------------------------------------------------------------------------------
# 1. lattice combination


def lattice_combination(
    omr: Lattice, a2s: Lattice, alpha: float = 0.5, config: FusionConfig | None = None
) -> list[str]:
    """Best path of the α-weighted union of the two normalised lattices (the baseline's "MBR" method)."""
    alpha = _check_alpha(alpha, "lattice_combination")
    _check_lattices(omr, a2s, "lattice_combination")
    cfg = config or FusionConfig()
    do, da = omr.scored(cfg.acoustic_scale, cfg.lm_scale), a2s.scored(cfg.acoustic_scale, cfg.lm_scale)
    if alpha >= 1.0:
        return do.best_path()[0]
    if alpha <= 0.0:
        return da.best_path()[0]
    (to, so), (ta, sa) = do.best_path(), da.best_path()
    wo = math.log(alpha) + so - do.total_logprob()
    wa = math.log1p(-alpha) + sa - da.total_logprob()
    return to if wo >= wa else ta


def combined_lattice(
    omr: Lattice, a2s: Lattice, alpha: float = 0.5, config: FusionConfig | None = None
) -> ScoredLattice:
    """The α-weighted union that ``lattice-combine`` writes: each lattice normalised, ``ln α`` / ``ln(1 − α)``
    added to its paths, one shared start and final node (a lattice of weight 0 is left out)."""
    alpha = _check_alpha(alpha, "combined_lattice")
    _check_lattices(omr, a2s, "combined_lattice")
    cfg = config or FusionConfig()
    do, da = omr.scored(cfg.acoustic_scale, cfg.lm_scale), a2s.scored(cfg.acoustic_scale, cfg.lm_scale)
    lw_o = math.log(alpha) - do.total_logprob() if alpha > 0 else -math.inf
    lw_a = math.log1p(-alpha) - da.total_logprob() if alpha < 1 else -math.inf
    return ScoredLattice.union([(do, lw_o), (da, lw_a)])


def lattice_combination_mbr(
    omr: Lattice, a2s: Lattice, alpha: float = 0.5, config: FusionConfig | None = None
) -> list[str]:
    """MBR decoding (Xu et al. 2011) of the α-weighted union of the two lattices."""
    alpha = _check_alpha(alpha, "lattice_combination_mbr")
    cfg = config or FusionConfig()
    if alpha >= 1.0:
        return omr.mbr(cfg.acoustic_scale, cfg.lm_scale).tokens
    if alpha <= 0.0:
        return a2s.mbr(cfg.acoustic_scale, cfg.lm_scale).tokens
    return combined_lattice(omr, a2s, alpha, cfg).mbr().tokens


# ---------------------------------------------------------------------------------------------------------------
# 2. confusion-network combination


def align_confusion_networks(cn_omr: ConfusionNetwork, cn_a2s: ConfusionNetwork):
    """DTW alignment and bin labels of two sausages, as the baseline's ``cn_combination.py``.

    Cost of bins (i, j): the SER of the A2S bin's symbol list against the OMR bin's (both in posterior order, as
    Kaldi writes them; ``edit distance / len(OMR bin)``).  Steps (i−1, j), (i, j−1), (i−1, j−1), preferred in
    that order on ties.  Labels per aligned pair: cost 0 → Anchor; some symbol shared → Combine; otherwise
    Insert or Delete by the top posterior (OMR: Insert above 0.75, A2S: above 0.25).  A bin on several pairs
    keeps one label, Anchor > Combine > Delete > Insert.  (The baseline labels the path in both directions and
    intersects; the per-pair labels do not depend on the direction, so that changes nothing.)

    Returns
    -------
    path : list of (i, j)
        Aligned bin pairs, in order.
    labels_omr, labels_a2s : list of str
        The label of every bin.
    """
    return _align(cn_omr, cn_a2s, FusionConfig())


def _align(cn1, cn2, cfg: FusionConfig):
    n1, n2 = len(cn1), len(cn2)
    if n1 == 0 or n2 == 0:
        return [], ["Delete"] * n1, ["Delete"] * n2
    keys1 = [tuple(s for s, _ in b) for b in cn1]
    keys2 = [tuple(s for s, _ in b) for b in cn2]
    ids1: dict = {}
    ids2: dict = {}
    i1 = np.array([ids1.setdefault(k, len(ids1)) for k in keys1])  # distinct bins: few, so compare those once
    i2 = np.array([ids2.setdefault(k, len(ids2)) for k in keys2])
    ka, kb = list(ids1), list(ids2)
    dist = metrics.pairwise_edit_distances(ka, kb)
    lens = np.array([len(k) for k in ka], dtype=np.float64)[:, None]
    table = dist / lens  # SER of the A2S bin against the OMR bin (identical bins: 0)
    cost = table[i1][:, i2]
    # DTW rows in closed form: D[i, j] = cost[i, j] + min(U[j], D[i, j-1]), U[j] = min(D[i-1, j], D[i-1, j-1])
    D = np.full((n1 + 1, n2 + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, n1 + 1):
        u = np.minimum(D[i - 1, 1:], D[i - 1, :-1])
        cs = np.cumsum(cost[i - 1])
        prev = np.concatenate([[0.0], cs[:-1]])
        D[i, 1:] = cs + np.minimum.accumulate(u - prev)
    path = []
    i, j = n1, n2
    while not (i == 0 and j == 0):
        path.append((i - 1, j - 1))
        nb = (D[i - 1, j], D[i, j - 1], D[i - 1, j - 1])
        best = min(nb)
        v = next(k for k, x in enumerate(nb) if x <= best + _TOL * max(1.0, abs(best)))
        if v != 1:
            i -= 1
        if v != 0:
            j -= 1
    path.reverse()
    rank = {"Anchor": 3, "Combine": 2, "Delete": 1, "Insert": 0}
    lab1: list[str | None] = [None] * n1
    lab2: list[str | None] = [None] * n2
    for i, j in path:
        if cost[i, j] == 0:
            l1 = l2 = "Anchor"
        elif set(keys1[i]) & set(keys2[j]):
            l1 = l2 = "Combine"
        else:
            l1 = "Insert" if cn1[i][0][1] > cfg.cn_omr_insert else "Delete"
            l2 = "Insert" if cn2[j][0][1] > cfg.cn_a2s_insert else "Delete"
        if lab1[i] is None or rank[l1] > rank[lab1[i]]:
            lab1[i] = l1
        if lab2[j] is None or rank[l2] > rank[lab2[j]]:
            lab2[j] = l2
    return path, lab1, lab2


def _merge_bins(b1: dict, b2: dict, alpha: float, g: float) -> dict:
    """p'_OMR^α · p'_A2S^(1−α) over the union of both bins' symbols, p' = (p + g)/(1 + n g), renormalised."""
    n1, n2 = len(b1), len(b2)
    z1, z2 = 1.0 + n1 * g, 1.0 + n2 * g
    out = {}
    for s in list(b1) + [s for s in b2 if s not in b1]:
        p1 = (b1.get(s, 0.0) + g) / z1
        p2 = (b2.get(s, 0.0) + g) / z2
        out[s] = p1**alpha * p2 ** (1.0 - alpha)
    total = sum(out.values())
    return {s: p / total for s, p in out.items()}


def combine_confusion_networks(
    cn_omr: ConfusionNetwork,
    cn_a2s: ConfusionNetwork,
    alpha: float = 0.5,
    config: FusionConfig | None = None,
    alignment=None,
) -> ConfusionNetwork:
    """Merge two sausages (Granell & Martínez-Hinarejos 2015, as the baseline's ``cn_combination.py``).

    After :func:`align_confusion_networks`, each aligned pair (i, j) gives, in path order: Anchor–Anchor,
    Combine–Combine, Anchor–Combine → one merged bin ``merge(OMR_i, A2S_j)``; a pair with an Anchor on one side
    and Insert/Delete on the other → the non-anchor bin merged with ⟨ε, 1⟩ (the anchor bin is emitted by its
    own Anchor pair); Combine with Insert/Delete → only the Insert/Delete bin merged with ⟨ε, 1⟩; two
    Insert/Delete bins → both, each merged with ⟨ε, 1⟩, OMR first.  ``merge`` is :func:`_merge_bins` with g.
    (Insert and Delete are merged alike, as in the baseline's code: the thresholds only name the labels.)
    Every bin is emitted once: where the path pairs one bin with several bins of the other side, the later
    pairs emit only their new bin, merged with ⟨ε, 1⟩.

    ``alignment`` may pass the ``(path, labels_omr, labels_a2s)`` of an earlier call (it does not depend on α).

    Returns
    -------
    ConfusionNetwork
        Bins of (symbol or ε, posterior), most probable first (ties: symbol order).
    """
    alpha = _check_alpha(alpha, "combine_confusion_networks")
    cfg = config or FusionConfig()
    g = cfg.cn_granularity
    path, lab1, lab2 = alignment if alignment is not None else _align(cn_omr, cn_a2s, cfg)
    eps = {EPS: 1.0}
    d1 = [dict(b) for b in cn_omr]
    d2 = [dict(b) for b in cn_a2s]
    out = []
    seen1, seen2 = set(), set()
    for i, j in path:
        t1, t2 = lab1[i], lab2[j]
        new1, new2 = i not in seen1, j not in seen2
        seen1.add(i)
        seen2.add(j)
        if not (new1 and new2):
            # One bin aligned to several of the other side (a horizontal or vertical DTW step): it was emitted
            # with its first partner, so only the new bin goes out, against ε.  (Emitting per pair would repeat
            # the old bin once per partner: a long A2S stretch against one OMR bin repeated it a dozen times.)
            bins = [_merge_bins(d1[i], eps, alpha, g)] if new1 else [_merge_bins(eps, d2[j], alpha, g)]
        elif t1 == t2 and t1 in ("Anchor", "Combine"):
            bins = [_merge_bins(d1[i], d2[j], alpha, g)]
        elif t1 == "Anchor":
            bins = [_merge_bins(d1[i], d2[j], alpha, g) if t2 == "Combine" else _merge_bins(eps, d2[j], alpha, g)]
        elif t2 == "Anchor":
            bins = [_merge_bins(d1[i], d2[j], alpha, g) if t1 == "Combine" else _merge_bins(d1[i], eps, alpha, g)]
        else:  # Insert/Delete on at least one side, the other Combine or Insert/Delete
            bins = []
            if t1 != "Combine":
                bins.append(_merge_bins(d1[i], eps, alpha, g))
            if t2 != "Combine":
                bins.append(_merge_bins(eps, d2[j], alpha, g))
        for b in bins:
            out.append(sorted(b.items(), key=lambda kv: (-kv[1], kv[0])))
    return out


def consensus(cn: ConfusionNetwork) -> list[str]:
    """The most probable entry of every bin, bins won by ε skipped (a symbol tied with ε wins, as in the
    baseline's ``confnet_greedy_decoder``; ties between symbols go to the first in the bin's order)."""
    out = []
    for b in cn:
        if not b:
            continue
        top = max(p for _, p in b)
        winners = [s for s, p in b if p >= top - _TOL and s != EPS]
        if winners:
            out.append(winners[0])
    return out


def confusion_network_combination(
    omr: Lattice, a2s: Lattice, alpha: float = 0.5, config: FusionConfig | None = None
) -> list[str]:
    """Consensus of the combined confusion network of the two lattices' sausages."""
    _check_lattices(omr, a2s, "confusion_network_combination")
    cfg = config or FusionConfig()
    cn_o = omr.confusion_network(cfg.acoustic_scale, cfg.cn_omr_lm_scale)
    cn_a = a2s.confusion_network(cfg.acoustic_scale, cfg.cn_a2s_lm_scale)
    return consensus(combine_confusion_networks(cn_o, cn_a, alpha, cfg))


# ---------------------------------------------------------------------------------------------------------------
# 3. Smith-Waterman


class _Sentinel:
    """Start/end markers that equal nothing but themselves."""

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


_START, _END = _Sentinel("<sw-start>"), _Sentinel("<sw-end>")


def smith_waterman(
    ref_tokens: Sequence[str],
    ref_probs: Sequence[float],
    query_tokens: Sequence[str],
    query_probs: Sequence[float],
    match: float = 2.0,
    mismatch: float = -1.0,
    gap: float = -1.0,
    gap_extension: float = -1.0,
) -> list[str]:
    """Fuse two token sequences by local alignment (de la Fuente et al. 2021, the baseline's ``late_fusion/local.py``).

    Both sequences are wrapped in start/end sentinels (probability 1) so that the local alignment tends to span
    them end to end; the alignment is the ``swalign`` package's (which the baseline used): rows are the query,
    gaps cost ``gap`` to open and ``gap_extension`` to extend (a gap continuing from a zero-score cell is free),
    ties prefer extending a gap run, then a (mis)match, then a gap in the query, then a gap in the reference;
    the alignment ends at the last maximal cell in row-major order.  Fusion along the alignment: a match keeps
    the token; a mismatch keeps the more probable token (a tie keeps the query's); a gap keeps the token that is
    there.  Tokens outside the local alignment are dropped, sentinels removed.

    Stages: :func:`_sw_table` (scores and moves), :func:`_sw_traceback` (the moves of the local alignment),
    :func:`_sw_fuse` (tokens along it).

    Parameters
    ----------
    ref_tokens, ref_probs : sequences of equal length
        The reference sequence (OMR in the baseline) and a probability per token.
    query_tokens, query_probs : sequences of equal length
        The query sequence (A2S).
    match, mismatch, gap, gap_extension : float

    Returns
    -------
    list of str
    """
    for name, toks, probs in (("ref", ref_tokens, ref_probs), ("query", query_tokens, query_probs)):
        if len(toks) != len(probs):
            raise ValueError(f"smith_waterman: {name}_tokens has {len(toks)} entries but {name}_probs {len(probs)}")
        if not all(isinstance(t, str) for t in toks):
            raise ValueError(f"smith_waterman: {name}_tokens must be str")
    ref = [_START, *ref_tokens, _END]
    qry = [_START, *query_tokens, _END]
    rprob = [1.0, *map(float, ref_probs), 1.0]
    qprob = [1.0, *map(float, query_probs), 1.0]
    val, op, end = _sw_table(ref, qry, match, mismatch, gap, gap_extension)
    ops, start = _sw_traceback(val, op, end)
    out = _sw_fuse(ops, start, ref, rprob, qry, qprob)
    return [t for t in out if isinstance(t, str)]


def _sw_table(ref: Sequence, qry: Sequence, match: float, mismatch: float, gap: float, gap_extension: float):
    """``swalign``'s local-alignment table: rows 1..len(qry) are query positions, columns 1..len(ref) reference
    positions (row and column 0 the empty prefixes).

    Returns
    -------
    val : list of lists of float, shape (len(qry) + 1, len(ref) + 1)
        Cell scores (≥ 0).
    op : list of lists of str, same shape
        The move into each cell: ``"m"`` (mis)match, ``"i"`` gap in the reference (query token alone), ``"d"`` gap
        in the query (reference token alone), ``"x"`` a fresh start at 0.
    end : (row, column)
        The last maximal cell in row-major order, where the alignment ends.
    """
    nr, nc = len(qry) + 1, len(ref) + 1
    val = [[0.0] * nc for _ in range(nr)]
    op = [[" "] * nc for _ in range(nr)]
    run = [[0] * nc for _ in range(nr)]
    for row in range(1, nr):
        op[row][0] = "i"
    for col in range(1, nc):
        op[0][col] = "d"
    best, best_row, best_col = 0.0, 0, 0
    for row in range(1, nr):
        q = qry[row - 1]
        vr, vu, opr, opu, runr, runu = val[row], val[row - 1], op[row], op[row - 1], run[row], run[row - 1]
        for col in range(1, nc):
            mm = vu[col - 1] + (match if q == ref[col - 1] else mismatch)
            if opu[col] == "i":
                ins_run = runu[col]
                ins = 0.0 if vu[col] == 0 else vu[col] + gap_extension
            else:
                ins_run = 0
                ins = vu[col] + gap
            if opr[col - 1] == "d":
                del_run = runr[col - 1]
                dele = 0.0 if vr[col - 1] == 0 else vr[col - 1] + gap_extension
            else:
                del_run = 0
                dele = vr[col - 1] + gap
            cell = max(mm, dele, ins, 0.0)
            if del_run and cell == dele:
                o, rn = "d", del_run + 1
            elif ins_run and cell == ins:
                o, rn = "i", ins_run + 1
            elif cell == mm:
                o, rn = "m", 0
            elif cell == dele:
                o, rn = "d", 1
            elif cell == ins:
                o, rn = "i", 1
            else:
                cell, o, rn = 0.0, "x", 0
            vr[col], opr[col], runr[col] = cell, o, rn
            if cell >= best:
                best, best_row, best_col = cell, row, col
    return val, op, (best_row, best_col)


def _sw_traceback(val, op, end: tuple[int, int]) -> tuple[list[str], tuple[int, int]]:
    """The moves of the local alignment ending at ``end``, in order, back-traced while the score is positive.

    Returns the moves (``"m"``, ``"i"``, ``"d"``) and ``(reference index, query index)`` of the first aligned
    tokens (0-based, sentinels counted)."""
    ops = []
    row, col = end
    while val[row][col] > 0:
        o = op[row][col]
        ops.append(o)
        if o == "m":
            row, col = row - 1, col - 1
        elif o == "i":
            row -= 1
        elif o == "d":
            col -= 1
        else:
            break
    ops.reverse()
    return ops, (col, row)


def _sw_fuse(ops: Sequence[str], start: tuple[int, int], ref: Sequence, rprob: Sequence[float], qry: Sequence,
             qprob: Sequence[float]) -> list:
    """Tokens along the alignment: a match keeps the token, a mismatch the more probable one (ties: the query's),
    a gap the token that is there.  ``start`` is :func:`_sw_traceback`'s (reference, query) index pair."""
    i, j = start
    out = []
    for o in ops:
        if o == "m":
            r, q = ref[i], qry[j]
            out.append(r if r == q else (q if qprob[j] >= rprob[i] else r))
            i, j = i + 1, j + 1
        elif o == "d":
            out.append(ref[i])
            i += 1
        else:
            out.append(qry[j])
            j += 1
    return out


def smith_waterman_fusion(
    omr: Lattice, a2s: Lattice, alpha: float | None = None, config: FusionConfig | None = None
) -> list[str]:
    """Smith-Waterman fusion of the two lattices' MBR outputs with their bin posteriors; OMR is the reference."""
    _check_lattices(omr, a2s, "smith_waterman_fusion")
    cfg = config or FusionConfig()
    mo = omr.mbr(cfg.acoustic_scale, cfg.lm_scale)
    ma = a2s.mbr(cfg.acoustic_scale, cfg.lm_scale)
    return smith_waterman(mo.tokens, mo.confidences, ma.tokens, ma.confidences,
                          cfg.sw_match, cfg.sw_mismatch, cfg.sw_gap, cfg.sw_gap_extension)


# ---------------------------------------------------------------------------------------------------------------
# 4./5. lightly supervised


def lightly_supervised(reference: Lattice, hypothesis: Lattice, config: FusionConfig | None = None) -> list[str]:
    """The hypothesis path with the most matches to any reference path (Fainberg et al. 2019).

    ``lattice-combine-light`` drops all scores, composes reference ∘ edit transducer ∘ hypothesis with a match
    costing −1 and everything else 0, keeps the minimum-cost paths and outputs their hypothesis side.  Here: a
    dynamic programme over pairs (hypothesis node, reference node) maximising the number of matched symbols
    (the longest common subsequence of a hypothesis path and a reference path), ties broken by the hypothesis
    path's own score (acoustic and LM scales from ``config``).  Kaldi leaves that tie to the order of its
    zero-weight best path; the best-scoring of the maximal-match paths is the documented choice here.  With no
    symbol in common, the result is the hypothesis's best path (Kaldi returns the hypothesis lattice then).
    """
    if not isinstance(reference, Lattice) or not isinstance(hypothesis, Lattice):
        raise ValueError("lightly_supervised: reference and hypothesis must be "
                         "mtlnb.camera_primus.decoding.lattice.Lattice objects")
    cfg = config or FusionConfig()
    hyp = hypothesis.scored(cfg.acoustic_scale, cfg.lm_scale)
    ref = reference.scored(1.0, 1.0)  # its scores are not used
    # symbols of both as indices into the hypothesis vocabulary (-1: none; -2: a reference symbol it lacks)
    hindex = {s: i for i, s in enumerate(hyp.vocabulary)}
    rsym = np.array([hindex.get(ref.vocabulary[s], -2) if s >= 0 else -1 for s in ref.symbol.tolist()], dtype=np.int64)
    Hn, Rn = hyp.num_nodes, ref.num_nodes
    # reach[r, r'] = r' reachable from r (deletions: reference-only moves cost nothing)
    reach = np.eye(Rn, dtype=bool)
    for s, d in sorted(zip(ref.src.tolist(), ref.dst.tolist()), reverse=True):
        reach[s] |= reach[d]
    closure = np.where(reach, 0.0, -np.inf)
    big = 4.0 * (1.0 + float(np.abs(hyp.weight).sum()))  # one match outweighs any score difference
    pre = np.full((Hn, Rn), -np.inf)
    post = np.full((Hn, Rn), -np.inf)
    pre[0, 0] = 0.0
    post[0] = (pre[0][:, None] + closure).max(axis=0)
    incoming: list[list[int]] = [[] for _ in range(Hn)]
    for a, d in enumerate(hyp.dst.tolist()):
        incoming[d].append(a)
    hsrc, hsym, hw = hyp.src.tolist(), hyp.symbol.tolist(), hyp.weight.tolist()
    bonus = {}
    for h in range(1, Hn):
        row = pre[h]
        for a in incoming[h]:
            s, w, p = hsrc[a], hw[a], post[hsrc[a]]
            np.maximum(row, p + w, out=row)  # hypothesis symbol inserted (reference stays)
            if hsym[a] not in bonus:
                bonus[hsym[a]] = np.where((rsym == hsym[a]) & (rsym >= 0), big, 0.0)
            np.maximum.at(row, ref.dst, p[ref.src] + bonus[hsym[a]] + w)  # both advance: match or substitution
        post[h] = (row[:, None] + closure).max(axis=0)
    # back-trace one optimal hypothesis path
    ref_in: list[list[int]] = [[] for _ in range(Rn)]
    for b, d in enumerate(ref.dst.tolist()):
        ref_in[d].append(b)
    rsrc = ref.src.tolist()
    arcs = []
    h, r = Hn - 1, Rn - 1
    while h != 0:
        target = post[h, r]
        r0 = r if pre[h, r] == target else int(np.nonzero(reach[:, r] & (pre[h] == target))[0][0])
        step = None
        for a in incoming[h]:
            s, w = hsrc[a], hw[a]
            if post[s, r0] + w == pre[h, r0]:
                step = (a, s, r0)
                break
            for b in ref_in[r0]:
                bon = bonus[hsym[a]][b]
                if post[s, rsrc[b]] + bon + w == pre[h, r0]:
                    step = (a, s, rsrc[b])
                    break
            if step is not None:
                break
        if step is None:  # pragma: no cover - would be a bug in the forward pass
            raise RuntimeError("lightly_supervised: back-trace failed")
        arcs.append(step[0])
        h, r = step[1], step[2]
    return [hyp.vocabulary[hsym[a]] for a in reversed(arcs) if hsym[a] >= 0]


def lightly_supervised_omr(
    omr: Lattice, a2s: Lattice, alpha: float | None = None, config: FusionConfig | None = None
) -> list[str]:
    """OMR lattice as the light supervision (reference), A2S path out (the baseline's ``Light_OMR_AMT``)."""
    _check_lattices(omr, a2s, "lightly_supervised_omr")
    return lightly_supervised(omr, a2s, config)


def lightly_supervised_a2s(
    omr: Lattice, a2s: Lattice, alpha: float | None = None, config: FusionConfig | None = None
) -> list[str]:
    """A2S lattice as the light supervision (reference), OMR path out (the baseline's ``Light_AMT_OMR``)."""
    _check_lattices(omr, a2s, "lightly_supervised_a2s")
    return lightly_supervised(a2s, omr, config)


# ---------------------------------------------------------------------------------------------------------------
# registry and sweep

FusionMethod = Callable[..., list]

METHODS: dict[str, FusionMethod] = {
    "lattice_combination": lattice_combination,
    "lattice_combination_mbr": lattice_combination_mbr,
    "confusion_network": confusion_network_combination,
    "smith_waterman": smith_waterman_fusion,
    "lightly_supervised_omr": lightly_supervised_omr,
    "lightly_supervised_a2s": lightly_supervised_a2s,
}
USES_ALPHA = {"lattice_combination", "lattice_combination_mbr", "confusion_network"}


def fuse(
    omr: Lattice,
    a2s: Lattice,
    alphas: Sequence[float] = DEFAULT_ALPHAS,
    methods: Sequence[str] | None = None,
    config: FusionConfig | None = None,
) -> dict[str, dict[float, list[str]]]:
    """Run fusion methods over a sweep of α for one sample.

    Parameters
    ----------
    omr, a2s : Lattice
    alphas : sequence of float in [0, 1]
        OMR weights.  Methods without α are computed once and reported under every α.
    methods : sequence of str, optional
        Names from :data:`METHODS` (default: all).
    config : FusionConfig, optional

    Returns
    -------
    dict
        ``result[method][alpha]`` = fused token list.
    """
    _check_lattices(omr, a2s, "fuse")
    names = list(METHODS) if methods is None else list(methods)
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise ValueError(f"fuse: unknown method(s) {unknown}; choose from {list(METHODS)}")
    alphas = [_check_alpha(a, "fuse") for a in alphas]
    cfg = config or FusionConfig()
    out: dict[str, dict[float, list[str]]] = {}
    for name in names:
        if name == "confusion_network":  # sausages and their alignment do not depend on α: once per sample
            cn_o = omr.confusion_network(cfg.acoustic_scale, cfg.cn_omr_lm_scale)
            cn_a = a2s.confusion_network(cfg.acoustic_scale, cfg.cn_a2s_lm_scale)
            aligned = _align(cn_o, cn_a, cfg)
            out[name] = {a: consensus(combine_confusion_networks(cn_o, cn_a, a, cfg, aligned)) for a in alphas}
        elif name in USES_ALPHA:
            out[name] = {a: METHODS[name](omr, a2s, a, cfg) for a in alphas}
        else:
            tokens = METHODS[name](omr, a2s, None, cfg)
            out[name] = {a: list(tokens) for a in alphas}
    return out
