"""Where mtlnb keeps data, runs and figures.

``MTLNB_DATA`` moves the data root (default: ``data/`` at the top of the checkout), ``MTLNB_RUNS`` the run folder
root (default ``runs/``).  ``MTLNB_REFERENCE`` points at the shared reference material that some tests and
notebooks compare against (default ``../shared/reference`` beside the checkout); it is optional everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    return Path(os.environ.get("MTLNB_DATA", PROJECT_ROOT / "data"))


def runs_root() -> Path:
    return Path(os.environ.get("MTLNB_RUNS", PROJECT_ROOT / "runs"))


def figures_dir(profile: str) -> Path:
    """``figures/<profile>/``: where notebooks save their figures (created on demand)."""
    d = Path(os.environ.get("MTLNB_FIGURES", PROJECT_ROOT / "figures")) / profile
    d.mkdir(parents=True, exist_ok=True)
    return d


def reference_root() -> Path | None:
    """The shared reference folder, or ``None`` where it is absent (a user's clone)."""
    p = Path(os.environ.get("MTLNB_REFERENCE", PROJECT_ROOT.parent / "shared" / "reference"))
    return p if p.is_dir() else None
