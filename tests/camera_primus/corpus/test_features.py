"""The two networks' inputs: the OMR image (height 64, ink -> 1) and the A2S CQT (120 bins, resized to 256)."""

from __future__ import annotations

import numpy as np
import pytest

from mtlnb.camera_primus.corpus import features


def test_image_features_normalise_ink_to_one_and_keep_the_aspect_ratio():
    img = np.full((128, 400), 255, np.uint8)
    img[60:68, :] = 0  # a black stave line on white paper
    x = features.image_features(img)
    assert x.dtype == np.float32 and x.shape == (64, 200)
    assert x.min() >= 0 and x.max() <= 1
    assert x[31, 100] == pytest.approx(1.0) and x[0, 100] == pytest.approx(0.0)


def test_image_features_read_files_and_name_unreadable_ones(tmp_path):
    import cv2

    path = tmp_path / "x.png"
    cv2.imwrite(str(path), np.full((32, 64), 200, np.uint8))
    assert features.image_features(path).shape == (64, 128)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match="bad.jpg: not a readable image"):
        features.image_features(bad)


def test_cqt_features_shape_range_and_pitch_axis():
    sr = features.CQT_SR
    t = np.arange(sr) / sr
    low = np.sin(2 * np.pi * 110.0 * t)  # A2
    x = features.cqt_scaled(low)
    assert x.shape == (features.CQT_BINS, 1 + sr // features.CQT_HOP) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() == pytest.approx(1.0)
    peak_row = int(np.argmax(x[:, x.shape[1] // 2]))
    assert peak_row > features.CQT_BINS // 2  # low pitches in the bottom rows (the image is flipped)
    y = features.cqt_features(low)
    assert y.shape == (features.CQT_HEIGHT, int(features.CQT_HEIGHT * x.shape[1] / features.CQT_BINS))


@pytest.mark.parametrize("audio, message", [(np.zeros(100), "silent"), (np.array([np.nan, 1.0]), "NaN"),
                                            (np.zeros((2, 3)), "mono")])
def test_cqt_refuses_bad_audio(audio, message):
    with pytest.raises(ValueError, match=message):
        features.cqt_features(audio)


def test_ctc_length_halves_the_time_axis():
    assert features.ctc_length(101) == 50
