"""Speed of the piano study's semi-logarithmic spectrogram against madmom, on one CPU core.

    python benchmarks/bench_spectrogram.py [--seconds 60] [--repeats 5] [--out results.json]

Measures :func:`mtlnb.piano.spectrogram.semilog_spectrogram` (float64 FFT, madmom's precision, and the float32
option) on ``--seconds`` of audio, best of ``--repeats`` runs, and reports "× real time" (audio seconds per compute
second).
madmom's LogarithmicFilteredSpectrogram with the same options is timed in the same run where madmom imports;
elsewhere (its PyPI release does not import on current Python) the figure recorded on the project's 2-core
build machine is printed instead, marked as recorded.
"""

from __future__ import annotations

import os

# One core: set before NumPy/SciPy load their BLAS and FFT thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from mtlnb.core import io  # noqa: E402
from mtlnb.piano import spectrogram  # noqa: E402

MADMOM_RECORDED_X_REALTIME = 400.0  # madmom git HEAD, 60 s of audio, one core of the project's build machine


def _best_time(fn, repeats: int) -> float:
    fn()  # warm-up: plans, caches, page faults
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _madmom_time(signal: np.ndarray, repeats: int) -> float | None:
    try:
        from madmom.audio.spectrogram import LogarithmicFilteredSpectrogram
    except Exception:  # noqa: BLE001 - any import failure means "not available here"
        return None
    cfg = spectrogram.SEMILOG

    def run():
        LogarithmicFilteredSpectrogram(signal, sample_rate=cfg.sr, frame_size=cfg.frame_size, fft_size=cfg.frame_size,
                                       hop_size=cfg.hop, num_bands=cfg.bands_per_octave, fmin=cfg.fmin,
                                       fmax=cfg.fmax, fref=cfg.fref, norm_filters=True, unique_filters=True,
                                       add=1)

    return _best_time(run, repeats)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the test audio")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the best is reported")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    sr = spectrogram.SEMILOG.sr
    rng = np.random.default_rng(0)
    t = np.arange(int(args.seconds * sr)) / sr
    # Content does not change the cost; a few partials over noise keep the numbers realistic anyway.
    signal = (0.05 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 220 * t)
              + 0.1 * np.sin(2 * np.pi * 1760 * t)).astype(np.float32)

    results = {"seconds": args.seconds, "repeats": args.repeats, "machine": platform.processor() or platform.machine(),
               "numpy": np.__version__}
    for dtype in ("float64", "float32"):
        cfg = spectrogram.SemilogConfig(fft_dtype=dtype)
        secs = _best_time(lambda: spectrogram.semilog_spectrogram(signal, sr, cfg), args.repeats)
        results[f"mtlnb_{dtype}_s"] = secs
        results[f"mtlnb_{dtype}_x_realtime"] = args.seconds / secs
    madmom_secs = _madmom_time(signal, args.repeats)
    if madmom_secs is None:
        results["madmom_x_realtime"] = MADMOM_RECORDED_X_REALTIME
        results["madmom_source"] = "recorded (madmom does not import here)"
    else:
        results["madmom_s"] = madmom_secs
        results["madmom_x_realtime"] = args.seconds / madmom_secs
        results["madmom_source"] = "measured in this run"

    print(f"semi-logarithmic spectrogram of {args.seconds:g} s of audio, one core, best of {args.repeats}:")
    for dtype in ("float64", "float32"):
        print(f"  mtlnb ({dtype} FFT): {results[f'mtlnb_{dtype}_s'] * 1000:8.1f} ms  "
              f"{results[f'mtlnb_{dtype}_x_realtime']:7.0f}x real time  "
              f"({results[f'mtlnb_{dtype}_x_realtime'] / results['madmom_x_realtime']:.2f}x madmom)")
    print(f"  madmom:                           {results['madmom_x_realtime']:7.0f}x real time  "
          f"({results['madmom_source']})")
    if args.out:
        io.write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
