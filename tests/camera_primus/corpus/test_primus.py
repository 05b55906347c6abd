"""Corpus layout, id lists and folds."""

from __future__ import annotations

import pytest

from mtlnb.camera_primus.corpus import primus


def test_make_folds_structure():
    ids = [f"id{i:03d}" for i in range(103)]
    folds = primus.make_folds(ids, k=5, seed=1)
    tests = [set(f.test) for f in folds]
    # the five test folds partition the ids, sizes differ by at most one
    assert set().union(*tests) == set(ids)
    assert sum(len(t) for t in tests) == len(ids)
    assert max(map(len, tests)) - min(map(len, tests)) <= 1
    for f in folds:
        train, val, test = map(set, (f.train, f.val, f.test))
        assert not (train & val or train & test or val & test)
        assert train | val | test == set(ids)
        assert len(val) == len(test)  # the baseline's validation set is as large as its test set
    # 103 ids: test folds of 21,21,21,20,20 -> fold 0: 61 / 21 / 21
    assert folds[0].sizes() == (61, 21, 21)


def test_make_folds_deterministic_and_seeded():
    ids = [f"x{i}" for i in range(50)]
    assert primus.make_folds(ids, seed=3) == primus.make_folds(list(reversed(ids)), seed=3)
    assert primus.make_folds(ids, seed=3) != primus.make_folds(ids, seed=4)


def test_make_folds_rejects_bad_input():
    with pytest.raises(ValueError, match="k >= 3"):
        primus.make_folds(["a", "b", "c"], k=2)
    with pytest.raises(ValueError, match="cannot fill"):
        primus.make_folds(["a", "b"], k=5)


def test_subsample_fold_thesis_sizes():
    # The thesis's Table 1: 13,371 / 4,457 / 4,457 -> 8,023 / 2,674 / 2,674 with the 60 % subset.
    fold = primus.Fold(0, tuple(f"t{i}" for i in range(13371)), tuple(f"v{i}" for i in range(4457)),
                       tuple(f"e{i}" for i in range(4457)))
    sub = primus.subsample_fold(fold, 0.6, seed=42)
    assert sub.sizes() == (8023, 2674, 2674)
    assert set(sub.train) <= set(fold.train) and set(sub.test) <= set(fold.test)


def test_scenario_subset_size_like_baseline():
    train = tuple(f"t{i}" for i in range(13371))
    # int(13371 * 2.5 / 100) = int(334.275) = 334
    assert len(primus.scenario_subset(train, 2.5, seed=0)) == 334
    with pytest.raises(ValueError, match="empty"):
        primus.scenario_subset(train[:10], 2.0, seed=0)


def test_fold_files_round_trip(tmp_path):
    folds = primus.make_folds([f"s{i}" for i in range(20)], seed=0)
    primus.write_folds(tmp_path, folds)
    assert primus.load_folds(tmp_path) == folds


def test_baseline_folds_partition_the_cleansed_ids(reference):
    clean = primus.read_id_list(reference / "primus" / "clean_samples.dat")
    assert len(clean) == 22285
    folds, source = primus.folds_for(clean, reference / "primus" / "folds" / "ScenarioX")
    assert source == "baseline"
    assert [f.sizes() for f in folds] == [(13371, 4457, 4457)] * 5


def test_folds_for_generates_when_ids_do_not_match(reference):
    folds, source = primus.folds_for([f"syn{i}" for i in range(30)], reference / "primus" / "folds" / "ScenarioX")
    assert source == "generated" and len(folds) == 5


def test_corpus_reads_real_samples(reference):
    corpus = primus.PrimusCorpus(reference / "primus" / "samples")  # `samples` is laid out like Corpus/
    ids = corpus.ids()
    assert len(ids) == 60
    p = corpus.paths(ids[0])
    assert p.semantic.is_file() and p.distorted.is_file() and p.clean.is_file() and p.pae.is_file()


def test_corpus_dir_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Corpus/"):
        primus.PrimusCorpus(tmp_path)
