"""Benchmark: training and validation speed, peak memory and FLOPs of the three CTC networks, and the projected
cost of the ``paper`` profile.

Run ``python benchmarks/bench_training.py [--sizes paper|mini|both] [--device auto|cpu|cuda] [--threads T]
[--steps N] [--gpu-speedup X ...] [--utilisation U] [--floor-ms F] [--eval-floor-ms E] [--lstm-step-us S]``.
``--from-dry-run paper-dry`` prints instead what a finished dry run measured: the memory check of every network
and the paper profile's cost projected from its step times (:mod:`mtlnb.camera_primus.networks.budget`).

The networks (OMR, baseline A2S, GradSPSA A2S) run at the papers' batch sizes (16, 4, 2 pairs) and at the input
sizes of real Camera-PrIMuS (mean of 60 real samples: image 64 × 656, CQT 256 × 1,247 = 13.6 s of audio,
25 symbols; |V| = 1,781, the full semantic vocabulary), on random inputs of that shape.  ``--sizes mini`` takes
the profile's reduced networks (``mtlnb.profiles`` ``mini``) at the same input sizes (the synthetic corpus is
close: image 636, CQT 977 median).  Every network runs in a fresh child process, one after the other.

**Measured** (on the device the script runs on; without a GPU, this CPU): ``N`` optimiser steps (forward, CTC
loss -- plus GradSPSA's sharing loss --, backward, Adam) after one warm-up step, and ``N`` validation forwards at
the same batch, as samples/s; the peak memory of the step: ``torch.cuda.max_memory_allocated`` on CUDA; on the CPU
the growth of the process's peak resident set (``resource.getrusage``) over the model's build.

**Counted** (exact for these shapes, device-independent): FLOPs per sample of a validation forward and of a
training step, with ``torch.utils.flop_counter.FlopCounterMode`` (2 FLOPs per multiply-add) around one real
``task.forward`` and one real ``task.loss(...).backward()``.  Checked with torch 2.13: the counter counts the
backward ops (``convolution_backward`` only for the gradients autograd asks for -- not the input gradient of
conv1, not the frozen OMR inside GradSPSA --; 2 matmuls per Linear), so a training step is its own count, not
"3 × forward".  It does **not** see the LSTMs (``aten.lstm`` on the CPU and cuDNN's RNN on CUDA count 0), so
their FLOPs are added analytically from the shapes each ``nn.LSTM`` is called with: ``2 × 4 gates × (input +
hidden) × hidden`` per time step, direction and layer, and 3 × that for training (the backward's input/state and
weight gradients are each one forward's matmuls); if a future counter does attribute FLOPs to an LSTM, its figure
is used instead and the output says so.  ``nn.MultiheadAttention`` is counted with autograd on, so that it takes
its composite path (its fused inference kernel is invisible to the counter; the arithmetic is the same).  Not
counted: element-wise work (BatchNorm, activations, pooling, dropout, softmax, the CTC loss, Adam) -- memory-bound
on a GPU, part of what the utilisation assumption has to cover.  Also counted: the sequential LSTM steps of one
forward (CTC frames × stacked LSTM layers; the two directions of a BiLSTM run side by side).

The paper profile's work
------------------------
Per fold: OMR and A2S on 13,371 samples × 150 epochs, GradSPSA on the thesis's 60 % subset (8,023 pairs,
validated on 2,674; ``TrainProfile.gradspsa_subset_fraction``) × 150 epochs, and the nine scenario OMRs on
``int(13,371 × p / 100)`` samples each (Σ p = 43.2 %) × 150 epochs; the other trainings validate on 4,457
samples per epoch (in batches of the training size: ``TrainProfile.eval_batch`` is None in ``paper``); then the
posteriors of 2 × 4,457 samples are exported per training, one sample at a time.  Five folds.  Data loading is
not included (features are cached once).  The goal is under 6 GPU-hours on one H100.

**Projected** (no GPU was lent to this build; run with ``--device cuda`` on one to replace the first projection
by a measurement and to read the utilisation the second one assumes off the "achieved" columns):

1. from the measured speed: ``Σ samples / samples-per-second`` per kind of pass, divided by an **assumed**
   GPU/this-device speed-up ``--gpu-speedup`` (several values, so that the sensitivity shows);
2. from the counted FLOPs: per pass ``max(FLOPs / (peak × --utilisation), floor)`` (``_gpu_projection``), on an
   H100 SXM at its dense BF16 tensor peak (989 TFLOPS; bf16 autocast is the training path on CUDA) and, apart,
   at its FP32 peak (67 TFLOPS).  **Assumed**: the utilisation (default 30 %, as the piano benchmark) and the
   floor of a pass: ``--floor-ms`` per update (default 2 ms, as the piano benchmark: kernel launches, Adam, the
   Python loop) or ``--eval-floor-ms`` per forward call (default 0.5 ms), plus ``--lstm-step-us`` (default 5 µs)
   per sequential LSTM step -- a BiLSTM's T steps cannot run in parallel, each is at least one small kernel --,
   once for a forward and twice for an update (the backward walks the steps again).  The utilisation that the
   6-hour goal needs is solved for, or reported unreachable when the floors alone exceed it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from typing import NamedTuple

from _gpu_projection import H100_SXM_BF16_DENSE, H100_SXM_FP32, gpu_seconds
from mtlnb.camera_primus.networks.runs import SCENARIO_PERCENTS

# Real Camera-PrIMuS means over 60 real samples (see the module docstring).
IMAGE_WIDTH = 656  # image feature columns at height 64
CQT_WIDTH = 1247  # CQT columns after the 256/120 resize (13.57 s at 22,050 Hz, hop 512)
N_SYMBOLS = 25  # semantic tokens per incipit
VOCAB = 1781  # primus/vocabulary_semantic.txt

# The paper profile's work per fold (the baseline, Alfaro-Contreras et al. 2023; thesis §4).
TRAIN, VAL, TEST = 13371, 4457, 4457
EPOCHS = 150
FOLDS = 5
GOAL_HOURS = 6.0
GPUS = {"H100 SXM BF16 dense": H100_SXM_BF16_DENSE, "H100 SXM FP32": H100_SXM_FP32}  # peak FLOP/s
STEP_US_SENSITIVITY = (0.0, 1.0, 2.0, 5.0, 10.0)  # LSTM step times printed beside the assumed one (µs)
NETWORKS = ("omr", "a2s", "gradspsa")


class Work(NamedTuple):
    """One kind of pass of the paper profile, summed over its trainings and the five folds."""

    label: str
    network: str  # "omr", "a2s" or "gradspsa"
    training: bool  # optimiser updates (forward, loss, backward, Adam) or forward calls only
    samples: int  # samples processed
    passes: int  # updates or forward calls (batches)


def _batch(network: str, batch: int, vocab_size: int, image_width: int, cqt_width: int, seed: int = 0) -> dict:
    import torch

    g = torch.Generator().manual_seed(seed)
    out = {"ids": [f"b{i}" for i in range(batch)], "tokens": [["x"] * N_SYMBOLS for _ in range(batch)],
           "labels": torch.randint(0, vocab_size, (batch, N_SYMBOLS), generator=g),
           "label_lengths": torch.full((batch,), N_SYMBOLS, dtype=torch.long)}
    if network in ("omr", "gradspsa"):
        out["image"] = torch.rand(batch, 1, 64, image_width, generator=g)
        out["image_widths"] = torch.full((batch,), image_width, dtype=torch.long)
    if network in ("a2s", "gradspsa"):
        out["audio"] = torch.rand(batch, 1, 256, cqt_width, generator=g)
        out["audio_widths"] = torch.full((batch,), cqt_width, dtype=torch.long)
    return out


# -- counting ---------------------------------------------------------------------------------------------------

def lstm_forward_flops(lstm, batch: int, steps: int) -> int:
    """Analytic FLOPs of one ``nn.LSTM`` forward over ``(batch, steps)``: 2 · 4 gates · (input + hidden) · hidden
    per step, direction and layer (the gates' matmuls; the element-wise gate arithmetic is not counted, as the
    FLOP counter counts none elsewhere)."""
    if lstm.proj_size:
        raise ValueError(f"lstm_forward_flops: LSTMs with proj_size are not counted, got proj_size={lstm.proj_size}")
    directions = 2 if lstm.bidirectional else 1
    hidden = lstm.hidden_size
    flops = 0
    for layer in range(lstm.num_layers):
        inputs = lstm.input_size if layer == 0 else directions * hidden
        flops += 2 * 4 * (inputs + hidden) * hidden * steps * batch * directions
    return flops


class LSTMTally:
    """Forward hooks on every ``nn.LSTM`` of ``model``: analytic FLOPs and sequential steps of the calls seen.

    ``flops``: :func:`lstm_forward_flops` summed over the calls; ``steps``: time steps × layers summed over the
    calls (stacked LSTM modules run one after the other; a BiLSTM's two directions run side by side, so they
    count once).  Use as a context manager; the hooks go when it exits.
    """

    def __init__(self, model):
        from torch import nn

        self.names = [name for name, m in model.named_modules() if isinstance(m, nn.LSTM)]
        self._lstms = [m for m in model.modules() if isinstance(m, nn.LSTM)]
        self._handles = []
        self.flops = 0
        self.steps = 0

    def _hook(self, module, inputs, output) -> None:
        x = inputs[0]
        if x.ndim != 3:
            raise ValueError(f"LSTMTally: expected a batched (3-D) LSTM input, got shape {tuple(x.shape)}")
        batch, steps = (x.shape[0], x.shape[1]) if module.batch_first else (x.shape[1], x.shape[0])
        self.flops += lstm_forward_flops(module, batch, steps)
        self.steps += steps * module.num_layers

    def __enter__(self) -> "LSTMTally":
        self._handles = [m.register_forward_hook(self._hook) for m in self._lstms]
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


def count_flops(model, task, data: dict, batch: int) -> dict:
    """FLOPs per sample of one validation forward and one training step of ``model`` on ``data``.

    Returns ``{"fwd_flops", "train_flops"}`` (per sample, LSTMs included), ``"lstm_fwd_flops"`` (per sample, the
    analytic part), ``"lstm_steps"`` (sequential LSTM steps of one forward), ``"frames"`` (CTC frames) and
    ``"lstm_in_counter"`` (True if the counter attributed FLOPs to an LSTM, in which case nothing is added).
    Leaves the model in train mode with no gradients.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    counter = FlopCounterMode(display=False)
    # Autograd stays on: nn.MultiheadAttention's fused inference path (taken under no_grad) is invisible to the
    # counter; its composite path does the same arithmetic.
    with LSTMTally(model) as tally, counter:
        log_probs, _ = task.forward(model, data)
    root = type(model).__name__
    per_module = counter.get_flop_counts()
    lstm_in_counter = any(sum(per_module.get(f"{root}.{name}", {}).values()) > 0 for name in tally.names)
    fwd = counter.get_total_flops()
    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        task.loss(model, data).backward()
    train = counter.get_total_flops()
    model.zero_grad(set_to_none=True)
    lstm = 0 if lstm_in_counter else tally.flops
    return {"fwd_flops": (fwd + lstm) / batch, "train_flops": (train + 3 * lstm) / batch,
            "lstm_fwd_flops": tally.flops / batch, "lstm_steps": tally.steps, "frames": int(log_probs.shape[1]),
            "lstm_in_counter": lstm_in_counter}


# -- measuring --------------------------------------------------------------------------------------------------

def measure(network: str, sizes: str, device: str, threads: int, steps: int, queue) -> None:
    """Child process: time one network, then count its FLOPs; puts a result dict on ``queue``."""
    import torch

    from mtlnb.camera_primus.networks import ctc_tasks, runs as experiments
    from mtlnb.camera_primus.corpus.datasets import Vocabulary
    from mtlnb.profiles import get_profile
    from mtlnb.core.training import move_to, resolve_device

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    tp = get_profile(sizes).train
    vocab = Vocabulary(tuple(f"s{i:04d}" for i in range(VOCAB)))
    batch = {"omr": tp.omr_batch, "a2s": tp.a2s_batch, "gradspsa": tp.gradspsa_batch}[network]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    torch.manual_seed(0)
    omr = experiments.build_network("omr", VOCAB, tp) if network == "gradspsa" else None
    model = experiments.build_network(network, VOCAB, tp, omr).to(dev)
    task = {"omr": ctc_tasks.omr_task, "a2s": ctc_tasks.a2s_task, "gradspsa": ctc_tasks.gradspsa_task}[network](vocab)
    data = move_to(_batch(network, batch, VOCAB, IMAGE_WIDTH, CQT_WIDTH), dev)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    amp = dev.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else None

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def step():
        opt.zero_grad(set_to_none=True)
        if autocast:
            with autocast():
                loss = task.loss(model, data)
        else:
            loss = task.loss(model, data)
        loss.backward()
        opt.step()

    model.train()
    step()  # warm-up: allocations, cuDNN plans
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    train_s = (time.perf_counter() - t0) / steps
    peak = (torch.cuda.max_memory_allocated(dev) if dev.type == "cuda"
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) * 1024)
    model.eval()
    with torch.no_grad():
        task.forward(model, data)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            if autocast:
                with autocast():
                    task.forward(model, data)
            else:
                task.forward(model, data)
        sync()
    eval_s = (time.perf_counter() - t0) / steps
    # Counted after the timing and the peak memory, in float32 (FLOPs do not depend on the dtype).
    flops = count_flops(model, task, data, batch)
    eval_batch = tp.eval_batch or batch
    queue.put({"network": network, "batch": batch, "eval_batch": eval_batch, "train_sps": batch / train_s,
               "eval_sps": batch / eval_s, "peak_mb": peak / 2**20, "device": str(dev), "threads": threads,
               **flops})


# -- projecting -------------------------------------------------------------------------------------------------

def paper_work(train_batch: dict[str, int], eval_batch: dict[str, int],
               gradspsa_fraction: float | None = None) -> list[Work]:
    """Every pass of the ``paper`` profile over five folds (module docstring), per kind.

    ``train_batch`` / ``eval_batch``: samples per update / per validation forward of each network.  A scenario
    subset has ``int(13,371 · p / 100)`` samples (``mtlnb.camera_primus.corpus.primus.scenario_subset``); an
    epoch's last batch may be short, so passes are ceilings.  GradSPSA trains and validates on
    ``gradspsa_fraction`` of each split (default: the paper profile's ``gradspsa_subset_fraction``, the thesis's
    60 %: 8,023 / 2,674) and exports posteriors of the full folds.
    """
    def ceil(n: int, b: int) -> int:
        return -(-n // b)

    if gradspsa_fraction is None:
        from mtlnb.profiles import get_profile

        gradspsa_fraction = get_profile("paper").train.gradspsa_subset_fraction
    g_train, g_val = round(gradspsa_fraction * TRAIN), round(gradspsa_fraction * VAL)

    scenarios = [int(TRAIN * p / 100) for p in SCENARIO_PERCENTS]
    omr_trainings = 1 + len(scenarios)
    runs = FOLDS * EPOCHS
    b, e = train_batch, eval_batch
    work = [
        Work("OMR training, full fold", "omr", True, runs * TRAIN, runs * ceil(TRAIN, b["omr"])),
        Work(f"OMR training, {len(scenarios)} scenarios", "omr", True, runs * sum(scenarios),
             runs * sum(ceil(n, b["omr"]) for n in scenarios)),
        Work(f"OMR validation, {omr_trainings} trainings", "omr", False, runs * omr_trainings * VAL,
             runs * omr_trainings * ceil(VAL, e["omr"])),
        Work("A2S training", "a2s", True, runs * TRAIN, runs * ceil(TRAIN, b["a2s"])),
        Work("A2S validation", "a2s", False, runs * VAL, runs * ceil(VAL, e["a2s"])),
        Work("GradSPSA training", "gradspsa", True, runs * g_train, runs * ceil(g_train, b["gradspsa"])),
        Work("GradSPSA validation", "gradspsa", False, runs * g_val, runs * ceil(g_val, e["gradspsa"])),
    ]
    for network, label, trainings in (("omr", "OMR", omr_trainings), ("a2s", "A2S", 1), ("gradspsa", "GradSPSA", 1)):
        samples = FOLDS * trainings * (VAL + TEST)
        work.append(Work(f"{label} posteriors (val + test, 1 per call)", network, False, samples, samples))
    return work


def speedup_hours(work: list[Work], results: dict[str, dict], speedup: float) -> dict[str, float]:
    """Hours per kind of pass: samples / measured samples-per-second / ``speedup``.

    Posteriors are taken at the batched forward's per-sample speed (optimistic for a GPU at batch 1)."""
    return {w.label: w.samples / results[w.network]["train_sps" if w.training else "eval_sps"] / 3600 / speedup
            for w in work}


def pass_floor_s(result: dict, training: bool, floor_ms: float, eval_floor_ms: float, step_us: float) -> float:
    """Assumed minimum GPU seconds of one update (``training``) or one forward call of a network."""
    fixed = floor_ms if training else eval_floor_ms
    return fixed / 1e3 + (2 if training else 1) * result["lstm_steps"] * step_us / 1e6


def flop_hours(work: list[Work], results: dict[str, dict], peak: float, utilisation: float, floor_ms: float,
               eval_floor_ms: float, step_us: float) -> dict[str, float]:
    """Hours per kind of pass: per pass ``max(FLOPs / (peak · utilisation), floor)`` (``_gpu_projection``)."""
    hours = {}
    for w in work:
        r = results[w.network]
        flops = (r["train_flops"] if w.training else r["fwd_flops"]) * w.samples / w.passes
        floor_s = pass_floor_s(r, w.training, floor_ms, eval_floor_ms, step_us)
        hours[w.label] = w.passes * gpu_seconds(flops, peak, utilisation, floor_s) / 3600
    return hours


def utilisation_for(goal_hours: float, hours_at) -> float | None:
    """The smallest utilisation in (0, 1] at which ``hours_at(u)`` (decreasing in u) meets the goal; None if even
    100 % does not."""
    if hours_at(1.0) > goal_hours:
        return None
    lo, hi = 1e-6, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if hours_at(mid) <= goal_hours else (mid, hi)
    return hi


def print_flop_projection(results: dict[str, dict], args) -> None:
    """The counted-FLOP projection of the paper profile and its sensitivity to the assumed floors."""
    work = paper_work({n: results[n]["batch"] for n in NETWORKS}, {n: results[n]["eval_batch"] for n in NETWORKS})
    floors = (args.floor_ms, args.eval_floor_ms, args.lstm_step_us)
    u = args.utilisation
    by_gpu = {gpu: flop_hours(work, results, peak, u, *floors) for gpu, peak in GPUS.items()}
    print(f"\nPROJECTED from the COUNTED FLOPs (assumed: {u:.0%} of peak; floors {args.floor_ms:g} ms per update, "
          f"{args.eval_floor_ms:g} ms per forward call, + {args.lstm_step_us:g} µs per sequential LSTM step, "
          "×2 in an update), hours:")
    print(f"{'kind of pass (5 folds)':<46}{'passes':>12}{'samples':>12}{'PFLOP':>9}"
          + "".join(f"{gpu:>22}" for gpu in GPUS))
    total_flops = 0.0
    for w in work:
        r = results[w.network]
        flops = (r["train_flops"] if w.training else r["fwd_flops"]) * w.samples
        total_flops += flops
        print(f"{w.label:<46}{w.passes:>12,}{w.samples:>12,}{flops / 1e15:>9.1f}"
              + "".join(f"{by_gpu[gpu][w.label]:>22.2f}" for gpu in GPUS))
    print(f"{'total':<46}{'':>24}{total_flops / 1e15:>9.1f}" + "".join(f"{sum(by_gpu[g].values()):>22.2f}"
                                                                      for g in GPUS))
    for gpu, peak in GPUS.items():
        compute = sum(flop_hours(work, results, peak, u, 0.0, 0.0, 0.0).values())
        floor_only = sum(w.passes * pass_floor_s(results[w.network], w.training, *floors) for w in work) / 3600
        need = utilisation_for(GOAL_HOURS, lambda x: sum(flop_hours(work, results, peak, x, *floors).values()))
        goal = (f"the {GOAL_HOURS:g} h goal needs {need:.1%} of peak" if need is not None else
                f"the {GOAL_HOURS:g} h goal is out of reach even at 100 % of peak"
                + (f" (the floors alone take {floor_only:.1f} h)" if floor_only > GOAL_HOURS else ""))
        print(f"  {gpu} ({peak / 1e12:,.0f} TFLOPS): compute alone {compute:.2f} h, floors alone {floor_only:.2f} h, "
              f"per pass the larger {sum(by_gpu[gpu].values()):.2f} h; {goal}")
    print("Floor per update / per forward call (ms): "
          + "; ".join(f"{n} {pass_floor_s(results[n], True, *floors) * 1e3:.2f} / "
                      f"{pass_floor_s(results[n], False, *floors) * 1e3:.2f}" for n in NETWORKS))
    gpu = next(iter(GPUS))
    sens = [f"{s:g} µs: {sum(flop_hours(work, results, GPUS[gpu], u, *floors[:2], s).values()):.1f} h"
            for s in STEP_US_SENSITIVITY]
    print(f"Sensitivity to the LSTM step time ({gpu}, {u:.0%}): " + "; ".join(sens))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", choices=("paper", "mini", "both"), default="paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (CPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per network after one warm-up")
    parser.add_argument("--gpu-speedup", type=float, nargs="+", default=[50.0, 100.0, 200.0],
                        help="assumed H100 / this-CPU throughput ratios for the projection (CPU runs only)")
    parser.add_argument("--utilisation", type=float, default=0.30, help="assumed share of the GPU's peak")
    parser.add_argument("--floor-ms", type=float, default=2.0, help="assumed minimum GPU time per update (ms), "
                        "before the LSTM steps")
    parser.add_argument("--eval-floor-ms", type=float, default=0.5, help="assumed minimum GPU time per forward "
                        "call (ms), before the LSTM steps")
    parser.add_argument("--lstm-step-us", type=float, default=5.0, help="assumed GPU time of one sequential LSTM "
                        "step (µs; both directions side by side)")
    parser.add_argument("--from-dry-run", metavar="PROFILE", default=None,
                        help="instead of measuring: print the memory checks and the projection that a finished dry "
                        "run of PROFILE (paper-dry) measured (mtlnb.camera_primus.networks.budget)")
    args = parser.parse_args(argv)
    if args.from_dry_run:
        from mtlnb.camera_primus.networks import budget

        budget.main(["--profile", args.from_dry_run])
        return
    if not 0 < args.utilisation <= 1:
        parser.error(f"--utilisation must be in (0, 1], got {args.utilisation}")
    if min(args.floor_ms, args.eval_floor_ms, args.lstm_step_us) < 0:
        parser.error("--floor-ms, --eval-floor-ms and --lstm-step-us must be >= 0")
    ctx = multiprocessing.get_context("spawn")
    sizes = ("paper", "mini") if args.sizes == "both" else (args.sizes,)
    for size in sizes:
        results = {}
        print(f"\n== {size} networks, inputs: image 64×{IMAGE_WIDTH}, CQT 256×{CQT_WIDTH}, {N_SYMBOLS} symbols, "
              f"|V| = {VOCAB}")
        print("MEASURED here and COUNTED (FLOPs per sample; G = 1e9):")
        print(f"{'network':<10}{'batch':>6}{'train samples/s':>17}{'eval samples/s':>16}{'peak MB':>10}"
              f"{'frames':>8}{'LSTM steps':>11}{'fwd GFLOP':>11}{'train GFLOP':>13}{'LSTM share':>11}"
              f"{'train GFLOP/s':>15}{'eval GFLOP/s':>14}  device")
        for network in NETWORKS:
            queue = ctx.Queue()
            proc = ctx.Process(target=measure, args=(network, size, args.device, args.threads, args.steps, queue))
            proc.start()
            res = queue.get()
            proc.join()
            results[network] = res
            print(f"{network:<10}{res['batch']:>6}{res['train_sps']:>17.2f}{res['eval_sps']:>16.2f}"
                  f"{res['peak_mb']:>10.0f}{res['frames']:>8}{res['lstm_steps']:>11}{res['fwd_flops'] / 1e9:>11.2f}"
                  f"{res['train_flops'] / 1e9:>13.2f}{res['lstm_fwd_flops'] / res['fwd_flops']:>11.0%}"
                  f"{res['train_flops'] * res['train_sps'] / 1e9:>15.1f}"
                  f"{res['fwd_flops'] * res['eval_sps'] / 1e9:>14.1f}"
                  f"  {res['device']} ({res['threads']} threads)")
            sys.stdout.flush()
        if any(r["lstm_in_counter"] for r in results.values()):
            print("NOTE: the FLOP counter attributed FLOPs to an LSTM; its figures are used and none are added.")
        else:
            print("LSTM FLOPs are not seen by the FLOP counter: added analytically (2·4·(in + hidden)·hidden per "
                  "step, direction and layer; ×3 in training); 'LSTM share' is their part of the forward.")
        if size != "paper":
            continue
        on_gpu = results["omr"]["device"].startswith("cuda")
        speedups = [1.0] if on_gpu else args.gpu_speedup
        work = paper_work({n: results[n]["batch"] for n in NETWORKS},
                          {n: results[n]["eval_batch"] for n in NETWORKS})
        print("\nPaper profile (5 folds × 150 epochs; OMR, A2S, GradSPSA + 9 scenario OMRs per fold), hours:")
        print("MEASURED on the GPU:" if on_gpu else
              "PROJECTED from the MEASURED figures above, assuming the GPU is X times faster per sample:")
        labels = ["measured GPU" if on_gpu else f"X = {x:g}" for x in speedups]
        print(f"{'kind of pass (5 folds)':<46}" + "".join(f"{label:>14}" for label in labels))
        parts = [speedup_hours(work, results, x) for x in speedups]
        for w in work:
            print(f"{w.label:<46}" + "".join(f"{p[w.label]:>14.1f}" for p in parts))
        totals = [sum(p.values()) for p in parts]
        print(f"{'total':<46}" + "".join(f"{t:>14.1f}" for t in totals))
        if on_gpu:
            print(f"Goal {GOAL_HOURS:g} GPU-hours: {'met' if totals[0] <= GOAL_HOURS else 'missed'}.")
        else:
            need = sum(speedup_hours(work, results, 1.0).values()) / GOAL_HOURS
            print(f"Goal {GOAL_HOURS:g} GPU-hours: the GPU must be {need:.0f}× this device's throughput "
                  "(per kind of pass, uniformly).")
        print_flop_projection(results, args)


if __name__ == "__main__":
    main()
