"""Symbol Error Rate (SER) and the edit distance behind it: the study's one Levenshtein implementation.

The OMR/A2S studies report **SER = 100 · Σ edit distance / Σ |reference|** over a whole test set (corpus level,
not a mean of per-sample rates, as the baseline's ``networks/metrics.py`` computes it).  The edit distance is the
Levenshtein distance between symbol sequences: insertions, deletions and substitutions all cost 1, no
transpositions.  Symbols are ``str`` (NumPy string scalars included); a plain string is refused as a sequence, so
that a line of text is never compared character by character.

One dynamic programme, two ways of running it:

- :func:`edit_table` fills the whole table of one pair (``D[i, j]``: distance of the first ``i`` hypothesis
  symbols to the first ``j`` reference symbols); :func:`edit_distance` reads its corner and :func:`alignment`
  back-traces it (:func:`mark_differences` prints that alignment, notebook 04).
- :func:`edit_distances` runs the same recurrence for many pairs at once with NumPy (one row of the table for
  every pair per step); 5,000 pairs of ~50 symbols take well under a second.  :func:`pairwise_edit_distances`
  feeds it every pair of two lists (the confusion-network alignment of :mod:`mtlnb.camera_primus.fusion.methods`
  compares all bins of one sausage with all bins of the other).  Tests check both ways agree.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

_CHUNK = 512  # pairs per vectorised batch: pairs are sorted by length first, so a batch wastes little padding
_PAIRWISE_CELLS = 2_000_000  # table cells per step of pairwise_edit_distances (bounds its work arrays)


def edit_table(hypothesis: Sequence[str], reference: Sequence[str]) -> list[list[int]]:
    """The Levenshtein table of one pair (unit costs).

    Parameters
    ----------
    hypothesis, reference : sequence of str
        Symbol sequences of lengths n and m (lists of tokens, not strings of characters).

    Returns
    -------
    list of n + 1 lists of m + 1 int
        ``D[i][j]``: the least number of insertions, deletions and substitutions turning ``hypothesis[:i]`` into
        ``reference[:j]``; ``D[n][m]`` is the edit distance.
    """
    h = _check_sequence(hypothesis, "edit_table: hypothesis")
    r = _check_sequence(reference, "edit_table: reference")
    table = [list(range(len(r) + 1))]
    for i, x in enumerate(h, start=1):
        previous, current = table[-1], [i]
        for j, y in enumerate(r, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        table.append(current)
    return table


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two symbol sequences (unit costs): the corner of :func:`edit_table`.

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
    return edit_table(a, b)[-1][-1]


def alignment(hypothesis: Sequence[str], reference: Sequence[str]) -> list[tuple[str, str | None, str | None]]:
    """One shortest edit script of ``hypothesis`` into ``reference``, back-traced through :func:`edit_table`.

    Among equally short alignments the back-trace (from the end) prefers a match or substitution, then a
    deletion, then an insertion.

    Returns
    -------
    list of (operation, hypothesis symbol, reference symbol)
        In sequence order; ``operation`` is ``"match"``, ``"substitution"``, ``"insertion"`` (a hypothesis symbol
        the reference lacks; reference symbol None) or ``"deletion"`` (a reference symbol the hypothesis lacks;
        hypothesis symbol None).  The non-matches number :func:`edit_distance`.

    >>> alignment(["a", "x"], ["a", "b", "c"])  # x≠c, b deleted: the back-trace meets the substitution first
    [('match', 'a', 'a'), ('deletion', None, 'b'), ('substitution', 'x', 'c')]
    """
    h = _check_sequence(hypothesis, "alignment: hypothesis")
    r = _check_sequence(reference, "alignment: reference")
    d = edit_table(h, r)
    out = []
    i, j = len(h), len(r)
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (h[i - 1] != r[j - 1]):
            out.append(("match" if h[i - 1] == r[j - 1] else "substitution", h[i - 1], r[j - 1]))
            i, j = i - 1, j - 1
        elif j and d[i][j] == d[i][j - 1] + 1:
            out.append(("deletion", None, r[j - 1]))
            j -= 1
        else:
            out.append(("insertion", h[i - 1], None))
            i -= 1
    return out[::-1]


def mark_differences(hypothesis: Sequence[str], reference: Sequence[str]) -> str:
    """The hypothesis aligned to the reference (:func:`alignment`), errors marked.

    Matches print as the symbol, a substitution as ``[hyp≠ref]``, an insertion as ``[+hyp]``, a deletion as
    ``[-ref]``.

    >>> mark_differences(["a", "x", "c", "d"], ["a", "b", "c"])
    'a [x≠b] c [+d]'
    """
    marks = {"match": "{h}", "substitution": "[{h}≠{r}]", "insertion": "[+{h}]", "deletion": "[-{r}]"}
    return " ".join(marks[op].format(h=h, r=r) for op, h, r in alignment(hypothesis, reference))


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


def pairwise_edit_distances(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> np.ndarray:
    """Levenshtein distance of every ``a[i]`` to every ``b[j]``: :func:`edit_distances`' recurrence over all pairs.

    Parameters
    ----------
    a, b : sequences of symbol sequences, lengths P ≥ 1 and Q ≥ 1
        Empty symbol sequences are allowed.

    Returns
    -------
    ndarray int64, shape (P, Q)
    """
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"pairwise_edit_distances: no sequences ({len(a)} and {len(b)})")
    a = [_check_sequence(x, f"pairwise_edit_distances: a[{i}]") for i, x in enumerate(a)]
    b = [_check_sequence(y, f"pairwise_edit_distances: b[{j}]") for j, y in enumerate(b)]
    ids: dict[str, int] = {}
    a_ids, len_a = _padded_codes(a, ids, -1)
    b_ids, len_b = _padded_codes(b, ids, -2)
    P, Q = len(a), len(b)
    out = np.empty((P, Q), dtype=np.int64)
    rows = max(1, _PAIRWISE_CELLS // (Q * (b_ids.shape[0] + 1)))  # rows of ``a`` per step: bounded work arrays
    for r0 in range(0, P, rows):
        k = min(rows, P - r0)  # pair (i, j) of this block sits in column (i - r0) · Q + j
        out[r0:r0 + k] = _levenshtein_columns(np.repeat(a_ids[:, r0:r0 + k], Q, axis=1), np.tile(b_ids, (1, k)),
                                              np.repeat(len_a[r0:r0 + k], Q), np.tile(len_b, k)).reshape(k, Q)
    return out


def _distances(hyps: list[list[str]], refs: list[list[str]]) -> np.ndarray:
    n = len(hyps)
    out = np.empty(n, dtype=np.int64)
    order = sorted(range(n), key=lambda p: (len(hyps[p]), len(refs[p])))
    for start in range(0, n, _CHUNK):
        idx = order[start : start + _CHUNK]
        out[idx] = _batch_levenshtein([hyps[p] for p in idx], [refs[p] for p in idx])
    return out


def _padded_codes(seqs: list[list[str]], ids: dict[str, int], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Symbols as ints (numbered in ``ids``, shared by both sides), one sequence per column, padded with ``pad``:
    shape (longest length, len(seqs)), and the lengths."""
    lengths = np.array([len(x) for x in seqs], dtype=np.int64)
    codes = np.full((int(lengths.max(initial=0)), len(seqs)), pad, dtype=np.int32)
    for c, x in enumerate(seqs):
        codes[: len(x), c] = [ids.setdefault(t, len(ids)) for t in x]
    return codes, lengths


def _batch_levenshtein(a_list: list[list[str]], b_list: list[list[str]]) -> np.ndarray:
    """Distances of one batch of pairs (``a_list[p]``, ``b_list[p]``)."""
    ids: dict[str, int] = {}  # only equality matters, not the numbering
    a_ids, len_a = _padded_codes(a_list, ids, -1)  # padding -1 and -2 never equal a symbol or each other
    b_ids, len_b = _padded_codes(b_list, ids, -2)
    return _levenshtein_columns(a_ids, b_ids, len_a, len_b)


def _levenshtein_columns(a_ids: np.ndarray, b_ids: np.ndarray, len_a: np.ndarray, len_b: np.ndarray) -> np.ndarray:
    """The recurrence for pair p = column p of ``a_ids`` (n, P) against column p of ``b_ids`` (m, P); tables are
    laid out (column j, pair) so every step runs along contiguous pairs.  Returns shape (P,) int64."""
    (n, p), m = a_ids.shape, b_ids.shape[0]
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
    if not set(map(type, seq)) <= {str}:  # the fast test; subclasses of str (numpy.str_) pass the slow one
        bad = next(((j, t) for j, t in enumerate(seq) if not isinstance(t, str)), None)
        if bad is not None:
            raise ValueError(f"{where}[{bad[0]}] is {type(bad[1]).__name__} {bad[1]!r:.40}; symbols must be str")
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


__all__ = ["alignment", "edit_distance", "edit_distances", "edit_table", "mark_differences",
           "pairwise_edit_distances", "sample_ser", "ser"]
