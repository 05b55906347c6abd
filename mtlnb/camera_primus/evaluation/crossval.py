"""Statistics over folds and test samples for the thesis's scenarios: corpus SER per fold, the two
cross-validation schemes, the relative improvement, bootstrap intervals and a paired test (thesis §4–5,
Tables 3 and 5).

Every function reads long per-sample tables -- one row per (pair, fold, scenario, test sample, method) with the
sample's edit distance ``errors`` and reference length ``ref_len`` (tokens) -- as
:func:`mtlnb.camera_primus.evaluation.scenarios.evaluate` produces them; none decodes or trains.

Choices (the thesis is silent unless cited)
-------------------------------------------
- **Cross-validation** (thesis §4; Table 5):

  * ``"validation"`` -- the baseline's scheme: per pair and scenario, the reported test SER of *every* method
    is that of the one fold with the best validation result (Table 5 gives one fold per scenario, not per
    method).  The thesis does not define "validation result"; here it is the **mean of the two networks'
    validation SER** (greedy, their best checkpoint, on the whole validation fold: ``run.json``),
    ``criterion="pair"``; ``"omr"`` / ``"a2s"`` use one network's.  Folds whose filtered test set is empty
    cannot be reported and are not eligible (Table 5 never picks the thesis's empty fold 3).  Ties: lowest fold.
  * ``"kfold"`` -- standard k-fold: the mean of the per-fold test SERs over the folds whose filtered test set
    is not empty (the thesis, §5: "averaged across four folds instead of five").

  With one fold (``smoke``, ``mini``) the two schemes are the same number: tables say so.
- **Relative improvement** as the thesis computed its headline (:mod:`mtlnb.camera_primus.evaluation.thesis_tables`):
  ``100 · (SER_baseline − SER_GradSPSA) / SER_baseline`` per scenario, then the arithmetic mean over the
  scenarios (negative ones included) and the maximum; the thesis's 37.2 % / 86.2 % are the MBR row, GradSPSA
  k-fold against its baseline.
- **Bootstrap intervals** (beyond the thesis): test samples resampled with replacement, corpus SER
  ``Σ errors / Σ ref_len`` of each resample; under k-fold each fold is resampled on its own and the fold SERs
  averaged (the statistic the scheme reports).  Percentile interval, seeded, the same seed for every cell (the
  cells share their random draws, which keeps differences between methods free of resampling noise).
- **Paired test** baseline vs GradSPSA per scenario and method (beyond the thesis): on the test samples both
  pairs kept, over every evaluated fold, the per-sample error differences ``d_i = e_GradSPSA,i − e_baseline,i``;
  statistic ``100 · Σ d / Σ ref_len`` (the difference of the two corpus SERs on those samples); p-value of a
  two-sided **sign-flip permutation test** (under H0 the two systems' errors of a sample are exchangeable),
  ``(1 + #{|T*| ≥ |T|}) / (1 + n_perm)``; and a paired-bootstrap percentile interval of the statistic.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

SCHEMES = ("validation", "kfold")  # the baseline's scheme (best validation fold) and standard k-fold
CRITERIA = ("pair", "omr", "a2s")  # validation result of the baseline's scheme: both networks' mean, or one's


def fold_ser(samples: pd.DataFrame) -> pd.DataFrame:
    """Corpus SER per (pair, scenario, fold, method): columns ``pair, scenario, fold, method, errors, ref_len,
    n_samples, ser`` (%)."""
    g = samples.groupby(["pair", "scenario", "fold", "method"], sort=True)
    out = g.agg(errors=("errors", "sum"), ref_len=("ref_len", "sum"), n_samples=("id", "nunique")).reset_index()
    out["ser"] = 100.0 * out.errors / out.ref_len
    return out


def select_folds(validation: pd.DataFrame, eligible: pd.DataFrame | None = None,
                 criterion: str = "pair") -> pd.DataFrame:
    """The baseline's scheme: per (pair, scenario), the fold with the best validation result.

    Parameters
    ----------
    validation : DataFrame
        Columns ``pair, scenario, fold, omr_val_ser, a2s_val_ser`` (%).
    eligible : DataFrame, optional
        Columns ``pair, scenario, fold``: the folds that can be reported (non-empty test set); default all.
    criterion : {"pair", "omr", "a2s"}
        The validation result: the mean of both networks' SER, or one network's.

    Returns
    -------
    DataFrame
        One row per (pair, scenario) with an eligible fold: ``pair, scenario, fold, criterion`` (its value).
        Ties go to the lowest fold.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"select_folds: criterion must be one of {CRITERIA}, got {criterion!r}")
    v = validation.copy()
    v["criterion"] = {"pair": (v.omr_val_ser + v.a2s_val_ser) / 2, "omr": v.omr_val_ser,
                      "a2s": v.a2s_val_ser}[criterion]
    if eligible is not None:
        v = v.merge(eligible[["pair", "scenario", "fold"]].drop_duplicates(), on=["pair", "scenario", "fold"])
    v = v.sort_values(["pair", "scenario", "criterion", "fold"], kind="stable")
    return v.groupby(["pair", "scenario"], sort=True).head(1)[["pair", "scenario", "fold", "criterion"]] \
        .reset_index(drop=True)


def bootstrap_ser(errors: Sequence[float], ref_len: Sequence[float], groups: Sequence | None = None,
                  n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of a corpus SER (%), resampling samples with replacement.

    Parameters
    ----------
    errors, ref_len : sequences of length N
        Per-sample edit distances and reference lengths.
    groups : sequence of length N, optional
        Fold of each sample: each group is resampled on its own and the statistic is the mean of the group
        SERs (the k-fold figure); default one group (the corpus SER).
    n_boot : int
        Resamples.
    seed : int
        The interval is a deterministic function of the data and the seed.
    level : float in (0, 1)
        Coverage.

    Returns
    -------
    (low, high) : floats, percent
    """
    e, n = np.asarray(errors, dtype=np.float64), np.asarray(ref_len, dtype=np.float64)
    if e.shape != n.shape or e.ndim != 1 or len(e) == 0:
        raise ValueError(f"bootstrap_ser: errors and ref_len must be equal-length, non-empty 1-D; got shapes "
                         f"{e.shape} and {n.shape}")
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"bootstrap_ser: need n_boot ≥ 1 and 0 < level < 1, got {n_boot}, {level}")
    g = np.zeros(len(e), dtype=np.int64) if groups is None else pd.factorize(np.asarray(groups))[0]
    if len(g) != len(e):
        raise ValueError(f"bootstrap_ser: {len(g)} groups for {len(e)} samples")
    rng = np.random.default_rng(seed)
    stats = np.zeros(n_boot)
    labels = np.unique(g)
    for k in labels:
        idx = np.nonzero(g == k)[0]
        draw = idx[rng.integers(0, len(idx), size=(n_boot, len(idx)))]
        stats += 100.0 * e[draw].sum(axis=1) / n[draw].sum(axis=1)
    stats /= len(labels)
    tail = 100.0 * (1 - level) / 2
    low, high = np.percentile(stats, [tail, 100.0 - tail])
    return float(low), float(high)


def cross_validate(samples: pd.DataFrame, validation: pd.DataFrame, criterion: str = "pair",
                   n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Both cross-validation schemes, with bootstrap intervals, for every (pair, scenario, method).

    Parameters
    ----------
    samples : DataFrame
        Kept test samples, long: ``pair, fold, scenario, id, method, errors, ref_len``.
    validation : DataFrame
        :func:`select_folds`'s input.

    Returns
    -------
    DataFrame
        Columns ``pair, scheme, scenario, method, ser, ci_low, ci_high, folds`` (the folds the figure comes
        from, e.g. ``"4"`` or ``"0,1,2,4"``), ``n_folds, n_samples``.  (pair, scenario) without any kept
        sample give no rows.
    """
    per_fold = fold_ser(samples)
    chosen = select_folds(validation, per_fold[["pair", "scenario", "fold"]], criterion)
    chosen = {(r.pair, r.scenario): r.fold for r in chosen.itertuples()}
    rows = []
    for (pair, scenario, method), part in samples.groupby(["pair", "scenario", "method"], sort=True):
        folds = per_fold[(per_fold.pair == pair) & (per_fold.scenario == scenario) & (per_fold.method == method)]
        schemes = {"kfold": sorted(folds.fold)}
        if (pair, scenario) in chosen:
            schemes["validation"] = [chosen[(pair, scenario)]]
        for scheme, use in schemes.items():
            sub = part[part.fold.isin(use)]
            ser = float(folds[folds.fold.isin(use)].ser.mean())
            low, high = bootstrap_ser(sub.errors, sub.ref_len, sub.fold, n_boot, seed, level)
            rows.append({"pair": pair, "scheme": scheme, "scenario": scenario, "method": method, "ser": ser,
                         "ci_low": low, "ci_high": high, "folds": ",".join(str(f) for f in use),
                         "n_folds": len(use), "n_samples": int(sub.id.nunique())})
    out = pd.DataFrame(rows, columns=["pair", "scheme", "scenario", "method", "ser", "ci_low", "ci_high", "folds",
                                      "n_folds", "n_samples"])
    return out.sort_values(["pair", "scheme", "scenario", "method"], kind="stable").reset_index(drop=True)


def paired_test(errors_a: Sequence[float], errors_b: Sequence[float], ref_len: Sequence[float],
                n_perm: int = 10000, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Paired comparison of two systems on the same samples (see the module notes).

    Parameters
    ----------
    errors_a, errors_b : sequences of length N
        Per-sample edit distances of system A (e.g. the baseline) and B (e.g. GradSPSA).
    ref_len : sequence of length N
    n_perm, n_boot : int
        Sign flips and bootstrap resamples.
    seed : int

    Returns
    -------
    dict
        ``ser_a, ser_b`` (%), ``diff`` = ser_b − ser_a (points), ``p_value`` (two-sided sign-flip),
        ``ci_low, ci_high`` (paired bootstrap of ``diff``), ``n`` (samples).
    """
    a, b, n = (np.asarray(x, dtype=np.float64) for x in (errors_a, errors_b, ref_len))
    if not (a.shape == b.shape == n.shape) or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"paired_test: equal-length non-empty 1-D inputs needed, got {a.shape}, {b.shape}, "
                         f"{n.shape}")
    if n_perm < 1 or n_boot < 1:
        raise ValueError(f"paired_test: n_perm and n_boot must be ≥ 1, got {n_perm}, {n_boot}")
    total = n.sum()
    d = b - a
    observed = 100.0 * d.sum() / total
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, len(d)))
    flipped = 100.0 * (signs @ d) / total
    # a tolerance so that a flip equal to the observed value counts as "as extreme" despite float noise
    p = (1 + np.count_nonzero(np.abs(flipped) >= abs(observed) - 1e-9)) / (1 + n_perm)
    draw = rng.integers(0, len(d), size=(n_boot, len(d)))
    boot = 100.0 * d[draw].sum(axis=1) / n[draw].sum(axis=1)
    tail = 100.0 * (1 - level) / 2
    low, high = np.percentile(boot, [tail, 100.0 - tail])
    return {"ser_a": 100.0 * a.sum() / total, "ser_b": 100.0 * b.sum() / total, "diff": float(observed),
            "p_value": float(p), "ci_low": float(low), "ci_high": float(high), "n": int(len(d))}


def paired_tests(samples: pd.DataFrame, a: str = "baseline", b: str = "gradspsa", n_perm: int = 10000,
                 n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """:func:`paired_test` of pair ``b`` against pair ``a`` per (scenario, method), on the test samples both
    kept, over every evaluated fold.  Columns ``scenario, method, n, ser_<a>, ser_<b>, diff, ci_low, ci_high,
    p_value``; (scenario, method) without common samples are left out."""
    keys = ["fold", "scenario", "method", "id"]
    left = samples[samples.pair == a][keys + ["errors", "ref_len"]]
    right = samples[samples.pair == b][keys + ["errors"]]
    if left.empty or right.empty:
        raise ValueError(f"paired_tests: no samples of pair {a!r} or {b!r}")
    both = left.merge(right, on=keys, suffixes=("_a", "_b"))
    rows = []
    for (scenario, method), part in both.groupby(["scenario", "method"], sort=True):
        r = paired_test(part.errors_a, part.errors_b, part.ref_len, n_perm, n_boot, seed)
        rows.append({"scenario": scenario, "method": method, "n": r["n"], f"ser_{a}": r["ser_a"],
                     f"ser_{b}": r["ser_b"], "diff": r["diff"], "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                     "p_value": r["p_value"]})
    return pd.DataFrame(rows)


def relative_improvement(baseline: float | np.ndarray | pd.Series, other: float | np.ndarray | pd.Series):
    """``100 · (baseline − other) / baseline``: the thesis's relative SER improvement (%), > 0 when ``other``
    is better."""
    return 100.0 * (baseline - other) / baseline
