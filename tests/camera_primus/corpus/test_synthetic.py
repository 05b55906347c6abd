"""Building the synthetic corpus: layout, determinism, resuming after an interruption; audio for real archives."""

from __future__ import annotations

import filecmp
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import soundfile as sf

from mtlnb.camera_primus.notation import semantic as encoding
from mtlnb.camera_primus.corpus import distortion, primus, synthetic as synthetic_primus
from mtlnb.core import io

# The real archive's six files, plus the rendered audio.
FILES = ("{id}.semantic", "{id}_distorted.jpg", "{id}.png", "{id}.mei", "{id}.agnostic", "regular_pae.pae",
         "{id}.wav")


def same_tree(a, b) -> bool:
    cmp = filecmp.dircmp(a, b)
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    return all(same_tree(os.path.join(a, d), os.path.join(b, d)) for d in cmp.common_dirs)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    report = synthetic_primus.build_corpus(root, 4, seed=7, jobs=1, progress=False)
    return root, report


def test_layout_and_labels(built):
    root, report = built
    assert report.built == 4 and not report.failed
    corpus = primus.PrimusCorpus(root)
    assert corpus.ids() == [synthetic_primus.sample_id(i) for i in range(4)]
    for sid in corpus.ids():
        for pattern in FILES:
            assert (root / "Corpus" / sid / pattern.format(id=sid)).is_file(), (sid, pattern)
        tokens = corpus.tokens(sid)  # parses: every token valid
        audio, sr = sf.read(corpus.paths(sid).audio)
        assert sr == 22050
        assert len(audio) / sr == pytest.approx(encoding.semantic_duration(tokens), abs=1 / sr)
    text = (root / "Corpus" / sid / f"{sid}.semantic").read_text()
    assert text.endswith("\t") and not text.endswith("\n")  # like the real files
    manifest = (root / "manifest.json").read_text()
    assert "soundfont_sha256" in manifest and '"complete": true' in manifest


def test_same_seed_same_bytes_regardless_of_jobs(built, tmp_path):
    root, _ = built
    synthetic_primus.build_corpus(tmp_path, 4, seed=7, jobs=2, progress=False)
    assert same_tree(root / "Corpus", tmp_path / "Corpus")


def test_other_settings_refused(built):
    root, _ = built
    with pytest.raises(ValueError, match="other settings"):
        synthetic_primus.build_corpus(root, 4, seed=8, jobs=1, progress=False)


def test_camera_is_a_setting(built, tmp_path):
    """The camera is recorded; another camera is refused on a built corpus; a manifest from before the camera was a
    setting reads as the fitted camera, the default of its day."""
    root, _ = built
    manifest = io.read_json(root / "manifest.json")
    assert manifest["settings"]["camera"] == "swept"
    with pytest.raises(ValueError, match="camera"):
        synthetic_primus.build_corpus(root, 4, seed=7, jobs=1, progress=False, camera="fitted")
    with pytest.raises(ValueError, match="unknown distortion config 'gm'"):
        synthetic_primus.build_corpus(tmp_path / "new", 1, seed=7, jobs=1, progress=False, camera="gm")
    assert not (tmp_path / "new").exists()

    assert synthetic_primus.corpus_camera(root) == "swept"
    assert synthetic_primus.corpus_camera(tmp_path) == distortion.DEFAULT_CAMERA  # no manifest: the default
    old = tmp_path / "old"
    shutil.copytree(root, old)
    manifest["settings"].pop("camera")
    io.write_json(old / "manifest.json", manifest)
    assert synthetic_primus.corpus_camera(old) == "fitted"
    with pytest.raises(ValueError, match=r"'camera': \('fitted', 'swept'\)"):
        synthetic_primus.build_corpus(old, 4, seed=7, jobs=1, progress=False)
    synthetic_primus.build_corpus(old, 4, seed=7, jobs=1, progress=False, camera="fitted")  # no error: same settings
    assert same_tree(root / "Corpus", old / "Corpus")  # nothing rebuilt (it would have drawn the fitted camera)


def test_fitted_camera_changes_only_the_torn_images(built, tmp_path):
    """The two cameras share every draw; only the images drawn with a torn opening differ."""
    root, _ = built
    synthetic_primus.build_corpus(tmp_path, 4, seed=7, jobs=1, progress=False, camera="fitted")
    for i in range(4):
        sid = synthetic_primus.sample_id(i)
        rng = synthetic_primus.sample_rngs(i, 7)[2]
        torn = distortion.sample_params(rng, distortion.SWEPT).sweep_reach > 0
        same = filecmp.cmp(root / "Corpus" / sid / f"{sid}_distorted.jpg",
                           tmp_path / "Corpus" / sid / f"{sid}_distorted.jpg", shallow=False)
        assert same != torn, sid
        assert filecmp.cmp(root / "Corpus" / sid / f"{sid}.png", tmp_path / "Corpus" / sid / f"{sid}.png",
                           shallow=False)


def test_resume_after_kill(built, tmp_path):
    """Kill a build mid-way, resume it, and get exactly the corpus of an uninterrupted build."""
    root, _ = built
    cmd = [sys.executable, "-m", "mtlnb", "corpus", "--out", str(tmp_path), "--n", "4", "--seed", "7",
           "--jobs", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    corpus = tmp_path / "Corpus"
    deadline = time.time() + 120
    while time.time() < deadline and not (corpus.is_dir() and any(p.name.startswith("syn") for p in corpus.iterdir())):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = sorted(p.name for p in corpus.iterdir() if not p.name.startswith("."))
    assert 1 <= len(done_before) < 4, "the kill should land between the first and the last sample"
    (corpus / ".syn000003.partial").mkdir(exist_ok=True)  # what a kill during a sample's writing leaves behind
    (corpus / ".syn000003.partial" / "syn000003.semantic").write_text("clef-G2\t")
    report = synthetic_primus.build_corpus(tmp_path, 4, seed=7, jobs=1, progress=False)
    assert report.reused == len(done_before) and report.built == 4 - len(done_before)
    assert not list(corpus.glob(".*"))
    assert same_tree(root / "Corpus", corpus)


def test_agnostic_added_to_samples_built_without_it(built, tmp_path):
    root, _ = built
    shutil.copytree(root, tmp_path / "c")
    sid = synthetic_primus.sample_id(2)
    agnostic = tmp_path / "c" / "Corpus" / sid / f"{sid}.agnostic"
    expected = agnostic.read_text()
    agnostic.unlink()
    synthetic_primus.build_corpus(tmp_path / "c", 4, seed=7, jobs=1, progress=False)
    assert agnostic.read_text() == expected


def test_failed_samples_are_reported(tmp_path, monkeypatch):
    def broken(index, seed, camera):
        if index == 1:
            raise ValueError("engraving refused")
        return real(index, seed, camera)

    real = synthetic_primus.make_sample
    monkeypatch.setattr(synthetic_primus, "make_sample", broken)
    report = synthetic_primus.build_corpus(tmp_path, 3, seed=7, jobs=1, progress=False)
    assert report.failed == {"syn000001": "ValueError: engraving refused"}
    assert "1 left out" in report.summary()
    assert primus.PrimusCorpus(tmp_path).ids() == ["syn000000", "syn000002"]
    assert '"complete": false' in (tmp_path / "manifest.json").read_text()


def test_render_audio_for_real_samples(primus_samples, tmp_path):
    corpus = tmp_path / "Corpus"
    for src in primus_samples[:2]:
        shutil.copytree(src, corpus / src.name)
    failed = synthetic_primus.render_audio(tmp_path, jobs=1, progress=False)
    assert failed == {}
    for src in primus_samples[:2]:
        tokens = encoding.read_semantic(src / f"{src.name}.semantic")
        audio, sr = sf.read(corpus / src.name / f"{src.name}.wav")
        assert len(audio) / sr == pytest.approx(encoding.semantic_duration(tokens), abs=1 / sr)


def test_cleansed_incipits_have_no_multirests():
    import numpy as np

    rng = np.random.default_rng(3)
    for _ in range(50):
        assert not any(t.startswith("multirest-") for t in synthetic_primus.cleansed_incipit(rng))
