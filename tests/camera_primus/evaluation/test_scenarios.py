"""Scenarios: levels, the A2S filter, scenario rows, OMR levels and the subset calibration, on hand-built tables
(no training)."""

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from mtlnb import profiles
from mtlnb.camera_primus.evaluation import scenarios
from mtlnb.camera_primus.networks import ctc_tasks, runs


def per_sample(rows):
    """A late-fusion per-sample table from (id, method, alpha, errors, ref_len) tuples."""
    return pd.DataFrame(rows, columns=["id", "method", "alpha", "errors", "ref_len"]).assign(output="")


def test_levels_and_labels():
    assert scenarios.levels(1) == ("H", "H") and scenarios.levels(3) == ("H", "L") and scenarios.levels(8) == ("L", "M")
    assert scenarios.label(6) == "6 (M,L)"
    with pytest.raises(ValueError, match="scenario"):
        scenarios.levels(10)
    cfg = scenarios.ScenarioConfig()
    assert [cfg.threshold(s) for s in (1, 2, 3, 4, 8, 9)] == [None, 30.0, 10.0, None, 30.0, 10.0]


def test_filter_keeps_samples_at_or_below_the_threshold():
    ps = per_sample([("a", "greedy_a2s", math.nan, 3, 10),   # 30 %: kept at ≤ 30 (inclusive, as the baseline)
                     ("b", "greedy_a2s", math.nan, 4, 10),   # 40 %
                     ("c", "greedy_a2s", math.nan, 1, 10),   # 10 %: kept at ≤ 10
                     ("d", "greedy_a2s", math.nan, 0, 7),    # 0 %
                     ("a", "best_path_a2s", math.nan, 9, 10), ("b", "best_path_a2s", math.nan, 0, 10),
                     ("c", "best_path_a2s", math.nan, 9, 10), ("d", "best_path_a2s", math.nan, 9, 7)])
    ser = scenarios.a2s_sample_ser(ps)
    assert ser.to_dict() == pytest.approx({"a": 30.0, "b": 40.0, "c": 10.0, "d": 0.0})
    assert scenarios.filter_ids(ser, None) == ["a", "b", "c", "d"]
    assert scenarios.filter_ids(ser, 30.0) == ["a", "c", "d"]
    assert scenarios.filter_ids(ser, 10.0) == ["c", "d"]
    assert scenarios.filter_ids(scenarios.a2s_sample_ser(ps, "best_path"), 30.0) == ["b"]
    with pytest.raises(ValueError, match="threshold"):
        scenarios.filter_ids(ser, -1)


def test_scenario_rows_take_alpha_methods_at_alpha():
    ps = per_sample([("a", "lattice_combination", 0.0, 5, 10), ("a", "lattice_combination", 0.5, 2, 10),
                     ("a", "smith_waterman", math.nan, 3, 10), ("b", "lattice_combination", 0.5, 1, 8),
                     ("b", "smith_waterman", math.nan, 0, 8)])
    rows = scenarios.scenario_rows(ps, ["a"], 0.5, ["lattice_combination", "smith_waterman"])
    assert rows.set_index("method").errors.to_dict() == {"lattice_combination": 2, "smith_waterman": 3}
    with pytest.raises(ValueError, match="not swept"):
        scenarios.scenario_rows(ps, ["a"], 0.3, ["lattice_combination"])


def test_percent_for_level_interpolates_in_log_percent():
    trials = pd.DataFrame({"percent": [5.0, 10.0, 20.0], "val_ser": [80.0, 40.0, 20.0]})
    p, status = scenarios.percent_for_level(trials, 30.0)
    assert status == "interpolated" and p == pytest.approx(math.sqrt(10 * 20))  # halfway in log between 10, 20
    assert scenarios.percent_for_level(trials, 40.0) == (pytest.approx(10.0), "interpolated")
    p, status = scenarios.percent_for_level(trials, 10.0)
    assert p == 20.0 and status.startswith("not reached")
    p, status = scenarios.percent_for_level(trials, 90.0)
    assert p == 5.0 and status.startswith("below the smallest")
    # a noisy trial (SER up again at 20 %) is flattened: 30 % is still reached between 5 and 10
    noisy = pd.DataFrame({"percent": [5.0, 10.0, 20.0], "val_ser": [50.0, 25.0, 35.0]})
    assert scenarios.percent_for_level(noisy, 30.0)[0] == pytest.approx(math.exp(np.log(5) + 0.8 * np.log(2)))


def test_calibration_with_a_fake_trainer():
    cal = scenarios.calibrate_percents(percents=(5, 10, 20, 40), trainer=lambda p: 300.0 / p)  # SER 60, 30, 15, 7.5
    assert cal.levels.loc["H", "percent"] == pytest.approx(10.0)
    assert cal.levels.loc["M", "percent"] == pytest.approx(10 * 2 ** (10 / 15))
    assert cal.levels.loc["L", "percent"] == pytest.approx(20 * 2 ** (5 / 7.5))
    assert cal.trials.val_ser.tolist() == [60.0, 30.0, 15.0, 7.5]
    assert len(cal.percents) == 9 and cal.percents[0] == 10.0


def test_scenario_percents_keep_the_baselines_ratios():
    got = scenarios.scenario_percents_from_levels({"H": 5.0, "M": 8.0, "L": 21.0})
    # by hand: H 5 · (2.5, 2.2, 2.0) / 2.5; M 8 · (4.0, 3.7, 3.0) / 4.0; L 21 · (10.5, 9.0, 6.3) / 10.5
    assert got == pytest.approx((5.0, 4.4, 4.0, 8.0, 7.4, 6.0, 21.0, 18.0, 12.6))
    assert scenarios.scenario_percents_from_levels({"H": 90.0, "M": 99.0, "L": 100.0})[6] == 100.0


def test_config_checks():
    with pytest.raises(ValueError, match="filter_decoder"):
        scenarios.ScenarioConfig(filter_decoder="lm")
    with pytest.raises(ValueError, match="criterion"):
        scenarios.ScenarioConfig(criterion="best")
    with pytest.raises(ValueError, match="baseline"):
        scenarios.ScenarioConfig(filter_by="baseline", pairs=(("gradspsa", "gradspsa"),))
    with pytest.raises(ValueError, match="methods"):
        scenarios.ScenarioConfig(methods=("mbr",))


def test_omr_level_source_follows_the_profile():
    from mtlnb import profiles

    mini, smoke = profiles.get_profile("mini"), profiles.get_profile("smoke")
    assert scenarios.ScenarioConfig().omr_level_source(mini) == "snapshots"  # mini lists levels
    assert scenarios.ScenarioConfig().omr_level_source(smoke) == "subsets"
    assert scenarios.ScenarioConfig(omr_levels="subsets").omr_level_source(mini) == "subsets"
    with pytest.raises(ValueError, match="omr_snapshot_levels"):
        scenarios.ScenarioConfig(omr_levels="snapshots").omr_level_source(smoke)
    with pytest.raises(ValueError, match="omr_levels"):
        scenarios.ScenarioConfig(omr_levels="epochs")
    assert runs.omr_level_name(35.0) == "omr_at35" and runs.omr_level_name(27.5) == "omr_at27.5"


def test_omr_levels_follow_the_profile():
    smoke, mini = profiles.get_profile("smoke"), profiles.get_profile("mini")
    targets, percents, names = scenarios._omr_levels(smoke, scenarios.ScenarioConfig())
    assert targets == scenarios.LEVEL_TARGETS and percents == runs.SCENARIO_PERCENTS
    assert names == runs.SCENARIO_NAMES
    targets, percents, names = scenarios._omr_levels(smoke, scenarios.ScenarioConfig(), (5.0,) * 9)
    assert percents == (5.0,) * 9 and names[0] == "omr_s1_p5"
    with pytest.raises(ValueError, match="nine percents"):
        scenarios._omr_levels(smoke, scenarios.ScenarioConfig(), (5.0,) * 8)
    targets, percents, names = scenarios._omr_levels(mini, scenarios.ScenarioConfig(), (5.0,) * 9)
    assert targets == {"H": 50.0, "M": 35.0, "L": 25.0} and percents is None  # snapshots ignore percents
    assert names == ("omr_at50",) * 3 + ("omr_at35",) * 3 + ("omr_at25",) * 3


def fake_study(root, finished, best_val_ser=None, profile="smoke"):
    """A study whose fold 0 holds the runs ``finished`` (posteriors and a run.json with their validation SER)."""
    def model_dir(fold, name):
        d = root / "models" / f"fold{fold}" / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    study = SimpleNamespace(root=root, profile=profiles.get_profile(profile), model_dir=model_dir)
    for name in finished:
        d = model_dir(0, name)
        for split in runs.SPLITS:
            ctc_tasks.posteriors_path(d, split).write_bytes(b"")
        (d / runs.RUN_INFO).write_text(f'{{"best_val_ser": {(best_val_ser or {}).get(name, 50.0)}}}')
    return study


def test_evaluate_names_the_missing_runs_and_trains_none(tmp_path):
    study = fake_study(tmp_path, [*runs.SCENARIO_NAMES[1:], "a2s"])
    with pytest.raises(ValueError) as err:
        scenarios.evaluate(study, [0], progress=False)
    message = str(err.value)
    assert "'omr_s1' of fold 0" in message and "'gradspsa' of fold 0" in message
    assert "omr_s2" not in message and "'a2s'" not in message.split("missing:")[1].split(".  Make")[0]
    assert "ensure_scenario_runs(study, fold, omr_levels='auto'" in message and "notebook 05" in message
    assert not (tmp_path / "models" / "fold0" / "omr_s1" / "log.csv").exists()


def test_calibration_reads_the_calibration_runs(tmp_path):
    percents = (5.0, 10.0, 20.0, 40.0)
    names = [runs.calibration_run_name(p) for p in percents]
    study = fake_study(tmp_path, names, dict(zip(names, (60.0, 30.0, 15.0, 7.5))))
    cal = scenarios.calibrate_percents(study, 0, percents)
    assert cal.trials.val_ser.tolist() == [60.0, 30.0, 15.0, 7.5]
    assert cal.levels.loc["H", "percent"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match=r"'omr_cal_p50' of fold 0.*ensure_calibration_runs"):
        scenarios.calibrate_percents(study, 0, (*percents, 50.0))


def test_results_resample_the_decoded_test_samples_of_both_pairs():
    """Scenario 2 keeps one of four decoded samples for the baseline: the bootstrap resamples all four (the units),
    so some resamples keep none of it; the point estimates are the kept samples' corpus SER."""
    decoded = ["a", "b", "c", "d"]
    filt = pd.DataFrame({"pair": ["baseline"] * 4 + ["gradspsa"] * 4, "fold": 0, "id": decoded * 2,
                         "a2s_ser": [10.0, 40.0, 50.0, 60.0, 10.0, 20.0, 25.0, 60.0]})
    rows = [("baseline", 0, 1, i, "lattice_combination", 2, 10) for i in decoded]
    rows += [("gradspsa", 0, 1, i, "lattice_combination", 1, 10) for i in decoded]
    rows += [("baseline", 0, 2, "a", "lattice_combination", 2, 10)]
    rows += [("gradspsa", 0, 2, i, "lattice_combination", 1, 10) for i in "abc"]
    samples = pd.DataFrame(rows, columns=["pair", "fold", "scenario", "id", "method", "errors", "ref_len"])
    validation = pd.DataFrame({"pair": ["baseline", "baseline", "gradspsa", "gradspsa"], "fold": 0,
                               "scenario": [1, 2, 1, 2], "omr_val_ser": 30.0, "a2s_val_ser": 40.0})
    res = scenarios.ScenarioResults(samples=samples, sizes=pd.DataFrame(), validation=validation, a2s_filter=filt,
                                    config=scenarios.ScenarioConfig(), percents=None, names=("omr",) * 9)
    assert res.units.id.tolist() == decoded
    cv = res.cross_validate(n_boot=400, seed=0).set_index(["pair", "scheme", "scenario"])
    assert cv.loc[("baseline", "kfold", 2), "ser"] == pytest.approx(20.0)
    assert cv.loc[("baseline", "kfold", 2), "defined"] == pytest.approx(1 - 0.75 ** 4, abs=0.06)
    assert cv.loc[("gradspsa", "kfold", 1), "defined"] == 1.0
    assert res.draws(n_boot=400, seed=0).table().equals(res.cross_validate(n_boot=400, seed=0))
