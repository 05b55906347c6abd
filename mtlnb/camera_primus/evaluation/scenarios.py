"""The thesis's nine OMR/A2S scenarios end to end: test-set filtering, both cross-validation schemes, Tables 3–5,
the relative-improvement headline, bootstrap intervals, a paired test, and the calibration of the OMR subsets
(issue 5; thesis §4–6, ``reference/late-fusion-baseline.md`` §8).

What a scenario is (thesis §3 "Evaluation metric", §5; the baseline's ``folds_creation.py``)
--------------------------------------------------------------------------------------------
Scenario ``s`` = (OMR level, A2S level), each high (≈ 30 % SER), medium (≈ 20 %) or low (≈ 10 %): 1 (H,H),
2 (H,M), 3 (H,L), 4 (M,H) … 9 (L,L).  The OMR level comes from training the OMR on a random p % of the training
fold (``omr_s<s>``, :func:`mtlnb.camera_primus.networks.runs.train_scenario_omrs`); the A2S level from **filtering the test fold**
by the A2S model's per-sample SER: H keeps every sample, M those with SER ≤ 30, L those with SER ≤ 10
(:attr:`ScenarioConfig.a2s_thresholds`).  Per fold and scenario this module fuses, for each *pair*, the
scenario's OMR with an A2S network: ``a2s`` (the baseline pair) or ``gradspsa`` (the GradSPSA pair), through
:func:`mtlnb.camera_primus.fusion.pipeline.run_fold` (cached per fold and OMR–A2S pair), and keeps the test samples that pass the
filter.

Choices (the thesis is silent unless cited)
-------------------------------------------
- **Per-sample A2S SER of the filter: greedy CTC decoding** (``filter_decoder="greedy"``).  The baseline's
  ``filter_samples`` calls its ``evaluate_model`` on one sample at a time -- the unimodal evaluation, which is
  greedy CTC (reference §4) -- and keeps ``SER ≤ threshold`` (inclusive).  ``"best_path"`` (the LM best path at
  the read-off tuned on validation) is switchable.
- **Which A2S filters a pair's test set: its own** (``filter_by="own"``).  The thesis's Table 4 gives the test
  sizes "for GradSPSA" with fold 3 empty at the M and L levels, which only GradSPSA's own A2S could produce; so
  each pair's A2S filters its own test set.  ``filter_by="baseline"`` filters both pairs with the baseline A2S
  (one test set per scenario, as the baseline's fixed ``Scenario<s>`` lists).
- **GradSPSA is not retrained per scenario.**  Its A2S attends to the fold's full-data ``omr`` features during
  training and inference (:func:`mtlnb.camera_primus.networks.runs.train_gradspsa`); in scenario ``s`` it is fused with
  ``omr_s<s>``.  Evidence: Table 4 gives one test set per A2S level for the three OMR levels (scenarios 2, 5, 8
  share 1,249 / 1,016 / … samples), so the GradSPSA A2S -- whose filter sets them -- is the same in all nine
  scenarios of a fold.  Retraining it per scenario would cost 9 GradSPSA trainings per fold instead of 1.
  Consequence worth knowing: in weak-OMR scenarios GradSPSA's A2S still read a strong OMR's features.
- **OMR levels without subset trainings** (``ScenarioConfig.omr_levels``; *not the thesis's method*).  Where the
  profile lists ``TrainProfile.omr_snapshot_levels`` (mini: 50 / 35 / 25 % validation SER for H / M / L), a
  level's OMR is the fold's full-data ``omr`` at the first epoch of its training whose validation SER reached the
  level (:func:`mtlnb.camera_primus.networks.runs.omr_level_run`), and the three scenarios of a level share it.  Why: mini's
  training fold has 1,020 images, so the baseline's 2–10.5 % subsets hold 20–107 images, and OMRs trained on them
  stay on the CTC plateau (100 % SER, measured), whose flat posteriors make word graphs explode; and the mini OMR's
  best is ≈ 23 %, so the thesis's 30 / 20 / 10 % cannot be reached (the levels are shifted up).  What differs: a
  snapshot is an *under-trained* network on all the data, the thesis's is a converged one on little data (it
  overfits differently).  ``"subsets"`` is the thesis's method (the default wherever no levels are listed).
- **α = 0.5** for the methods with a weight (thesis §4: "α equals to 0.5").
- **Method rows**: the thesis's five rows are :data:`THESIS_ROWS` (``lattice_combination`` is its "Minimum
  Bayes Risk": what the baseline's code runs, see :mod:`mtlnb.camera_primus.fusion.methods`); ``lattice_combination_mbr`` and the
  unimodal rows (greedy and LM best path of each network, on the same filtered samples) are added below them.
- **Cross-validation** (thesis §4, line 206 of the seed; Table 5):

  * ``"validation"`` -- the baseline's scheme: per pair and scenario, the reported test SER of *every* method
    is that of the one fold with the best validation result (Table 5 gives one fold per scenario, not per
    method).  The thesis does not define "validation result"; here it is the **mean of the two networks'
    validation SER** (greedy, their best checkpoint, on the whole validation fold: ``run.json``),
    ``criterion="pair"``; ``"omr"`` / ``"a2s"`` use one network's.  Folds whose filtered test set is empty
    cannot be reported and are not eligible (Table 5 never picks the thesis's empty fold 3).  Ties: lowest fold.
  * ``"kfold"`` -- standard k-fold: the mean of the per-fold test SERs over the folds whose filtered test set
    is not empty (the thesis, line 256: "averaged across four folds instead of five").

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
- **Calibration** (:func:`calibrate_percents`): on the synthetic corpus the baseline's percentages do not give
  its levels.  OMRs are trained on a few subset sizes with the profile's scenario epochs, their *validation*
  SER (never test) is interpolated over log(percent) (made non-increasing first), and each level's percent is
  read off; the three scenarios of a level keep the baseline's ratios between their percentages (2.5 : 2.2 : 2.0
  for H, …: smaller subsets where the A2S filter leaves easier samples).  The levels actually reached on the
  test sets are always reported (:func:`levels_reached`).

Decoding cost
-------------
A scenario's fusion needs both word graphs of every test sample; the A2S graphs are the same in all nine
scenarios of a fold (same A2S posteriors, same LM: the training fold's transcripts).  The fold's lattice cache
(:func:`mtlnb.camera_primus.fusion.pipeline.fold_lattice_dir`) stores every decoded graph, so each network's graphs are decoded
once per fold, not once per scenario and pair.  Filtering is done afterwards on the whole decoded test fold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from mtlnb.camera_primus.networks import runs as experiments
from mtlnb.core import io
from mtlnb.camera_primus.fusion import pipeline as late_fusion
from mtlnb.camera_primus.evaluation import thesis_tables
from mtlnb.core.paths import figures_dir

SCENARIOS = tuple(range(1, 10))
LEVELS = ("H", "M", "L")  # high ≈ 30 %, medium ≈ 20 %, low ≈ 10 % SER
LEVEL_TARGETS = {"H": 30.0, "M": 20.0, "L": 10.0}  # SER (%) each level stands for (thesis §3)
SCHEMES = ("validation", "kfold")
CRITERIA = ("pair", "omr", "a2s")
FILTER_DECODERS = ("greedy", "best_path")
FILTER_BY = ("own", "baseline")
OMR_LEVEL_SOURCES = ("auto", "subsets", "snapshots")
# Our fusion method -> the thesis's Table 3 row.
THESIS_ROWS = {
    "lattice_combination": "Minimum Bayes Risk",
    "lightly_supervised_a2s": "Lightly-supervised A2S",
    "lightly_supervised_omr": "Lightly-supervised OMR",
    "confusion_network": "Confusion network",
    "smith_waterman": "Smith-Waterman",
}
EXTRA_ROWS = {
    "lattice_combination_mbr": "MBR decoding of the union (Kaldi's intent; not in the thesis)",
    "greedy_omr": "OMR alone, greedy",
    "greedy_a2s": "A2S alone, greedy",
    "best_path_omr": "OMR alone, LM best path",
    "best_path_a2s": "A2S alone, LM best path",
}
METHOD_LABELS = {**THESIS_ROWS, **EXTRA_ROWS}
# Our (pair, scheme) -> the Table 3 block it stands beside.  The thesis's re-run baseline has one block and does
# not say under which scheme; it stands beside both of ours.
THESIS_BLOCK = {("baseline", "validation"): "baseline_thesis", ("baseline", "kfold"): "baseline_thesis",
                ("gradspsa", "validation"): "gradspsa_validation", ("gradspsa", "kfold"): "gradspsa_kfold"}


def levels(scenario: int) -> tuple[str, str]:
    """(OMR level, A2S level) of a scenario: 1 → ("H", "H"), 2 → ("H", "M"), …, 9 → ("L", "L")."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be in 1..9, got {scenario!r}")
    return LEVELS[(scenario - 1) // 3], LEVELS[(scenario - 1) % 3]


def label(scenario: int) -> str:
    """``"3 (H,L)"``: the thesis's N_{OMR level, A2S level}."""
    o, a = levels(scenario)
    return f"{scenario} ({o},{a})"


@dataclass(frozen=True)
class ScenarioConfig:
    """How scenarios are evaluated (see the module notes for each choice)."""

    a2s_thresholds: tuple[float | None, float | None, float | None] = (None, 30.0, 10.0)  # per A2S level H/M/L:
    # keep test samples with A2S SER ≤ this (%); None keeps all (the baseline's folds_creation.py)
    filter_decoder: str = "greedy"  # per-sample A2S SER of the filter: the baseline's unimodal (greedy) decoding
    filter_by: str = "own"  # "own": each pair's A2S filters its test set (Table 4 is GradSPSA's); "baseline"
    alpha: float = 0.5  # OMR weight of the α methods: the thesis's fixed value
    pairs: tuple[tuple[str, str], ...] = (("baseline", "a2s"), ("gradspsa", "gradspsa"))  # (pair, A2S run)
    methods: tuple[str, ...] = (*THESIS_ROWS, *EXTRA_ROWS)  # rows of the tables, fusion and unimodal
    criterion: str = "pair"  # validation result of the baseline's scheme: mean val SER of both networks
    # Where the OMR levels come from: "subsets" (the thesis: OMRs trained on p % of the training fold),
    # "snapshots" (the main OMR's training at TrainProfile.omr_snapshot_levels), "auto": snapshots where the
    # profile lists levels (mini), else subsets.
    omr_levels: str = "auto"

    def __post_init__(self):
        if len(self.a2s_thresholds) != 3:
            raise ValueError(f"ScenarioConfig.a2s_thresholds: one per A2S level (H, M, L), got "
                             f"{self.a2s_thresholds}")
        if self.filter_decoder not in FILTER_DECODERS:
            raise ValueError(f"ScenarioConfig.filter_decoder must be one of {FILTER_DECODERS}, "
                             f"got {self.filter_decoder!r}")
        if self.filter_by not in FILTER_BY:
            raise ValueError(f"ScenarioConfig.filter_by must be one of {FILTER_BY}, got {self.filter_by!r}")
        if self.filter_by == "baseline" and "baseline" not in dict(self.pairs):
            raise ValueError("ScenarioConfig: filter_by='baseline' needs a pair named 'baseline'")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"ScenarioConfig.alpha must be in [0, 1], got {self.alpha}")
        if self.criterion not in CRITERIA:
            raise ValueError(f"ScenarioConfig.criterion must be one of {CRITERIA}, got {self.criterion!r}")
        if self.omr_levels not in OMR_LEVEL_SOURCES:
            raise ValueError(f"ScenarioConfig.omr_levels must be one of {OMR_LEVEL_SOURCES}, got {self.omr_levels!r}")
        unknown = [m for m in self.methods if m not in METHOD_LABELS]
        if unknown:
            raise ValueError(f"ScenarioConfig.methods: unknown {unknown}; choose from {list(METHOD_LABELS)}")

    def threshold(self, scenario: int) -> float | None:
        """The A2S filter threshold (%) of a scenario (None: the whole test fold)."""
        return self.a2s_thresholds[LEVELS.index(levels(scenario)[1])]

    def omr_level_source(self, profile) -> str:
        """``"subsets"`` or ``"snapshots"`` for ``profile`` (resolving ``"auto"``); ``ValueError`` when snapshots
        are asked for and the profile lists no ``TrainProfile.omr_snapshot_levels``."""
        listed = profile.train.omr_snapshot_levels is not None
        if self.omr_levels == "auto":
            return "snapshots" if listed else "subsets"
        if self.omr_levels == "snapshots" and not listed:
            raise ValueError(f"ScenarioConfig.omr_levels='snapshots' needs TrainProfile.omr_snapshot_levels; "
                             f"profile {profile.name!r} lists none")
        return self.omr_levels


# ---------------------------------------------------------------------------------------------------------------
# filtering one fold's per-sample table


def a2s_sample_ser(per_sample: pd.DataFrame, decoder: str = "greedy") -> pd.Series:
    """Per-sample A2S SER (%) of a late-fusion per-sample table: ``100 · errors / ref_len`` of its
    ``greedy_a2s`` (or ``best_path_a2s``) rows, indexed by sample id."""
    if decoder not in FILTER_DECODERS:
        raise ValueError(f"a2s_sample_ser: decoder must be one of {FILTER_DECODERS}, got {decoder!r}")
    rows = per_sample[per_sample.method == f"{decoder}_a2s"]
    if rows.empty:
        raise ValueError(f"a2s_sample_ser: the table has no {decoder}_a2s rows")
    if (rows.ref_len <= 0).any():
        raise ValueError("a2s_sample_ser: a reference of length 0")
    return (100.0 * rows.errors / rows.ref_len).set_axis(rows.id.to_numpy()).rename("a2s_ser")


def filter_ids(sample_ser: pd.Series, threshold: float | None) -> list[str]:
    """Ids whose SER is ≤ ``threshold`` (inclusive, as the baseline), in the series' order; all for None."""
    if threshold is None:
        return list(sample_ser.index)
    if not threshold >= 0:
        raise ValueError(f"filter_ids: threshold must be ≥ 0 or None, got {threshold}")
    return list(sample_ser.index[sample_ser.to_numpy() <= threshold])


def scenario_rows(per_sample: pd.DataFrame, ids: Sequence[str], alpha: float,
                  methods: Sequence[str]) -> pd.DataFrame:
    """The rows of ``per_sample`` for the kept ``ids`` and ``methods``, α methods at ``alpha``.

    Returns
    -------
    DataFrame
        Columns ``id, method, errors, ref_len``; one row per (id, method).
    """
    ps = per_sample[per_sample.method.isin(methods) & per_sample.id.isin(set(ids))]
    at = ps.alpha.isna() | np.isclose(ps.alpha.fillna(-1.0), alpha)
    have = set(per_sample.method[per_sample.alpha.notna()])
    missing = [m for m in methods if m in have and not np.isclose(per_sample.alpha[per_sample.method == m],
                                                                  alpha).any()]
    if missing:
        raise ValueError(f"scenario_rows: α = {alpha} was not swept for {missing} (alphas: "
                         f"{sorted(per_sample.alpha.dropna().unique())})")
    out = ps[at][["id", "method", "errors", "ref_len"]].reset_index(drop=True)
    if out.duplicated(["id", "method"]).any():
        raise ValueError("scenario_rows: several rows per (id, method) at this α")
    return out


# ---------------------------------------------------------------------------------------------------------------
# per-fold SER, the two cross-validation schemes, bootstrap, paired test


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


# ---------------------------------------------------------------------------------------------------------------
# tables


def relative_improvement(baseline: float | np.ndarray | pd.Series, other: float | np.ndarray | pd.Series):
    """``100 · (baseline − other) / baseline``: the thesis's relative SER improvement (%), > 0 when ``other``
    is better."""
    return 100.0 * (baseline - other) / baseline


def table3(cv: pd.DataFrame, thesis: bool = True) -> pd.DataFrame:
    """Table 3: SER (%) per (pair, scheme, method) × scenario, ours beside the thesis's.

    Parameters
    ----------
    cv : DataFrame
        :func:`cross_validate`.
    thesis : bool
        Add the thesis's block (:data:`THESIS_BLOCK`) beside ours.

    Returns
    -------
    DataFrame
        Index ``(pair, scheme, method)`` (method as its label, :data:`METHOD_LABELS`), rows in the thesis's
        order; columns scenarios 1–9, or with ``thesis`` ``(scenario, source)`` with source "ours" / "thesis".
    """
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    ours = cv.pivot(index=["pair", "scheme", "method"], columns="scenario", values="ser")
    ours = ours.reindex(columns=list(SCENARIOS))
    ours = ours.iloc[sorted(range(len(ours)), key=lambda i: (ours.index[i][0], ours.index[i][1],
                                                             order.get(ours.index[i][2], 99)))]
    if thesis:
        t = thesis_tables.table3()
        rows = []
        for pair, scheme, method in ours.index:
            block = THESIS_BLOCK.get((pair, scheme))
            row = THESIS_ROWS.get(method)
            rows.append(t.loc[(block, row)] if block and row else pd.Series(np.nan, index=list(SCENARIOS)))
        theirs = pd.DataFrame(rows, index=ours.index, columns=list(SCENARIOS))
        ours = pd.concat({"ours": ours, "thesis": theirs}, axis=1).swaplevel(0, 1, axis=1)
        ours = ours.reindex(columns=pd.MultiIndex.from_product([list(SCENARIOS), ["ours", "thesis"]],
                                                               names=["scenario", "source"]))
    ours.index = ours.index.set_levels([METHOD_LABELS.get(m, m) for m in ours.index.levels[2]], level=2)
    return ours


def test_sizes(sizes: pd.DataFrame, pair: str, thesis: bool = True) -> pd.DataFrame:
    """Table 4: kept test samples per fold × scenario for one pair, with a total row; with ``thesis`` the
    thesis's GradSPSA sizes beside (columns ``(scenario, source)``).

    ``sizes`` has columns ``pair, fold, scenario, n_decoded, n_kept``."""
    part = sizes[sizes.pair == pair]
    if part.empty:
        raise ValueError(f"test_sizes: no sizes for pair {pair!r}")
    ours = part.pivot(index="fold", columns="scenario", values="n_kept").reindex(columns=list(SCENARIOS))
    ours.loc["total"] = ours.sum()
    ours = ours.astype("Int64")
    if not thesis:
        return ours
    t = thesis_tables.table4_by_scenario()
    t.loc["total"] = t.sum()
    both = pd.concat({"ours": ours, "thesis": t.astype("Int64")}, axis=1).swaplevel(0, 1, axis=1)
    folds = sorted(set(ours.index[:-1]) | set(t.index[:-1]))
    return both.reindex(index=[*folds, "total"],
                        columns=pd.MultiIndex.from_product([list(SCENARIOS), ["ours", "thesis"]],
                                                           names=["scenario", "source"]))


def empty_scenarios(sizes: pd.DataFrame, a2s_filter: pd.DataFrame) -> pd.DataFrame:
    """Why a table cell is empty: the (pair, scenario) whose filtered test set is empty in every fold, with the
    lowest per-sample A2S SER the filter saw.  Columns ``pair, scenario, reason``."""
    kept = sizes.groupby(["pair", "scenario"]).agg(n=("n_kept", "sum"), threshold=("threshold", "first"))
    rows = []
    for (pair, scenario), r in kept[kept.n == 0].iterrows():
        lowest = a2s_filter[a2s_filter.pair == pair].a2s_ser.min()
        rows.append({"pair": pair, "scenario": scenario,
                     "reason": f"no decoded test sample has A2S SER ≤ {r.threshold:g} % (the lowest is "
                               f"{lowest:.1f} %)"})
    return pd.DataFrame(rows, columns=["pair", "scenario", "reason"])


def scenario_train_sizes(study, fold: int, percents: Sequence[float]) -> list[int]:
    """Training samples of each scenario OMR at ``percents`` (what :func:`train_scenario_omr` trains on)."""
    return [len(experiments.scenario_ids(study, fold, s, None if float(p) == float(d) else p))
            for s, p, d in zip(SCENARIOS, percents, experiments.SCENARIO_PERCENTS)]


def selected_folds_table(cv: pd.DataFrame, thesis: bool = True) -> pd.DataFrame:
    """Table 5: the fold the baseline's scheme selected per scenario (rows: pairs, plus the thesis's)."""
    v = cv[cv.scheme == "validation"].drop_duplicates(["pair", "scenario"])
    out = v.pivot(index="pair", columns="scenario", values="folds").reindex(columns=list(SCENARIOS))
    if thesis:
        out.loc["thesis (GradSPSA)"] = thesis_tables.table5().astype(str)
    return out


def improvement_table(cv: pd.DataFrame, baseline: str = "baseline", other: str = "gradspsa",
                      scheme: str = "kfold", baseline_scheme: str | None = None) -> pd.DataFrame:
    """Relative SER improvement (%) of ``other`` over ``baseline`` per method × scenario, with the thesis's
    summary columns ``average`` (mean over the scenarios that have both) and ``best`` / ``best scenario``."""
    if scheme not in SCHEMES or (baseline_scheme or scheme) not in SCHEMES:
        raise ValueError(f"improvement_table: schemes must be in {SCHEMES}")
    get = lambda pair, s: cv[(cv.pair == pair) & (cv.scheme == s)].pivot(  # noqa: E731
        index="method", columns="scenario", values="ser").reindex(columns=list(SCENARIOS))
    b, g = get(baseline, baseline_scheme or scheme), get(other, scheme)
    rel = relative_improvement(b, g).dropna(how="all")
    by_scenario = rel[list(SCENARIOS)]
    rel["average"] = by_scenario.mean(axis=1)
    rel["best"] = by_scenario.max(axis=1)
    rel["best scenario"] = [row.astype(float).idxmax() if row.notna().any() else np.nan
                            for _, row in by_scenario.iterrows()]
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    return rel.iloc[sorted(range(len(rel)), key=lambda i: order.get(rel.index[i], 99))]


def findings(cv: pd.DataFrame, scheme: str = "kfold") -> pd.DataFrame:
    """The thesis's qualitative claims checked per (pair, scenario) for one scheme: the best of its five fusion
    rows, whether it beats both unimodal systems (greedy and LM best path), and the rank of MBR among the five.

    Returns
    -------
    DataFrame
        Index ``(pair, scenario)``; columns ``best fusion`` (method), ``best fusion SER``, ``best unimodal SER``,
        ``fusion beats unimodal``, ``MBR rank`` (1 = best; ties share the better rank).
    """
    part = cv[cv.scheme == scheme]
    rows = []
    for (pair, scenario), g in part.groupby(["pair", "scenario"], sort=True):
        ser = g.set_index("method").ser
        fused = ser.reindex(list(THESIS_ROWS)).dropna()
        uni = ser.reindex(["greedy_omr", "greedy_a2s", "best_path_omr", "best_path_a2s"]).dropna()
        if fused.empty:
            continue
        best = fused.idxmin()
        mbr = fused.get("lattice_combination", math.nan)
        rows.append({"pair": pair, "scenario": scenario, "best fusion": THESIS_ROWS[best],
                     "best fusion SER": fused[best], "best unimodal SER": uni.min() if len(uni) else math.nan,
                     "fusion beats unimodal": bool(len(uni) and fused[best] < uni.min()),
                     "MBR rank": int((fused < mbr).sum() + 1) if not math.isnan(mbr) else math.nan})
    return pd.DataFrame(rows).set_index(["pair", "scenario"])


def levels_reached(samples: pd.DataFrame, omr_targets: Mapping[str, float] = LEVEL_TARGETS) -> pd.DataFrame:
    """The unimodal levels each scenario actually reached on its kept test samples: greedy OMR and A2S SER (%)
    per (pair, fold, scenario), beside the levels' targets (``omr_targets``: per OMR level, default the thesis's;
    :attr:`ScenarioResults.omr_targets` where the levels are snapshots)."""
    uni = samples[samples.method.isin(["greedy_omr", "greedy_a2s"])]
    if uni.empty:
        raise ValueError("levels_reached: the samples hold no greedy_omr / greedy_a2s rows")
    g = fold_ser(uni).pivot(index=["pair", "fold", "scenario"], columns="method", values="ser")
    n = fold_ser(uni).groupby(["pair", "fold", "scenario"]).n_samples.first()
    out = g.rename(columns={"greedy_omr": "OMR SER", "greedy_a2s": "A2S SER"})[["OMR SER", "A2S SER"]]
    out["n"] = n
    out["target OMR"] = [omr_targets[levels(s)[0]] for s in out.index.get_level_values("scenario")]
    out["target A2S"] = [LEVEL_TARGETS[levels(s)[1]] for s in out.index.get_level_values("scenario")]
    return out


def save_tables(tables: Mapping[str, pd.DataFrame], profile: str) -> list[Path]:
    """Write each table as ``figures/<profile>/tables/<name>.csv`` (atomically); returns the paths."""
    out = []
    for name, df in tables.items():
        path = figures_dir(profile) / "tables" / f"{name}.csv"
        io.write_text(path, df.to_csv())
        out.append(path)
    return out


# ---------------------------------------------------------------------------------------------------------------
# running the scenarios on a study


def scenario_percents(profile) -> tuple[float, ...]:
    """The profile's scenario OMR subset sizes (%): ``profile.train.scenario_percents``, or where that is None the
    baseline's :data:`mtlnb.camera_primus.networks.runs.SCENARIO_PERCENTS`."""
    percents = tuple(profile.train.scenario_percents or experiments.SCENARIO_PERCENTS)
    if len(percents) != len(SCENARIOS) or not all(0 < p <= 100 for p in percents):
        raise ValueError(f"scenario percents must be nine values in (0, 100], got {percents}")
    return percents


def run_names(percents: Sequence[float]) -> tuple[str, ...]:
    """Run names of the scenario OMRs: ``omr_s<s>`` at the baseline's percentages, ``omr_s<s>_p<percent>``
    otherwise (a calibrated size never reuses a run of another size)."""
    return tuple(name if float(p) == float(d) else f"{name}_p{float(p):g}"
                 for name, p, d in zip(experiments.SCENARIO_NAMES, percents, experiments.SCENARIO_PERCENTS))


def train_scenario_omr(study, fold: int, scenario: int, percent: float, progress: bool = True):
    """Train (or return) the OMR of a scenario on ``percent`` % of the fold's training set; ``ValueError`` if
    its run folder holds a training on another subset.  Returns ``(CTCRun, run name)``."""
    name = run_names([percent if s == scenario else d for s, d in
                      zip(SCENARIOS, experiments.SCENARIO_PERCENTS)])[scenario - 1]
    default = float(percent) == float(experiments.SCENARIO_PERCENTS[scenario - 1])
    ids = experiments.scenario_ids(study, fold, scenario, None if default else percent)
    run = experiments.train_omr(study, fold, ids, name=name, progress=progress)
    if run.n_train + len(run.left_out) != len(ids):
        raise ValueError(f"{run.run_dir} was trained on {run.n_train + len(run.left_out)} samples, but scenario "
                         f"{scenario} at {percent} % has {len(ids)}: delete the folder to retrain")
    return run, name


def max_test_samples(profile) -> int | None:
    """Test (and validation) samples decoded per scenario: ``profile.fusion.scenario_max_test_samples``, or where
    that is None ``profile.fusion.max_test_samples``.  A separate cap exists because a fold is fused 9 × 2 times
    here (every scenario, both pairs) against once in notebook 04."""
    cap = profile.fusion.scenario_max_test_samples
    return cap if cap is not None else profile.fusion.max_test_samples


def _val_ser(study, fold: int, name: str) -> float:
    info = io.read_json(study.model_dir(fold, name) / experiments.RUN_INFO)
    return float(info["best_val_ser"])


@dataclass
class ScenarioResults:
    """What :func:`evaluate` returns (every table derives from these frames)."""

    samples: pd.DataFrame  # kept test samples: pair, fold, scenario, id, method, errors, ref_len
    sizes: pd.DataFrame  # pair, fold, scenario, threshold, n_decoded, n_kept
    validation: pd.DataFrame  # pair, fold, scenario, omr_val_ser, a2s_val_ser (%)
    a2s_filter: pd.DataFrame  # pair, fold, id, a2s_ser (%): the per-sample SER that filtered the pair's test set
    config: ScenarioConfig
    percents: tuple[float, ...] | None  # OMR subset sizes (%); None where the levels are snapshots
    names: tuple[str, ...]  # scenario OMR run names
    omr_targets: dict = field(default_factory=lambda: dict(LEVEL_TARGETS))  # per OMR level: the SER (%) it stands for
    seconds: dict = field(default_factory=dict)  # wall seconds: "train", "fusion"

    def cross_validate(self, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
        """:func:`cross_validate` with the configuration's criterion."""
        return cross_validate(self.samples, self.validation, self.config.criterion, n_boot, seed, level)


def evaluate(study, folds: Sequence[int] | None = None, scenarios: Sequence[int] = SCENARIOS,
             config: ScenarioConfig | None = None, fusion_config: late_fusion.LateFusionConfig | None = None,
             percents: Sequence[float] | None = None, max_samples: int | None = -1, jobs: int | None = None,
             progress: bool = True) -> ScenarioResults:
    """Every scenario of every fold, for each pair: train what is missing, fuse (cached), filter.

    Parameters
    ----------
    study : mtlnb.camera_primus.study.PrimusStudy
    folds : sequence of int, optional
        Default: the profile's ``corpus.folds``.
    scenarios : sequence of int
        Subset of 1..9.
    config : ScenarioConfig, optional
    fusion_config : LateFusionConfig, optional
        Default :meth:`LateFusionConfig.for_profile`.
    percents : nine floats, optional
        OMR subset sizes (%); default :func:`scenario_percents` of the profile.
    max_samples : int or None
        Validation and test samples decoded per fold (the first ones of each split); ``None``: all; default
        (-1) :func:`max_test_samples` of the profile.
    jobs : int, optional
        Worker processes of the word graphs (default all cores).

    Returns
    -------
    ScenarioResults
    """
    import time

    P = study.profile
    cfg = config or ScenarioConfig()
    folds = list(folds) if folds is not None else list(P.corpus.folds)
    scenarios = list(scenarios)
    for s in scenarios:
        levels(s)
    source = cfg.omr_level_source(P)
    if source == "snapshots":
        omr_targets = dict(zip(LEVELS, (float(v) for v in P.train.omr_snapshot_levels)))
        names = tuple(experiments.omr_level_name(omr_targets[levels(s)[0]]) for s in SCENARIOS)
        percents = None
    else:
        omr_targets = dict(LEVEL_TARGETS)
        percents = tuple(percents) if percents is not None else scenario_percents(P)
        if len(percents) != len(SCENARIOS):
            raise ValueError(f"evaluate: nine percents needed, got {len(percents)}")
        names = run_names(percents)
    if max_samples == -1:
        max_samples = max_test_samples(P)
    pairs = dict(cfg.pairs)
    order = sorted(pairs, key=lambda p: p != "baseline")  # the baseline first: filter_by="baseline" needs it
    samples, sizes, validation, filters = [], [], [], []
    seconds = {"train": 0.0, "fusion": 0.0}
    study.build_corpus(progress=progress)  # a synthetic corpus that is missing (a finished one is only checked)
    for k in folds:
        t0 = time.perf_counter()
        if source == "snapshots":
            experiments.train_omr(study, k, progress=progress)  # returns at once when notebook 02 trained it
            for target in sorted({omr_targets[levels(s)[0]] for s in scenarios}):
                experiments.omr_level_run(study, k, target)
        else:
            for s in scenarios:
                train_scenario_omr(study, k, s, percents[s - 1], progress)
        seconds["train"] += time.perf_counter() - t0
        a2s_ser: dict[str, pd.Series] = {}
        for pair in order:
            a2s_name = pairs[pair]
            for s in scenarios:
                t0 = time.perf_counter()
                # only the scenario's α: the α methods cost a fusion per α, and Table 3 reads one
                res = late_fusion.run_fold(study, k, omr_name=names[s - 1], a2s_name=a2s_name,
                                           config=fusion_config, alphas=(cfg.alpha,), max_samples=max_samples,
                                           jobs=jobs, progress=progress)
                seconds["fusion"] += time.perf_counter() - t0
                if pair not in a2s_ser:
                    a2s_ser[pair] = a2s_sample_ser(res.per_sample, cfg.filter_decoder)
                    filters.append(pd.DataFrame({"pair": pair, "fold": k, "id": a2s_ser[pair].index,
                                                 "a2s_ser": a2s_ser[pair].to_numpy()}))
                by = a2s_ser["baseline" if cfg.filter_by == "baseline" else pair]
                keep = filter_ids(by, cfg.threshold(s))
                rows = scenario_rows(res.per_sample, keep, cfg.alpha, cfg.methods)
                samples.append(rows.assign(pair=pair, fold=k, scenario=s))
                sizes.append({"pair": pair, "fold": k, "scenario": s, "threshold": cfg.threshold(s),
                              "n_decoded": int(res.per_sample.id.nunique()), "n_kept": len(keep)})
                validation.append({"pair": pair, "fold": k, "scenario": s,
                                   "omr_val_ser": _val_ser(study, k, names[s - 1]),
                                   "a2s_val_ser": _val_ser(study, k, a2s_name)})
    cols = ["pair", "fold", "scenario", "id", "method", "errors", "ref_len"]
    return ScenarioResults(samples=pd.concat(samples, ignore_index=True)[cols], sizes=pd.DataFrame(sizes),
                           validation=pd.DataFrame(validation), a2s_filter=pd.concat(filters, ignore_index=True),
                           config=cfg, percents=percents, names=names, omr_targets=omr_targets, seconds=seconds)


# ---------------------------------------------------------------------------------------------------------------
# calibration of the OMR subset sizes


@dataclass
class Calibration:
    """What :func:`calibrate_percents` returns."""

    trials: pd.DataFrame  # percent, val_ser (%): one row per OMR trained
    levels: pd.DataFrame  # per level: target (%), percent, status ("interpolated" / "not reached: …")
    percents: tuple[float, ...]  # the nine scenario percents derived from the levels


def percent_for_level(trials: pd.DataFrame, target: float) -> tuple[float, str]:
    """The subset size (%) whose SER would be ``target``, interpolated linearly in log(percent) between the
    trials that bracket it.  SER is made non-increasing in the percent first (more data does not hurt; a noisy
    trial must not create two crossings).

    Returns
    -------
    (percent, status)
        ``status`` is ``"interpolated"``, or says why the percent is a bound: ``"not reached: …"`` (every trial
        is above the target: the largest percent tried) or ``"below the smallest: …"`` (every trial is below
        it: the smallest percent tried).
    """
    t = trials.sort_values("percent")
    if t.empty or (t.percent <= 0).any():
        raise ValueError("percent_for_level: trials must be non-empty with percents > 0")
    p = t.percent.to_numpy(dtype=float)
    ser = np.minimum.accumulate(t.val_ser.to_numpy(dtype=float))
    if ser[-1] > target:
        return float(p[-1]), f"not reached: {ser[-1]:.1f} % at {p[-1]:g} %, the largest tried"
    if ser[0] <= target:
        return float(p[0]), f"below the smallest: {ser[0]:.1f} % at {p[0]:g} %, the smallest tried"
    i = int(np.nonzero(ser <= target)[0][0])  # first trial at or below the target; i ≥ 1
    s0, s1 = ser[i - 1], ser[i]
    w = (s0 - target) / (s0 - s1) if s0 != s1 else 1.0
    return float(np.exp(np.log(p[i - 1]) + w * (np.log(p[i]) - np.log(p[i - 1])))), "interpolated"


def scenario_percents_from_levels(level_percents: Mapping[str, float], decimals: int = 1) -> tuple[float, ...]:
    """Nine scenario percents from one percent per OMR level: each level's scenarios keep the baseline's ratios
    (e.g. H: 2.5 : 2.2 : 2.0), rounded to ``decimals`` and capped at 100."""
    base = experiments.SCENARIO_PERCENTS
    out = []
    for s in SCENARIOS:
        level = levels(s)[0]
        first = base[(s - 1) // 3 * 3]
        out.append(min(100.0, round(level_percents[level] * base[s - 1] / first, decimals)))
    return tuple(out)


def calibrate_percents(study=None, fold: int = 0, percents: Sequence[float] = (5.0, 10.0, 25.0, 50.0),
                       targets: Mapping[str, float] = LEVEL_TARGETS,
                       trainer: Callable[[float], float] | None = None, progress: bool = True) -> Calibration:
    """Search the OMR subset sizes that reach the levels' SER (see the module notes).

    Parameters
    ----------
    study : mtlnb.camera_primus.study.PrimusStudy
        Needed unless ``trainer`` is given.
    fold : int
    percents : sequence of float in (0, 100]
        Subset sizes tried.
    targets : mapping level -> SER (%)
        Default :data:`LEVEL_TARGETS`.
    trainer : callable percent -> validation SER (%), optional
        Default: train an OMR named ``omr_cal_p<percent>`` on that percentage (scenario 1's seed) with the
        profile's ``scenario_omr_epochs``, and return its best validation SER (greedy).

    Returns
    -------
    Calibration
    """
    if not percents or not all(0 < p <= 100 for p in percents):
        raise ValueError(f"calibrate_percents: percents must be non-empty, in (0, 100], got {list(percents)}")
    missing = [lv for lv in LEVELS if lv not in targets]
    if missing:
        raise ValueError(f"calibrate_percents: targets lack levels {missing}")
    if trainer is None:
        if study is None:
            raise ValueError("calibrate_percents: give a study (or a trainer)")

        def trainer(percent: float) -> float:
            ids = experiments.scenario_ids(study, fold, 1, percent)
            run = experiments.train_omr(study, fold, ids, name=f"omr_cal_p{float(percent):g}",
                                        epochs=study.profile.train.scenario_omr_epochs, progress=progress)
            return run.best_val_ser

    trials = pd.DataFrame({"percent": [float(p) for p in percents],
                           "val_ser": [float(trainer(float(p))) for p in percents]})
    rows, found = [], {}
    for level in LEVELS:
        found[level], status = percent_for_level(trials, targets[level])
        rows.append({"level": level, "target": targets[level], "percent": found[level], "status": status})
    return Calibration(trials, pd.DataFrame(rows).set_index("level"), scenario_percents_from_levels(found))


# ---------------------------------------------------------------------------------------------------------------
# figures


def heatmap_figure(cv: pd.DataFrame, scheme: str = "kfold", methods: Sequence[str] | None = None):
    """SER (%) per method × scenario, one heatmap per pair (annotated), for one scheme."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    part = cv[cv.scheme == scheme]
    if part.empty:
        raise ValueError(f"heatmap_figure: no rows for scheme {scheme!r}")
    pairs = list(dict.fromkeys(part.pair))
    methods = [m for m in (methods or METHOD_LABELS) if m in set(part.method)]
    vmax = float(np.nanpercentile(part.ser, 95)) if len(part) else 100.0
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 0.45 * len(methods) + 1.6), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        m = part[part.pair == pair].pivot(index="method", columns="scenario", values="ser")
        m = m.reindex(index=methods, columns=list(SCENARIOS))
        m.index = [METHOD_LABELS[i] if len(METHOD_LABELS[i]) < 28 else i for i in m.index]
        m.columns = [label(s) for s in m.columns]
        sns.heatmap(m, ax=ax, annot=True, fmt=".1f", cmap="rocket_r", vmin=0, vmax=vmax, cbar=ax is axes[0, -1],
                    annot_kws={"fontsize": 7}, cbar_kws={"label": "SER (%)"})
        ax.set_title(f"{pair}: test SER, {scheme} scheme", loc="left", fontsize=10)
        ax.set_xlabel("scenario (OMR level, A2S level)")
        ax.set_ylabel("")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def improvement_figure(improvement: pd.DataFrame, methods: Sequence[str] | None = None, thesis: bool = True):
    """Relative improvement (%) of GradSPSA over the baseline per scenario: bars per method; with ``thesis``
    the thesis's MBR improvements (its headline's) as black markers."""
    import matplotlib.pyplot as plt

    methods = [m for m in (methods or THESIS_ROWS) if m in improvement.index]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    width = 0.8 / max(1, len(methods))
    x = np.arange(len(SCENARIOS))
    for i, m in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, improvement.loc[m, list(SCENARIOS)].to_numpy(dtype=float),
               width, label=f"{METHOD_LABELS[m]} (mean {improvement.loc[m, 'average']:.1f} %)")
    if thesis:
        h = thesis_tables.headline_improvement()
        ax.plot(x, h["per_scenario"].to_numpy(), "k_", ms=14, mew=2,
                label=f"thesis, Minimum Bayes Risk (mean {h['average']:.1f} %)")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x, [label(s) for s in SCENARIOS], fontsize=8)
    ax.set_ylabel("relative SER improvement (%)")
    ax.set_title("GradSPSA over the baseline: 100 · (SER_baseline − SER_GradSPSA) / SER_baseline", loc="left",
                 fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig
