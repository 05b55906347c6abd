"""Bootstrap draws of the scenario SERs: one resampling of the test samples (and of the training seeds) shared by
every pair, scenario, method and scheme, from which every interval of notebook 05 is read (beyond the thesis,
which reports no interval).

Input: the long per-sample table of :func:`mtlnb.camera_primus.evaluation.scenarios.evaluate` -- one row per
(pair, fold, scenario, kept test sample, method) with the sample's edit distance ``errors`` and reference length
``ref_len`` (tokens) -- and the *units* that are resampled: the decoded test samples of each fold (``fold, id``).
A *cell* is a (pair, scheme, scenario, method): one figure of Table 3.

Design (choices; the thesis is silent)
--------------------------------------
- **Unit: a decoded test sample.**  Each resample draws, per fold, as many samples as the fold's decoded test set
  holds, with replacement, from that set; ``w_i`` is how often sample ``i`` was drawn.  A cell's statistic on the
  resample is the corpus SER of the samples its filter kept, ``100 · Σ w_i e_i / Σ w_i n_i`` -- the same ratio as
  :func:`mtlnb.camera_primus.evaluation.crossval.fold_ser` (the corpus SER is not the mean of per-sample SERs, and
  neither is its bootstrap).
- **Paired.**  Every cell reads the same ``w``: both pairs, all nine scenarios, all methods.  Where two cells hold
  the same sample (the baseline pair and the GradSPSA pair decode the same test samples; the methods of a scenario
  share its kept samples) it is drawn the same number of times for both, so a difference or a ratio between cells
  (the relative improvement, "fusion beats unimodal") is resampled as a paired statistic.  The units are the
  *decoded* samples, not each cell's kept ones, because each pair's own A2S filters its test set
  (``ScenarioConfig.filter_by="own"``): the two pairs keep different samples, and only the decoded set is common
  to both.  Consequence: the filter is part of the statistic, and a resample keeps as many samples of a scenario
  as it happens to draw (the kept count varies between resamples as it would on another test fold of that size).
- **Folds.**  Each fold is resampled on its own (its own draw, seeded from ``(seed, fold)``, so a fold's draw does
  not depend on which other folds or cells are evaluated).  k-fold: the mean over folds of the fold SERs, over the
  folds that kept a sample (in the resample, as in the point estimate); the baseline's scheme: the fold selected on
  validation, which is not resampled (the selection reads validation SERs only).
- **Training seeds** (``train_seed`` column, optional; :func:`stack_seeds`).  Where a profile trains the networks
  with several seeds and each seed's runs decode the same test folds, the design is crossed (every seed x every
  sample), and a resample draws the seeds with replacement as well, independently of the samples, and one sample
  draw serves every seed (a two-way bootstrap).  A cell's statistic is the mean over the drawn seeds (with their
  multiplicity) of each seed's figure; the point estimate is the plain mean over seeds.  With one seed (every
  profile today) this is the test-sample bootstrap alone.
- **Percentile intervals** from :data:`DEFAULT_N_BOOT` = 2,000 resamples (Efron & Tibshirani, *An Introduction to
  the Bootstrap*, ask for 1,000 or more for percentile intervals; at 2,000 each 2.5 % tail rests on 50 resamples).  A resample in which a cell keeps no
  sample leaves it undefined (NaN); its interval comes from the resamples where it is defined, and
  :meth:`Draws.table` reports their share (``defined``; below 1 only for scenarios with very few kept samples).
- **Speed.**  Per fold, a (resamples x units) count matrix times a (units x cells) matrix of errors and of lengths:
  two matrix products for every cell at once (2,000 x 2,674 x 180 for a fold of the thesis's size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

DEFAULT_N_BOOT = 2000  # resamples (module notes)
DEFAULT_LEVEL = 0.95  # coverage of the intervals
SEED = "train_seed"  # column of the per-sample table naming the training seed of a row (optional)
SCHEMES = ("validation", "kfold")  # the baseline's scheme (best validation fold) and standard k-fold
_CELL = ["pair", "scenario", "method"]
_REQUIRED = ["pair", "fold", "scenario", "id", "method", "errors", "ref_len"]
_SAMPLE_STREAM, _SEED_STREAM = 1, 2  # SeedSequence entropy words: the test-sample draws and the seed draws


def resample_counts(n_units: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n_units`` units is drawn in each of ``n_boot`` resamples of size ``n_units`` with
    replacement: int array (n_boot, n_units), each row summing to ``n_units``."""
    if n_units < 1 or n_boot < 1:
        raise ValueError(f"resample_counts: need n_units ≥ 1 and n_boot ≥ 1, got {n_units}, {n_boot}")
    idx = rng.integers(0, n_units, size=(n_boot, n_units))
    flat = idx + (np.arange(n_boot, dtype=np.int64) * n_units)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n_units).reshape(n_boot, n_units)


def percentile_interval(values: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval along the last axis, ignoring NaN (undefined resamples); NaN where none is defined.

    Parameters
    ----------
    values : array (..., n_boot)
    level : float in (0, 1)

    Returns
    -------
    (low, high) : arrays of shape ``values.shape[:-1]``
    """
    if not 0 < level < 1:
        raise ValueError(f"percentile_interval: level must be in (0, 1), got {level}")
    v = np.asarray(values, dtype=np.float64)
    tail = 100.0 * (1 - level) / 2
    out = np.full((2, *v.shape[:-1]), np.nan)
    ok = np.isfinite(v).any(axis=-1)
    if ok.any():
        out[:, ok] = np.nanpercentile(v[ok], [tail, 100.0 - tail], axis=-1)
    return out[0], out[1]


def stack_seeds(frames: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """One per-sample table from several training seeds' tables (``{seed: samples}``), with a ``train_seed``
    column: the input :func:`draw` resamples over seeds as well (module notes)."""
    if not frames:
        raise ValueError("stack_seeds: no tables given")
    return pd.concat([f.assign(**{SEED: int(s)}) for s, f in frames.items()], ignore_index=True)


@dataclass(frozen=True)
class Draws:
    """Point estimates and bootstrap draws of every cell (what :func:`draw` returns).

    ``cells`` has one row per cell: ``pair, scheme, scenario, method, folds`` (the folds the figure comes from,
    e.g. ``"0,1,2,4"``), ``n_folds``, ``n_samples`` (kept test samples behind the figure; with several seeds the
    smallest over seeds), ``n_seeds``.  ``point`` (C,) and ``boot`` (C, n_boot) are SERs in %, NaN where a resample
    kept no sample of the cell."""

    cells: pd.DataFrame
    point: np.ndarray
    boot: np.ndarray
    n_boot: int
    seed: int

    def __post_init__(self):
        if self.point.shape != (len(self.cells),) or self.boot.shape != (len(self.cells), self.n_boot):
            raise ValueError(f"Draws: {len(self.cells)} cells, point {self.point.shape}, boot {self.boot.shape}")

    def _index(self) -> dict:
        c = self.cells
        return {k: i for i, k in enumerate(zip(c.pair, c.scheme, c.scenario, c.method))}

    def select(self, pair: str, scheme: str, method: str, scenarios: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Point (S,) and draws (S, n_boot) of one pair's, scheme's and method's row over ``scenarios``; NaN for a
        scenario without the cell (no kept sample)."""
        index = self._index()
        point = np.full(len(scenarios), np.nan)
        boot = np.full((len(scenarios), self.n_boot), np.nan)
        for j, s in enumerate(scenarios):
            i = index.get((pair, scheme, s, method))
            if i is not None:
                point[j], boot[j] = self.point[i], self.boot[i]
        return point, boot

    def table(self, level: float = DEFAULT_LEVEL) -> pd.DataFrame:
        """The cells with ``ser`` (%), ``ci_low``, ``ci_high`` (percentile interval at ``level``) and ``defined``
        (share of resamples in which the cell kept a sample)."""
        low, high = percentile_interval(self.boot, level)
        out = self.cells.assign(ser=self.point, ci_low=low, ci_high=high,
                                defined=np.isfinite(self.boot).mean(axis=1))
        cols = ["pair", "scheme", "scenario", "method", "ser", "ci_low", "ci_high", "folds", "n_folds", "n_samples",
                "n_seeds", "defined"]
        return out[cols].sort_values(["pair", "scheme", "scenario", "method"], kind="stable").reset_index(drop=True)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, NaN where ``den`` is 0 (nothing kept, no fold, no seed)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nan_mean(values: np.ndarray, weights: np.ndarray | float = 1.0) -> np.ndarray:
    """Weighted mean over axis 0 of the finite entries of ``values``; NaN where none is finite."""
    ok = np.isfinite(values)
    w = np.where(ok, weights, 0.0)
    return _div((np.where(ok, values, 0.0) * w).sum(axis=0), w.sum(axis=0))


def draw(samples: pd.DataFrame, units: pd.DataFrame | None = None, chosen: pd.DataFrame | None = None,
         n_boot: int = DEFAULT_N_BOOT, seed: int = 0) -> Draws:
    """Point estimates and paired bootstrap draws of every cell (module notes).

    Parameters
    ----------
    samples : DataFrame
        Kept test samples, long: ``pair, fold, scenario, id, method, errors, ref_len`` and optionally
        ``train_seed``; one row per (train_seed, pair, fold, scenario, id, method).
    units : DataFrame, optional
        The resampled test samples: columns ``fold, id``, each decoded test sample once (e.g.
        :attr:`mtlnb.camera_primus.evaluation.scenarios.ScenarioResults.units`).  Must hold every sample of
        ``samples``.  Default: the samples that some row of ``samples`` holds (the decoded fold where a scenario
        keeps every sample, as scenarios 1, 4, 7 do).
    chosen : DataFrame, optional
        The baseline's scheme: the fold selected per (pair, scenario) -- columns ``pair, scenario, fold``, and
        ``train_seed`` where each seed selected its own (without it, one selection serves every seed)
        (:func:`mtlnb.camera_primus.evaluation.crossval.select_folds`).  Without ``chosen`` only the ``"kfold"``
        scheme is drawn.
    n_boot : int
        Resamples.
    seed : int
        The draws are a deterministic function of the data and ``seed``.

    Returns
    -------
    Draws
    """
    missing = [c for c in _REQUIRED if c not in samples.columns]
    if missing:
        raise ValueError(f"bootstrap.draw: the samples lack columns {missing}")
    if samples.empty:
        raise ValueError("bootstrap.draw: no samples")
    if n_boot < 1:
        raise ValueError(f"bootstrap.draw: n_boot must be ≥ 1, got {n_boot}")
    s = samples if SEED in samples.columns else samples.assign(**{SEED: 0})
    if (s.ref_len <= 0).any():
        raise ValueError("bootstrap.draw: a reference of length 0")
    units = (s[["fold", "id"]] if units is None else units[["fold", "id"]]).drop_duplicates()
    outside = sorted(set(s.fold.unique()) - set(units.fold.unique()))
    if outside:
        raise ValueError(f"bootstrap.draw: the samples of folds {outside} are not among the units")

    # per-seed cells (train_seed, pair, scenario, method), their fold SERs (point and draws)
    keys = s[[SEED, *_CELL]].drop_duplicates().sort_values([SEED, *_CELL], kind="stable").reset_index(drop=True)
    code = pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(s[[SEED, *_CELL]]))
    folds = sorted(units.fold.unique())
    K = len(keys)
    fold_point = np.full((len(folds), K), np.nan)
    fold_boot = np.full((len(folds), K, n_boot), np.nan)
    kept = np.zeros((len(folds), K), dtype=np.int64)  # kept samples per fold and per-seed cell
    for f_i, f in enumerate(folds):
        ids = pd.Index(units.id[units.fold == f].to_numpy())
        rows = (s.fold == f).to_numpy()
        if not rows.any():
            continue
        col = ids.get_indexer(s.id[rows])
        if (col < 0).any():
            absent = s.id[rows][col < 0].unique()
            raise ValueError(f"bootstrap.draw: {len(absent)} samples of fold {f} are not among the units, e.g. "
                             f"{list(absent[:3])}")
        rows_per = np.zeros((len(ids), K), dtype=np.int64)  # rows of each (sample, cell): 0 or 1
        np.add.at(rows_per, (col, code[rows]), 1)
        if rows_per.max() > 1:
            raise ValueError(f"bootstrap.draw: several rows for one (train_seed, pair, scenario, method, id) in "
                             f"fold {f}")
        kept[f_i] = rows_per.sum(axis=0)
        errors = np.zeros((len(ids), K))
        lengths = np.zeros((len(ids), K))
        errors[col, code[rows]] = s.errors[rows].to_numpy(dtype=np.float64)  # one row per cell: no accumulation
        lengths[col, code[rows]] = s.ref_len[rows].to_numpy(dtype=np.float64)
        counts = resample_counts(len(ids), n_boot, np.random.default_rng([seed, _SAMPLE_STREAM, int(f)]))
        counts = counts.astype(np.float64)
        fold_point[f_i] = 100.0 * _div(errors.sum(axis=0), lengths.sum(axis=0))
        fold_boot[f_i] = 100.0 * _div(counts @ errors, counts @ lengths).T  # (K, n_boot)

    # the schemes, per seed: (K,) points, (K, n_boot) draws, the folds used
    schemes = {}
    present = np.isfinite(fold_point)  # folds that kept a sample of the cell (a resample only reaches these)
    k_point = _nan_mean(fold_point)
    k_boot = _nan_mean(fold_boot)
    k_folds = [[folds[i] for i in np.nonzero(present[:, k])[0]] for k in range(K)]
    schemes["kfold"] = (k_point, k_boot, k_folds)
    if chosen is not None:
        # without a train_seed column, one selection serves every seed
        per_seed = SEED in chosen.columns
        seeds = chosen[SEED] if per_seed else [None] * len(chosen)
        pick = {(t, p, sc): f for t, p, sc, f in zip(seeds, chosen.pair, chosen.scenario, chosen.fold)}
        v_point, v_boot, v_folds = np.full(K, np.nan), np.full((K, n_boot), np.nan), [[] for _ in range(K)]
        for k, (t, p, sc) in enumerate(zip(keys[SEED], keys.pair, keys.scenario)):
            f = pick.get((t if per_seed else None, p, sc))
            if f is not None and f in folds and present[folds.index(f), k]:
                v_point[k], v_boot[k], v_folds[k] = fold_point[folds.index(f), k], fold_boot[folds.index(f), k], [f]
        schemes["validation"] = (v_point, v_boot, v_folds)

    # over training seeds: the seed draw, the (weighted) mean of each seed's figure
    train_seeds = sorted(keys[SEED].unique())
    seed_weights = resample_counts(len(train_seeds), n_boot, np.random.default_rng([seed, _SEED_STREAM]))
    if len(train_seeds) == 1:  # the seed "draw" of one seed is that seed: skip the arithmetic
        seed_weights = np.ones_like(seed_weights)
    seed_index = keys[SEED].map({t: i for i, t in enumerate(train_seeds)}).to_numpy()
    cell_keys = keys[_CELL].drop_duplicates().reset_index(drop=True)
    cell_index = pd.MultiIndex.from_frame(cell_keys).get_indexer(pd.MultiIndex.from_frame(keys[_CELL]))
    out_cells, points, boots = [], [], []
    for scheme in SCHEMES:
        if scheme not in schemes:
            continue
        point, boot, used = schemes[scheme]
        grid_point = np.full((len(train_seeds), len(cell_keys)), np.nan)
        grid_boot = np.full((len(train_seeds), len(cell_keys), n_boot), np.nan)
        grid_point[seed_index, cell_index] = point
        grid_boot[seed_index, cell_index] = boot
        points.append(_nan_mean(grid_point))
        boots.append(_nan_mean(grid_boot, seed_weights.T[:, None, :].astype(np.float64)))
        for j, ck in enumerate(cell_keys.itertuples(index=False)):
            ks = np.nonzero(cell_index == j)[0]
            fs = sorted({f for k in ks for f in used[k]})
            n = [int(sum(kept[folds.index(f), k] for f in used[k])) for k in ks if used[k]]
            out_cells.append({"pair": ck.pair, "scheme": scheme, "scenario": ck.scenario, "method": ck.method,
                              "folds": ",".join(str(f) for f in fs), "n_folds": len(fs),
                              "n_samples": min(n) if n else 0, "n_seeds": len(n)})
    cells = pd.DataFrame(out_cells)
    point = np.concatenate(points)
    boot = np.concatenate(boots)
    keep = cells.n_samples.to_numpy() > 0  # e.g. the baseline's scheme where no fold could be selected
    return Draws(cells=cells[keep].reset_index(drop=True), point=point[keep], boot=boot[keep], n_boot=n_boot,
                 seed=seed)
