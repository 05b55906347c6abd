"""Scenarios, cross-validation, tables, bootstrap and paired test on hand-built per-sample tables (no training)."""

import math

import numpy as np
import pandas as pd
import pytest

from mtlnb.camera_primus.networks import runs as experiments
from mtlnb.camera_primus.evaluation import scenarios as sc


def per_sample(rows):
    """A late-fusion per-sample table from (id, method, alpha, errors, ref_len) tuples."""
    return pd.DataFrame(rows, columns=["id", "method", "alpha", "errors", "ref_len"]).assign(output="")


def test_levels_and_labels():
    assert sc.levels(1) == ("H", "H") and sc.levels(3) == ("H", "L") and sc.levels(8) == ("L", "M")
    assert sc.label(6) == "6 (M,L)"
    with pytest.raises(ValueError, match="scenario"):
        sc.levels(10)
    cfg = sc.ScenarioConfig()
    assert [cfg.threshold(s) for s in (1, 2, 3, 4, 8, 9)] == [None, 30.0, 10.0, None, 30.0, 10.0]


def test_filter_keeps_samples_at_or_below_the_threshold():
    ps = per_sample([("a", "greedy_a2s", math.nan, 3, 10),   # 30 %: kept at ≤ 30 (inclusive, as the baseline)
                     ("b", "greedy_a2s", math.nan, 4, 10),   # 40 %
                     ("c", "greedy_a2s", math.nan, 1, 10),   # 10 %: kept at ≤ 10
                     ("d", "greedy_a2s", math.nan, 0, 7),    # 0 %
                     ("a", "best_path_a2s", math.nan, 9, 10), ("b", "best_path_a2s", math.nan, 0, 10),
                     ("c", "best_path_a2s", math.nan, 9, 10), ("d", "best_path_a2s", math.nan, 9, 7)])
    ser = sc.a2s_sample_ser(ps)
    assert ser.to_dict() == pytest.approx({"a": 30.0, "b": 40.0, "c": 10.0, "d": 0.0})
    assert sc.filter_ids(ser, None) == ["a", "b", "c", "d"]
    assert sc.filter_ids(ser, 30.0) == ["a", "c", "d"]
    assert sc.filter_ids(ser, 10.0) == ["c", "d"]
    assert sc.filter_ids(sc.a2s_sample_ser(ps, "best_path"), 30.0) == ["b"]
    with pytest.raises(ValueError, match="threshold"):
        sc.filter_ids(ser, -1)


def test_scenario_rows_take_alpha_methods_at_alpha():
    ps = per_sample([("a", "lattice_combination", 0.0, 5, 10), ("a", "lattice_combination", 0.5, 2, 10),
                     ("a", "smith_waterman", math.nan, 3, 10), ("b", "lattice_combination", 0.5, 1, 8),
                     ("b", "smith_waterman", math.nan, 0, 8)])
    rows = sc.scenario_rows(ps, ["a"], 0.5, ["lattice_combination", "smith_waterman"])
    assert rows.set_index("method").errors.to_dict() == {"lattice_combination": 2, "smith_waterman": 3}
    with pytest.raises(ValueError, match="not swept"):
        sc.scenario_rows(ps, ["a"], 0.3, ["lattice_combination"])


def toy_samples():
    """Three folds, one scenario, pair 'baseline', method 'm'; fold 2 has no kept sample."""
    rows = []
    for fold, errs in ((0, [(1, 10), (3, 10)]), (1, [(2, 10), (2, 30)])):
        for i, (e, n) in enumerate(errs):
            rows.append({"pair": "baseline", "fold": fold, "scenario": 2, "id": f"{fold}-{i}", "method": "m",
                         "errors": e, "ref_len": n})
    return pd.DataFrame(rows)


def toy_validation(omr, a2s):
    return pd.DataFrame({"pair": "baseline", "fold": [0, 1, 2], "scenario": 2, "omr_val_ser": omr,
                         "a2s_val_ser": a2s})


def test_select_folds_by_validation_criterion():
    v = toy_validation([40.0, 30.0, 10.0], [20.0, 40.0, 50.0])
    # pair criterion: means 30, 35, 30 -> tie between folds 0 and 2, lowest fold wins
    assert sc.select_folds(v, criterion="pair").fold.tolist() == [0]
    assert sc.select_folds(v, criterion="omr").fold.tolist() == [2]
    assert sc.select_folds(v, criterion="a2s").fold.tolist() == [0]
    eligible = pd.DataFrame({"pair": "baseline", "scenario": 2, "fold": [0, 1]})
    assert sc.select_folds(v, eligible, criterion="omr").fold.tolist() == [1]  # fold 2 has no test samples


def test_cross_validation_on_a_three_fold_toy():
    samples = toy_samples()
    cv = sc.cross_validate(samples, toy_validation([40.0, 30.0, 10.0], [20.0, 40.0, 50.0]), criterion="omr",
                           n_boot=200)
    by = cv.set_index("scheme")
    # fold SERs by hand: fold 0 = 4/20 = 20 %, fold 1 = 4/40 = 10 %; fold 2 is empty
    assert by.loc["kfold", "ser"] == pytest.approx(15.0)  # mean over the two folds with samples
    assert by.loc["kfold", "folds"] == "0,1" and by.loc["kfold", "n_folds"] == 2
    # the baseline's scheme: best OMR validation among folds with samples is fold 1 (30 < 40)
    assert by.loc["validation", "folds"] == "1" and by.loc["validation", "ser"] == pytest.approx(10.0)
    for _, r in cv.iterrows():
        assert r.ci_low <= r.ser <= r.ci_high


def test_relative_improvement_formula():
    assert sc.relative_improvement(20.0, 15.0) == pytest.approx(25.0)
    assert sc.relative_improvement(10.0, 12.0) == pytest.approx(-20.0)  # worse: negative, kept in the mean
    cv = pd.DataFrame({"pair": ["baseline"] * 2 + ["gradspsa"] * 2, "scheme": "kfold", "scenario": [1, 2, 1, 2],
                       "method": "lattice_combination", "ser": [20.0, 10.0, 15.0, 12.0]})
    t = sc.improvement_table(cv)
    row = t.loc["lattice_combination"]
    assert row[1] == pytest.approx(25.0) and row[2] == pytest.approx(-20.0)
    assert row["average"] == pytest.approx(2.5) and row["best"] == pytest.approx(25.0)
    assert row["best scenario"] == 1 and math.isnan(row[3])


def test_bootstrap_interval_contains_the_estimate_and_is_deterministic():
    rng = np.random.default_rng(1)
    n = rng.integers(5, 30, size=60)
    e = rng.binomial(n, 0.2)
    point = 100 * e.sum() / n.sum()
    low, high = sc.bootstrap_ser(e, n, n_boot=500, seed=3)
    assert low < point < high
    assert (low, high) == sc.bootstrap_ser(e, n, n_boot=500, seed=3)
    assert (low, high) != sc.bootstrap_ser(e, n, n_boot=500, seed=4)
    # every sample at the same rate: no spread
    assert sc.bootstrap_ser([2, 4, 6], [10, 20, 30], n_boot=50) == pytest.approx((20.0, 20.0))
    # grouped: the statistic is the mean of group SERs (20 % and 10 % -> 15 %) whatever the resample
    assert sc.bootstrap_ser([2, 2, 1, 1], [10, 10, 10, 10], groups=[0, 0, 1, 1], n_boot=50) == \
        pytest.approx((15.0, 15.0))
    with pytest.raises(ValueError, match="equal-length"):
        sc.bootstrap_ser([1, 2], [3])


def test_paired_test_obvious_cases():
    n = np.full(30, 10)
    worse, better = np.full(30, 5), np.zeros(30)
    r = sc.paired_test(worse, better, n, n_perm=2000, n_boot=200, seed=0)
    assert r["diff"] == pytest.approx(-50.0) and r["ser_a"] == pytest.approx(50.0) and r["ser_b"] == 0.0
    assert r["p_value"] < 0.001  # only the all-negative flips are as extreme: 2 / 2**30
    assert r["ci_high"] < 0
    same = sc.paired_test(worse, worse, n, n_perm=500, n_boot=100)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
    # a tiny difference on one sample of thirty is not significant
    one = worse.copy()
    one[0] = 4
    assert sc.paired_test(worse, one, n, n_perm=2000)["p_value"] == 1.0  # half the flips give |T*| = |T|


def test_paired_tests_use_common_samples_only():
    rows = []
    for pair, errs in (("baseline", {"x": 4, "y": 2, "z": 9}), ("gradspsa", {"x": 1, "y": 2})):
        for sid, e in errs.items():
            rows.append({"pair": pair, "fold": 0, "scenario": 1, "id": sid, "method": "m", "errors": e,
                         "ref_len": 10})
    t = sc.paired_tests(pd.DataFrame(rows), n_perm=100, n_boot=50)
    r = t.iloc[0]
    assert r.n == 2 and r.ser_baseline == pytest.approx(30.0) and r.ser_gradspsa == pytest.approx(15.0)
    assert r["diff"] == pytest.approx(-15.0)


def test_percent_for_level_interpolates_in_log_percent():
    trials = pd.DataFrame({"percent": [5.0, 10.0, 20.0], "val_ser": [80.0, 40.0, 20.0]})
    p, status = sc.percent_for_level(trials, 30.0)
    assert status == "interpolated" and p == pytest.approx(math.sqrt(10 * 20))  # halfway in log between 10, 20
    assert sc.percent_for_level(trials, 40.0) == (pytest.approx(10.0), "interpolated")
    p, status = sc.percent_for_level(trials, 10.0)
    assert p == 20.0 and status.startswith("not reached")
    p, status = sc.percent_for_level(trials, 90.0)
    assert p == 5.0 and status.startswith("below the smallest")
    # a noisy trial (SER up again at 20 %) is flattened: 30 % is still reached between 5 and 10
    noisy = pd.DataFrame({"percent": [5.0, 10.0, 20.0], "val_ser": [50.0, 25.0, 35.0]})
    assert sc.percent_for_level(noisy, 30.0)[0] == pytest.approx(math.exp(np.log(5) + 0.8 * np.log(2)))


def test_calibration_with_a_fake_trainer():
    cal = sc.calibrate_percents(percents=(5, 10, 20, 40), trainer=lambda p: 300.0 / p)  # SER 60, 30, 15, 7.5
    assert cal.levels.loc["H", "percent"] == pytest.approx(10.0)
    assert cal.levels.loc["M", "percent"] == pytest.approx(10 * 2 ** (10 / 15))
    assert cal.levels.loc["L", "percent"] == pytest.approx(20 * 2 ** (5 / 7.5))
    assert cal.trials.val_ser.tolist() == [60.0, 30.0, 15.0, 7.5]
    assert len(cal.percents) == 9 and cal.percents[0] == 10.0


def test_scenario_percents_keep_the_baselines_ratios():
    got = sc.scenario_percents_from_levels({"H": 5.0, "M": 8.0, "L": 21.0})
    # by hand: H 5 · (2.5, 2.2, 2.0) / 2.5; M 8 · (4.0, 3.7, 3.0) / 4.0; L 21 · (10.5, 9.0, 6.3) / 10.5
    assert got == pytest.approx((5.0, 4.4, 4.0, 8.0, 7.4, 6.0, 21.0, 18.0, 12.6))
    assert sc.scenario_percents_from_levels({"H": 90.0, "M": 99.0, "L": 100.0})[6] == 100.0


def test_run_names():
    assert sc.run_names(experiments.SCENARIO_PERCENTS) == experiments.SCENARIO_NAMES
    names = sc.run_names((5.0, *experiments.SCENARIO_PERCENTS[1:]))
    assert names[0] == "omr_s1_p5" and names[1] == "omr_s2"


def small_cv():
    rows = []
    for pair in ("baseline", "gradspsa"):
        for scheme in sc.SCHEMES:
            for s in sc.SCENARIOS:
                for m in ("lattice_combination", "greedy_omr"):
                    rows.append({"pair": pair, "scheme": scheme, "scenario": s, "method": m, "ser": 10.0 + s,
                                 "ci_low": 9.0, "ci_high": 12.0, "folds": "0", "n_folds": 1, "n_samples": 5})
    return pd.DataFrame(rows)


def test_table3_puts_the_thesis_beside_ours():
    t = sc.table3(small_cv())
    assert t.shape == (8, 18)
    row = t.loc[("gradspsa", "kfold", "Minimum Bayes Risk")]
    assert row[(3, "ours")] == 13.0 and row[(3, "thesis")] == 6.4
    assert t.loc[("baseline", "validation", "Minimum Bayes Risk")][(3, "thesis")] == 46.3
    assert math.isnan(t.loc[("baseline", "kfold", "OMR alone, greedy")][(1, "thesis")])
    assert t.index.get_level_values("method")[0] == "Minimum Bayes Risk"  # thesis rows first


def test_table4_and_table5_layout():
    sizes = pd.DataFrame({"pair": "gradspsa", "fold": 0, "scenario": list(sc.SCENARIOS),
                          "n_decoded": 8, "n_kept": [8, 3, 0] * 3})
    t4 = sc.test_sizes(sizes, "gradspsa")
    assert t4.loc["total", (2, "ours")] == 3 and t4.loc["total", (3, "thesis")] == 311
    assert t4.loc[0, (3, "ours")] == 0  # an empty scenario shows 0, not a missing cell
    cv = small_cv()
    t5 = sc.selected_folds_table(cv)
    assert t5.loc["baseline", 1] == "0" and t5.loc["thesis (GradSPSA)", 2] == "2"


def test_config_checks():
    with pytest.raises(ValueError, match="filter_decoder"):
        sc.ScenarioConfig(filter_decoder="lm")
    with pytest.raises(ValueError, match="criterion"):
        sc.ScenarioConfig(criterion="best")
    with pytest.raises(ValueError, match="baseline"):
        sc.ScenarioConfig(filter_by="baseline", pairs=(("gradspsa", "gradspsa"),))
    with pytest.raises(ValueError, match="methods"):
        sc.ScenarioConfig(methods=("mbr",))


def test_empty_scenarios_give_their_reason():
    sizes = pd.DataFrame({"pair": "baseline", "fold": 0, "scenario": [1, 2, 3], "threshold": [None, 30.0, 10.0],
                          "n_decoded": 4, "n_kept": [4, 1, 0]})
    a2s = pd.DataFrame({"pair": "baseline", "fold": 0, "id": list("abcd"), "a2s_ser": [25.0, 40.0, 55.0, 80.0]})
    t = sc.empty_scenarios(sizes, a2s)
    assert t.scenario.tolist() == [3]
    assert "≤ 10 %" in t.reason[0] and "25.0 %" in t.reason[0]


def test_scenario_ids_percent_override_and_train_sizes():
    from types import SimpleNamespace

    from mtlnb.camera_primus.corpus import primus
    from mtlnb import profiles

    ids = tuple(f"id{i:03d}" for i in range(200))
    study = SimpleNamespace(folds=[primus.Fold(0, ids, (), ())], profile=profiles.get_profile("smoke"))
    assert len(experiments.scenario_ids(study, 0, 1, percent=10.0)) == 20  # int(200 · 10 / 100)
    assert experiments.scenario_ids(study, 0, 1, 10.0) == experiments.scenario_ids(study, 0, 1, 10.0)
    # the baseline's 10.5 % of 200 = 21 ids; 2.5 % = 5 < one OMR batch (16): one batch, as experiments documents
    assert sc.scenario_train_sizes(study, 0, experiments.SCENARIO_PERCENTS)[6] == 21
    assert sc.scenario_train_sizes(study, 0, experiments.SCENARIO_PERCENTS)[0] == 16
    with pytest.raises(ValueError, match="percent"):
        experiments.scenario_ids(study, 0, 1, percent=0.0)


def test_omr_level_source_follows_the_profile():
    from mtlnb import profiles

    mini, smoke = profiles.get_profile("mini"), profiles.get_profile("smoke")
    assert sc.ScenarioConfig().omr_level_source(mini) == "snapshots"  # mini lists levels
    assert sc.ScenarioConfig().omr_level_source(smoke) == "subsets"
    assert sc.ScenarioConfig(omr_levels="subsets").omr_level_source(mini) == "subsets"
    with pytest.raises(ValueError, match="omr_snapshot_levels"):
        sc.ScenarioConfig(omr_levels="snapshots").omr_level_source(smoke)
    with pytest.raises(ValueError, match="omr_levels"):
        sc.ScenarioConfig(omr_levels="epochs")
    assert experiments.omr_level_name(35.0) == "omr_at35" and experiments.omr_level_name(27.5) == "omr_at27.5"
