"""The paired bootstrap of the scenario SERs on hand-built per-sample tables: intervals, pairing, folds, seeds."""

import numpy as np
import pandas as pd
import pytest

from mtlnb.camera_primus.evaluation import bootstrap


def table(rows):
    return pd.DataFrame(rows, columns=["pair", "fold", "scenario", "id", "method", "errors", "ref_len"])


def random_samples(n, seed=0, rate=0.2, fold=0, pair="baseline", scenario=1, method="m"):
    """``n`` samples of one cell with binomial errors at ``rate`` on references of 5-40 tokens."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(5, 40, size=n)
    return pd.DataFrame({"pair": pair, "fold": fold, "scenario": scenario, "id": [f"{fold}-{i}" for i in range(n)],
                         "method": method, "errors": rng.binomial(ref, rate), "ref_len": ref})


def test_resample_counts_draw_with_replacement():
    counts = bootstrap.resample_counts(7, 500, np.random.default_rng(0))
    assert counts.shape == (500, 7) and (counts.sum(axis=1) == 7).all() and (counts >= 0).all()
    assert (counts == 0).any() and (counts > 1).any()  # with replacement: some left out, some drawn twice
    assert (counts == bootstrap.resample_counts(7, 500, np.random.default_rng(0))).all()
    assert counts.mean() == pytest.approx(1.0)


def test_point_is_the_corpus_ser_and_the_interval_covers_it():
    s = random_samples(200)
    d = bootstrap.draw(s, n_boot=500, seed=1)
    t = d.table()
    r = t[t.scheme == "kfold"].iloc[0]
    # Σ errors / Σ ref_len, not the mean of the per-sample SERs
    assert r.ser == pytest.approx(100 * s.errors.sum() / s.ref_len.sum())
    assert r.ser != pytest.approx(100 * (s.errors / s.ref_len).mean())
    assert r.ci_low < r.ser < r.ci_high and r.n_samples == 200 and r.defined == 1.0
    # each resample is the corpus SER of a resample: between the smallest and largest per-sample SER
    per_sample = 100 * s.errors / s.ref_len
    assert per_sample.min() <= np.nanmin(d.boot) and np.nanmax(d.boot) <= per_sample.max()


def test_deterministic_under_a_seed():
    s = random_samples(80)
    a = bootstrap.draw(s, n_boot=300, seed=5).table()
    assert a.equals(bootstrap.draw(s, n_boot=300, seed=5).table())
    b = bootstrap.draw(s, n_boot=300, seed=6).table()
    assert (a.ci_low != b.ci_low).any()
    assert (a.ser == b.ser).all()  # the point estimate does not depend on the seed


def test_interval_widens_for_fewer_samples():
    widths = []
    for n in (400, 100, 25):
        t = bootstrap.draw(random_samples(n, seed=n), n_boot=1000, seed=0).table()
        widths.append(float((t.ci_high - t.ci_low).iloc[0]))
    assert widths[0] < widths[1] < widths[2]
    # about 1/sqrt(n): a quarter of the samples, about twice the width
    assert 1.5 < widths[1] / widths[0] < 2.7 and 1.5 < widths[2] / widths[1] < 2.7


def test_no_spread_where_every_sample_has_the_same_rate():
    s = table([("baseline", 0, 1, i, "m", k, 10 * k) for i, k in zip("abc", (1, 2, 3))])
    t = bootstrap.draw(s, n_boot=50).table()
    assert (t.ser == 10.0).all() and (t.ci_low == 10.0).all() and (t.ci_high == 10.0).all()


def test_pairs_are_resampled_together():
    """Both pairs decode the same samples: a constant per-sample gap stays constant in every resample, and a
    resample's two SERs come from the same drawn samples."""
    base = random_samples(60, seed=2, rate=0.3, pair="baseline")
    other = base.assign(pair="gradspsa", errors=base.errors // 2)
    d = bootstrap.draw(pd.concat([base, other]), n_boot=400, seed=0)
    pb, bb = d.select("baseline", "kfold", "m", [1])
    pg, bg = d.select("gradspsa", "kfold", "m", [1])
    # the ratio of two corpus SERs over the same resampled samples: Σ w e/2 / Σ w e, close to 1/2 in every
    # resample (only the rounding of odd counts differs) -- unpaired draws would scatter it widely
    ratio = bg[0] / bb[0]
    assert ratio.std() < 0.02
    unpaired = bootstrap.draw(other.assign(fold=1, id=other.id + "x"), n_boot=400, seed=0).boot[0]
    assert (unpaired / bb[0]).std() > 5 * ratio.std()
    assert pg[0] / pb[0] == pytest.approx(ratio.mean(), abs=0.02)


def test_each_pair_keeps_its_own_samples_of_the_shared_draw():
    """filter_by="own": the pairs keep different samples; a resample keeps as many of a pair's samples as it drew,
    so a cell is undefined (NaN) in the resamples that drew none of its samples."""
    units = pd.DataFrame({"fold": 0, "id": [f"u{i}" for i in range(100)]})
    rows = [("baseline", 0, 3, "u0", "m", 1, 10)]  # one kept sample of a hundred decoded
    rows += [("gradspsa", 0, 3, f"u{i}", "m", 1, 10) for i in range(50)]
    d = bootstrap.draw(table(rows), units=units, n_boot=2000, seed=0)
    t = d.table().set_index(["pair", "scheme"])
    # P(sample u0 drawn at least once) = 1 - 0.99^100 = 0.634
    assert t.loc[("baseline", "kfold"), "defined"] == pytest.approx(1 - 0.99 ** 100, abs=0.04)
    assert t.loc[("gradspsa", "kfold"), "defined"] == 1.0
    assert t.loc[("baseline", "kfold"), "n_samples"] == 1 and t.loc[("gradspsa", "kfold"), "n_samples"] == 50
    with pytest.raises(ValueError, match="not among the units"):
        bootstrap.draw(table(rows), units=units.iloc[1:], n_boot=10)


def test_kfold_is_the_mean_of_fold_sers_and_validation_the_chosen_fold():
    # fold 0 at 20 % and fold 1 at 10 %, every sample alike: no resampling spread
    rows = [("baseline", 0, 2, f"a{i}", "m", 2, 10) for i in range(4)]
    rows += [("baseline", 1, 2, f"b{i}", "m", 1, 10) for i in range(6)]
    chosen = pd.DataFrame({"pair": ["baseline"], "scenario": [2], "fold": [1]})
    t = bootstrap.draw(table(rows), chosen=chosen, n_boot=50).table().set_index("scheme")
    assert t.loc["kfold", "ser"] == pytest.approx(15.0) and t.loc["kfold", "ci_high"] == pytest.approx(15.0)
    assert t.loc["kfold", "folds"] == "0,1" and t.loc["kfold", "n_samples"] == 10
    assert t.loc["validation", "ser"] == pytest.approx(10.0) and t.loc["validation", "folds"] == "1"
    assert t.loc["validation", "n_samples"] == 6
    # without a selection only k-fold is drawn
    assert set(bootstrap.draw(table(rows), n_boot=10).cells.scheme) == {"kfold"}


def test_training_seeds_are_resampled_too():
    s10 = table([("baseline", 0, 1, f"s{i}", "m", 1, 10) for i in range(30)])  # 10 % with one seed
    s30 = s10.assign(errors=3)  # 30 % with another
    one = bootstrap.draw(s10, n_boot=400, seed=0).table()
    same = bootstrap.draw(bootstrap.stack_seeds({1: s10, 2: s10}), n_boot=400, seed=0).table()
    assert same.ser.iloc[0] == pytest.approx(10.0) and same.n_seeds.iloc[0] == 2
    assert (same.ci_low == one.ci_low).all()  # two identical seeds add no spread
    both = bootstrap.draw(bootstrap.stack_seeds({1: s10, 2: s30}), n_boot=2000, seed=0)
    t = both.table()
    assert t.ser.iloc[0] == pytest.approx(20.0)  # the mean over seeds
    # a resample draws seeds {1,1}, {1,2} or {2,2}: 10, 20 or 30 %, with probabilities 1/4, 1/2, 1/4
    values, counts = np.unique(both.boot[0].round(6), return_counts=True)
    assert values.tolist() == [10.0, 20.0, 30.0]
    assert counts / counts.sum() == pytest.approx([0.25, 0.5, 0.25], abs=0.04)
    assert (t.ci_low.iloc[0], t.ci_high.iloc[0]) == (10.0, 30.0)


def test_percentile_interval_ignores_undefined_resamples():
    low, high = bootstrap.percentile_interval(np.array([[np.nan, 1.0, 2.0, 3.0], [np.nan] * 4]), 0.5)
    assert low[0] == pytest.approx(1.5) and high[0] == pytest.approx(2.5)
    assert np.isnan(low[1]) and np.isnan(high[1])
    with pytest.raises(ValueError, match="level"):
        bootstrap.percentile_interval(np.zeros((1, 3)), 1.5)


def test_bad_inputs():
    s = random_samples(5)
    with pytest.raises(ValueError, match="lack columns"):
        bootstrap.draw(s.drop(columns="ref_len"))
    with pytest.raises(ValueError, match="several rows"):
        bootstrap.draw(pd.concat([s, s]))
    with pytest.raises(ValueError, match="length 0"):
        bootstrap.draw(s.assign(ref_len=0))
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap.draw(s, n_boot=0)
