"""Network input features.

Camera-PrIMuS (the preprocessing of the late-fusion baseline, Alfaro-Contreras et al. 2023):

- :func:`image_features`: distorted score image → float32 ``(64, W)`` in [0, 1], ink high.
- :func:`cqt_features`: 22,050 Hz audio → float32 ``(256, W)`` in [0, 1], low pitches at the bottom.

(The piano study's input, the semi-logarithmic spectrogram, is :mod:`mtlnb.piano.spectrogram`.)
"""

from __future__ import annotations

import os

import cv2
import librosa
import numpy as np

IMAGE_HEIGHT = 64  # OMR input height (baseline)
CQT_HEIGHT = 256  # A2S input height after the resize (baseline)
CQT_SR = 22050  # sample rate the corpus audio is rendered at (baseline)
CQT_HOP = 512  # samples between CQT columns (baseline)
CQT_BINS = 120  # 5 octaves at 24 bins per octave from C1 (baseline)
CQT_BINS_PER_OCTAVE = 24
CQT_TOP_DB = 80.0  # the dB floor of librosa.amplitude_to_db; (80 + dB) / 80 maps it to [0, 1]


def load_grayscale(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 grayscale ``(H, W)``; ``ValueError`` naming the file if it cannot be read."""
    img = cv2.imread(os.fspath(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    return img


def image_features(image: np.ndarray | str | os.PathLike, height: int = IMAGE_HEIGHT) -> np.ndarray:
    """The OMR network's input for one score image.

    Parameters
    ----------
    image : ndarray (H, W) uint8 grayscale, or a path to an image file
        Ink dark on light paper, as in ``<id>_distorted.jpg``.
    height : int
        Output height in pixels.

    Returns
    -------
    ndarray float32 (height, W')
        ``(255 - x) / 255`` (ink → 1) resized with area interpolation to ``height`` rows, keeping the aspect
        ratio: ``W' = int(height * W / H)``.  The baseline normalises before resizing, so do we.
    """
    img = load_grayscale(image) if not isinstance(image, np.ndarray) else image
    if img.ndim != 2 or min(img.shape) == 0:
        raise ValueError(f"image_features expects a non-empty (H, W) grayscale image, got shape {img.shape}")
    x = (255.0 - img.astype(np.float64)) / 255.0
    width = int(height * img.shape[1] / img.shape[0])
    if width < 1:
        raise ValueError(f"image of shape {img.shape} is too narrow to resize to height {height}")
    return cv2.resize(x, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def cqt_scaled(audio: np.ndarray, sr: int = CQT_SR) -> np.ndarray:
    """The CQT image before its resize: float32 ``(120, frames)`` in [0, 1], low pitches in the bottom rows.

    |CQT| (hop 512, 120 bins, 24 per octave, fmin C1) → dB relative to the maximum → frequency axis flipped (as an
    image) → ``(80 + dB) / 80``.  ``frames = 1 + n_samples // 512``.  The feature cache stores this (4.5× smaller
    than the resized features) and :func:`resize_cqt` finishes the job when a sample is read.

    Raises
    ------
    ValueError
        For empty, non-finite or silent audio (the dB scale relative to the maximum is undefined for silence).
    """
    y = np.asarray(audio, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"cqt_features expects non-empty mono audio (n_samples,), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("cqt_features: audio contains NaN or infinite samples")
    if not np.any(y):
        raise ValueError("cqt_features: audio is silent")
    cqt = np.abs(librosa.cqt(y, sr=sr, hop_length=CQT_HOP, n_bins=CQT_BINS, bins_per_octave=CQT_BINS_PER_OCTAVE))
    db = librosa.amplitude_to_db(cqt, ref=np.max, top_db=CQT_TOP_DB)
    return ((CQT_TOP_DB + np.flipud(db)) / CQT_TOP_DB).astype(np.float32)


def resize_cqt(x: np.ndarray, height: int = CQT_HEIGHT) -> np.ndarray:
    """``(120, frames)`` → float32 ``(height, int(height * frames / 120))``, keeping the aspect ratio as the
    baseline did (this also stretches time by 256/120).  Bilinear: OpenCV's default, which the baseline used here
    (the image path uses area interpolation)."""
    width = int(height * x.shape[1] / x.shape[0])
    return cv2.resize(x.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def cqt_features(audio: np.ndarray, sr: int = CQT_SR, height: int = CQT_HEIGHT) -> np.ndarray:
    """The A2S network's input for one recording.

    Parameters
    ----------
    audio : ndarray (n_samples,) float
        Mono signal at ``sr`` Hz.
    sr : int
        Sample rate in Hz; the baseline renders at 22,050 Hz.
    height : int
        Output height in pixels.

    Returns
    -------
    ndarray float32 (height, W)
        :func:`cqt_scaled` resized by :func:`resize_cqt`: values in [0, 1], low pitches at the bottom,
        ``W = int(height * frames / 120)``.
    """
    return resize_cqt(cqt_scaled(audio, sr), height)


def ctc_length(width: int) -> int:
    """CTC input length for a resized feature of ``width`` columns: both CRNNs halve the time axis once."""
    return width // 2
