"""The synthetic piano performances: how they play (beside MAESTRO) and how fast they are made, per generator.

    python benchmarks/bench_piano_performances.py [--n 8] [--seconds 60] [--seed 0] [--rounds 2] [--maestro DIR]

For each generator of ``mtlnb.piano.performance.CONFIGS`` ("simple", the first one, and "pianist", the default),
side by side in one process and alternating over ``--rounds`` rounds (the better round counts, as machines shared
with other work slow some rounds down):

- **compose**: the music alone (``performance.compose``: notes and pedal curve in memory), pieces/s;
- **generate**: what ``python -m mtlnb piano-corpus --jobs 1`` does: compose, write the MIDI, render 44.1 kHz audio
  with FluidSynth, write the WAV and the CSV (``performance.generate``, one process), pieces/s.

Then the statistics of each generator's set (``mtlnb.piano.performance_stats``: pretty_midi, key-release note
lengths, polyphony while sounding, pedal down at CC64 >= 64), beside the MAESTRO values the pianist generator is
tuned to and, with ``--maestro``, a folder of real MAESTRO MIDI files (or a MAESTRO-layout folder).
Only ratios between the generators are comparable across machines.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

from mtlnb.piano import maestro, performance, performance_stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="pieces per generator")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of each piece")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds; the faster of each is kept")
    ap.add_argument("--maestro", default=None, help="real MAESTRO MIDI files to compare with (a file or folder)")
    args = ap.parse_args()

    styles = list(performance.CONFIGS)
    speed = {s: {"compose pieces/s": 0.0, "generate pieces/s": 0.0} for s in styles}
    roots = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for style in styles if r % 2 == 0 else styles[::-1]:
                config = performance.CONFIGS[style]
                t = time.perf_counter()
                for i in range(args.n):
                    performance.compose(args.seed, i, args.seconds, config)
                speed[style]["compose pieces/s"] = max(speed[style]["compose pieces/s"],
                                                       args.n / (time.perf_counter() - t))
                roots[style] = Path(tmp) / f"{style}-{r}"
                t = time.perf_counter()
                performance.generate(roots[style], args.n, args.seconds, seed=args.seed, workers=1, progress=False,
                                     config=config)
                speed[style]["generate pieces/s"] = max(speed[style]["generate pieces/s"],
                                                        args.n / (time.perf_counter() - t))
        sets = {f"{style} generator": [p.midi_path for p in maestro.pieces(roots[style])] for style in styles}
        if args.maestro:
            sets["MAESTRO (given files)"] = args.maestro
        table = performance_stats.compare(sets)
    speed_table = pd.DataFrame(speed).T
    speed_table.loc["pianist / simple"] = speed_table.loc["pianist"] / speed_table.loc["simple"]
    print(f"{platform.processor() or platform.machine()}; {args.n} pieces x {args.seconds:g} s, seed {args.seed}, "
          f"best of {args.rounds} rounds")
    print(speed_table.round(3).to_string())
    print()
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
