"""Training the piano networks with the shared loop: the task, the networks and grids a study runs, the LR range test.

A run names its network with a :class:`ModelSpec` (hard sharing, :mod:`mtlnb.piano.networks`, or cross-stitch,
:mod:`mtlnb.piano.cross_stitch`), its learning rate and its task weights (:class:`PianoRun`).

What the paper fixes (Kelz et al. 2019, §V) and where it is used here:

- SGD with momentum 0.9 and Nesterov, minibatch 64, 680,000 updates = 20,000 × 34 (:func:`run_grid`: ``updates``
  and ``evals``; the loop's "epoch" is one block of ``updates / evals`` updates followed by a validation pass, so
  the paper's set-up is ``updates=680_000, evals=34``), η ∈ {0.01, 0.05}.
- Loss L = Σ_m λ_m L_m (:class:`PianoTask`); hard sharing with λ_on = λ_int = λ_off = 1 and the eleven
  (λ_vel, λ_sus) rows of Tables I/II (:data:`TASK_WEIGHT_ROWS`); cross-stitch with all λ = 1 ("possible to weigh
  *all* tasks equally"), four networks ({detached, full} × {balanced, imbalanced}) per η (Tables III/IV).
- A diverged configuration is shown as "–" (:func:`run_grid` records ``status="diverged"``; the paper retried
  "with different random parameter initialization": ``restarts``).
- The learning-rate range test (Smith 2018) as in the authors' code (:func:`lr_range_test`).

What a run leaves in its folder: the shared loop's ``log.csv``, ``last.pt``, ``best.pt``; ``status.json``; and for
cross-stitch networks ``alphas.json``, the α of every unit at initialisation and after every validation pass
(:class:`AlphaLog`, read with :func:`alpha_history`: the "α over training" of notebook 08).

Where the paper is silent (our choices):

- **Regression loss**: mean squared error for velocity and sustain.  R² (the reported measure) is one minus a
  normalised squared error, so MSE optimises what is measured; binary cross-entropy would need outputs in [0, 1],
  which a (straight-through) ReLU does not guarantee.  ``regression_loss="bce"`` is not offered for that reason;
  ``"huber"`` is (``torch.nn.functional.smooth_l1_loss``), should outliers matter.
- **Loss reduction**: each L_m is the mean over its batch and keys (ICASSP19's ``BCEWithLogitsLoss(reduction=
  "mean")``), so λ_m compares tasks of 88 and of 1 output on the same scale.
- **Training samples** are frames drawn uniformly with replacement from all training frames
  (:class:`mtlnb.piano.data.RandomBatches`): at 680,000 × 64 draws from 25 M frames this is indistinguishable from
  ICASSP19's per-epoch permutation and needs no 25 M-element permutation.
- **Which model is reported**: the one after the last update (``select="last"``); the paper names no early
  stopping or model selection, only the fixed number of updates.  ``select="best"`` takes the best validation
  value of ``metric`` instead.
- **Divergence**: a non-finite training loss (the loop raises), a non-finite validation loss, or an epoch whose
  mean training loss exceeds ``blowup`` (10) × the lowest one so far.
- **λ = 0**: the head stays in the network (the paper compares models of "roughly the same amount of parameters")
  but gets no loss; its R² is shown as "–", as in the paper's tables.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Sampler
from tqdm.auto import tqdm

from mtlnb.core import io, training
from mtlnb.piano import cross_stitch, data as piano_data, figures, metrics as piano_metrics, networks

TASKS = networks.TASKS
BINARY = networks.BINARY
REGRESSION = networks.REGRESSION
LEARNING_RATES = (0.01, 0.05)  # η of Tables I/III and II/IV
PAPER_UPDATES = 680_000  # 20,000 × 34 (§V)
PAPER_EVALS = 34  # the factor 34 of "20.000 × 34": we validate after every 20,000 updates
REGRESSION_LOSSES = ("mse", "huber")

# Tables I/II, rows 1–11: (λ_vel, λ_sus); λ_on = λ_int = λ_off = 1.  Row 11's λ_vel is blank in the text of
# Table II; Table I gives 1, and both tables list the same grid (their rows 1–10 agree).
TASK_WEIGHT_ROWS = ((0.0, 0.0), (0.0, 0.01), (0.0, 0.1), (0.01, 0.0), (0.01, 0.01), (0.01, 0.1), (0.1, 0.0),
                    (0.1, 0.01), (0.1, 0.1), (0.5, 0.0), (1.0, 0.0))
CROSS_STITCH_ROWS = (("detached", "balanced"), ("detached", "imbalanced"), ("full", "balanced"),
                     ("full", "imbalanced"))  # Tables III/IV, in the paper's row order
ARCHITECTURES = ("hard", "cross_stitch")  # ModelSpec.arch: hard sharing (Tables I/II), cross-stitch (III/IV)
_TABLES = {("hard", 0.01): "I", ("hard", 0.05): "II", ("cross_stitch", 0.01): "III", ("cross_stitch", 0.05): "IV"}


# ------------------------------------------------------------------------------------------------ allocator

# glibc's malloc hands blocks above its mmap threshold back to the system when they are freed, and trims the heap
# top above its trim threshold; a training step of the piano networks allocates and frees several such blocks (the
# activations and noise of the stem: 1-13 MB each at mini sizes), so every step pays for fresh pages again (page
# faults, zeroed by the kernel).  Raising both thresholds keeps the freed memory for the next step: 5-20 % of a CPU
# update here, more on a busy machine (benchmarks/bench_piano_training.py).  Blocks above 64 MiB are still returned.
MMAP_THRESHOLD = 64 << 20  # bytes: larger blocks still come from (and go back to) the system
TRIM_THRESHOLD = 256 << 20  # bytes of free heap top kept for reuse
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Let glibc keep freed blocks of up to :data:`MMAP_THRESHOLD` for reuse instead of returning them at once.

    Process-wide and idempotent; changes only how memory is recycled, never a result.  Called by :func:`run_grid`
    and :func:`lr_range_test`.  Returns False (and does nothing) where the C library is not glibc (macOS, Windows,
    musl).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


# ------------------------------------------------------------------------------------------------------ task


def _weights(weights: dict[str, float] | None) -> dict[str, float]:
    w = {t: 1.0 for t in TASKS}
    if weights:
        unknown = sorted(set(weights) - set(TASKS))
        if unknown:
            raise ValueError(f"task weights: unknown task(s) {unknown}; the tasks are {TASKS}")
        w.update({t: float(v) for t, v in weights.items()})
    bad = {t: v for t, v in w.items() if not (v >= 0 and math.isfinite(v))}
    if bad:
        raise ValueError(f"task weights must be finite and >= 0, got {bad}")
    return w


class PianoTask:
    """The piano study as a :class:`mtlnb.core.training.Task`: L = Σ_m λ_m L_m and the framewise metrics.

    Parameters
    ----------
    weights : dict task -> λ, optional
        Missing tasks weigh 1 (the paper's λ_on = λ_int = λ_off = 1); a weight of 0 drops the task's loss.
    batches_per_epoch : int
        Training batches between two validations (the sampler draws exactly these).
    regression_loss : {"mse", "huber"}
        Loss of velocity and sustain (module docstring: MSE, our choice).
    metric : str
        Key of :meth:`evaluate` that selects ``best.pt`` (prefixed ``val_`` in the log).
    threshold : float
        Decision threshold of the framewise F1.
    hooks : sequence of callables, optional
        Each is called with the model after every validation pass (the loop has no other per-epoch hook): e.g. an
        :class:`AlphaLog` recording the cross-stitch α over training, or a progress bar.
    """

    mode = "max"

    def __init__(self, weights: dict[str, float] | None = None, batches_per_epoch: int = 20_000,
                 regression_loss: str = "mse", metric: str = "frames_f1", threshold: float = 0.5,
                 hooks: Sequence = ()):
        if regression_loss not in REGRESSION_LOSSES:
            raise ValueError(f"PianoTask: regression_loss must be one of {REGRESSION_LOSSES}, got {regression_loss!r}")
        if batches_per_epoch < 1:
            raise ValueError(f"PianoTask: batches_per_epoch must be >= 1, got {batches_per_epoch}")
        self.weights = _weights(weights)
        self.batches_per_epoch, self.regression_loss, self.threshold = batches_per_epoch, regression_loss, threshold
        self.metric = f"val_{metric}"
        self.hooks = tuple(hooks)

    # -- the Task protocol
    def collate(self, items):
        if isinstance(items, dict):  # PianoFrameBatches.__getitems__ already built the batch
            return items
        return {k: torch.stack([torch.as_tensor(it[k]) for it in items]) for k in items[0]}

    def batch_sampler(self, dataset, batch_size: int, seed: int) -> Sampler:
        if getattr(dataset, "shuffle", False):
            return piano_data.RandomBatches(len(dataset), batch_size, self.batches_per_epoch, seed)
        return piano_data.SequentialBatches(len(dataset), batch_size)

    def task_losses(self, outputs: dict[str, torch.Tensor], batch: dict) -> dict[str, torch.Tensor]:
        """L_m of every task with λ_m > 0 (each a mean over batch and keys), in float32."""
        out = {}
        for t, w in self.weights.items():
            if w == 0 or t not in outputs:
                continue
            y, target = outputs[t].float(), batch[t].float()
            if t in BINARY:
                out[t] = F.binary_cross_entropy_with_logits(y, target)
            elif self.regression_loss == "mse":
                out[t] = F.mse_loss(y, target)
            else:
                out[t] = F.smooth_l1_loss(y, target, beta=0.1)
        return out

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        losses = self.task_losses(model(batch["x"]), batch)
        if not losses:
            raise ValueError("PianoTask: every task weight is 0 (or no head matches a weighted task)")
        return sum(self.weights[t] * v for t, v in losses.items())

    def evaluate(self, model: nn.Module, batches: Iterable) -> dict[str, float]:
        acc = piano_metrics.FramewiseAccumulator(self.threshold)
        loss_sum, n = 0.0, 0
        for batch in batches:
            outputs = model(batch["x"])
            losses = self.task_losses(outputs, batch)
            loss_sum += float(sum(self.weights[t] * v for t, v in losses.items())) * len(batch["x"])
            n += len(batch["x"])
            pred = networks.activations(outputs)
            acc.update({t: v.float().cpu().numpy() for t, v in pred.items()},
                       {t: batch[t].float().cpu().numpy() for t in pred}, batch["piece"].cpu().numpy())
        result = acc.result()
        result["loss"] = loss_sum / n if n else float("nan")
        result["mean_f1"] = float(np.mean([result[f"{t}_f1"] for t in BINARY if f"{t}_f1" in result]))
        for hook in self.hooks:
            hook(model)
        return result


# ----------------------------------------------------------------------------------------------------- grids


@dataclass(frozen=True)
class ModelSpec:
    """Which network to build: what a run of the study grid names."""

    arch: str = "hard"  # "hard" (Tables I/II) or "cross_stitch" (Tables III/IV)
    mode: str = "full"  # cross-stitch only: "full" or "detached"
    init: str = "balanced"  # cross-stitch only: "balanced" or "imbalanced"
    maps: int | None = None  # stem maps of the hard net; None = the paper's 96.  Cross-stitch gets half (96 -> 48)
    alpha: str = "task"  # cross-stitch only: α per task pair ("task") or per pair and channel ("channel")
    stem: tuple[tuple[int, int, int], ...] | None = None  # another reading of the scaled-up stem (hard net's maps);
    # None = ours (HARD_SHARING.stem).  Cross-stitch columns get it with half the maps, as 96 -> 48.
    noise: str = "auto"  # the noise layers' source (mtlnb.piano.networks.standard_normal): "auto" = a noise table
    # on the CPU, torch's generator on a GPU; "generator" = fresh numbers everywhere (ICASSP19's way)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"ModelSpec.arch must be one of {ARCHITECTURES}, got {self.arch!r}")
        modes, inits, alphas = cross_stitch.MODES, cross_stitch.INITS, cross_stitch.ALPHAS
        if self.mode not in modes or self.init not in inits or self.alpha not in alphas:
            raise ValueError(f"ModelSpec: mode/init/alpha must be in {modes}/{inits}/{alphas}, "
                             f"got {self.mode!r}/{self.init!r}/{self.alpha!r}")
        if self.maps is not None and self.maps < 2:
            raise ValueError(f"ModelSpec.maps must be None or >= 2, got {self.maps}")
        if self.stem is not None:
            networks.PianoNetConfig(stem=tuple(tuple(b) for b in self.stem))  # validates the shapes
        networks.checked_noise_source(self.noise, "ModelSpec")

    def config(self) -> networks.PianoNetConfig:
        """The network's sizes: the hard net's stem, or a cross-stitch column's (every block at half the maps)."""
        stem = self.stem or networks.HARD_SHARING.stem
        if self.maps is not None:
            stem = tuple((self.maps, kt, kf) for _, kt, kf in stem)
        if self.arch == "cross_stitch":
            stem = tuple((max(1, c // 2), kt, kf) for c, kt, kf in stem)
        return replace(networks.HARD_SHARING, stem=stem, noise=self.noise)

    def build(self) -> networks.PianoNet:
        """A freshly initialised network (seed torch before calling it for a reproducible initialisation)."""
        if self.arch == "hard":
            return networks.HardSharingNet(self.config())
        return cross_stitch.CrossStitchNet(self.config(), self.mode, self.init, self.alpha)


@dataclass(frozen=True)
class PianoRun:
    """One configuration of the study: a network, a learning rate and the task weights."""

    model: ModelSpec  # which network
    lr: float  # η
    weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0)  # λ per task in TASKS order
    table: str | None = None  # "I" .. "IV" where the run is a cell of a paper table
    row: int | None = None  # the paper's row number (1-based)

    @property
    def lambdas(self) -> dict[str, float]:
        return dict(zip(TASKS, self.weights))

    @property
    def name(self) -> str:
        """Folder name, unique within a grid."""
        m = self.model
        size = f"-m{m.maps}" if m.maps is not None else ""
        if m.stem is not None:
            size += "-stem" + "_".join(f"{c}x{kt}x{kf}" for c, kt, kf in m.stem)
        if m.noise != "auto":
            size += f"-noise_{m.noise}"
        if m.arch == "hard":
            return f"hard{size}-lr{self.lr:g}-vel{self.weights[3]:g}-sus{self.weights[4]:g}"
        lam = "" if all(w == 1 for w in self.weights) else "-w" + "_".join(f"{w:g}" for w in self.weights)
        alpha = "" if m.alpha == "task" else f"-alpha_{m.alpha}"
        return f"cross_stitch{size}-{m.mode}-{m.init}{alpha}-lr{self.lr:g}{lam}"


def _checked_rows(rows: Sequence[int] | None, n: int, where: str) -> list[int]:
    """1-based table rows (all ``n`` when None); ``ValueError`` naming ``where`` for a row outside 1..n."""
    rows = list(range(1, n + 1)) if rows is None else list(rows)
    bad = [r for r in rows if not 1 <= r <= n]
    if bad:
        raise ValueError(f"{where}: row {bad[0]} is not one of 1..{n}")
    return rows


def task_weight_grid(lr: float, rows: Sequence[int] | None = None, maps: int | None = None) -> list[PianoRun]:
    """Tables I (η = 0.01) / II (η = 0.05): hard sharing, the eleven (λ_vel, λ_sus) rows (``rows``: 1-based
    subset)."""
    runs = []
    for r in _checked_rows(rows, len(TASK_WEIGHT_ROWS), "task_weight_grid"):
        vel, sus = TASK_WEIGHT_ROWS[r - 1]
        runs.append(PianoRun(ModelSpec("hard", maps=maps), lr, (1.0, 1.0, 1.0, vel, sus),
                             _TABLES.get(("hard", lr)), r))
    return runs


def cross_stitch_grid(lr: float, rows: Sequence[int] | None = None, maps: int | None = None,
                      alpha: str = "task") -> list[PianoRun]:
    """Tables III (η = 0.01) / IV (η = 0.05): {detached, full} × {balanced, imbalanced}, all λ = 1
    (``rows``: 1-based subset of :data:`CROSS_STITCH_ROWS`)."""
    runs = []
    for r in _checked_rows(rows, len(CROSS_STITCH_ROWS), "cross_stitch_grid"):
        mode, init = CROSS_STITCH_ROWS[r - 1]
        runs.append(PianoRun(ModelSpec("cross_stitch", mode, init, maps, alpha), lr, (1.0,) * 5,
                             _TABLES.get(("cross_stitch", lr)), r))
    return runs


def paper_grid(learning_rates: Sequence[float] = LEARNING_RATES, rows: Sequence[int] | None = None,
               cross_stitch_rows: Sequence[int] | None = None, maps: int | None = None) -> list[PianoRun]:
    """All configurations of Tables I–IV (2 × 11 + 2 × 4 = 30 at the paper's settings), or the chosen rows."""
    runs = []
    for lr in learning_rates:
        runs += task_weight_grid(lr, rows, maps)
    for lr in learning_rates:
        runs += cross_stitch_grid(lr, cross_stitch_rows, maps)
    return runs


def profile_grid(piano_profile) -> tuple[list[PianoRun], "GridSettings"]:
    """The runs and settings a :class:`mtlnb.profiles.PianoProfile` asks for."""
    p = piano_profile
    runs = paper_grid(p.learning_rates, p.grid_rows, p.cross_stitch_rows, p.maps)
    return runs, GridSettings(updates=p.updates, evals=min(p.evals, p.updates), batch_size=p.batch,
                              restarts=p.restarts)


# ---------------------------------------------------------------------------------------------------- runner


@dataclass(frozen=True)
class GridSettings:
    """How every run of a grid is trained; the defaults are the paper's."""

    updates: int = PAPER_UPDATES  # SGD updates per run (§V: 680,000)
    evals: int = PAPER_EVALS  # validation passes, evenly spaced (§V's 20,000 × 34)
    batch_size: int = 64  # §V
    eval_batch_size: int = 1024  # frames per validation batch: only speed, no effect on the numbers
    seed: int = 0  # initialisation, noise and batch order; restart k uses seed + k
    restarts: int = 0  # extra attempts with new seeds before a configuration counts as diverged (§V: "repeated")
    select: str = "last"  # "last" (the model after all updates) or "best" (best validation `metric`)
    blowup: float = 10.0  # epoch mean loss above blowup × the lowest one so far counts as divergence
    regression_loss: str = "mse"  # velocity / sustain loss (module docstring)
    device: str = "auto"  # the loop's device choice
    progress: bool = False  # tqdm bars of the loop

    def __post_init__(self) -> None:
        if self.updates < 1 or self.evals < 1 or self.evals > self.updates:
            raise ValueError(f"GridSettings: need 1 <= evals <= updates, got evals={self.evals}, "
                             f"updates={self.updates}")
        if self.select not in ("last", "best"):
            raise ValueError(f"GridSettings.select must be 'last' or 'best', got {self.select!r}")
        if self.restarts < 0 or self.blowup <= 1:
            raise ValueError(f"GridSettings: need restarts >= 0 and blowup > 1, got {self.restarts}, {self.blowup}")

    @property
    def updates_per_eval(self) -> int:
        return self.updates // self.evals


def _diverged(history: list[dict], blowup: float) -> str | None:
    """Why a finished run counts as diverged, or None."""
    best = math.inf
    for row in history:
        loss, val = row["train_loss"], row.get("val_loss", 0.0)
        if not (math.isfinite(loss) and math.isfinite(val)):
            return f"non-finite loss after epoch {row['epoch']}"
        if loss > blowup * best:
            return f"training loss {loss:.4g} after epoch {row['epoch']} > {blowup:g} × the best {best:.4g}"
        best = min(best, loss)
    return None


def _attempt(run: PianoRun, seed: int, train_data, val_data, folder: Path, s: GridSettings, bar=None) -> dict:
    """Train one attempt (resumably) and return its status and selected log row; ``bar`` (tqdm, in updates)
    advances after every validation."""
    status_path = folder / "status.json"
    if status_path.exists():
        status = io.read_json(status_path)
        if status["status"] == "diverged" or status.get("updates") == s.updates:
            return status
    torch.manual_seed(seed)
    model = run.model.build()
    # Epochs already trained in this folder (a resumed run): the α recorder numbers the coming validations from
    # there, and the progress bar counts them as done.
    done = 0
    if (folder / "last.pt").exists():
        done = int(torch.load(folder / "last.pt", map_location="cpu", weights_only=True)["epoch"])
    hooks = []
    if bar is not None:
        bar.update(done * s.updates_per_eval)
        hooks.append(lambda _: bar.update(s.updates_per_eval))
    if cross_stitch_alphas(model):
        recorder = AlphaLog(folder / ALPHA_FILE, s.updates_per_eval, start_epoch=done)
        if done == 0:
            recorder.record(model, epoch=0)  # the initial α (balanced or imbalanced)
        hooks.append(recorder)
    task = PianoTask(run.lambdas, s.updates_per_eval, s.regression_loss, hooks=hooks)
    config = training.TrainConfig(epochs=s.evals, batch_size=s.batch_size, optimizer="sgd_nesterov", lr=run.lr,
                                  momentum=0.9, seed=seed, max_batches_per_epoch=s.updates_per_eval,
                                  eval_batch_size=s.eval_batch_size, device=s.device,
                                  restore_best=s.select == "best", progress=s.progress)
    t0 = time.perf_counter()
    try:
        result = training.train(model, task, train_data, val_data, folder, config)
        history, reason = result.history, _diverged(result.history, s.blowup)
    except FloatingPointError as e:
        history, reason = [], str(e)
    status = {"status": "diverged" if reason else "ok", "reason": reason or "", "seed": seed,
              "updates": s.updates, "seconds": time.perf_counter() - t0, "row": {}}
    if not reason:
        pick = history[-1] if s.select == "last" else max(
            history, key=lambda r: r[task.metric] if math.isfinite(r[task.metric]) else -math.inf)
        status["row"] = {k: float(v) for k, v in pick.items()}
    io.write_json(status_path, status)
    return status


def run_grid(runs: Sequence[PianoRun], cache: piano_data.PianoCache, root: str | Path,
             settings: GridSettings = GridSettings(), val_split: str = "validation",
             progress: bool = False) -> pd.DataFrame:
    """Train every configuration into ``root/<run.name>`` and collect the framewise results.

    Resumable: a finished configuration is read back from its ``status.json``; an interrupted one continues from
    its ``last.pt`` (the shared loop).  A configuration counts as diverged when every attempt (1 + ``restarts``,
    attempt k seeded ``seed + k``, in ``<name>`` and ``<name>-restart<k>``) diverged.

    Parameters
    ----------
    runs : sequence of PianoRun
        E.g. :func:`paper_grid`, :func:`task_weight_grid`, :func:`cross_stitch_grid`.
    cache : mtlnb.piano.data.PianoCache
        Holds the "train" split and ``val_split``.
    root : path
    settings : GridSettings
    val_split : str
        Where the metrics come from (the paper: MAESTRO's validation split).
    progress : bool
        One tqdm bar over the grid's updates, advanced at every validation (``settings.progress`` adds the loop's
        bars per update instead: too many lines for the executed notebook of a long run).

    Returns
    -------
    pandas.DataFrame
        One row per run: ``table, row, arch, mode, init, lr, lambda_<task>..., status`` ("ok" / "diverged"),
        ``reason, attempts, seed, epoch, seconds``, the per-piece metrics ``onsets_f1, frames_f1, offsets_f1,
        velocity_r2, sustain_r2`` (the paper's columns), their ``*_micro`` twins, ``loss`` and ``run_dir``.
        Metrics of a diverged run, and R² of a task with λ = 0, are NaN (shown as "–" by
        :func:`mtlnb.piano.paper_tables.format_table`).
    """
    root = Path(root)
    keep_freed_memory()
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"run_grid: two runs share a folder name ({sorted(n for n in names if names.count(n) > 1)})")
    train_data = piano_data.PianoFrameBatches(cache, "train", shuffle=True)
    val_data = piano_data.PianoFrameBatches(cache, val_split, shuffle=False)
    rows = []
    bar = tqdm(total=len(runs) * settings.updates_per_eval * settings.evals, desc="grid", unit="update",
               disable=not progress, smoothing=0)
    for k, run in enumerate(runs):
        status, attempt = None, 0
        for attempt in range(settings.restarts + 1):
            folder = root / (run.name if attempt == 0 else f"{run.name}-restart{attempt}")
            bar.set_postfix_str(f"run {k + 1}/{len(runs)}: {folder.name}")
            status = _attempt(run, settings.seed + attempt, train_data, val_data, folder, settings, bar)
            if status["status"] == "ok":
                break
        bar.n = (k + 1) * settings.updates_per_eval * settings.evals  # exact after finished, resumed or restarted runs
        bar.refresh()
        metrics = {k[4:]: v for k, v in status["row"].items() if k.startswith("val_")}
        row = {"table": run.table, "row": run.row, "arch": run.model.arch,
               "mode": run.model.mode if run.model.arch == "cross_stitch" else None,
               "init": run.model.init if run.model.arch == "cross_stitch" else None, "lr": run.lr,
               **{f"lambda_{t}": w for t, w in run.lambdas.items()}, "status": status["status"],
               "reason": status["reason"], "attempts": attempt + 1, "seed": status["seed"],
               "epoch": status["row"].get("epoch", float("nan")), "seconds": status["seconds"]}
        for t in TASKS:
            kind = "f1" if t in BINARY else "r2"
            for suffix in ("", "_micro"):
                value = metrics.get(f"{t}_{kind}{suffix}", float("nan"))
                row[f"{t}_{kind}{suffix}"] = value if run.lambdas[t] > 0 else float("nan")
        row["loss"] = metrics.get("loss", float("nan"))
        row["run_dir"] = str(folder)
        rows.append(row)
    bar.close()
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- what a run leaves behind

ALPHA_FILE = "alphas.json"  # per run folder: the cross-stitch α after every validation pass (and at init)


def cross_stitch_alphas(model: nn.Module) -> list[np.ndarray]:
    """The α of every cross-stitch unit of ``model``, in layer order (empty for a hard-sharing net).

    Returns
    -------
    list of ndarray float64
        One (M, M) array per unit (α[m, j]: weight of task j's maps in task m's next input), or (M, M, C) for
        per-channel α.
    """
    return [u.alpha.detach().cpu().double().numpy().copy() for u in model.modules()
            if isinstance(u, cross_stitch.CrossStitchUnit)]


class AlphaLog:
    """Records :func:`cross_stitch_alphas` once per validation pass into a JSON file (atomic rewrite).

    The file maps the epoch (0 = before training) to the α of every layer.  Keyed by epoch, so a resumed run
    that repeats an epoch overwrites its snapshot instead of adding one; ``start_epoch`` is the number of epochs
    already trained when the recorder is created (a resumed run).

    Parameters
    ----------
    path : path
        ``<run dir>/alphas.json``.
    updates_per_epoch : int
        SGD updates between two validations, stored to put snapshots on an update axis.
    start_epoch : int
    """

    def __init__(self, path: str | Path, updates_per_epoch: int, start_epoch: int = 0):
        self.path, self.updates_per_epoch, self.epoch = Path(path), int(updates_per_epoch), int(start_epoch)
        self.data = io.read_json(self.path) if self.path.exists() else {"updates_per_epoch": self.updates_per_epoch,
                                                                         "epochs": {}}

    def __call__(self, model: nn.Module) -> None:
        self.record(model)

    def record(self, model: nn.Module, epoch: int | None = None) -> None:
        """Store the α of ``model`` as ``epoch`` (default: the next epoch)."""
        if epoch is None:
            self.epoch += 1
            epoch = self.epoch
        self.data["epochs"][str(int(epoch))] = [a.tolist() for a in cross_stitch_alphas(model)]
        io.write_json(self.path, self.data)


@dataclass
class AlphaHistory:
    """The cross-stitch α of one run over training (:func:`alpha_history`)."""

    epochs: np.ndarray  # int (E,): 0 = initialisation, k = after the k-th block of updates
    updates: np.ndarray  # int (E,): SGD updates done at each snapshot
    layers: list[np.ndarray]  # per cross-stitch unit: float (E, M, M) (per-channel α averaged over channels)
    tasks: tuple[str, ...] = TASKS

    def plot(self, snapshots: int = 3, title: str = ""):
        """:func:`mtlnb.piano.figures.alpha_heatmaps` of this history."""
        return figures.alpha_heatmaps(self, snapshots, title)


def alpha_history(run_dir: str | Path) -> AlphaHistory:
    """Read the α a cross-stitch run recorded (``<run_dir>/alphas.json``), snapshots in epoch order.

    Raises
    ------
    FileNotFoundError
        The run recorded none (a hard-sharing run, or one trained before α were recorded).
    """
    path = Path(run_dir) / ALPHA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"alpha_history: {path} does not exist (not a cross-stitch run?)")
    data = io.read_json(path)
    epochs = sorted(int(e) for e in data["epochs"])
    if not epochs:
        raise ValueError(f"alpha_history: {path} holds no snapshot")
    snaps = [data["epochs"][str(e)] for e in epochs]
    layers = []
    for k in range(len(snaps[0])):
        a = np.array([snap[k] for snap in snaps], dtype=np.float64)
        layers.append(a.mean(axis=3) if a.ndim == 4 else a)
    return AlphaHistory(np.array(epochs), np.array(epochs) * int(data["updates_per_epoch"]), layers)


def learning_curves(results: pd.DataFrame, updates_per_epoch: int) -> pd.DataFrame:
    """The ``log.csv`` of every run of a :func:`run_grid` table, stacked.

    Parameters
    ----------
    results : pandas.DataFrame
        :func:`run_grid`'s table (its ``run_dir`` column).
    updates_per_epoch : int
        :attr:`GridSettings.updates_per_eval`, to put the curves on an update axis.

    Returns
    -------
    pandas.DataFrame
        One row per (run, validation): ``run`` (the folder name), ``table``, ``row``, ``arch``, ``updates`` and
        the log's columns (``train_loss``, ``val_loss``, ``val_<task>_f1`` ...).  Runs without a log are left out.
    """
    parts = []
    for r in results.itertuples(index=False):
        log = Path(r.run_dir) / "log.csv"
        if not log.is_file():
            continue
        df = pd.read_csv(log)
        df.insert(0, "updates", df["epoch"] * updates_per_epoch)
        for k, v in (("arch", r.arch), ("row", r.row), ("table", r.table), ("run", Path(r.run_dir).name)):
            df.insert(0, k, v)
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def load_run_model(run: PianoRun, run_dir: str | Path, which: str = "last") -> nn.Module:
    """The network of ``run`` with the weights of ``run_dir/<which>.pt`` ("last" or "best"), in eval mode."""
    if which not in ("last", "best"):
        raise ValueError(f"load_run_model: which must be 'last' or 'best', got {which!r}")
    path = Path(run_dir) / f"{which}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"load_run_model: {path} does not exist (train the run first)")
    model = run.model.build()
    training.load_weights(model, path)
    return model.eval()


# ---------------------------------------------------------------------------------------------- LR range test


@dataclass
class LRRangeResult:
    """Outcome of :func:`lr_range_test`."""

    lrs: np.ndarray  # learning rate of each recorded step
    losses: np.ndarray  # bias-corrected exponential moving average of the training loss at that step
    raw_losses: np.ndarray  # the unsmoothed batch losses
    best_lr: float  # lr at the minimum of the smoothed loss
    suggested_lr: float  # best_lr / 10: "decrease it by about an order of magnitude" (§V)
    stopped: str = ""  # why the sweep ended
    extra: dict = field(default_factory=dict)

    MIN_DROP = 0.1  # the smoothed loss must fall by this share of its start for the minimum to mean anything

    @property
    def drop(self) -> float:
        """How far the smoothed loss fell below its first value, as a share of it."""
        start, low = float(self.losses[0]), float(np.min(self.losses))
        return (start - low) / start if start > 0 else 0.0

    @property
    def still_falling(self) -> bool:
        """The smoothed loss was lowest at the sweep's last steps, and the sweep ended for another reason than a
        rising or non-finite loss: its minimum lies beyond the last η."""
        at_end = int(np.argmin(self.losses)) >= len(self.losses) - 2
        return at_end and not self.stopped.startswith(("smoothed loss above", "non-finite"))

    @property
    def suggests(self) -> bool:
        """Whether the curve has a minimum worth reading (:meth:`verdict`)."""
        return self.drop >= self.MIN_DROP and not self.still_falling

    def verdict(self) -> str:
        """One line a reader can trust: the minimum and suggested η where the curve has one, else why the sweep
        was too short to suggest a rate (the smoothed loss never fell by :attr:`MIN_DROP` of its first value, or it
        was still falling when the sweep ended)."""
        drop = self.drop
        if drop < self.MIN_DROP:
            return (f"no rate suggested: over {len(self.lrs)} batches (η {self.lrs[0]:.2g} to {self.lrs[-1]:.2g}) the "
                    f"smoothed loss fell by only {100 * drop:.0f} % (< {100 * self.MIN_DROP:.0f} %): the sweep is too "
                    f"short to show where the loss falls fastest; it ended: {self.stopped}")
        if self.still_falling:
            return (f"no rate suggested: the smoothed loss was still falling at the last η ({self.lrs[-1]:.2g}; "
                    f"{100 * drop:.0f} % below its start): the sweep ended before its minimum ({self.stopped})")
        return (f"minimum of the smoothed loss at η = {self.best_lr:.3g} ({100 * drop:.0f} % below its start); "
                f"suggested η = {self.suggested_lr:.3g} (a tenth of it); the sweep ended: {self.stopped}")


def lr_range_test(model: nn.Module, task: PianoTask, dataset: piano_data.PianoFrameBatches, start: float = 1e-8,
                  stop: float = 10.0, max_batches: int = 4096, beta: float = 0.98, stop_factor: float = 10.0,
                  batch_size: int = 64, momentum: float = 0.9, seed: int = 0, device: str = "cpu") -> LRRangeResult:
    """Smith's (2018) learning-rate range test, as the authors' ``find_learnrate`` (``rainerkelz/ICASSP19``).

    SGD (Nesterov, ``momentum``) over at most ``max_batches`` random batches while η grows geometrically from
    ``start`` to ``stop``; the batch loss is smoothed by a bias-corrected exponential moving average
    (``beta``), and the sweep stops at a non-finite loss or once the smoothed loss exceeds ``stop_factor`` × its
    minimum.  The model is trained in place (build a fresh one for real training).

    This is a sweep, not a training run (no validation, no checkpoints, a new η every step), so it steps the
    optimiser itself instead of going through :func:`mtlnb.core.training.train`; the loss is the task's.

    Returns
    -------
    LRRangeResult
        ``suggested_lr`` = the η of the smoothed minimum / 10.
    """
    if not (0 < start < stop) or max_batches < 2 or not 0 <= beta < 1 or stop_factor <= 1:
        raise ValueError(f"lr_range_test: need 0 < start < stop, max_batches >= 2, 0 <= beta < 1, stop_factor > 1; "
                         f"got {start}, {stop}, {max_batches}, {beta}, {stop_factor}")
    dev = training.resolve_device(device)
    keep_freed_memory()
    model.to(dev).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=start, momentum=momentum, nesterov=True)
    mult = (stop / start) ** (1 / (max_batches - 1))
    lrs, losses, raw = [], [], []
    avg, best, lr, stopped = 0.0, math.inf, start, f"reached {max_batches} batches"
    torch.manual_seed(seed)
    for step, idx in enumerate(piano_data.RandomBatches(len(dataset), batch_size, max_batches, seed), start=1):
        batch = training.move_to(dataset.__getitems__(idx), dev)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = task.loss(model, batch)
        value = float(loss.detach())
        if not math.isfinite(value):
            stopped = f"non-finite loss at step {step} (η = {lr:.3g})"
            break
        avg = beta * avg + (1 - beta) * value
        smoothed = avg / (1 - beta ** step)
        if step > 1 and smoothed > stop_factor * best:
            stopped = f"smoothed loss above {stop_factor:g} × its minimum at step {step} (η = {lr:.3g})"
            break
        best = min(best, smoothed)
        lrs.append(lr), losses.append(smoothed), raw.append(value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr *= mult
    if not lrs:
        raise FloatingPointError(f"lr_range_test: {stopped} before any step could be recorded")
    lrs_a, losses_a = np.array(lrs), np.array(losses)
    best_lr = float(lrs_a[int(np.argmin(losses_a))])
    return LRRangeResult(lrs_a, losses_a, np.array(raw), best_lr, best_lr / 10, stopped)
