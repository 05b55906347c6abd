"""Every figure of the Camera-PrIMuS study (notebooks 01-05): corpus samples, learning curves, transcriptions, word
graphs, confusion networks, SER over α, scenario heatmaps, the sim-to-real decomposition.

Shared styling and saving live in :mod:`mtlnb.core.plots`; these functions return Matplotlib figures and never save.
"""

from __future__ import annotations

import os
import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyArrowPatch

from mtlnb.camera_primus.corpus import engraving, features
from mtlnb.camera_primus.corpus.features import load_grayscale
from mtlnb.camera_primus.decoding.lattice import EPS, Lattice
from mtlnb.camera_primus.evaluation import scenarios, thesis_tables
from mtlnb.camera_primus.notation import semantic
from mtlnb.core import plots  # noqa: F401  (imported for its side effect: the notebooks' figure style)

# --- corpus and networks (notebooks 01-03) ---


def show_sample(clean: str | os.PathLike, distorted: str | os.PathLike, cqt: np.ndarray, tokens: Sequence[str],
                title: str = "") -> plt.Figure:
    """Clean engraving, camera-distorted image and CQT features of one sample, with its first tokens.

    ``cqt`` is the (256, W) A2S input (row 0 at the top, as the network sees it).
    """
    fig, axes = plt.subplots(3, 1, figsize=(12, 7), gridspec_kw={"height_ratios": [1, 1, 1.6]})
    axes[0].imshow(load_grayscale(clean), cmap="gray", aspect="auto")
    axes[0].set_title("clean engraving (<id>.png)", loc="left", fontsize=10)
    axes[1].imshow(load_grayscale(distorted), cmap="gray", aspect="auto")
    axes[1].set_title("camera-distorted (<id>_distorted.jpg): the OMR input", loc="left", fontsize=10)
    for ax in axes[:2]:
        ax.set_xticks([]), ax.set_yticks([])
    # The features are the (120 bins, frames) CQT resized to 256 rows: back to seconds and notes for the axes.
    frames = cqt.shape[1] * features.CQT_BINS / cqt.shape[0]
    seconds = frames * features.CQT_HOP / features.CQT_SR
    image = axes[2].imshow(features.CQT_TOP_DB * (cqt - 1.0), cmap="magma", aspect="auto", origin="upper",
                           extent=(0, seconds, 0, features.CQT_BINS), vmin=-features.CQT_TOP_DB, vmax=0)
    octaves = range(0, features.CQT_BINS, features.CQT_BINS_PER_OCTAVE)
    axes[2].set_yticks([b + 0.5 for b in octaves], [f"C{1 + b // features.CQT_BINS_PER_OCTAVE}" for b in octaves])
    axes[2].set_xlabel("time (s)")
    axes[2].set_ylabel("pitch")
    axes[2].set_title(f"CQT features ({cqt.shape[0]} × {cqt.shape[1]}; {features.CQT_BINS_PER_OCTAVE} bins per "
                      "octave from C1): the A2S input", loc="left", fontsize=10)
    fig.colorbar(image, ax=axes[2], pad=0.01, fraction=0.03, label="dB below the loudest bin")
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
                ax.imshow(load_grayscale(paths[r]), cmap="gray", aspect="auto")
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


def learning_curves_figure(curves: pd.DataFrame):
    """Training loss and validation SER per epoch, one line per run (``curves`` from
    :func:`mtlnb.camera_primus.networks.runs.learning_curves`)."""
    fig, (ax_loss, ax_ser) = plt.subplots(1, 2, figsize=(11, 3.6))
    for run, df in curves.groupby("run", sort=False):
        ax_loss.plot(df["epoch"], df["train_loss"], marker=".", label=run)
        ax_ser.plot(df["epoch"], df["val_ser"], marker=".", label=run)
    ax_loss.set(xlabel="epoch", ylabel="CTC loss (nats / sample)", title="training loss", yscale="log")
    ax_ser.set(xlabel="epoch", ylabel="SER (%)", title="validation SER (greedy)")
    ax_ser.axhline(100, color="0.7", lw=0.8, ls=":")
    ax_ser.legend(fontsize=8)
    fig.tight_layout()
    return fig


def engrave_tokens(tokens: Sequence[str]) -> np.ndarray | None:
    """The engraving (uint8 image, ink dark on white) of a semantic sequence, or ``None`` when the sequence is not
    valid music (a prediction may not parse, or Verovio may refuse it)."""
    import verovio  # imported here, as mtlnb.camera_primus.corpus.engraving does: only engraving needs it

    if not tokens:
        return None
    verovio.enableLog(False)  # a prediction's odd PAE (e.g. "//////" for six barlines) is expected, not news
    try:
        return engraving.engrave(semantic.semantic_to_pae(list(tokens))).image
    except (ValueError, KeyError, IndexError):
        return None
    finally:
        verovio.enableLog(True)


def transcriptions_figure(examples: pd.DataFrame, names: Sequence[str], max_tokens: int = 18):
    """Engraved ground truth and greedy predictions of each example (``examples`` from
    :func:`mtlnb.camera_primus.networks.runs.transcribe_examples`); a prediction that is not valid music is shown
    as its tokens."""
    labels = ["reference", *names]
    fig, axes = plt.subplots(len(examples), len(labels), figsize=(5.2 * len(labels), 1.7 * len(examples)),
                             squeeze=False)
    for r, (_, row) in enumerate(examples.iterrows()):
        images = [engrave_tokens(row[label]) for label in labels]
        # One scale per row: every engraving in the same pixel frame, from the top left, so that a shorter
        # prediction is drawn shorter (not stretched to the panel) and staves are the reference's size.
        drawn = [im for im in images if im is not None]
        frame_w = max((im.shape[1] for im in drawn), default=1)
        frame_h = max((im.shape[0] for im in drawn), default=1)
        for c, (label, image) in enumerate(zip(labels, images)):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            tokens = row[label]
            title = row["id"] if label == "reference" else f"{label}: SER {row[f'{label}_ser']:.0f} %"
            ax.set_title(title, fontsize=8, loc="left")
            shown = " ".join(tokens[:max_tokens]) + (" …" if len(tokens) > max_tokens else "")
            if image is not None:
                ax.imshow(image, cmap="gray", vmin=0, vmax=255, aspect="equal",
                          extent=(0, image.shape[1], image.shape[0], 0))
                ax.set_xlim(0, frame_w), ax.set_ylim(frame_h, 0)
            else:
                ax.text(0.01, 0.5, "not valid music:\n" + _wrap(shown), fontsize=6, va="center", family="monospace",
                        transform=ax.transAxes)
            for side in ax.spines.values():
                side.set_visible(False)
    fig.tight_layout()
    return fig


def _wrap(text: str, width: int = 70) -> str:
    """``text`` broken into lines of at most ``width`` characters; ``"(empty)"`` for no text."""
    return "\n".join(textwrap.wrap(text, width)) or "(empty)"


# --- word graphs and fusion (notebook 04) ---


def draw_word_graph(lattice: Lattice, ax=None, threshold: float = 0.05, frames: tuple[int, int] | None = None,
                    title: str = ""):
    """Draw a word graph as a DAG: nodes at their frame, arcs labelled with symbol and posterior.

    Parameters
    ----------
    lattice : Lattice
        Read off at its default scales (pass a :func:`mtlnb.camera_primus.fusion.pipeline.rescaled` lattice for
        another acoustic scale).
    ax : matplotlib Axes, optional
    threshold : float
        Arcs with a posterior below this are left out (keeps the picture readable).
    frames : (int, int), optional
        Only arcs starting within these frames ``[first, last)`` (a window of a long sample).

    Returns
    -------
    matplotlib Axes
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(14, 4))
    post = lattice.arc_posteriors()
    t = lattice.node_time
    keep = post >= threshold
    if frames is not None:
        keep &= (t[lattice.src] >= frames[0]) & (t[lattice.src] < frames[1])
    arcs = np.nonzero(keep)[0]
    if len(arcs) == 0:
        raise ValueError(f"draw_word_graph: no arc has posterior ≥ {threshold} in frames {frames}")
    # y: the nodes of the most probable path on 0, the others above and below in order of first appearance
    mass = np.zeros(lattice.num_nodes)
    np.add.at(mass, lattice.dst[arcs], post[arcs])
    nodes = np.unique(np.concatenate([lattice.src[arcs], lattice.dst[arcs]]))
    y = {}
    taken: dict[int, int] = {}
    for n in sorted(nodes.tolist(), key=lambda n: (t[n], -mass[n])):
        k = taken.get(int(t[n]), 0)
        taken[int(t[n])] = k + 1
        y[n] = (k + 1) // 2 * (1 if k % 2 else -1)
    xs = [t[n] for n in nodes]
    ax.set_xlim(min(xs) - 2, max(xs) + 2)
    seen: dict[tuple, int] = {}
    labels = []  # (x, arc y, text) of each arc's label, placed above it without overlaps
    for a in arcs.tolist():
        s, d = int(lattice.src[a]), int(lattice.dst[a])
        k = seen.get((s, d), 0)
        seen[(s, d)] = k + 1
        rad = 0.25 * ((k + 1) // 2) * (1 if k % 2 else -1)
        p0, p1 = (t[s], y[s]), (t[d], y[d])
        ax.add_patch(FancyArrowPatch(p0, p1, arrowstyle="-|>", mutation_scale=8, lw=0.5 + 2.5 * post[a],
                                     color=plt.cm.viridis(0.85 * (1 - post[a])),
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=4, shrinkB=4))
        sym = lattice.symbol[a]
        label = lattice.vocabulary[sym] if sym >= 0 else "</s>"
        mx, my = (p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2 - rad * (p1[0] - p0[0]) * 0.02
        labels.append((mx, my, f"{label}\n{post[a]:.2f}"))
    ax.scatter(xs, [y[n] for n in nodes], s=18, c="k", zorder=3)
    _place_arc_labels(ax, labels, min(y.values()) - 0.8, max(y.values()) + 1.0)
    ax.set_yticks([])
    ax.set_xlabel("frame (node = symbol boundary)")
    ax.set_title(title or f"word graph: {len(arcs)} of {lattice.num_arcs} arcs (posterior ≥ {threshold:g})",
                 loc="left", fontsize=10)
    return ax


def _lanes(labels: list[tuple[float, float, str]], frames_per_char: float, lane: float) -> list[tuple[float, int]]:
    """Each label's lowest free lane: ``(base y, lane index)`` per label, in the order given (see
    :func:`_place_arc_labels`)."""
    placed: list[tuple[float, float, float, float]] = []
    out = []
    for x, y, text in labels:
        half = max(map(len, text.split("\n"))) * frames_per_char / 2 + 0.15
        k = 0
        while any(x - half < bx1 and bx0 < x + half and y + 0.12 + k * lane < by1 and by0 < y + 0.12 + (k + 1) * lane
                  for bx0, bx1, by0, by1 in placed):
            k += 1
        base = y + 0.12 + k * lane
        placed.append((x - half, x + half, base, base + lane))
        out.append((base, k))
    return out


def _place_arc_labels(ax, labels: list[tuple[float, float, str]], y_bottom: float, y_top: float,
                      fontsize: float = 8.0, min_fontsize: float = 4.0) -> None:
    """Write each ``(x, y, text)`` label (two lines) above its point, horizontally, in the lowest free lane, and set
    the y limits from ``y_bottom`` to the higher of ``y_top`` and the top label.

    Labels are boxes of their text's size: the width from ~0.55 em per character, the height 3 ems, both turned
    into data units with the axes' size in inches; each goes to the lowest lane ``y + 0.12 + k · height`` where
    its box meets no box already placed, so the labels of short neighbouring arcs stack instead of overwriting one
    another.  A label lifted off its arc gets a thin leader line.  A lane's height in data units depends on the y
    limits the lanes push up, so the layout is solved to a fixed point; where the lanes cannot fit the axes' height
    the font shrinks (to ``min_fontsize`` at the least).
    """
    labels = sorted(labels, key=lambda item: (item[1], item[0]))
    x0, x1 = ax.get_xlim()
    width_in = ax.get_position().width * ax.figure.get_figwidth()
    height_pt = ax.get_position().height * ax.figure.get_figheight() * 72
    while True:
        frames_per_char = (x1 - x0) / (width_in * 72 / (0.55 * fontsize))
        top, fits = y_top, False
        for _ in range(20):
            lane = 3 * fontsize * (top + 0.1 - y_bottom) / height_pt
            lanes = _lanes(labels, frames_per_char, lane)
            needed = max([y_top] + [base + lane for base, _ in lanes])
            if needed <= top + 1e-9:
                fits = True
                break
            top = needed
        if fits or fontsize <= min_fontsize:
            break
        fontsize = max(min_fontsize, 0.85 * fontsize)
    for (x, y, text), (base, k) in zip(labels, lanes):
        ax.text(x, base, text, fontsize=fontsize, ha="center", va="bottom")
        if k:
            ax.plot([x, x], [y + 0.05, base], color="0.6", lw=0.6, zorder=1)
    ax.set_ylim(y_bottom, top + 0.1)


def draw_confusion_networks(networks: Mapping[str, list], max_bins: int = 24, min_posterior: float = 0.01,
                            top: int = 4):
    """Confusion networks one above the other: a column per bin, its entries listed with their posteriors.

    Parameters
    ----------
    networks : mapping name -> confusion network
        Sausages (``Lattice.confusion_network()``), e.g. ``{"OMR": cn_omr, "A2S": cn_a2s}``.
    max_bins : int
        Bins shown per network, from the start; bins that are ε with posterior ≥ 0.999 (the empty slots between
        symbols) are skipped and not counted.
    min_posterior : float
        Entries below it are not shown.
    top : int
        Entries shown per bin.

    Returns
    -------
    matplotlib Figure
    """
    width = min(2 + 0.75 * max_bins, 20)
    fig, axes = plt.subplots(len(networks), 1, figsize=(width, 0.4 + 0.5 * top * len(networks)), squeeze=False)
    for ax, (name, cn) in zip(axes[:, 0], networks.items()):
        shown = [b for b in cn if not (b[0][0] == EPS and b[0][1] >= 0.999)]
        skipped = len(cn) - len(shown)
        shown = shown[:max_bins]
        for x, b in enumerate(shown):
            entries = [(s, p) for s, p in b if p >= min_posterior][:top]
            for k, (s, p) in enumerate(entries):
                ax.text(x, -k, f"{'ε' if s == EPS else s}\n{p:.2f}", ha="center", va="center", fontsize=6.5,
                        rotation=0, color="k" if k == 0 else "0.35",
                        bbox={"boxstyle": "round,pad=0.2", "fc": plt.cm.Blues(0.15 + 0.7 * p), "lw": 0})
        ax.set_xlim(-0.6, max(len(shown), 1) - 0.4)
        ax.set_ylim(-top + 0.4, 0.6)
        ax.axis("off")
        ax.set_title(f"{name}: {len(cn)} bins ({skipped} empty ε slots hidden), first {len(shown)} shown",
                     loc="left", fontsize=10)
    fig.tight_layout()
    return fig


def plot_ser_over_alpha(ser: pd.DataFrame, title: str = ""):
    """SER of every method over α: a line per α method, a dashed level per method without α and per unimodal
    system.

    Parameters
    ----------
    ser : DataFrame
        :func:`mtlnb.camera_primus.fusion.pipeline.ser_table` (``LateFusionResult.ser``).

    Returns
    -------
    matplotlib Figure
    """
    fig, ax = plt.subplots(figsize=(9, 4.5))
    levels = ser[ser.alpha.isna()]
    curves = ser[ser.alpha.notna()]
    for name, part in curves.groupby("method", sort=False):
        part = part.sort_values("alpha")
        ax.plot(part.alpha, part.ser, marker="o", label=name)
    styles = {"greedy": ":", "best_path": "--"}
    n = curves.method.nunique()
    for k, r in enumerate(levels.itertuples()):
        style = next((v for key, v in styles.items() if r.method.startswith(key)), "-.")
        ax.axhline(r.ser, ls=style, lw=1.2, color=f"C{(n + k) % 10}", label=f"{r.method} (no α)")
    ax.set_xlabel("α (OMR weight; 1 − α for A2S)")
    ax.set_ylabel("SER (%)")
    ax.set_title(title or "test SER of every method over α", loc="left", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# --- scenarios and cross-validation (notebook 05) ---


def heatmap_figure(cv: pd.DataFrame, scheme: str = "kfold", methods: Sequence[str] | None = None):
    """SER (%) per method × scenario, one heatmap per pair (annotated), for one scheme."""
    import seaborn as sns  # only the heatmap needs it

    part = cv[cv.scheme == scheme]
    if part.empty:
        raise ValueError(f"heatmap_figure: no rows for scheme {scheme!r}")
    pairs = list(dict.fromkeys(part.pair))
    methods = [m for m in (methods or scenarios.METHOD_LABELS) if m in set(part.method)]
    vmax = float(np.nanpercentile(part.ser, 95)) if len(part) else 100.0
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 0.45 * len(methods) + 1.6), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        m = part[part.pair == pair].pivot(index="method", columns="scenario", values="ser")
        m = m.reindex(index=methods, columns=list(scenarios.SCENARIOS))
        m.index = [scenarios.METHOD_LABELS[i] if len(scenarios.METHOD_LABELS[i]) < 28 else i for i in m.index]
        m.columns = [scenarios.label(s) for s in m.columns]
        sns.heatmap(m, ax=ax, annot=True, fmt=".1f", cmap="rocket_r", vmin=0, vmax=vmax, cbar=ax is axes[0, -1],
                    annot_kws={"fontsize": 7}, cbar_kws={"label": "SER (%)"})
        ax.set_title(f"{pair}: test SER, {scheme} scheme", loc="left", fontsize=10)
        ax.set_xlabel("scenario (OMR level, A2S level)")
        ax.set_ylabel("")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def improvement_figure(improvement: pd.DataFrame, methods: Sequence[str] | None = None, thesis: bool = True):
    """Relative improvement (%) of GradSPSA over the baseline per scenario: bars per method; with ``thesis``
    the thesis's MBR improvements (its headline's) as black markers."""
    methods = [m for m in (methods or scenarios.THESIS_ROWS) if m in improvement.index]
    fig, ax = plt.subplots(figsize=(11, 3.8))
    width = 0.8 / max(1, len(methods))
    columns = list(scenarios.SCENARIOS)
    x = np.arange(len(columns))
    for i, m in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, improvement.loc[m, columns].to_numpy(dtype=float), width,
               label=f"{scenarios.METHOD_LABELS[m]} (mean {improvement.loc[m, 'average']:.1f} % over "
                     f"{int(improvement.loc[m].get('scenarios counted', 9))} scenarios)")
    if thesis:
        h = thesis_tables.headline_improvement()
        ax.plot(x, h["per_scenario"].to_numpy(), "k_", ms=14, mew=2,
                label=f"thesis, Minimum Bayes Risk (mean {h['average']:.1f} %)")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x, [scenarios.label(s) for s in scenarios.SCENARIOS], fontsize=8)
    ax.set_ylabel("relative SER improvement (%)")
    ax.set_title("GradSPSA over the baseline: 100 · (SER_baseline − SER_GradSPSA) / SER_baseline", loc="left",
                 fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# --- sim-to-real ---


def sim2real_figure(table: pd.DataFrame, shares: pd.DataFrame | None = None, title: str = ""):
    """SER of the decomposition's conditions (:func:`mtlnb.camera_primus.evaluation.sim2real.decomposition`): a bar
    per condition (SER, and pitch-only SER hatched), the music, engraving and camera shares as brackets between the
    bars they subtract.

    Parameters
    ----------
    table : DataFrame
        ``Decomposition.table``: indexed by condition letter, with ``name``, ``ser`` and ``ser_pitch`` (%).
    shares : DataFrame, optional
        ``Decomposition.shares`` (default: computed from ``table``).
    """
    from mtlnb.camera_primus.evaluation import sim2real

    shares = shares if shares is not None else sim2real.shares_of(table)
    rows = list(table.index)
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 4.2))
    ax.bar(x - 0.2, table["ser"].to_numpy(float), 0.4, color="C0", label="SER")
    ax.bar(x + 0.2, table["ser_pitch"].to_numpy(float), 0.4, color="C0", alpha=0.45, hatch="//",
           label="SER, pitch letter and octave only")
    for i, value in enumerate(table["ser"].to_numpy(float)):
        ax.text(i - 0.2, value + 0.5, f"{value:.1f}", ha="center", fontsize=8)
    top = float(np.nanmax(table["ser"].to_numpy(float)))
    for k, (name, (row, minus)) in enumerate(sim2real.SHARES.items()):
        if row not in rows or minus not in rows:
            continue
        i, j = rows.index(minus), rows.index(row)
        y = top * (1.12 + 0.1 * k)
        ax.annotate("", xy=(j - 0.2, y), xytext=(i - 0.2, y), arrowprops={"arrowstyle": "->", "color": "0.3"})
        ax.text((i + j) / 2 - 0.2, y + top * 0.015, f"{name} {shares.at[name, 'ser']:+.1f}", ha="center", fontsize=8)
    ax.set_xticks(x, [f"({r}) {table.at[r, 'name']}" for r in rows], fontsize=7, rotation=15, ha="right")
    ax.set_ylabel("SER (%)")
    ax.set_ylim(0, top * 1.5)
    ax.set_title(title or "where the sim-to-real gap comes from (greedy decoding)", loc="left", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def real_transcriptions_figure(samples: pd.DataFrame, n: int = 4, ids: Sequence[str] | None = None,
                               width: int = 110):
    """A few images with their reference and the network's greedy hypothesis, errors marked
    (:func:`mtlnb.camera_primus.metrics.mark_differences`).

    Parameters
    ----------
    samples : DataFrame
        ``Evaluation.samples`` of :func:`mtlnb.camera_primus.evaluation.sim2real.evaluate_folder` (an OMR run: its
        ``input`` column names the image read).
    n : int
        How many, when ``ids`` is not given: the first ``n`` rows.
    ids : sequence of str, optional
        Which samples.
    width : int
        Characters per text line.
    """
    from mtlnb.camera_primus import metrics

    shown = samples[samples["id"].isin(ids)] if ids is not None else samples.head(n)
    if shown.empty:
        raise ValueError("real_transcriptions_figure: no sample to show")
    texts = [("reference:  " + _wrap(" ".join(row.reference), width) + "\n\nhypothesis: "
              + _wrap(metrics.mark_differences(row.hypothesis, row.reference), width)) for row in shown.itertuples()]
    line = 0.105  # inches per text line at 6 pt
    blocks = [(1.2, line * (text.count("\n") + 1) + 0.25) for text in texts]  # inches: image, text
    height = sum(a + b for a, b in blocks) + 0.1
    fig = plt.figure(figsize=(10, height))
    top = height - 0.1
    for (image_h, text_h), row, text in zip(blocks, shown.itertuples(), texts):
        ax = fig.add_axes((0.01, (top - image_h + 0.2) / height, 0.98, (image_h - 0.25) / height))
        ax.imshow(load_grayscale(row.input), cmap="gray", aspect="equal", vmin=0, vmax=255)
        ax.set_title(f"{row.id}: SER {row.ser:.0f} %", fontsize=8, loc="left")
        ax.axis("off")
        fig.text(0.01, (top - image_h) / height, text, fontsize=6, va="top", family="monospace")
        top -= image_h + text_h
    return fig
