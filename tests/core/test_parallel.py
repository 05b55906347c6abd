"""Worker pools die with their parent (SIGKILL, Ctrl-C) and a build folder has one builder at a time."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from mtlnb.core import parallel

REPO = Path(__file__).resolve().parents[2]

# A build whose workers write one file per task, slowly, and whose parent reports the workers' pids.
SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from mtlnb.core import parallel

    def work(args):
        out, i = args
        time.sleep(0.2)
        Path(out, f"{i}.task").write_text(str(os.getpid()))
        return os.getpid()

    if __name__ == "__main__":
        out = sys.argv[1]
        with parallel.build_lock(out):
            with parallel.imap(work, [(out, i) for i in range(500)], jobs=2, folder=out) as results:
                for pid in results:
                    with open(Path(out, "pids"), "a") as f:
                        f.write(f"{pid}\\n")
""")


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie waits for init to reap it; it runs no code


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    script = tmp_path / "build.py"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], cwd=REPO, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:  # both workers have finished a task
        pids = set(Path(out, "pids").read_text().split()) if Path(out, "pids").exists() else set()
        if len(pids) >= 2:
            return proc, out
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the workers never started")


def _workers_end(out: Path, timeout: float = 5.0) -> set[int]:
    workers = {int(p) for p in Path(out, "pids").read_text().split()}
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    return {p for p in workers if _alive(p)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_die_when_the_parent_is_killed(tmp_path):
    proc, out = _start(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)  # the parent alone, as `kill -9 <pid>` does
    proc.wait()
    assert _workers_end(out) == set()
    n_tasks = len(list(out.glob("*.task")))
    time.sleep(0.5)
    assert len(list(out.glob("*.task"))) == n_tasks  # nothing writes any more
    with parallel.build_lock(out):  # a rerun gets the folder at once
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_parent_and_workers(tmp_path):
    proc, out = _start(tmp_path)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends the whole foreground group
    assert proc.wait(timeout=20) != 0
    assert _workers_end(out) == set()


def test_leaving_by_an_exception_leaves_no_pool_thread_behind():
    # The pool's manager thread must be gone when the exception propagates: the interpreter joins it at exit,
    # and a manager thread still running beside workers killed under it can hang that join.
    with pytest.raises(KeyError):
        with parallel.imap(time.sleep, [0.2] * 50, jobs=2) as results:
            next(results)
            raise KeyError("stop")
    assert [t for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread"] == []


def test_a_folder_has_one_builder(tmp_path):
    with parallel.build_lock(tmp_path):
        with pytest.raises(parallel.FolderBusyError, match=str(tmp_path)):
            with parallel.build_lock(tmp_path):
                pass
    with parallel.build_lock(tmp_path):  # freed on exit
        pass


def test_a_rerun_waits_for_workers_of_a_dead_build(tmp_path):
    fd = os.open(tmp_path / parallel.WORKERS_LOCK, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_SH)  # an orphan worker still running
    threading.Timer(0.5, os.close, (fd,)).start()  # ... which exits half a second later
    t0 = time.monotonic()
    with parallel.build_lock(tmp_path):
        assert time.monotonic() - t0 >= 0.4


def test_one_job_runs_in_process_with_its_initializer():
    calls = []
    with parallel.imap(abs, [-1, -2], jobs=1, initializer=calls.append, initargs=("init",)) as results:
        assert list(results) == [1, 2]
    assert calls == ["init"]
    with parallel.imap(abs, [], jobs=4, initializer=calls.append, initargs=("again",)) as results:
        assert list(results) == []
    assert calls == ["init"]  # no tasks, no initializer


def test_many_jobs_keep_the_order():
    with parallel.imap(abs, range(-20, 0), jobs=2, chunksize=3) as results:
        assert list(results) == list(range(20, 0, -1))


def test_the_lock_clears_what_a_killed_build_was_writing(tmp_path):
    from mtlnb.core import io

    with io.atomic_path(tmp_path / "a" / "x.npy") as tmp:
        left = tmp  # as if the process were killed here: the temporary file stays
        tmp.write_bytes(b"half")
        kept = [tmp_path / "a" / ".hidden", tmp_path / "a" / "y.tmp.npy", tmp_path / ".mtlnb.lock"]
        for p in kept[:2]:
            p.write_bytes(b"")
        with parallel.build_lock(tmp_path, writes_in=(".", "b")):  # another process may be writing in a/
            assert left.exists()
        with parallel.build_lock(tmp_path, writes_in=(".", "a")):
            assert not left.exists()
            assert all(p.exists() for p in kept)
        tmp.write_bytes(b"whole")  # atomic_path then moves its (recreated) file into place
    assert (tmp_path / "a" / "x.npy").read_bytes() == b"whole"
