"""The runs the nine scenarios read: their sizes, names, OMR level sources, and what the ensure functions train
(training replaced by recorders; no network is trained here)."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from mtlnb import profiles
from mtlnb.camera_primus.networks import runs


def test_run_names():
    assert runs.scenario_run_names(runs.SCENARIO_PERCENTS) == runs.SCENARIO_NAMES
    names = runs.scenario_run_names((5.0, *runs.SCENARIO_PERCENTS[1:]))
    assert names[0] == "omr_s1_p5" and names[1] == "omr_s2"


def test_scenario_ids_percent_override_and_train_sizes():
    from types import SimpleNamespace

    from mtlnb.camera_primus.corpus import primus
    from mtlnb import profiles

    ids = tuple(f"id{i:03d}" for i in range(200))
    study = SimpleNamespace(folds=[primus.Fold(0, ids, (), ())], profile=profiles.get_profile("smoke"))
    assert len(runs.scenario_ids(study, 0, 1, percent=10.0)) == 20  # int(200 · 10 / 100)
    assert runs.scenario_ids(study, 0, 1, 10.0) == runs.scenario_ids(study, 0, 1, 10.0)
    # the baseline's 10.5 % of 200 = 21 ids; 2.5 % = 5 < one OMR batch (16): one batch, as runs documents
    assert runs.scenario_train_sizes(study, 0, runs.SCENARIO_PERCENTS)[6] == 21
    assert runs.scenario_train_sizes(study, 0, runs.SCENARIO_PERCENTS)[0] == 16
    with pytest.raises(ValueError, match="percent"):
        runs.scenario_ids(study, 0, 1, percent=0.0)


def test_scenario_percents_of_a_profile():
    smoke = profiles.get_profile("smoke")
    assert runs.scenario_percents(smoke) == runs.SCENARIO_PERCENTS
    calibrated = replace(smoke, train=replace(smoke.train, scenario_percents=(5.0,) * 9))
    assert runs.scenario_percents(calibrated) == (5.0,) * 9
    with pytest.raises(ValueError, match="nine values"):
        runs.scenario_percents(replace(smoke, train=replace(smoke.train, scenario_percents=(5.0,) * 8)))


def test_scenario_omr_source_and_names():
    smoke, mini = profiles.get_profile("smoke"), profiles.get_profile("mini")
    assert runs.scenario_omr_source(smoke) == "subsets" and runs.scenario_omr_source(mini) == "snapshots"
    assert runs.scenario_omr_source(mini, "subsets") == "subsets"
    with pytest.raises(ValueError, match="omr_snapshot_levels"):
        runs.scenario_omr_source(smoke, "snapshots")
    with pytest.raises(ValueError, match="omr_levels"):
        runs.scenario_omr_source(smoke, "epochs")
    assert runs.scenario_omr_names(smoke) == runs.SCENARIO_NAMES
    assert runs.scenario_omr_names(smoke, percents=(5.0, *runs.SCENARIO_PERCENTS[1:]))[:2] == ("omr_s1_p5", "omr_s2")
    with pytest.raises(ValueError, match="nine percents"):
        runs.scenario_omr_names(smoke, percents=(5.0,))
    # mini's levels 50 / 35 / 25 %: scenarios 1-3 share the high level's snapshot, 7-9 the low one's
    assert runs.scenario_omr_names(mini) == ("omr_at50",) * 3 + ("omr_at35",) * 3 + ("omr_at25",) * 3
    assert runs.calibration_run_name(5) == "omr_cal_p5" and runs.calibration_run_name(2.5) == "omr_cal_p2.5"


def recording_study(profile):
    built = []
    return SimpleNamespace(profile=profiles.get_profile(profile), build_corpus=lambda progress: built.append(1),
                           built=built)


def test_ensure_scenario_runs_asks_for_the_scenarios_runs(monkeypatch):
    asked = []

    def record(study, wanted, progress=True):
        wanted = list(wanted)
        asked.append((wanted[0][0], [name for _, name in wanted]))
        assert len({fold for fold, _ in wanted}) == 1
        return {key: None for key in wanted}

    monkeypatch.setattr(runs, "ensure_runs_concurrently", record)
    study = recording_study("mini")
    # snapshots: one run per level, by increasing target; then the A2S runs in the order given
    got = runs.ensure_scenario_runs(study, 2, progress=False)
    assert asked[-1] == (2, ["omr_at25", "omr_at35", "omr_at50", "a2s", "gradspsa"]) and study.built
    assert got == ("omr_at25", "omr_at35", "omr_at50", "a2s", "gradspsa")
    runs.ensure_scenario_runs(study, 0, scenarios=[1, 2], a2s_names=("a2s",), progress=False)
    assert asked[-1] == (0, ["omr_at50", "a2s"])
    # subsets: the scenarios' OMRs in scenario order, at the given percents
    runs.ensure_scenario_runs(study, 0, "subsets", (5.0, *runs.SCENARIO_PERCENTS[1:]), scenarios=[3, 1],
                              progress=False)
    assert asked[-1] == (0, ["omr_s3", "omr_s1_p5", "a2s", "gradspsa"])
    with pytest.raises(ValueError, match="scenarios"):
        runs.ensure_scenario_runs(study, 0, scenarios=[0], progress=False)


def test_ensure_calibration_runs_trains_one_omr_per_percent(monkeypatch):
    from mtlnb.camera_primus.corpus import primus

    trained = []
    monkeypatch.setattr(runs, "train_omr", lambda study, fold, ids, name, epochs, progress:
                        trained.append((fold, len(ids), name, epochs)) or name)
    study = recording_study("smoke")
    study.folds = [primus.Fold(0, tuple(f"id{i:03d}" for i in range(400)), (), ())]
    got = runs.ensure_calibration_runs(study, 0, (5, 12.5), progress=False)
    epochs = study.profile.train.scenario_omr_epochs
    assert trained == [(0, 20, "omr_cal_p5", epochs), (0, 50, "omr_cal_p12.5", epochs)]
    assert list(got) == ["omr_cal_p5", "omr_cal_p12.5"]
    # scenario 1's seed: the same draw as the scenario OMR at that percent
    assert len(runs.scenario_ids(study, 0, runs.CALIBRATION_SCENARIO, 5.0)) == 20
    with pytest.raises(ValueError, match="percents"):
        runs.ensure_calibration_runs(study, 0, (0.0,), progress=False)
