"""Notebook 05's tables (Tables 3, 4, 5, the relative improvement, empty scenarios) on hand-built frames."""

import math

import numpy as np
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
    t = tables.table3(small_cv(), sizes=False)
    assert t.shape == (8, 18)
    row = t.loc[("gradspsa", "kfold", "Minimum Bayes Risk")]
    assert row[(3, "ours")] == 13.0 and row[(3, "thesis")] == 6.4
    assert t.loc[("baseline", "validation", "Minimum Bayes Risk")][(3, "thesis")] == 46.3
    assert math.isnan(t.loc[("baseline", "kfold", "OMR alone, greedy")][(1, "thesis")])
    assert t.index.get_level_values("method")[0] == "Minimum Bayes Risk"  # thesis rows first


def test_table3_begins_each_block_with_its_sample_sizes():
    cv = small_cv()
    cv = cv[~((cv.pair == "baseline") & (cv.scenario == 6))]  # the baseline kept nothing in scenario 6
    t = tables.table3(cv)
    assert t.shape == (12, 18)
    assert t.index[0] == ("baseline", "kfold", tables.N_ROW)  # first row of each block
    n = t.loc[("baseline", "kfold", tables.N_ROW)]
    assert n[(1, "ours")] == 5 and n[(6, "ours")] == 0 and math.isnan(n[(6, "thesis")])  # no baseline sizes
    g = t.loc[("gradspsa", "kfold", tables.N_ROW)]
    assert g[(2, "thesis")] == 5901 and g[(3, "thesis")] == 311  # Table 4's totals
    assert t.loc[("gradspsa", "validation", tables.N_ROW)][(2, "thesis")] == 1992  # Table 5 picks fold 2
    # a scenario no pair kept anything of is not in cv: evaluated says it was run (n = 0), else n is unknown
    no9 = cv[cv.scenario != 9]
    assert math.isnan(tables.table3(no9).loc[("gradspsa", "kfold", tables.N_ROW)][(9, "ours")])
    assert tables.table3(no9, evaluated=range(1, 10)).loc[("gradspsa", "kfold", tables.N_ROW)][(9, "ours")] == 0


def sizes_frame(n_kept):
    """Sizes of two pairs over nine scenarios, one fold: ``n_kept[pair]`` nine numbers."""
    return pd.DataFrame([{"pair": pair, "fold": 0, "scenario": s, "threshold": None, "n_decoded": 340,
                          "n_kept": n} for pair, ns in n_kept.items() for s, n in zip(scenarios.SCENARIOS, ns)])


def test_the_too_few_rule_marks_exactly_the_scenarios_under_the_threshold():
    base = [340, 29, 30, 340, 100, 0, 340, 31, 5]
    grad = [340, 60, 30, 340, 29, 12, 340, 31, 40]
    cv = small_cv()
    n_of = {"baseline": base, "gradspsa": grad}
    cv["n_samples"] = [n_of[r.pair][r.scenario - 1] for r in cv.itertuples()]
    cv = cv[cv.n_samples > 0]  # no row where nothing was kept
    read = tables.readability(cv, sizes_frame(n_of))
    assert read.loc["baseline"].n.tolist() == base
    assert read.loc["baseline"].index[~read.loc["baseline"].readable].tolist() == [2, 6, 9]  # 29, 0, 5
    assert read.loc["gradspsa"].index[~read.loc["gradspsa"].readable].tolist() == [5, 6]
    assert tables.readable_scenarios(read) == [1, 3, 4, 7, 8]  # both pairs ≥ 30
    assert tables.readable_scenarios(read, ["gradspsa"]) == [1, 2, 3, 4, 7, 8, 9]
    assert tables.readable_scenarios(tables.readability(cv, sizes_frame(n_of), min_samples=6)) == [1, 2, 3, 4, 5,
                                                                                                      7, 8]
    assert scenarios.MIN_TEST_SAMPLES == 30
    note = tables.too_few_note(read)
    assert "baseline: too few to read (< 30 kept test samples): 2 (H,M) n = 29, 6 (M,L) n = 0, 9 (L,L) n = 5" in note
    with pytest.raises(ValueError, match="min_samples"):
        tables.readability(cv, sizes_frame(n_of), min_samples=0)


def test_test_sizes_per_scenario_for_the_run_index():
    sizes = pd.concat([sizes_frame({"baseline": [10, 4, 1] * 3}),
                       sizes_frame({"baseline": [7, 2, 0] * 3}).assign(fold=1)])
    sizes = sizes[sizes.scenario != 9]
    assert tables.kept_per_scenario(sizes, "baseline") == [17, 6, 1, 17, 6, 1, 17, 6, None]
    with pytest.raises(ValueError, match="gradspsa"):
        tables.kept_per_scenario(sizes, "gradspsa")


def test_interval_table_shows_intervals_and_marks_too_few():
    cv = small_cv()
    cv["n_samples"] = [5 if r.scenario == 3 else 50 for r in cv.itertuples()]
    read = tables.readability(cv, sizes_frame({"baseline": [0] * 9, "gradspsa": [0] * 9}))
    t = tables.interval_table(cv, read, methods=["lattice_combination"])
    assert t.loc[("baseline", "Minimum Bayes Risk"), "1 (H,H)"] == "11.0 [9.0, 12.0]"
    assert t.loc[("baseline", "Minimum Bayes Risk"), "3 (H,L)"] == "(13.0 [9.0, 12.0])"
    assert t.loc[("gradspsa", tables.N_ROW), "3 (H,L)"] == "5 (too few)"
    assert t.loc[("gradspsa", tables.N_ROW), "2 (H,M)"] == "50"
    assert tables.format_interval(4.06, -2.0, 9.54, signed=True) == "+4.1 [-2.0, +9.5]"
    assert tables.format_interval(float("nan"), 1, 2) == "–"


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


FUSED = list(scenarios.THESIS_ROWS)
UNIMODAL = ["greedy_omr", "greedy_a2s", "best_path_omr", "best_path_a2s"]


def scenario_samples(kept, errors, rng=None):
    """Kept test samples of one fold of 100 decoded samples (refs of 100 tokens): pair ``p`` keeps the first
    ``kept[p][s - 1]`` in scenario ``s``; ``errors(pair, scenario, method)`` gives the errors per sample, i.e. its
    SER in % (with ``rng``: binomial noise around that mean)."""
    rows = []
    for pair, ns in kept.items():
        for s, n in zip(scenarios.SCENARIOS, ns):
            for m in FUSED + UNIMODAL:
                e = errors(pair, s, m)
                per = rng.binomial(100, e / 100, size=n) if rng is not None else np.full(n, e)
                rows += [{"pair": pair, "fold": 0, "scenario": s, "id": f"u{i}", "method": m, "errors": int(x),
                          "ref_len": 100} for i, x in enumerate(per)]
    return pd.DataFrame(rows)


def validation_frame(pairs):
    return pd.DataFrame([{"pair": p, "fold": 0, "scenario": s, "omr_val_ser": 30.0, "a2s_val_ser": 30.0}
                         for p in pairs for s in scenarios.SCENARIOS])


KEPT = {"baseline": [100, 60, 5, 100, 60, 29, 100, 60, 0], "gradspsa": [100, 70, 40, 100, 70, 30, 100, 70, 3]}
UNITS = pd.DataFrame({"fold": 0, "id": [f"u{i}" for i in range(100)]})


def headline_inputs(errors, rng=None):
    samples = scenario_samples(KEPT, errors, rng)
    d = crossval.draws(samples, validation_frame(KEPT), n_boot=1000, seed=0, units=UNITS)
    cv = d.table()
    sizes = sizes_frame(KEPT)
    return d, cv, tables.readability(cv, sizes)


def test_headline_averages_only_the_readable_scenarios_with_an_interval():
    # MBR: baseline 20 %, GradSPSA 10 % (50 % better) -- except in scenario 3 (GradSPSA kept 40, the baseline 5:
    # too few) where GradSPSA makes 80 %: a -300 % that must not reach the average
    def errors(pair, s, m):
        if pair == "gradspsa":
            return 80 if s == 3 else 10
        return 20
    d, cv, read = headline_inputs(errors)
    counted = tables.readable_scenarios(read)
    assert counted == [1, 2, 4, 5, 7, 8]  # 3, 6, 9: the baseline has < 30
    h = tables.improvement_headline(d, counted)
    assert h["scenarios"] == counted
    assert h["average"] == pytest.approx(50.0) and h["average_ci"] == pytest.approx((50.0, 50.0))
    assert h["best"] == pytest.approx(50.0) and h["best_share"] == 1.0
    assert h["per_scenario"].improvement[3] == pytest.approx(-300.0) and not h["per_scenario"].counted[3]
    # the table gives the same average over the same scenarios, and the thesis's way (every scenario) beside
    t = tables.improvement_table(cv, counted=counted).loc["lattice_combination"]
    assert t["average"] == pytest.approx(50.0) and t["scenarios counted"] == 6
    assert t["average (all)"] == pytest.approx((7 * 50.0 - 300.0) / 8)  # scenario 9: the baseline kept none
    every = tables.improvement_headline(d, list(scenarios.SCENARIOS))
    assert every["average"] == pytest.approx(t["average (all)"])
    nothing = tables.improvement_headline(d, [])
    assert math.isnan(nothing["average"]) and nothing["scenarios"] == []


def test_headline_interval_covers_the_estimate_and_is_seeded():
    def errors(pair, s, m):
        return 20 if pair == "baseline" else 15
    d, cv, read = headline_inputs(errors, np.random.default_rng(0))
    counted = tables.readable_scenarios(read)
    h = tables.improvement_headline(d, counted)
    low, high = h["average_ci"]
    assert low < h["average"] < high and high - low > 1.0
    assert h["best_ci"][0] <= h["best"] <= h["best_ci"][1]
    for s in counted:
        r = h["per_scenario"].loc[s]
        assert r.ci_low <= r.improvement <= r.ci_high
    assert h["average"] == pytest.approx(tables.improvement_table(cv, counted=counted).loc["lattice_combination",
                                                                                              "average"])
    again = tables.improvement_headline(crossval.draws(scenario_samples(KEPT, errors, np.random.default_rng(0)),
                                                       validation_frame(KEPT), n_boot=1000, seed=0, units=UNITS),
                                        counted)
    assert again["average_ci"] == h["average_ci"]


def test_headline_table_puts_the_thesis_both_ways_beside_ours():
    h = {"average": 12.0, "average_ci": (5.0, 19.0), "best": 30.0, "best_ci": (20.0, 41.0), "best_scenario": 5,
         "scenarios": [2, 5, 8], "level": 0.95}
    t = tables.headline_table(h)
    assert t.loc["ours", "average 95 % CI"] == "[+5.0, +19.0]"
    # the thesis over scenarios 2, 5, 8 (its Table 3, MBR: baseline 29.4, 21.0, 12.5; GradSPSA k-fold 13.9, 7.3, 4.3)
    by_hand = np.mean([100 * (29.4 - 13.9) / 29.4, 100 * (21.0 - 7.3) / 21.0, 100 * (12.5 - 4.3) / 12.5])
    assert t.loc["thesis, same scenarios", "average (%)"] == pytest.approx(by_hand)
    assert t.loc["thesis, same scenarios", "best scenario"] == 8 and t.loc["thesis, same scenarios",
                                                                           "scenarios"] == "2, 5, 8"
    assert round(t.loc["thesis, all nine (published)", "average (%)"], 1) == 37.2
    assert t.loc["thesis, all nine (published)", "best scenario"] == 3


def test_findings_counted_over_readable_scenarios_with_intervals():
    # the baseline: MBR 20 %, the other fusions 25 %, the best unimodal 22 %: fusion beats unimodal, MBR best;
    # GradSPSA: MBR 10 %, a unimodal 5 %: fusion does not beat unimodal, MBR still best
    def errors(pair, s, m):
        if m == "lattice_combination":
            return 20 if pair == "baseline" else 10
        if m in FUSED:
            return 25
        if m == "greedy_omr":
            return 22 if pair == "baseline" else 5
        return 40
    d, cv, read = headline_inputs(errors)
    found = tables.findings(cv, read=read, draws=d)
    assert found.loc[("baseline", 3), "n"] == 5 and not found.loc[("baseline", 3), "readable"]
    assert found.loc[("baseline", 1), "fusion beats unimodal (share)"] == 1.0
    assert found.loc[("gradspsa", 1), "fusion beats unimodal (share)"] == 0.0
    assert found.loc[("baseline", 3), "MBR best (share)"] < 1.0  # five samples: some resamples keep none
    counts = tables.findings_counts(d, read)
    beats = counts.loc["fusion beats unimodal"]
    assert beats.loc["baseline", "count"] == 6 and beats.loc["baseline", "of"] == 6  # 3, 6, 9 too few
    assert beats.loc["baseline", "too few"] == 3
    assert beats.loc["gradspsa", "count"] == 0 and beats.loc["gradspsa", "of"] == 8  # scenario 9: 3 samples
    assert beats.loc["all pairs", "count"] == 6 and beats.loc["all pairs", "of"] == 14
    assert (beats.loc["all pairs", "ci_low"], beats.loc["all pairs", "ci_high"]) == (6.0, 6.0)
    assert counts.loc[("MBR best", "all pairs"), "count"] == 14
    # the point counts agree with the findings table over the readable rows
    readable = found[found.readable]
    assert beats.loc["all pairs", "count"] == readable["fusion beats unimodal"].sum()


def test_nothing_readable_counts_nothing():
    d, cv, _ = headline_inputs(lambda pair, s, m: 20)
    read = tables.readability(cv, sizes_frame(KEPT), min_samples=1000)
    assert tables.readable_scenarios(read) == []
    counts = tables.findings_counts(d, read)
    assert (counts["count"] == 0).all() and (counts["of"] == 0).all() and counts.ci_low.isna().all()
    assert counts.loc[("MBR best", "all pairs"), "too few"] == 18
    h = tables.improvement_headline(d, tables.readable_scenarios(read))
    assert math.isnan(h["average"]) and tables.headline_table(h).loc["ours", "scenarios"] == "none"


def test_side_by_side_puts_the_thesis_in_parentheses_and_drops_rows_we_did_not_evaluate():
    cols = pd.MultiIndex.from_product([[1, 2], ["ours", "thesis"]], names=["scenario", "source"])
    sizes = pd.DataFrame([[8, 2674, 0, 1249], [pd.NA, 2674, pd.NA, 1016]], index=pd.Index([0, 1], name="fold"),
                         columns=cols).astype("Int64")
    shown = tables.side_by_side(sizes)
    assert shown.index.tolist() == [0] and shown.columns.tolist() == [1, 2]
    assert shown.loc[0].tolist() == ["8 (2674)", "0 (1249)"]
    ser = pd.DataFrame([[31.25, 28.3, np.nan, 29.4]], index=["Minimum Bayes Risk"], columns=cols)
    assert tables.side_by_side(ser).loc["Minimum Bayes Risk"].tolist() == ["31.2 (28.3)", "— (29.4)"]
