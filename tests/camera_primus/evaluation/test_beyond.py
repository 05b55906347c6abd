"""Notebook 09's package functions: variant names, the per-profile grid, the paired statistics and verdicts."""

import math

import numpy as np
import pandas as pd
import pytest

from mtlnb import profiles
from mtlnb.camera_primus.evaluation import beyond, beyond_grid
from mtlnb.camera_primus.networks.variants import Variant
from mtlnb.camera_primus.networks import gradspsa_a2s

MINI, PAPER, SMOKE = (profiles.get_profile(n).train for n in ("mini", "paper", "smoke"))


# -- variants and grids ---------------------------------------------------------------------------------------------

def test_the_main_runs_are_notebook_03s():
    assert Variant("gradspsa").name(MINI) == "gradspsa"
    assert Variant("a2s", batch=MINI.a2s_batch, epochs=MINI.a2s_epochs).name(MINI) == "a2s"
    # paper trains GradSPSA on the random 60 % subset: that subset is its main run
    assert Variant("gradspsa", subset="random", fraction=0.6).name(PAPER) == "gradspsa"
    assert Variant("gradspsa", subset="random", fraction=0.6).name(MINI) == "bx_gradspsa_random60"


def test_equal_trainings_get_one_name():
    assert Variant("gradspsa", gamma=0.0).name(MINI) == Variant("gradspsa", ablate="sharing_loss").name(MINI)
    assert Variant("gradspsa", gamma=1e-7, rule="resize").name(MINI) == "gradspsa"
    assert Variant("gradspsa", ablate="sharing_loss", rule="moments").name(MINI) == "bx_gradspsa_no-sharing_loss"
    assert Variant("gradspsa", seed=43, epochs=3).name(MINI) == "bx_gradspsa_seed43_ep3"
    assert Variant("gradspsa", subset="full").name(PAPER) == "bx_gradspsa_full"
    assert Variant("a2s", subset="stratified").name(MINI) == "bx_a2s_stratified60"
    assert Variant("gradspsa", gamma=1e-3, batch=8).label() == "gradspsa (γ = 0.001, batch 8)"


def test_variants_refuse_what_they_cannot_train():
    with pytest.raises(ValueError, match="GradSPSA only"):
        Variant("a2s", ablate="dense_connections")
    with pytest.raises(ValueError, match="ablate"):
        Variant("gradspsa", ablate="attention")
    with pytest.raises(ValueError, match="subset"):
        Variant("a2s", subset="half")
    with pytest.raises(ValueError, match="gamma"):
        Variant("gradspsa", gamma=-1.0)


def test_smoke_grid_reaches_every_experiment_and_paper_is_the_full_grid():
    smoke = beyond_grid.grid_for(profiles.get_profile("smoke"))
    names = {v.name(SMOKE) for v in smoke.variants()}
    assert {"a2s", "gradspsa"} <= names  # the references are notebook 03's runs
    assert {f"bx_gradspsa_no-{a}" for a in gradspsa_a2s.ADDITIONS} <= names
    assert {"bx_gradspsa_random60", "bx_gradspsa_stratified60", "bx_a2s_random60", "bx_gradspsa_batch8"} <= names
    assert smoke.omitted(SMOKE)  # smoke says what it leaves out
    paper = beyond_grid.grid_for(profiles.get_profile("paper"))
    assert paper.omitted(PAPER) == []
    assert len(paper.seeds) == len(paper.a2s_seeds) == 3
    mini = beyond_grid.grid_for(profiles.get_profile("mini"))
    said = " ".join(mini.omitted(MINI))
    assert "seeds: GradSPSA [42, 43], baseline [42, 43]" in said and "batch-size experiment not run" in said
    assert "epochs" not in said and "fusion on the first" not in said  # notebook 03's epochs, the whole fold
    assert mini.concurrent_trainings == 2


# -- statistics -----------------------------------------------------------------------------------------------------

def _samples(rng, systems, n=60, method=beyond.HEADLINE):
    rows = []
    for system, p in systems.items():
        for i in range(n):
            ref_len = 10
            rows.append({"system": system, "id": f"x{i}", "method": method, "errors": float(rng.binomial(ref_len, p)),
                         "closeness": float(rng.binomial(ref_len, p)) * 0.5, "ref_len": ref_len})
    return pd.DataFrame(rows)


def test_intervals_contain_the_point_and_pair_the_systems():
    rng = np.random.default_rng(0)
    s = _samples(rng, {"a": 0.3, "b": 0.1})
    t = beyond.intervals(s, n_boot=400, seed=1).set_index("system")
    for sys_ in "ab":
        assert t.loc[sys_, "ci_low"] <= t.loc[sys_, "rate"] <= t.loc[sys_, "ci_high"]
        assert t.loc[sys_, "rate"] == pytest.approx(beyond.rate(s, sys_, beyond.HEADLINE))
    close = beyond.intervals(s, "closeness", n_boot=100).set_index("system")
    assert close.loc["a", "rate"] == pytest.approx(beyond.rate(s, "a", beyond.HEADLINE, "closeness"))
    with pytest.raises(ValueError, match="several rows"):
        beyond.intervals(pd.concat([s, s]))


def test_compare_finds_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(2)
    s = _samples(rng, {"a": 0.3, "b": 0.1, "c": 0.3})
    real = beyond.compare(s, "a", "b", beyond.HEADLINE, n_perm=2000, n_boot=200)
    assert real["diff"] < 0 and real["p_value"] < 0.01 and real["ci_high"] < 0
    assert real["diff"] == pytest.approx(real["rate_b"] - real["rate_a"])
    same = beyond.compare(s, "a", "a", beyond.HEADLINE, n_perm=500, n_boot=100)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    only = beyond.compare(s, "a", "b", beyond.HEADLINE, ids=["x1", "x2"], n_perm=10, n_boot=10)
    assert only["n"] == 2
    with pytest.raises(ValueError, match="share no sample"):
        beyond.compare(s, "a", "zzz", beyond.HEADLINE)


@pytest.mark.parametrize("diff, p, spread, shows, words", [
    (3.0, 0.001, 1.0, True, "exceeds the seed spread"),
    (0.5, 0.001, 1.0, False, "within the seed spread"),
    (3.0, 0.5, 1.0, False, "not significant"),
    (0.5, 0.5, 1.0, False, "no difference shown"),
    (3.0, 0.001, math.nan, False, "seed spread unknown"),
])
def test_verdicts(diff, p, spread, shows, words):
    text = beyond.verdict(diff, p, spread)
    assert words in text and beyond.shows_difference(text) is shows


def test_seed_table_ranges_and_improvement():
    rows = []
    for system, err in {"a1": 4, "a2": 6, "g1": 2, "g2": 3}.items():
        for m in (beyond.UNIMODAL, beyond.HEADLINE):
            rows.append({"system": system, "id": "x", "method": m, "errors": float(err), "ref_len": 10})
    s = pd.DataFrame(rows)
    t = beyond.seed_table(s, ["a1", "a2"], ["g1", "g2"])
    spread = beyond.spreads(t)
    assert spread[f"baseline {beyond.HEADLINE}"] == pytest.approx(20.0)
    assert spread[f"gradspsa {beyond.HEADLINE}"] == pytest.approx(10.0)
    assert list(t[f"improvement {beyond.HEADLINE} %"].iloc[:2]) == pytest.approx([50.0, 50.0])
    assert spread[f"improvement {beyond.HEADLINE} %"] == pytest.approx(0.0)
    assert beyond.pair_difference_range(s, ["a1", "a2"], ["g1", "g2"], beyond.HEADLINE) == pytest.approx(10.0)
    one = beyond.spreads(beyond.seed_table(s, ["a1"], ["g1", "g2"]))
    assert math.isnan(one[f"baseline {beyond.HEADLINE}"])  # one baseline seed: no spread


def test_subset_table_reads_both_test_sets():
    rng = np.random.default_rng(4)
    s = _samples(rng, {"g": 0.2}, n=80)
    t = beyond.subset_table(s, {"gradspsa": "g"}, [f"x{i}" for i in range(40)], methods=[beyond.HEADLINE],
                            n_boot=300)
    r = t.iloc[0]
    assert r["n subset"] == 40 and r["n full"] == 80
    assert r["full − subset"] == pytest.approx(r["SER full"] - r["SER subset"])
    assert r.ci_low <= r["full − subset"] <= r.ci_high and 0 <= r.p <= 1


def test_closeness_can_reorder_two_methods():
    # m1: one far error per sample; m2: two near misses per sample -> SER prefers m1, closeness m2
    rows = []
    for i in range(30):
        rows.append({"system": "s", "id": f"x{i}", "method": "m1", "errors": 1.0, "closeness": 1.0, "ref_len": 10})
        rows.append({"system": "s", "id": f"x{i}", "method": "m2", "errors": 2.0, "closeness": 0.5, "ref_len": 10})
    s = pd.DataFrame(rows)
    ranks = beyond.closeness_ranks(s, ["s"], n_boot=100).set_index("method")
    assert ranks.loc["m1", "rank SER"] == 1 and ranks.loc["m2", "rank closeness"] == 1
    assert ranks.reordered.all()
    r = beyond.reorderings(s, "s", ["m1", "m2"], n_perm=500, n_boot=100)
    assert len(r) == 1 and r.iloc[0]["closeness b − a"] == pytest.approx(-5.0) and r.iloc[0].p < 0.01
    assert beyond.reorderings(s.replace({"closeness": {0.5: 3.0}}), "s", ["m1", "m2"]).empty


def test_findings_text_names_the_numbers():
    row = {"experiment": "2 ablation", "comparison": "gradspsa (without dense connections)", "method": "m",
           "measure": "errors", "rate_a": 10.0, "rate_b": 12.5, "diff": 2.5, "ci_low": 1.0, "ci_high": 4.0,
           "p_value": 0.01, "seed_range": 1.0, "verdict": beyond.verdict(2.5, 0.01, 1.0)}
    (line,) = beyond.findings_text(pd.DataFrame([row]))
    assert "+2.50 points" in line and "seed range 1.00" in line and "exceeds the seed spread" in line
