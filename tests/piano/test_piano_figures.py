"""The piano study's figures (mtlnb.piano.figures) on tiny inputs, and the package's independence of the OMR study."""

from __future__ import annotations

import subprocess
import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from mtlnb.piano import figures, spectrogram, training


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_key_bands_follow_the_fundamentals():
    bands = figures.key_bands()
    centres = spectrogram.semilog_center_frequencies()
    assert bands.shape == (88,) and np.all(np.diff(bands) >= 0) and bands.max() < len(centres)
    assert abs(np.log2(centres[bands[69 - 21]] / 440.0)) < 1 / 24  # A4 lies within half a band of its band
    assert len(np.unique(bands[:12])) < 12  # the lowest keys share single-bin bands
    np.testing.assert_array_equal(figures.key_bands(60, 3), bands[39:42])


def tiny_targets(frames: int = 20) -> dict[str, np.ndarray]:
    t = {name: np.zeros((frames, 88), np.float32) for name in ("onsets", "frames", "offsets", "velocity")}
    t["frames"][2:9, 40] = 1
    t["velocity"][2:9, 40] = 0.7
    t["onsets"][2, 40], t["offsets"][8, 40] = 1, 1
    t["sustain"] = np.linspace(0, 1, frames, dtype=np.float32)[:, None]
    return t


def test_targets_over_spectrogram_draws_every_target():
    spec = np.random.default_rng(0).random((20, 144)).astype(np.float32)
    fig = figures.targets_over_spectrogram(spec, tiny_targets(), "a title", fps=50.0)
    ax, ax_sus = fig.axes[:2]
    assert ax.get_title(loc="left") == "a title"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["onsets", "offsets"]
    assert len(ax.collections) == 3  # frames (coloured by velocity), onsets, offsets
    np.testing.assert_allclose(ax_sus.lines[0].get_ydata(), tiny_targets()["sustain"][:, 0])
    assert ax.get_xlim() == (0, 20 / 50)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0] == "A1  55 Hz" and labels[3] == "A4  440 Hz" and len(labels) == 7
    assert ax.get_yticks()[3] == figures.key_bands()[69 - 21]  # A4 on its band


def test_pedal_extension_draws_what_the_pedal_adds():
    released = np.array([[0.0, 0.5, 60, 80], [1.0, 1.2, 64, 70], [9.0, 9.5, 67, 60]])
    sustained = released.copy()
    sustained[0, 1] = 0.9  # the pedal extends the first note only
    pedal = np.array([[0.2, 127.0], [0.9, 0.0], [5.0, 100.0]])
    fig = figures.pedal_extension(released, sustained, pedal, 2.0, "notes")
    ax, ax_p = fig.axes
    drawn = [line for line in ax.lines if len(line.get_xdata())]
    assert len(drawn) == 3  # two held notes (the third starts after 2 s) and one extension
    assert any(list(line.get_xdata()) == [0.5, 0.9] for line in drawn)
    assert ax_p.get_xlim() == (0.0, 2.0)


def test_lr_range_marks_the_minimum_and_the_suggestion():
    lrs = np.array([1e-5, 1e-4, 1e-3, 1e-2, 1e-1])
    result = training.LRRangeResult(lrs, np.array([2.0, 1.8, 1.0, 3.0, 30.0]), np.array([2.1, 1.7, 1.1, 2.0, 50.0]),
                                    1e-3, 1e-4, "smoothed loss above 10 x its minimum")
    ax = figures.lr_range(result)
    assert ax.get_xscale() == "log" and len(ax.lines) == 4  # batch losses, smoothed, minimum, suggestion
    assert ax.lines[2].get_xdata()[0] == 1e-3 and ax.lines[3].get_xdata()[0] == 1e-4
    assert ax.get_ylim()[1] < 30.0 and [t.get_text() for t in ax.texts] == ["diverges"]  # the blow-up runs off
    _, own = plt.subplots()
    assert figures.lr_range(result, own) is own
    flat = training.LRRangeResult(lrs, np.array([2.0, 1.99, 1.98, 1.97, 1.96]), np.full(5, 2.0), 1e-1, 1e-2, "end")
    ax = figures.lr_range(flat)
    assert len(ax.lines) == 2 and "no rate suggested" in ax.texts[0].get_text()  # no lines a reader would trust


def test_learning_curves_one_line_per_run_and_panel():
    curves = pd.DataFrame({"run": ["a", "a", "b", "b"], "updates": [10, 20, 10, 20],
                           "train_loss": [1.0, 0.5, 2.0, 1.0], "val_frames_f1": [0.1, 0.2, 0.3, 0.4]})
    fig = figures.learning_curves(curves, [("train_loss", "loss"), ("val_frames_f1", "F1")])
    assert [ax.get_title() for ax in fig.axes] == ["loss", "F1"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2] and fig.axes[0].get_yscale() == "log"
    assert figures.learning_curves(curves, [("train_loss", "loss")]).axes[0].get_title() == "loss"


def test_alpha_heatmaps_and_the_history_method():
    layers = [np.stack([np.full((5, 5), 0.2), np.eye(5) * 0.5 + 0.1, np.eye(5)]) for _ in range(2)]
    history = training.AlphaHistory(np.array([0, 1, 2]), np.array([0, 100, 200]), layers)
    fig = figures.alpha_heatmaps(history, snapshots=2, title="α")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2 * 2 and fig._suptitle.get_text() == "α"
    assert [panels[0].get_title(), panels[1].get_title()] == ["0 updates", "200 updates"]  # first and last
    assert len(history.plot(snapshots=3).axes) == len(figures.alpha_heatmaps(history, 3).axes)


def test_alpha_self_share_one_line_per_run_and_unit():
    share = pd.DataFrame({"run": ["full/balanced"] * 4, "unit": [1, 1, 2, 2], "updates": [0, 10, 0, 10],
                          "mean α_mm": [0.2, 0.3, 0.2, 0.25]})
    fig = figures.alpha_self_share(share)
    assert len(fig.axes[0].lines) == 2


def test_the_piano_package_never_imports_the_omr_study():
    code = ("import importlib, pkgutil, sys, mtlnb.piano as p\n"
            "for m in pkgutil.iter_modules(p.__path__):\n"
            "    importlib.import_module('mtlnb.piano.' + m.name)\n"
            "print(sorted(k for k in sys.modules if k.startswith('mtlnb.camera_primus')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
