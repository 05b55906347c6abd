"""The semi-logarithmic spectrogram of the piano study against madmom's own numbers and hand-derived facts."""

from __future__ import annotations

import numpy as np
import pytest

from mtlnb.piano import spectrogram


@pytest.fixture(scope="module")
def madmom_spec(reference):
    return np.load(reference / "madmom" / "logfilt_spectrogram.npz")


def test_filterbank_equals_madmom(madmom_spec):
    fb = spectrogram.semilog_filterbank(sr=44100, n_fft=4096, bands_per_octave=24, fmin=30, fmax=10000)
    assert fb.shape == (2048, 144) and fb.dtype == np.float32
    np.testing.assert_array_equal(fb, madmom_spec["filterbank"])
    np.testing.assert_array_equal(spectrogram.semilog_center_frequencies(), madmom_spec["center_frequencies"])


def test_filterbank_shape_facts():
    """144 bands; at the bottom the log grid is denser than the FFT bins (10.77 Hz), so the bands are single,
    consecutive bins: 440 * (2^(1/24) - 1) * 2^(k/24) < 10.77 Hz below ~367 Hz (bin 34)."""
    fb = spectrogram.semilog_filterbank()
    bin_hz = 44100 / 4096
    nonzero = (fb > 0).sum(axis=0)
    assert np.all(nonzero[:33] == 1) and nonzero[33] == 2
    np.testing.assert_array_equal(np.argmax(fb[:, :33], axis=0), np.arange(4, 37))
    # The lowest grid frequency, 440 * 2^(-92/24) = 30.9 Hz, maps to bin 3: the first filter's start, not a band.
    np.testing.assert_allclose(fb.sum(axis=0), 1.0, rtol=1e-6)
    centres = spectrogram.semilog_center_frequencies() / bin_hz
    np.testing.assert_allclose(np.diff(centres[:35]), 1.0)  # madmom's bank: the first 35 centres are linear
    assert centres[35] - centres[34] == pytest.approx(2.0)
    assert centres[-1] * bin_hz == pytest.approx(9668.4, abs=0.1)
    assert fb[930:].sum() == 0  # nothing above the last band's top (10 kHz is bin 929)


def test_spectrogram_equals_madmom(madmom_spec):
    signal = madmom_spec["signal"]
    assert signal.dtype == np.float32 and int(madmom_spec["sample_rate"]) == 44100
    ours = spectrogram.semilog_spectrogram(signal, sr=44100)
    assert ours.shape == (150, 144) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, madmom_spec["spectrogram"], rtol=0, atol=1e-5)
    fast = spectrogram.semilog_spectrogram(signal, config=spectrogram.SemilogConfig(fft_dtype="float32"))
    np.testing.assert_allclose(fast, madmom_spec["spectrogram"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("n, frames", [(0, 0), (1, 1), (882, 1), (883, 2), (44100, 50), (44101, 51)])
def test_frame_count_is_ceil(n, frames):
    assert spectrogram.semilog_n_frames(n) == frames
    assert spectrogram.semilog_spectrogram(np.zeros(n, np.float32)).shape == (frames, 144)


def test_impulse_lands_in_the_frames_that_cover_it():
    """Frame j covers samples [882 j - 2048, 882 j + 2048): an impulse at 8,820 is seen by frames 8..12 only."""
    x = np.zeros(44100, np.float32)
    x[8820] = 1.0
    spec = spectrogram.semilog_spectrogram(x)
    assert spec.shape == (50, 144)
    assert np.flatnonzero(spec.sum(axis=1) > 0).tolist() == [8, 9, 10, 11, 12]
    # frame 10 is centred on the impulse, where the Hann window is ~1: a flat spectrum of magnitude ~1
    np.testing.assert_allclose(spec[10], np.log10(2.0), atol=1e-3)


def test_sine_peaks_at_its_band():
    sr = 44100
    t = np.arange(sr) / sr
    spec = spectrogram.semilog_spectrogram((0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32))
    centres = spectrogram.semilog_center_frequencies()
    band = int(np.argmax(spec[25]))
    assert abs(centres[band] - 440.0) < 11.0  # one FFT bin


def test_block_size_does_not_change_the_result():
    """Blocks only bound memory; the matrix product may round differently per block shape (float32 ulps)."""
    x = np.random.default_rng(0).standard_normal(30000).astype(np.float32) * 0.1
    np.testing.assert_allclose(spectrogram.semilog_spectrogram(x, block=7),
                               spectrogram.semilog_spectrogram(x, block=64), rtol=0, atol=1e-6)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="44100 Hz"):
        spectrogram.semilog_spectrogram(np.zeros(100, np.float32), sr=22050)
    with pytest.raises(ValueError, match="float"):
        spectrogram.semilog_spectrogram(np.zeros(100, np.int16))
    with pytest.raises(ValueError, match="mono"):
        spectrogram.semilog_spectrogram(np.zeros((100, 2), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        spectrogram.semilog_spectrogram(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError, match="fmin"):
        spectrogram.semilog_filterbank(fmin=100, fmax=50)
