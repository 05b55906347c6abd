"""Tests of mtlnb.camera_primus.corpus.engraving_compare on staves drawn in the test."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from mtlnb.camera_primus.corpus.engraving_compare import (
    align_by_staff,
    compare_engravings,
    engraving_comparison,
    engraving_measures,
    header_iou,
    ink_mask,
    noteheads,
    run_lengths,
    solid_blobs,
    staff_lines,
    thin_strokes,
)


def draw_staff(width=400, top=40, space=18, line=3, stem=2, heads=((100, 2), (200, 3)), head=(22, 18), bottom=40):
    """A grey image (ink 64 on 255): five lines ``line`` px thick, ``space`` px apart (centre to centre), and
    filled elliptic noteheads of size ``head`` (w, h) centred in the given staff spaces (0 = top space), each with
    an up-stem ``stem`` px wide rising 3.5 spaces from its right edge."""
    h = top + 4 * space + bottom
    img = np.full((h, width), 255, np.uint8)
    for i in range(5):
        c = top + i * space
        img[c - line // 2: c - line // 2 + line] = 64
    yy, xx = np.mgrid[:h, :width]
    for x, sp in heads:
        cy = top + sp * space + space / 2
        img[((xx - x) / (head[0] / 2)) ** 2 + ((yy - cy) / (head[1] / 2)) ** 2 <= 1] = 64
        x1 = int(x + head[0] / 2)
        img[int(cy - 3.5 * space): int(cy), x1 - stem: x1] = 64
    return img


def test_run_lengths():
    assert run_lengths(np.array([0, 1, 1, 0, 1, 0, 1, 1, 1], bool)).tolist() == [2, 1, 3]
    assert run_lengths(np.zeros(4, bool)).size == 0


def test_staff_lines_centres_thickness_and_space():
    lines = staff_lines(ink_mask(draw_staff(space=18, line=3)))
    assert lines.thicknesses.tolist() == [3] * 5
    assert np.allclose(np.diff(lines.centres), 18)
    assert lines.space == pytest.approx(18)
    assert staff_lines(ink_mask(draw_staff(space=20, line=2))).thicknesses.tolist() == [2] * 5


def test_thin_strokes_are_the_stems():
    # two stems 3.5 spaces long from the heads in spaces 2 and 3: they cross 3 and 4 space-middle rows, minus the
    # rows where the notehead itself lies (there the run is the head, too wide to count)
    widths = thin_strokes(ink_mask(draw_staff(stem=3)))
    assert widths.size > 0 and set(widths.tolist()) == {3}
    assert set(thin_strokes(ink_mask(draw_staff(stem=2))).tolist()) == {2}


def test_noteheads_found_by_opening():
    mask = ink_mask(draw_staff(head=(22, 18)))
    blobs = noteheads(solid_blobs(mask, 18.0), 18.0)
    assert len(blobs) == 2
    for b in blobs:
        # a head filling its space keeps the staff-line pixels it touches: up to half a line more on each side
        assert abs(b.width - 22) <= 2 and 17 <= b.height <= 18 + 3


def test_engraving_measures_and_comparison():
    real = draw_staff(line=3, stem=3, head=(22, 19))
    ours = draw_staff(line=2, stem=2, head=(20, 17))
    m = engraving_measures(real)
    assert m["staff_space"] == pytest.approx(18) and m["staff_line"] == 3 and m["stroke"] == 3
    assert m["stroke_3px"] == 1.0 and m["heads"] == 2
    assert m["height"] == real.shape[0] and m["width"] == real.shape[1]
    assert 0 < m["ink_off_lines"] < m["ink"] < 1
    table = compare_engravings([real, real], [ours, ours])
    assert table["staff_line"] == {"real": 3.0, "ours": 2.0, "ratio": pytest.approx(2 / 3)}
    assert table["stroke"]["ratio"] == pytest.approx(2 / 3)
    assert table["ink"]["ratio"] < 1
    with pytest.raises(ValueError):
        compare_engravings([real], [])


def test_align_by_staff_puts_the_top_lines_on_one_row():
    a = draw_staff(top=30, width=300)
    b = draw_staff(top=55, width=250, bottom=10)
    ca, cb = align_by_staff(a, b, above=20, below=20)
    assert ca.shape == cb.shape and ca.shape[1] == 300
    assert np.allclose(staff_lines(ink_mask(ca)).centres, staff_lines(ink_mask(cb)).centres)
    assert (cb[:, 250:] == 255).all()  # padded with paper
    cm, _ = align_by_staff(a < 128, b, above=20, below=20)  # a mask is drawn as ink on paper
    assert np.array_equal(cm < 128, ca < 128)


def test_header_iou():
    a = draw_staff(heads=((60, 1), (150, 2)))
    assert header_iou(a, a.copy()) == 1.0
    moved = draw_staff(heads=((75, 1), (150, 2)))
    assert 0 < header_iou(a, moved) < 1
    assert header_iou(a, draw_staff(heads=())) == 0.0


def test_engraving_comparison_draws_both():
    fig = engraving_comparison(draw_staff(), draw_staff(line=2), title="t", x_range=(0, 200))
    image = fig.axes[0].images[0].get_array()
    assert image.shape[1] == 200
    import matplotlib.pyplot as plt

    plt.close(fig)
