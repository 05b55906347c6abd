"""Every figure of the piano study (notebooks 06-08); each function returns its Figure (or the Axes it drew on).

- notebook 06: :func:`targets_over_spectrogram` (the five targets over the semi-logarithmic spectrogram),
  :func:`pedal_extension` (notes before and after the sustain-pedal extension);
- notebook 07: :func:`lr_range` (the learning-rate range test), :func:`learning_curves` (loss and F1 over updates);
- notebook 08: :func:`alpha_heatmaps` (the cross-stitch α of one run over training), :func:`alpha_self_share`
  (the share each task keeps of its own column, per unit, over training).

Saving (``figures/<profile>/<name>.png``) is :func:`mtlnb.core.plots.savefig`'s job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mtlnb.piano import spectrogram, targets as piano_targets

if TYPE_CHECKING:  # only for annotations: training imports this module
    from mtlnb.piano.training import AlphaHistory, LRRangeResult

SUSTAIN_DOWN = 64 / 127  # the sustain target from which the pedal extends notes (CC64 ≥ 64)


def key_bands(lowest: int = 21, n_keys: int = 88) -> np.ndarray:
    """Band of the semi-logarithmic spectrogram nearest each key's fundamental (on a log-frequency axis).

    Returns
    -------
    ndarray int (n_keys,)
        Band index (0 … 143) of MIDI pitches ``lowest`` … ``lowest + n_keys - 1``; low keys share bands, because
        below about 400 Hz the bands are single FFT bins 10.8 Hz apart.
    """
    centres = spectrogram.semilog_center_frequencies()
    hz = 440.0 * 2.0 ** ((np.arange(lowest, lowest + n_keys) - 69) / 12)
    return np.abs(np.log(centres)[None] - np.log(hz)[:, None]).argmin(axis=1)


def targets_over_spectrogram(spec: np.ndarray, targets: Mapping[str, np.ndarray], title: str,
                             fps: float = piano_targets.TARGETS.fps) -> plt.Figure:
    """The five targets of a piece drawn over its spectrogram, the sustain target below.

    Each key is drawn on the band nearest its fundamental (:func:`key_bands`): frames as squares coloured by the
    velocity target, onsets (▶) and offsets (◀) just above.

    Parameters
    ----------
    spec : ndarray (T, 144)
        Semi-logarithmic spectrogram.
    targets : dict
        ``onsets``, ``frames``, ``offsets``, ``velocity`` (T, 88) and ``sustain`` (T, 1), values in [0, 1].
    title : str
    fps : float
        Frames per second (50).
    """
    band = key_bands()
    seconds = len(spec) / fps
    fig, (ax, ax_sus) = plt.subplots(2, 1, figsize=(12, 6.5), sharex=True, gridspec_kw={"height_ratios": [4, 1]},
                                     layout="constrained")
    ax.imshow(spec.T, origin="lower", aspect="auto", cmap="gray_r", extent=[0, seconds, -0.5, spec.shape[1] - 0.5])
    f, k = np.nonzero(targets["frames"])
    sc = ax.scatter(f / fps, band[k], c=targets["velocity"][f, k], cmap="viridis", vmin=0, vmax=1, s=4,
                    marker="s", alpha=0.6, linewidths=0)
    for name, marker, colour in (("onsets", ">", "C3"), ("offsets", "<", "C0")):
        f, k = np.nonzero(targets[name])
        ax.scatter(f / fps, band[k] + 1.5, marker=marker, s=9, color=colour, label=name, linewidths=0)
    a_keys = np.arange(33, 106, 12)  # A1 ... A7, each on its band: the axis reads in notes and Hz
    ax.set_yticks(band[a_keys - 21], [f"A{m // 12 - 1}  {440 * 2 ** ((m - 69) / 12):.0f} Hz" for m in a_keys])
    ax.set_ylabel(f"pitch (spectrogram band of {spec.shape[1]})")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, loc="left", fontsize=10)
    fig.colorbar(sc, ax=ax, label="velocity target", shrink=0.8)
    t = np.arange(len(spec)) / fps
    ax_sus.plot(t, targets["sustain"][:, 0], color="C2", label="sustain target (CC64 / 127)")
    ax_sus.axhline(SUSTAIN_DOWN, color="grey", ls=":", label="pedal down from 64")
    ax_sus.set_ylim(-0.05, 1.05), ax_sus.set_xlabel("time (s)"), ax_sus.legend(loc="upper right", fontsize=8)
    return fig


def pedal_extension(released: np.ndarray, sustained: np.ndarray, pedal: np.ndarray, seconds: float,
                    title: str) -> plt.Figure:
    """Notes as the keys release them (grey) and what the sustain pedal adds (colour), the CC64 curve below.

    Parameters
    ----------
    released, sustained : ndarray (n_notes, 4)
        onset (s), offset (s), pitch, velocity of the same notes without and with the pedal extension
        (:func:`mtlnb.piano.maestro.midi_to_notes` with ``apply_sustain=False`` and ``True``).
    pedal : ndarray (n_events, 2)
        time (s), CC64 value (:func:`mtlnb.piano.maestro.sustain_events`).
    seconds : float
        The excerpt drawn, from 0: notes starting later are left out.
    title : str
    """
    shown = released[:, 0] < seconds
    fig, (ax, ax_p) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True, gridspec_kw={"height_ratios": [4, 1]},
                                   layout="constrained")
    for (on, off, pitch, _), (_, off_sus, _, _) in zip(released[shown], sustained[shown]):
        if off_sus > off:
            ax.plot([off, min(off_sus, seconds)], [pitch, pitch], color="C1", lw=3, alpha=0.6, solid_capstyle="butt")
        ax.plot([on, min(off, seconds)], [pitch, pitch], color="0.35", lw=3, solid_capstyle="butt")
    ax.plot([], [], color="0.35", lw=3, label="key held (note-on to note-off)")
    ax.plot([], [], color="C1", lw=3, label="extended by the sustain pedal")
    ax.set_ylabel("MIDI pitch"), ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title, loc="left", fontsize=10)
    inside = pedal[:, 0] <= seconds
    ax_p.step(pedal[inside, 0], pedal[inside, 1], where="post", color="C2")
    ax_p.axhline(64, color="grey", ls=":")
    ax_p.set_ylabel("CC64"), ax_p.set_xlabel("time (s)"), ax_p.set_xlim(0, seconds)
    return fig


def lr_range(result: LRRangeResult, ax: plt.Axes | None = None) -> plt.Axes:
    """A learning-rate range test over η (log axis): the batch losses, their smoothed curve, and -- where the curve
    has a minimum worth reading (:attr:`~mtlnb.piano.training.LRRangeResult.suggests`) -- the minimum and the
    suggested η; otherwise a note in the corner says why no rate is suggested.

    The y axis shows the range the smoothed curve moves in before it blows up (the divergence at the end runs off
    the top, marked with an arrow): a loss that ends ten times higher would otherwise flatten the part to read.

    Parameters
    ----------
    result : mtlnb.piano.training.LRRangeResult
    ax : matplotlib.axes.Axes, optional
        Where to draw; a new 6 × 3.5 in figure if None.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
    losses = np.asarray(result.losses, dtype=float)
    ax.semilogx(result.lrs, result.raw_losses, color="0.8", lw=0.6, label="batch loss")
    ax.semilogx(result.lrs, losses, color="C0", label="smoothed training loss")
    start, low = float(losses[0]), float(np.min(losses))
    span = max(start - low, 0.05 * abs(start), 1e-6)
    top = start + 0.5 * span
    ax.set_ylim(low - 0.5 * span, top)
    if np.max(losses) > top:
        first = int(np.argmax(losses > top))
        ax.annotate("diverges", xy=(result.lrs[first], top), xytext=(-40, -18), textcoords="offset points",
                    fontsize="small", arrowprops={"arrowstyle": "->", "color": "0.3"})
    if result.suggests:
        ax.axvline(result.best_lr, color="grey", linestyle=":", label=f"minimum at η = {result.best_lr:.2g}")
        ax.axvline(result.suggested_lr, color="C3", linestyle="--", label=f"suggested η = {result.suggested_lr:.2g}")
    else:
        ax.text(0.02, 0.96, "no rate suggested: " + ("the loss hardly fell" if result.drop < result.MIN_DROP
                                                     else "still falling at the last η"),
                transform=ax.transAxes, va="top", fontsize="small", color="C3")
    ax.set_xlabel("learning rate η (log scale)")
    ax.set_ylabel("loss")
    ax.legend(fontsize="small", loc="lower left")
    return ax


def learning_curves(curves: pd.DataFrame, panels: Sequence[tuple[str, str]]) -> plt.Figure:
    """One panel per log column over the updates, one line per run (the first panel on a log scale).

    Parameters
    ----------
    curves : pandas.DataFrame
        :func:`mtlnb.piano.training.learning_curves`: columns ``run``, ``updates`` and the log's columns.
    panels : sequence of (column, label)
        E.g. ``[("train_loss", "training loss L"), ("val_frames_f1", "validation frame F1")]``.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 3.4), layout="constrained", squeeze=False)
    axes = axes[0]
    for ax, (column, label) in zip(axes, panels):
        for run, part in curves.groupby("run", sort=False):
            ax.plot(part.updates, part[column], "-o", ms=3, label=run)
        ax.set_title(label, fontsize=9), ax.set_xlabel("updates")
    axes[0].set_yscale("log")
    axes[-1].legend(fontsize=6, loc="lower right")
    return fig


def alpha_heatmaps(history: AlphaHistory, snapshots: int = 3, title: str = "") -> plt.Figure:
    """Heatmaps of a cross-stitch run's α: one row per unit, one column per snapshot (first, evenly spaced, last).

    Parameters
    ----------
    history : mtlnb.piano.training.AlphaHistory
    snapshots : int
        Columns at most.
    title : str
    """
    n = len(history.epochs)
    picks = np.unique(np.linspace(0, n - 1, min(snapshots, n)).round().astype(int))
    fig, axes = plt.subplots(len(history.layers), len(picks), squeeze=False,
                             figsize=(2.3 * len(picks) + 0.8, 2.1 * len(history.layers)), layout="constrained")
    short = [t[:3] for t in history.tasks]
    # One colour scale for all panels, spanning the values drawn: α stay near their init (0.2, or 0.1/0.9),
    # so a scale centred on 0 would hide the changes.
    lo = min(float(layer[picks].min()) for layer in history.layers)
    hi = max(float(layer[picks].max()) for layer in history.layers)
    for r, layer in enumerate(history.layers):
        for c, e in enumerate(picks):
            ax = axes[r, c]
            im = ax.imshow(layer[e], cmap="viridis", vmin=lo, vmax=max(hi, lo + 1e-6))
            for (i, j), v in np.ndenumerate(layer[e]):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if v < (lo + hi) / 2 else "black")
            ax.set_xticks(range(len(short)), short, fontsize=7)
            ax.set_yticks(range(len(short)), short, fontsize=7)
            if r == 0:
                ax.set_title(f"{history.updates[e]:,} updates", fontsize=8)
            if c == 0:
                ax.set_ylabel(f"unit {r + 1}\ninput of task", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label="α (row: receiving task, column: source task)")
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def alpha_self_share(share: pd.DataFrame) -> plt.Figure:
    """Mean α_mm (the share each task keeps of its own column) over the updates, one line per run and unit.

    Parameters
    ----------
    share : pandas.DataFrame
        Columns ``run``, ``unit``, ``updates`` and ``mean α_mm``.
    """
    fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
    for (run, unit), part in share.groupby(["run", "unit"]):
        ax.plot(part.updates, part["mean α_mm"], "-o", ms=3, label=f"{run}, unit {unit}")
    ax.set_xlabel("updates"), ax.set_ylabel("mean α_mm (own column)"), ax.legend(fontsize=6, ncol=2)
    return fig
