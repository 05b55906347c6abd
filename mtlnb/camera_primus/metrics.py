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

Closeness-aware error (beyond the thesis and the baseline, which count every error 1)
-------------------------------------------------------------------------------------
SER charges a note one semitone off as much as a clef in place of a note.  :func:`closeness_ser` (and
:func:`closeness_distances`, :func:`sample_closeness_ser`) runs the same Levenshtein programme with insertions and
deletions at 1 but a **substitution cost in [0, 1] that grows with how far the symbol is** (:class:`Closeness`):

- two notes (``note`` or ``gracenote``): ``pitch_share · min(|Δ semitones|, pitch_span) / pitch_span`` +
  ``(1 − pitch_share) · min(|log2(d_hyp / d_ref)|, duration_span) / duration_span``, durations in quarter notes
  with their dots (MIDI pitches: an enharmonic spelling is 0 semitones away);
- two rests: the duration term alone; a note against a rest: the whole pitch share plus the duration term;
- at least :attr:`Closeness.floor` for any substitution (so a symbol that differs only in what neither term sees --
  its spelling, a fermata, note against grace note -- still counts);
- every other substitution (clefs, key and time signatures, barlines, ties, multi-rests, a note against any of
  them, a token that does not parse) costs 1, as in SER.

With the defaults (one octave and a factor of 4 in length use up each half) a quarter note written as an eighth of
the right pitch costs 0.25, a note one semitone off 0.1 (the floor), an octave off 0.5.  As every substitution costs
at most 1, the closeness-aware distance of a pair is never above its edit distance, and it is 0 only for identical
sequences.  It is a choice of ours: the constants are documented in :class:`Closeness`, and any other can be passed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mtlnb.camera_primus.notation.semantic import parse_token

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


@dataclass(frozen=True)
class Closeness:
    """The substitution costs of the closeness-aware error (module notes); every field in the units it names."""

    pitch_span: float = 12.0  # semitones at which a pitch error costs its whole share: an octave off
    duration_span: float = 2.0  # |log2 length ratio| at which a duration error costs its whole share: 4x off
    pitch_share: float = 0.5  # pitch and duration weigh alike: a right rhythm on a wrong pitch is half an error
    floor: float = 0.1  # least cost of any substitution: a differing symbol is never free

    def __post_init__(self):
        if not (self.pitch_span > 0 and self.duration_span > 0):
            raise ValueError(f"Closeness: spans must be > 0, got {self.pitch_span}, {self.duration_span}")
        if not 0 <= self.pitch_share <= 1 or not 0 <= self.floor <= 1:
            raise ValueError(f"Closeness: pitch_share and floor must lie in [0, 1], got {self.pitch_share}, "
                             f"{self.floor}")


CLOSENESS = Closeness()
_PITCHED, _REST, _OTHER = 0, 1, 2  # token classes of the closeness-aware cost
_FEATURES: dict[str, tuple[int, float, float]] = {}  # token -> (class, MIDI pitch, log2 quarters); memo


def _features(token: str) -> tuple[int, float, float]:
    """``(class, MIDI pitch or NaN, log2 of the length in quarter notes or NaN)`` of one semantic token."""
    got = _FEATURES.get(token)
    if got is None:
        try:
            t = parse_token(token)
        except ValueError:  # not a semantic token: it can only match itself
            t = None
        if t is not None and t.kind in ("note", "gracenote"):
            got = (_PITCHED, float(t.midi_pitch), math.log2(t.quarters))
        elif t is not None and t.kind == "rest":
            got = (_REST, math.nan, math.log2(t.quarters))
        else:
            got = (_OTHER, math.nan, math.nan)
        _FEATURES[token] = got
    return got


def substitution_costs(hypothesis: Sequence[str], reference: Sequence[str],
                       closeness: Closeness = CLOSENESS) -> np.ndarray:
    """The closeness-aware cost of substituting each reference symbol by each hypothesis symbol (module notes).

    Returns
    -------
    ndarray float64, shape (len(hypothesis), len(reference))
        In [0, 1]: 0 exactly where the two symbols are equal.
    """
    h = _check_sequence(hypothesis, "substitution_costs: hypothesis")
    r = _check_sequence(reference, "substitution_costs: reference")
    fh = np.array([_features(t) for t in h], dtype=np.float64).reshape(len(h), 3)
    fr = np.array([_features(t) for t in r], dtype=np.float64).reshape(len(r), 3)
    kh, kr = fh[:, 0][:, None], fr[:, 0][None, :]
    timed = (kh != _OTHER) & (kr != _OTHER)
    both_pitched = (kh == _PITCHED) & (kr == _PITCHED)
    with np.errstate(invalid="ignore"):
        semitones = np.abs(fh[:, 1][:, None] - fr[:, 1][None, :])
        octaves = np.abs(fh[:, 2][:, None] - fr[:, 2][None, :])
    c = closeness
    pitch = np.where(both_pitched, np.minimum(np.nan_to_num(semitones), c.pitch_span) / c.pitch_span,
                     np.where(kh == kr, 0.0, 1.0))  # two rests: 0; a note against a rest: the whole share
    duration = np.minimum(np.nan_to_num(octaves), c.duration_span) / c.duration_span
    cost = np.where(timed, np.maximum(c.floor, c.pitch_share * pitch + (1 - c.pitch_share) * duration), 1.0)
    equal = np.array([[a == b for b in r] for a in h], dtype=bool).reshape(len(h), len(r))
    return np.where(equal, 0.0, np.minimum(cost, 1.0))


def substitution_cost(hypothesis_symbol: str, reference_symbol: str, closeness: Closeness = CLOSENESS) -> float:
    """The closeness-aware cost of writing ``hypothesis_symbol`` where the reference has ``reference_symbol``.

    >>> substitution_cost("note-C4_eighth", "note-C4_quarter")  # right pitch, half the length: a quarter error
    0.25
    >>> substitution_cost("clef-F4", "note-C4_quarter")
    1.0
    """
    return float(substitution_costs([hypothesis_symbol], [reference_symbol], closeness)[0, 0])


def closeness_distance(hypothesis: Sequence[str], reference: Sequence[str],
                       closeness: Closeness = CLOSENESS) -> float:
    """Least total cost turning ``hypothesis`` into ``reference``: insertions and deletions 1, substitutions
    :func:`substitution_costs` (the recurrence of :func:`edit_distances`, whose insertion chain is a running
    minimum because an insertion costs 1)."""
    costs = substitution_costs(hypothesis, reference, closeness)
    n, m = costs.shape
    cols = np.arange(m + 1, dtype=np.float64)
    row = cols.copy()
    t = np.empty(m + 1)
    for i in range(1, n + 1):
        t[0] = i
        np.minimum(row[1:] + 1.0, row[:-1] + costs[i - 1], out=t[1:])
        row = cols + np.minimum.accumulate(t - cols)
    return float(row[m])


def closeness_distances(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                        closeness: Closeness = CLOSENESS) -> np.ndarray:
    """:func:`closeness_distance` of every (hypothesis, reference) pair: float64 array (P,)."""
    hyps, refs = _check_corpus(hypotheses, references, "closeness_distances", allow_empty_references=True)
    return np.array([closeness_distance(h, r, closeness) for h, r in zip(hyps, refs)], dtype=np.float64)


def sample_closeness_ser(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                         closeness: Closeness = CLOSENESS) -> np.ndarray:
    """Per-sample closeness-aware error in percent of the reference length: float64 array (P,)."""
    hyps, refs = _check_corpus(hypotheses, references, "sample_closeness_ser")
    return 100.0 * closeness_distances(hyps, refs, closeness) / np.array([len(r) for r in refs], dtype=np.float64)


def closeness_ser(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                  closeness: Closeness = CLOSENESS) -> float:
    """Corpus-level closeness-aware error in percent, ``100 · Σ closeness distance / Σ |reference|``: SER with
    near misses charged by how near they are (module notes); never above :func:`ser` of the same pairs."""
    hyps, refs = _check_corpus(hypotheses, references, "closeness_ser")
    return 100.0 * float(closeness_distances(hyps, refs, closeness).sum()) / sum(len(r) for r in refs)


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


__all__ = ["CLOSENESS", "Closeness", "alignment", "closeness_distance", "closeness_distances", "closeness_ser",
           "edit_distance", "edit_distances", "edit_table", "mark_differences", "pairwise_edit_distances",
           "sample_closeness_ser", "sample_ser", "ser", "substitution_cost", "substitution_costs"]
