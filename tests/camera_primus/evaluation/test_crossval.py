"""Cross-validation schemes, bootstrap intervals and the paired test on hand-built per-sample tables."""

import numpy as np
import pandas as pd
import pytest

from mtlnb.camera_primus.evaluation import crossval


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
    assert crossval.select_folds(v, criterion="pair").fold.tolist() == [0]
    assert crossval.select_folds(v, criterion="omr").fold.tolist() == [2]
    assert crossval.select_folds(v, criterion="a2s").fold.tolist() == [0]
    eligible = pd.DataFrame({"pair": "baseline", "scenario": 2, "fold": [0, 1]})
    assert crossval.select_folds(v, eligible, criterion="omr").fold.tolist() == [1]  # fold 2 has no test samples


def test_cross_validation_on_a_three_fold_toy():
    samples = toy_samples()
    cv = crossval.cross_validate(samples, toy_validation([40.0, 30.0, 10.0], [20.0, 40.0, 50.0]), criterion="omr",
                           n_boot=200)
    by = cv.set_index("scheme")
    # fold SERs by hand: fold 0 = 4/20 = 20 %, fold 1 = 4/40 = 10 %; fold 2 is empty
    assert by.loc["kfold", "ser"] == pytest.approx(15.0)  # mean over the two folds with samples
    assert by.loc["kfold", "folds"] == "0,1" and by.loc["kfold", "n_folds"] == 2
    # the baseline's scheme: best OMR validation among folds with samples is fold 1 (30 < 40)
    assert by.loc["validation", "folds"] == "1" and by.loc["validation", "ser"] == pytest.approx(10.0)
    for _, r in cv.iterrows():
        assert r.ci_low <= r.ser <= r.ci_high


def test_cross_validation_resamples_the_decoded_units_of_both_pairs():
    samples = toy_samples()
    validation = toy_validation([40.0, 30.0, 10.0], [20.0, 40.0, 50.0])
    units = pd.DataFrame({"fold": [0, 0, 0, 1, 1, 1], "id": ["0-0", "0-1", "0-x", "1-0", "1-1", "1-x"]})
    cv = crossval.cross_validate(samples, validation, n_boot=300, units=units)
    # the samples kept and the point estimates do not depend on the units, only the resampling does
    base = crossval.cross_validate(samples, validation, n_boot=300)
    assert cv.ser.tolist() == base.ser.tolist() and cv.n_samples.tolist() == base.n_samples.tolist()
    assert (cv.defined < 1).all()  # a resample of three units may draw only the unkept "x"
    with pytest.raises(ValueError, match="not among the units"):
        crossval.cross_validate(samples, validation, units=units[units.fold == 0])


def test_several_training_seeds_select_their_own_fold():
    v = pd.concat([toy_validation([40.0, 30.0, 10.0], [20.0, 40.0, 50.0]).assign(train_seed=1),
                   toy_validation([10.0, 30.0, 40.0], [20.0, 40.0, 50.0]).assign(train_seed=2)])
    chosen = crossval.select_folds(v, criterion="omr")
    assert chosen.set_index("train_seed").fold.to_dict() == {1: 2, 2: 0}
    samples = pd.concat([toy_samples().assign(train_seed=1), toy_samples().assign(train_seed=2, errors=0)])
    assert set(crossval.fold_ser(samples).train_seed) == {1, 2}
    cv = crossval.cross_validate(samples, v, criterion="omr", n_boot=100).set_index("scheme")
    # k-fold: seed 1 gives 15 %, seed 2 (no errors) 0 %: the mean over seeds
    assert cv.loc["kfold", "ser"] == pytest.approx(7.5) and cv.loc["kfold", "n_seeds"] == 2
    # the baseline's scheme: seed 1 picks fold 2 (empty: fold 1 next, 10 %), seed 2 picks fold 0 (0 %)
    assert cv.loc["validation", "ser"] == pytest.approx(5.0) and cv.loc["validation", "folds"] == "0,1"


def test_paired_test_obvious_cases():
    n = np.full(30, 10)
    worse, better = np.full(30, 5), np.zeros(30)
    r = crossval.paired_test(worse, better, n, n_perm=2000, n_boot=200, seed=0)
    assert r["diff"] == pytest.approx(-50.0) and r["ser_a"] == pytest.approx(50.0) and r["ser_b"] == 0.0
    assert r["p_value"] < 0.001  # only the all-negative flips are as extreme: 2 / 2**30
    assert r["ci_high"] < 0
    same = crossval.paired_test(worse, worse, n, n_perm=500, n_boot=100)
    assert same["diff"] == 0.0 and same["p_value"] == 1.0
    # a tiny difference on one sample of thirty is not significant
    one = worse.copy()
    one[0] = 4
    assert crossval.paired_test(worse, one, n, n_perm=2000)["p_value"] == 1.0  # half the flips give |T*| = |T|


def test_paired_tests_use_common_samples_only():
    rows = []
    for pair, errs in (("baseline", {"x": 4, "y": 2, "z": 9}), ("gradspsa", {"x": 1, "y": 2})):
        for sid, e in errs.items():
            rows.append({"pair": pair, "fold": 0, "scenario": 1, "id": sid, "method": "m", "errors": e,
                         "ref_len": 10})
    t = crossval.paired_tests(pd.DataFrame(rows), n_perm=100, n_boot=50)
    r = t.iloc[0]
    assert r.n == 2 and r.ser_baseline == pytest.approx(30.0) and r.ser_gradspsa == pytest.approx(15.0)
    assert r["diff"] == pytest.approx(-15.0)
