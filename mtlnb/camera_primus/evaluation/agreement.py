"""Do two runs of the scenario study agree?  Notebook 05's saved tables of two runs, side by side.

Two runs of the same code and seeds give the same numbers only with the same thread count on the same kind of
CPU: oneDNN's convolutions, the LSTMs' matrix products and every OpenMP reduction sum in an order that depends on
the threads, so two trainings differ by float rounding after the first update and by more after a few epochs
(different networks, different transcriptions, different SERs).  What should hold is that the *findings* agree
within their intervals.  :func:`compare` reads the tables notebook 05 writes (``figures/<profile>/tables/``) for
two runs and reports

- every (pair, scenario, method) SER of the k-fold scheme that both runs can read (≥ 30 kept test samples in
  each), both 95 % intervals and whether they **overlap** -- the agreement criterion -- and whether each value lies
  inside the other run's interval (the stricter reading);
- the headline (GradSPSA's mean and best relative improvement over the baseline in the MBR row) with its interval;
- the findings' counts (:data:`mtlnb.camera_primus.evaluation.tables.FINDINGS`) with theirs;
- the kept test samples per (pair, scenario).

Why overlap and not "inside": the intervals are bootstraps over the *test samples* of one trained network; they
do not contain the training's own variation, which is what differs between the two runs.  Two runs whose
intervals do not overlap disagree beyond the test noise: their networks learned measurably different things.

    python -m mtlnb compare-runs TABLES_A TABLES_B
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mtlnb.camera_primus.evaluation.scenarios import METHOD_LABELS, label

# The tables notebook 05 saves (``tables.save_tables``) that the comparison reads.
TABLES = {"cells": "05_table3_long.csv", "readability": "05_readability.csv", "headline": "05_headline.csv",
          "findings": "05_findings_counts.csv"}
_BOUNDS = {f"ci_{end}_{run}": f"{end}_{run}" for end in ("low", "high") for run in "ab"}  # merged columns, shorter
_INTERVAL = re.compile(r"\[\s*([+\-−]?[\d.]+)\s*,\s*([+\-−]?[\d.]+)\s*\]")


def read_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Notebook 05's tables in ``folder`` (:data:`TABLES`); ``FileNotFoundError`` naming each missing file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (give the tables folder of a run: figures/<profile>/tables)")
    missing = [name for name in TABLES.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: not notebook 05's tables, missing {', '.join(missing)} "
                                "(run notebook 05 first; its tables go to figures/<profile>/tables)")
    return {key: pd.read_csv(folder / name) for key, name in TABLES.items()}


def parse_interval(text) -> tuple[float, float]:
    """``"[+7.6, +15.7]"`` → (7.6, 15.7); anything else (``"–"``, empty) → (nan, nan)."""
    m = _INTERVAL.search(str(text)) if isinstance(text, str) else None
    if not m:
        return math.nan, math.nan
    return tuple(float(v.replace("−", "-")) for v in m.groups())  # type: ignore[return-value]


def overlap(a_low: float, a_high: float, b_low: float, b_high: float) -> bool:
    """Whether the intervals [a_low, a_high] and [b_low, b_high] share a point (False where one is missing)."""
    if any(v != v for v in (a_low, a_high, b_low, b_high)):  # NaN
        return False
    return a_low <= b_high and b_low <= a_high


def _agree(value_a: float, low_a: float, high_a: float, value_b: float, low_b: float, high_b: float) -> bool:
    """Intervals overlap; where neither run has one (nothing counted, no headline), the values must be equal."""
    if all(v != v for v in (low_a, high_a, low_b, high_b)):
        return value_a == value_b or (value_a != value_a and value_b != value_b)
    return overlap(low_a, high_a, low_b, high_b)


@dataclass
class Agreement:
    """What :func:`compare` found.

    Attributes
    ----------
    cells : DataFrame
        One row per (pair, scenario, method) readable in both runs: ``ser_a``, ``low_a``, ``high_a``, ``ser_b``,
        ``low_b``, ``high_b`` (%), ``diff`` (b − a, points), ``overlap`` and ``inside`` (each value inside the other's
        interval).
    headline : DataFrame
        Rows ``average`` and ``best``: value and interval of each run, ``overlap``.
    findings : DataFrame
        Index (finding, pair): ``count_a``, ``low_a``, ``high_a``, ``of_a``, the same for b, ``overlap``.
    sizes : DataFrame
        Index (pair, scenario): ``n_a``, ``n_b``, ``readable_a``, ``readable_b``.
    """

    cells: pd.DataFrame
    headline: pd.DataFrame
    findings: pd.DataFrame
    sizes: pd.DataFrame

    def summary(self) -> str:
        """A few lines: how many cells, headlines and findings agree, and the largest differences."""
        c = self.cells
        lines = [f"SER cells readable in both runs (k-fold): {len(c)}; intervals overlap in {int(c.overlap.sum())}, "
                 f"each value inside the other's interval in {int(c.inside.sum())}"]
        if len(c):
            d = c["diff"].abs()
            lines.append(f"  difference b − a: median |{d.median():.2f}| points, largest {c['diff'][d.idxmax()]:+.2f} "
                         f"({c.loc[d.idxmax(), 'pair']}, {label(int(c.loc[d.idxmax(), 'scenario']))}, "
                         f"{c.loc[d.idxmax(), 'method']})")
        for name, r in self.headline.iterrows():
            lines.append(f"headline {name}: a {_fmt(r.value_a, r.low_a, r.high_a)}, b {_fmt(r.value_b, r.low_b, r.high_b)}"
                         f" -> {'agree' if r.overlap else 'DISAGREE'}")
        for (finding, pair), r in self.findings.iterrows():
            lines.append(f"{finding} ({pair}): a {r.count_a:g} of {r.of_a:g} {_bracket(r.low_a, r.high_a)}, "
                         f"b {r.count_b:g} of {r.of_b:g} {_bracket(r.low_b, r.high_b)} -> "
                         f"{'agree' if r.overlap else 'DISAGREE'}")
        s = self.sizes
        lines.append("kept test samples a / b: " + "; ".join(
            f"{pair} " + " ".join(f"{int(r.n_a)}/{int(r.n_b)}" for _, r in part.iterrows())
            for pair, part in s.groupby(level="pair", sort=False)))
        return "\n".join(lines)

    @property
    def agree(self) -> bool:
        """Every readable cell, the headline and every finding's interval overlap."""
        return bool(self.cells.overlap.all() and self.headline.overlap.all() and self.findings.overlap.all())


def _fmt(value: float, low: float, high: float) -> str:
    return "–" if value != value else f"{value:+.1f} {_bracket(low, high)}"


def _bracket(low: float, high: float) -> str:
    return "[–]" if low != low else f"[{low:g}, {high:g}]"


def compare(tables_a: str | Path, tables_b: str | Path, scheme: str = "kfold") -> Agreement:
    """Two runs' notebook-05 tables side by side (module docstring).

    Parameters
    ----------
    tables_a, tables_b : path
        The ``figures/<profile>/tables`` folder of each run.
    scheme : {"kfold", "validation"}
        Which cross-validation scheme's SERs to compare (the headline and findings are notebook 05's, k-fold).
    """
    a, b = read_tables(tables_a), read_tables(tables_b)
    keys = ["pair", "scenario", "method"]
    read = a["readability"].merge(b["readability"], on=["pair", "scenario"], suffixes=("_a", "_b"), how="outer")
    sizes = read.set_index(["pair", "scenario"])[["n_a", "n_b", "readable_a", "readable_b"]]
    sizes = sizes.fillna({"n_a": 0, "n_b": 0, "readable_a": False, "readable_b": False})
    both = sizes[sizes.readable_a.astype(bool) & sizes.readable_b.astype(bool)].index

    def cells(t: pd.DataFrame) -> pd.DataFrame:
        t = t[t.scheme == scheme].set_index(["pair", "scenario"])
        t = t[t.index.isin(both)].reset_index()
        return t[keys + ["ser", "ci_low", "ci_high"]]

    merged = cells(a["cells"]).merge(cells(b["cells"]), on=keys, suffixes=("_a", "_b"))
    merged = merged.rename(columns=_BOUNDS)
    merged["diff"] = merged.ser_b - merged.ser_a
    merged["overlap"] = [overlap(r.low_a, r.high_a, r.low_b, r.high_b) for r in merged.itertuples()]
    merged["inside"] = [(r.low_b <= r.ser_a <= r.high_b) and (r.low_a <= r.ser_b <= r.high_a)
                        for r in merged.itertuples()]
    merged["method"] = merged.method.map(lambda m: METHOD_LABELS.get(m, m))

    headline_rows = {}
    ha, hb = (t.set_index(t.columns[0]).loc["ours"] for t in (a["headline"], b["headline"]))
    for name in ("average", "best"):
        ci = next(col for col in ha.index if col.startswith(f"{name} ") and col.endswith("CI"))
        (la, ua), (lb, ub) = parse_interval(ha[ci]), parse_interval(hb[ci])
        headline_rows[name] = {"value_a": float(ha[f"{name} (%)"]), "low_a": la, "high_a": ua,
                               "value_b": float(hb[f"{name} (%)"]), "low_b": lb, "high_b": ub,
                               "overlap": _agree(float(ha[f"{name} (%)"]), la, ua, float(hb[f"{name} (%)"]), lb, ub)}
    headline = pd.DataFrame.from_dict(headline_rows, orient="index")

    fa, fb = (t.set_index(["finding", "pair"]) for t in (a["findings"], b["findings"]))
    columns = ["count", "ci_low", "ci_high", "of"]
    findings = fa[columns].merge(fb[columns], left_index=True, right_index=True, suffixes=("_a", "_b"))
    findings = findings.rename(columns=_BOUNDS)
    findings["overlap"] = [_agree(r.count_a, r.low_a, r.high_a, r.count_b, r.low_b, r.high_b)
                           for r in findings.itertuples()]
    return Agreement(merged, headline, findings, sizes)
