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


def test_bootstrap_interval_contains_the_estimate_and_is_deterministic():
    rng = np.random.default_rng(1)
    n = rng.integers(5, 30, size=60)
    e = rng.binomial(n, 0.2)
    point = 100 * e.sum() / n.sum()
    low, high = crossval.bootstrap_ser(e, n, n_boot=500, seed=3)
    assert low < point < high
    assert (low, high) == crossval.bootstrap_ser(e, n, n_boot=500, seed=3)
    assert (low, high) != crossval.bootstrap_ser(e, n, n_boot=500, seed=4)
    # every sample at the same rate: no spread
    assert crossval.bootstrap_ser([2, 4, 6], [10, 20, 30], n_boot=50) == pytest.approx((20.0, 20.0))
    # grouped: the statistic is the mean of group SERs (20 % and 10 % -> 15 %) whatever the resample
    assert crossval.bootstrap_ser([2, 2, 1, 1], [10, 10, 10, 10], groups=[0, 0, 1, 1], n_boot=50) == \
        pytest.approx((15.0, 15.0))
    with pytest.raises(ValueError, match="equal-length"):
        crossval.bootstrap_ser([1, 2], [3])


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
