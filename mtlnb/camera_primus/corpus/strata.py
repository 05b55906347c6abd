"""Stratified subsets of a fold: the alternative to the thesis's simple random 60 % subset (notebook 09, §5).

The thesis trained and evaluated GradSPSA on a simple random 60 % of each split (its Table 1;
:func:`mtlnb.camera_primus.corpus.primus.subsample_fold`).  Camera-PrIMuS is heterogeneous -- clefs, keys, meters
and lengths are far from uniform -- so a random subset can over- or under-represent a kind of incipit.  Here a
subset of the same size keeps each stratum's share.

The rule (ours; documented here where it is made)
--------------------------------------------------
- **Stratum of a sample** (:func:`stratum`): its clef, key signature and time signature (the first token of each
  kind; ``none`` where the incipit has none) and its **length class**: short, medium or long, cut at the tertiles
  of the token counts of the split being sampled (:func:`length_edges`), so each class holds about a third.
- **Allocation** (:func:`stratified_sample`): proportional with largest remainders.  A split of ``n`` samples gives
  ``round(fraction · n)`` -- the size :func:`~mtlnb.camera_primus.corpus.primus.subsample_fold` gives, so the two
  subsets compare at equal size; stratum ``s`` of ``n_s`` samples first gets ``floor(fraction · n_s)``, and the
  slots left go one each to the strata with the largest remainders ``fraction · n_s − floor(…)`` (ties in a seeded
  random order).  Within a stratum the samples are drawn at random.  Most strata of the 4-way product are small
  (a few samples), so on them the rule falls back to random sampling across strata of equal remainder: the design
  guarantees each *common* stratum its share, not every rare one.
- **Seeds**: ``numpy.random.default_rng([seed, fold index, split number])``, as ``subsample_fold`` seeds by fold.

:func:`representation` measures what a subset keeps: per attribute, the total variation distance between the
subset's and the whole split's distributions (0 = the same shares).
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from mtlnb.camera_primus.corpus.primus import Fold

ATTRIBUTES = ("clef", "key", "meter", "length")  # what a stratum is made of, in this order
_PREFIX = {"clef": "clef-", "key": "keySignature-", "meter": "timeSignature-"}
LENGTH_CLASSES = ("short", "medium", "long")
SPLITS = ("train", "val", "test")


def length_edges(lengths: Sequence[int]) -> tuple[float, float]:
    """The tertiles of the token counts ``lengths``: a sample is short below the first, long above the second."""
    if len(lengths) == 0:
        raise ValueError("length_edges: no lengths")
    low, high = np.quantile(np.asarray(lengths, dtype=np.float64), [1 / 3, 2 / 3])
    return float(low), float(high)


def attributes(tokens: Sequence[str], edges: tuple[float, float]) -> dict[str, str]:
    """``{"clef", "key", "meter", "length"}`` of one incipit (semantic tokens); ``none`` for a missing signature."""
    out = {}
    for name, prefix in _PREFIX.items():
        out[name] = next((t[len(prefix):] for t in tokens if t.startswith(prefix)), "none")
    n = len(tokens)
    out["length"] = LENGTH_CLASSES[0] if n < edges[0] else LENGTH_CLASSES[2] if n > edges[1] else LENGTH_CLASSES[1]
    return out


def stratum(tokens: Sequence[str], edges: tuple[float, float]) -> str:
    """The stratum of one incipit: ``clef|key|meter|length`` (:func:`attributes`)."""
    a = attributes(tokens, edges)
    return "|".join(a[k] for k in ATTRIBUTES)


def split_strata(ids: Sequence[str], tokens_of: Callable[[str], Sequence[str]]) -> dict[str, str]:
    """``{id: stratum}`` of a split, its length classes cut at the split's own tertiles."""
    tokens = {sid: list(tokens_of(sid)) for sid in ids}
    edges = length_edges([len(t) for t in tokens.values()])
    return {sid: stratum(t, edges) for sid, t in tokens.items()}


def stratified_sample(ids: Sequence[str], strata: Mapping[str, str], fraction: float,
                      rng: np.random.Generator) -> tuple[str, ...]:
    """``round(fraction · len(ids))`` ids, each stratum at its proportional share (module notes), sorted.

    Parameters
    ----------
    ids : sequence of str
        The split.
    strata : mapping id -> stratum
        Must hold every id.
    fraction : float in (0, 1]
    rng : numpy Generator
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"stratified_sample: fraction must be in (0, 1], got {fraction}")
    missing = [sid for sid in ids if sid not in strata]
    if missing:
        raise ValueError(f"stratified_sample: {len(missing)} ids without a stratum, e.g. {missing[:3]}")
    ids = sorted(ids)
    total = round(fraction * len(ids))
    groups: dict[str, list[str]] = {}
    for sid in ids:
        groups.setdefault(strata[sid], []).append(sid)
    names = sorted(groups)
    quota = np.array([fraction * len(groups[s]) for s in names])
    take = np.floor(quota).astype(int)
    left = total - int(take.sum())
    if left > 0:
        tiebreak = rng.permutation(len(names))  # equal remainders: a seeded random order
        order = sorted(range(len(names)), key=lambda i: (-(quota[i] - take[i]), tiebreak[i]))
        for i in order[:left]:
            take[i] += 1
    chosen = []
    for s, k in zip(names, take):
        members = groups[s]
        chosen += [members[i] for i in rng.choice(len(members), size=int(k), replace=False)]
    return tuple(sorted(chosen))


def stratified_subsample_fold(fold: Fold, fraction: float, tokens_of: Callable[[str], Sequence[str]],
                              seed: int = 42) -> Fold:
    """The stratified counterpart of :func:`mtlnb.camera_primus.corpus.primus.subsample_fold`: each split
    subsampled to the same size, stratum by stratum (module notes); ``tokens_of(id)`` gives a sample's tokens."""
    if fraction == 1:
        return fold
    picked = {}
    for number, split in enumerate(SPLITS):
        ids = getattr(fold, split)
        rng = np.random.default_rng([seed, fold.index, number])
        picked[split] = stratified_sample(ids, split_strata(ids, tokens_of), fraction, rng)
    return Fold(fold.index, picked["train"], picked["val"], picked["test"])


def representation(subset: Sequence[str], population: Sequence[str],
                   tokens_of: Callable[[str], Sequence[str]]) -> pd.Series:
    """Per attribute of :data:`ATTRIBUTES`, the total variation distance (0 … 1) between the subset's and the
    population's distributions (length classes cut at the population's tertiles); indexed by attribute."""
    tokens = {sid: list(tokens_of(sid)) for sid in population}
    edges = length_edges([len(t) for t in tokens.values()])
    table = pd.DataFrame.from_dict({sid: attributes(t, edges) for sid, t in tokens.items()}, orient="index")
    inside = table.index.isin(set(subset))
    if not inside.any():
        raise ValueError("representation: the subset holds none of the population's ids")
    out = {}
    for name in ATTRIBUTES:
        p = table[name].value_counts(normalize=True)
        q = table[name][inside].value_counts(normalize=True).reindex(p.index, fill_value=0.0)
        out[name] = 0.5 * float((p - q).abs().sum())
    return pd.Series(out, name="total variation")
