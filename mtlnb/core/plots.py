"""The notebooks' figure style and :func:`savefig`, shared by both studies; each study's figures live in its own
``figures`` module (e.g. :mod:`mtlnb.camera_primus.figures`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from mtlnb.core.paths import figures_dir

# Inline figures at 72 dpi keep committed notebooks small; saved figures (figures/<profile>/) get 110 dpi.
matplotlib.rcParams.update({"figure.dpi": 72, "savefig.dpi": 110, "savefig.bbox": "tight"})


def savefig(fig: plt.Figure, profile: str, name: str) -> Path:
    """Save ``fig`` as ``figures/<profile>/<name>.png`` and return the path."""
    path = figures_dir(profile) / f"{name}.png"
    from mtlnb.core import io

    with io.atomic_path(path) as tmp:
        fig.savefig(tmp)
    return path
