"""The one training loop of the project, shared by the GradSPSA study (CTC) and the piano study.

:func:`train` runs epochs of a model on a :class:`Task` (what the loss is, how to evaluate, how to batch) and
keeps everything a long run needs in one folder::

    run_dir/log.csv    one row per epoch: epoch, train_loss, val_<metric>..., seconds, lr (rewritten atomically)
    run_dir/last.pt    everything needed to resume after the last finished epoch (written atomically each epoch)
    run_dir/best.pt    the model weights at the best validation value of ``task.metric`` so far
    run_dir/snapshot-<v>.pt   the weights of the first epoch whose metric reached v (``config.snapshots_at``)

Checkpoint contents (plain tensors and Python values, loadable with ``torch.load(..., weights_only=True)``):
``last.pt`` = ``{"format", "epoch" (finished epochs), "model" (state_dict), "optimizer", "scaler" (or None),
"best" {"metric", "mode", "value", "epoch"}, "history" (the log rows), "rng" (one entry per process: torch, cuda,
numpy, python states), "config" (the TrainConfig as a dict)}``; ``best.pt`` = ``{"format", "epoch", "metric",
"value", "model", "config"}``; a snapshot is a ``best.pt`` with its ``"target"`` added.  Epochs are counted from 1
in files (row ``epoch`` = 1 after the first epoch).

Contracts
---------
- **Resume.** When ``run_dir/last.pt`` exists, training continues after its epoch, with the model, optimiser,
  loss scaler, best value, log and random-number states it holds.  On the CPU a run interrupted between epochs and
  resumed gives bit-identical weights and log (except the ``seconds`` column) to an uninterrupted one; on a GPU
  cuDNN and the CUDA CTC kernels are not deterministic, so the runs agree only statistically.  Fields that change
  the optimisation (``RESUME_FIELDS``) must equal the checkpoint's, otherwise :func:`train` raises rather than
  silently mixing two set-ups; ``epochs`` may grow (train longer), and device, workers, AMP and bars may change.
- **Finished runs** (``epoch`` in ``last.pt`` ≥ ``config.epochs``) return at once without training.
- **Selection.** ``best.pt`` changes only on a strict improvement of ``task.metric`` (ties keep the earlier epoch,
  as the baseline's ``val_symer < best_symer``); a NaN metric never counts as an improvement.
- **On return** the model holds the weights of ``best.pt`` (``config.restore_best``; the baseline tests the
  best-validation model), or those of the last epoch.
- **Seeding.** A fresh run seeds torch, NumPy and Python's ``random`` with ``seed + rank`` when :func:`train` starts,
  after the caller built the model (seed before building it for a reproducible initialisation).  Dropout masks
  therefore differ across DDP ranks, as in nanoGPT.  The batch order comes from the task's sampler, seeded by
  ``seed`` and the epoch (the same on every rank).
- **Non-finite losses** stop training with a ``FloatingPointError`` naming the epoch, step and sample ids; a CTC
  task removes infeasible samples beforehand (:func:`mtlnb.camera_primus.networks.ctc_tasks.filter_feasible`).
  The losses are looked at on the host every ``config.check_every`` steps (default: every step on the CPU, where
  reading a number costs nothing and the bad step is caught before its update; every 100 steps on a GPU, where
  each read waits for the device to drain its queue and would make a small-batch training latency-bound).  Under
  a deferred check the steps after a non-finite loss still update the weights until the check; the epoch is then
  not checkpointed, so ``last.pt`` and ``best.pt`` never hold them.  Results are identical for any interval.

Host synchronisation
--------------------
Per step, nothing is read back from the device except at the checks above (and the progress bar's loss, shown at
the same checks).  A task may list batch entries that stay on the host (``host_keys``: the CTC tasks' labels and
lengths, which the CTC loss validates on the host anyway), so that checking them costs no device round trip.

Devices, precision, several processes
-------------------------------------
- ``device="auto"`` is CUDA when available, else the CPU.  On CUDA with ``amp``, the task's loss runs under
  :func:`torch.autocast` (bfloat16 by default; float16 with a :class:`torch.amp.GradScaler`); tasks compute
  numerically delicate parts (the CTC loss) in float32 themselves.  AMP is off on the CPU.
- Batches are moved with ``non_blocking`` copies from pinned memory on CUDA (``pin_memory``).
- **DDP.** When ``WORLD_SIZE`` > 1 (``torchrun``), :func:`train` joins the process group (NCCL on CUDA, gloo on the
  CPU; it leaves it again at the end if it created it), wraps the model in ``DistributedDataParallel`` and gives
  rank *r* the global batches *r*, *r + W*, … of every epoch (the global order is the same on every rank; the
  last ``len % W`` batches are dropped so that all ranks take the same number of steps).  So one optimiser step
  averages ``W × batch_size`` samples: scale the batch size or the learning rate yourself if that matters.
  **Validation runs on rank 0 only** (on the unwrapped model) and its metrics are broadcast to the other ranks:
  a validation set is small next to a training epoch, and rank-0 evaluation needs nothing from the task but a dict
  of floats.  The training loss in the log is averaged over all ranks' steps.  Only rank 0 writes files; the
  random-number states of every rank are gathered into ``last.pt`` so that a DDP run resumes exactly too.
  BatchNorm statistics are taken from rank 0 on every rank at the end of each epoch (DDP copies them from rank 0
  before each step, but each rank's last step updates its own), so all ranks end every epoch in the same state.
"""

from __future__ import annotations

import csv
import math
import os
import pickle
import random
import time
import warnings
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, runtime_checkable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm  # widgets in a notebook (no stderr band when a bar closes), text elsewhere

from mtlnb.core import io

CHECKPOINT_FORMAT = 1
OPTIMIZERS = ("adam", "sgd_nesterov")
AMP_DTYPES = ("bfloat16", "float16")
# TrainConfig fields that change the optimisation: a resumed run must use the checkpoint's values.
RESUME_FIELDS = ("batch_size", "optimizer", "lr", "momentum", "weight_decay", "seed", "max_batches_per_epoch",
                 "grad_clip")
# Steps between host reads of the losses on a GPU when TrainConfig.check_every is None: one read per 100 steps
# costs under 1 % of a latency-bound epoch, and a divergence is still named within 100 steps of it.
DEFERRED_CHECK_STEPS = 100


@dataclass(frozen=True)
class TrainConfig:
    """How to train; the defaults are the GradSPSA thesis's OMR set-up (baseline: Adam 1e-3, batch 16, 150 epochs)."""

    epochs: int = 150  # baseline and thesis: 150 epochs, the best validation epoch kept
    batch_size: int = 16  # samples per step and process: OMR 16, A2S 4, GradSPSA 2 pairs (the papers)
    optimizer: str = "adam"  # "adam" (baseline, thesis) or "sgd_nesterov" (piano paper: SGD, momentum, Nesterov)
    lr: float = 1e-3  # Adam 1e-3 (baseline, thesis); the piano paper's η is 0.01 or 0.05
    momentum: float = 0.9  # SGD only: the piano paper's 0.9 (Adam keeps its default betas, as Keras')
    weight_decay: float = 0.0  # neither paper uses any
    seed: int = 42  # the baseline's seed: dropout masks, batch order, loader workers
    max_batches_per_epoch: int | None = None  # cap on global batches per epoch (smoke runs); None = all
    eval_batch_size: int | None = None  # None = batch_size; 1 = the baseline's sample-by-sample validation (no padding)
    device: str = "auto"  # "auto" = CUDA when available, else CPU; or a torch device string ("cpu", "cuda:1")
    amp: bool = True  # autocast on CUDA (off on the CPU, where it gains nothing and costs bit-exact resumes)
    amp_dtype: str = "bfloat16"  # bf16 needs no loss scaling; "float16" (older GPUs) uses a GradScaler
    num_workers: int = 0  # DataLoader processes; 0 loads in the training process (cached features load fast)
    pin_memory: bool = True  # page-locked host batches for asynchronous copies; used only on CUDA
    grad_clip: float | None = None  # max global gradient norm; None, as neither paper clips
    find_unused_parameters: bool = False  # DDP: True only if some trainable parameter can miss a gradient in a step
    restore_best: bool = True  # leave best.pt's weights in the model on return (the baseline tests that model)
    # Values of task.metric at which to keep the model on the way: the first epoch whose metric reaches each value
    # (<= for mode "min") writes snapshot_path(run_dir, value).  Mini's weaker OMR levels come from these
    # (mtlnb.camera_primus.evaluation.scenarios); empty keeps none (the papers).
    snapshots_at: tuple[float, ...] = ()
    progress: bool = True  # tqdm bars and one summary line per epoch (rank 0 only)
    # Steps between host reads of the training losses (the non-finite check, the bar's loss); None = 1 on the CPU
    # (free there), DEFERRED_CHECK_STEPS elsewhere (each read drains the GPU's queue).  Never changes the results.
    check_every: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"TrainConfig.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"TrainConfig.optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainConfig.lr must be a positive number, got {self.lr}")
        if self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"TrainConfig.amp_dtype must be one of {AMP_DTYPES}, got {self.amp_dtype!r}")
        for name in ("max_batches_per_epoch", "eval_batch_size", "check_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"TrainConfig.{name} must be None or >= 1, got {value}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be None or > 0, got {self.grad_clip}")
        if self.num_workers < 0:
            raise ValueError(f"TrainConfig.num_workers must be >= 0, got {self.num_workers}")
        if not all(math.isfinite(v) for v in self.snapshots_at):
            raise ValueError(f"TrainConfig.snapshots_at must hold finite values, got {self.snapshots_at}")


@runtime_checkable
class Task(Protocol):
    """What :func:`train` needs to know about a learning problem.

    Attributes
    ----------
    metric : str
        Log column that selects ``best.pt``: ``"val_"`` + a key of :meth:`evaluate`'s dict (e.g. ``"val_ser"``).
    mode : str
        ``"min"`` (error rates, losses) or ``"max"`` (F1).

    A task may also have ``check_dataset(dataset, name)``, called on both datasets before the first epoch, which
    raises ``ValueError`` naming the samples that :meth:`loss` or :meth:`evaluate` could not use (so that no epoch
    is trained and then lost to them), and ``host_keys``, a tuple of batch entries that the loop leaves on the host
    (lengths the task reads on the host: moving them to a GPU and back would synchronise every step).
    """

    metric: str
    mode: str

    def collate(self, items: list) -> Any:
        """Dataset items → one batch (a dict or sequence of tensors; tensors are moved to the device by the loop)."""

    def batch_sampler(self, dataset, batch_size: int, seed: int) -> Sampler:
        """Lists of dataset indices, one per batch; must have ``set_epoch(epoch)`` and be deterministic given
        (seed, epoch), because every DDP rank draws the same global order."""

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Scalar training loss of one batch (already on the model's device); ``model`` may be DDP-wrapped."""

    def evaluate(self, model: nn.Module, batches: Iterable) -> dict[str, float]:
        """Metrics over batches already on the device; called in eval mode under ``torch.no_grad``."""


@dataclass
class TrainResult:
    """What a call of :func:`train` leaves behind."""

    run_dir: Path
    metric: str  # the selection metric, a log column
    mode: str  # "min" or "max"
    best_value: float  # its best value (NaN if no epoch ran)
    best_epoch: int  # epoch (from 1) of best.pt; 0 if none
    epochs_done: int  # finished epochs in the run folder
    resumed_from: int  # finished epochs found in last.pt when this call began (0 = fresh run)
    history: list[dict] = field(default_factory=list)  # the log rows
    # Per epoch trained by this call (not saved): epoch, train_seconds, train_steps (this process's), val_seconds,
    # val_batches -- the step times that project a longer run (mtlnb.camera_primus.networks.budget).
    timings: list[dict] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.run_dir / "log.csv"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"


class ShuffledBatchSampler(Sampler[list[int]]):
    """Seeded random batches (a fresh permutation per epoch), for tasks whose samples have no width to bucket by.

    Parameters
    ----------
    n : int
        Dataset size.
    batch_size : int
    seed : int
        With the epoch (:meth:`set_epoch`), fixes the order: the same on every DDP rank and after a resume.
    drop_last : bool
        Drop the last, smaller batch.
    """

    def __init__(self, n: int, batch_size: int, seed: int = 42, drop_last: bool = False):
        if n < 0 or batch_size < 1:
            raise ValueError(f"ShuffledBatchSampler: need n >= 0 and batch_size >= 1, got {n}, {batch_size}")
        self.n, self.batch_size, self.seed, self.drop_last = n, batch_size, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        for i in range(0, len(self) * self.batch_size, self.batch_size):
            yield order[i: i + self.batch_size].tolist()

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)


class _RankBatches(Sampler[list[int]]):
    """One process's share of an epoch's global batches: capped, trimmed to a multiple of the world size, strided."""

    def __init__(self, sampler: Sampler, rank: int, world: int, max_batches: int | None):
        self.sampler, self.rank, self.world, self.max_batches = sampler, rank, world, max_batches

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def _global(self) -> list[list[int]]:
        batches = list(self.sampler)
        if self.max_batches is not None:
            batches = batches[: self.max_batches]
        return batches[: len(batches) - len(batches) % self.world]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._global()[self.rank:: self.world])

    def __len__(self) -> int:
        n = len(self.sampler)
        if self.max_batches is not None:
            n = min(n, self.max_batches)
        return n // self.world


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def move_to(batch: Any, device: torch.device, non_blocking: bool = False, keep: Iterable[str] = ()) -> Any:
    """Move every tensor in a (nested) dict/list/tuple batch to ``device``; other values are kept as they are, and so
    are the entries of a dict batch named in ``keep`` (a task's ``host_keys``)."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, dict):
        keep = frozenset(keep)
        return {k: v if k in keep else move_to(v, device, non_blocking) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and any(isinstance(v, (torch.Tensor, dict, list, tuple)) for v in batch):
        return type(batch)(move_to(v, device, non_blocking) for v in batch)
    return batch


def resolve_device(device: str) -> torch.device:
    """``"auto"`` → CUDA if available, else CPU; anything else is passed to :class:`torch.device`."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def snapshot_path(run_dir: str | os.PathLike, value: float) -> Path:
    """``run_dir/snapshot-<value>.pt``: the weights of the first epoch whose metric reached ``value``
    (:attr:`TrainConfig.snapshots_at`; the format of ``best.pt``)."""
    return Path(run_dir) / f"snapshot-{float(value):g}.pt"


def _reached(value: float, target: float, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    return value <= target if mode == "min" else value >= target


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the ``"model"`` state dict of a ``best.pt`` or ``last.pt`` into ``model`` (in place); returns it."""
    state = _read_checkpoint(Path(path))
    unwrap(model).load_state_dict(state["model"])
    return model


def _read_checkpoint(path: Path) -> dict:
    """``torch.load`` of a checkpoint on the CPU; ``ValueError`` naming ``path`` if it cannot be read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise ValueError(f"{path}: unreadable checkpoint ({type(e).__name__}: {first}); delete it to start the run "
                         "afresh, or restore it") from None


def _save(obj: dict, path: Path) -> None:
    """``torch.save`` through :func:`mtlnb.core.io.atomic_path`: an interrupted write never leaves a broken
    checkpoint."""
    with io.atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _write_log(path: Path, rows: list[dict]) -> None:
    """The whole log as CSV (floats in Python's shortest round-trip form, so equal runs give equal files)."""
    buf = StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    io.write_text(path, buf.getvalue())


def _rng_state() -> dict:
    """This process's random-number states as tensors and plain values (``weights_only``-loadable)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(key.astype(np.int64)), pos, has_gauss, cached),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _improved(value: float, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def _check_resumable(saved: dict, config: TrainConfig, path: Path) -> None:
    diff = {k: (saved.get(k), getattr(config, k)) for k in RESUME_FIELDS if saved.get(k) != getattr(config, k)}
    if diff:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"{path} was trained with different settings ({detail}); resume with the same settings "
                         "or use a new run folder")


class _Distributed:
    """Rank, world size and the few collectives the loop needs; a no-op stand-in with one process."""

    def __init__(self, device: torch.device):
        self.created = False
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.created = True
        self.active = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank)) if self.active else 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def broadcast(self, obj: Any) -> Any:
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj: Any) -> list:
        if not self.active:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        if self.active:
            dist.all_reduce(t)
        return t

    def sync_buffers(self, model: nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm statistics), which DDP otherwise leaves as each rank's own
        after the last step of an epoch."""
        if self.active:
            for buf in model.buffers():
                dist.broadcast(buf, src=0)

    def close(self) -> None:
        if self.created:
            dist.destroy_process_group()


# ------------------------------------------------------------------------------------------- stages of train()


def _check_inputs(task: Task, train_dataset, val_dataset) -> None:
    """``ValueError`` for a task without the :class:`Task` members, a bad ``mode`` or an empty dataset."""
    missing = [n for n in ("metric", "mode", "collate", "batch_sampler", "loss", "evaluate") if not hasattr(task, n)]
    if missing:
        raise ValueError(f"train: the task {type(task).__name__} lacks {missing} (see mtlnb.core.training.Task)")
    if task.mode not in ("min", "max"):
        raise ValueError(f"task.mode must be 'min' or 'max', got {task.mode!r}")
    if len(train_dataset) == 0 or len(val_dataset) == 0:
        raise ValueError(f"train: empty dataset (train {len(train_dataset)}, validation {len(val_dataset)} samples)")
    check = getattr(task, "check_dataset", None)
    if check is not None:
        check(train_dataset, "training")
        check(val_dataset, "validation")


def _load_resumable(last_path: Path, config: TrainConfig, task: Task) -> dict | None:
    """``last.pt`` if the run folder has one (``None`` for a fresh run), checked against ``config`` and ``task``.

    Raises
    ------
    ValueError
        The checkpoint was trained with other ``RESUME_FIELDS`` or selects by another metric, or cannot be read
        (truncated, say); the message names its path.
    """
    if not last_path.exists():
        return None
    ckpt = _read_checkpoint(last_path)
    _check_resumable(ckpt["config"], config, last_path)
    if ckpt["best"]["metric"] != task.metric:
        raise ValueError(f"{last_path} selects by {ckpt['best']['metric']!r}, the task by {task.metric!r}; "
                         "use a new run folder")
    return ckpt


@dataclass
class _Progress:
    """What the epochs carry forward and ``last.pt`` keeps: finished epochs, the log rows, the best value."""

    start: int  # finished epochs when this call of train() began (0 = fresh run)
    history: list[dict]  # the log rows, one per finished epoch
    best: dict  # {"metric", "mode", "value" (None until an epoch improves), "epoch" (0 = none)}
    timings: list[dict] = field(default_factory=list)  # epochs trained by this call (TrainResult.timings)

    @classmethod
    def resume(cls, ckpt: dict | None, task: Task) -> "_Progress":
        """The progress stored in ``last.pt``, or a fresh run's (no epoch, no best value)."""
        if ckpt is None:
            return cls(0, [], {"metric": task.metric, "mode": task.mode, "value": None, "epoch": 0})
        return cls(ckpt["epoch"], list(ckpt["history"]), dict(ckpt["best"]))

    def record(self, row: dict, metric: str, mode: str) -> bool:
        """Append one epoch's log row; returns whether ``row[metric]`` strictly improved on the best (then kept)."""
        self.history.append(row)
        improved = _improved(row[metric], self.best["value"], mode)
        if improved:
            self.best.update(value=row[metric], epoch=row["epoch"])
        return improved

    def result(self, run_dir: Path, task: Task) -> TrainResult:
        value = self.best["value"]
        return TrainResult(run_dir, task.metric, task.mode, math.nan if value is None else value,
                           self.best["epoch"], len(self.history), self.start, self.history, self.timings)


def _make_optimizer(params: list[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, nesterov=True,
                           weight_decay=config.weight_decay)


def _precision(config: TrainConfig, device: torch.device) -> tuple[torch.amp.GradScaler, Callable]:
    """The loss scaler and the autocast context factory: AMP only on CUDA with ``config.amp``.

    bfloat16 needs no scaling (the scaler is disabled); float16, asked for or the fallback on GPUs without
    bfloat16, gets an enabled :class:`torch.amp.GradScaler`.  Off AMP the factory is :func:`contextlib.nullcontext`.
    """
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = getattr(torch, config.amp_dtype)
    if use_amp and amp_dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        amp_dtype = torch.float16  # pre-Ampere GPUs: fp16 with loss scaling instead
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype is torch.float16)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype)) if use_amp else nullcontext
    return scaler, autocast


def _restore_or_seed(ckpt: dict | None, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                     config: TrainConfig, ddp: _Distributed, last_path: Path) -> None:
    """Resume the optimiser, scaler and random states from ``last.pt``, or seed a fresh run with ``seed + rank``.

    A checkpoint saved by another number of processes cannot give each rank its own states back: the random
    states are then re-seeded from (seed, finished epochs, rank), with a warning that the run will not repeat.
    """
    if ckpt is None:
        _seed_all(config.seed + ddp.rank)
        return
    optimizer.load_state_dict(ckpt["optimizer"])
    if ckpt["scaler"] is not None and scaler.is_enabled():
        scaler.load_state_dict(ckpt["scaler"])
    states = ckpt["rng"]
    if len(states) == ddp.world:
        _set_rng_state(states[ddp.rank])
    else:
        # stacklevel 4: _restore_or_seed ← _setup ← train ← the caller of train
        warnings.warn(f"{last_path}: saved by {len(states)} processes, resumed by {ddp.world}; "
                      "random states re-seeded, so this run will not repeat the original exactly", stacklevel=4)
        _seed_all(config.seed + 1000 * ckpt["epoch"] + ddp.rank)


def _loader_seed(seed: int, epoch: int, rank: int) -> int:
    """Seed of the DataLoader's worker generator in ``epoch`` (from 0): re-seeded every epoch so that a resumed
    run gives its workers the same seeds as an uninterrupted one."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


@dataclass
class _Loop:
    """What :func:`train` sets up once and every epoch uses."""

    model: nn.Module  # the caller's model (unwrapped): validation, checkpoints, BatchNorm sync
    net: nn.Module  # the model that trains: ``model`` or its DistributedDataParallel wrapper
    task: Task
    config: TrainConfig
    device: torch.device
    ddp: _Distributed
    params: list[nn.Parameter]  # the optimised parameters (requires_grad)
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    autocast: Callable  # () -> context manager: autocast on CUDA with AMP, else nullcontext
    pin: bool  # pinned host batches and non-blocking copies (CUDA only)
    bars: bool  # progress bars and epoch lines (rank 0 only)
    loader_rng: torch.Generator  # the DataLoaders' worker seeds, re-seeded per epoch (_loader_seed)
    train_batches: _RankBatches
    train_loader: DataLoader
    val_loader: DataLoader | None  # rank 0 only
    run_dir: Path


def _setup(model: nn.Module, task: Task, train_dataset, val_dataset, ckpt: dict | None, config: TrainConfig,
           device: torch.device, ddp: _Distributed, run_dir: Path) -> _Loop:
    """Model on the device (with ``last.pt``'s weights), optimiser, precision, random states, DDP and loaders.

    The order is part of the contract: random states are restored (or seeded) after the optimiser exists and
    before anything draws, so that a resumed run repeats an uninterrupted one.
    """
    model.to(device)
    if ckpt:
        model.load_state_dict(ckpt["model"])
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("train: the model has no parameter with requires_grad")
    optimizer = _make_optimizer(params, config)
    scaler, autocast = _precision(config, device)
    _restore_or_seed(ckpt, optimizer, scaler, config, ddp, run_dir / "last.pt")

    net = model
    if ddp.active:
        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=config.find_unused_parameters)

    pin = config.pin_memory and device.type == "cuda"
    loader_rng = torch.Generator()

    def loader(dataset, batches) -> DataLoader:
        return DataLoader(dataset, batch_sampler=batches, collate_fn=task.collate, num_workers=config.num_workers,
                          pin_memory=pin, generator=loader_rng, persistent_workers=config.num_workers > 0)

    train_batches = _RankBatches(task.batch_sampler(train_dataset, config.batch_size, config.seed),
                                 ddp.rank, ddp.world, config.max_batches_per_epoch)
    if len(train_batches) == 0:
        raise ValueError(f"train: no training batch per process ({len(train_dataset)} samples, batch "
                         f"{config.batch_size}, {ddp.world} processes, cap {config.max_batches_per_epoch})")
    train_loader = loader(train_dataset, train_batches)
    val_batches = task.batch_sampler(val_dataset, config.eval_batch_size or config.batch_size, config.seed)
    val_loader = loader(val_dataset, val_batches) if ddp.main else None
    return _Loop(model, net, task, config, device, ddp, params, optimizer, scaler, autocast, pin,
                 config.progress and ddp.main, loader_rng, train_batches, train_loader, val_loader, run_dir)


def check_interval(config: TrainConfig, device: torch.device) -> int:
    """Steps between host reads of the training losses (``TrainConfig.check_every``; module docstring)."""
    if config.check_every is not None:
        return config.check_every
    return 1 if device.type == "cpu" else DEFERRED_CHECK_STEPS


class _LossCheck:
    """The training losses since the last host read, and the one read that checks them.

    ``add`` keeps a step's loss on the device (no synchronisation); ``due`` says when ``check`` should read them
    (every ``every`` steps); ``check`` reads them all at once and raises ``FloatingPointError`` naming the first
    non-finite one's step and samples, else returns their mean (for the progress bar).
    """

    def __init__(self, every: int, desc: str):
        self.every, self.desc = every, desc
        self.losses: list[torch.Tensor] = []
        self.ids: list = []  # each step's sample ids (host values), for the error message
        self.first_step = 1  # step number (from 1) of losses[0]

    def add(self, loss: torch.Tensor, batch: Any) -> None:
        self.losses.append(loss.detach())
        self.ids.append(batch.get("ids") if isinstance(batch, dict) else None)

    def due(self) -> bool:
        return len(self.losses) >= self.every

    def check(self) -> float | None:
        if not self.losses:
            return None
        values = torch.stack([v.float() for v in self.losses]).cpu()  # the one host read
        bad = (~torch.isfinite(values)).nonzero().flatten().tolist()
        if bad:
            i = bad[0]
            ids = self.ids[i]
            raise FloatingPointError(f"non-finite training loss {values[i].item()} at {self.desc}, step "
                                     f"{self.first_step + i}" + (f", samples {ids}" if ids is not None else ""))
        self.first_step += len(self.losses)
        self.losses, self.ids = [], []
        return float(values.mean())


def _train_epoch(net, task, loader, optimizer, scaler, params, config, device, pin, autocast, desc, bars):
    """One pass over this process's batches; returns ``[loss sum, steps]`` (float64, on the device).

    Nothing is read back from the device between the loss checks (:class:`_LossCheck`, every
    :func:`check_interval` steps; with an interval of 1 a step is checked before its update)."""
    net.train()
    total = torch.zeros(2, dtype=torch.float64, device=device)
    one = torch.ones((), dtype=torch.float64, device=device)
    keep = tuple(getattr(task, "host_keys", ()))
    checks = _LossCheck(check_interval(config, device), desc)
    bar = tqdm(loader, desc=desc, leave=False, disable=not bars, dynamic_ncols=True)
    for batch in bar:
        batch = move_to(batch, device, non_blocking=pin, keep=keep)
        with autocast():
            loss = task.loss(net, batch)
        checks.add(loss, batch)
        if checks.due():
            mean = checks.check()
            if bars:
                bar.set_postfix(loss=f"{mean:.4g}")
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the fp16-scaled ones
            nn.utils.clip_grad_norm_(params, config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        total += torch.stack([loss.detach().double(), one])
    bar.close()
    checks.check()  # the epoch's last steps: no epoch is logged with a non-finite loss in it
    return total


def _validate(model, task, loader, device, pin, autocast, bars) -> dict[str, float]:
    """``task.evaluate`` on the unwrapped model in eval mode, keys prefixed with ``val_``."""
    model.eval()
    keep = tuple(getattr(task, "host_keys", ()))
    with torch.no_grad(), autocast():
        batches = (move_to(b, device, non_blocking=pin, keep=keep)
                   for b in tqdm(loader, desc="validation", leave=False, disable=not bars, dynamic_ncols=True))
        return {f"val_{k}": float(v) for k, v in task.evaluate(model, batches).items()}


def _log_row(epoch: int, train_loss: float, metrics: dict[str, float], seconds: float, lr: float) -> dict:
    """One ``log.csv`` row, columns in the file's order: epoch (from 1), train_loss, the ``val_`` metrics, seconds
    (wall time of the epoch), lr (of the first parameter group)."""
    return {"epoch": epoch, "train_loss": train_loss, **metrics, "seconds": seconds, "lr": lr}


def _weights_checkpoint(epoch: int, metric: str, value: float, state: dict, config: TrainConfig,
                        target: float | None = None) -> dict:
    """The contents of ``best.pt`` (or, with ``target``, of a snapshot): see the module docstring."""
    head = {"format": CHECKPOINT_FORMAT, "epoch": epoch, "metric": metric, "value": value}
    if target is not None:
        head["target"] = float(target)
    return {**head, "model": state, "config": asdict(config)}


def _save_epoch(loop: _Loop, progress: _Progress, row: dict, improved: bool, rng: list[dict]) -> None:
    """Rank 0's files after an epoch: the log, ``best.pt`` (on an improvement), due snapshots, ``last.pt``.

    Order matters for crash safety: ``last.pt`` is written last, so a resume never sees a newer log or ``best.pt``
    than its own epoch without repeating (identically, on the CPU) that epoch.
    """
    config, task, run_dir = loop.config, loop.task, loop.run_dir
    epoch, value = row["epoch"], row[task.metric]
    _write_log(run_dir / "log.csv", progress.history)
    state = {k: v.detach().cpu().clone() for k, v in loop.model.state_dict().items()}
    if improved:
        _save(_weights_checkpoint(epoch, task.metric, progress.best["value"], state, config), run_dir / "best.pt")
    for target in config.snapshots_at:  # an existing file is an earlier epoch's: the first one counts
        snap = snapshot_path(run_dir, target)
        if not snap.exists() and _reached(value, target, task.mode):
            _save(_weights_checkpoint(epoch, task.metric, value, state, config, target), snap)
    _save({"format": CHECKPOINT_FORMAT, "epoch": epoch, "model": state, "optimizer": loop.optimizer.state_dict(),
           "scaler": loop.scaler.state_dict() if loop.scaler.is_enabled() else None, "best": dict(progress.best),
           "history": progress.history, "rng": rng, "config": asdict(config)}, run_dir / "last.pt")


def _epoch_line(row: dict, epochs: int, improved: bool) -> str:
    """The summary printed after an epoch: every log column but the epoch, ``*`` on a new best."""
    shown = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch")
    return f"epoch {row['epoch']}/{epochs}: {shown}" + (" *" if improved else "")


def _run_epoch(loop: _Loop, progress: _Progress, epoch: int) -> None:
    """Epoch ``epoch`` (from 0): train, validate on rank 0, log, select, checkpoint; every rank returns in step."""
    config, task, ddp = loop.config, loop.task, loop.ddp
    t0 = time.perf_counter()
    loop.loader_rng.manual_seed(_loader_seed(config.seed, epoch, ddp.rank))
    loop.train_batches.set_epoch(epoch)
    total = _train_epoch(loop.net, task, loop.train_loader, loop.optimizer, loop.scaler, loop.params, config,
                         loop.device, loop.pin, loop.autocast, f"epoch {epoch + 1}/{config.epochs}", loop.bars)
    loss_sum, steps = ddp.all_reduce_sum(total).tolist()  # the epoch's one read of the loss sums
    ddp.sync_buffers(loop.model)
    t1 = time.perf_counter()

    metrics = _validate(loop.model, task, loop.val_loader, loop.device, loop.pin, loop.autocast, loop.bars) \
        if ddp.main else None
    progress.timings.append({"epoch": epoch + 1, "train_seconds": t1 - t0, "train_steps": len(loop.train_batches),
                             "val_seconds": time.perf_counter() - t1,
                             "val_batches": len(loop.val_loader) if loop.val_loader is not None else 0})
    metrics = ddp.broadcast(metrics)
    if task.metric not in metrics:
        raise ValueError(f"task.metric {task.metric!r} is not among the validation metrics {sorted(metrics)}")
    row = _log_row(epoch + 1, loss_sum / steps, metrics, time.perf_counter() - t0,
                   loop.optimizer.param_groups[0]["lr"])
    row["seconds"] = ddp.broadcast(row["seconds"])
    improved = progress.record(row, task.metric, task.mode)
    rng = ddp.gather(_rng_state())
    if ddp.main:
        _save_epoch(loop, progress, row, improved, rng)
        if loop.bars:
            tqdm.write(_epoch_line(row, config.epochs, improved))
    ddp.barrier()


def train(model: nn.Module, task: Task, train_dataset, val_dataset, run_dir: str | os.PathLike,
          config: TrainConfig = TrainConfig()) -> TrainResult:
    """Train ``model`` on ``task``, selecting the epoch by validation, resumably, into ``run_dir``.

    The stages: check the inputs (:func:`_check_inputs`), read ``last.pt`` (:func:`_load_resumable`,
    :class:`_Progress`), set up model, optimiser, random states and loaders (:func:`_setup`), run the epochs
    (:func:`_run_epoch`: train, validate, log, select, checkpoint), and leave ``best.pt``'s weights in the model.

    Parameters
    ----------
    model : torch.nn.Module
        Built by the caller (seed before building it for a reproducible initialisation).  Moved to the device and
        trained in place; only parameters with ``requires_grad`` are optimised (GradSPSA's frozen OMR is not).
    task : Task
        Loss, evaluation, collation and batching (e.g. :func:`mtlnb.camera_primus.networks.ctc_tasks.omr_task`).
    train_dataset, val_dataset : torch.utils.data.Dataset
        Map-style datasets whose items ``task.collate`` understands; neither may be empty.
    run_dir : path
        Folder of ``log.csv``, ``last.pt`` and ``best.pt`` (created if needed); resumed from when it holds
        ``last.pt``.
    config : TrainConfig

    Returns
    -------
    TrainResult
        Best value and epoch of ``task.metric``, finished epochs and the log rows.

    Raises
    ------
    ValueError
        Bad task, empty datasets, a metric the task does not produce, or a ``last.pt`` trained with other
        ``RESUME_FIELDS``.
    FloatingPointError
        A non-finite training loss (the epoch, step and, when the batch has ``ids``, the samples are named).
    """
    _check_inputs(task, train_dataset, val_dataset)
    run_dir = Path(run_dir)
    device = resolve_device(config.device)
    ddp = _Distributed(device)
    try:
        if ddp.active and device.type == "cuda":
            device = torch.device("cuda", ddp.local_rank)
            torch.cuda.set_device(device)
        ckpt = _load_resumable(run_dir / "last.pt", config, task)
        progress = _Progress.resume(ckpt, task)
        if progress.start < config.epochs:  # else a finished run: nothing to train
            loop = _setup(model, task, train_dataset, val_dataset, ckpt, config, device, ddp, run_dir)
            if ddp.main and ckpt:
                _write_log(run_dir / "log.csv", progress.history)  # drop rows of an epoch logged, not checkpointed
            for epoch in range(progress.start, config.epochs):
                _run_epoch(loop, progress, epoch)
        if config.restore_best and (run_dir / "best.pt").exists():
            load_weights(model, run_dir / "best.pt")
        return progress.result(run_dir, task)
    finally:
        ddp.close()
