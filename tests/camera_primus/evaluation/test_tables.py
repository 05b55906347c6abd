"""Notebook 05's tables (Tables 3, 4, 5, the relative improvement, empty scenarios) on hand-built frames."""

import math

import pandas as pd
import pytest

from mtlnb.camera_primus.evaluation import crossval, scenarios, tables


def test_relative_improvement_formula():
    assert crossval.relative_improvement(20.0, 15.0) == pytest.approx(25.0)
    assert crossval.relative_improvement(10.0, 12.0) == pytest.approx(-20.0)  # worse: negative, kept in the mean
    cv = pd.DataFrame({"pair": ["baseline"] * 2 + ["gradspsa"] * 2, "scheme": "kfold", "scenario": [1, 2, 1, 2],
                       "method": "lattice_combination", "ser": [20.0, 10.0, 15.0, 12.0]})
    t = tables.improvement_table(cv)
    row = t.loc["lattice_combination"]
    assert row[1] == pytest.approx(25.0) and row[2] == pytest.approx(-20.0)
    assert row["average"] == pytest.approx(2.5) and row["best"] == pytest.approx(25.0)
    assert row["best scenario"] == 1 and math.isnan(row[3])


def small_cv():
    rows = []
    for pair in ("baseline", "gradspsa"):
        for scheme in crossval.SCHEMES:
            for s in scenarios.SCENARIOS:
                for m in ("lattice_combination", "greedy_omr"):
                    rows.append({"pair": pair, "scheme": scheme, "scenario": s, "method": m, "ser": 10.0 + s,
                                 "ci_low": 9.0, "ci_high": 12.0, "folds": "0", "n_folds": 1, "n_samples": 5})
    return pd.DataFrame(rows)


def test_table3_puts_the_thesis_beside_ours():
    t = tables.table3(small_cv())
    assert t.shape == (8, 18)
    row = t.loc[("gradspsa", "kfold", "Minimum Bayes Risk")]
    assert row[(3, "ours")] == 13.0 and row[(3, "thesis")] == 6.4
    assert t.loc[("baseline", "validation", "Minimum Bayes Risk")][(3, "thesis")] == 46.3
    assert math.isnan(t.loc[("baseline", "kfold", "OMR alone, greedy")][(1, "thesis")])
    assert t.index.get_level_values("method")[0] == "Minimum Bayes Risk"  # thesis rows first


def test_table4_and_table5_layout():
    sizes = pd.DataFrame({"pair": "gradspsa", "fold": 0, "scenario": list(scenarios.SCENARIOS),
                          "n_decoded": 8, "n_kept": [8, 3, 0] * 3})
    t4 = tables.test_sizes(sizes, "gradspsa")
    assert t4.loc["total", (2, "ours")] == 3 and t4.loc["total", (3, "thesis")] == 311
    assert t4.loc[0, (3, "ours")] == 0  # an empty scenario shows 0, not a missing cell
    cv = small_cv()
    t5 = tables.selected_folds_table(cv)
    assert t5.loc["baseline", 1] == "0" and t5.loc["thesis (GradSPSA)", 2] == "2"


def test_empty_scenarios_give_their_reason():
    sizes = pd.DataFrame({"pair": "baseline", "fold": 0, "scenario": [1, 2, 3], "threshold": [None, 30.0, 10.0],
                          "n_decoded": 4, "n_kept": [4, 1, 0]})
    a2s = pd.DataFrame({"pair": "baseline", "fold": 0, "id": list("abcd"), "a2s_ser": [25.0, 40.0, 55.0, 80.0]})
    t = tables.empty_scenarios(sizes, a2s)
    assert t.scenario.tolist() == [3]
    assert "≤ 10 %" in t.reason[0] and "25.0 %" in t.reason[0]


def test_findings_rank_mbr_and_compare_with_unimodal():
    rows = [("baseline", 1, m, ser) for m, ser in (("lattice_combination", 12.0), ("smith_waterman", 10.0),
                                                   ("confusion_network", 12.0), ("greedy_omr", 11.0),
                                                   ("greedy_a2s", 30.0))]
    rows += [("baseline", 2, m, ser) for m, ser in (("lattice_combination", 5.0), ("greedy_omr", 8.0))]
    cv = pd.DataFrame(rows, columns=["pair", "scenario", "method", "ser"]).assign(scheme="kfold")
    found = tables.findings(cv)
    one, two = found.loc[("baseline", 1)], found.loc[("baseline", 2)]
    assert one["best fusion"] == "Smith-Waterman" and one["best unimodal SER"] == 11.0
    assert one["fusion beats unimodal"] and one["MBR rank"] == 2  # one method below MBR; the tie shares rank 2
    assert two["best fusion"] == "Minimum Bayes Risk" and two["MBR rank"] == 1 and two["fusion beats unimodal"]


def test_levels_reached_beside_their_targets():
    samples = pd.DataFrame({"pair": "baseline", "fold": 0, "scenario": [2, 2, 2, 2, 8, 8],
                            "id": ["a", "b", "a", "b", "a", "a"],
                            "method": ["greedy_omr", "greedy_omr", "greedy_a2s", "greedy_a2s", "greedy_omr",
                                       "greedy_a2s"],
                            "errors": [1, 3, 2, 0, 1, 1], "ref_len": [10, 10, 10, 10, 10, 20]})
    got = tables.levels_reached(samples)
    assert got.loc[("baseline", 0, 2), "OMR SER"] == pytest.approx(20.0)  # (1 + 3) / 20
    assert got.loc[("baseline", 0, 2), "A2S SER"] == pytest.approx(10.0)
    assert got.loc[("baseline", 0, 2), "n"] == 2
    assert got.loc[("baseline", 0, 2), "target OMR"] == 30.0 and got.loc[("baseline", 0, 8), "target OMR"] == 10.0
    assert got.loc[("baseline", 0, 8), "target A2S"] == 20.0
    snap = tables.levels_reached(samples, {"H": 50.0, "M": 35.0, "L": 25.0})
    assert snap.loc[("baseline", 0, 8), "target OMR"] == 25.0
    with pytest.raises(ValueError, match="greedy"):
        tables.levels_reached(samples[samples.method == "x"])


def test_save_tables_writes_csv(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "figures_dir", lambda profile: tmp_path / profile)
    paths = tables.save_tables({"05_x": pd.DataFrame({"a": [1, 2]})}, "smoke")
    assert paths == [tmp_path / "smoke" / "tables" / "05_x.csv"]
    assert pd.read_csv(paths[0], index_col=0).a.tolist() == [1, 2]
