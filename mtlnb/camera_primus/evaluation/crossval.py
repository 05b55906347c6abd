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
- **Bootstrap intervals** (beyond the thesis): :mod:`mtlnb.camera_primus.evaluation.bootstrap` -- the decoded
  test samples of each fold resampled with replacement, one draw shared by every pair, scenario and method
  (paired), the corpus SER ``Σ errors / Σ ref_len`` of what each cell kept; under k-fold the mean of the fold
  SERs; over training seeds too where the samples carry a ``train_seed``.  Percentile intervals, seeded.
- **Several training seeds**: where the tables carry a ``train_seed`` column, :func:`fold_ser` and
  :func:`select_folds` work per seed (each seed's runs select their own fold), and a figure is the mean over
  seeds (:func:`mtlnb.camera_primus.evaluation.bootstrap.draw`).
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

from mtlnb.camera_primus.evaluation import bootstrap

SCHEMES = bootstrap.SCHEMES  # the baseline's scheme (best validation fold) and standard k-fold
CRITERIA = ("pair", "omr", "a2s")  # validation result of the baseline's scheme: both networks' mean, or one's


def _seed_keys(frame: pd.DataFrame) -> list[str]:
    """``["train_seed"]`` where the table holds several trainings' rows, else ``[]``."""
    return [bootstrap.SEED] if bootstrap.SEED in frame.columns else []


def fold_ser(samples: pd.DataFrame) -> pd.DataFrame:
    """Corpus SER per (pair, scenario, fold, method): columns ``pair, scenario, fold, method, errors, ref_len,
    n_samples, ser`` (%); per training seed too (a first column ``train_seed``) where ``samples`` has one."""
    g = samples.groupby([*_seed_keys(samples), "pair", "scenario", "fold", "method"], sort=True)
    out = g.agg(errors=("errors", "sum"), ref_len=("ref_len", "sum"), n_samples=("id", "nunique")).reset_index()
    out["ser"] = 100.0 * out.errors / out.ref_len
    return out


def select_folds(validation: pd.DataFrame, eligible: pd.DataFrame | None = None,
                 criterion: str = "pair") -> pd.DataFrame:
    """The baseline's scheme: per (pair, scenario) -- and per training seed where ``validation`` has a
    ``train_seed`` column --, the fold with the best validation result.

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
    group = [*_seed_keys(v), "pair", "scenario"]
    if eligible is not None:
        on = [c for c in (*group, "fold") if c in eligible.columns]
        v = v.merge(eligible[on].drop_duplicates(), on=on)
    v = v.sort_values([*group, "criterion", "fold"], kind="stable")
    return v.groupby(group, sort=True).head(1)[[*group, "fold", "criterion"]].reset_index(drop=True)


def draws(samples: pd.DataFrame, validation: pd.DataFrame, criterion: str = "pair",
          n_boot: int = bootstrap.DEFAULT_N_BOOT, seed: int = 0,
          units: pd.DataFrame | None = None) -> bootstrap.Draws:
    """Both cross-validation schemes of every (pair, scenario, method), point estimates and paired bootstrap draws
    (:func:`mtlnb.camera_primus.evaluation.bootstrap.draw`; the folds of the baseline's scheme from
    :func:`select_folds`).

    Parameters
    ----------
    samples : DataFrame
        Kept test samples, long: ``pair, fold, scenario, id, method, errors, ref_len`` (optionally
        ``train_seed``).
    validation : DataFrame
        :func:`select_folds`'s input (optionally with ``train_seed``: each seed's runs select their own fold).
    criterion : {"pair", "omr", "a2s"}
    n_boot, seed : int
        Resamples and their seed.
    units : DataFrame, optional
        The decoded test samples (``fold, id``) the bootstrap resamples (default: those ``samples`` holds).
    """
    per_fold = fold_ser(samples)
    chosen = select_folds(validation, per_fold[[*_seed_keys(per_fold), "pair", "scenario", "fold"]], criterion)
    return bootstrap.draw(samples, units, chosen, n_boot, seed)


def cross_validate(samples: pd.DataFrame, validation: pd.DataFrame, criterion: str = "pair",
                   n_boot: int = bootstrap.DEFAULT_N_BOOT, seed: int = 0, level: float = bootstrap.DEFAULT_LEVEL,
                   units: pd.DataFrame | None = None) -> pd.DataFrame:
    """Both cross-validation schemes, with paired bootstrap intervals, for every (pair, scenario, method): the
    table of :func:`draws`.

    Returns
    -------
    DataFrame
        Columns ``pair, scheme, scenario, method, ser, ci_low, ci_high`` (%), ``folds`` (the folds the figure
        comes from, e.g. ``"4"`` or ``"0,1,2,4"``), ``n_folds, n_samples`` (kept test samples behind the figure),
        ``n_seeds, defined`` (:meth:`mtlnb.camera_primus.evaluation.bootstrap.Draws.table`).  (pair, scenario)
        without any kept sample give no rows.
    """
    return draws(samples, validation, criterion, n_boot, seed, units).table(level)


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
