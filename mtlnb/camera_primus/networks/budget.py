"""What the ``paper`` profile's CTC trainings will cost on a GPU, from what a dry run measured on this machine.

A dry run (profile ``paper-dry``) trains every network of the paper profile at its sizes for one batch; each
training writes its step times and a memory estimate into ``run.json`` (:mod:`mtlnb.camera_primus.networks.runs`).
This module turns them into the two numbers that decide whether a GPU-day is well spent:

Memory (:func:`memory_check`)
    Training memory of one network at its batch, **estimated** on the CPU: the tensors autograd saves for the
    backward during one forward and loss (counted by storage, through
    :func:`torch.autograd.graph.saved_tensors_hooks`, in float32: an upper bound under bf16 autocast), plus four
    copies of the trainable parameters (weights, gradients, Adam's two moments) and one of the frozen ones.
    Activations grow linearly with the input width (convolutions and LSTMs are per column), so the estimate is
    measured at two small widths and extrapolated linearly to the widest training sample, and solved for the widest
    batch that fits.  The device offers ``H100_BYTES``, of which ``USABLE_SHARE`` is **assumed** usable (the CUDA
    context, cuDNN workspaces and allocator fragmentation take the rest); several concurrent trainings share it.

Time (:func:`projection`)
    The passes of the paper profile are counted exactly from its sizes (:func:`paper_work`: folds, epochs, batches,
    scenario subsets, GradSPSA's subset, validation and posterior exports); each kind takes the dry run's
    **measured** seconds per pass on this machine, scaled linearly from the padded input width it was measured at to
    the real corpus's mean width (:func:`measured_seconds`).  A GPU pass is **projected** as ``max(CPU seconds / X, floor)``
    (:func:`gpu_seconds`) for **assumed** speed-ups X and an **assumed** latency floor per pass (per update
    ``FLOOR_UPDATE_S`` plus ``LSTM_STEP_S`` per sequential LSTM step, twice; per forward call
    ``FLOOR_FORWARD_S`` plus the steps once), the rule of ``benchmarks/bench_training.py``.  ``C`` concurrent
    trainings overlap their latency but not their arithmetic: wall = ``max(Σ pass / C, Σ arithmetic)`` -- an ideal
    overlap, under MPS, **assumed**.  No GPU measured any of this; ``benchmarks/bench_training.py --device cuda``
    replaces the assumptions by measurements where one is lent.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass
from typing import Iterable, NamedTuple

import numpy as np
import torch
from torch import nn

# Datasheet peaks in FLOP/s (2 FLOPs per multiply-add), boost clock.
TESLA_K40_FP32 = 4.29e12  # the piano paper's GPU
H100_SXM_FP32 = 67e12  # H100 SXM5 without tensor cores: what a pure-FP32 training loop gets
# H100 SXM5 dense BF16 on tensor cores: the CTC training path on CUDA (bf16 autocast, mtlnb.core.training).  The
# datasheet's 1,979 TFLOPS assumes 2:4 structured sparsity, which nothing here uses.  (H100 PCIe: 756 / 51.)
H100_SXM_BF16_DENSE = 989.4e12
H100_BYTES = 80e9  # H100 SXM5 / PCIe: 80 GB of HBM
USABLE_SHARE = 0.9  # assumed: what is left after the CUDA context, cuDNN workspaces and fragmentation

# Assumed latency floors of one pass on an H100 (benchmarks/bench_training.py's defaults).
FLOOR_UPDATE_S = 2e-3  # kernel launches, Adam, the Python loop of one update
FLOOR_FORWARD_S = 0.5e-3  # one validation or posterior forward call
LSTM_STEP_S = 5e-6  # one sequential LSTM step (both directions side by side)
# Assumed H100 / this-machine throughput ratios per pass, printed side by side.  A dry run times one CPU thread
# (reproduce gives each track one core of a shared machine); an H100's dense BF16 peak is ~10^4 times one core's, so
# the plausible range is wide; infinity leaves the latency floors alone, the bound no faster arithmetic lifts.
SPEEDUPS = (100.0, 300.0, 1000.0, 3000.0, math.inf)
CONCURRENCY = (1, 2, 4, 8)  # concurrent trainings printed side by side
# Mean input widths of real Camera-PrIMuS (60 real samples; benchmarks/bench_training.py): they set the LSTM steps.
REAL_MEAN_WIDTH = {"image": 656, "audio": 1247}
NETWORK_INPUT = {"omr": "image", "a2s": "audio", "gradspsa": "audio"}


def gpu_seconds(flops: float, peak: float, utilisation: float, floor_s: float = 0.0) -> float:
    """Projected seconds of one pass: ``max(flops / (peak · utilisation), floor_s)``.

    Parameters
    ----------
    flops : float
        Work of the pass (FLOPs, counted; or CPU seconds with ``peak`` the assumed speed-up and utilisation 1).
    peak : float
        The GPU's peak (FLOP/s) for the arithmetic the pass uses.
    utilisation : float
        Assumed share of ``peak`` the pass sustains, in (0, 1].
    floor_s : float
        Assumed minimum duration of the pass (s), whatever its FLOPs.
    """
    if not 0 < utilisation <= 1:
        raise ValueError(f"gpu_seconds: utilisation must be in (0, 1], got {utilisation}")
    if peak <= 0 or flops < 0 or floor_s < 0:
        raise ValueError(f"gpu_seconds: need peak > 0, flops >= 0, floor_s >= 0; got {peak}, {flops}, {floor_s}")
    return max(flops / (peak * utilisation), floor_s)


# -- memory -----------------------------------------------------------------------------------------------------

def saved_bytes(model: nn.Module, task, batch: dict) -> int:
    """Bytes of the distinct storages autograd saves for the backward in one ``task.loss(model, batch)`` (the
    parameters themselves not counted), in train mode as a training step runs it; nothing is backpropagated, and the
    model's buffers (BatchNorm statistics) and train/eval modes are left as they were."""
    modes = {m: m.training for m in model.modules()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    try:
        return _saved_bytes(model, task, batch)
    finally:
        for m, training in modes.items():
            m.train(training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])


def _saved_bytes(model: nn.Module, task, batch: dict) -> int:
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: set[int] = set()
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in seen and ptr not in params:
            seen.add(ptr)
            total += storage.nbytes()
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        task.loss(model, batch)
    return total


# Rows of the network inputs: the feature cache's image height and the CQT resized to 256 (the baseline's).
INPUT_HEIGHTS = {"image": 64, "audio": 256}


def _batch(task, batch: int, widths: dict[str, int], vocab_size: int, seed: int = 0,
           heights: dict[str, int] | None = None) -> dict:
    """A random batch of ``batch`` samples at ``widths`` (``{"image": columns, "audio": columns}``), one-symbol
    labels (feasible at any width that gives a frame)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, vocab_size, (batch, 1), generator=g)
    lengths = torch.ones(batch, dtype=torch.long)
    out = {"ids": [f"m{i}" for i in range(batch)], "tokens": [["x"]] * batch, "labels": labels,
           "label_lengths": lengths, "label_min_frames": lengths.clone()}
    heights = {**INPUT_HEIGHTS, **(heights or {})}
    for key, w in widths.items():
        out[key] = torch.rand(batch, 1, heights[key], int(w), generator=g)
        out[f"{key}_widths"] = torch.full((batch,), int(w), dtype=torch.long)
    return out


@dataclass(frozen=True)
class MemoryCheck:
    """The training memory of one network at its batch (module docstring); bytes."""

    batch: int
    widths: dict  # the widest training sample's width per input ("image", "audio")
    parameter_bytes: int  # 4 × trainable + 1 × frozen parameter bytes
    base_bytes: float  # saved activations extrapolated to width 0 (intercept)
    bytes_per_width: float  # saved activations per unit of the width scale (slope, at scale = the widths)
    device_bytes: float = H100_BYTES

    @property
    def estimate(self) -> float:
        """Estimated bytes of a batch at ``widths``."""
        return self.parameter_bytes + self.base_bytes + self.bytes_per_width

    @property
    def usable(self) -> float:
        return self.device_bytes * USABLE_SHARE

    def max_scale(self) -> float:
        """How many times ``widths`` the widest batch that fits the usable memory may be."""
        room = self.usable - self.parameter_bytes - self.base_bytes
        return room / self.bytes_per_width if self.bytes_per_width > 0 else math.inf

    def fits(self, concurrent: int = 1) -> bool:
        return concurrent * self.estimate <= self.usable

    def summary(self) -> str:
        w = ", ".join(f"{k} {v:,}" for k, v in self.widths.items())
        widest = ", ".join(f"{k} {int(v * self.max_scale()):,}" for k, v in self.widths.items())
        return (f"estimated {self.estimate / 1e9:.2f} GB at batch {self.batch} × widest width ({w} columns); "
                f"{'fits' if self.fits() else 'DOES NOT FIT'} an H100 ({self.usable / 1e9:.0f} of "
                f"{self.device_bytes / 1e9:.0f} GB usable), which takes batches up to ({widest}) columns")

    def as_dict(self) -> dict:
        return {**asdict(self), "estimate": self.estimate, "max_scale": self.max_scale(), "fits": self.fits()}


def memory_check(model: nn.Module, task, batch: int, widths: dict[str, int], probe: int = 256,
                 device_bytes: float = H100_BYTES, heights: dict[str, int] | None = None) -> MemoryCheck:
    """Estimate the training memory of ``model`` at ``batch`` samples of ``widths`` (module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The network (on the CPU); left in train mode, its weights untouched.
    task : mtlnb.camera_primus.networks.ctc_tasks.CTCTask
    batch : int
        Samples per step.
    widths : dict
        ``{"image": columns, "audio": columns}`` of the widest sample (the inputs the network reads).
    probe : int
        The largest input width of the two measured batches (the other is half of it); small, so that the
        measurement takes a second, and large enough that every pool leaves frames.
    heights : dict, optional
        Input rows where they differ from :data:`INPUT_HEIGHTS` (small test networks).
    """
    largest = max(widths.values())
    scales = (probe / 2 / largest, probe / largest)
    vocab_size = len(task.vocabulary)
    with torch.random.fork_rng():  # dropout draws must not move the caller's random state
        measured = [saved_bytes(model, task, _batch(task, batch, {k: max(1, round(v * s)) for k, v in
                                                                  widths.items()}, vocab_size,
                                                  heights=heights))
                    for s in scales]
    slope = (measured[1] - measured[0]) / (scales[1] - scales[0])
    base = measured[0] - slope * scales[0]
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    return MemoryCheck(batch, {k: int(v) for k, v in widths.items()}, 4 * trainable + frozen, max(0.0, base),
                       max(0.0, slope), device_bytes)


# -- time -------------------------------------------------------------------------------------------------------

class Work(NamedTuple):
    """One kind of pass of a profile's CTC trainings, summed over its folds."""

    label: str
    network: str  # "omr", "a2s" or "gradspsa"
    kind: str  # "update", "validation" (a forward call of a batch) or "posterior" (one sample's forward)
    passes: int
    trainings: int  # trainings these passes belong to


def fold_sizes(n_pairs: int, n_folds: int = 5) -> tuple[int, int, int]:
    """Train / validation / test sizes of a fold of ``n_pairs`` (test and validation one fold each; 22,285 pairs →
    13,371 / 4,457 / 4,457, the baseline's)."""
    test = n_pairs // n_folds
    return n_pairs - 2 * test, test, test


def paper_work(profile) -> list[Work]:
    """Every pass the CTC trainings of ``profile`` make (all its folds): updates, validation batches, posterior
    forwards, per network and kind.  Scenario OMRs at :func:`mtlnb.camera_primus.networks.runs.scenario_percents`
    (``int(n · p / 100)`` samples); GradSPSA on ``gradspsa_subset_fraction`` of each split (``round``), its
    posteriors on the full validation and test folds."""
    from mtlnb.camera_primus.networks.runs import scenario_percents

    t = profile.train
    folds = len(profile.corpus.folds)
    train, val, test = fold_sizes(round(profile.corpus.n_pairs * profile.corpus.subset_fraction),
                                  profile.corpus.n_folds)
    eval_b = {n: t.eval_batch or b for n, b in (("omr", t.omr_batch), ("a2s", t.a2s_batch),
                                                  ("gradspsa", t.gradspsa_batch))}
    g_train, g_val = (round(t.gradspsa_subset_fraction * n) for n in (train, val))
    scen = [int(train * p / 100) for p in scenario_percents(profile)]

    def ceil(a: int, b: int) -> int:
        return -(-a // b)

    def capped(batches: int) -> int:
        return min(batches, t.max_train_batches) if t.max_train_batches else batches

    n = len(scen)
    return [
        Work("OMR updates, full fold", "omr", "update", folds * t.omr_epochs * capped(ceil(train, t.omr_batch)), folds),
        Work(f"OMR updates, {n} scenarios", "omr", "update",
             folds * t.scenario_omr_epochs * sum(capped(ceil(s, t.omr_batch)) for s in scen), folds * n),
        Work(f"OMR validation, {n + 1} trainings", "omr", "validation",
             folds * (t.omr_epochs + n * t.scenario_omr_epochs) * ceil(val, eval_b["omr"]), 0),
        Work(f"OMR posteriors, {n + 1} trainings", "omr", "posterior", folds * (n + 1) * (val + test), 0),
        Work("A2S updates", "a2s", "update", folds * t.a2s_epochs * capped(ceil(train, t.a2s_batch)), folds),
        Work("A2S validation", "a2s", "validation", folds * t.a2s_epochs * ceil(val, eval_b["a2s"]), 0),
        Work("A2S posteriors", "a2s", "posterior", folds * (val + test), 0),
        Work(f"GradSPSA updates ({t.gradspsa_subset_fraction:.0%} subset)", "gradspsa", "update",
             folds * t.gradspsa_epochs * capped(ceil(g_train, t.gradspsa_batch)), folds),
        Work("GradSPSA validation", "gradspsa", "validation",
             folds * t.gradspsa_epochs * ceil(g_val, eval_b["gradspsa"]), 0),
        Work("GradSPSA posteriors", "gradspsa", "posterior", folds * (val + test), 0),
    ]


def lstm_steps(network: str, train_profile, vocab_size: int = 100) -> int:
    """Sequential LSTM steps of one forward at the real corpus's mean width: CTC frames × stacked LSTM layers (a
    BiLSTM's two directions run side by side)."""
    from mtlnb.camera_primus.networks import runs

    torch_state = torch.get_rng_state()
    omr = runs.build_network("omr", vocab_size, train_profile) if network == "gradspsa" else None
    model = runs.build_network(network, vocab_size, train_profile, omr)
    torch.set_rng_state(torch_state)
    frames = int(model.output_lengths(REAL_MEAN_WIDTH[NETWORK_INPUT[network]]))
    # the frozen OMR inside GradSPSA reads the image once per forward; its LSTM steps are counted too
    layers = sum(m.num_layers for m in model.modules() if isinstance(m, nn.LSTM))
    return frames * layers


def measured_seconds(run_infos: Iterable[dict]) -> dict[str, dict[str, float]]:
    """``{network: {"update", "validation", "posterior": seconds}}``: the median over a dry run's trainings of
    each network (``run.json["timing"]``), each time scaled to a full batch (``batch`` / ``eval_batch`` samples; 1
    for a posterior) at the real corpus's mean input width (:data:`REAL_MEAN_WIDTH`) from the samples and padded
    width it was measured at (``train_samples``, ``train_width``, ...): on a CPU, convolutions and LSTMs cost in
    proportion to samples × columns.  A small corpus's one batch may be a short last batch, or hold its widest
    sample, while the paper run's bucketed batches are full and of typical width."""
    found: dict[str, dict[str, list[float]]] = {}
    keys = {"update": ("train_seconds_per_step", "train", "batch"),
            "validation": ("val_seconds_per_batch", "val", "eval_batch"),
            "posterior": ("posterior_seconds_per_sample", "posterior", None)}
    for info in run_infos:
        timing = info.get("timing") or {}
        real = REAL_MEAN_WIDTH[NETWORK_INPUT[info["network"]]]
        for kind, (key, prefix, full) in keys.items():
            if key in timing:
                width, samples = timing.get(f"{prefix}_width"), timing.get(f"{prefix}_samples")
                scale = real / width if width else 1.0
                if full and samples:
                    scale *= timing[full] / samples
                found.setdefault(info["network"], {}).setdefault(kind, []).append(float(timing[key]) * scale)
    return {net: {kind: float(np.median(v)) for kind, v in kinds.items()} for net, kinds in found.items()}


def projection(work: list[Work], seconds: dict[str, dict[str, float]], steps: dict[str, int],
               speedup: float, concurrency: int = 1) -> dict[str, float]:
    """Hours of the profile's CTC trainings: ``"cpu"`` (this machine, one training at a time), ``"gpu"``
    (GPU-hours: every pass at ``max(CPU s / speedup, floor)``), ``"arithmetic"`` (the CPU seconds / speedup alone)
    and ``"wall"`` (``max(gpu / concurrency, arithmetic)``, ideal overlap); see the module docstring."""
    if speedup <= 0 or concurrency < 1:
        raise ValueError(f"projection: need speedup > 0 and concurrency >= 1, got {speedup}, {concurrency}")
    cpu = gpu = arithmetic = 0.0
    for w in work:
        try:
            s = seconds[w.network][w.kind]
        except KeyError:
            raise ValueError(f"projection: no measured {w.kind} time of {w.network}; run the dry run first") from None
        floor = (FLOOR_UPDATE_S + 2 * steps[w.network] * LSTM_STEP_S if w.kind == "update"
                 else FLOOR_FORWARD_S + steps[w.network] * LSTM_STEP_S)
        cpu += w.passes * s
        arithmetic += w.passes * s / speedup
        gpu += w.passes * gpu_seconds(s, speedup, 1.0, floor)
    hours = {"cpu": cpu, "gpu": gpu, "arithmetic": arithmetic, "wall": max(gpu / concurrency, arithmetic)}
    return {k: v / 3600 for k, v in hours.items()}


def report(study, target: str = "paper") -> str:
    """The dry run's memory checks and the projected cost of profile ``target``'s CTC trainings, as text.

    ``study`` is the dry run's (:func:`mtlnb.camera_primus.study.primus_study` of ``paper-dry``); its run folders
    hold the measurements.  ``ValueError`` when it has none."""
    from mtlnb.core import io
    from mtlnb.profiles import get_profile

    infos = [io.read_json(p) for p in sorted((study.root / "models").glob("fold*/*/run.json"))]
    infos = [i for i in infos if "timing" in i or "memory" in i]
    if not infos:
        raise ValueError(f"{study.root / 'models'} holds no measured training: run the dry run first "
                         f"(python -m mtlnb reproduce --profile {study.profile.name})")
    P = get_profile(target)
    lines = [f"DRY RUN of profile {study.profile.name!r}: every number the notebooks showed is MEANINGLESS "
             "(one batch per training).", "", f"Memory per training (ESTIMATED on this CPU, float32 upper bound; "
             f"H100 {H100_BYTES / 1e9:.0f} GB, {USABLE_SHARE:.0%} assumed usable, "
             f"{P.train.concurrent_trainings} concurrent trainings in {target!r}):"]
    worst: dict[str, dict] = {}
    for info in infos:
        mem = info.get("memory")
        if mem and (info["network"] not in worst or mem["estimate"] > worst[info["network"]]["estimate"]):
            worst[info["network"]] = mem
    for net, mem in worst.items():
        fits = mem["estimate"] * P.train.concurrent_trainings <= H100_BYTES * USABLE_SHARE
        widths = ", ".join(f"{k} {v:,}" for k, v in mem["widths"].items())
        limit = ", ".join(f"{k} {int(v * mem['max_scale']):,}" for k, v in mem["widths"].items())
        lines.append(f"  {net:<9} batch {mem['batch']:>2} at ({widths}) columns: {mem['estimate'] / 1e9:6.2f} GB; "
                     f"× {P.train.concurrent_trainings} {'fit' if fits else 'DO NOT FIT'}; one training fits up to "
                     f"({limit}) columns")
    seconds = measured_seconds(infos)
    steps = {net: lstm_steps(net, P.train) for net in seconds}
    work = paper_work(P)
    lines += ["", "MEASURED here, seconds per pass (median over the dry run's trainings, scaled to the real mean "
              f"width: image {REAL_MEAN_WIDTH['image']}, CQT {REAL_MEAN_WIDTH['audio']} columns):"]
    for net, kinds in seconds.items():
        lines.append(f"  {net:<9} " + ", ".join(f"{k} {v:.3f} s" for k, v in kinds.items())
                     + f"; {steps[net]} sequential LSTM steps per forward at the real mean width")
    lines += ["", f"Profile {target!r}: {sum(w.passes for w in work if w.kind == 'update'):,} updates, "
              f"{sum(w.passes for w in work if w.kind != 'update'):,} forward calls, "
              f"{sum(w.trainings for w in work)} trainings.",
              f"On this CPU, one training at a time (MEASURED step times × counted passes): "
              f"{projection(work, seconds, steps, 1.0)['cpu']:,.0f} h.",
              f"PROJECTED on an H100 (ASSUMED speed-up X over this CPU per pass, floors {FLOOR_UPDATE_S * 1e3:g} ms "
              f"per update / {FLOOR_FORWARD_S * 1e3:g} ms per forward + {LSTM_STEP_S * 1e6:g} µs per LSTM step; "
              "wall with C concurrent trainings = max(GPU-hours / C, arithmetic)), hours:",
              f"  {'X':>6} {'GPU-hours':>10} " + " ".join(f"{f'wall C={c}':>11}" for c in CONCURRENCY)]
    for x in SPEEDUPS:
        gpu = projection(work, seconds, steps, x)["gpu"]
        walls = [projection(work, seconds, steps, x, c)["wall"] for c in CONCURRENCY]
        label = "∞" if math.isinf(x) else f"{x:g}"
        lines.append(f"  {label:>6} {gpu:>10.1f} " + " ".join(f"{w:>11.1f}" for w in walls))
    lines.append("Not included: the piano study (notebooks 06-08), word graphs and fusion (CPU work), corpus and "
                 "features.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m mtlnb.camera_primus.networks.budget [--profile paper-dry] [--target paper]``: print
    :func:`report`."""
    from mtlnb.camera_primus.study import primus_study
    from mtlnb.profiles import PROFILE_NAMES, get_profile

    parser = argparse.ArgumentParser(description="memory checks and projected GPU cost from a dry run")
    parser.add_argument("--profile", default="paper-dry", choices=PROFILE_NAMES, help="the dry run's profile")
    parser.add_argument("--target", default="paper", choices=PROFILE_NAMES, help="the profile projected")
    args = parser.parse_args(argv)
    print(report(primus_study(get_profile(args.profile)), args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
