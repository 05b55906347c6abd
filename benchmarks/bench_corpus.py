"""Corpus-building throughput: our chain per stage, and the baseline's audio recipe side by side.

Ours, one process: incipit → PAE → Verovio engraving → camera distortion → JPEG; semantic → MIDI → in-process
FluidSynth → WAV; image and CQT features (the feature cache's work).
The baseline's recipe for the audio half (midi2audio's way): write the MIDI file, run the ``fluidsynth`` program once
per file (``-ni -F out.wav -r 22050``), then ``librosa.load`` and the CQT features.

Both halves are timed on the same samples in the same run, one core each (``taskset``-free: the process is single
threaded by setting the thread counts below). Prints pairs/s per stage, the ratio of our audio+features to the
recipe's, and the projected time for the 22,285-pair corpus on 16 cores.

    .venv/bin/python benchmarks/bench_corpus.py --n 30
    .venv/bin/python benchmarks/bench_corpus.py --n 30 --distortion calibrated   # the earlier camera, side by side
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30, help="samples")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--distortion", default="fitted",
                    help="camera distortion config by name: fitted (the corpus default), calibrated or literal")
    args = ap.parse_args()

    import librosa
    import soundfile as sf

    from mtlnb.camera_primus.corpus import distortion, engraving, features, incipits
    from mtlnb.camera_primus.notation import semantic
    from mtlnb.core import io, synthesis

    camera = distortion.config_named(args.distortion)
    renderer = synthesis.Renderer(22050)
    soundfont = str(renderer.soundfont)
    fluidsynth_cli = shutil.which("fluidsynth")
    t = defaultdict(float)
    out = Path(tempfile.mkdtemp(prefix="bench_corpus_"))
    features.cqt_features(np.random.default_rng(0).normal(size=22050).astype(np.float32))  # warm librosa up
    seconds_of_audio = 0.0
    for i in range(args.n):
        rng = np.random.default_rng([args.seed, i])

        def timed(stage, fn, *a, **k):
            t0 = time.perf_counter()
            r = fn(*a, **k)
            t[stage] += time.perf_counter() - t0
            return r

        tokens = timed("generate", incipits.generate_incipit, rng)
        pae = timed("pae", semantic.semantic_to_pae, tokens, carry=False)
        engraved = timed("engrave", engraving.engrave, pae)
        distorted = timed("distort", distortion.distort, engraved.image, rng, camera)
        timed("write images", lambda: (io.write_bytes(out / f"{i}.png", engraved.png),
                                       distortion.save_distorted_jpg(distorted, out / f"{i}.jpg")))
        midi = timed("midi", semantic.semantic_to_midi, tokens)
        audio = timed("synthesize (ours)", renderer.render, midi)
        seconds_of_audio += len(audio) / 22050

        def write_wav():
            with io.atomic_path(out / f"{i}.wav") as tmp:
                sf.write(tmp, audio, 22050, subtype="PCM_16")

        timed("write wav (ours)", write_wav)
        timed("image features", features.image_features, out / f"{i}.jpg")
        timed("cqt features (ours)", lambda: features.cqt_features(sf.read(out / f"{i}.wav", dtype="float32")[0]))

        if fluidsynth_cli:
            def recipe():
                midi.write(str(out / f"{i}.mid"))
                subprocess.run([fluidsynth_cli, "-ni", "-q", "-F", str(out / f"r{i}.wav"), "-r", "22050",
                                soundfont, str(out / f"{i}.mid")], check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

            timed("synthesize (recipe: fluidsynth program per file)", recipe)
            timed("cqt features (recipe: librosa.load + CQT)",
                  lambda: features.cqt_features(librosa.load(out / f"r{i}.wav", sr=22050)[0]))
    shutil.rmtree(out, ignore_errors=True)

    n = args.n
    print(f"{n} samples, {seconds_of_audio / n:.1f} s of audio each on average, one core, "
          f"distortion config {args.distortion!r}\n")
    print(f"{'stage':52s} {'ms/pair':>9s}")
    for stage, secs in t.items():
        print(f"{stage:52s} {1000 * secs / n:9.1f}")
    ours_chain = sum(v for k, v in t.items() if "recipe" not in k)
    print(f"\nwhole chain, ours: {n / ours_chain:.2f} pairs/s per core")
    projected = 22285 / (16 * n / ours_chain)
    print(f"projected 22,285 pairs on 16 cores: {projected / 60:.1f} min (goal: under 10 min)")
    if fluidsynth_cli:
        ours_audio = t["synthesize (ours)"] + t["write wav (ours)"] + t["cqt features (ours)"]
        recipe_audio = (t["synthesize (recipe: fluidsynth program per file)"]
                        + t["cqt features (recipe: librosa.load + CQT)"])
        print(f"audio + features: ours {n / ours_audio:.2f} pairs/s, recipe {n / recipe_audio:.2f} pairs/s, "
              f"ratio {recipe_audio / ours_audio:.1f}x (goal: at least 3x)")
    else:
        print("the fluidsynth program is not installed: the recipe half was skipped (apt-get install fluidsynth)")


if __name__ == "__main__":
    main()
