"""The committed notebooks' outputs: cleaned for people to read, and refreshed from a ``reproduce`` run.

The notebooks in ``notebooks/`` carry the outputs of a real ``mini`` run, so that a student who opens one (on GitHub
or in JupyterLab) sees learning curves, tables and verdicts that mean something; CI executes the same notebooks in
``smoke`` under nbval, which compares only the cells marked ``# NBVAL_CHECK_OUTPUT``.  Those cells print facts
that hold in every profile (folds partition the ids, every test sample was decoded by every method, ...), so the
committed ``mini`` outputs and a ``smoke`` execution agree, and a change of the code that breaks such a fact fails
CI whichever profile made the outputs.

:func:`clean` strips what is volatile or noise (execution counts, papermill's injected parameters and timing
metadata, progress bars frozen in stderr or left as widgets, empty stderr streams, ``PosixPath(...)`` results of
saving a figure,
absolute paths of the machine that ran them) and sets the kernel spec that ``make setup`` installs, so that a
notebook opens unmodified in JupyterLab.  :func:`refresh` copies the executed notebooks of a run folder over the
committed ones, cleaned, with the run recorded in each notebook's metadata (``metadata.mtlnb``: profile, commit,
date, the run's and the notebook's wall seconds)::

    python -m mtlnb reproduce --profile mini --refresh-notebooks     # run, then refresh
    python -m mtlnb refresh-notebooks runs/mini-20261207-120000       # refresh from a finished run
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from mtlnb.core import io
from mtlnb.core.paths import reference_root

VOLATILE_CELL_KEYS = ("execution", "papermill", "collapsed", "scrolled", "ExecuteTime")
VOLATILE_NB_KEYS = ("papermill", "widgets")
# What `python -m ipykernel install` (scripts/setup.sh) registers; JupyterLab rewrites any other display name on
# opening and then asks to save a notebook nobody changed.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
# A tqdm text bar's state: "  40%|####      | 2/5 [00:01<00:02,  1.9it/s]" (with a description before it or not).
_BAR = re.compile(r"\d+%\|.*\|.*(\]|\[)|\|\s*\d+/\d+\s*\[")
_PATH_RESULT = re.compile(r"^(Posix|Windows)?Path\(")


def _without_bars(text: str) -> str:
    """``text`` of a stderr stream without progress-bar states (a bar redraws its line with ``\\r``)."""
    lines = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip() and not _BAR.search(p)]
        if parts:
            lines.append(parts[-1])
    return "\n".join(lines) + ("\n" if lines else "")


def _keep(out: dict) -> bool:
    """Whether a cell output stays; a stderr stream is stripped of its bar states on the way (in place)."""
    if out.get("output_type") == "stream" and out.get("name") == "stderr":
        out["text"] = _without_bars("".join(out.get("text", [])))
        return bool(out["text"].strip())
    if "application/vnd.jupyter.widget-view+json" in out.get("data", {}):
        return False  # a live widget (a notebook progress bar): without the kernel it shows a frozen text fallback
    if out.get("output_type") == "execute_result":
        plain = "".join(out.get("data", {}).get("text/plain", []))
        return not (set(out.get("data", {})) == {"text/plain"} and _PATH_RESULT.match(plain))
    return True


def clean(nb: dict) -> dict:
    """``nb`` (a notebook's JSON) without volatile state and noise, in place; returns it."""
    # papermill's injected parameters (e.g. profile = "smoke") must not become the notebook's defaults
    nb["cells"] = [c for c in nb.get("cells", []) if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    for cell in nb["cells"]:
        if cell.get("cell_type") == "code":
            cell["execution_count"] = None
            outputs = [out for out in cell.get("outputs", []) if _keep(out)]
            for out in outputs:
                if "execution_count" in out:
                    out["execution_count"] = None
                if out.get("output_type") == "stream" and isinstance(out.get("text"), str):
                    out["text"] = out["text"].splitlines(True)
            cell["outputs"] = outputs
        meta = cell.get("metadata", {})
        for key in VOLATILE_CELL_KEYS:
            meta.pop(key, None)
    meta = nb.setdefault("metadata", {})
    for key in VOLATILE_NB_KEYS:
        meta.pop(key, None)
    meta["kernelspec"] = dict(KERNELSPEC)
    return nb


def render(nb: dict) -> str:
    """The text a clean notebook is saved as (stable: sorted keys, one-space indent)."""
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def _relative_paths(text: str, roots: list[tuple[str, str]]) -> str:
    for absolute, shown in roots:
        text = text.replace(absolute.rstrip("/") + "/", shown)
    return text


def refresh(run_dir: str | os.PathLike, notebook_dir: str | os.PathLike, roots: dict[str, str] | None = None
            ) -> list[Path]:
    """Copy the executed notebooks of ``run_dir`` (those that ran ``ok``) over ``notebook_dir``'s, cleaned.

    Parameters
    ----------
    run_dir : path
        A ``reproduce`` run folder (its ``index.json`` and executed ``NN_name.ipynb``).
    notebook_dir : path
        Where the committed notebooks are; only notebooks that exist there are replaced.
    roots : dict, optional
        Absolute folders of the machine that ran them and how they are shown instead (default: the run's
        repository as ``""``, so that ``/home/me/mtlnb/data/primus-mini`` reads ``data/primus-mini``, and the
        reference folder (:func:`mtlnb.core.paths.reference_root`) as ``$MTLNB_REFERENCE/``).

    Returns
    -------
    list of Path
        The notebooks replaced.  Raises ``ValueError`` naming the run folder if it holds no finished notebook.
    """
    run_dir, notebook_dir = Path(run_dir), Path(notebook_dir)
    index_path = run_dir / "index.json"
    if not index_path.exists():
        raise ValueError(f"{run_dir}: not a reproduce run folder (no index.json)")
    index = io.read_json(index_path)
    if roots is None:
        roots = {str(run_dir.resolve().parent.parent): ""}
        reference = reference_root()
        if reference is not None:  # the user's own reference material: shown by the variable that points at it
            roots[str(reference.resolve())] = "$MTLNB_REFERENCE/"
            roots[str(reference)] = "$MTLNB_REFERENCE/"
    shown = sorted(roots.items(), key=lambda kv: -len(kv[0]))  # the longest folder first
    written = []
    for entry in index["notebooks"]:
        executed = run_dir / Path(entry["notebook"]).name
        target = notebook_dir / executed.name
        if entry.get("status") != "ok" or not executed.exists() or not target.exists():
            continue
        nb = clean(json.loads(_relative_paths(executed.read_text(encoding="utf-8"), shown)))
        nb["metadata"]["mtlnb"] = {"profile": index["profile"], "commit": index.get("commit"),
                                   "date": index.get("started"), "run_wall_seconds": index.get("wall_seconds"),
                                   "notebook_seconds": entry.get("seconds")}
        io.write_text(target, render(nb))
        written.append(target)
    if not written:
        raise ValueError(f"{run_dir}: no notebook there finished ok; nothing refreshed")
    return written
