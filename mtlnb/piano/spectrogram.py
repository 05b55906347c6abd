"""The piano study's input: the semi-logarithmic spectrogram of Kelz et al. (2019).

madmom's ``LogarithmicFilteredSpectrogram`` as the authors' ICASSP19 code configures it (``rainerkelz/ICASSP19``),
reimplemented in NumPy because madmom's PyPI release no longer imports:

- :func:`semilog_spectrogram`: 44.1 kHz mono audio → float32 ``(ceil(n_samples / 882), 144)``, 50 frames per
  second, ``log10(1 + |STFT| @ filterbank)``;
- :func:`semilog_filterbank`, :func:`semilog_center_frequencies`: madmom's normalised, unique triangular
  LogarithmicFilterbank (4096-point FFT, 24 bands per octave, 30 Hz to 10 kHz: 144 bands) and its band centres;
- :class:`SemilogConfig` / :data:`SEMILOG`: the settings, part of a piano feature cache's identity
  (:mod:`mtlnb.piano.data`).

Checked against madmom's own numbers (the tests, with madmom's output as optional reference data): the filterbank
is bit-identical, the spectrogram agrees within 3e-7 (float64 FFT) or 2e-6 (float32 FFT).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.sparse


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
