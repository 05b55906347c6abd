"""Where mtlnb keeps data, runs and figures.

``MTLNB_DATA`` moves the data root (default: ``data/`` at the top of the checkout), ``MTLNB_RUNS`` the run folder
root (default ``runs/``), ``MTLNB_FIGURES`` the figures (default ``figures/``).  ``MTLNB_REFERENCE`` points at
optional real material that some tests and notebooks compare against when it is there -- real Camera-PrIMuS sample
folders under ``primus/samples/``, MAESTRO MIDI files under ``maestro/`` (default: a ``shared/reference`` folder
beside the checkout); everything runs without it.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class DataRootError(RuntimeError):
    """The data root cannot be created or written; the message names ``MTLNB_DATA``."""


def data_root() -> Path:
    """The data root, created if needed; :class:`DataRootError` naming ``MTLNB_DATA`` if it cannot be created or
    written (everything the studies derive is written under it)."""
    root = Path(os.environ.get("MTLNB_DATA", PROJECT_ROOT / "data"))
    where = (f"MTLNB_DATA={root}" if "MTLNB_DATA" in os.environ
             else f"the data folder {root} (set MTLNB_DATA to move it)")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataRootError(f"{where}: cannot create it ({e.strerror or e}); point MTLNB_DATA at a writable "
                            "folder") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise DataRootError(f"{where}: not writable; point MTLNB_DATA at a writable folder")
    return root


def runs_root() -> Path:
    return Path(os.environ.get("MTLNB_RUNS", PROJECT_ROOT / "runs"))


def figures_dir(profile: str) -> Path:
    """``figures/<profile>/``: where notebooks save their figures (created on demand)."""
    d = Path(os.environ.get("MTLNB_FIGURES", PROJECT_ROOT / "figures")) / profile
    d.mkdir(parents=True, exist_ok=True)
    return d


def reference_root() -> Path | None:
    """The folder of optional real reference material, or ``None`` where it is absent (as in a fresh clone)."""
    p = Path(os.environ.get("MTLNB_REFERENCE", PROJECT_ROOT.parent / "shared" / "reference"))
    return p if p.is_dir() else None
