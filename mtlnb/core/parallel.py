"""Worker pools that die with their parent, and build folders that one process at a time writes into.

Every parallel build of mtlnb (the synthetic corpus, the rendered audio of a real archive, the feature caches of
both studies) maps a function over tasks in an :func:`imap` context inside a :func:`build_lock`:

- Workers are spawned, not forked: a fork of a process that already ran FluidSynth (or torch threads) can deadlock.
- A worker dies with its parent, however the parent ends.  On Linux the kernel sends it ``SIGKILL`` when the parent
  dies (``prctl(PR_SET_PDEATHSIG)``, the parent's SIGKILL included); everywhere a watchdog thread ends it within
  :data:`WATCHDOG_S` of noticing that its parent changed.  Workers ignore ``SIGINT``: Ctrl-C interrupts the parent,
  which terminates its workers and re-raises, so no orphan keeps writing.
- :func:`build_lock` lets one process at a time build in a folder (an ``flock`` on ``<folder>/.mtlnb.lock``, freed
  by the kernel when its holder dies), and waits until the workers of a dead build have exited (each holds
  ``<folder>/.mtlnb-workers.lock`` shared until it ends), so a rerun never meets files that a dead run is still
  writing.  The two lock files stay in the folder; they are empty.
"""

from __future__ import annotations

import ctypes
import fcntl
import multiprocessing
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from mtlnb.core import io

SPAWN = multiprocessing.get_context("spawn")
LOCK = ".mtlnb.lock"
WORKERS_LOCK = ".mtlnb-workers.lock"
WATCHDOG_S = 0.5  # how often a worker checks that its parent is alive, in seconds
ORPHAN_WAIT_S = 30.0  # how long a new build waits for the workers of a dead one to exit
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

_held_worker_lock: int | None = None  # a worker's shared lock on its build folder, held until it exits


class FolderBusyError(RuntimeError):
    """Another live process is building in the folder."""


def _die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid`` stops being its parent (SIGKILL from the kernel on Linux; a watchdog
    thread everywhere, which also covers a parent that died before the ``prctl`` call)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - an unusual libc; the watchdog remains
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="mtlnb-parent-watchdog", daemon=True).start()


def _worker_start(parent_pid: int, workers_lock: str | None, initializer: Callable | None,
                  initargs: tuple) -> None:
    global _held_worker_lock
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it terminates us
    _die_with_parent(parent_pid)
    if workers_lock is not None:
        fd = os.open(workers_lock, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _held_worker_lock = fd  # kept open (and so locked) until the process ends
    if initializer is not None:
        initializer(*initargs)


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the workers now (they ignore SIGINT: SIGTERM, then SIGKILL), then shut the pool down and wait for it.

    The order matters.  Shutting down without waiting first (``shutdown(wait=False)``) and killing the workers
    afterwards leaves the pool's manager thread running while its workers vanish under it, a race that can make
    the interpreter hang at exit when it joins that thread (CPython issues 83386 and 132969).  With the workers
    already dead, the manager thread finds the pool broken, fails what was pending and ends, and ``shutdown``
    waits only for that.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(timeout=5)
        if p.is_alive():  # pragma: no cover - a worker stuck in uninterruptible C code
            p.kill()
            p.join(timeout=5)
    pool.shutdown(wait=True, cancel_futures=True)


def n_jobs(jobs: int | None, n_tasks: int) -> int:
    """Worker processes for ``n_tasks`` tasks: ``jobs`` (None: the CPU count), at least 1, at most ``n_tasks``."""
    return max(1, min(jobs or os.cpu_count() or 1, n_tasks or 1))


@contextmanager
def imap(fn: Callable[[Any], Any], tasks: Iterable[Any], jobs: int | None = None,
         initializer: Callable | None = None, initargs: tuple = (), chunksize: int = 1,
         folder: str | os.PathLike | None = None) -> Iterator[Iterator[Any]]:
    """A context yielding ``fn(task)`` for every task, in order, computed by up to ``jobs`` spawned workers::

        with parallel.imap(build_one, tasks, jobs, folder=out) as results:
            for result in results:
                ...

    Parameters
    ----------
    fn, initializer : callables
        Module-level functions (they are pickled by name for the workers).  ``initializer(*initargs)`` runs once
        per worker before its first task.
    jobs : int, optional
        Worker processes (None: the CPU count).  With one job (or one task) everything runs in this process,
        ``initializer`` included (before the first task), and no process is started.
    folder : path, optional
        The build folder, locked by the caller with :func:`build_lock`: each worker holds its workers' lock, so that
        a later build waits for workers of this one that outlive it.

    Leaving the context by an exception (Ctrl-C included) terminates the workers before the exception propagates;
    leaving it normally waits for them.
    """
    tasks = list(tasks)
    jobs = n_jobs(jobs, len(tasks))
    if jobs == 1:
        yield _inline(fn, tasks, initializer, initargs)
        return
    workers_lock = str(Path(folder) / WORKERS_LOCK) if folder is not None else None
    pool = ProcessPoolExecutor(jobs, mp_context=SPAWN, initializer=_worker_start,
                               initargs=(os.getpid(), workers_lock, initializer, initargs))
    try:
        yield pool.map(fn, tasks, chunksize=chunksize)
    except BrokenProcessPool as e:
        _stop(pool)
        raise RuntimeError(f"a worker process of {getattr(fn, '__qualname__', fn)} ended abruptly (its own error, "
                           "if it had one, is printed above)") from e
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown(wait=True)


def _inline(fn: Callable, tasks: list, initializer: Callable | None, initargs: tuple) -> Iterator[Any]:
    if initializer is not None and tasks:
        initializer(*initargs)
    for task in tasks:
        yield fn(task)


@contextmanager
def build_lock(folder: str | os.PathLike, writes_in: Iterable[str] = (".",), wait: bool = False) -> Iterator[Path]:
    """Hold ``folder`` (created if needed) for one build.

    Raises :class:`FolderBusyError` naming the folder if another live process holds it, or with ``wait`` waits
    for that process to finish (saying so on stderr once; for readers that only complete what another build may be
    completing at the same moment, e.g. concurrent trainings checking one feature cache).  Waits (at most
    :data:`ORPHAN_WAIT_S`) until workers left by a dead build have exited, then deletes the temporary files of
    :func:`mtlnb.core.io.atomic_path` that a killed build left in the folders it writes in: ``writes_in``, glob
    patterns relative to ``folder`` (e.g. ``("." , "Corpus/*")``; other processes may be writing elsewhere below).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise FolderBusyError(f"{folder}: another mtlnb process is building here; wait for it to finish "
                                      "or stop it") from None
            print(f"{folder}: another mtlnb process is building here; waiting for it", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        _wait_for_orphans(folder)
        for pattern in writes_in:  # files a killed build was writing atomically: never finished, never used
            for sub in ([folder] if pattern == "." else folder.glob(pattern)):
                if sub.is_dir():
                    io.remove_temporaries(sub)
        yield folder
    finally:
        os.close(fd)  # frees the lock


def _wait_for_orphans(folder: Path) -> None:
    fd = os.open(folder / WORKERS_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + ORPHAN_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return  # no worker of an earlier build is alive; closing the file frees the lock for ours
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise FolderBusyError(f"{folder}: worker processes of an earlier build are still running "
                                          f"after {ORPHAN_WAIT_S:.0f} s; stop them and retry") from None
                time.sleep(0.1)
    finally:
        os.close(fd)
