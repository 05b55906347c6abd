"""The tables and findings of notebook 05: the thesis's Tables 3, 4 and 5 from our scenario results, each beside
the thesis's published numbers, the relative-improvement table, the levels each scenario reached, the thesis's
qualitative claims checked, and saving them as CSV.

Inputs are the frames of :class:`mtlnb.camera_primus.evaluation.scenarios.ScenarioResults`, the long
cross-validation table of :func:`mtlnb.camera_primus.evaluation.crossval.cross_validate` (``cv``: one row per
pair, scheme, scenario and method, ``ser`` in %, its 95 % interval and ``n_samples``), and for the headlines'
intervals its bootstrap draws (:class:`mtlnb.camera_primus.evaluation.bootstrap.Draws`).  The thesis's own numbers
come from :mod:`mtlnb.camera_primus.evaluation.thesis_tables`.

Reading rules (beyond the thesis)
---------------------------------
- **Too few to read**: a (pair, scenario) whose figure rests on fewer than
  :data:`mtlnb.camera_primus.evaluation.scenarios.MIN_TEST_SAMPLES` kept test samples (:func:`readability`) is
  shown with its n but counts in no average and no count: the headline improvement averages the scenarios in which
  *both* pairs can be read (:func:`readable_scenarios`), the findings count the readable (pair, scenario).  The
  thesis's own headline is given both ways beside ours (:func:`headline_table`): over its nine scenarios, as it
  published it, and over the scenarios ours averages.
- **Intervals of the headlines**: percentiles of the same paired bootstrap draws as every SER interval -- the mean
  and the best relative improvement and the findings' counts are recomputed on each resample.  The interval of a
  maximum ("best improvement") is the percentile interval of the resampled maximum, which leans high where
  several scenarios are close; the share of resamples in which the same scenario is best says how stable it is.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mtlnb.camera_primus.evaluation import bootstrap, thesis_tables
from mtlnb.camera_primus.evaluation.crossval import SCHEMES, fold_ser, relative_improvement
from mtlnb.camera_primus.evaluation.scenarios import (LEVEL_TARGETS, METHOD_LABELS, MIN_TEST_SAMPLES, SCENARIOS,
                                                      THESIS_ROWS, label, levels)
from mtlnb.core import io
from mtlnb.core.paths import figures_dir

# Our (pair, scheme) -> the thesis's Table 3 block it stands beside.  The thesis's re-run baseline has one block
# and does not say under which scheme; it stands beside both of ours.
THESIS_BLOCK = {("baseline", "validation"): "baseline_thesis", ("baseline", "kfold"): "baseline_thesis",
                ("gradspsa", "validation"): "gradspsa_validation", ("gradspsa", "kfold"): "gradspsa_kfold"}
HEADLINE_METHOD = "lattice_combination"  # the row of the thesis's headline: its "Minimum Bayes Risk"
FUSION_ROWS = tuple(THESIS_ROWS)  # the five fusion methods the findings compare
UNIMODAL_ROWS = ("greedy_omr", "greedy_a2s", "best_path_omr", "best_path_a2s")
N_ROW = "n (kept test samples)"  # label of the sample-size row of Table 3 and of the interval table
# The thesis's claims counted by findings_counts: the best fusion beats both unimodal systems; MBR is the best fusion.
FINDINGS = ("fusion beats unimodal", "MBR best")


def table3(cv: pd.DataFrame, thesis: bool = True, sizes: bool = True,
           evaluated: Sequence[int] | None = None) -> pd.DataFrame:
    """Table 3: SER (%) per (pair, scheme, method) × scenario, ours beside the thesis's.

    Parameters
    ----------
    cv : DataFrame
        :func:`mtlnb.camera_primus.evaluation.crossval.cross_validate`.
    thesis : bool
        Add the thesis's block (:data:`THESIS_BLOCK`) beside ours.
    sizes : bool
        Begin each (pair, scheme) block with the row :data:`N_ROW`: the kept test samples behind each figure
        (ours: ``cv.n_samples``, 0 where the pair kept none; the thesis's: its Table 4 -- summed over folds under
        k-fold, the Table 5 fold under its validation scheme -- for GradSPSA; it gives none for the baseline).
    evaluated : sequence of int, optional
        The scenarios evaluated (``ScenarioResults.sizes.scenario``), whose n is 0 where ``cv`` has no row: a
        scenario no pair kept a sample of is absent from ``cv``.  Default: the scenarios of ``cv``.

    Returns
    -------
    DataFrame
        Index ``(pair, scheme, method)`` (method as its label, ``scenarios.METHOD_LABELS``), rows in the thesis's
        order; columns scenarios 1–9, or with ``thesis`` ``(scenario, source)`` with source "ours" / "thesis".
    """
    order = {N_ROW: -1, **{m: i for i, m in enumerate(METHOD_LABELS)}}
    ours = cv.pivot(index=["pair", "scheme", "method"], columns="scenario", values="ser")
    ours = ours.reindex(columns=list(SCENARIOS))
    if sizes:
        n = cv.groupby(["pair", "scheme", "scenario"]).n_samples.min().unstack("scenario")
        n = n.reindex(columns=list(SCENARIOS))
        evaluated = [s for s in SCENARIOS if s in set(cv.scenario if evaluated is None else evaluated)]
        n[evaluated] = n[evaluated].fillna(0)  # evaluated, but this pair kept no sample
        n.index = pd.MultiIndex.from_tuples([(p, sc, N_ROW) for p, sc in n.index], names=ours.index.names)
        ours = pd.concat([ours, n.astype(float)])
    ours = ours.iloc[sorted(range(len(ours)), key=lambda i: (ours.index[i][0], ours.index[i][1],
                                                             order.get(ours.index[i][2], 99)))]
    if thesis:
        t = thesis_tables.published_table3()
        t4 = thesis_tables.published_table4_by_scenario()
        t5 = thesis_tables.published_table5()
        thesis_n = {"gradspsa_kfold": t4.sum().astype(float),
                    "gradspsa_validation": pd.Series({s: float(t4.loc[t5[s], s]) for s in SCENARIOS})}
        rows = []
        for pair, scheme, method in ours.index:
            block = THESIS_BLOCK.get((pair, scheme))
            row = THESIS_ROWS.get(method)
            if method == N_ROW and block in thesis_n:
                rows.append(thesis_n[block])
            else:
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


def side_by_side(wide: pd.DataFrame, digits: int = 1) -> pd.DataFrame:
    """A table with ``(scenario, source)`` columns (:func:`table3`, :func:`test_sizes`) in a shape people read:
    one column per scenario, each cell ``"ours (thesis)"``; ``—`` where we have no value, no parentheses where the
    thesis has none.  Rows where we have no value in any scenario (folds not evaluated) are left out.

    Parameters
    ----------
    wide : DataFrame
        Columns a MultiIndex ``(scenario, source)`` with sources ``"ours"`` and ``"thesis"``.
    digits : int
        Decimals of non-integer values.

    Returns
    -------
    DataFrame of str, the same rows (less the empty ones), columns the scenarios.
    """
    def fmt(v, integer: bool) -> str | None:
        if pd.isna(v):
            return None
        return f"{int(v)}" if integer else f"{float(v):.{digits}f}"

    integer = {c: pd.api.types.is_integer_dtype(t) for c, t in wide.dtypes.items()}
    scenarios = list(dict.fromkeys(wide.columns.get_level_values(0)))
    out = pd.DataFrame(index=wide.index, columns=pd.Index(scenarios, name=wide.columns.names[0]), dtype=object)
    keep = []
    for row in wide.index:
        any_ours = False
        for sc in scenarios:
            ours, thesis = (fmt(wide.loc[row, (sc, src)], integer[(sc, src)]) if (sc, src) in wide.columns else None
                            for src in ("ours", "thesis"))
            any_ours |= ours is not None
            out.loc[row, sc] = (ours or "—") + (f" ({thesis})" if thesis is not None else "")
        if any_ours:
            keep.append(row)
    return out.loc[keep]


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


def kept_per_scenario(sizes: pd.DataFrame, pair: str) -> list[int | None]:
    """Kept test samples of one pair per scenario 1–9, summed over the evaluated folds (``None`` for a scenario
    that was not evaluated): the run index's ``05 test sizes <pair>``."""
    part = sizes[sizes.pair == pair]
    if part.empty:
        raise ValueError(f"kept_per_scenario: no sizes for pair {pair!r}")
    total = part.groupby("scenario").n_kept.sum()
    return [int(total[s]) if s in total.index else None for s in SCENARIOS]


def readability(cv: pd.DataFrame, sizes: pd.DataFrame, min_samples: int = MIN_TEST_SAMPLES,
                scheme: str = "kfold") -> pd.DataFrame:
    """Which (pair, scenario) figures can be read under ``scheme`` (module notes).

    Parameters
    ----------
    cv : DataFrame
        :func:`mtlnb.camera_primus.evaluation.crossval.cross_validate` (its ``n_samples``: the kept test samples
        behind each figure).
    sizes : DataFrame
        :attr:`mtlnb.camera_primus.evaluation.scenarios.ScenarioResults.sizes`: which pairs and scenarios were
        evaluated (a pair that kept no sample of a scenario has no ``cv`` row: n = 0).
    min_samples : int
        The threshold: n ≥ ``min_samples`` is readable.
    scheme : {"validation", "kfold"}

    Returns
    -------
    DataFrame
        Index ``(pair, scenario)`` over the evaluated pairs (in ``sizes``'s order) and scenarios; columns ``n``
        (int) and ``readable`` (bool).
    """
    if min_samples < 1:
        raise ValueError(f"readability: min_samples must be ≥ 1, got {min_samples}")
    if scheme not in SCHEMES:
        raise ValueError(f"readability: scheme must be one of {SCHEMES}, got {scheme!r}")
    pairs = list(dict.fromkeys(sizes.pair))
    index = pd.MultiIndex.from_product([pairs, sorted(sizes.scenario.unique())], names=["pair", "scenario"])
    n = cv[cv.scheme == scheme].groupby(["pair", "scenario"]).n_samples.min()
    n = n.reindex(index).fillna(0).astype(int)
    return pd.DataFrame({"n": n, "readable": n >= min_samples})


def readable_scenarios(read: pd.DataFrame, pairs: Sequence[str] | None = None) -> list[int]:
    """The scenarios in which every pair of ``pairs`` (default: all of :func:`readability`'s) can be read."""
    pairs = list(pairs) if pairs is not None else list(dict.fromkeys(read.index.get_level_values("pair")))
    ok = read.readable.unstack("pair").reindex(columns=pairs).fillna(False).astype(bool)
    return [int(s) for s in ok.index[ok.all(axis=1)]]


def too_few_note(read: pd.DataFrame, min_samples: int = MIN_TEST_SAMPLES) -> str:
    """One line per pair naming its scenarios that are too few to read, with their n."""
    lines = []
    for pair, part in read.groupby(level="pair", sort=False):
        few = part[~part.readable].droplevel("pair")
        listed = ", ".join(f"{label(s)} n = {r.n}" for s, r in few.iterrows()) or "none"
        lines.append(f"{pair}: too few to read (< {min_samples} kept test samples): {listed}")
    return "\n".join(lines)


def format_interval(value: float, low: float, high: float, decimals: int = 1, signed: bool = False) -> str:
    """``"23.4 [21.0, 25.9]"`` (``signed``: ``"+4.1 [−2.0, +9.5]"``); ``"–"`` for a missing value."""
    if value is None or not np.isfinite(value):
        return "–"
    f = f"{{:{'+' if signed else ''}.{decimals}f}}"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return f.format(value) + " [–]"
    return f"{f.format(value)} [{f.format(low)}, {f.format(high)}]"


def interval_table(cv: pd.DataFrame, read: pd.DataFrame | None = None, scheme: str = "kfold",
                   methods: Sequence[str] | None = None, decimals: int = 1) -> pd.DataFrame:
    """Each (pair, method)'s SER per scenario with its interval, as text: ``"23.4 [21.0, 25.9]"``; a figure too
    few to read (``read``, :func:`readability`) in parentheses.  Each pair's first row is :data:`N_ROW`
    (``"21 (too few)"`` where so).

    Returns
    -------
    DataFrame
        Index ``(pair, method label)``; columns the scenario labels (``"3 (H,L)"``).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"interval_table: scheme must be one of {SCHEMES}, got {scheme!r}")
    part = cv[cv.scheme == scheme]
    methods = [m for m in (methods or METHOD_LABELS) if m in set(part.method)]
    scen = sorted(part.scenario.unique()) if read is None else sorted(read.index.get_level_values("scenario")
                                                                       .unique())
    pairs = list(dict.fromkeys(part.pair)) if read is None else list(dict.fromkeys(
        read.index.get_level_values("pair")))
    cells = {(r.pair, r.scenario, r.method): r for r in part.itertuples(index=False)}
    rows, index = [], []
    for pair in pairs:
        n_row = []
        for s in scen:
            if read is not None:
                r = read.loc[(pair, s)]
                n_row.append(f"{r.n}" + ("" if r.readable else " (too few)"))
            else:
                any_cell = next((c for (p, sc, _), c in cells.items() if p == pair and sc == s), None)
                n_row.append(f"{any_cell.n_samples if any_cell is not None else 0}")
        rows.append(n_row)
        index.append((pair, N_ROW))
        for m in methods:
            row = []
            for s in scen:
                c = cells.get((pair, s, m))
                text = "–" if c is None else format_interval(c.ser, c.ci_low, c.ci_high, decimals)
                if c is not None and read is not None and not read.loc[(pair, s)].readable:
                    text = f"({text})"
                row.append(text)
            rows.append(row)
            index.append((pair, METHOD_LABELS.get(m, m)))
    return pd.DataFrame(rows, index=pd.MultiIndex.from_tuples(index, names=["pair", "method"]),
                        columns=pd.Index([label(s) for s in scen], name="scenario"))


def selected_folds_table(cv: pd.DataFrame, thesis: bool = True) -> pd.DataFrame:
    """Table 5: the fold the baseline's scheme selected per scenario (rows: pairs, plus the thesis's)."""
    v = cv[cv.scheme == "validation"].drop_duplicates(["pair", "scenario"])
    out = v.pivot(index="pair", columns="scenario", values="folds").reindex(columns=list(SCENARIOS))
    if thesis:
        out.loc["thesis (GradSPSA)"] = thesis_tables.published_table5().astype(str)
    return out


def improvement_table(cv: pd.DataFrame, baseline: str = "baseline", other: str = "gradspsa",
                      scheme: str = "kfold", baseline_scheme: str | None = None,
                      counted: Sequence[int] | None = None) -> pd.DataFrame:
    """Relative SER improvement (%) of ``other`` over ``baseline`` per method × scenario, with the thesis's
    summary columns over the ``counted`` scenarios (default: every scenario that has both; notebook 05 passes
    :func:`readable_scenarios`): ``average``, ``best``, ``best scenario``, ``scenarios counted``; and
    ``average (all)``, the mean over every scenario that has both (what the thesis averaged)."""
    if scheme not in SCHEMES or (baseline_scheme or scheme) not in SCHEMES:
        raise ValueError(f"improvement_table: schemes must be in {SCHEMES}")
    get = lambda pair, s: cv[(cv.pair == pair) & (cv.scheme == s)].pivot(  # noqa: E731
        index="method", columns="scenario", values="ser").reindex(columns=list(SCENARIOS))
    b, g = get(baseline, baseline_scheme or scheme), get(other, scheme)
    rel = relative_improvement(b, g).dropna(how="all")
    by_scenario = rel[list(SCENARIOS)]
    part = by_scenario if counted is None else by_scenario[[s for s in SCENARIOS if s in set(counted)]]
    rel["average"] = part.mean(axis=1)
    rel["best"] = part.max(axis=1)
    rel["best scenario"] = [row.astype(float).idxmax() if row.notna().any() else np.nan
                            for _, row in part.iterrows()]
    rel["scenarios counted"] = part.notna().sum(axis=1)
    rel["average (all)"] = by_scenario.mean(axis=1)
    order = {m: i for i, m in enumerate(METHOD_LABELS)}
    return rel.iloc[sorted(range(len(rel)), key=lambda i: order.get(rel.index[i], 99))]


def _relative(base: np.ndarray, other: np.ndarray) -> np.ndarray:
    """:func:`relative_improvement`, NaN where the baseline's SER is 0 or missing."""
    out = np.full(np.broadcast(base, other).shape, np.nan)
    np.divide(100.0 * (base - other), base, out=out, where=np.isfinite(base) & (base > 0))
    return out


def improvement_headline(draws: bootstrap.Draws, counted: Sequence[int], method: str = HEADLINE_METHOD,
                         baseline: str = "baseline", other: str = "gradspsa", scheme: str = "kfold",
                         baseline_scheme: str | None = None, level: float = bootstrap.DEFAULT_LEVEL) -> dict:
    """The thesis's headline -- ``other``'s mean and best relative SER improvement over ``baseline`` in one
    method's row -- over the ``counted`` scenarios, with percentile intervals from the paired bootstrap draws
    (both pairs' SERs of a resample come from the same resampled test samples).

    Returns
    -------
    dict
        ``per_scenario`` (DataFrame indexed by scenario 1–9: ``improvement``, ``ci_low``, ``ci_high`` (%),
        ``counted``), ``scenarios`` (those averaged: ``counted`` where both pairs have a figure), ``average``,
        ``average_ci`` (low, high), ``best``, ``best_ci``, ``best_scenario``, ``best_share`` (share of resamples in
        which that scenario is the best too), ``level``.  Averages are NaN where no scenario is counted.
    """
    scen = list(SCENARIOS)
    pb, bb = draws.select(baseline, baseline_scheme or scheme, method, scen)
    pg, bg = draws.select(other, scheme, method, scen)
    rel_p, rel_b = _relative(pb, pg), _relative(bb, bg)
    low, high = bootstrap.percentile_interval(rel_b, level)
    use = [i for i, s in enumerate(scen) if s in set(counted) and np.isfinite(rel_p[i])]
    per = pd.DataFrame({"improvement": rel_p, "ci_low": low, "ci_high": high,
                        "counted": [i in use for i in range(len(scen))]}, index=pd.Index(scen, name="scenario"))
    out = {"per_scenario": per, "scenarios": [scen[i] for i in use], "level": level, "average": math.nan,
           "average_ci": (math.nan, math.nan), "best": math.nan, "best_ci": (math.nan, math.nan),
           "best_scenario": math.nan, "best_share": math.nan}
    if not use:
        return out
    sub_p, sub_b = rel_p[use], rel_b[use]  # (S,), (S, B); a resample with an undefined scenario is left out
    defined = np.isfinite(sub_b).all(axis=0)
    best = int(np.argmax(sub_p))
    interval = lambda v: tuple(float(x) for x in bootstrap.percentile_interval(v, level))  # noqa: E731
    out.update(average=float(sub_p.mean()), average_ci=interval(sub_b.mean(axis=0)),
               best=float(sub_p[best]), best_ci=interval(sub_b.max(axis=0)), best_scenario=scen[use[best]])
    if defined.any():
        out["best_share"] = float((np.argmax(sub_b[:, defined], axis=0) == best).mean())
    return out


def headline_table(headline: dict) -> pd.DataFrame:
    """Our headline (:func:`improvement_headline`) beside the thesis's, computed both ways: over its nine
    scenarios (as published) and over the scenarios ours averages (:func:`mtlnb.camera_primus.evaluation.
    thesis_tables.headline_improvement`).  Rows ``ours``, ``thesis, same scenarios``, ``thesis, all nine``;
    columns ``average (%)``, ``average CI``, ``best (%)``, ``best CI``, ``best scenario``, ``scenarios``."""
    pct = f"{round(100 * headline['level'])} %"

    def row(avg, avg_ci, best, best_ci, best_s, scen):
        return {"average (%)": avg, f"average {pct} CI": avg_ci, "best (%)": best, f"best {pct} CI": best_ci,
                "best scenario": best_s, "scenarios": ", ".join(str(s) for s in scen) or "none"}

    fmt = lambda lo_hi: "–" if not np.isfinite(lo_hi[0]) else f"[{lo_hi[0]:+.1f}, {lo_hi[1]:+.1f}]"  # noqa: E731
    same = thesis_tables.headline_improvement(scenarios=headline["scenarios"])
    every = thesis_tables.headline_improvement()
    rows = {"ours": row(headline["average"], fmt(headline["average_ci"]), headline["best"],
                        fmt(headline["best_ci"]), headline["best_scenario"], headline["scenarios"]),
            "thesis, same scenarios": row(same["average"], "", same["best"], "", same["best_scenario"],
                                          same["scenarios"]),
            "thesis, all nine (published)": row(every["average"], "", every["best"], "", every["best_scenario"],
                                                every["scenarios"])}
    return pd.DataFrame.from_dict(rows, orient="index")


def _findings_arrays(draws: bootstrap.Draws, pair: str, scheme: str, scen: Sequence[int]) -> dict:
    """Per scenario of one pair, the two findings as booleans: point (S,) and per resample (S, B).
    ``"fusion beats unimodal"``: the best of the five fusion rows is below the best unimodal row;
    ``"MBR best"``: no fusion row is below the MBR row (ties share the first rank)."""
    def stack(methods):
        parts = [draws.select(pair, scheme, m, scen) for m in methods]
        return np.stack([p for p, _ in parts]), np.stack([b for _, b in parts])

    fused_p, fused_b = stack(FUSION_ROWS)
    uni_p, uni_b = stack(UNIMODAL_ROWS)
    mbr = FUSION_ROWS.index(HEADLINE_METHOD)
    out = {}
    for which, fused, uni in (("point", fused_p, uni_p), ("boot", fused_b, uni_b)):
        best_fused = np.fmin.reduce(fused, axis=0)  # NaN only where every row is missing
        best_uni = np.fmin.reduce(uni, axis=0)
        with np.errstate(invalid="ignore"):
            out[("fusion beats unimodal", which)] = best_fused < best_uni  # NaN compares False
            out[("MBR best", which)] = np.isfinite(fused[mbr]) & ~(fused < fused[mbr]).any(axis=0)
    return out


def findings(cv: pd.DataFrame, scheme: str = "kfold", read: pd.DataFrame | None = None,
             draws: bootstrap.Draws | None = None) -> pd.DataFrame:
    """The thesis's qualitative claims checked per (pair, scenario) for one scheme: the best of its five fusion
    rows, whether it beats both unimodal systems (greedy and LM best path), and the rank of MBR among the five.

    Parameters
    ----------
    read : DataFrame, optional
        :func:`readability`: adds ``n`` and ``readable``.
    draws : Draws, optional
        Adds ``fusion beats unimodal (share)`` and ``MBR best (share)``: the share of bootstrap resamples in which
        the claim holds (how firmly the data say yes or no).

    Returns
    -------
    DataFrame
        Index ``(pair, scenario)``; columns ``best fusion`` (method), ``best fusion SER``, ``best unimodal SER``,
        ``fusion beats unimodal``, ``MBR rank`` (1 = best; ties share the better rank), and the optional ones.
    """
    part = cv[cv.scheme == scheme]
    rows = []
    for (pair, scenario), g in part.groupby(["pair", "scenario"], sort=True):
        ser = g.set_index("method").ser
        fused = ser.reindex(list(THESIS_ROWS)).dropna()
        uni = ser.reindex(list(UNIMODAL_ROWS)).dropna()
        if fused.empty:
            continue
        best = fused.idxmin()
        mbr = fused.get(HEADLINE_METHOD, math.nan)
        row = {"pair": pair, "scenario": scenario, "best fusion": THESIS_ROWS[best],
               "best fusion SER": fused[best], "best unimodal SER": uni.min() if len(uni) else math.nan,
               "fusion beats unimodal": bool(len(uni) and fused[best] < uni.min()),
               "MBR rank": int((fused < mbr).sum() + 1) if not math.isnan(mbr) else math.nan}
        if read is not None:
            r = read.loc[(pair, scenario)] if (pair, scenario) in read.index else None
            row.update(n=int(r.n) if r is not None else 0, readable=bool(r.readable) if r is not None else False)
        rows.append(row)
    out = pd.DataFrame(rows).set_index(["pair", "scenario"])
    if draws is not None and len(out):
        for pair, sub in out.groupby(level="pair", sort=False):
            scen = list(sub.index.get_level_values("scenario"))
            arrays = _findings_arrays(draws, pair, scheme, scen)
            for name in FINDINGS:
                out.loc[sub.index, f"{name} (share)"] = arrays[(name, "boot")].mean(axis=1)
    return out


def findings_counts(draws: bootstrap.Draws, read: pd.DataFrame, scheme: str = "kfold",
                    level: float = bootstrap.DEFAULT_LEVEL) -> pd.DataFrame:
    """How many readable (pair, scenario) each finding holds in (:data:`FINDINGS`), with a percentile interval
    from the bootstrap draws (the count recomputed on every resample).

    Returns
    -------
    DataFrame
        Index ``(finding, pair)`` with each pair and ``"all pairs"``; columns ``count``, ``ci_low``, ``ci_high``,
        ``of`` (readable (pair, scenario) counted), ``too few`` (left out).  The interval is NaN where nothing is
        counted.
    """
    pairs = list(dict.fromkeys(read.index.get_level_values("pair")))
    rows = []
    totals = {name: [0, np.zeros(draws.n_boot), 0, 0] for name in FINDINGS}
    for pair in pairs:
        r = read.loc[pair]
        scen = [int(s) for s in r.index[r.readable]]
        arrays = _findings_arrays(draws, pair, scheme, scen) if scen else None
        for name in FINDINGS:
            point = int(arrays[(name, "point")].sum()) if scen else 0
            boot = arrays[(name, "boot")].sum(axis=0) if scen else np.zeros(draws.n_boot)
            low, high = bootstrap.percentile_interval(boot, level) if scen else (math.nan, math.nan)
            rows.append({"finding": name, "pair": pair, "count": point, "ci_low": float(low), "ci_high": float(high),
                         "of": len(scen), "too few": int((~r.readable).sum())})
            t = totals[name]
            t[0] += point
            t[1] = t[1] + boot
            t[2] += len(scen)
            t[3] += int((~r.readable).sum())
    for name, (point, boot, of, few) in totals.items():
        low, high = bootstrap.percentile_interval(boot, level) if of else (math.nan, math.nan)
        rows.append({"finding": name, "pair": "all pairs", "count": point, "ci_low": float(low),
                     "ci_high": float(high), "of": of, "too few": few})
    return pd.DataFrame(rows).set_index(["finding", "pair"]).sort_index(level=0, sort_remaining=False)


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
