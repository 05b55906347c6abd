"""The study's training runs: network sizes per profile, scenario subsets, run folders, reading runs back."""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mtlnb.camera_primus import figures
from mtlnb.camera_primus.networks import ctc_tasks, runs as experiments
from mtlnb.camera_primus.corpus import primus
from mtlnb.camera_primus.corpus.datasets import Vocabulary
from mtlnb.camera_primus.networks import crnn, gradspsa_a2s as gradspsa
from mtlnb.profiles import CorpusProfile, TrainProfile, get_profile
from mtlnb.camera_primus.study import PrimusStudy
from mtlnb.core.training import snapshot_path

from tiny_corpus import TINY_LABELS, write_tiny_sample


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- network sizes ---------------------------------------------------------------------------------------------------

def test_paper_profile_builds_the_papers_networks():
    cfgs = experiments.network_configs(50, get_profile("paper").train)
    assert cfgs["omr"] == crnn.omr_config(50)
    assert cfgs["a2s"] == crnn.a2s_config(50)
    assert cfgs["gradspsa"] == gradspsa.GradSPSAConfig(50)


def test_smaller_profiles_change_only_the_documented_sizes():
    tp = replace(get_profile("paper").train, lstm_units=32, omr_filters=(8, 8, 16, 16),
                 omr_pools=((2, 2), (2, 2), (2, 1), (2, 1)), a2s_pools=((4, 4), (2, 1)))
    cfgs = experiments.network_configs(50, tp)
    omr, a2s, grad = cfgs["omr"], cfgs["a2s"], cfgs["gradspsa"]
    assert omr.filters == (8, 8, 16, 16) and omr.lstm_units == a2s.lstm_units == grad.lstm_units == 32
    assert omr.pools == ((2, 2), (2, 2), (2, 1), (2, 1)) and a2s.pools == ((4, 4), (2, 1))
    assert grad.pools == ((4, 4), (2, 1), (1, 2)) and grad.filters == (8, 8, 8)  # A2S filters stay the papers'
    assert omr.time_reduction == a2s.time_reduction == 4  # input columns per CTC frame
    assert grad.output_lengths(np.array([80])).tolist() == [10]  # the thesis's third block halves time again
    assert a2s.features_per_column == 8 * 256 // 8 and grad.features_per_column == 8 * 256 // 8  # 32 rows × 8
    assert omr.kernels == crnn.omr_config(50).kernels and omr.input_height == 64
    with pytest.raises(ValueError, match="one entry per conv block"):
        experiments.network_configs(50, replace(tp, omr_pools=((2, 2), (2, 1))))
    with pytest.raises(ValueError, match="GradSPSA needs the trained OMR"):
        experiments.build_network("gradspsa", 50, tp)
    with pytest.raises(ValueError, match="network must be one of"):
        experiments.build_network("piano", 50, tp)


def test_pooled_input_front_end():
    tp = replace(get_profile("paper").train, lstm_units=16, a2s_input_pool=2)
    cfgs = experiments.network_configs(20, tp)
    assert cfgs["a2s"].input_height == cfgs["gradspsa"].input_height == 128
    assert cfgs["a2s"].pools == crnn.a2s_config(20).pools  # the papers' pools, on the pooled input
    torch.manual_seed(0)
    a2s = experiments.build_network("a2s", 20, tp)
    assert isinstance(a2s, experiments.PooledInput) and a2s.pool == (2, 2)
    # 101 columns -> 50 pooled -> 25 frames; works on ints, arrays and tensors
    assert a2s.output_lengths(101) == 25
    assert a2s.output_lengths(np.array([101, 8])).tolist() == [25, 2]
    x = torch.rand(2, 1, 256, 101)
    assert a2s.eval()(x).shape == (2, 25, 21)
    # the wrapped network sees exactly the 2 × 2 means of the input
    seen = {}
    a2s.net.conv1.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    a2s(x)
    assert torch.allclose(seen["x"][0, 0, 0, 0], x[0, 0, :2, :2].mean())
    omr = experiments.build_network("omr", 20, tp)
    grad = experiments.build_network("gradspsa", 20, tp, omr)
    assert isinstance(grad, experiments.PooledInput) and grad.output_lengths(101) == 12  # 101 // 2 // 4
    assert grad.eval()(x, torch.rand(2, 1, 64, 40), torch.tensor([40, 30])).shape == (2, 12, 21)
    assert torch.equal(grad.sharing_loss(), grad.net.sharing_loss())
    assert not isinstance(omr, experiments.PooledInput)  # only the audio networks
    with pytest.raises(ValueError, match="a2s_input_pool"):
        experiments.network_configs(20, replace(tp, a2s_input_pool=0))


# -- scenario subsets ------------------------------------------------------------------------------------------------

def fake_study(n_train: int, folds_source: str = "generated"):
    ids = tuple(f"id{i:05d}" for i in range(n_train))
    fold = primus.Fold(0, ids, ("v",), ("t",))
    return SimpleNamespace(folds=[fold], folds_source=folds_source, profile=get_profile("paper"))


def test_scenario_subsets_have_the_baseline_sizes():
    study = fake_study(13371)  # the cleansed corpus's training fold
    sizes = [len(experiments.scenario_ids(study, 0, s)) for s in range(1, 10)]
    # int(13,371 · p / 100) for p = 2.5, 2.2, 2.0, 4.0, 3.7, 3.0, 10.5, 9.0, 6.3
    assert sizes == [334, 294, 267, 534, 494, 401, 1403, 1203, 842]
    s1 = experiments.scenario_ids(study, 0, 1)
    assert s1 == experiments.scenario_ids(study, 0, 1) and s1 == sorted(s1)  # seeded, sorted
    assert set(s1) <= set(study.folds[0].train) and len(set(s1)) == len(s1)
    assert s1[:20] != experiments.scenario_ids(study, 0, 2)[:20]  # each scenario its own draw
    for bad in (0, 10):
        with pytest.raises(ValueError, match="scenario must be in 1..9"):
            experiments.scenario_ids(study, 0, bad)
    with pytest.raises(ValueError, match="fold 3 does not exist"):
        experiments.scenario_ids(study, 3, 1)


def test_tiny_folds_get_one_batch_per_scenario():
    study = fake_study(24)  # the smoke corpus: 2.5 % of 24 is nothing
    assert all(len(experiments.scenario_ids(study, 0, s)) == 16 for s in range(1, 10))  # paper's OMR batch


def test_baseline_folds_read_the_baselines_scenario_lists(tmp_path, monkeypatch):
    listed = tmp_path / "primus" / "folds" / "Scenario3"
    listed.mkdir(parents=True)
    (listed / "train_gt_fold0.dat").write_text("id00007\nid00003\n")
    monkeypatch.setenv("MTLNB_REFERENCE", str(tmp_path))
    assert experiments.scenario_ids(fake_study(500, "baseline"), 0, 3) == ["id00007", "id00003"]
    assert len(experiments.scenario_ids(fake_study(1000, "generated"), 0, 3)) == 20  # generated folds: drawn


# -- a whole study on hand-made samples ------------------------------------------------------------------------------

TINY_TRAIN = TrainProfile(omr_epochs=2, a2s_epochs=1, gradspsa_epochs=1, scenario_omr_epochs=1, omr_batch=2,
                          a2s_batch=2, gradspsa_batch=2, lstm_units=8, omr_filters=(4, 4, 8, 8),
                          omr_pools=((2, 2), (2, 2), (2, 1), (2, 1)), a2s_input_pool=2)


TINY_PROFILE = replace(get_profile("smoke"), corpus=CorpusProfile(n_pairs=9, folds=(0,), n_folds=3), train=TINY_TRAIN)


@pytest.fixture(scope="module")
def tiny_built(tmp_path_factory):
    """Nine hand-made samples (the four conftest labels, cycled) and their feature cache, built once."""
    root = tmp_path_factory.mktemp("experiments")
    corpus = root / "corpus" / "Corpus"
    for i in range(9):
        sid = f"s{i:02d}"
        write_tiny_sample(corpus, sid, list(TINY_LABELS.values())[i % 4], seed=i % 4, seconds=1.0 + 0.1 * i)
    study = PrimusStudy(TINY_PROFILE, root / "study", root / "corpus", synthetic=False, jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa: the tiny tones are shorter than some CQT filters
        study.build_cache(progress=False)
    return root


@pytest.fixture
def tiny_study(tiny_built, tmp_path):
    """A fresh study folder (no runs yet) over the tiny corpus: three folds of 3 / 3 / 3."""
    study = PrimusStudy(TINY_PROFILE, tmp_path / "study", tiny_built / "corpus", synthetic=False, jobs=1)
    cache = next((tiny_built / "study").glob("features-*"))
    shutil.copytree(cache, study.root / cache.name)
    return study


def test_train_omr_writes_a_complete_resumable_run(tiny_study):
    fold = tiny_study.folds[0]
    run = experiments.train_omr(tiny_study, 0, progress=False)
    assert run.run_dir == tiny_study.root / "models" / "fold0" / "omr"
    assert run.result.epochs_done == 2 and run.n_train == len(fold.train) and run.left_out == {}
    vocab = Vocabulary.load(run.run_dir / "vocabulary.json")
    assert vocab == Vocabulary.from_sequences(tiny_study.corpus.tokens(s) for s in fold.train)
    widths = tiny_study.cache().widths("image")
    for split in ("val", "test"):
        with ctc_tasks.load_posteriors(run.posteriors[split]) as post:
            assert list(post) == list(getattr(fold, split)) and post.vocabulary == vocab
            assert all(post[s].shape == (widths[s] // 4, len(vocab) + 1) for s in post)  # 4 columns per frame
    stamp = run.posteriors["test"].stat().st_mtime_ns
    again = experiments.train_omr(tiny_study, 0, progress=False)  # finished: returns at once
    assert again.result.resumed_from == 2 and again.result.history == run.result.history
    assert run.posteriors["test"].stat().st_mtime_ns == stamp  # posteriors of the same best.pt: not rewritten
    other = replace(tiny_study, profile=replace(tiny_study.profile, train=replace(TINY_TRAIN, lstm_units=12)))
    with pytest.raises(ValueError, match="other network_config"):  # never resume a network of another shape
        experiments.train_omr(other, 0, progress=False)
    curves = experiments.learning_curves([run])
    assert list(curves.columns) == ["run", "epoch", "train_loss", "val_ser", "val_loss", "seconds"]
    assert curves["epoch"].tolist() == [1, 2] and set(curves["run"]) == {"omr"}


def test_omr_levels_come_from_snapshots_of_the_omr_training(tiny_study, tiny_built, tmp_path):
    with pytest.raises(ValueError, match="train the fold's OMR first"):
        experiments.omr_level_run(tiny_study, 0, 50.0)
    experiments.train_omr(tiny_study, 0, progress=False)  # trained without snapshots
    with pytest.raises(ValueError, match="without a snapshot at 50 %"):
        experiments.omr_level_run(tiny_study, 0, 50.0)

    # 1000 % is reached by the first epoch; 0 % never (the best epoch stands in, and says so)
    profile = replace(TINY_PROFILE, train=replace(TINY_TRAIN, omr_snapshot_levels=(1000.0, 0.0, 0.0)))
    study = PrimusStudy(profile, tmp_path / "levels", tiny_built / "corpus", synthetic=False, jobs=1)
    cache = next((tiny_built / "study").glob("features-*"))
    shutil.copytree(cache, study.root / cache.name)
    main = experiments.train_omr(study, 0, progress=False)
    high, low = experiments.omr_level_run(study, 0, 1000.0), experiments.omr_level_run(study, 0, 0.0)
    assert high.name == "omr_at1000" and high.run_dir == study.model_dir(0, "omr_at1000")
    assert high.result.best_epoch == 1 and high.best_val_ser == main.result.history[0]["val_ser"]
    assert high.n_train == main.n_train and len(high.result.history) == 1
    snap = torch.load(snapshot_path(main.run_dir, 1000.0), weights_only=True)
    copied = torch.load(high.run_dir / "best.pt", weights_only=True)
    assert all(torch.equal(snap["model"][k], copied["model"][k]) for k in snap["model"])
    info = json.loads((low.run_dir / "run.json").read_text())
    assert info["reached"] is False and low.result.best_epoch == main.result.best_epoch
    assert json.loads((high.run_dir / "run.json").read_text())["reached"] is True
    fold = study.folds[0]
    for split in ("val", "test"):
        with ctc_tasks.load_posteriors(high.posteriors[split]) as post:
            assert list(post) == list(getattr(fold, split))
    stamp = high.posteriors["test"].stat().st_mtime_ns
    experiments.omr_level_run(study, 0, 1000.0)  # current: nothing rewritten
    assert high.posteriors["test"].stat().st_mtime_ns == stamp


def test_a2s_leaves_out_long_audio_and_gradspsa_needs_the_omr(tiny_study):
    with pytest.raises(ValueError, match=r"train_omr\(study, 0\) first"):
        experiments.train_gradspsa(tiny_study, 0, progress=False)
    fold = tiny_study.folds[0]
    cqt = tiny_study.cache().widths("cqt")
    widest = max(fold.train, key=lambda s: cqt[s])
    study = replace(tiny_study, profile=replace(tiny_study.profile, train=replace(
        TINY_TRAIN, max_train_audio_width=cqt[widest] - 1)))
    run = experiments.train_a2s(study, 0, progress=False)
    assert list(run.left_out) == [widest] and "wider than TrainProfile.max_train_audio_width" in run.left_out[widest]
    assert run.n_train == len(fold.train) - 1
    experiments.train_omr(study, 0, progress=False)
    grad = experiments.train_gradspsa(study, 0, progress=False)
    with ctc_tasks.load_posteriors(grad.posteriors["test"]) as post:
        assert all(post[s].shape[0] == cqt[s] // 8 for s in post)  # GradSPSA: 8 columns per frame
    # A retrained OMR (here: its best.pt with other weights) makes the GradSPSA run another model's: no silent resume
    best = study.model_dir(0, "omr") / "best.pt"
    saved = torch.load(best, weights_only=False)
    torch.save(saved | {"retrained": True}, best)
    with pytest.raises(ValueError, match="omr_checkpoint"):
        experiments.train_gradspsa(study, 0, progress=False)


# -- reading runs back: hand-made posteriors -------------------------------------------------------------------------

def write_posteriors(path, vocab: Vocabulary, paths: dict[str, list[int]]):
    """A posteriors file whose best path of sample ``id`` is ``paths[id]`` (class indices, blank = len(vocab))."""
    arrays = {}
    for sid, path_ in paths.items():
        lp = np.full((len(path_), len(vocab) + 1), -8.0, dtype=np.float32)
        lp[np.arange(len(path_)), path_] = -0.01
        arrays[sid] = lp
    np.savez(path, **arrays, __vocabulary__=np.array(vocab.symbols), __blank__=np.int64(vocab.blank),
             __format__=np.array(ctc_tasks.POSTERIORS_FORMAT))


def test_ser_table_and_examples_from_saved_posteriors(tiny_study):
    fold = tiny_study.folds[0]
    vocab = Vocabulary.from_sequences(tiny_study.corpus.tokens(s) for s in tiny_study.corpus.ids())  # all symbols
    blank = vocab.blank
    run_dir = tiny_study.model_dir(0, "omr")
    refs = {s: vocab.encode(tiny_study.corpus.tokens(s)) for s in fold.test}
    # first test sample: its reference with the last symbol dropped (1 deletion); the others: exact, with blanks
    # and repeats that greedy decoding must collapse
    first = fold.test[0]
    paths = {s: [x for r in refs[s] for x in (r, r, blank)] for s in fold.test}
    paths[first] = [x for r in refs[first][:-1] for x in (blank, r)]
    write_posteriors(run_dir / "posteriors_test.npz", vocab, paths)
    write_posteriors(run_dir / "posteriors_val.npz", vocab, {s: [blank] for s in fold.val})
    total = sum(len(r) for r in refs.values())
    table = experiments.ser_table(tiny_study, ["omr", "a2s"], folds=[0])
    assert table.loc[0, "n"] == len(fold.test)
    assert table.loc[0, "omr"] == pytest.approx(100.0 / total)
    assert np.isnan(table.loc[0, "a2s"])  # not trained
    val = experiments.ser_table(tiny_study, ["omr"], folds=[0], split="val")
    assert val.loc[0, "omr"] == 100.0  # all-blank outputs delete everything

    ex = experiments.transcribe_examples(tiny_study, 0, ["omr"], n=len(fold.test))
    assert ex["id"].tolist() == sorted(fold.test)
    row = ex.set_index("id").loc[first]
    assert row["omr"] == row["reference"][:-1]
    assert row["omr_ser"] == pytest.approx(100.0 / len(row["reference"]))
    assert (ex.set_index("id").drop(first)["omr_ser"] == 0).all()


def test_engrave_tokens_only_for_valid_music():
    image = figures.engrave_tokens(["clef-G2", "keySignature-CM", "timeSignature-2/4", "note-C5_quarter",
                                        "note-D5_quarter", "barline"])
    assert image.dtype == np.uint8 and image.ndim == 2 and image.min() < 128 and image.max() == 255
    assert figures.engrave_tokens([]) is None
    assert figures.engrave_tokens(["clef-G2", "note-H9_quarter"]) is None  # not a semantic token


# -- training what is missing ----------------------------------------------------------------------------------------

def test_ensure_runs_trains_what_a_run_needs_and_returns_finished_runs(tiny_study):
    made = experiments.ensure_runs(tiny_study, 0, ["gradspsa", "omr_s2"], progress=False)
    assert list(made) == ["gradspsa", "omr_s2"] and made["gradspsa"].network == "gradspsa"
    assert (tiny_study.model_dir(0, "omr") / "best.pt").exists()  # GradSPSA's OMR, trained first
    assert made["omr_s2"].n_train + len(made["omr_s2"].left_out) == len(experiments.scenario_ids(tiny_study, 0, 2))
    stamp = made["omr_s2"].posteriors["test"].stat().st_mtime_ns
    again = experiments.ensure_run(tiny_study, 0, "omr_s2", progress=False)  # finished: returns at once
    assert again.result.history == made["omr_s2"].result.history
    assert again.posteriors["test"].stat().st_mtime_ns == stamp


@pytest.mark.parametrize("name, message", [
    ("omr_s0", "cannot make run"), ("omr_s1_p2.50", "is not a scenario run name"),
    ("omr_s1_p2.5", "is named omr_s1"), ("omr_at50.0", "is not a level run name"), ("lm", "cannot make run"),
])
def test_ensure_run_refuses_names_it_cannot_make(name, message):
    with pytest.raises(ValueError, match=message):
        experiments.ensure_run(SimpleNamespace(), 0, name)


def test_run_maker_names_the_notebook_and_the_call():
    assert experiments.run_maker("a2s").startswith("notebook 03")
    assert "ensure_run(study, fold, 'omr_s3')" in experiments.run_maker("omr_s3")


# -- GradSPSA's subset, several trainings at once, dry runs ----------------------------------------------------------

def test_gradspsa_trains_on_its_subset_and_exports_the_full_folds(tiny_study):
    study = replace(tiny_study, profile=replace(TINY_PROFILE, train=replace(TINY_TRAIN, gradspsa_subset_fraction=0.6)))
    experiments.train_omr(study, 0, progress=False)
    run = experiments.train_gradspsa(study, 0, progress=False)
    fold = study.folds[0]
    sub = primus.subsample_fold(fold, 0.6, study.profile.corpus.seed)
    info = json.loads((run.run_dir / "run.json").read_text())
    assert info["subset"] == {"fraction": 0.6, "n_train": run.n_train, "n_val": len(sub.val), "n_test": len(sub.test)}
    assert run.n_train + len(run.left_out) == len(sub.train) < len(fold.train)
    for split in ("val", "test"):  # posteriors of the full folds: late fusion reads every sample
        with ctc_tasks.load_posteriors(run.posteriors[split]) as post:
            assert sorted(post) == sorted(getattr(fold, split))
    # the baseline networks keep the full folds
    assert json.loads((study.model_dir(0, "omr") / "run.json").read_text())["n_train"] + \
        len(json.loads((study.model_dir(0, "omr") / "run.json").read_text())["left_out"]) == len(fold.train)
    # a folder trained on the subset is not resumed with the full folds
    full = replace(study, profile=replace(TINY_PROFILE, train=replace(TINY_TRAIN, gradspsa_subset_fraction=1.0)))
    with pytest.raises(ValueError, match="subset_fraction"):
        experiments.train_gradspsa(full, 0, progress=False)


def test_ensure_runs_concurrently_puts_the_omr_before_what_reads_it(monkeypatch, tiny_study):
    seen = {}
    monkeypatch.setattr(experiments.scheduler, "run_jobs",
                        lambda jobs, concurrency, device: seen.update(jobs=jobs, concurrency=concurrency) or
                        {job.key: job.key for job in jobs})
    got = experiments.ensure_runs_concurrently(tiny_study, [(1, "gradspsa"), (0, "a2s"), (1, "omr_at40")])
    keys = [job.key for job in seen["jobs"]]
    assert keys[0] == (1, "omr") and set(keys) == {(1, "omr"), (1, "gradspsa"), (0, "a2s"), (1, "omr_at40")}
    after = {job.key: job.after for job in seen["jobs"]}
    assert after[(1, "gradspsa")] == after[(1, "omr_at40")] == ((1, "omr"),) and after[(0, "a2s")] == ()
    assert seen["concurrency"] == 1 and set(got) == set(keys)
    assert all(job.kwargs == {"progress": True} for job in seen["jobs"])  # bars only one at a time


def _weights(run_dir):
    return torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)["model"]


def test_concurrent_trainings_equal_sequential_ones(tiny_built, tmp_path):
    def study(name, concurrency):
        s = PrimusStudy(replace(TINY_PROFILE, train=replace(TINY_TRAIN, concurrent_trainings=concurrency)),
                        tmp_path / name, tiny_built / "corpus", synthetic=False, jobs=1)
        cache = next((tiny_built / "study").glob("features-*"))
        shutil.copytree(cache, s.root / cache.name)
        return s

    names = ["omr_s1", "omr_s2"]
    one, two = study("one", 1), study("two", 2)
    made = experiments.ensure_runs(one, 0, names, progress=False)
    together = experiments.ensure_runs(two, 0, names, progress=False)
    for name in names:
        assert together[name].result.history and [
            {k: v for k, v in r.items() if k != "seconds"} for r in together[name].result.history] == [
            {k: v for k, v in r.items() if k != "seconds"} for r in made[name].result.history]
        a, b = _weights(made[name].run_dir), _weights(together[name].run_dir)
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_dry_run_records_step_times_and_the_memory_check(tiny_study, capsys):
    study = replace(tiny_study, profile=replace(TINY_PROFILE, dry_run=True))
    run = experiments.train_omr(study, 0, progress=False)
    info = json.loads((run.run_dir / "run.json").read_text())
    assert info["timing"]["train_seconds_per_step"] > 0 and info["timing"]["batch"] == TINY_TRAIN.omr_batch
    assert info["timing"]["posterior_seconds_per_sample"] > 0
    widths = study.cache().widths("image")
    trained = [sid for sid in study.folds[0].train if sid not in run.left_out]
    assert info["memory"]["widths"] == {"image": max(widths[sid] for sid in trained)}  # the widest batch
    assert info["memory"]["fits"] and info["memory"]["batch"] == TINY_TRAIN.omr_batch
    assert "dry run, omr of fold 0: estimated" in capsys.readouterr().out


def test_the_paper_dry_training_stage_runs_the_papers_networks_and_projects_the_paper_run(tiny_built, tmp_path):
    """The dry run's training stage at the paper's networks and batches (on the nine tiny samples instead of the
    dry run's corpus): every network trains, checks its memory and times its steps; the report projects the paper
    profile from them.  The whole dry run is ``python -m mtlnb reproduce --profile paper-dry``."""
    from mtlnb.camera_primus.networks import budget

    dry = get_profile("paper-dry")
    profile = replace(dry, corpus=CorpusProfile(n_pairs=9, folds=(0,), n_folds=3))
    study = PrimusStudy(profile, tmp_path / "dry", tiny_built / "corpus", synthetic=False, jobs=1)
    shutil.copytree(next((tiny_built / "study").glob("features-*")), study.root / next(
        (tiny_built / "study").glob("features-*")).name)
    made = experiments.ensure_runs(study, 0, ["a2s", "gradspsa", "omr_s1"], progress=False)
    assert experiments.network_configs(10, profile.train) == experiments.network_configs(10, get_profile("paper").train)
    for name in ("omr", "a2s", "gradspsa", "omr_s1"):
        info = json.loads((study.model_dir(0, name) / "run.json").read_text())
        assert info["epochs_done"] == 1 and info["memory"]["fits"], name
        assert info["timing"]["train_seconds_per_step"] > 0 and info["timing"]["batch"] == {
            "omr": 16, "omr_s1": 16, "a2s": 4, "gradspsa": 2}[name]
    assert made["gradspsa"].n_train + len(made["gradspsa"].left_out) == round(0.6 * len(study.folds[0].train))
    text = budget.report(study)
    assert "MEANINGLESS" in text and "PROJECTED on an H100" in text
    assert all(f"  {net:<9} batch" in text for net in ("omr", "a2s", "gradspsa"))


def test_runs_written_before_a_config_field_existed_stay_readable(tmp_path):
    profile = get_profile("smoke").train
    vocabulary = Vocabulary(("a", "b", "c"))
    described = experiments._describe("gradspsa", len(vocabulary), profile)
    vocabulary.save(tmp_path / experiments.VOCABULARY)
    older = json.loads(json.dumps(described))
    del older["network_config"]["interaction_block"]  # a field GradSPSAConfig gained later, default = old behaviour
    (tmp_path / experiments.RUN_INFO).write_text(json.dumps(older))
    experiments._check_run_folder(tmp_path, vocabulary, described)  # accepted
    older["network_config"]["interaction_block"] = not described["network_config"]["interaction_block"]
    (tmp_path / experiments.RUN_INFO).write_text(json.dumps(older))
    with pytest.raises(ValueError, match="other network_config"):
        experiments._check_run_folder(tmp_path, vocabulary, described)


def test_variants_trained_two_at_a_time_equal_those_trained_one_after_the_other(tiny_built, tmp_path):
    from mtlnb.camera_primus.networks.variants import Variant, ensure_variants

    def study(name):
        s = PrimusStudy(TINY_PROFILE, tmp_path / name, tiny_built / "corpus", synthetic=False, jobs=1)
        cache = next((tiny_built / "study").glob("features-*"))
        shutil.copytree(cache, s.root / cache.name)
        return s

    wanted = [Variant("a2s", seed=43), Variant("gradspsa", ablate="dense_connections"), Variant("a2s", seed=43)]
    alone = ensure_variants(study("one"), 0, wanted, progress=False, concurrency=1)
    together = ensure_variants(study("two"), 0, wanted, progress=False, concurrency=2)
    assert list(alone) == list(together) == ["bx_a2s_seed43", "bx_gradspsa_no-dense_connections"]  # one training each, in order
    for name in alone:
        a, b = _weights(alone[name].run_dir), _weights(together[name].run_dir)
        assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ValueError, match="concurrency must be >= 1"):
        ensure_variants(study("bad"), 0, wanted, concurrency=-1)
