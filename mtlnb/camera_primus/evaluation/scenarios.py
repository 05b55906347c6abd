"""The thesis's nine OMR/A2S scenarios on a study: the scenarios and their levels, the A2S filtering of the test
sets, and the per-sample rows every table of notebook 05 derives from (thesis §4–6; the baseline's
``folds_creation.py``).  The statistics over folds and samples live in
:mod:`mtlnb.camera_primus.evaluation.crossval`, the tables in :mod:`mtlnb.camera_primus.evaluation.tables`, the
figures in :mod:`mtlnb.camera_primus.figures`; the runs the scenarios read are named and made by
:func:`mtlnb.camera_primus.networks.runs.ensure_scenario_runs` (this module trains nothing).

What a scenario is (thesis §3 "Evaluation metric", §5; the baseline's ``folds_creation.py``)
--------------------------------------------------------------------------------------------
Scenario ``s`` = (OMR level, A2S level), each high (≈ 30 % SER), medium (≈ 20 %) or low (≈ 10 %): 1 (H,H),
2 (H,M), 3 (H,L), 4 (M,H) … 9 (L,L).  The OMR level comes from training the OMR on a random p % of the training
fold (``omr_s<s>``, :func:`mtlnb.camera_primus.networks.runs.scenario_omr_names`); the A2S level from **filtering
the test fold** by the A2S model's per-sample SER: H keeps every sample, M those with SER ≤ 30, L those with
SER ≤ 10 (:attr:`ScenarioConfig.a2s_thresholds`).  Per fold and scenario this module fuses, for each *pair*, the
scenario's OMR with an A2S network: ``a2s`` (the baseline pair) or ``gradspsa`` (the GradSPSA pair), through
:func:`mtlnb.camera_primus.fusion.pipeline.run_fold` (cached per fold and OMR–A2S pair), and keeps the test
samples that pass the filter.

Choices (the thesis is silent unless cited)
-------------------------------------------
- **Per-sample A2S SER of the filter: greedy CTC decoding** (``filter_decoder="greedy"``).  The baseline's
  ``filter_samples`` calls its ``evaluate_model`` on one sample at a time -- the unimodal evaluation, which is
  greedy CTC -- and keeps ``SER ≤ threshold`` (inclusive).  ``"best_path"`` (the LM best path at the read-off
  tuned on validation) is switchable.
- **Which A2S filters a pair's test set: its own** (``filter_by="own"``).  The thesis's Table 4 gives the test
  sizes "for GradSPSA" with fold 3 empty at the M and L levels, which only GradSPSA's own A2S could produce; so
  each pair's A2S filters its own test set.  ``filter_by="baseline"`` filters both pairs with the baseline A2S
  (one test set per scenario, as the baseline's fixed ``Scenario<s>`` lists).
- **GradSPSA is not retrained per scenario.**  Its A2S attends to the fold's full-data ``omr`` features during
  training and inference (:func:`mtlnb.camera_primus.networks.runs.train_gradspsa`); in scenario ``s`` it is
  fused with ``omr_s<s>``.  Evidence: Table 4 gives one test set per A2S level for the three OMR levels
  (scenarios 2, 5, 8 share 1,249 / 1,016 / … samples), so the GradSPSA A2S -- whose filter sets them -- is the
  same in all nine scenarios of a fold.  Retraining it per scenario would cost 9 GradSPSA trainings per fold
  instead of 1.  Consequence worth knowing: in weak-OMR scenarios GradSPSA's A2S still read a strong OMR's
  features.
- **OMR levels without subset trainings** (``ScenarioConfig.omr_levels``; *not the thesis's method*).  Where the
  profile lists ``TrainProfile.omr_snapshot_levels`` (mini: 50 / 35 / 25 % validation SER for H / M / L), a
  level's OMR is the fold's full-data ``omr`` at the first epoch of its training whose validation SER reached the
  level (:func:`mtlnb.camera_primus.networks.runs.omr_level_run`), and the three scenarios of a level share it.
  Why: mini's training fold has 1,020 images, so the baseline's 2–10.5 % subsets hold 20–107 images, and OMRs
  trained on them stay on the CTC plateau (100 % SER, measured), whose flat posteriors make word graphs explode;
  and the mini OMR's best is ≈ 23 %, so the thesis's 30 / 20 / 10 % cannot be reached (the levels are shifted
  up).  What differs: a snapshot is an *under-trained* network on all the data, the thesis's is a converged one
  on little data (it overfits differently).  ``"subsets"`` is the thesis's method (the default wherever no levels
  are listed).
- **α = 0.5** for the methods with a weight (thesis §4: "α equals to 0.5").
- **Method rows**: the thesis's five rows are :data:`THESIS_ROWS` (``lattice_combination`` is its "Minimum
  Bayes Risk": what the baseline's code runs, see :mod:`mtlnb.camera_primus.fusion.methods`);
  ``lattice_combination_mbr`` and the unimodal rows (greedy and LM best path of each network, on the same
  filtered samples) are added below them.
- **Too few to read** (:data:`MIN_TEST_SAMPLES`; beyond the thesis, which warns that its scenarios 3, 6 and 9
  hold few samples but averages them all): a pair's scenario whose figure rests on fewer than 30 kept test
  samples is shown, with its n, but left out of every average and count of notebook 05 (the headline
  improvement, the findings) -- :func:`mtlnb.camera_primus.evaluation.tables.readability`.  Why 30: the usual
  rule of thumb for a mean of independent samples to be near-normal; below it a scenario's SER rests on a handful
  of incipits, and its relative improvement swings by tens of points between two runs of the same code.
- **Cross-validation, relative improvement, paired test**: see :mod:`mtlnb.camera_primus.evaluation.crossval`;
  **bootstrap intervals**: :mod:`mtlnb.camera_primus.evaluation.bootstrap`.
- **Calibration** (:func:`calibrate_percents`): on the synthetic corpus the baseline's percentages do not give
  its levels.  OMRs are trained on a few subset sizes with the profile's scenario epochs
  (:func:`mtlnb.camera_primus.networks.runs.ensure_calibration_runs`), their *validation* SER (never test) is
  interpolated over log(percent) (made non-increasing first), and each level's percent is read off; the three
  scenarios of a level keep the baseline's ratios between their percentages (2.5 : 2.2 : 2.0 for H, …: smaller
  subsets where the A2S filter leaves easier samples).  The levels actually reached on the test sets are always
  reported (:func:`mtlnb.camera_primus.evaluation.tables.levels_reached`).

Decoding cost
-------------
A scenario's fusion needs both word graphs of every test sample; the A2S graphs are the same in all nine
scenarios of a fold (same A2S posteriors, same LM: the training fold's transcripts).  The fold's lattice cache
(:func:`mtlnb.camera_primus.fusion.pipeline.fold_lattice_dir`) stores every decoded graph, so each network's graphs
are decoded once per fold, not once per scenario and pair.  Filtering is done afterwards on the whole decoded test
fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from mtlnb.camera_primus.evaluation import bootstrap, crossval
from mtlnb.camera_primus.fusion import pipeline
from mtlnb.camera_primus.networks import runs
from mtlnb.core import io

SCENARIOS = tuple(range(1, 10))
LEVELS = ("H", "M", "L")  # high ≈ 30 %, medium ≈ 20 %, low ≈ 10 % SER
LEVEL_TARGETS = {"H": 30.0, "M": 20.0, "L": 10.0}  # SER (%) each level stands for (thesis §3)
# A pair's scenario whose figure rests on fewer kept test samples is "too few to read": shown with its n, left out
# of averages and counts (module notes).
MIN_TEST_SAMPLES = 30
FILTER_DECODERS = ("greedy", "best_path")
FILTER_BY = ("own", "baseline")
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
        if self.criterion not in crossval.CRITERIA:
            raise ValueError(f"ScenarioConfig.criterion must be one of {crossval.CRITERIA}, got {self.criterion!r}")
        if self.omr_levels not in runs.SCENARIO_OMR_SOURCES:
            raise ValueError(f"ScenarioConfig.omr_levels must be one of {runs.SCENARIO_OMR_SOURCES}, "
                             f"got {self.omr_levels!r}")
        unknown = [m for m in self.methods if m not in METHOD_LABELS]
        if unknown:
            raise ValueError(f"ScenarioConfig.methods: unknown {unknown}; choose from {list(METHOD_LABELS)}")

    def threshold(self, scenario: int) -> float | None:
        """The A2S filter threshold (%) of a scenario (None: the whole test fold)."""
        return self.a2s_thresholds[LEVELS.index(levels(scenario)[1])]

    def omr_level_source(self, profile) -> str:
        """``"subsets"`` or ``"snapshots"`` for ``profile`` (resolving ``"auto"``); ``ValueError`` when snapshots
        are asked for and the profile lists no ``TrainProfile.omr_snapshot_levels``
        (:func:`mtlnb.camera_primus.networks.runs.scenario_omr_source`)."""
        return runs.scenario_omr_source(profile, self.omr_levels)


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
# running the scenarios on a study


def max_test_samples(profile) -> int | None:
    """Test (and validation) samples decoded per scenario: ``profile.fusion.scenario_max_test_samples``, or where
    that is None ``profile.fusion.max_test_samples``.  A separate cap exists because a fold is fused 9 × 2 times
    here (every scenario, both pairs) against once in notebook 04."""
    cap = profile.fusion.scenario_max_test_samples
    return cap if cap is not None else profile.fusion.max_test_samples


def _val_ser(study, fold: int, name: str) -> float:
    """Validation SER (%) of a finished run's best checkpoint (greedy), from its ``run.json``."""
    info = io.read_json(study.model_dir(fold, name) / runs.RUN_INFO)
    return float(info["best_val_ser"])


def _omr_levels(profile, config: ScenarioConfig, percents: Sequence[float] | None = None
                ) -> tuple[dict[str, float], tuple[float, ...] | None, tuple[str, ...]]:
    """Where the scenarios' OMR levels come from for ``profile``.

    Returns
    -------
    omr_targets : dict level -> float
        The validation SER (%) each OMR level stands for: the profile's snapshot levels, or the thesis's
        :data:`LEVEL_TARGETS` where the levels are subset OMRs.
    percents : nine floats or None
        The subset sizes (%): ``percents``, default the profile's
        (:func:`mtlnb.camera_primus.networks.runs.scenario_percents`); None where the levels are snapshots.
    names : nine str
        The OMR run of each scenario (:func:`mtlnb.camera_primus.networks.runs.scenario_omr_names`).
    """
    source = config.omr_level_source(profile)
    if source == "snapshots":
        omr_targets = dict(zip(LEVELS, (float(v) for v in profile.train.omr_snapshot_levels)))
        percents = None
    else:
        omr_targets = dict(LEVEL_TARGETS)
        percents = tuple(percents) if percents is not None else runs.scenario_percents(profile)
        if len(percents) != len(SCENARIOS):
            raise ValueError(f"evaluate: nine percents needed, got {len(percents)}")
    return omr_targets, percents, runs.scenario_omr_names(profile, source, percents)


def _require_runs(study, folds: Sequence[int], names: Sequence[str], make: str) -> None:
    """``ValueError`` naming every run of ``names`` that some fold lacks (no posteriors), and ``make``: the call
    that makes them.  Evaluation reads finished runs and never trains one."""
    missing = []
    for k in folds:
        for name in dict.fromkeys(names):
            try:
                runs.run_dir_of(study, k, name)
            except ValueError:
                missing.append(f"{name!r} of fold {k}")
    if missing:
        raise ValueError(f"the scenarios read finished runs and train none; missing: {', '.join(missing)}.  Make "
                         f"them first with {make}")


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
    seconds: dict = field(default_factory=dict)  # wall seconds: "fusion"

    @property
    def units(self) -> pd.DataFrame:
        """The decoded test samples, once each: columns ``fold, id`` (what the bootstrap resamples; both pairs
        decode the same samples of a fold)."""
        return self.a2s_filter[["fold", "id"]].drop_duplicates().reset_index(drop=True)

    def draws(self, n_boot: int = bootstrap.DEFAULT_N_BOOT, seed: int = 0) -> bootstrap.Draws:
        """:func:`mtlnb.camera_primus.evaluation.crossval.draws` with the configuration's criterion, resampling
        :attr:`units`."""
        return crossval.draws(self.samples, self.validation, self.config.criterion, n_boot, seed, self.units)

    def cross_validate(self, n_boot: int = bootstrap.DEFAULT_N_BOOT, seed: int = 0,
                       level: float = bootstrap.DEFAULT_LEVEL) -> pd.DataFrame:
        """:func:`mtlnb.camera_primus.evaluation.crossval.cross_validate` with the configuration's criterion,
        resampling :attr:`units`."""
        return self.draws(n_boot, seed).table(level)


def evaluate(study, folds: Sequence[int] | None = None, scenarios: Sequence[int] = SCENARIOS,
             config: ScenarioConfig | None = None, fusion_config: pipeline.LateFusionConfig | None = None,
             percents: Sequence[float] | None = None, max_samples: int | None = -1, jobs: int | None = None,
             progress: bool = True) -> ScenarioResults:
    """Every scenario of every fold, for each pair: fuse (cached), filter.

    Reads the runs :func:`mtlnb.camera_primus.networks.runs.ensure_scenario_runs` made (with the same
    ``omr_levels``, ``percents`` and A2S runs) and trains none: ``ValueError`` naming each missing run and fold.

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
        OMR subset sizes (%); default :func:`mtlnb.camera_primus.networks.runs.scenario_percents` of the
        profile.
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
    omr_targets, percents, names = _omr_levels(P, cfg, percents)
    if max_samples == -1:
        max_samples = max_test_samples(P)
    pairs = dict(cfg.pairs)
    order = sorted(pairs, key=lambda p: p != "baseline")  # the baseline first: filter_by="baseline" needs it
    a2s_names = [pairs[p] for p in order]
    _require_runs(study, folds, [*(names[s - 1] for s in scenarios), *a2s_names],
                  f"mtlnb.camera_primus.networks.runs.ensure_scenario_runs(study, fold, "
                  f"omr_levels={cfg.omr_levels!r}, percents={percents}, a2s_names={tuple(a2s_names)}) for each "
                  "fold, as notebook 05 §2 does")
    samples, sizes, validation, filters = [], [], [], []
    seconds = {"fusion": 0.0}
    for k in folds:
        a2s_ser: dict[str, pd.Series] = {}
        for pair in order:
            a2s_name = pairs[pair]
            for s in scenarios:
                t0 = time.perf_counter()
                # only the scenario's α: the α methods cost a fusion per α, and Table 3 reads one
                res = pipeline.run_fold(study, k, omr_name=names[s - 1], a2s_name=a2s_name, config=fusion_config,
                                        alphas=(cfg.alpha,), max_samples=max_samples, jobs=jobs, progress=progress)
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
    base = runs.SCENARIO_PERCENTS
    out = []
    for s in SCENARIOS:
        level = levels(s)[0]
        first = base[(s - 1) // 3 * 3]
        out.append(min(100.0, round(level_percents[level] * base[s - 1] / first, decimals)))
    return tuple(out)


def calibrate_percents(study=None, fold: int = 0, percents: Sequence[float] = (5.0, 10.0, 25.0, 50.0),
                       targets: Mapping[str, float] = LEVEL_TARGETS,
                       trainer: Callable[[float], float] | None = None) -> Calibration:
    """Search the OMR subset sizes that reach the levels' SER (see the module notes) from OMRs trained on
    ``percents`` of the training fold.

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
        Default: the best validation SER (greedy) of the OMR trained on that percentage,
        ``omr_cal_p<percent>`` of the fold, which
        :func:`mtlnb.camera_primus.networks.runs.ensure_calibration_runs` makes (``ValueError`` naming the
        missing runs otherwise).

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
        _require_runs(study, [fold], [runs.calibration_run_name(float(p)) for p in percents],
                      f"mtlnb.camera_primus.networks.runs.ensure_calibration_runs(study, fold, "
                      f"{[float(p) for p in percents]}), as notebook 05 §1 does")

        def trainer(percent: float) -> float:
            return _val_ser(study, fold, runs.calibration_run_name(percent))

    trials = pd.DataFrame({"percent": [float(p) for p in percents],
                           "val_ser": [float(trainer(float(p))) for p in percents]})
    rows, found = [], {}
    for level in LEVELS:
        found[level], status = percent_for_level(trials, targets[level])
        rows.append({"level": level, "target": targets[level], "percent": found[level], "status": status})
    return Calibration(trials, pd.DataFrame(rows).set_index("level"), scenario_percents_from_levels(found))
