"""Symbol Error Rate (SER) and the edit distance behind it.

The OMR/A2S studies report **SER = 100 · Σ edit distance / Σ |reference|** over a whole test set (corpus level,
not a mean of per-sample rates; ``late-fusion-baseline.md`` §4, and the baseline's ``networks/metrics.py``).  The
edit distance is the Levenshtein distance between symbol sequences: insertions, deletions and substitutions all
cost 1.

Speed: :func:`edit_distances` runs the dynamic programme for many pairs at once with NumPy (one row of the
table for every pair per step); 5,000 pairs of ~50 symbols take well under a second.  :func:`edit_distance` is
the plain two-row version for one pair, kept as the readable reference.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_CHUNK = 512  # pairs per vectorised batch: pairs are sorted by length first, so a batch wastes little padding


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two symbol sequences (unit costs).

    Parameters
    ----------
    a, b : sequence of str
        Symbol sequences (lists of tokens, not strings of characters).

    Returns
    -------
    int
        The least number of insertions, deletions and substitutions turning ``a`` into ``b``.
    """
    a = _check_sequence(a, "edit_distance: a")
    b = _check_sequence(b, "edit_distance: b")
    if len(a) < len(b):
        a, b = b, a  # the row runs over the shorter sequence
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def edit_distances(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Levenshtein distance of every (hypothesis, reference) pair, vectorised over the pairs.

    Parameters
    ----------
    hypotheses, references : sequence of sequences of str, equal lengths P
        Empty sequences are allowed here (unlike in :func:`ser`).

    Returns
    -------
    ndarray int64, shape (P,)

    Notes
    -----
    Row ``i`` of the table is ``D[i, j] = min(D[i-1, j] + 1, D[i-1, j-1] + [a_i ≠ b_j], D[i, j-1] + 1)``.  The
    first two terms are elementwise; the insertion chain is ``D[i, j] = j + min_{k ≤ j} (t[k] − k)`` with ``t``
    the row of the first two terms, a running minimum (``np.minimum.accumulate``).  Rows past a pair's own
    length and columns past its reference length never feed its answer, so pairs of different lengths share a
    padded batch: each answer is read at its own ``(len(a), len(b))``.
    """
    hyps, refs = _check_corpus(hypotheses, references, "edit_distances", allow_empty_references=True)
    return _distances(hyps, refs)


def _distances(hyps: list[list[str]], refs: list[list[str]]) -> np.ndarray:
    n = len(hyps)
    out = np.empty(n, dtype=np.int64)
    order = sorted(range(n), key=lambda p: (len(hyps[p]), len(refs[p])))
    for start in range(0, n, _CHUNK):
        idx = order[start : start + _CHUNK]
        out[idx] = _batch_levenshtein([hyps[p] for p in idx], [refs[p] for p in idx])
    return out


def _batch_levenshtein(a_list: list[list[str]], b_list: list[list[str]]) -> np.ndarray:
    """Distances of one batch; tables are laid out (column j, pair) so every step runs along contiguous pairs."""
    ids = {t: k for k, t in enumerate(set().union(*a_list, *b_list))}  # only equality matters, not the numbering
    len_a = np.array([len(a) for a in a_list], dtype=np.int64)
    len_b = np.array([len(b) for b in b_list], dtype=np.int64)
    p, n, m = len(a_list), int(len_a.max(initial=0)), int(len_b.max(initial=0))
    a_ids = np.full((n, p), -1, dtype=np.int32)  # padding -1 and -2 never equal a symbol or each other
    b_ids = np.full((m, p), -2, dtype=np.int32)
    for r, (a, b) in enumerate(zip(a_list, b_list)):
        a_ids[: len(a), r] = list(map(ids.__getitem__, a))
        b_ids[: len(b), r] = list(map(ids.__getitem__, b))
    small = np.int16 if max(n, m) < np.iinfo(np.int16).max else np.int32  # half the memory traffic of int32
    cols = np.arange(m + 1, dtype=small)[:, None]
    row = np.repeat(cols, p, axis=1)  # D[0, j] = j
    pairs = np.arange(p)
    out = len_b.copy()  # pairs with an empty a: D[0, len_b]
    t = np.empty_like(row)
    for i in range(1, n + 1):
        t[0] = i
        np.minimum(row[1:] + 1, row[:-1] + (a_ids[i - 1] != b_ids), out=t[1:])
        row = cols + np.minimum.accumulate(t - cols, axis=0)
        done = len_a == i
        out[done] = row[len_b[done], pairs[done]]
    return out


def sample_ser(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> np.ndarray:
    """Per-sample SER in percent: ``100 · edit_distance(h, r) / |r|`` for every pair.

    Parameters
    ----------
    hypotheses, references : sequence of sequences of str, equal lengths P
        Each reference must be non-empty.

    Returns
    -------
    ndarray float64, shape (P,)
        Percent; can exceed 100 when a hypothesis is much longer than its reference.
    """
    hyps, refs = _check_corpus(hypotheses, references, "sample_ser")
    return 100.0 * _distances(hyps, refs) / np.array([len(r) for r in refs], dtype=np.float64)


def ser(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> float:
    """Corpus-level Symbol Error Rate in percent: ``100 · Σ edit distance / Σ |reference|``.

    Parameters
    ----------
    hypotheses, references : sequence of sequences of str, equal lengths P ≥ 1
        Hypotheses may be empty; references may not.

    Returns
    -------
    float
        Percent.
    """
    hyps, refs = _check_corpus(hypotheses, references, "ser")
    return 100.0 * float(_distances(hyps, refs).sum()) / sum(len(r) for r in refs)


def _check_sequence(seq, where: str) -> list[str]:
    if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
        raise ValueError(
            f"{where} is {type(seq).__name__} {seq!r:.60}; expected a sequence of symbol strings (split the line first)"
        )
    if not set(map(type, seq)) <= {str}:
        j, t = next((j, t) for j, t in enumerate(seq) if not isinstance(t, str))
        raise ValueError(f"{where}[{j}] is {type(t).__name__} {t!r:.40}; symbols must be str")
    return list(seq)


def _check_corpus(hypotheses, references, where: str, allow_empty_references: bool = False):
    """Validated ``(hypotheses, references)`` as lists of lists of str."""
    for name, seqs in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(seqs, (str, bytes)) or not isinstance(seqs, Sequence):
            raise ValueError(f"{where}: {name} must be a sequence of symbol sequences, got {type(seqs).__name__}")
    if len(hypotheses) != len(references):
        raise ValueError(f"{where}: {len(hypotheses)} hypotheses but {len(references)} references")
    if len(references) == 0:
        raise ValueError(f"{where}: no samples")
    hyps = [_check_sequence(h, f"{where}: hypotheses[{i}]") for i, h in enumerate(hypotheses)]
    refs = [_check_sequence(r, f"{where}: references[{i}]") for i, r in enumerate(references)]
    if not allow_empty_references:
        for i, r in enumerate(refs):
            if not r:
                raise ValueError(f"{where}: references[{i}] is empty; SER is undefined for an empty reference")
    return hyps, refs


__all__ = ["edit_distance", "edit_distances", "sample_ser", "ser"]
