"""Run independent trainings at once: several processes sharing one device.

A training at the papers' small batches (2-16 samples) leaves a GPU idle most of the time: each step is a few
hundred short kernels, launched one after the other by one Python thread, and a BiLSTM walks its frames in
sequence.  Independent trainings (the folds, the nine scenario OMRs) can fill those gaps when they run side by side.
:func:`run_jobs` runs :class:`Job` s, at most ``concurrency`` at a time, each in its own process, in an order that
respects their dependencies (a GradSPSA training reads its fold's OMR).

Processes, not threads: each training keeps its own CUDA context, random-number states and torch thread pool, so a
training gives the same result whether it runs alone or beside others (on the CPU bit for bit; on a GPU as far as
cuDNN is deterministic at all).  Processes are started with ``spawn`` (a forked CUDA context is unusable).

CUDA MPS
    Without the Multi-Process Service, kernels of different processes time-slice the GPU; with it they run
    concurrently.  On CUDA with ``concurrency > 1``: an MPS control daemon already reachable
    (``CUDA_MPS_PIPE_DIRECTORY`` or ``/tmp/nvidia-mps``) is used; otherwise, where ``nvidia-cuda-mps-control`` is
    on the PATH and ``start_mps`` is true, a private daemon is started for the jobs (its pipe and log folders in a
    temporary folder, so that no other user's daemon is touched) and stopped afterwards; otherwise the jobs run
    time-sliced, with a warning.

CPU
    The cores are shared out: each worker process gets ``max(1, cores // concurrency)`` torch threads (two
    processes each spinning all cores' OpenMP threads run many times slower than either alone).

With ``concurrency == 1`` the jobs run in the calling process, one after the other, exactly as a plain loop would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

MPS_CONTROL = "nvidia-cuda-mps-control"
MPS_DEFAULT_PIPE = Path("/tmp/nvidia-mps")  # the daemon's default pipe folder (NVIDIA's MPS documentation)


@dataclass(frozen=True)
class Job:
    """One independent piece of work: ``fn(*args, **kwargs)`` in a worker process.

    ``fn`` and its arguments must be picklable (a module-level function; a study object, paths, plain values).
    ``after`` names the jobs (by ``key``) that must have finished first.
    """

    key: Hashable
    fn: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    after: tuple = ()


def _order(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` in the given order, each moved after its dependencies; ``ValueError`` for unknown keys, repeated
    keys or a cycle."""
    by_key = {}
    for job in jobs:
        if job.key in by_key:
            raise ValueError(f"run_jobs: job {job.key!r} is listed twice")
        by_key[job.key] = job
    for job in jobs:
        missing = [k for k in job.after if k not in by_key]
        if missing:
            raise ValueError(f"run_jobs: job {job.key!r} waits for {missing}, which are not among the jobs")
    done: set = set()
    out: list[Job] = []
    state: dict = {}

    def visit(job: Job, path: tuple) -> None:
        if job.key in done:
            return
        if state.get(job.key) == "visiting":
            raise ValueError(f"run_jobs: the jobs wait for each other in a cycle: {[*path, job.key]}")
        state[job.key] = "visiting"
        for k in job.after:
            visit(by_key[k], (*path, job.key))
        done.add(job.key)
        out.append(job)

    for job in jobs:
        visit(job, ())
    return out


def worker_threads(concurrency: int, cores: int | None = None) -> int:
    """torch threads per worker process: the cores shared out, at least one."""
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # macOS, Windows
            cores = os.cpu_count() or 1
    return max(1, cores // max(1, concurrency))


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def mps_running() -> bool:
    """Whether a CUDA MPS control daemon is reachable (its control pipe exists)."""
    pipe = Path(os.environ.get("CUDA_MPS_PIPE_DIRECTORY", MPS_DEFAULT_PIPE))
    return (pipe / "control").exists()


class _MPS:
    """A private MPS daemon for the duration of the jobs (see the module docstring), or nothing."""

    def __init__(self, wanted: bool):
        self.folder: str | None = None
        self.saved: dict[str, str | None] = {}
        if not wanted or mps_running():
            return
        if shutil.which(MPS_CONTROL) is None:
            warnings.warn(f"CUDA MPS is not running and {MPS_CONTROL} is not on the PATH: the concurrent trainings "
                          "time-slice the GPU instead of sharing it", stacklevel=3)
            return
        self.folder = tempfile.mkdtemp(prefix="mtlnb-mps-")
        env = {"CUDA_MPS_PIPE_DIRECTORY": f"{self.folder}/pipe", "CUDA_MPS_LOG_DIRECTORY": f"{self.folder}/log"}
        for name, value in env.items():
            Path(value).mkdir()
            self.saved[name] = os.environ.get(name)
            os.environ[name] = value  # inherited by the spawned workers
        try:
            subprocess.run([MPS_CONTROL, "-d"], check=True, capture_output=True, timeout=30)
        except (OSError, subprocess.SubprocessError) as e:
            self.close()
            warnings.warn(f"could not start CUDA MPS ({e}); the concurrent trainings time-slice the GPU",
                          stacklevel=3)

    def close(self) -> None:
        if self.folder is None:
            return
        if (Path(os.environ["CUDA_MPS_PIPE_DIRECTORY"]) / "control").exists():
            subprocess.run([MPS_CONTROL], input=b"quit\n", capture_output=True, timeout=30, check=False)
        for name, value in self.saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None


def run_jobs(jobs: Sequence[Job], concurrency: int = 1, device: str = "cpu", start_mps: bool = True,
             threads: int | None = None) -> dict[Hashable, Any]:
    """Run ``jobs``, at most ``concurrency`` at once, each after the jobs it waits for; returns ``{key: result}``.

    Parameters
    ----------
    jobs : sequence of Job
    concurrency : int
        Processes at once; 1 runs the jobs in this process, in order (dependencies first).
    device : str
        The device the jobs train on ("cpu", "cuda", "cuda:0", "auto"): on CUDA, MPS is used or started (module
        docstring).
    start_mps : bool
        Start a private MPS daemon where none runs (CUDA, ``concurrency > 1``).
    threads : int, optional
        torch threads per worker; default :func:`worker_threads`.

    Raises
    ------
    Exception
        The first failed job's own exception (a ``ValueError`` stays one), with a note naming the job (and, from a
        worker, its traceback chained); the jobs not started yet are not started and the running ones are waited
        for.
    """
    if concurrency < 1:
        raise ValueError(f"run_jobs: concurrency must be >= 1, got {concurrency}")
    ordered = _order(jobs)
    results: dict[Hashable, Any] = {}
    if concurrency == 1 or len(ordered) <= 1:
        for job in ordered:
            results[job.key] = job.fn(*job.args, **job.kwargs)
        return results

    on_cuda = device.startswith("cuda") or (device == "auto" and _cuda_available())
    mps = _MPS(start_mps and on_cuda)
    pending = list(ordered)
    running: dict[Future, Job] = {}
    failure: tuple[Job, BaseException] | None = None
    try:
        with ProcessPoolExecutor(max_workers=concurrency, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(threads or worker_threads(concurrency),)) as pool:
            while pending or running:
                if failure is None:
                    for job in [j for j in pending if all(k in results for k in j.after)]:
                        if len(running) >= concurrency:
                            break
                        pending.remove(job)
                        running[pool.submit(job.fn, *job.args, **job.kwargs)] = job
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    error = future.exception()
                    if error is None:
                        results[job.key] = future.result()
                    elif failure is None:
                        failure = (job, error)
    finally:
        mps.close()
    if failure is not None:
        job, error = failure
        error.add_note(f"(in the worker process of job {job.key!r}, run by mtlnb.core.scheduler.run_jobs)")
        raise error
    return results


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()
