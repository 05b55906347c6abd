"""Network input features.

Camera-PrIMuS (the baseline's preprocessing, ``late-fusion-baseline.md`` §3):

- :func:`image_features`: distorted score image → float32 ``(64, W)`` in [0, 1], ink high.
- :func:`cqt_features`: 22,050 Hz audio → float32 ``(256, W)`` in [0, 1], low pitches at the bottom.

The piano study's semi-logarithmic spectrogram lives further down in this module.
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


# --- Piano study: semi-logarithmic spectrogram (Kelz et al.) ---
#
# madmom's LogarithmicFilteredSpectrogram as the ICASSP19 code configures it (``piano-mtl.md`` §Input features),
# reimplemented in NumPy because madmom's PyPI release no longer imports.  Checked against madmom's own numbers
# (``reference/madmom/logfilt_spectrogram.npz``): the filterbank is bit-identical, the spectrogram agrees within
# 3e-7 (float64 FFT) or 2e-6 (float32 FFT).

from dataclasses import dataclass  # noqa: E402  (this section is appended below the lead's code)
from functools import lru_cache  # noqa: E402

import scipy.fft  # noqa: E402
import scipy.sparse  # noqa: E402


@dataclass(frozen=True)
class SemilogConfig:
    """Settings of the piano study's input spectrogram (Kelz et al. 2019, via madmom and ICASSP19)."""

    sr: int = 44100  # Hz; MAESTRO's 48 kHz audio is resampled to this first (the authors' pipeline)
    frame_size: int = 4096  # samples per frame = FFT size (93 ms): resolves semitones down to ~400 Hz
    hop: int = 882  # samples between frame centres: 50 frames per second, the targets' rate
    bands_per_octave: int = 24  # two bands per semitone in the logarithmic part
    fmin: float = 30.0  # Hz, below the piano's lowest fundamental (27.5 Hz) the way madmom rounds it
    fmax: float = 10000.0  # Hz; higher partials add little for pitch
    fref: float = 440.0  # Hz, the band grid is tuned to A4
    fft_dtype: str = "float64"  # madmom's FFT precision; "float32" is ~1.6x faster and stays within 2e-6

    @property
    def fps(self) -> float:
        """Frames per second (50 with the defaults)."""
        return self.sr / self.hop


SEMILOG = SemilogConfig()


def _log_frequencies(bands_per_octave: int, fmin: float, fmax: float, fref: float) -> np.ndarray:
    """``fref · 2^(k / bands_per_octave)`` for every integer k with the result in [fmin, fmax] (madmom's rule)."""
    left = np.floor(np.log2(fmin / fref) * bands_per_octave)
    right = np.ceil(np.log2(fmax / fref) * bands_per_octave)
    freqs = fref * 2.0 ** (np.arange(left, right) / bands_per_octave)
    freqs = freqs[np.searchsorted(freqs, fmin):]
    return freqs[: np.searchsorted(freqs, fmax, "right")]


def _nearest_bins(freqs: np.ndarray, bin_freqs: np.ndarray) -> np.ndarray:
    """Index of the nearest FFT bin for each frequency; a tie goes to the higher bin, as in madmom."""
    idx = np.clip(np.searchsorted(bin_freqs, freqs), 1, len(bin_freqs) - 1)
    left, right = bin_freqs[idx - 1], bin_freqs[idx]
    return idx - (freqs - left < right - freqs)


@lru_cache(maxsize=8)
def _semilog_bank(sr: int, n_fft: int, bands_per_octave: int, fmin: float, fmax: float, fref: float):
    if n_fft < 4 or n_fft % 2:
        raise ValueError(f"semilog_filterbank: n_fft must be an even number >= 4, got {n_fft}")
    if not 0 < fmin < fmax <= sr / 2:
        raise ValueError(f"semilog_filterbank: need 0 < fmin < fmax <= sr/2, got fmin={fmin}, fmax={fmax}, sr={sr}")
    n_bins = n_fft // 2  # madmom drops the Nyquist bin
    bin_freqs = np.fft.fftfreq(n_fft, 1.0 / sr)[:n_bins]
    bins = np.unique(_nearest_bins(_log_frequencies(bands_per_octave, fmin, fmax, fref), bin_freqs))
    if len(bins) < 3:
        raise ValueError(f"semilog_filterbank: fewer than 3 distinct FFT bins between {fmin} and {fmax} Hz")
    bank = np.zeros((n_bins, len(bins) - 2), dtype=np.float32)  # madmom's filter dtype
    centres = np.empty(len(bins) - 2, dtype=np.int64)
    for band, (start, centre, stop) in enumerate(zip(bins[:-2], bins[1:-1], bins[2:])):
        if stop - start < 2:  # collided log-spaced centres: the band becomes the single bin `start`
            centre, stop = start, start + 1
        tri = np.zeros(stop - start, dtype=np.float32)
        tri[: centre - start] = np.linspace(0, 1, centre - start, endpoint=False)
        tri[centre - start:] = np.linspace(1, 0, stop - centre, endpoint=False)
        tri /= tri.sum()  # normalised in float32, as madmom does, to stay bit-identical
        bank[start:stop, band] = tri
        # madmom's centre: the middle of a flat filter, else the argmax over [first, last) non-zero bin.  The
        # half-open range puts a two-bin filter's centre on its lower bin; kept so the frequencies match madmom's.
        nz = np.flatnonzero(bank[:, band])
        lo, hi = nz[0], nz[-1]
        centres[band] = lo + (hi - lo) // 2 if bank[lo, band] == bank[hi, band] else lo + np.argmax(bank[lo:hi, band])
    bank.setflags(write=False)
    cfreqs = bin_freqs[centres]
    cfreqs.setflags(write=False)
    return bank, cfreqs


def semilog_filterbank(sr: int = 44100, n_fft: int = 4096, bands_per_octave: int = 24, fmin: float = 30.0,
                       fmax: float = 10000.0, fref: float = 440.0) -> np.ndarray:
    """madmom's normalised, unique triangular LogarithmicFilterbank.

    Band centres ``fref · 2^(k/bands_per_octave)`` in [fmin, fmax] are mapped to the nearest FFT bin, duplicates
    are removed, and each consecutive (start, centre, stop) bin triple becomes a triangle normalised to sum 1
    (a single bin where stop - start < 2).  With the defaults the first 35 bands are single bins 10.8 Hz apart
    (the "semi-logarithmic" part) and there are 144 bands.

    Parameters
    ----------
    sr : int
        Sample rate in Hz.
    n_fft : int
        FFT size in samples (even).
    bands_per_octave, fmin, fmax, fref
        Band grid: bands per octave, lowest and highest centre frequency (Hz), reference frequency (Hz).

    Returns
    -------
    ndarray float32 (n_fft // 2, n_bands), read-only
        Column j holds band j's weights over the FFT bins 0 .. n_fft/2 - 1 (no Nyquist bin).
    """
    return _semilog_bank(int(sr), int(n_fft), int(bands_per_octave), float(fmin), float(fmax), float(fref))[0]


def semilog_center_frequencies(sr: int = 44100, n_fft: int = 4096, bands_per_octave: int = 24, fmin: float = 30.0,
                               fmax: float = 10000.0, fref: float = 440.0) -> np.ndarray:
    """Centre frequency of each band of :func:`semilog_filterbank`, in Hz, as madmom reports it.

    Returns
    -------
    ndarray float64 (n_bands,), read-only
        43.1 Hz … 9,668 Hz with the defaults.
    """
    return _semilog_bank(int(sr), int(n_fft), int(bands_per_octave), float(fmin), float(fmax), float(fref))[1]


def semilog_n_frames(n_samples: int, hop: int = SEMILOG.hop) -> int:
    """Number of spectrogram frames for ``n_samples`` of audio: ``ceil(n_samples / hop)`` (madmom's default)."""
    return -(-int(n_samples) // int(hop))


def semilog_spectrogram(signal: np.ndarray, sr: int = 44100, config: SemilogConfig = SEMILOG,
                        block: int = 64) -> np.ndarray:
    """The piano networks' input: ``log10(1 + |STFT| @ filterbank)``, 50 frames per second.

    Frame ``i`` is the ``frame_size`` samples centred on sample ``i · hop`` (samples before the start and after
    the end are zeros), weighted with the symmetric Hann window ``np.hanning(frame_size)`` (unscaled: the
    signal is float), and only the first ``frame_size / 2`` FFT bins are kept.  Magnitudes are rounded to
    float32 as madmom's complex64 STFT does.

    Parameters
    ----------
    signal : ndarray (n_samples,) float
        Mono audio at ``sr`` Hz (float; integer PCM must be scaled to [-1, 1] first).
    sr : int
        Sample rate in Hz; must equal ``config.sr`` (resample with :func:`mtlnb.piano.maestro.load_audio`).
    config : SemilogConfig
        Frame, hop and band settings.
    block : int
        Frames transformed at once: bounds memory (``block · frame_size`` doubles) for hour-long pieces and
        keeps the working set in cache; it does not change the result.

    Returns
    -------
    ndarray float32 (ceil(n_samples / hop), n_bands)
        144 bands with the defaults; values >= 0.
    """
    x = np.asarray(signal)
    if x.ndim != 1:
        raise ValueError(f"semilog_spectrogram expects mono audio (n_samples,), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"semilog_spectrogram expects float audio in [-1, 1], got dtype {x.dtype}")
    if int(sr) != config.sr:
        raise ValueError(f"semilog_spectrogram: audio is at {sr} Hz but the settings expect {config.sr} Hz; resample")
    if not np.all(np.isfinite(x)):
        raise ValueError("semilog_spectrogram: audio contains NaN or infinite samples")
    if config.fft_dtype not in ("float64", "float32"):
        raise ValueError(f"SemilogConfig.fft_dtype must be 'float64' or 'float32', got {config.fft_dtype!r}")
    if block < 1:
        raise ValueError(f"semilog_spectrogram: block must be >= 1, got {block}")
    bank = semilog_filterbank(config.sr, config.frame_size, config.bands_per_octave, config.fmin, config.fmax,
                              config.fref)
    # Bins above the last band's top carry no weight: skipping them halves the work.  The product is sparse
    # (each band spans a few bins): 2.5x faster than a dense one, and free of BLAS threads, which slow the
    # product tenfold when another process holds the second core.
    n_used = int(np.flatnonzero(bank.any(axis=1))[-1]) + 1
    bank_t = scipy.sparse.csr_matrix(bank[:n_used].T)  # (n_bands, n_used)
    n, hop, size = len(x), config.hop, config.frame_size
    n_frames = semilog_n_frames(n, hop)
    half = size // 2
    out = np.empty((n_frames, bank.shape[1]), dtype=np.float32)
    if n_frames == 0:
        return out
    # Zero padding: `half` before the first sample, enough after the last frame's end.
    padded = np.zeros(half + n_frames * hop + half, dtype=x.dtype)
    padded[half:half + n] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)[::hop][:n_frames]  # (n_frames, size) view
    ftype = np.dtype(config.fft_dtype)
    window = np.hanning(size).astype(ftype)
    buf = np.empty((block, size), dtype=ftype)
    for a in range(0, n_frames, block):
        chunk = frames[a:a + block]
        windowed = np.multiply(chunk, window, out=buf[: len(chunk)])
        spec = scipy.fft.rfft(windowed, axis=1, workers=1)[:, :n_used]
        magnitude = np.abs(spec.astype(np.complex64, copy=False))  # madmom keeps a complex64 STFT
        out[a:a + len(chunk)] = (bank_t @ magnitude.T).T
    np.log10(out + np.float32(1), out=out)
    return out
