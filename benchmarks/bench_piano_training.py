"""Training speed of the piano networks: this code against an earlier version, side by side; GPU projections.

    python benchmarks/bench_piano_training.py compare [--ref HEAD] [--maps 16] [--rounds 4] [--steps 20] [--out r.json]
    python benchmarks/bench_piano_training.py project [--threads 1] [--steps 5] [--batch 64] [--maps 96] [--out r.json]

**compare** (the default) times one SGD-Nesterov update of the mini profile's networks (hard sharing at ``--maps``
stem maps, cross-stitch "full" with half of them per column; batch 64, η 0.01) with the package of git revision
``--ref`` ("old": ``git archive <ref> mtlnb``, extracted into a temporary folder) and with the working tree's
:mod:`mtlnb.piano` twice: as the study trains ("new", its default noise source) and drawing the noise layers'
numbers fresh from torch's generator ("generator", ``ModelSpec.noise``).  Each runs in its own subprocess on one
torch thread (``PYTHONPATH`` chooses the version), the three taking turns over ``--rounds`` rounds so that a drift
of the shared machine hits all.  An update is what the training loop does: a batch read from a feature cache
(random frames of a synthetic cache in the real layout, 20 pieces of 3,050 frames as in mini), the task's loss,
backward, the optimiser step, with the allocator set as the version's training entry points set it.  Printed per
network: per-update seconds, wall clock and CPU time of the process (medians over all timed updates of all rounds;
on a shared machine the CPU time is the steadier one) and their ratios to old, and the largest relative difference
of the losses over the first updates from the same seed between old and each new one: "generator" draws the old
code's numbers, so its losses are old's to float rounding (the same training); "new" differs by its other noise
stream (:class:`mtlnb.piano.networks.NoiseTable`) where ``--ref`` predates it.

**project** (the earlier report) measures the networks at ``--maps`` on random inputs — forward, the five task
losses, backward, step — counts forward FLOPs per frame (``torch.utils.flop_counter``: 2 per multiply-add of the
convolutions, linear layers and cross-stitch products; a training update ≈ 3 × forward) and projects GPU-hours of
the paper's grids: 680,000 updates per configuration (§V) plus, on our reading of "20.000 × 34", 34 validation
passes over MAESTRO v1's validation split (15.3 h = 2.75 M frames), for 22 hard-sharing and 8 cross-stitch
configurations, assuming the GPU sustains ``--utilisation`` (default 30 %) of its FP32 peak and an update never
takes less than ``--floor-ms`` (default 2 ms).  Peaks: Tesla K40 (the paper's GPU) 4.29 TFLOPS, H100 SXM 67 TFLOPS
(FP32).  The FLOP counter's own backward figures are not used: it over-counts grouped-convolution backward passes.
"""

from __future__ import annotations

import os

# One core: set before torch loads its thread pools (the workers inherit it).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARCHS = ("hard", "cross_stitch")  # the mini grid's two kinds of network (cross-stitch: full, balanced)
CACHE_PIECES, CACHE_FRAMES = 20, 3050  # mini's training split: 20 pieces of 60 s (+ ring-out) at 50 fps

UPDATES = 680_000  # per configuration (§V)
EVALS = 34  # validation passes per configuration (our reading of "20.000 × 34")
VAL_FRAMES = 15.3 * 3600 * 50  # MAESTRO v1 validation split: 15.3 h at 50 fps (Hawthorne et al. 2019, Table 1)
CONFIGS = {"hard": 22, "cross_stitch_full": 4, "cross_stitch_detached": 4}  # Tables I+II, III+IV (2 × 2 each)


# ------------------------------------------------------------------------------------- project: FLOPs and GPUs


def networks(maps: int | None) -> dict[str, torch.nn.Module]:
    from mtlnb.piano import cross_stitch as CS, networks as P

    hard = P.HARD_SHARING if maps is None else P.HARD_SHARING.with_maps(maps)
    cs = CS.CROSS_STITCH if maps is None else CS.CROSS_STITCH.with_maps(maps // 2)
    return {"icassp19 (3 heads)": P.HardSharingNet(P.ICASSP19), "hard": P.HardSharingNet(hard),
            "cross_stitch_full": CS.CrossStitchNet(cs, "full"),
            "cross_stitch_detached": CS.CrossStitchNet(cs, "detached")}


def forward_flops(model: torch.nn.Module, batch: int) -> float:
    """Forward FLOPs per frame (eval mode: the noise layers' elementwise work is not counted anyway)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(batch, 11, 144))
    return counter.get_total_flops() / batch


def time_updates(model: torch.nn.Module, batch: int, steps: int) -> float:
    """Seconds per SGD-Nesterov update, mean over ``steps`` after one warm-up."""
    from mtlnb.piano import networks as P

    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 11, 144)
    targets = {t: torch.rand(batch, 1 if t == "sustain" else 88) for t in P.TASKS}

    def update():
        out = model(x)
        loss = sum(torch.nn.functional.binary_cross_entropy_with_logits(v, targets[t]) if t in P.BINARY
                   else torch.nn.functional.mse_loss(v, targets[t]) for t, v in out.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    update()
    t0 = time.perf_counter()
    for _ in range(steps):
        update()
    return (time.perf_counter() - t0) / steps


def project(argv: list[str]) -> dict:
    """The ``project`` command (module docstring)."""
    from _gpu_projection import H100_SXM_FP32, TESLA_K40_FP32, gpu_seconds

    gpus = {"Tesla K40 (paper)": TESLA_K40_FP32, "H100 SXM (FP32)": H100_SXM_FP32}  # FP32 peak FLOP/s
    parser = argparse.ArgumentParser(prog="bench_piano_training.py project")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: see the report on sharing)")
    parser.add_argument("--steps", type=int, default=5, help="timed updates per network")
    parser.add_argument("--batch", type=int, default=64, help="minibatch (the paper: 64)")
    parser.add_argument("--maps", type=int, default=None, help="stem maps of the hard net (default: the paper's 96)")
    parser.add_argument("--utilisation", type=float, default=0.30, help="assumed share of the GPU's FP32 peak")
    parser.add_argument("--floor-ms", type=float, default=2.0, help="assumed minimum GPU time per update (ms)")
    parser.add_argument("--out", default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    from mtlnb.piano import networks as P

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} thread(s), batch {args.batch}")
    print("MEASURED here (CPU) and COUNTED (FLOPs):")
    print(f"{'network':<24}{'parameters':>12}{'fwd MFLOP/frame':>17}{'s/update':>10}{'frames/s':>10}{'GFLOP/s':>9}")
    results = {"threads": args.threads, "batch": args.batch, "maps": args.maps, "networks": {}}
    for name, model in networks(args.maps).items():
        fwd = forward_flops(model, args.batch)
        sec = time_updates(model, args.batch, args.steps)
        results["networks"][name] = {"parameters": P.count_parameters(model), "forward_flops_per_frame": fwd,
                                     "seconds_per_update": sec, "frames_per_second": args.batch / sec}
        print(f"{name:<24}{P.count_parameters(model):>12,}{fwd / 1e6:>17.1f}{sec:>10.3f}{args.batch / sec:>10.0f}"
              f"{3 * fwd * args.batch / sec / 1e9:>9.1f}")

    print(f"\nPROJECTED for the paper's grids ({UPDATES:,} updates × batch {args.batch} per configuration, "
          f"{EVALS} validations of {VAL_FRAMES / 1e6:.2f} M frames; assumed {args.utilisation:.0%} of FP32 peak, "
          f">= {args.floor_ms:g} ms per update):")
    projection = {}
    for gpu, peak in {**gpus, "this CPU (measured speed)": None}.items():
        total = 0.0
        for name, n_configs in CONFIGS.items():
            r = results["networks"][name]
            train_flops, val_flops = 3 * r["forward_flops_per_frame"] * args.batch, r["forward_flops_per_frame"]
            if peak is None:
                seconds = UPDATES * r["seconds_per_update"] * (1 + EVALS * VAL_FRAMES * val_flops
                                                               / (UPDATES * train_flops))
            else:
                per_update = gpu_seconds(train_flops, peak, args.utilisation, args.floor_ms / 1e3)
                seconds = UPDATES * per_update + gpu_seconds(EVALS * VAL_FRAMES * val_flops, peak, args.utilisation)
            total += n_configs * seconds / 3600
            projection.setdefault(gpu, {})[name] = seconds / 3600
        projection[gpu]["grid_hours"] = total
        per = ", ".join(f"{k} {v:,.1f} h" for k, v in projection[gpu].items() if k != "grid_hours")
        print(f"  {gpu:<28} per configuration: {per};  all 30 configurations: {total:,.0f} h")
    results["projection_hours"] = projection
    results["assumptions"] = {"updates": UPDATES, "evals": EVALS, "val_frames": VAL_FRAMES, "configs": CONFIGS,
                              "gpu_fp32_peak": gpus, "utilisation": args.utilisation, "floor_ms": args.floor_ms}
    if args.out:
        from mtlnb.core import io

        io.write_json(args.out, results)
    return results


# ---------------------------------------------------------------------------------- compare: old against new


def synthetic_cache(folder: Path, seed: int = 0) -> Path:
    """A feature cache in :mod:`mtlnb.piano.data`'s layout (manifest, per piece ``spectrogram.npy`` float32
    (T, 144) and ``targets.npy`` uint8 (T, 353)) with random content: what a batch read costs, not what it means.
    ``CACHE_PIECES`` training pieces of ``CACHE_FRAMES`` frames and one validation piece."""
    from mtlnb.core import io
    from mtlnb.piano import data as piano_data

    rng = np.random.default_rng(seed)
    pieces = {}
    for i in range(CACHE_PIECES + 1):
        pid = f"piece{i:02d}"
        (folder / pid).mkdir(parents=True, exist_ok=True)
        np.save(folder / pid / "spectrogram.npy", rng.random((CACHE_FRAMES, 144), dtype=np.float32) * 2)
        targets = np.zeros((CACHE_FRAMES, 353), dtype=np.uint8)  # packed: onsets, frames, offsets, velocity, sustain
        frames = rng.random((CACHE_FRAMES, 88)) < 0.05  # sparse notes; onsets and offsets sparser still
        targets[:, 0:88] = frames & (rng.random((CACHE_FRAMES, 88)) < 0.2)
        targets[:, 88:176] = frames
        targets[:, 176:264] = frames & (rng.random((CACHE_FRAMES, 88)) < 0.2)
        targets[:, 264:352] = frames * rng.integers(1, 128, (CACHE_FRAMES, 88))  # velocity 1..127 where sounding
        targets[:, 352] = rng.integers(0, 128, CACHE_FRAMES)  # CC64
        np.save(folder / pid / "targets.npy", targets)
        pieces[pid] = {"split": "train" if i < CACHE_PIECES else "validation", "n_frames": CACHE_FRAMES,
                       "fingerprint": []}
    io.write_json(folder / piano_data.MANIFEST, {"settings": piano_data.SETTINGS.to_dict(),
                                                 "dataset_root": str(folder), "pieces": pieces, "left_out": {}})
    return folder


def worker(argv: list[str]) -> None:
    """One version's timing (run under that version's ``PYTHONPATH``): prints a JSON line."""
    parser = argparse.ArgumentParser(prog="bench_piano_training.py worker")
    parser.add_argument("--arch", choices=ARCHS, required=True)
    parser.add_argument("--maps", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--cache", required=True)
    parser.add_argument("--lr", type=float, default=0.01)  # η of Tables I/III: no divergence on random data
    parser.add_argument("--noise", default=None, help="ModelSpec.noise (a version that has it); default its own")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    import mtlnb
    from mtlnb.piano import data as piano_data, training

    keep = getattr(training, "keep_freed_memory", None)  # what the version's run_grid / lr_range_test do first
    allocator = bool(keep()) if keep else False
    cache = piano_data.open_cache(args.cache, check=False)
    dataset = piano_data.PianoFrameBatches(cache, "train")
    spec = training.ModelSpec(args.arch, maps=args.maps) if args.arch == "hard" else \
        training.ModelSpec("cross_stitch", "full", "balanced", args.maps)
    if args.noise is not None:
        spec = dataclasses.replace(spec, noise=args.noise)
    torch.manual_seed(0)
    model = spec.build().train()
    task = training.PianoTask()
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True)
    batches = piano_data.RandomBatches(len(dataset), 64, args.warmup + args.steps, seed=0)
    torch.manual_seed(1)  # the noise stream (the loop seeds it when training starts)
    losses, seconds, cpu = [], [], []
    for step, idx in enumerate(batches):
        t0, c0 = time.perf_counter(), time.process_time()
        batch = task.collate(dataset.__getitems__(idx))  # as the DataLoader of the training loop
        loss = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if step >= args.warmup:
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    print(json.dumps({"package": str(Path(mtlnb.__file__).parent), "allocator": allocator, "seconds": seconds,
                      "cpu_seconds": cpu, "losses": losses, "parameters": sum(p.numel() for p in model.parameters())}))


def extract(ref: str, folder: Path) -> Path:
    """``git archive <ref> mtlnb`` extracted into ``folder``; returns the folder (a ``PYTHONPATH`` entry)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "mtlnb"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def run_worker(pythonpath: Path, arch: str, maps: int, steps: int, cache: Path, noise: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    noise_args = [] if noise is None else ["--noise", noise]
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "worker", "--arch", arch, "--maps",
                          str(maps), "--steps", str(steps), "--cache", str(cache), *noise_args], env=env,
                         cwd=str(pythonpath), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(argv: list[str]) -> dict:
    """The ``compare`` command (module docstring)."""
    parser = argparse.ArgumentParser(prog="bench_piano_training.py compare")
    parser.add_argument("--ref", default="HEAD", help="git revision of the old code (default HEAD)")
    parser.add_argument("--maps", type=int, default=16, help="hard net's stem maps (mini: 16; cross-stitch: half)")
    parser.add_argument("--rounds", type=int, default=4, help="old/new pairs per network, alternating")
    parser.add_argument("--steps", type=int, default=20, help="timed updates per worker (after 3 warm-up ones)")
    parser.add_argument("--arch", choices=ARCHS, action="append", help="network(s); default both")
    parser.add_argument("--out", default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    archs = args.arch or list(ARCHS)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, 1 thread, "
          f"batch 64, {args.maps} maps; old = git {args.ref}, new = working tree; {args.rounds} rounds x "
          f"{args.steps} updates per version and network")
    results = {"ref": args.ref, "maps": args.maps, "rounds": args.rounds, "steps": args.steps, "networks": {}}
    with tempfile.TemporaryDirectory(prefix="bench-piano-") as tmp:
        (Path(tmp) / "old").mkdir()
        old_root = extract(args.ref, Path(tmp) / "old")
        cache = synthetic_cache(Path(tmp) / "cache")
        # "new": the working tree as the study trains it; "generator": the same code drawing its noise fresh from
        # torch's generator, as the old code does -- the check that nothing but the noise stream changed.
        versions = {"old": (old_root, None), "new": (ROOT, None), "generator": (ROOT, "generator")}
        order = list(versions)
        for arch in archs:
            runs = {name: [] for name in versions}
            for r in range(args.rounds):
                for name in order[r % 3:] + order[:r % 3]:  # each version first, second and last in turn
                    root, noise = versions[name]
                    runs[name].append(run_worker(root, arch, args.maps, args.steps, cache, noise))
            sec = {k: statistics.median([s for run in v for s in run["seconds"]]) for k, v in runs.items()}
            cpu = {k: statistics.median([s for run in v for s in run["cpu_seconds"]]) for k, v in runs.items()}
            pairs = [statistics.median(o["seconds"]) / statistics.median(n["seconds"])
                     for o, n in zip(runs["old"], runs["new"])]
            losses = {k: np.array(v[0]["losses"]) for k, v in runs.items()}
            rel = {k: float(np.max(np.abs(losses["old"] - losses[k]) / np.abs(losses["old"])))
                   for k in ("new", "generator")}
            results["networks"][arch] = {
                "old_seconds_per_update": sec["old"], "new_seconds_per_update": sec["new"],
                "generator_seconds_per_update": sec["generator"], "ratio": sec["old"] / sec["new"],
                "generator_ratio": sec["old"] / sec["generator"], "round_ratios": pairs,
                "old_cpu_seconds_per_update": cpu["old"], "new_cpu_seconds_per_update": cpu["new"],
                "cpu_ratio": cpu["old"] / cpu["new"], "max_relative_loss_difference": rel["generator"],
                "max_relative_loss_difference_new": rel["new"], "losses_old": losses["old"].tolist(),
                "losses_new": losses["new"].tolist(), "losses_generator": losses["generator"].tolist(),
                "allocator_new": runs["new"][0]["allocator"], "parameters": runs["new"][0]["parameters"]}
            print(f"{arch:<13} wall: old {sec['old']:.3f} s/update, new {sec['new']:.3f} s/update, "
                  f"{sec['old'] / sec['new']:.2f}x (rounds {min(pairs):.2f}-{max(pairs):.2f}x), new with the "
                  f"generator's noise {sec['generator']:.3f}, {sec['old'] / sec['generator']:.2f}x;  CPU: old "
                  f"{cpu['old']:.3f}, new {cpu['new']:.3f}, {cpu['old'] / cpu['new']:.2f}x", flush=True)
            print(f"{'':<13} losses of {len(losses['old'])} updates from one seed, max relative difference to old: "
                  f"new with the generator's noise {rel['generator']:.1e}, new {rel['new']:.1e} (a ref before the "
                  "noise table: the first is the same training, the second another noise stream)", flush=True)
    if args.out:
        from mtlnb.core import io

        io.write_json(args.out, results)
    return results


def main(argv: list[str] | None = None) -> dict | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("compare", "project", "worker") else "compare"
    if command == "worker":
        return worker(argv)
    return project(argv) if command == "project" else compare(argv)


if __name__ == "__main__":
    main()
