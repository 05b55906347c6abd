"""Feature extraction and the feature cache: shapes, staleness, bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from mtlnb.camera_primus.corpus import feature_cache, features


def test_image_features_shape_and_range(tmp_path):
    img = np.full((150, 600), 255, np.uint8)
    img[50:60, 100:200] = 0  # a black block -> ones after inversion
    x = features.image_features(img)
    assert x.dtype == np.float32 and x.shape == (64, int(64 * 600 / 150))
    assert x.min() == 0.0 and x.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not a readable image"):
        features.image_features(tmp_path / "missing.jpg")


def test_cqt_features_real_audio_width(reference):
    # the baseline's preprocessing (Alfaro-Contreras et al. 2023): the real 9.0 s file gives 388 CQT frames ->
    # width 827 -> 413 CTC steps.
    audio, sr = sf.read(reference / "primus" / "audio" / "110002867-1_1_1.wav")
    x = features.cqt_features(audio, sr)
    assert x.shape == (256, 827)
    assert features.ctc_length(x.shape[1]) == 413
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_cqt_low_pitch_at_bottom():
    t = np.arange(22050 * 2) / 22050
    low = features.cqt_features(np.sin(2 * np.pi * 65.4 * t))  # C2: near the bottom of C1..C6
    high = features.cqt_features(np.sin(2 * np.pi * 1046.5 * t))  # C6: near the top
    assert np.argmax(low.mean(axis=1)) > np.argmax(high.mean(axis=1))  # row 0 is the top of the image


def test_cqt_rejects_silence_and_nan():
    with pytest.raises(ValueError, match="silent"):
        features.cqt_features(np.zeros(22050))
    with pytest.raises(ValueError, match="NaN"):
        features.cqt_features(np.full(100, np.nan))


def test_build_and_open(tiny_corpus):
    cache = feature_cache.build_cache(tiny_corpus, jobs=1, progress=False)
    assert cache.ids == ["t0", "t1", "t2", "t3"] and not cache.left_out
    x = cache.image("t1")
    assert x.shape[0] == 64 and x.dtype == np.float32
    assert cache.cqt("t1").shape[0] == 256
    assert cache.widths("image")["t1"] == x.shape[1]
    # uint8 storage: within half a quantisation step of the float features
    direct = features.image_features(tiny_corpus / "Corpus" / "t1" / "t1_distorted.jpg")
    assert np.abs(direct - x).max() <= 0.5 / 255 + 1e-6
    # the CQT is stored before its resize and resized on reading: still within half a quantisation step
    audio, sr = sf.read(tiny_corpus / "Corpus" / "t1" / "t1.wav")
    direct_cqt = features.cqt_features(audio, sr)
    assert cache.cqt("t1").shape == direct_cqt.shape == (256, cache.widths("cqt")["t1"])
    assert np.abs(direct_cqt - cache.cqt("t1")).max() <= 0.5 / 255 + 1e-6
    reopened = feature_cache.open_cache(cache.root)
    assert reopened.ids == cache.ids


def test_stale_source_is_detected_and_rebuilt(tiny_corpus):
    cache = feature_cache.build_cache(tiny_corpus, jobs=1, progress=False)
    wav = tiny_corpus / "Corpus" / "t2" / "t2.wav"
    t = np.arange(22050) / 22050
    sf.write(wav, 0.2 * np.sin(2 * np.pi * 880 * t), 22050)
    os.utime(wav, ns=(1, 1))  # a different modification time even on coarse clocks
    with pytest.raises(feature_cache.StaleCacheError, match="changed"):
        feature_cache.open_cache(cache.root)
    rebuilt = feature_cache.build_cache(tiny_corpus, jobs=1, progress=False)
    assert rebuilt.cqt("t2").shape[1] == int(256 * 44 / 120)  # 1 s of audio: 1 + 22050 // 512 = 44 frames


def test_moved_corpus_keeps_its_cache(tiny_corpus):
    cache = feature_cache.build_cache(tiny_corpus, jobs=1, progress=False)
    moved = tiny_corpus.with_name("moved")
    tiny_corpus.rename(moved)  # mv keeps modification times: every fingerprint still matches
    reopened = feature_cache.open_cache(moved / cache.root.name)
    assert reopened.corpus_root == moved.resolve() and reopened.ids == cache.ids
    stored = moved / cache.root.name / "cqt" / "t1.npy"
    before = stored.stat().st_mtime_ns
    rebuilt = feature_cache.build_cache(moved, jobs=1, progress=False)  # no StaleCacheError, nothing recomputed
    assert rebuilt.ids == cache.ids and stored.stat().st_mtime_ns == before


def test_other_settings_are_not_reused(tiny_corpus, tmp_path):
    feature_cache.build_cache(tiny_corpus, tmp_path / "c", jobs=1, progress=False)
    with pytest.raises(feature_cache.StaleCacheError, match="other settings"):
        feature_cache.build_cache(tiny_corpus, tmp_path / "c", feature_cache.FeatureSettings(dtype="float16"),
                                  jobs=1, progress=False)


@pytest.mark.parametrize("damage, reason", [
    (lambda d: (d / "t1.wav").unlink(), "t1.wav: file missing"),
    (lambda d: (d / "t1.wav").write_bytes(b"not audio"), "unreadable audio"),
    (lambda d: sf.write(d / "t1.wav", np.zeros(22050), 22050), "silent"),
    (lambda d: (d / "t1.semantic").write_text(""), "t1.semantic"),
    (lambda d: (d / "t1.semantic").write_text("clef-G2\tnote-H9_quarter\t"), "note-H9_quarter"),
    (lambda d: (d / "t1_distorted.jpg").write_bytes(b"\xff\xd8broken"), "not a readable image"),
])
def test_bad_samples_are_left_out_and_reported(tiny_corpus, damage, reason):
    damage(tiny_corpus / "Corpus" / "t1")
    cache = feature_cache.build_cache(tiny_corpus, jobs=1, progress=False)
    assert cache.ids == ["t0", "t2", "t3"]
    assert list(cache.left_out) == ["t1"] and reason in cache.left_out["t1"]
    # nothing half-written: only the good samples have feature files
    assert sorted(p.stem for p in (cache.root / "image").glob("*.npy")) == ["t0", "t2", "t3"]
    assert not list(cache.root.rglob("*.tmp*"))
