"""Training speed of the piano networks on this machine, and what the paper's grids would cost on a GPU.

    python benchmarks/bench_piano_training.py [--threads 1] [--steps 5] [--batch 64] [--maps 96] [--out r.json]

**Measured** (here, on the CPU): for each network (ICASSP19 for reference, hard sharing, cross-stitch full and
detached) one SGD-Nesterov update at batch 64 on random inputs of the real shape (11 × 144) — forward, the five
task losses, backward, step — timed over ``--steps`` updates after one warm-up; reported as training frames/s.
Data loading is not included (a cached batch reads in about a millisecond, see ``mtlnb.piano.data``).

**Counted**: forward FLOPs per frame with ``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add of
the convolutions, linear layers and cross-stitch einsums); a training update costs ≈ 3 × forward (backward ≈ 2 ×
forward).  The counter's own backward figures are not used: it over-counts grouped-convolution backward passes
(the cross-stitch columns), giving ~6.9 × forward.

**Projected** (not measured; no GPU was lent to this build): GPU-hours of the paper's grids, 680,000 updates per
configuration (§V) plus, on our reading of "20.000 × 34", 34 validation passes over MAESTRO v1's validation split
(15.3 h of audio = 2.75 M frames, forward only), for 22 hard-sharing configurations (Tables I/II) and 8 cross-stitch
ones (Tables III/IV).  Assumed: the GPU sustains ``--utilisation`` (default 30 %) of its FP32 peak on these small
convolutions, and an update never takes less than ``--floor-ms`` (default 2 ms: kernel launches and the Python
loop at batch 64).  Peaks: Tesla K40 (the paper's GPU) 4.29 TFLOPS, H100 SXM 67 TFLOPS (FP32, no tensor cores;
with TF32 tensor cores or bf16 autocast the loop's default on CUDA, the compute part shrinks several-fold and the
floor dominates).  Diverged runs and restarts (the paper's "repeated restarts") are not counted.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from _gpu_projection import H100_SXM_FP32, TESLA_K40_FP32, gpu_seconds
from mtlnb.piano import cross_stitch as CS, networks as P

UPDATES = 680_000  # per configuration (§V)
EVALS = 34  # validation passes per configuration (our reading of "20.000 × 34")
VAL_FRAMES = 15.3 * 3600 * 50  # MAESTRO v1 validation split: 15.3 h at 50 fps (Hawthorne et al. 2019, Table 1)
CONFIGS = {"hard": 22, "cross_stitch_full": 4, "cross_stitch_detached": 4}  # Tables I+II, III+IV (2 × 2 each)
GPUS = {"Tesla K40 (paper)": TESLA_K40_FP32, "H100 SXM (FP32)": H100_SXM_FP32}  # FP32 peak FLOP/s


def networks(maps: int | None) -> dict[str, torch.nn.Module]:
    hard = P.HARD_SHARING if maps is None else P.HARD_SHARING.with_maps(maps)
    cs = CS.CROSS_STITCH if maps is None else CS.CROSS_STITCH.with_maps(maps // 2)
    return {"icassp19 (3 heads)": P.HardSharingNet(P.ICASSP19), "hard": P.HardSharingNet(hard),
            "cross_stitch_full": CS.CrossStitchNet(cs, "full"),
            "cross_stitch_detached": CS.CrossStitchNet(cs, "detached")}


def forward_flops(model: torch.nn.Module, batch: int) -> float:
    """Forward FLOPs per frame (eval mode: the noise layers' elementwise work is not counted anyway)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(batch, 11, 144))
    return counter.get_total_flops() / batch


def time_updates(model: torch.nn.Module, batch: int, steps: int) -> float:
    """Seconds per SGD-Nesterov update, mean over ``steps`` after one warm-up."""
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


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    for gpu, peak in {**GPUS, "this CPU (measured speed)": None}.items():
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
                              "gpu_fp32_peak": GPUS, "utilisation": args.utilisation, "floor_ms": args.floor_ms}
    if args.out:
        from mtlnb.core import io

        io.write_json(args.out, results)
    return results


if __name__ == "__main__":
    main()
