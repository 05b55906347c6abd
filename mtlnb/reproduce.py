"""Run the study's notebooks headlessly into a new run folder: the two studies side by side.

``runs/<profile>-<YYYYmmdd-HHMMSS>/`` receives the executed copy of every notebook, its papermill log
(``NN_name.log``), ``index.json`` and ``index.md`` (every notebook with its track, status, thread count, start,
end and seconds; the run's wall seconds; the key numbers each notebook recorded with :func:`record`; links to
figures).  An earlier run folder is never overwritten.  ``start`` resumes from a given notebook and ``only`` runs
one (in a new folder; the data and checkpoints the earlier notebooks produced are reused from the data root).

Tracks
    The notebooks form two independent studies (:data:`TRACKS`): the GradSPSA track 01–05, where each notebook needs
    the ones before, and the piano track 06–08, which needs nothing of 01–05.  A notebook in no track (a later
    ``09_…``) is a track of its own that starts only after every track before it has finished: we cannot know what
    it reads, so it waits for everything.  ``start`` cuts every track at that notebook (``--from 03``: GradSPSA
    03–05, piano 06–08).

Side by side (``parallel=True``)
    Each track runs its notebooks in order, the tracks at the same time.  Every notebook is a child process
    (``python -m papermill``) with an environment of its own, watched by the driver's one thread: two kernels
    started at the same moment cannot see each other's settings.  Papermill in threads of the driver would not do:
    ``execute_notebook`` takes no environment for the kernel (which inherits the starting process's) and changes
    the whole process's working directory while it runs.  The price is papermill's start-up, ~3 s per notebook.

    A notebook gets a share of the cores, ``max(1, cores // tracks still running)`` with
    ``cores = len(os.sched_getaffinity(0))``, fixed when it starts: ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` in
    its kernel's environment, and the notebook's ``threads`` and ``jobs`` parameters where it declares them
    (:data:`SHARE_PARAMETERS`; notebooks 07 and 08 would otherwise train with one torch thread, and 01, 04–08 would
    start a worker process per core).  Once a track has finished, the other's next notebooks get every core.

    Why: on a 2-core CPU the small ``mini`` networks train only 1.2–1.7× faster with a second torch thread, so two
    tracks with one thread each do more work per hour than one track with two; and two processes with two
    threads each on two cores are 10–20× slower (OpenMP threads spin against each other), so shares never add up
    to more than the cores.

One after another (``parallel=False``)
    The notebooks in number order, each given only ``profile``: no thread variables, no ``threads``/``jobs`` (the
    notebooks' own defaults), as before the tracks existed.  The default, ``parallel=None``, runs side by side where
    the machine has at least two cores and more than one track is selected.

Failure
    A notebook that fails stops its track; every other track finishes the notebook it is running and starts no
    further one.  The driver returns 1 and names the notebook and the cell on stderr; the index marks each notebook
    ``ok``, ``failed`` or ``not run``.

Key numbers
    :func:`record` writes ``key_numbers/<notebook>.json``: one file per notebook, so two kernels never write the same
    file; :func:`write_index` merges them in notebook order.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from mtlnb.core import io
from mtlnb.core.paths import PROJECT_ROOT, figures_dir, runs_root
from mtlnb.profiles import PROFILE_NAMES, default_profile_name

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
TRACKS: dict[str, tuple[str, ...]] = {
    "gradspsa": ("01", "02", "03", "04", "05"),  # OMR / A2S / word graphs / scenarios: each needs the ones before
    "piano": ("06", "07", "08"),  # the multitask piano study: reads nothing that 01-05 write
}
RUN_DIR_ENV = "MTLNB_RUN_DIR"  # set in a notebook's kernel, so that record() knows where to write
NOTEBOOK_ENV = "MTLNB_NOTEBOOK"  # the running notebook's stem, so that record() writes its own file
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")  # read by torch and NumPy's BLAS when the kernel starts
SHARE_PARAMETERS = ("threads", "jobs")  # notebook parameters that receive the core share, where declared
KEY_NUMBERS_DIR = "key_numbers"
POLL_SECONDS = 0.2  # how often the driver looks for a finished notebook (a notebook takes seconds to hours)


def notebooks(directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks (``NN_name.ipynb``) in order."""
    return sorted(p for p in directory.glob("[0-9][0-9]_*.ipynb"))


def select(nbs: list[Path], start: str | None = None, only: str | None = None) -> list[Path]:
    """Notebooks from ``start`` on (or just ``only``); both match a number (``"03"``) or a name prefix."""

    def find(key: str) -> int:
        for i, p in enumerate(nbs):
            if p.name.startswith(key) or p.stem == key:
                return i
        raise ValueError(f"no notebook matches {key!r}; have: {', '.join(p.name for p in nbs)}")

    if only:
        return [nbs[find(only)]]
    return nbs[find(start):] if start else nbs


def track_of(nb: Path) -> str:
    """The track of a notebook: the :data:`TRACKS` entry holding its number, else its own stem."""
    number = nb.name[:2]
    for name, numbers in TRACKS.items():
        if number in numbers:
            return name
    return nb.stem


def tracks(nbs: list[Path]) -> dict[str, list[Path]]:
    """``nbs`` grouped by track, each in number order: the :data:`TRACKS` first, then one track per other notebook."""
    grouped: dict[str, list[Path]] = {name: [] for name in TRACKS}
    for nb in sorted(nbs):
        grouped.setdefault(track_of(nb), []).append(nb)
    return {name: group for name, group in grouped.items() if group}


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; the CPU count where the platform has no affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def record(name: str, value) -> None:
    """Record a key number of the running notebook for the run's index (no-op outside ``reproduce``)."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return
    path = Path(run_dir) / KEY_NUMBERS_DIR / f"{os.environ.get(NOTEBOOK_ENV, 'notebook')}.json"
    data = io.read_json(path) if path.exists() else {}
    data[name] = value
    io.write_json(path, data)


def new_run_dir(profile: str) -> Path:
    """A new ``runs/<profile>-<time>[-n]/``; never an existing folder, even for two runs started in one second."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = runs_root() / f"{profile}-{stamp}"
    base.parent.mkdir(parents=True, exist_ok=True)
    run_dir, n = base, 1
    while True:
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            run_dir, n = base.with_name(f"{base.name}-{n}"), n + 1


def _parameters(nb: Path) -> set[str]:
    """Names assigned in the notebook's ``parameters``-tagged cell."""
    for cell in json.loads(nb.read_text(encoding="utf-8")).get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse("".join(cell.get("source", "")))
            return {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)}
    return set()


def _failed_cell(output: Path) -> str:
    """Index (in the source notebook), execution count and first line of the cell that raised, read from papermill's
    executed copy."""
    try:
        nb = json.loads(output.read_text())
    except (OSError, ValueError):
        return "unknown cell"
    # papermill adds its parameters cell and red error banners; number the cells as the source notebook does
    added = {"injected-parameters", "papermill-error-cell-tag"}
    cells = [c for c in nb.get("cells", []) if not added & set(c.get("metadata", {}).get("tags", []))]
    for i, cell in enumerate(cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                first = "".join(cell.get("source", "")).strip().splitlines()[:1]
                return (f"cell {i} (In [{cell.get('execution_count')}]: {first[0][:60] if first else ''}): "
                        f"{out.get('ename')}: {out.get('evalue')}")
    return "unknown cell"


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def write_index(run_dir: Path, profile: str, entries: list[dict], summary: dict | None = None) -> None:
    """``index.json`` and ``index.md`` of a run: ``entries`` (one dict per notebook), the merged key numbers, figures.

    ``summary`` holds run-wide fields (mode, cores, start, wall seconds); key numbers are merged from
    ``key_numbers/<notebook>.json`` in the order of ``entries`` (a name recorded twice keeps the later notebook's).
    """
    summary = summary or {}
    kn_dir = run_dir / KEY_NUMBERS_DIR
    files = sorted(kn_dir.glob("*.json")) if kn_dir.is_dir() else []
    rank = {Path(e["notebook"]).stem: i for i, e in enumerate(entries)}
    key_numbers: dict = {}
    for path in sorted(files, key=lambda p: (rank.get(p.stem, len(rank)), p.stem)):
        key_numbers.update(io.read_json(path))
    fig_dir = figures_dir(profile)
    figures = sorted(str(p) for p in fig_dir.glob("*.png"))
    io.write_json(run_dir / "index.json", {"profile": profile, **summary, "notebooks": entries,
                                           "key_numbers": key_numbers, "figures": figures})
    lines = [f"# mtlnb run `{run_dir.name}` (profile `{profile}`)", ""]
    if summary:
        mode = "tracks side by side" if summary.get("parallel") else "one notebook after another"
        lines += [f"{mode} on {summary.get('cores')} cores; started {summary.get('started')}, "
                  f"{summary.get('wall_seconds', 0):.0f} s wall", ""]
    lines += ["| notebook | track | status | threads | start | end | seconds |", "|---|---|---|---|---|---|---|"]

    def clock(stamp: str | None) -> str:  # the time of day: the date is the run's, in the line above
        return stamp.split("T")[-1] if stamp else ""

    for e in entries:
        seconds = "" if e.get("seconds") is None else f"{e['seconds']:.0f}"
        threads = "" if e.get("threads") is None else e["threads"]
        lines.append(f"| [{e['notebook']}]({e['notebook']}) | {e.get('track', '')} | {e['status']} | {threads} "
                     f"| {clock(e.get('start'))} | {clock(e.get('end'))} | {seconds} |")
    if key_numbers:
        lines += ["", "## Key numbers", "", "| name | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in sorted(key_numbers.items())]
    if figures:
        lines += ["", "## Figures", ""] + [f"- [{Path(f).name}]({os.path.relpath(f, run_dir)})" for f in figures]
    io.write_text(run_dir / "index.md", "\n".join(lines) + "\n")


@dataclass
class _Job:
    """A notebook running in its own papermill process."""

    nb: Path
    entry: dict  # the notebook's row of the index, updated in place
    proc: subprocess.Popen
    log: IO  # papermill's own output; a plain growing file (readable while it runs), not an atomic write
    t0: float


class _Run:
    """The run folder, its index rows and the papermill processes that fill it."""

    def __init__(self, run_dir: Path, profile: str, todo: list[Path], parallel: bool, cores: int):
        self.run_dir, self.profile = run_dir, profile
        self.entries = {nb.name: {"notebook": nb.name, "track": track_of(nb), "status": "not run", "threads": None,
                                  "start": None, "end": None, "seconds": None} for nb in todo}
        self.t0 = time.time()
        self.summary = {"parallel": parallel, "cores": cores, "started": _now(), "wall_seconds": 0.0}

    def write(self) -> None:
        self.summary["wall_seconds"] = round(time.time() - self.t0, 1)
        write_index(self.run_dir, self.profile, list(self.entries.values()), self.summary)

    def start(self, nb: Path, share: int | None) -> _Job:
        """Start ``nb`` with ``share`` threads (``None``: the notebook's own defaults, no thread variables)."""
        params = {"profile": self.profile}
        env = {**os.environ, RUN_DIR_ENV: str(self.run_dir), NOTEBOOK_ENV: nb.stem}
        if share is not None:
            params.update({p: share for p in SHARE_PARAMETERS if p in _parameters(nb)})
            env.update({v: str(share) for v in THREAD_ENV})
        cmd = [sys.executable, "-m", "papermill", str(nb), str(self.run_dir / nb.name), "-y", json.dumps(params),
               "--cwd", str(nb.parent), "-k", "python3", "--no-progress-bar"]
        log = open(self.run_dir / f"{nb.stem}.log", "w", encoding="utf-8")
        try:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        except OSError:
            log.close()
            raise
        entry = self.entries[nb.name]
        entry.update(status="running", threads=share, start=_now())
        threads = "default threads" if share is None else f"{share} thread{'s' * (share != 1)}"
        print(f"  {nb.name} [{entry['track']}] started, {threads}", flush=True)
        self.write()
        return _Job(nb, entry, proc, log, time.time())

    def finish(self, job: _Job, status: str | None = None) -> bool:
        """Record a finished (or stopped: ``status``) notebook; ``True`` where it ran to the end."""
        job.log.close()
        ok = status is None and job.proc.returncode == 0
        job.entry.update(status="ok" if ok else "failed", end=_now(), seconds=round(time.time() - job.t0, 1))
        print(f"  {job.nb.name} [{job.entry['track']}] {'ok' if ok else 'FAILED'} in {job.entry['seconds']:.0f} s",
              flush=True)
        if not ok:
            output, log = self.run_dir / job.nb.name, self.run_dir / f"{job.nb.stem}.log"
            where = status or _failed_cell(output)
            if where == "unknown cell":  # the kernel died or never started: papermill's last words say why
                where = f"{where}; {_last_line(log)}"
            print(f"FAILED: {job.nb.name}, {where}\n(executed copy: {output}; log: {log})", file=sys.stderr,
                  flush=True)
        self.write()
        return ok


def reproduce(profile: str | None = None, start: str | None = None, only: str | None = None,
              notebook_dir: Path = NOTEBOOK_DIR, parallel: bool | None = None) -> int:
    """Execute the notebooks with ``profile``; returns 0, or 1 after a failure (named on stderr).

    Parameters
    ----------
    profile : str, optional
        ``smoke``, ``mini`` or ``paper``; default :func:`mtlnb.profiles.default_profile_name`.
    start, only : str, optional
        Run from this notebook on, or just this one (a number such as ``"03"`` or a name prefix).
    notebook_dir : Path
        Folder of the numbered notebooks.
    parallel : bool, optional
        Tracks side by side (``True``) or notebooks one after another in number order (``False``); default: side by
        side where the machine has at least two cores and more than one track is selected.
    """
    profile = profile or default_profile_name()
    if profile not in PROFILE_NAMES:
        raise ValueError(f"reproduce: unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    todo = select(notebooks(notebook_dir), start, only)
    if not todo:
        raise ValueError(f"reproduce: no numbered notebooks (NN_name.ipynb) in {notebook_dir}")
    groups = tracks(todo)
    cores = available_cores()
    if parallel is None:
        parallel = cores >= 2 and len(groups) > 1
    names = list(groups) if parallel else ["all"]
    lanes = [list(groups[n]) for n in names] if parallel else [list(todo)]
    run = _Run(new_run_dir(profile), profile, todo, parallel, cores)
    how = f"{len(lanes)} tracks side by side ({', '.join(names)})" if parallel else "one after another"
    print(f"profile {profile}: {len(todo)} notebooks, {how}, {cores} cores → {run.run_dir}", flush=True)
    run.write()

    running: dict[int, _Job] = {}  # lane index → its notebook now running
    failed = False

    def waits(i: int) -> bool:  # a notebook of no track starts after every track before it has finished
        return names[i] not in TRACKS and any(lanes[j] or j in running for j in range(i))

    try:
        while True:
            if not failed:
                active = [i for i in range(len(lanes)) if (lanes[i] or i in running) and not waits(i)]
                for i in active:
                    if i not in running and lanes[i]:
                        share = max(1, cores // len(active)) if parallel else None
                        running[i] = run.start(lanes[i].pop(0), share)
            if not running:
                break
            while not (done := [i for i, job in running.items() if job.proc.poll() is not None]):
                time.sleep(POLL_SECONDS)
            for i in done:
                failed |= not run.finish(running.pop(i))
    finally:  # interrupted (Ctrl-C): stop the notebooks still running, so that no papermill outlives the driver
        for job in running.values():
            job.proc.terminate()
            try:
                job.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                job.proc.kill()
                job.proc.wait()
            run.finish(job, status="interrupted")
    statuses = [e["status"] for e in run.entries.values()]
    wall = run.summary["wall_seconds"]
    if failed:
        print(f"stopped after {wall:.0f} s: {statuses.count('ok')} ok, {statuses.count('failed')} failed, "
              f"{statuses.count('not run')} not run; index: {run.run_dir / 'index.md'}", file=sys.stderr)
        return 1
    print(f"all {len(statuses)} notebooks ran in {wall:.0f} s; index: {run.run_dir / 'index.md'}")
    return 0
