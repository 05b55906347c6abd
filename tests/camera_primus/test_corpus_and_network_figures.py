"""The figures of notebooks 01-03 in mtlnb.camera_primus.figures: each draws what it is given (Agg backend)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mtlnb.camera_primus import figures  # noqa: E402

from tiny_corpus import TINY_LABELS, write_tiny_sample  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture
def images(tmp_path):
    for i, sid in enumerate(["a", "b"]):
        write_tiny_sample(tmp_path, sid, TINY_LABELS["t0"], seed=i)
    return [tmp_path / sid / f"{sid}_distorted.jpg" for sid in ("a", "b")]


def test_show_sample_has_three_panels_and_the_first_tokens(images):
    tokens = [f"note-{i}" for i in range(20)]
    fig = figures.show_sample(images[0], images[1], np.zeros((256, 40)), tokens, title="s1")
    assert len(fig.axes) == 4 and [len(ax.images) for ax in fig.axes[:3]] == [1, 1, 1]  # the 4th: the colour bar
    cqt = fig.axes[2]
    assert cqt.images[0].get_array().shape == (256, 40)
    # 40 columns of the 256-row features are 40 * 120 / 256 CQT frames of 512 samples at 22,050 Hz
    assert cqt.get_xlim() == pytest.approx((0, 40 * 120 / 256 * 512 / 22050))
    assert [t.get_text() for t in cqt.get_yticklabels()] == ["C1", "C2", "C3", "C4", "C5"]
    assert fig.axes[3].get_ylabel() == "dB below the loudest bin"
    title = fig._suptitle.get_text()
    assert title.startswith("s1\nnote-0 ") and "note-13 …" in title and "note-14" not in title


def test_image_grid_blanks_the_cells_a_shorter_row_lacks(images):
    fig = figures.image_grid([("real", images[:1]), ("synthetic", images)])
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes[0]] == ["real", "synthetic"]
    assert len(axes[1, 0].images) == 0 and not axes[1, 0].axison and len(axes[1, 1].images) == 1


def test_compare_distributions_one_panel_per_column_the_rest_off():
    frames = {"real": pd.DataFrame({"x": [1.0, 2.0, 2.5], "y": [0.0, 1.0, 1.0]}),
              "synthetic": pd.DataFrame({"x": [1.5, 2.0, 3.0], "y": [1.0, 1.0, 2.0]})}
    fig = figures.compare_distributions(frames, ["x", "y"], ncols=3)
    assert [ax.get_xlabel() for ax in fig.axes[:2]] == ["x", "y"] and not fig.axes[2].axison


def test_learning_curves_figure_one_line_per_run_and_panel():
    curves = pd.DataFrame({"run": ["omr", "omr", "a2s"], "epoch": [1, 2, 1], "train_loss": [3.0, 2.0, 4.0],
                           "val_ser": [90.0, 60.0, 95.0], "val_loss": [3.0, 2.5, 4.0], "seconds": [1.0, 1.0, 2.0]})
    fig = figures.learning_curves_figure(curves)
    loss, ser = fig.axes
    assert [line.get_label() for line in loss.lines] == ["omr", "a2s"]
    assert len(ser.lines) == 3  # two runs and the 100 % guide
    assert ser.lines[0].get_ydata().tolist() == [90.0, 60.0]


def test_transcriptions_figure_engraves_valid_music_and_prints_the_rest():
    valid = TINY_LABELS["t0"].split()
    examples = pd.DataFrame([{"id": "s1", "reference": valid, "omr": ["clef-G2", "note-H9_quarter"], "omr_ser": 80.0}])
    fig = figures.transcriptions_figure(examples, ["omr"])
    reference, omr = fig.axes
    assert len(reference.images) == 1 and reference.get_title(loc="left") == "s1"
    assert len(omr.images) == 0 and omr.get_title(loc="left") == "omr: SER 80 %"
    assert omr.texts[0].get_text().startswith("not valid music:\nclef-G2 note-H9_quarter")


def test_transcriptions_figure_draws_a_shorter_prediction_shorter_at_the_references_scale():
    valid = TINY_LABELS["t0"].split()
    short = valid[: max(4, len(valid) // 2)]
    examples = pd.DataFrame([{"id": "s1", "reference": valid, "omr": short, "omr_ser": 50.0}])
    reference, omr = figures.transcriptions_figure(examples, ["omr"]).axes
    assert reference.get_xlim() == omr.get_xlim() and reference.get_ylim() == omr.get_ylim()  # one pixel frame
    ref_w, omr_w = (ax.images[0].get_array().shape[1] for ax in (reference, omr))
    assert omr_w < ref_w and reference.get_xlim()[1] == ref_w


def test_wrap_breaks_long_lines_and_names_empty_text():
    assert figures._wrap("a " * 50, width=20).count("\n") == 4
    assert figures._wrap("") == "(empty)"
