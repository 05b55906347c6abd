"""The tables and findings of notebook 05: the thesis's Tables 3, 4 and 5 from our scenario results, each beside
the thesis's published numbers, the relative-improvement table, the levels each scenario reached, the thesis's
qualitative claims checked, and saving them as CSV.

Inputs are the frames of :class:`mtlnb.camera_primus.evaluation.scenarios.ScenarioResults` and the long
cross-validation table of :func:`mtlnb.camera_primus.evaluation.crossval.cross_validate` (``cv``: one row per
pair, scheme, scenario and method, ``ser`` in %).  The thesis's own numbers come from
:mod:`mtlnb.camera_primus.evaluation.thesis_tables`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from mtlnb.camera_primus.evaluation import thesis_tables
from mtlnb.camera_primus.evaluation.crossval import SCHEMES, fold_ser, relative_improvement
from mtlnb.camera_primus.evaluation.scenarios import LEVEL_TARGETS, METHOD_LABELS, SCENARIOS, THESIS_ROWS, levels
from mtlnb.core import io
from mtlnb.core.paths import figures_dir

# Our (pair, scheme) -> the thesis's Table 3 block it stands beside.  The thesis's re-run baseline has one block
# and does not say under which scheme; it stands beside both of ours.
THESIS_BLOCK = {("baseline", "validation"): "baseline_thesis", ("baseline", "kfold"): "baseline_thesis",
                ("gradspsa", "validation"): "gradspsa_validation", ("gradspsa", "kfold"): "gradspsa_kfold"}


def table3(cv: pd.DataFrame, thesis: bool = True) -> pd.DataFrame:
    """Table 3: SER (%) per (pair, scheme, method) × scenario, ours beside the thesis's.

    Parameters
    ----------
    cv : DataFrame
        :func:`mtlnb.camera_primus.evaluation.crossval.cross_validate`.
    thesis : bool
        Add the thesis's block (:data:`THESIS_BLOCK`) beside ours.

    Returns
    -------
    DataFrame
        Index ``(pair, scheme, method)`` (method as its label, ``scenarios.METHOD_LABELS``), rows in the thesis's
        order; columns scenarios 1–9, or with ``thesis`` ``(scenario, source)`` with source "ours" / "thesis".
    """
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    ours = cv.pivot(index=["pair", "scheme", "method"], columns="scenario", values="ser")
    ours = ours.reindex(columns=list(SCENARIOS))
    ours = ours.iloc[sorted(range(len(ours)), key=lambda i: (ours.index[i][0], ours.index[i][1],
                                                             order.get(ours.index[i][2], 99)))]
    if thesis:
        t = thesis_tables.published_table3()
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
    t = thesis_tables.published_table4_by_scenario()
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


def selected_folds_table(cv: pd.DataFrame, thesis: bool = True) -> pd.DataFrame:
    """Table 5: the fold the baseline's scheme selected per scenario (rows: pairs, plus the thesis's)."""
    v = cv[cv.scheme == "validation"].drop_duplicates(["pair", "scenario"])
    out = v.pivot(index="pair", columns="scenario", values="folds").reindex(columns=list(SCENARIOS))
    if thesis:
        out.loc["thesis (GradSPSA)"] = thesis_tables.published_table5().astype(str)
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
    :attr:`mtlnb.camera_primus.evaluation.scenarios.ScenarioResults.omr_targets` where the levels are snapshots)."""
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
