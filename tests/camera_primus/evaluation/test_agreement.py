"""Two runs' notebook-05 tables compared: agreement within intervals, on hand-written tables folders."""

import math

import pandas as pd
import pytest

from mtlnb import cli
from mtlnb.camera_primus.evaluation import agreement, tables

PAIRS = ("baseline", "gradspsa")
METHODS = ("lattice_combination", "greedy_a2s")


def write_run(folder, ser_shift=0.0, kept_low=40, shifted=None, headline=(12.0, (8.0, 16.0)), beats=(8, 7.0, 10.0)):
    """A tables folder as notebook 05 saves it: scenarios 1-3, scenario 3 keeping ``kept_low`` test samples.
    ``shifted`` = (pair, scenario, method) moved by ``ser_shift`` points with its interval."""
    rows, read = [], []
    for pair in PAIRS:
        for s in (1, 2, 3):
            n = kept_low if s == 3 else 300
            read.append({"pair": pair, "scenario": s, "n": n, "readable": n >= 30})
            for scheme in ("kfold", "validation"):
                for m in METHODS:
                    ser = 20.0 + s + (ser_shift if shifted == (pair, s, m) else 0.0)
                    rows.append({"pair": pair, "scheme": scheme, "scenario": s, "method": m, "ser": ser,
                                 "ci_low": ser - 1.5, "ci_high": ser + 1.5, "n_samples": n})
    avg, (lo, hi) = headline
    head = tables.headline_table({"level": 0.95, "average": avg, "average_ci": (lo, hi), "best": avg + 3,
                                  "best_ci": (lo + 3, hi + 3), "best_scenario": 2, "scenarios": [1, 2]})
    count, clo, chi = beats
    found = pd.DataFrame([{"finding": f, "pair": p, "count": count if f == "fusion beats unimodal" else 0,
                           "ci_low": clo if f == "fusion beats unimodal" else math.nan,
                           "ci_high": chi if f == "fusion beats unimodal" else math.nan, "of": 6, "too few": 0}
                          for f in tables.FINDINGS for p in (*PAIRS, "all pairs")]).set_index(["finding", "pair"])
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "05_table3_long.csv")
    pd.DataFrame(read).to_csv(folder / "05_readability.csv", index=False)
    head.to_csv(folder / "05_headline.csv")
    found.to_csv(folder / "05_findings_counts.csv")
    return folder


def test_a_run_agrees_with_itself(tmp_path):
    a = write_run(tmp_path / "a")
    result = agreement.compare(a, a)
    assert result.agree
    assert len(result.cells) == len(PAIRS) * 3 * len(METHODS)  # kfold only, every scenario readable
    assert result.cells.inside.all() and (result.cells["diff"] == 0).all()
    assert result.headline.loc["average", "low_a"] == pytest.approx(8.0)
    # "MBR best" has no interval (nothing counted) in either run: equal counts agree
    assert result.findings.loc[("MBR best", "all pairs"), "overlap"]


def test_a_cell_beyond_both_intervals_disagrees_and_is_named(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", ser_shift=4.0, shifted=("gradspsa", 2, "lattice_combination"))
    result = agreement.compare(a, b)
    assert not result.agree
    bad = result.cells[~result.cells.overlap]
    assert len(bad) == 1 and bad.iloc[0].pair == "gradspsa" and bad.iloc[0].scenario == 2
    assert bad.iloc[0]["diff"] == pytest.approx(4.0)
    assert "largest +4.00 (gradspsa, 2 (H,M)" in result.summary()
    # a shift of 2 points: the intervals (±1.5) still overlap, but neither value is inside the other's interval
    c = write_run(tmp_path / "c", ser_shift=2.0, shifted=("gradspsa", 2, "lattice_combination"))
    moved = agreement.compare(a, c).cells
    row = moved[moved["diff"] != 0]
    assert len(row) == 1 and row.iloc[0].overlap and not row.iloc[0].inside


def test_headline_and_findings_compared_by_their_intervals(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", headline=(30.0, (25.0, 35.0)), beats=(11, 11.0, 12.0))
    result = agreement.compare(a, b)
    assert not result.headline.loc["average", "overlap"] and not result.agree
    assert result.headline.loc["average", "value_b"] == pytest.approx(30.0)
    assert not result.findings.loc[("fusion beats unimodal", "all pairs"), "overlap"]
    assert "headline average: a +12.0 [8, 16], b +30.0 [25, 35] -> DISAGREE" in result.summary()


def test_a_scenario_too_few_in_one_run_is_left_out_of_the_cells_but_its_sizes_are_shown(tmp_path):
    a = write_run(tmp_path / "a", kept_low=40)
    b = write_run(tmp_path / "b", kept_low=12)  # scenario 3 unreadable in b
    result = agreement.compare(a, b)
    assert set(result.cells.scenario) == {1, 2}
    assert result.sizes.loc[("baseline", 3), "n_a"] == 40 and result.sizes.loc[("baseline", 3), "n_b"] == 12
    assert "40/12" in result.summary()


def test_missing_tables_are_named(tmp_path):
    a = write_run(tmp_path / "a")
    (a / "05_headline.csv").unlink()
    with pytest.raises(FileNotFoundError, match="05_headline.csv"):
        agreement.compare(a, a)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        agreement.compare(tmp_path / "nowhere", a)


def test_parse_interval():
    assert agreement.parse_interval("[+7.6, +15.7]") == (7.6, 15.7)
    assert agreement.parse_interval("[−2.0, +9.5]") == (-2.0, 9.5)
    assert all(math.isnan(v) for v in agreement.parse_interval("–"))
    assert all(math.isnan(v) for v in agreement.parse_interval(float("nan")))


def test_cli_prints_the_comparison_and_writes_the_cells(tmp_path, capsys):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", ser_shift=4.0, shifted=("baseline", 1, "greedy_a2s"))
    assert cli.main(["compare-runs", str(a), str(b), "--csv", str(tmp_path / "cells.csv")]) == 0
    out = capsys.readouterr().out
    assert "intervals overlap in 11" in out and "DISAGREE beyond their intervals" in out
    assert len(pd.read_csv(tmp_path / "cells.csv")) == 12
    assert cli.main(["compare-runs", str(a), str(tmp_path / "nowhere")]) == 2
