"""The three profiles: one name chooses every size; smoke < mini < paper; paper holds the papers' numbers."""

from __future__ import annotations

import dataclasses

import pytest

from mtlnb import profiles
from mtlnb.profiles import PROFILE_NAMES, PROFILES, CorpusProfile, get_profile


def test_every_name_has_a_profile_of_that_name():
    assert set(PROFILES) == set(PROFILE_NAMES)
    assert all(PROFILES[n].name == n for n in PROFILE_NAMES)


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown profile .huge.; choose one of smoke, mini, paper, paper-dry"):
        get_profile("huge")


def test_profiles_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["mini"].train.omr_epochs = 1


def test_overrides_replace_a_block_and_keep_the_rest():
    small = CorpusProfile(n_pairs=10, folds=(0,))
    p = get_profile("mini", corpus=small)
    assert p.corpus is small and p.train is PROFILES["mini"].train and p.name == "mini"
    assert PROFILES["mini"].corpus.n_pairs == 1700  # the shared profile is untouched


def test_default_is_smoke_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "1")
    assert profiles.default_profile_name() == "smoke"
    assert get_profile().name == "smoke"


def test_default_is_paper_with_cuda_and_mini_without(monkeypatch):
    import torch

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profiles.default_profile_name() == "paper"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.default_profile_name() == "mini"


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_sizes_are_consistent(name):
    p = PROFILES[name]
    assert p.corpus.folds and all(0 <= k < p.corpus.n_folds for k in p.corpus.folds)
    assert 0 < p.corpus.subset_fraction <= 1
    t = p.train
    assert min(t.omr_epochs, t.a2s_epochs, t.gradspsa_epochs, t.scenario_omr_epochs) >= 1
    assert len(t.omr_filters) == len(t.omr_pools)
    if t.omr_snapshot_levels is not None:  # H > M > L: each level is a later point of the same training
        assert list(t.omr_snapshot_levels) == sorted(t.omr_snapshot_levels, reverse=True)
    assert 0.0 in p.fusion.alphas and 1.0 in p.fusion.alphas  # the unimodal ends of the α sweep
    assert p.piano.updates >= p.piano.evals >= 1


def test_smoke_is_smaller_than_mini_and_mini_than_paper():
    s, m, p = (PROFILES[n] for n in ("smoke", "mini", "paper"))
    assert s.corpus.n_pairs < m.corpus.n_pairs < p.corpus.n_pairs
    assert s.train.omr_epochs < m.train.omr_epochs < p.train.omr_epochs
    assert s.piano.updates < m.piano.updates < p.piano.updates


def test_paper_holds_the_papers_sizes():
    p = PROFILES["paper"]
    assert p.corpus.n_pairs == 22285 and p.corpus.folds == (0, 1, 2, 3, 4)  # cleansed Camera-PrIMuS, 5 folds
    assert (p.train.omr_epochs, p.train.a2s_epochs) == (150, 150)  # the baseline's epochs
    assert (p.train.omr_batch, p.train.a2s_batch, p.train.gradspsa_batch) == (16, 4, 2)
    assert p.train.lstm_units == 256 and p.train.learning_rate == 1e-3
    assert p.train.omr_snapshot_levels is None and p.train.max_train_batches is None
    assert p.fusion.lm_order == 5 and p.fusion.max_test_samples is None
    assert (p.piano.updates, p.piano.batch) == (680_000, 64)  # Kelz et al.: 680,000 updates of 64
    assert p.piano.maps is None and p.piano.grid_rows is None and p.piano.cross_stitch_rows is None


def test_paper_runs_gradspsa_on_the_thesis_subset_and_the_baseline_on_full_folds():
    p = PROFILES["paper"]
    assert p.train.gradspsa_subset_fraction == 0.6  # thesis Table 1: 36 / 12 / 12 %
    assert p.corpus.subset_fraction == 1.0  # the baseline networks: the full folds
    assert p.train.concurrent_trainings >= 1
    assert all(PROFILES[n].train.gradspsa_subset_fraction == 1.0 for n in ("smoke", "mini"))
    with pytest.raises(ValueError, match="gradspsa_subset_fraction"):
        dataclasses.replace(p.train, gradspsa_subset_fraction=0.0)
    with pytest.raises(ValueError, match="concurrent_trainings"):
        dataclasses.replace(p.train, concurrent_trainings=0)


def _shapes(block, skip):
    return {f.name: getattr(block, f.name) for f in dataclasses.fields(block) if f.name not in skip}


def test_paper_dry_has_the_papers_shapes_and_grids_and_little_data():
    paper, dry = PROFILES["paper"], PROFILES["paper-dry"]
    assert dry.dry_run and not paper.dry_run and not any(PROFILES[n].dry_run for n in ("smoke", "mini"))
    # the corpus: the paper's split, several of its folds, a small corpus
    assert _shapes(dry.corpus, {"n_pairs", "folds"}) == _shapes(paper.corpus, {"n_pairs", "folds"})
    assert len(dry.corpus.folds) >= 2 and set(dry.corpus.folds) <= set(paper.corpus.folds)
    assert dry.corpus.n_pairs < PROFILES["smoke"].corpus.n_pairs
    # the networks, batches and subsets are the paper's; only epochs, batches per epoch and concurrency shrink
    less = {"omr_epochs", "a2s_epochs", "gradspsa_epochs", "scenario_omr_epochs", "max_train_batches",
            "concurrent_trainings"}
    assert _shapes(dry.train, less) == _shapes(paper.train, less)
    assert dry.train.max_train_batches == 1 and dry.train.omr_epochs == 1
    # the LM order and the α grid are the paper's; the beams are narrowed for untrained networks
    assert dry.fusion.lm_order == paper.fusion.lm_order and dry.fusion.alphas == paper.fusion.alphas
    # piano: the paper's network, rates and grids (every row), few updates on synthetic performances
    keep = ("batch", "maps", "learning_rates", "grid_rows", "cross_stitch_rows")
    assert all(getattr(dry.piano, k) == getattr(paper.piano, k) for k in keep)
    assert dry.piano.updates < PROFILES["smoke"].piano.updates and dry.piano.seconds_per_piece > 0
