"""The thesis's future work run as experiments (notebook 09): per-sample errors of every system on one set of test
samples, paired bootstrap intervals, paired tests, the seed spread, and the verdict of each comparison.

Inputs are the runs :mod:`mtlnb.camera_primus.networks.variants` trained (and notebooks 02-03's); this module
decodes and compares, it trains nothing.  Its one table is long: one row per (system, sample, method) with the
sample's edit distance ``errors``, its closeness-aware distance ``closeness``
(:func:`mtlnb.camera_primus.metrics.closeness_distances`) and its reference length ``ref_len``.  A *system* is an
A2S run paired with the fold's OMR, named ``<run>`` or ``<run>@<smoothing>``; a *method* is ``greedy_a2s`` (the
A2S alone, greedy CTC) or a fusion method at α = 0.5 (the thesis's; its headline row, "MBR", is
``lattice_combination``).

Choices (the thesis ran none of this)
-------------------------------------
- **The same samples everywhere.**  Unimodal rows cover the fold's whole test split; fusion rows the first
  ``max_samples`` test samples (every system decodes the same ones, and the read-off is tuned on the first
  ``max_samples`` validation samples, as :func:`mtlnb.camera_primus.fusion.pipeline.run` does).  Comparisons use the
  samples both sides hold.
- **Intervals** (:func:`intervals`): the test samples resampled with replacement, one draw shared by every system
  and method (:func:`mtlnb.camera_primus.evaluation.bootstrap.resample_counts`), so that differences are paired;
  the statistic is the corpus rate ``100 · Σ w_i e_i / Σ w_i n_i``; 95 % percentile intervals.
- **Paired test** (:func:`compare`): :func:`mtlnb.camera_primus.evaluation.crossval.paired_test` -- the difference
  of the two corpus rates on the common samples, a paired-bootstrap interval and a two-sided sign-flip p-value.
- **Seed spread**: the range (max − min) over training seeds of a network's test rate, per method; for the
  headline, the range of the relative improvement ``100 · (SER_baseline − SER_GradSPSA) / SER_baseline`` (MBR row,
  α = 0.5) over the seed pairs (the i-th seed of each network; with one baseline seed every GradSPSA seed is paired
  with it).
- **Verdict** (:func:`verdict`): a difference *exceeds the seed spread* when its absolute value is larger than
  the seed range of the reference configuration -- larger than two trainings of one configuration differed -- and
  is *significant on the test samples* when the paired test gives p < 0.05.  Only both together count as a
  difference the experiment shows; with one seed the spread is unknown and the verdict says so.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mtlnb.camera_primus import metrics
from mtlnb.camera_primus.corpus import strata
from mtlnb.camera_primus.evaluation import bootstrap, crossval
from mtlnb.camera_primus.fusion import pipeline
from mtlnb.camera_primus.networks import runs

ALPHA = 0.5  # the thesis's OMR weight (§4)
HEADLINE = "lattice_combination"  # the thesis's "Minimum Bayes Risk" row
UNIMODAL = "greedy_a2s"  # the A2S alone, greedy CTC (the thesis's unimodal figures)
P_LEVEL = 0.05  # significance level of the verdicts
VALUES = ("errors", "closeness")  # what a rate counts: edit distance (SER) or closeness-aware distance
N_BOOT = bootstrap.DEFAULT_N_BOOT


# -- per-sample tables ----------------------------------------------------------------------------------------------

def _rows(system: str, ids: Sequence[str], method: str, hyps: Sequence[Sequence[str]],
          refs: Sequence[Sequence[str]]) -> pd.DataFrame:
    return pd.DataFrame({"system": system, "id": list(ids), "method": method,
                         "errors": metrics.edit_distances(hyps, refs).astype(np.float64),
                         "closeness": metrics.closeness_distances(hyps, refs),
                         "ref_len": [len(r) for r in refs]})


def unimodal_samples(study, fold: int, names: Sequence[str], split: str = "test") -> pd.DataFrame:
    """Greedy CTC rows (method ``greedy_a2s``) of each run in ``names`` on every sample of the fold's split that
    has a feature cache entry (the samples the posteriors cover)."""
    cached = set(study.cache().ids)
    ids = [sid for sid in getattr(study.folds[fold], split) if sid in cached]
    refs = [study.corpus.tokens(sid) for sid in ids]
    frames = []
    for name in names:
        hyps = runs.greedy_transcriptions(study, fold, name, split, ids)
        frames.append(_rows(name, ids, UNIMODAL, [hyps[sid] for sid in ids], refs))
    return pd.concat(frames, ignore_index=True)


class SmoothingFailed(ValueError):
    """The LM could not be estimated at any order with this smoothing (Kneser-Ney on little data)."""


def fuse(study, fold: int, a2s_name: str, smoothing: str = "witten_bell", methods: Sequence[str] = (HEADLINE,),
         max_samples: int | None = None, jobs: int | None = None, progress: bool = False
         ) -> pipeline.LateFusionResult:
    """Late fusion of the fold's OMR with run ``a2s_name`` (:func:`mtlnb.camera_primus.fusion.pipeline.run`), the
    profile's LM order, α = 0.5 and the given smoothing and methods, cached under
    ``<study>/beyond/fusion/fold<k>/omr-<a2s_name>-<smoothing>/`` (apart from notebooks 04-05's caches, whose
    settings differ) and sharing the fold's word-graph cache.

    Raises
    ------
    SmoothingFailed
        No LM order could be estimated with ``smoothing``.
    """
    P = study.profile
    config = pipeline.LateFusionConfig.for_profile(P, smoothing=smoothing, methods=tuple(methods))
    f = study.folds[fold]
    paths = pipeline.fold_posteriors(study, fold, "omr", a2s_name)
    corpus = study.corpus
    references = {s: {i: corpus.tokens(i) for i in getattr(f, s)} for s in pipeline.SPLITS}
    cache_dir = study.root / "beyond" / "fusion" / f"fold{fold}" / f"omr-{a2s_name}-{smoothing}"
    try:
        return pipeline.run(paths["omr"], paths["a2s"], references, [corpus.tokens(i) for i in f.train],
                            lm_order=P.fusion.lm_order, alphas=(ALPHA,), max_samples=max_samples, config=config,
                            cache_dir=cache_dir, jobs=jobs, progress=progress,
                            lattice_cache_dir=pipeline.fold_lattice_dir(study, fold))
    except ValueError as err:
        if str(err).startswith("select_lm: no order"):
            raise SmoothingFailed(f"{smoothing} LM for fold {fold}: {err}") from err
        raise


def fusion_samples(result: pipeline.LateFusionResult, system: str, alpha: float = ALPHA,
                   methods: Sequence[str] | None = None) -> pd.DataFrame:
    """The rows of a fusion result at ``alpha`` (methods without α as they are), every method but the unimodal
    ones unless ``methods`` names them."""
    ps = result.per_sample
    keep = ps.method.isin(methods) if methods is not None else ~ps.method.isin(pipeline.UNIMODAL)
    at = ps.alpha.isna() | np.isclose(ps.alpha.fillna(-1.0), alpha)
    part = ps[keep & at]
    refs = [result.references[sid] for sid in part.id]
    hyps = [o.split() for o in part.output]
    out = pd.DataFrame({"system": system, "id": part.id.to_numpy(), "method": part.method.to_numpy(),
                        "errors": part.errors.to_numpy(dtype=np.float64),
                        "closeness": metrics.closeness_distances(hyps, refs) if len(part) else [],
                        "ref_len": part.ref_len.to_numpy()})
    return out.reset_index(drop=True)


# -- statistics -----------------------------------------------------------------------------------------------------

def _check(samples: pd.DataFrame) -> None:
    missing = {"system", "id", "method", "errors", "ref_len"} - set(samples.columns)
    if missing:
        raise ValueError(f"beyond: the per-sample table lacks columns {sorted(missing)}")
    if samples.duplicated(["system", "id", "method"]).any():
        raise ValueError("beyond: several rows for one (system, id, method)")


def intervals(samples: pd.DataFrame, value: str = "errors", n_boot: int = N_BOOT, seed: int = 0,
              level: float = bootstrap.DEFAULT_LEVEL) -> pd.DataFrame:
    """Corpus rate (%) of every (system, method) with its paired-bootstrap interval (module notes).

    Returns
    -------
    DataFrame
        ``system, method, n, rate, ci_low, ci_high`` (% of reference symbols; ``rate`` is SER for
        ``value="errors"``).
    """
    _check(samples)
    if value not in VALUES:
        raise ValueError(f"intervals: value must be one of {VALUES}, got {value!r}")
    units = pd.Index(sorted(samples.id.unique()))
    counts = bootstrap.resample_counts(len(units), n_boot, np.random.default_rng(seed)).astype(np.float64)
    rows = []
    for (system, method), part in samples.groupby(["system", "method"], sort=False):
        col = units.get_indexer(part.id)
        e = np.zeros(len(units))
        n = np.zeros(len(units))
        e[col], n[col] = part[value].to_numpy(np.float64), part.ref_len.to_numpy(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = 100.0 * (counts @ e) / (counts @ n)
        low, high = bootstrap.percentile_interval(boot[None, :], level)
        rows.append({"system": system, "method": method, "n": len(part), "rate": 100.0 * e.sum() / n.sum(),
                     "ci_low": float(low[0]), "ci_high": float(high[0])})
    return pd.DataFrame(rows)


def compare(samples: pd.DataFrame, a: str, b: str, method: str, value: str = "errors", n_perm: int = 10000,
            n_boot: int = 1000, seed: int = 0, ids: Sequence[str] | None = None) -> dict:
    """System ``b`` against system ``a`` on ``method`` (:func:`mtlnb.camera_primus.evaluation.crossval.paired_test`)
    on the samples both hold (within ``ids`` where given): ``rate_a, rate_b, diff`` (= b − a, points),
    ``ci_low, ci_high, p_value, n``."""
    _check(samples)
    keep = samples.method == method
    if ids is not None:
        keep &= samples.id.isin(set(ids))
    left = samples[keep & (samples.system == a)].set_index("id")
    right = samples[keep & (samples.system == b)].set_index("id")
    common = left.index.intersection(right.index)
    if len(common) == 0:
        raise ValueError(f"compare: systems {a!r} and {b!r} share no sample of method {method!r}")
    r = crossval.paired_test(left.loc[common, value], right.loc[common, value], left.loc[common, "ref_len"],
                             n_perm=n_perm, n_boot=n_boot, seed=seed)
    return {"rate_a": r["ser_a"], "rate_b": r["ser_b"], "diff": r["diff"], "ci_low": r["ci_low"],
            "ci_high": r["ci_high"], "p_value": r["p_value"], "n": r["n"]}


def relative_improvement(baseline: float, other: float) -> float:
    """``100 · (baseline − other) / baseline`` (the thesis's headline measure), NaN for a zero baseline."""
    return float(crossval.relative_improvement(baseline, other)) if baseline else math.nan


def rate(samples: pd.DataFrame, system: str, method: str, value: str = "errors",
         ids: Sequence[str] | None = None) -> float:
    """Corpus rate (%) of one (system, method), over ``ids`` where given."""
    part = samples[(samples.system == system) & (samples.method == method)]
    if ids is not None:
        part = part[part.id.isin(set(ids))]
    if part.empty:
        return math.nan
    return 100.0 * float(part[value].sum()) / float(part.ref_len.sum())


def seed_range(values: Sequence[float]) -> float:
    """max − min of the finite values; NaN with fewer than two (the spread is unknown)."""
    v = [x for x in values if x == x]
    return float(max(v) - min(v)) if len(v) >= 2 else math.nan


def verdict(diff: float, p_value: float, spread: float, level: float = P_LEVEL) -> str:
    """The reading of a difference (module notes), in words that stay true for any numbers."""
    significant = p_value < level
    if spread != spread:  # NaN: one seed
        return ("significant on these test samples; seed spread unknown (one seed)" if significant
                else "not significant on these test samples; seed spread unknown (one seed)")
    beyond = abs(diff) > spread
    if beyond and significant:
        return "exceeds the seed spread and is significant: a difference"
    if significant:
        return "significant on these test samples but within the seed spread: another seed could undo it"
    if beyond:
        return "larger than the seed spread but not significant on these test samples"
    return "within the seed spread and not significant: no difference shown"


def shows_difference(text: str) -> bool:
    """Whether a :func:`verdict` counts as a difference the experiment shows."""
    return text.startswith("exceeds the seed spread")


def comparison(samples: pd.DataFrame, experiment: str, what: str, a: str, b: str, method: str, spread: float,
               value: str = "errors", ids: Sequence[str] | None = None, n_perm: int = 10000, n_boot: int = 1000,
               seed: int = 0) -> dict:
    """One row of the findings: :func:`compare` of ``b`` against ``a`` with its :func:`verdict`."""
    r = compare(samples, a, b, method, value, n_perm, n_boot, seed, ids)
    return {"experiment": experiment, "comparison": what, "method": method, "measure": value, "a": a, "b": b,
            **r, "seed_range": spread, "verdict": verdict(r["diff"], r["p_value"], spread)}


# -- experiment tables ----------------------------------------------------------------------------------------------

def seed_table(samples: pd.DataFrame, a2s_systems: Sequence[str], gradspsa_systems: Sequence[str],
               methods: Sequence[str] = (UNIMODAL, HEADLINE)) -> pd.DataFrame:
    """Per seed pair (the i-th of each network; one baseline pairs with every GradSPSA seed): each network's SER
    per method and GradSPSA's relative improvement; then rows ``range`` (max − min over seeds) and ``mean``."""
    if not a2s_systems or not gradspsa_systems:
        raise ValueError("seed_table: at least one system per network")
    n = max(len(a2s_systems), len(gradspsa_systems))
    rows = []
    for i in range(n):
        a = a2s_systems[min(i, len(a2s_systems) - 1)]
        g = gradspsa_systems[min(i, len(gradspsa_systems) - 1)]
        row = {"seed pair": i + 1, "baseline": a, "gradspsa": g}
        for m in methods:
            ra, rg = rate(samples, a, m), rate(samples, g, m)
            row.update({f"baseline {m}": ra, f"gradspsa {m}": rg, f"improvement {m} %": relative_improvement(ra, rg)})
        rows.append(row)
    table = pd.DataFrame(rows)
    numeric = [c for c in table.columns if c not in ("seed pair", "baseline", "gradspsa")]
    spread = {c: seed_range(table[c].drop_duplicates() if c.startswith("baseline ") else table[c]) for c in numeric}
    for c in numeric:  # a network's range over its own distinct seeds
        if c.startswith("baseline "):
            spread[c] = seed_range([rate(samples, a, c.split(" ", 1)[1]) for a in a2s_systems])
        elif c.startswith("gradspsa "):
            spread[c] = seed_range([rate(samples, g, c.split(" ", 1)[1]) for g in gradspsa_systems])
    extra = pd.DataFrame([{"seed pair": "range", **spread}, {"seed pair": "mean", **table[numeric].mean().to_dict()}])
    return pd.concat([table, extra], ignore_index=True)


def pair_difference_range(samples: pd.DataFrame, a2s_systems: Sequence[str], gradspsa_systems: Sequence[str],
                          method: str, value: str = "errors") -> float:
    """Seed range of GradSPSA's rate minus the baseline's (points) over the seed pairs of :func:`seed_table`."""
    n = max(len(a2s_systems), len(gradspsa_systems))
    diffs = [rate(samples, gradspsa_systems[min(i, len(gradspsa_systems) - 1)], method, value)
             - rate(samples, a2s_systems[min(i, len(a2s_systems) - 1)], method, value) for i in range(n)]
    return seed_range(diffs)


def spreads(table: pd.DataFrame) -> dict[str, float]:
    """The ``range`` row of :func:`seed_table` as ``{column: range}``."""
    row = table[table["seed pair"] == "range"].iloc[0]
    return {c: float(row[c]) for c in table.columns if c not in ("seed pair", "baseline", "gradspsa")}


def subset_table(samples: pd.DataFrame, systems: Mapping[str, str], subset_ids: Sequence[str],
                 methods: Sequence[str] = (UNIMODAL, HEADLINE), n_boot: int = N_BOOT, seed: int = 0,
                 level: float = bootstrap.DEFAULT_LEVEL) -> pd.DataFrame:
    """Each system (``{network: system}``) on the subset's test split and on the whole decoded test fold.

    Columns ``network, system, method, n subset, SER subset, n full, SER full, full − subset`` and the paired
    bootstrap interval of that difference (``ci_low, ci_high``: one resampling of the full fold's samples, the
    subset statistic read on the resampled samples that lie in the subset) and ``p`` (two-sided: twice the share
    of resamples on the far side of 0)."""
    inside = set(subset_ids)
    rows = []
    for network, system in systems.items():
        for m in methods:
            part = samples[(samples.system == system) & (samples.method == m)]
            if part.empty:
                continue
            e, n = part.errors.to_numpy(np.float64), part.ref_len.to_numpy(np.float64)
            sub = part.id.isin(inside).to_numpy()
            counts = bootstrap.resample_counts(len(part), n_boot, np.random.default_rng(seed)).astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                full_b = 100.0 * (counts @ e) / (counts @ n)
                sub_b = 100.0 * (counts[:, sub] @ e[sub]) / (counts[:, sub] @ n[sub])
            d = full_b - sub_b
            low, high = bootstrap.percentile_interval(d[None, :], level)
            ok = d[np.isfinite(d)]
            point = 100.0 * e.sum() / n.sum() - (100.0 * e[sub].sum() / n[sub].sum() if sub.any() else math.nan)
            p = min(1.0, 2 * min((ok <= 0).mean(), (ok >= 0).mean())) if len(ok) else math.nan
            rows.append({"network": network, "system": system, "method": m, "n subset": int(sub.sum()),
                         "SER subset": rate(samples, system, m, ids=list(inside)), "n full": len(part),
                         "SER full": rate(samples, system, m), "full − subset": point,
                         "ci_low": float(low[0]), "ci_high": float(high[0]), "p": p})
    return pd.DataFrame(rows)


def closeness_ranks(samples: pd.DataFrame, systems: Sequence[str], n_boot: int = N_BOOT, seed: int = 0
                    ) -> pd.DataFrame:
    """Per system and fusion method: SER and the closeness-aware error with intervals, and each method's rank
    (1 = best) by either measure among the system's methods; ``reordered`` where the two ranks differ."""
    part = samples[samples.system.isin(systems) & (samples.method != UNIMODAL)]
    ser = intervals(part, "errors", n_boot, seed).rename(columns={"rate": "SER", "ci_low": "SER low",
                                                                  "ci_high": "SER high"})
    close = intervals(part, "closeness", n_boot, seed).rename(columns={"rate": "closeness", "ci_low": "closeness low",
                                                                       "ci_high": "closeness high"})
    table = ser.merge(close.drop(columns="n"), on=["system", "method"])
    table["rank SER"] = table.groupby("system").SER.rank(method="min").astype(int)
    table["rank closeness"] = table.groupby("system").closeness.rank(method="min").astype(int)
    table["reordered"] = table["rank SER"] != table["rank closeness"]
    return table.sort_values(["system", "rank SER", "method"]).reset_index(drop=True)


def reorderings(samples: pd.DataFrame, system: str, methods: Sequence[str], n_perm: int = 10000,
                n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Every pair of ``methods`` whose order by SER and by the closeness-aware error disagree on ``system``, with
    the paired test of the closeness-aware difference (is the new order significant?)."""
    rows = []
    for i, m1 in enumerate(methods):
        for m2 in methods[i + 1:]:
            s1, s2 = rate(samples, system, m1), rate(samples, system, m2)
            c1, c2 = rate(samples, system, m1, "closeness"), rate(samples, system, m2, "closeness")
            if np.sign(s2 - s1) * np.sign(c2 - c1) < 0:
                left = samples[(samples.system == system) & (samples.method == m1)].assign(system="a", method="x")
                right = samples[(samples.system == system) & (samples.method == m2)].assign(system="b", method="x")
                r = compare(pd.concat([left, right]), "a", "b", "x", "closeness", n_perm, n_boot, seed)
                rows.append({"system": system, "method a": m1, "method b": m2, "SER a": s1, "SER b": s2,
                             "closeness a": c1, "closeness b": c2, "closeness b − a": r["diff"],
                             "ci_low": r["ci_low"], "ci_high": r["ci_high"], "p": r["p_value"]})
    return pd.DataFrame(rows, columns=["system", "method a", "method b", "SER a", "SER b", "closeness a",
                                       "closeness b", "closeness b − a", "ci_low", "ci_high", "p"])


def subset_representation(study, fold: int, fraction: float, split: str = "train") -> pd.DataFrame:
    """Total variation distance (per attribute of :data:`mtlnb.camera_primus.corpus.strata.ATTRIBUTES`) of the
    random and the stratified ``fraction`` subset of a split from the whole split."""
    from mtlnb.camera_primus.corpus import primus

    f = study.folds[fold]
    seed = study.profile.corpus.seed
    subsets = {"random": primus.subsample_fold(f, fraction, seed),
               "stratified": strata.stratified_subsample_fold(f, fraction, study.corpus.tokens, seed)}
    return pd.DataFrame({k: strata.representation(getattr(s, split), getattr(f, split), study.corpus.tokens)
                         for k, s in subsets.items()}).T


def findings_text(findings: pd.DataFrame) -> list[str]:
    """One sentence per row of the findings table, built from its numbers and verdict."""
    out = []
    for r in findings.itertuples(index=False):
        spread = "unknown" if r.seed_range != r.seed_range else f"{r.seed_range:.2f}"
        out.append(f"{r.experiment} — {r.comparison} ({r.method}, {r.measure}): {r.rate_b:.2f} vs {r.rate_a:.2f} %, "
                   f"Δ {r.diff:+.2f} points [{r.ci_low:+.2f}, {r.ci_high:+.2f}], p = {r.p_value:.3f}, seed range "
                   f"{spread}: {r.verdict}.")
    return out


def save_table(table: pd.DataFrame, study, name: str) -> Path:
    """Write a table as CSV under ``<study>/beyond/tables/<name>.csv`` (atomically) and return the path."""
    from mtlnb.core import io

    path = study.root / "beyond" / "tables" / f"{name}.csv"
    io.write_text(path, table.to_csv(index=False))
    return path


__all__ = ["ALPHA", "HEADLINE", "SmoothingFailed", "UNIMODAL", "closeness_ranks", "compare", "comparison",
           "findings_text", "fuse", "fusion_samples", "intervals", "pair_difference_range", "rate",
           "relative_improvement", "reorderings",
           "seed_range", "seed_table", "shows_difference", "spreads", "subset_representation", "subset_table",
           "unimodal_samples", "verdict"]
