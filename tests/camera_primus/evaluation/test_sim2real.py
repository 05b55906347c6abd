"""The sim-to-real evaluation: token reductions, signature rules, a run on any folder, the five-row decomposition and
``python -m mtlnb sim2real``, on a six-sample corpus engraved by our pipeline and a one-epoch smoke-size OMR."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mtlnb import cli
from mtlnb.camera_primus import figures, metrics
from mtlnb.camera_primus.corpus import distortion
from mtlnb.camera_primus.corpus.datasets import Vocabulary
from mtlnb.camera_primus.evaluation import sim2real
from mtlnb.camera_primus.networks import runs
from mtlnb.camera_primus.notation import semantic
from mtlnb.camera_primus.study import PrimusStudy
from mtlnb.profiles import get_profile

from tiny_corpus import TINY_LABELS, write_tiny_sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = [*TINY_LABELS.values(),
          "clef-G2\tkeySignature-BbM\ttimeSignature-3/8\tnote-D5_eighth\tnote-Eb5_eighth\tnote-F5_eighth\tbarline\t",
          "clef-F4\ttimeSignature-4/4\tnote-C3_half\trest-half\tbarline\t"]


# -- reductions and signature rules ---------------------------------------------------------------------------------

def test_token_reductions_keep_one_token_per_token():
    tokens = ["clef-G2", "keySignature-EbM", "timeSignature-3/4", "note-Bb4_quarter.", "note-C#5_eighth_fermata",
              "gracenote-C##5_sixteenth", "rest-half.", "multirest-23", "tie", "barline", "note-Fbb3_double_whole"]
    assert semantic.without_accidentals(tokens) == [
        "clef-G2", "keySignature-EbM", "timeSignature-3/4", "note-B4_quarter.", "note-C5_eighth_fermata",
        "gracenote-C5_sixteenth", "rest-half.", "multirest-23", "tie", "barline", "note-F3_double_whole"]
    assert semantic.without_durations(tokens) == [
        "clef-G2", "keySignature-EbM", "timeSignature-3/4", "note-Bb4", "note-C#5", "gracenote-C##5", "rest",
        "multirest", "tie", "barline", "note-Fbb3"]
    assert semantic.pitch_skeleton(tokens)[3:7] == ["note-B4", "note-C5", "gracenote-C5", "rest"]
    with pytest.raises(ValueError, match="position 1"):
        semantic.without_durations(["clef-G2", "note-H4_quarter"])


def test_signature_rules_and_summary_on_hand_written_tokens():
    ref = ["clef-G2", "timeSignature-2/4", "note-C5_quarter", "note-D5_quarter", "barline"]  # no key signature
    assert sim2real.first_of(ref, "clef") == "clef-G2" and sim2real.first_of(ref, "keySignature") is None
    assert sim2real.signature_right(["clef-G2"], ref, "keySignature")  # neither has one: right
    assert not sim2real.signature_right(["keySignature-CM", "clef-G2"], ref, "keySignature")  # one the ref lacks
    assert not sim2real.signature_right(["clef-F4", "clef-G2"], ref, "clef")  # the FIRST clef counts
    assert sim2real.signature_right(["timeSignature-2/4", "timeSignature-3/4"], ref, "timeSignature")

    hyp = ["clef-G2", "keySignature-CM", "timeSignature-2/4", "note-C#5_eighth", "note-D5_quarter", "barline"]
    s = sim2real.summarize([ref], [hyp], Vocabulary(("barline", "clef-G2", "note-C5_quarter")))
    assert s["n"] == 1
    assert s["ser"] == pytest.approx(100 * 2 / 5)  # one insertion (the key), one substitution
    assert s["ser_no_accidentals"] == pytest.approx(100 * 2 / 5)  # C5 eighth is still not C5 quarter
    assert s["ser_no_durations"] == pytest.approx(100 * 2 / 5)  # C#5 is not C5
    assert s["ser_pitch"] == pytest.approx(100 * 1 / 5)  # only the key remains wrong
    assert (s["clef_right"], s["key_right"], s["time_right"]) == (100.0, 0.0, 100.0)
    assert s["oov_share"] == pytest.approx(100 * 2 / 5)  # timeSignature-2/4 and note-D5_quarter
    assert np.isnan(sim2real.summarize([ref], [ref])["oov_share"])
    assert sim2real.summarize([ref], [ref])["ser"] == 0.0


def test_signature_confusions_count_the_wrong_readings():
    refs = [["clef-G2", "keySignature-AM", "timeSignature-C/"], ["clef-G2", "keySignature-AM"],
            ["clef-C3", "keySignature-BbM"], ["clef-G2"], ["clef-G2", "keySignature-DM"]]
    hyps = [["clef-G2", "keySignature-DM", "timeSignature-C"], ["clef-G2", "keySignature-DM"],
            ["clef-C3"], ["clef-G2", "keySignature-FM"], ["clef-G2", "keySignature-DM"]]
    assert sim2real.signature_confusions(refs, hyps, "keySignature") == [
        ("AM", "DM", 2), ("BbM", "none", 1), ("none", "FM", 1)]  # most frequent first, then alphabetical
    assert sim2real.signature_confusions(refs, hyps, "timeSignature") == [("C/", "C", 1)]
    assert sim2real.signature_confusions(refs, hyps, "clef") == []
    n_wrong = sum(n for *_, n in sim2real.signature_confusions(refs, hyps, "keySignature"))
    assert n_wrong == pytest.approx(len(refs) * (1 - sim2real.summarize(refs, hyps)["key_right"] / 100))


def test_intervals_hold_the_rate_and_narrow_with_more_samples():
    right = ["clef-G2", "note-C4_quarter", "note-E4_eighth", "barline"]
    wrong_length = ["clef-G2", "note-C4_half", "note-E4_eighth", "barline"]  # a duration error only
    refs, hyps = [right] * 12, [right] * 9 + [wrong_length] * 3
    rate = sim2real.summarize(refs, hyps)["ser"]
    got = sim2real.intervals(refs, hyps, seed=1)
    assert got == sim2real.intervals(refs, hyps, seed=1)  # seeded
    low, high = got["ser"]
    assert low < rate < high and 0.0 <= low
    assert got["ser_pitch"] == (0.0, 0.0)  # no pitch errors at all
    low10, high10 = sim2real.intervals(refs * 10, hyps * 10, seed=1)["ser"]
    assert low < low10 < rate < high10 < high


# -- a corpus engraved by our pipeline and a smoke-size OMR ------------------------------------------------------------

def _write_samples(corpus: Path, labels, seed: int = 7) -> None:
    """Hand-made samples (semantic, audio) whose images are our engraving (<id>.png) and camera (_distorted.jpg)."""
    for i, label in enumerate(labels):
        sid = f"x{i:02d}"
        write_tiny_sample(corpus, sid, label, seed=i % 4)
        clean, distorted = sim2real.our_images(semantic.parse_semantic(label), seed, i)
        cv2.imwrite(str(corpus / sid / f"{sid}.png"), clean)
        distortion.save_distorted_jpg(distorted, corpus / sid / f"{sid}_distorted.jpg")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``MTLNB_DATA`` of a smoke study: six samples in ``primus-smoke/Corpus`` and a one-epoch OMR of fold 0."""
    root = tmp_path_factory.mktemp("sim2real")
    _write_samples(root / "primus-smoke" / "Corpus", LABELS)
    study = PrimusStudy(get_profile("smoke"), root / "primus-smoke", root / "primus-smoke", synthetic=True, jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa: the tiny tones are shorter than some CQT filters
        runs.train_omr(study, 0, epochs=1, progress=False)
    return root


@pytest.fixture
def study(data, monkeypatch):
    monkeypatch.setenv("MTLNB_DATA", str(data))
    return PrimusStudy(get_profile("smoke"), data / "primus-smoke", data / "primus-smoke", synthetic=True, jobs=1)


def test_load_network_reads_a_run_and_checks_its_sizes(study):
    run_dir = study.model_dir(0, "omr")
    trained = runs.load_network(run_dir, get_profile("smoke").train)
    assert trained.network == "omr" and trained.epoch == 1 and not trained.model.training
    assert trained.vocabulary == Vocabulary.load(run_dir / "vocabulary.json")
    with pytest.raises(ValueError, match="other network_config"):
        runs.load_network(run_dir, get_profile("mini").train)
    with pytest.raises(ValueError, match="snapshot-1.pt is missing"):
        runs.load_network(run_dir, get_profile("smoke").train, checkpoint="snapshot-1.pt")
    assert sim2real.load_run(run_dir).epoch == 1  # the profile its run.json names
    other = study.root / "models" / "fold0" / "not_a_run"
    shutil.copytree(run_dir, other)
    info = json.loads((other / "run.json").read_text())
    (other / "run.json").write_text(json.dumps({**info, "network": "gradspsa"}))
    with pytest.raises(ValueError, match="holds a 'gradspsa' network"):
        runs.load_network(other, get_profile("smoke").train)
    shutil.rmtree(other)


def test_evaluate_folder_decodes_every_sample_as_validation_does(study, tmp_path):
    run_dir = study.model_dir(0, "omr")
    ev = sim2real.evaluate_folder(run_dir, study.corpus_root)
    assert ev.network == "omr" and ev.epoch == 1 and ev.left_out == {}
    assert ev.samples["id"].tolist() == study.corpus.ids() and ev.summary["n"] == len(LABELS)
    refs = [study.corpus.tokens(s) for s in ev.samples["id"]]
    assert ev.samples["reference"].tolist() == refs
    assert ev.summary["ser"] == pytest.approx(metrics.ser(ev.samples["hypothesis"].tolist(), refs))
    assert ev.samples["ser"].tolist() == pytest.approx(metrics.sample_ser(ev.samples["hypothesis"].tolist(), refs))
    # the network reads exactly what training read from the feature cache
    cache = study.cache()
    for sid in study.corpus.ids():
        assert np.array_equal(sim2real.image_input(study.corpus.paths(sid).distorted), cache.image(sid))
        assert np.array_equal(sim2real.audio_input(study.corpus.paths(sid).audio), cache.cqt(sid))
    clean = sim2real.evaluate_folder(run_dir, study.corpus_root, image="clean")
    assert all(p.endswith(".png") for p in clean.samples["input"])
    # an image per id; an id without one, and one whose image is unreadable, are left out with the reason
    ids = study.corpus.ids()[:3]
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    images = {ids[0]: study.corpus.paths(ids[0]).clean, ids[1]: tmp_path / "bad.jpg"}
    some = sim2real.evaluate_folder(run_dir, study.corpus_root, ids, images)
    assert some.samples["id"].tolist() == ids[:1]
    assert set(some.left_out) == set(ids[1:]) and "not a readable image" in some.left_out[ids[1]]
    with pytest.raises(ValueError, match="image must be one of"):
        sim2real.evaluate_folder(run_dir, study.corpus_root, image="photo")


def test_decomposition_has_five_rows_and_is_deterministic(study, tmp_path):
    run_dir = study.model_dir(0, "omr")
    kwargs = dict(synthetic_root=study.corpus_root, synthetic_ids=list(study.folds[0].test))
    first = sim2real.decomposition(run_dir, study.corpus_root, seed=3, workdir=tmp_path / "one", **kwargs)
    again = sim2real.decomposition(run_dir, study.corpus_root, seed=3, workdir=tmp_path / "two", **kwargs)
    assert list(first.table.index) == list("abcde") and first.left_out == {}
    assert list(first.table.columns) == ["name", *sim2real.SUMMARY_COLUMNS]
    assert first.table["n"].tolist() == [len(study.folds[0].test)] + [len(LABELS)] * 4
    pd.testing.assert_frame_equal(first.table, again.table)
    for name in ("ours", "camera"):
        for path in sorted((tmp_path / "one" / name).iterdir()):
            assert path.read_bytes() == (tmp_path / "two" / name / path.name).read_bytes()
    t = first.table
    assert first.shares.at["music", "ser"] == pytest.approx(t.at["b", "ser"] - t.at["a", "ser"])
    assert first.shares.at["engraving", "ser"] == pytest.approx(t.at["d", "ser"] - t.at["b", "ser"])
    assert first.shares.at["camera", "ser_pitch"] == pytest.approx(t.at["e", "ser_pitch"] - t.at["d", "ser_pitch"])
    # the samples' own images are our pipeline at seed 7: row (b) at seed 7 reads the same pixels as row (e)
    same = sim2real.decomposition(run_dir, study.corpus_root, seed=7)
    assert same.table.at["b", "ser"] == same.table.at["e", "ser"]
    assert "a" not in same.table.index and np.isnan(same.shares.at["music", "ser"])
    document = json.loads(json.dumps(first.to_json()))
    assert set(document["conditions"]) == set("abcde") and set(document["shares"]) == set(sim2real.SHARES)


def test_decomposition_leaves_out_what_our_pipeline_cannot_build(study, tmp_path):
    samples = tmp_path / "samples"
    shutil.copytree(study.corpus.corpus, samples)
    (samples / "x01" / "x01.png").unlink()
    result = sim2real.decomposition(study.model_dir(0, "omr"), samples, ids=["x00", "x01", "x02"])
    assert result.left_out == {"x01": "missing x01.png"} and result.table["n"].tolist() == [2, 2, 2, 2]


def test_cli_writes_a_json_that_recomputes_its_summary(study, tmp_path, capsys):
    out = tmp_path / "omr.json"
    assert cli.main(["sim2real", "--profile", "smoke", "--network", "omr", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ser_pitch" in printed and "epoch 1" in printed
    document = json.loads(out.read_text())
    assert [s["id"] for s in document["samples"]] == sorted(study.folds[0].test)
    refs = [study.corpus.tokens(s["id"]) for s in document["samples"]]
    hyps = [s["hypothesis"] for s in document["samples"]]
    assert metrics.ser(hyps, refs) == pytest.approx(document["summary"]["ser"])
    assert "95 % intervals over the" in printed
    assert tuple(document["intervals"]["ser"]) == sim2real.intervals(refs, hyps)["ser"]
    for kind, name in (("keySignature", "key"), ("timeSignature", "time"), ("clef", "clef")):
        assert document["signature_confusions"][name] == [list(c) for c in
                                                         sim2real.signature_confusions(refs, hyps, kind)]

    decomposed = tmp_path / "decomposition.json"
    assert cli.main(["sim2real", "--profile", "smoke", "--network", "omr", "--decomposition",
                     str(study.corpus_root), "--json", str(decomposed)]) == 0
    assert "camera" in capsys.readouterr().out
    document = json.loads(decomposed.read_text())
    for condition in document["conditions"].values():
        refs = [s["reference"] for s in condition["samples"]]
        hyps = [s["hypothesis"] for s in condition["samples"]]
        assert metrics.ser(hyps, refs) == pytest.approx(condition["summary"]["ser"])

    assert cli.main(["sim2real", "--profile", "smoke", "--network", "omr", "--decomposition",
                     str(study.corpus_root), "--camera", "literal"]) == 0
    assert "camera literal, seed 0" in capsys.readouterr().out

    assert cli.main(["sim2real", "--profile", "smoke", "--network", "a2s"]) == 2  # not trained
    assert "notebook 03" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:n_fft=")  # librosa: the tiny tones are shorter than some CQT filters
def test_an_a2s_run_reads_audio_and_renders_what_is_missing(study, tmp_path):
    pytest.importorskip("fluidsynth")
    runs.train_a2s(study, 0, epochs=1, progress=False)
    run_dir = study.model_dir(0, "a2s")
    ev = sim2real.evaluate_folder(run_dir, study.corpus_root)
    assert ev.network == "a2s" and ev.summary["n"] == len(LABELS)
    assert all(p.endswith(".wav") for p in ev.samples["input"])
    no_audio = tmp_path / "no_audio"
    shutil.copytree(study.corpus.corpus, no_audio, ignore=shutil.ignore_patterns("*.wav"))
    rendered = sim2real.evaluate_folder(run_dir, no_audio, ["x00", "x01"])
    assert rendered.summary["n"] == 2 and not list(no_audio.rglob("*.wav"))  # rendered elsewhere, then removed
    with pytest.raises(ValueError, match="an A2S run reads no image"):
        sim2real.decomposition(run_dir, study.corpus_root)
    shutil.rmtree(run_dir)


def test_figures(study):
    result = sim2real.decomposition(study.model_dir(0, "omr"), study.corpus_root, seed=3,
                                    synthetic_root=study.corpus_root, synthetic_ids=list(study.folds[0].test))
    fig = figures.sim2real_figure(result.table, result.shares)
    assert len(fig.axes[0].patches) == 10  # two bars per condition
    plt.close(fig)
    fig = figures.real_transcriptions_figure(result.evaluations["e"].samples, n=2)
    assert len(fig.axes) == 2  # one image per sample, the text beside the axes
    plt.close(fig)
    with pytest.raises(ValueError, match="no sample"):
        figures.real_transcriptions_figure(result.evaluations["e"].samples, ids=["nobody"])


def test_real_samples_read(study, primus_samples):
    ids = [p.name for p in primus_samples[:3]]
    ev = sim2real.evaluate_folder(study.model_dir(0, "omr"), primus_samples[0].parent, ids)
    assert ev.samples["id"].tolist() == ids and ev.left_out == {}
    assert 0 <= ev.summary["oov_share"] <= 100 and ev.summary["ser"] > 0


def test_cli_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["sim2real", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m mtlnb sim2real")
    assert all(option in out for option in ("--decomposition", "--image", "--json", "--fold", "--corpus", "--camera"))
