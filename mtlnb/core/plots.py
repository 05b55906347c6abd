"""Figures shared by the notebooks (matplotlib / seaborn); each function returns its Figure."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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


def _imread_gray(path: str | os.PathLike) -> np.ndarray:
    from mtlnb.camera_primus.corpus.features import load_grayscale

    return load_grayscale(path)


def show_sample(clean: str | os.PathLike, distorted: str | os.PathLike, cqt: np.ndarray, tokens: Sequence[str],
                title: str = "") -> plt.Figure:
    """Clean engraving, camera-distorted image and CQT features of one sample, with its first tokens.

    ``cqt`` is the (256, W) A2S input (row 0 at the top, as the network sees it).
    """
    fig, axes = plt.subplots(3, 1, figsize=(12, 6.5), gridspec_kw={"height_ratios": [1, 1, 1.6]})
    axes[0].imshow(_imread_gray(clean), cmap="gray", aspect="auto")
    axes[0].set_title("clean engraving (<id>.png)", loc="left", fontsize=10)
    axes[1].imshow(_imread_gray(distorted), cmap="gray", aspect="auto")
    axes[1].set_title("camera-distorted (<id>_distorted.jpg): the OMR input", loc="left", fontsize=10)
    axes[2].imshow(cqt, cmap="magma", aspect="auto", origin="upper")
    axes[2].set_title("CQT features (256 × W): the A2S input", loc="left", fontsize=10)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    shown = " ".join(tokens[:14]) + (" …" if len(tokens) > 14 else "")
    fig.suptitle(f"{title}\n{shown}", fontsize=9, x=0.01, ha="left")
    fig.tight_layout()
    return fig


def image_grid(rows: Sequence[tuple[str, Sequence[str | os.PathLike]]], width: float = 12.0) -> plt.Figure:
    """Rows of images, each row labelled: e.g. ``[("real", paths), ("synthetic", paths)]``."""
    n = max(len(paths) for _, paths in rows)
    fig, axes = plt.subplots(n, len(rows), figsize=(width, 1.3 * n), squeeze=False)
    for c, (label, paths) in enumerate(rows):
        axes[0, c].set_title(label, fontsize=10)
        for r in range(n):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if r < len(paths):
                ax.imshow(_imread_gray(paths[r]), cmap="gray", aspect="auto")
            else:
                ax.axis("off")
    fig.tight_layout()
    return fig


def compare_distributions(frames: dict[str, pd.DataFrame], columns: Sequence[str], ncols: int = 3) -> plt.Figure:
    """Histograms (density) of ``columns`` for each named DataFrame, overlaid: e.g. real vs synthetic."""
    import seaborn as sns

    nrows = int(np.ceil(len(columns) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4 * ncols, 2.8 * nrows), squeeze=False)
    long = pd.concat([df[list(columns)].assign(source=name) for name, df in frames.items()], ignore_index=True)
    for ax, col in zip(axes.flat, columns):
        sns.histplot(long, x=col, hue="source", stat="density", common_norm=False, element="step", ax=ax,
                     bins=20)
    for ax in list(axes.flat)[len(columns):]:
        ax.axis("off")
    fig.tight_layout()
    return fig
