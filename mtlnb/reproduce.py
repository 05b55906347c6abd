"""Run the study's notebooks headlessly into a new run folder: the two studies side by side.

``runs/<profile>-<YYYYmmdd-HHMMSS>/`` receives the executed copy of every notebook, its papermill log
(``NN_name.log``), ``index.json`` and ``index.md`` (every notebook with its track, status, thread count, start,
end and seconds; the run's wall seconds; the key numbers each notebook recorded with :func:`record`; links to
figures).  An earlier run folder is never overwritten.  ``start`` resumes from a given notebook and ``only`` runs
one (in a new folder; the data and checkpoints the earlier notebooks produced are reused from the data root).

Tracks
    The notebooks form two independent studies (:data:`TRACKS`): the GradSPSA track 01–05, where each notebook needs
    the ones before, and the piano track 06–08, which needs nothing of 01–05.  A third, optional track, "beyond"
    (09, the thesis's future work as experiments: more than an hour of training in ``mini``), is left out of a plain
    run (:data:`OPTIONAL`): it runs with ``--only 09`` or ``--from 09``, after the runs that trained 02-03's networks
    (it trains what it misses).  A notebook in no track (a later
    ``10_…``) is a track of its own that starts only after every track before it has finished: we cannot know what
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

A real Camera-PrIMuS archive (:func:`reproduce_corpus`)
    ``--corpus PATH`` first makes the archive ready (:func:`prepare_corpus`: its id list, the audio it lacks, the
    feature cache, the folds: the baseline's given lists or five made from the ids), then runs every notebook with
    ``corpus_dir = PATH`` in those that declare it (01-05) and, where fold lists were given, ``MTLNB_REFERENCE``
    pointing at a folder that holds them (:func:`reference_with_folds`; the study reads the baseline's folds there).

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

from mtlnb import notebook_outputs
from mtlnb.core import io
from mtlnb.core.paths import PROJECT_ROOT, figures_dir, runs_root
from mtlnb.profiles import PROFILE_NAMES, default_profile_name, get_profile

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
TRACKS: dict[str, tuple[str, ...]] = {
    "gradspsa": ("01", "02", "03", "04", "05"),  # OMR / A2S / word graphs / scenarios: each needs the ones before
    "piano": ("06", "07", "08"),  # the multitask piano study: reads nothing that 01-05 write
    "beyond": ("09",),  # the thesis's future work: reads 02-03's networks (trains them where missing)
}
OPTIONAL = ("beyond",)  # tracks left out of a plain run: selected by --only, or by --from one of their notebooks
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
    """Notebooks from ``start`` on (or just ``only``); both match a number (``"03"``) or a name prefix.  The
    :data:`OPTIONAL` tracks are left out unless ``only`` or ``start`` names one of their notebooks."""

    def find(key: str) -> int:
        for i, p in enumerate(nbs):
            if p.name.startswith(key) or p.stem == key:
                return i
        raise ValueError(f"no notebook matches {key!r}; have: {', '.join(p.name for p in nbs)}")

    if only:
        return [nbs[find(only)]]
    chosen = nbs[find(start):] if start else nbs
    wanted = track_of(nbs[find(start)]) if start else None
    return [p for p in chosen if track_of(p) not in OPTIONAL or track_of(p) == wanted]


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


def code_version() -> str | None:
    """The commit of the code that runs (``<hash>+changes`` when the work tree differs from it), or None outside a
    git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                                text=True, timeout=30)
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                                 capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+changes" if changed.stdout.strip() else "")


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

    def __init__(self, run_dir: Path, profile: str, todo: list[Path], parallel: bool, cores: int,
                 parameters: dict | None = None, env: dict | None = None, summary: dict | None = None):
        self.run_dir, self.profile = run_dir, profile
        self.parameters, self.env = dict(parameters or {}), dict(env or {})
        self.entries = {nb.name: {"notebook": nb.name, "track": track_of(nb), "status": "not run", "threads": None,
                                  "start": None, "end": None, "seconds": None} for nb in todo}
        self.t0 = time.time()
        self.summary = {"parallel": parallel, "cores": cores, "started": _now(), "wall_seconds": 0.0,
                        "commit": code_version(), **(summary or {})}

    def write(self) -> None:
        self.summary["wall_seconds"] = round(time.time() - self.t0, 1)
        write_index(self.run_dir, self.profile, list(self.entries.values()), self.summary)

    def start(self, nb: Path, share: int | None) -> _Job:
        """Start ``nb`` with ``share`` threads (``None``: the notebook's own defaults, no thread variables)."""
        declared = _parameters(nb)
        # the run-wide parameters (the real corpus) go to the notebooks that declare them (01-05, not the piano's)
        params = {"profile": self.profile, **{k: v for k, v in self.parameters.items() if k in declared}}
        env = {**os.environ, **self.env, RUN_DIR_ENV: str(self.run_dir), NOTEBOOK_ENV: nb.stem}
        if share is not None:
            params.update({p: share for p in SHARE_PARAMETERS if p in declared})
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
              notebook_dir: Path = NOTEBOOK_DIR, parallel: bool | None = None, parameters: dict | None = None,
              env: dict | None = None, summary: dict | None = None, refresh_notebooks: bool = False) -> int:
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
    parameters : dict, optional
        Notebook parameters for every notebook that declares them (``corpus_dir`` of a real archive).
    env : dict, optional
        Variables added to every kernel's environment (``MTLNB_REFERENCE`` of a real archive's fold lists).
    summary : dict, optional
        Run-wide fields recorded in ``index.json`` (what :func:`reproduce_corpus` prepared).
    refresh_notebooks : bool
        After a run without failure, copy the executed notebooks over ``notebook_dir``'s, cleaned and with the run
        recorded in their metadata (:func:`mtlnb.notebook_outputs.refresh`): how the committed outputs are made.
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
    run = _Run(new_run_dir(profile), profile, todo, parallel, cores, parameters, env, summary)
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
    if refresh_notebooks:
        written = notebook_outputs.refresh(run.run_dir, notebook_dir)
        print(f"outputs of {len(written)} notebooks in {notebook_dir} refreshed from this run")
    if get_profile(profile).dry_run:  # what a dry run is for: memory checks and the paper run's projected cost
        from mtlnb.camera_primus.networks import budget
        from mtlnb.camera_primus.study import primus_study

        text = budget.report(primus_study(get_profile(profile)))
        io.write_text(run.run_dir / "projection.md", text + "\n")
        print(text)
    return 0


# -- a real Camera-PrIMuS archive -----------------------------------------------------------------------------------

IDS_FILE = "clean_samples.dat"  # where the study reads a real archive's id list: beside Corpus/
SCENARIOX = "ScenarioX"  # the baseline's five folds; Scenario1..9 beside it hold its scenario subsets
FOLD_FILES = tuple(f"{split}_gt_fold{k}.dat" for k in range(5) for split in ("train", "val", "test"))


@dataclass
class PreparedCorpus:
    """What :func:`prepare_corpus` made ready for the notebooks."""

    root: Path  # the archive: root/Corpus/<id>/
    ids: list[str]
    ids_source: str  # in words: where the ids came from
    folds_source: str  # "baseline" (given lists) or "generated"
    reference: Path | None  # the MTLNB_REFERENCE the notebooks see (the given fold lists), None: unchanged
    audio_failed: dict[str, str]  # id -> why its audio could not be rendered (left out by the features too)
    features_left_out: dict[str, str]
    seconds: dict[str, float]

    def summary(self) -> dict:
        return {"corpus": str(self.root), "ids": len(self.ids), "ids_source": self.ids_source,
                "folds_source": self.folds_source, "audio_failed": len(self.audio_failed),
                "features_left_out": len(self.features_left_out),
                "preparation_seconds": {k: round(v, 1) for k, v in self.seconds.items()}}


def _scenario_dir(folds: str | os.PathLike) -> Path:
    """The ``ScenarioX`` folder of ``--folds``: the folder itself, or ``ScenarioX/`` inside it."""
    folds = Path(folds)
    for candidate in (folds, folds / SCENARIOX):
        if all((candidate / f).is_file() for f in FOLD_FILES):
            return candidate
    missing = [f for f in FOLD_FILES if not (folds / f).is_file()]
    raise FileNotFoundError(f"{folds}: not the baseline's fold lists (ScenarioX/{{train,val,test}}_gt_fold"
                            f"{{0..4}}.dat); missing e.g. {missing[:3]}")


def resolve_ids(root: Path, ids: str | os.PathLike | None, folds: str | os.PathLike | None
                ) -> tuple[list[str], str, bool]:
    """The ids of a real archive and where they come from: ``ids`` (a list file), else ``root/clean_samples.dat``,
    else the union of the test folds of ``folds`` (they partition the baseline's 22,285 cleansed ids), else every
    sample folder.  Returns ``(ids, source in words, whether root/clean_samples.dat must be written)``.

    Raises
    ------
    ValueError
        ``root/clean_samples.dat`` exists and lists other ids than ``ids`` (the notebooks read that file: it is not
        overwritten), or ids without a sample folder in ``root/Corpus`` (named, with their count).
    """
    from mtlnb.camera_primus.corpus import primus

    corpus = primus.PrimusCorpus(root)
    beside = corpus.root / IDS_FILE
    write = False
    if ids is not None:
        listed = primus.read_id_list(ids)
        if beside.is_file() and Path(ids).resolve() != beside.resolve():
            if primus.read_id_list(beside) != listed:
                raise ValueError(f"{beside} exists and lists other ids than {ids}; the notebooks read {beside}: "
                                 f"remove it, or pass it as --ids")
        write, source = not beside.is_file(), f"{ids}"
    elif beside.is_file():
        listed, source = primus.read_id_list(beside), f"{beside}"
    elif folds is not None:
        scenario = _scenario_dir(folds)
        listed = sorted({sid for k in range(5) for sid in primus.read_id_list(scenario / f"test_gt_fold{k}.dat")})
        write, source = True, f"the test folds of {scenario}"
    else:
        listed, source = corpus.ids(), "every sample folder"
    if not listed:
        raise ValueError(f"no ids to use ({source})")
    have = set(corpus.ids())
    absent = [sid for sid in listed if sid not in have]
    if absent:
        raise ValueError(f"{len(absent)} of the {len(listed)} ids ({source}) have no sample folder in {corpus.corpus}, "
                         f"e.g. {absent[:3]}; is the archive complete?")
    return listed, source, write


def check_folds(folds: str | os.PathLike, ids: list[str]) -> Path:
    """The ``ScenarioX`` folder of ``folds`` after checking that its test folds cover exactly ``ids`` (else the
    study would silently make folds of its own); ``ValueError`` naming the difference."""
    from mtlnb.camera_primus.corpus import primus

    scenario = _scenario_dir(folds)
    loaded = primus.load_folds(scenario)
    covered = set().union(*(set(f.test) for f in loaded))
    wanted = set(ids)
    if covered != wanted:
        raise ValueError(f"the test folds of {scenario} cover {len(covered)} ids, the id list {len(wanted)}: "
                         f"{len(covered - wanted)} only in the folds (e.g. {sorted(covered - wanted)[:3]}), "
                         f"{len(wanted - covered)} only in the list (e.g. {sorted(wanted - covered)[:3]}); give the "
                         "id list the folds were made from (the baseline's: clean_samples.dat), or no --folds")
    return scenario


def reference_with_folds(scenario: Path, where: Path) -> Path:
    """A reference folder for the notebooks (``MTLNB_REFERENCE``) whose ``primus/folds/`` holds copies of the given
    ``ScenarioX`` lists (and of ``Scenario1..9`` beside them, the baseline's scenario OMR subsets), and links to
    everything else of the user's own reference folder (real samples for notebooks 01-03, MAESTRO files for 06).

    The study reads the baseline's folds from ``<reference>/primus/folds/ScenarioX`` (:mod:`mtlnb.camera_primus.study`,
    and the scenario lists in :func:`mtlnb.camera_primus.networks.runs.scenario_ids`); the copies also record, in
    the study folder, which lists the run used."""
    import shutil

    from mtlnb.core.paths import reference_root

    if where.exists():
        shutil.rmtree(where)  # made by an earlier run: rebuilt, so that no stale list survives
    folds_dir = where / "primus" / "folds"
    for source in [scenario] + sorted(p for p in scenario.parent.glob("Scenario[1-9]") if p.is_dir()):
        (folds_dir / source.name).mkdir(parents=True)
        for f in sorted(source.glob("*_gt_fold*.dat")):
            shutil.copyfile(f, folds_dir / source.name / f.name)
    own = reference_root()
    if own is not None and own.resolve() != where.resolve():
        for entry in own.iterdir():
            if entry.name != "primus":
                (where / entry.name).symlink_to(entry.resolve())
        for entry in (own / "primus").iterdir() if (own / "primus").is_dir() else ():
            if entry.name != "folds":
                (where / "primus" / entry.name).symlink_to(entry.resolve())
    return where


def prepare_corpus(corpus: str | os.PathLike, folds: str | os.PathLike | None = None,
                   ids: str | os.PathLike | None = None, profile: str | None = None, jobs: int | None = None,
                   soundfont: str | os.PathLike | None = None, progress: bool = True) -> PreparedCorpus:
    """Make a real Camera-PrIMuS archive ready for notebooks 01-05: ids, audio, feature cache, folds.

    1. the ids (:func:`resolve_ids`), written to ``<corpus>/clean_samples.dat`` where the notebooks read them;
    2. ``<id>.wav`` rendered for each id that lacks it (:func:`mtlnb.camera_primus.corpus.synthetic.render_audio`,
       the baseline's FluidSynth rendering at 22,050 Hz; the real archive has no audio);
    3. the feature cache of the profile's study (:meth:`mtlnb.camera_primus.study.PrimusStudy.build_cache`, in
       ``data/primus-real-<profile>/``), so that the notebooks only check it;
    4. the folds: the given lists (checked by :func:`check_folds`, handed to the notebooks by
       :func:`reference_with_folds`), else the study's own (:func:`mtlnb.camera_primus.corpus.primus.make_folds`).

    Steps 2 and 3 resume: what exists and is up to date is kept.
    """
    from mtlnb.camera_primus.corpus import primus
    from mtlnb.camera_primus.corpus.synthetic import render_audio
    from mtlnb.camera_primus.study import primus_study
    from mtlnb.core import io as mio
    from mtlnb.profiles import get_profile

    P = get_profile(profile)
    root = primus.PrimusCorpus(corpus).root  # FileNotFoundError naming the folder when it holds no Corpus/
    seconds: dict[str, float] = {}
    listed, source, write = resolve_ids(root, ids, folds)
    scenario = check_folds(folds, listed) if folds is not None else None
    if write:
        mio.write_text(root / IDS_FILE, "\n".join(listed) + "\n")
    print(f"corpus {root}: {len(listed)} ids ({source})", flush=True)

    t0 = time.time()
    failed = render_audio(root, listed, jobs=jobs, soundfont=soundfont, progress=progress)
    seconds["audio"] = time.time() - t0
    for sid, reason in sorted(failed.items()):
        print(f"  no audio for {sid} ({root / 'Corpus' / sid}): {reason}", flush=True)
    print(f"audio ready in {seconds['audio']:.0f} s ({len(failed)} could not be rendered)", flush=True)

    study = primus_study(P, root, jobs=jobs)
    t0 = time.time()
    cache = study.build_cache(progress=progress)
    seconds["features"] = time.time() - t0
    print(f"features of {len(cache.ids)} samples in {cache.root} ({seconds['features']:.0f} s; "
          f"{len(cache.left_out)} left out)", flush=True)

    reference = reference_with_folds(scenario, study.root / "reference") if scenario is not None else None
    # the folds as the notebooks will see them (same reference folder): given lists that the study would not use
    # fail here, not after hours of training
    before = os.environ.get("MTLNB_REFERENCE")
    try:
        if reference is not None:
            os.environ["MTLNB_REFERENCE"] = str(reference)
        seen = primus_study(P, root, jobs=jobs)
        n_folds = len(seen.folds)
    finally:
        if reference is not None:
            if before is None:
                os.environ.pop("MTLNB_REFERENCE", None)
            else:
                os.environ["MTLNB_REFERENCE"] = before
    if scenario is not None and seen.folds_source != "baseline":
        raise RuntimeError(f"the study did not take the fold lists of {scenario} (it made its own)")
    print(f"folds: {n_folds}, {'the given lists of ' + str(scenario) if scenario else seen.folds_source}",
          flush=True)
    return PreparedCorpus(root, listed, source, seen.folds_source, reference, failed, dict(cache.left_out), seconds)


def reproduce_corpus(corpus: str | os.PathLike, folds: str | os.PathLike | None = None,
                     ids: str | os.PathLike | None = None, profile: str | None = None, start: str | None = None,
                     only: str | None = None, notebook_dir: Path = NOTEBOOK_DIR, parallel: bool | None = None,
                     jobs: int | None = None, soundfont: str | os.PathLike | None = None) -> int:
    """``python -m mtlnb reproduce --corpus``: :func:`prepare_corpus`, then every notebook (:func:`reproduce`) with
    ``corpus_dir`` set to the archive in notebooks 01-05, and the given fold lists as their reference.  The run's
    ``index.json`` records the corpus, the ids' and folds' sources and the preparation times."""
    profile = profile or default_profile_name()
    if profile not in PROFILE_NAMES:
        raise ValueError(f"reproduce: unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    select(notebooks(notebook_dir), start, only)  # a wrong --from / --only fails before hours of preparation
    prepared = prepare_corpus(corpus, folds, ids, profile, jobs, soundfont)
    env = {"MTLNB_REFERENCE": str(prepared.reference)} if prepared.reference is not None else None
    return reproduce(profile, start, only, notebook_dir, parallel, parameters={"corpus_dir": str(prepared.root)},
                     env=env, summary=prepared.summary())
