"""Tests of mtlnb.camera_primus.corpus.distortion:
each step's ImageMagick/GraphicsMagick semantics, the recipe, the JPEG writer.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import fields, replace

import numpy as np
import pytest
from PIL import Image

from mtlnb.camera_primus.corpus import distortion as D


def score_like(h: int = 60, w: int = 240) -> np.ndarray:
    """A small synthetic score: five 2-px staff lines 10 px apart, a few stems and noteheads, dark on white."""
    img = np.full((h, w), 255, np.uint8)
    for k in range(5):
        img[10 + 10 * k: 12 + 10 * k, 5:-5] = 60
    for x in range(30, w - 20, 40):
        img[8:52, x: x + 2] = 60
        img[40:47, x - 8: x + 1] = 60
    return img


# -------------------------------------------------------------------------------------- each step, by hand


def test_chop_removes_columns_and_rows_at_a_corner():
    a = np.arange(20, dtype=np.float32).reshape(4, 5)
    assert np.array_equal(D.chop(a, 1, 2, "nw"), a[2:, 1:])
    assert np.array_equal(D.chop(a, 2, 1, "se"), a[:3, :3])
    assert np.array_equal(D.chop(a, 1, 1, "ne"), a[1:, :4])
    assert np.array_equal(D.chop(a, 0, 0, "sw"), a)
    with pytest.raises(ValueError):
        D.chop(a, 0, 0, "middle")
    with pytest.raises(ValueError):
        D.chop(a, 5, 0)


def test_implode_keeps_centre_and_outside_of_ellipse():
    img = score_like().astype(np.float32)
    out = D.implode(img, 0.07)
    h, w = img.shape
    # corners lie outside the centred ellipse: untouched; the centre has factor 1: untouched
    for y, x in [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (h // 2, w // 2)]:
        assert out[y, x] == img[y, x]
    assert not np.array_equal(out, img)


def test_implode_pulls_towards_the_centre():
    # 41 x 241 image: centre (120.5, 20.5), radius 120.5, y scaled by 241/41 so the ellipse spans the image.  On
    # row 20 an output pixel at offset -d samples the source at -d * sin(pi d / 241) ** -0.5; solving for the
    # source offset -60.5 (the line at x = 60) by hand gives d = 45.2, so the line shows at x = 120.5 - 45.2 = 75.3.
    img = np.full((41, 241), 255, np.float32)
    img[:, 60] = 0
    out = D.implode(img, 0.5)
    assert int(np.argmin(out[20, :120])) in (74, 75, 76)


def test_swirl_turns_the_centre_not_the_rim():
    # A spoke from the centre (50.5, 50.5) along +x.  ImageMagick samples the output offset p at R(theta) p, with
    # theta = 90 deg * (1 - |p| / 50.5)^2; the spoke point at offset (10, -0.5) (|p| = 10.01, theta = 57.9 deg)
    # therefore shows at R(-theta) (10, -0.5) = (4.89, -8.73): output pixel (x 55, y 42), turned counter-clockwise.
    img = np.full((101, 101), 255, np.float32)
    img[50, 50:70] = 0
    out = D.swirl(img, 90)
    t = math.radians(90 * (1 - math.hypot(10, 0.5) / 50.5) ** 2)
    px, py = 10 * math.cos(t) - 0.5 * math.sin(t), -10 * math.sin(t) - 0.5 * math.cos(t)
    assert (round(50.5 + px), round(50.5 + py)) == (55, 42)
    assert out[42, 55] < 200 and out[50, 60] > 200
    assert out[0, 0] == 255 and out[100, 100] == 255
    assert np.array_equal(D.swirl(img, 0), img)


def test_spread_follows_graphicsmagick_offsets():
    # On a horizontal ramp (value = column index), output - column is the x offset: GraphicsMagick's truncating
    # cast makes it -1, 0, 1, 2 with probabilities 0.2, 0.4, 0.2, 0.2 for radius 2 (never -2).
    h, w = 200, 300
    ramp = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    out = D.spread(ramp, 2, np.random.default_rng(0))
    off = (out - ramp)[:, 5:-5].ravel()
    values, counts = np.unique(off, return_counts=True)
    assert list(values) == [-1, 0, 1, 2]
    assert np.allclose(counts / counts.sum(), [0.2, 0.4, 0.2, 0.2], atol=0.01)
    assert out.min() >= 0 and out.max() <= w - 1  # redrawn, never off the image
    assert np.array_equal(D.spread(ramp, 0.5, np.random.default_rng(0)), ramp)


def test_shear_grows_the_canvas_and_slants_verticals():
    # GraphicsMagick's ShearImage: rows slide by tan(x / 2) per row, columns by sin(y) per column.
    img = np.full((50, 100), 255, np.float32)
    img[:, 50] = 0
    out = D.shear(img, 10.0, 0.0)
    assert abs(out.shape[1] - (100 + 50 * math.tan(math.radians(5)))) <= 1 and out.shape[0] == 50
    # rows slide by -tan(5 deg) per row below the centre: the line leans right at the top
    top, bottom = np.argmin(out[2]), np.argmin(out[-3])
    assert top - bottom == pytest.approx(45 * math.tan(math.radians(5)), abs=1.01)
    grey = np.full((50, 100), 100, np.float32)
    out = D.shear(grey, 0.0, 1.5)  # columns slide down to the right: the top-right corner is new canvas
    assert out.shape[1] == 100 and abs(out.shape[0] - (50 + 100 * math.sin(math.radians(1.5)))) <= 1
    assert out[0, -1] == 255 and out[25, 50] == 100


def test_shade_flat_and_edge_by_hand():
    flat = np.full((5, 5), 200, np.float32)
    assert np.allclose(D.shade(flat, 0, 30), 100)  # flat: multiplied by sin(elevation)
    assert np.array_equal(D.shade(flat, 37, 90), flat)
    # A vertical step, white on the left: the pixel just left of the step has normal (3, 0, 2) (grey levels in
    # 0-1); with light from azimuth 0 at 45 degrees: cos = (3 + 2) * 0.7071 / sqrt(13) = 0.98058 -> 250.05.
    step = np.zeros((5, 6), np.float32)
    step[:, :3] = 255
    out = D.shade(step, 0, 45)
    assert out[2, 2] == pytest.approx(255 * 0.98058, abs=0.01)
    assert out[2, 0] == pytest.approx(255 * math.sin(math.radians(45)), abs=0.01)
    assert np.all(out[:, 3:] == 0)  # black stays black


def test_wave_shifts_columns_along_a_sine():
    img = np.full((20, 8), 255, np.float32)
    img[5] = 0
    out = D.wave(img, 2.0, 8.0)  # column x moves down by 2 + 2 sin(2 pi x / 8)
    assert out.shape == (24, 8)
    assert out[7, 0] == 0 and out[9, 2] == 0 and out[5, 6] == 0 and out[7, 4] < 1e-3
    assert out[0, 2] == 255  # uncovered: white
    assert np.array_equal(D.wave(img, 0.0, 8.0), img) and np.array_equal(D.wave(img, 2.0, 0.0), img)
    assert D.wave(img, 0.5, 0.3).shape == (21, 8)  # canvas grows by floor(2|a|)


def test_rotate_is_clockwise_and_grows_the_canvas():
    img = score_like(30, 50).astype(np.float32)
    assert np.allclose(D.rotate(img, 90), np.rot90(img, k=-1), atol=1e-3)  # clockwise on screen
    out = D.rotate(img, 0.3)
    t = math.radians(0.3)
    assert abs(out.shape[0] - (30 * math.cos(t) + 50 * math.sin(t))) <= 1
    assert np.array_equal(D.rotate(img, 0), img)


def test_noise_has_imagemagick_gaussian_strength():
    img = np.full((300, 300), 128, np.float32)
    out = D.noise(img, 0.5, np.random.default_rng(1))
    assert (out - img).std() == pytest.approx(0.5 * 255 * 0.078125, rel=0.02)  # 9.96 grey levels
    assert abs((out - img).mean()) < 0.1
    assert np.array_equal(D.noise(img, 0.0, np.random.default_rng(1)), img)


def _gm_weights(width: int, sigma: float) -> np.ndarray:
    # GraphicsMagick's kernel, written out: three sub-samples per tap, exp(-t^2 / 2 sigma^2) at t = i / 3
    w = np.zeros(width)
    for i in range(3 * width):
        w[i // 3] += math.exp(-((i / 3) ** 2) / (2 * sigma * sigma))
    return w / w.sum()


def test_motion_blur_impulse_response():
    # radius 2 -> 5 taps, sigma 1; output(x) sums input(x + i), so the impulse at x0 shows up at x0 - i.
    img = np.zeros((9, 20), np.float32)
    img[4, 10] = 1000
    out = D.motion_blur(img, 2, 1, 0)
    expected = 1000 * _gm_weights(5, 1.0)
    assert np.allclose(out[4, 10:5:-1], expected, atol=1e-3)
    assert out[4, 11] == 0 and out[3].max() == 0
    # angle 90: GraphicsMagick's direction (int(5 cos 90), int(-5 sin 90)) = (0, -5): tap i reads y + int(-i + 0.5),
    # so taps 0 and 1 both read row y (the cast truncates -0.5 to 0) and taps 2-4 rows y-1 .. y-3
    vertical = D.motion_blur(img, 2, 1, 90)
    assert np.allclose(vertical[4:8, 10], [expected[0] + expected[1], *expected[2:]], atol=1e-3)
    assert np.array_equal(D.motion_blur(img, 0, 1, 0), img) and np.array_equal(D.motion_blur(img, 3, 0, 0), img)


def test_motion_kernel_offsets_follow_graphicsmagick():
    # 13 taps at 10 deg: direction (int(13 cos 10), int(-13 sin 10)) = (12, -2); tap i reads
    # (int(i * 12 / 12.17 + 0.5), int(i * -2 / 12.17 + 0.5)), C casts truncating towards zero: only taps 10-12 leave
    # the row (one row up), where a rounded i * sin(10 deg) would leave it from tap 3 on.
    weights, ox, oy = D.motion_kernel(6, 6, 10)
    assert len(weights) == 13 and weights.sum() == pytest.approx(1.0)
    assert list(oy) == [0] * 10 + [-1] * 3
    assert list(ox) == [int(i * 12 / math.hypot(12, 2) + 0.5) for i in range(13)]
    assert np.all(np.diff(weights) < 0)  # a one-sided Gaussian: the first tap weighs most
    _, _, oy = D.motion_kernel(6, 6, -10)  # direction (12, 2): the smear goes down instead
    assert list(oy) == [0] * 3 + [int(i * 2 / math.hypot(12, 2) + 0.5) for i in range(3, 13)]


@pytest.mark.skipif(shutil.which("gm") is None, reason="GraphicsMagick (gm) is not installed")
@pytest.mark.parametrize("option, step", [
    (["-motion-blur", "6x6+10"], lambda x: D.motion_blur(x, 6, 6, 10)),
    (["-motion-blur", "5x3+45"], lambda x: D.motion_blur(x, 5, 3, 45)),
    (["-shear", "5x1.5"], lambda x: D.shear(x, 5, 1.5)),
    (["-implode", "0.07"], lambda x: D.implode(x, 0.07)),
    (["-swirl", "3"], lambda x: D.swirl(x, 3)),
    (["-median", "1"], lambda x: D.median(x, 1)),
], ids=["motion-blur", "motion-blur-45", "shear", "implode", "swirl", "median"])
def test_steps_agree_with_graphicsmagick(tmp_path, option, step):
    img = score_like(80, 400)
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(img).save(src)
    subprocess.run(["gm", "convert", str(src), *option, "-depth", "8", str(dst)], check=True)
    with Image.open(dst) as im:
        theirs = np.asarray(im.convert("L"), dtype=np.float32)
    ours = step(img.astype(np.float32))
    assert ours.shape == theirs.shape
    # grey levels: rounding and 16-bit arithmetic apart (the shear also places rows a fraction of a pixel apart)
    assert np.abs(ours - theirs).mean() < (3.0 if option[0] == "-shear" else 1.5)


def test_median_window_sizes():
    img = np.zeros((11, 11), np.float32)
    img[5, 5] = 255  # an isolated dot disappears under a 3x3 median
    assert D.median(img, 1.0).max() == 0
    block = np.zeros((11, 11), np.float32)
    block[4:7, 4:7] = 255  # a 3x3 block: 9 of 9 under 3x3 survives at its centre, 9 of 25 under 5x5 does not
    assert D.median(block, 1.0)[5, 5] == 255
    assert D.median(block, 1.1)[5, 5] == 0
    assert np.array_equal(D.median(img, 0.0), img)


@pytest.mark.parametrize(
    "step, on, off",
    [
        ("implode", dict(amount=0.07), dict(amount=0.0)),
        ("chop", dict(columns=2, rows=1, corner="se"), dict(columns=0, rows=0)),
        ("swirl", dict(degrees=3.0), dict(degrees=0.0)),
        ("spread", dict(radius=2.0), dict(radius=0.0)),
        ("shear", dict(x_degrees=-5.0, y_degrees=1.5), dict(x_degrees=0.0, y_degrees=0.0)),
        ("wave", dict(amplitude=0.5, length=0.4), dict(amplitude=0.0, length=0.4)),
        ("rotate", dict(degrees=0.3), dict(degrees=0.0)),
        ("noise", dict(attenuate=0.05), dict(attenuate=0.0)),
        ("motion_blur", dict(radius=3.0, sigma=1.5, angle=10.0), dict(radius=0.0, sigma=1.5, angle=10.0)),
        ("median", dict(radius=1.1), dict(radius=0.0)),
    ],
)
def test_each_step_changes_the_image_and_zero_is_identity(step, on, off):
    img = score_like().astype(np.float32)
    fn = getattr(D, step)
    extra = {"rng": np.random.default_rng(0)} if step in ("spread", "noise") else {}
    changed = fn(img, **on, **extra)
    same = fn(img, **off, **extra)
    assert changed.shape != img.shape or not np.array_equal(changed, img)
    assert np.array_equal(same, img)


def test_shade_changes_edges_even_overhead():
    img = score_like().astype(np.float32)
    out = D.shade(img, 60, 90)
    assert not np.array_equal(out, img)
    assert np.all(out[0:5, 0:5] == 255)  # flat paper under a light straight overhead stays white


# -------------------------------------------------------------------------------------------------- the recipe


@pytest.mark.parametrize("name", sorted(D.CONFIGS))
def test_distort_is_deterministic_under_the_rng(name):
    img = score_like()
    config = D.config_named(name)
    a = D.distort(img, np.random.default_rng(3), config)
    b = D.distort(img, np.random.default_rng(3), config)
    c = D.distort(img, np.random.default_rng(4), config)
    assert np.array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


@pytest.mark.parametrize("name", sorted(D.CONFIGS))
def test_distort_output_is_sane(name):
    img = score_like(150, 1000)
    for seed in range(5):
        out = D.distort(img, np.random.default_rng(seed), D.config_named(name))
        assert out.dtype == np.uint8 and out.ndim == 2
        h, w = out.shape
        # chop takes at most 3; shear x adds <= 150 tan 2.5 = 6.5, rotate 0.3 deg adds < 1; shear y adds at most
        # (1000 + 7) sin 1.5 = 26.4, rotate 1000 sin 0.3 = 5.2, the two waves 1 row each
        assert 1000 - 3 <= w <= 1000 + 8
        assert 150 - 3 <= h <= 150 + 35
        assert out.mean() > 150  # still mostly paper


def test_identity_params_only_shade_edges():
    img = score_like()
    from scipy import ndimage

    out = D.apply(img, D.DistortionParams.identity(), np.random.default_rng(0))
    assert out.shape == img.shape
    far = ndimage.distance_transform_edt(img == 255) > 2  # paper outside every 3x3 ink neighbourhood
    assert np.array_equal(out[far], img[far])  # flat paper: untouched under a light overhead
    assert np.abs(out.astype(int) - img).max() > 0  # ink edges are shaded


def test_sampled_params_lie_in_their_ranges():
    config = D.LITERAL  # the recipe's ranges (the default is now the fitted set)
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = D.sample_params(rng, config)
        assert 0 <= p.implode <= 0.07 and -3 <= p.swirl <= 3 and p.spread == 2
        assert 0 <= p.chop_columns <= 3 and 0 <= p.chop_rows <= 3 and p.chop_corner in ("nw", "ne", "sw", "se")
        assert -5 <= p.shear_x <= 5 and -1.5 <= p.shear_y <= 1.5
        assert 0 <= p.shade_azimuth <= 120 and 80 <= p.shade_elevation <= 110
        assert 0 <= p.wave1_amplitude <= 0.5 and 0 <= p.wave2_length <= 0.4 and 0 <= p.rotate <= 0.3
        assert 0 < p.motion_radius <= 6 and 0 < p.motion_sigma <= 3 and 0 <= p.median <= 1.1
    assert D.sample_params(np.random.default_rng(9)) == D.sample_params(np.random.default_rng(9))
    assert set(D.params_dict(p)) == {f.name for f in fields(D.DistortionParams)}


def test_motion_probability_skips_the_blur_on_a_share_of_images():
    config = D.DistortionConfig(motion_probability=0.6, spread_probability=0.0, bend_probability=0.0)
    draws = [D.sample_params(np.random.default_rng(s), config) for s in range(2000)]
    blurred = np.mean([p.motion_radius > 0 and p.motion_sigma > 0 for p in draws])
    assert blurred == pytest.approx(0.6, abs=0.04)
    # the skip is drawn last: every other parameter is that of the same seed under probability 1
    full = D.sample_params(np.random.default_rng(5), D.DistortionConfig(motion_probability=1.0,
                                                                        spread_probability=0.0, bend_probability=0.0))
    part = D.sample_params(np.random.default_rng(5), config)
    assert D.params_dict(full) | {"motion_radius": 0, "motion_sigma": 0} == (
        D.params_dict(part) | {"motion_radius": 0, "motion_sigma": 0})


@pytest.mark.parametrize("name, share", [("spread", "spread_probability"), ("bend", "bend_probability")])
def test_occasional_steps_come_on_a_share_of_images_and_last(name, share):
    config = D.DistortionConfig(**{share: 0.3})
    draws = [D.sample_params(np.random.default_rng(s), config) for s in range(2000)]
    on = [p for p in draws if (p.spread if name == "spread" else p.bend_reach) > 0]
    assert len(on) / len(draws) == pytest.approx(0.3, abs=0.04)
    low, high = config.spread_ragged if name == "spread" else config.bend_reach
    assert all(low <= (p.spread if name == "spread" else p.bend_reach) <= high for p in on)
    # drawn after every recipe parameter: without them, the same seed gives the same recipe draw
    without = D.DistortionConfig(spread_probability=0.0, bend_probability=0.0)
    recipe = {f.name for f in fields(D.DistortionParams)} - {"spread", "bend_reach", "bend_lift", "bend_power",
                                                             "bend_slant"}
    for seed in range(20):
        a, b = D.params_dict(D.sample_params(np.random.default_rng(seed), config)), D.params_dict(
            D.sample_params(np.random.default_rng(seed), without))
        assert {k: a[k] for k in recipe} == {k: b[k] for k in recipe}


def test_bend_lifts_the_opening_columns_only():
    img = score_like(60, 240).astype(np.float32)
    out = D.bend(img, reach=80, lift=0.8, power=1.0)
    assert out.shape == img.shape
    assert np.array_equal(out[:, 80:], img[:, 80:])  # from the reach on, nothing moves
    assert np.array_equal(D.bend(img, 0, 0.8), img) and np.array_equal(D.bend(img, 80, 0.0), img)

    def bottom_line(column):  # last ink row of a column: the bottom staff line, or where it went
        return int(np.flatnonzero(column < 128)[-1])

    assert bottom_line(img[:, 10]) == bottom_line(img[:, 79]) == 51
    # the line rises towards the left edge: row y shows source row y + 0.8 (59 - y) t, t = (80 - x) / 80
    assert bottom_line(out[:, 79]) == 51 and 40 < bottom_line(out[:, 40]) < 51
    assert bottom_line(out[:, 10]) < bottom_line(out[:, 40])
    assert np.array_equal(out[-1, :], img[-1, :])  # the bottom row stays (the stretch is anchored there)
    slanted = D.bend(img, reach=80, lift=0.8, power=1.0, slant=0.5)
    assert np.array_equal(slanted[:, 80:], img[:, 80:]) and not np.array_equal(slanted, out)


def test_sweep_draws_the_boundary_out_into_straight_streaks():
    img = np.full((60, 240), 255, np.float32)
    for k in range(5):  # staff lines across the whole width, rows 10-11, ..., 50-51
        img[10 + 10 * k: 12 + 10 * k, :] = 60
    out = D.sweep(img, reach=80, foot=20, angle=45)
    assert out.shape == img.shape
    assert np.array_equal(out[:, 80:], img[:, 80:])  # right of the boundary's top end nothing moves
    assert np.array_equal(D.sweep(img, 0, 20, 45), img)
    boundary = lambda y: 20 + 60 / 59 * (59 - y)  # noqa: E731  foot at the bottom row, reach at the top row
    # left of the boundary every pixel repeats its upper-left neighbour's value: streaks at 45°
    left = [(y, x) for y in range(1, 60) for x in range(1, 80) if x < boundary(y) - 1 and x - 1 < boundary(y - 1) - 1]
    assert len(left) > 1000 and all(out[y, x] == pytest.approx(out[y - 1, x - 1], abs=1e-3) for y, x in left)
    # the bottom staff line (rows 50-51) stays in place right of the boundary and rises 1:1 left of it
    x_b = int(boundary(50))
    assert (out[50:52, x_b + 2] < 128).all()
    column = out[:, x_b - 12]
    ink = np.flatnonzero(column < 128)
    assert ink.size and 36 <= ink.max() <= 42 and not (column[50:52] < 128).any()
    # below the staff, where the boundary leaves the image (the hook of a C clef on line 1), nothing moves
    assert np.array_equal(out[55:, 21:], img[55:, 21:])
    with pytest.raises(ValueError, match="sweep"):
        D.sweep(img[0], 80, 20, 45)


def test_swept_config_tears_the_same_images_and_keeps_the_recipe_draws():
    recipe = {f.name for f in fields(D.DistortionParams)} - {"bend_reach", "bend_lift", "bend_power", "bend_slant",
                                                             "sweep_reach", "sweep_foot", "sweep_angle"}
    torn = 0
    for seed in range(300):
        fitted = D.sample_params(np.random.default_rng(seed), D.FITTED)
        swept = D.sample_params(np.random.default_rng(seed), D.SWEPT)
        a, b = D.params_dict(fitted), D.params_dict(swept)
        assert {k: a[k] for k in recipe} == {k: b[k] for k in recipe}
        assert (fitted.bend_reach > 0) == (swept.sweep_reach > 0) and swept.bend_reach == 0 == fitted.sweep_reach
        if swept.sweep_reach:
            torn += 1
            assert D.SWEPT.bend_reach[0] <= swept.sweep_reach <= D.SWEPT.bend_reach[1]
            assert D.SWEPT.sweep_foot[0] <= swept.sweep_foot <= D.SWEPT.sweep_foot[1]
            assert D.SWEPT.sweep_angle[0] <= swept.sweep_angle <= D.SWEPT.sweep_angle[1]
    assert 40 <= torn <= 80  # bend_probability 0.2 of 300


def test_named_configs():
    assert D.DistortionConfig() == D.FITTED == D.config_named("fitted")
    assert D.MEASURED_CAMERA_PRIMUS == D.SWEPT == D.config_named(D.DEFAULT_CAMERA)
    assert D.config_named("literal").spread == (2.0, 2.0) and D.LITERAL.motion_probability == 1.0
    assert D.config_named("calibrated").spread == (0.0, 0.0)
    assert D.config_named("swept").tear == "sweep" and D.FITTED.tear == "bend"
    assert D.SWEPT == replace(D.FITTED, tear="sweep")
    assert D.LITERAL.bend_probability == D.CALIBRATED.bend_probability == 0.0  # the recipe has no bend
    assert D.LITERAL.spread_probability == D.CALIBRATED.spread_probability == 0.0
    for name, config in D.CONFIGS.items():
        assert isinstance(config, D.DistortionConfig), name  # each passed DistortionConfig's validation
    with pytest.raises(ValueError, match="unknown distortion config"):
        D.config_named("gm")


def test_config_rejects_bad_ranges():
    with pytest.raises(ValueError, match="swirl"):
        D.DistortionConfig(swirl=(3.0, -3.0))
    with pytest.raises(ValueError, match="median"):
        D.DistortionConfig(median=(-1.0, 1.0))
    with pytest.raises(ValueError, match="motion_probability"):
        D.DistortionConfig(motion_probability=1.5)
    with pytest.raises(ValueError, match="tear"):
        D.DistortionConfig(tear="fold")
    with pytest.raises(ValueError, match="sweep_angle"):
        D.DistortionConfig(sweep_angle=(50.0, 95.0))
    with pytest.raises(ValueError, match="bend_probability"):
        D.DistortionConfig(bend_probability=-0.1)
    with pytest.raises(ValueError, match="bend_lift"):
        D.DistortionConfig(bend_lift=(0.9, 0.5))


def test_distort_rejects_bad_input():
    with pytest.raises(ValueError):
        D.distort(np.zeros((10, 10, 3), np.uint8), np.random.default_rng(0))
    with pytest.raises(ValueError):
        D.distort(np.zeros((10, 10), np.float32), np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------- the JPEG file

# The IJG standard luminance table scaled to quality 75 (each entry halved, rounded): first row.
Q75_FIRST_ROW = [8, 6, 5, 8, 12, 20, 26, 31]


def test_save_distorted_jpg(tmp_path):
    img = D.distort(score_like(), np.random.default_rng(0))
    path = tmp_path / "x_distorted.jpg"
    D.save_distorted_jpg(img, path)
    with Image.open(path) as im:
        assert im.mode == "L" and im.size == (img.shape[1], img.shape[0])
        assert list(im.quantization[0])[:8] == Q75_FIRST_ROW
        assert np.abs(np.asarray(im, dtype=int) - img).mean() < 5  # quality-75 loss on a busy little image
    assert [p.name for p in tmp_path.iterdir()] == ["x_distorted.jpg"]  # no temporary file left behind
    with pytest.raises(ValueError):
        D.save_distorted_jpg(img, path, quality=0)


def test_real_jpegs_use_quality_75(primus_samples):
    for folder in primus_samples[:5]:
        with Image.open(folder / f"{folder.name}_distorted.jpg") as im:
            assert list(im.quantization[0])[:8] == Q75_FIRST_ROW


# ------------------------------------------------------------------------------- against the real Camera-PrIMuS


def _paper_level(img: np.ndarray) -> float:
    from scipy import ndimage

    far = ndimage.distance_transform_edt(img > 200) > 6  # paper at least 6 px away from any ink
    return float(img[far].mean())


@pytest.mark.parametrize("config", [D.LITERAL, D.CALIBRATED, D.FITTED], ids=["literal", "calibrated", "fitted"])
def test_statistics_resemble_the_real_pairs(primus_samples, config):
    rng = np.random.default_rng(0)
    real_stats, our_stats = [], []
    for folder in primus_samples[::6]:  # 10 pairs
        with Image.open(folder / f"{folder.name}.png") as im:
            clean = np.asarray(im.convert("L"))
        with Image.open(folder / f"{folder.name}_distorted.jpg") as im:
            real = np.asarray(im)
        ours = D.distort(clean, rng, config)
        for stats, img in ((real_stats, real), (our_stats, ours)):
            stats.append([img.mean(), (img < 128).mean(), _paper_level(img), img.shape[0] - clean.shape[0],
                          img.shape[1] - clean.shape[1]])
    real_m, our_m = np.mean(real_stats, axis=0), np.mean(our_stats, axis=0)
    assert abs(our_m[0] - real_m[0]) < 8  # mean intensity (real about 217)
    assert 0.6 < our_m[1] / real_m[1] < 1.3  # fraction of dark pixels (real about 0.145)
    assert abs(our_m[2] - real_m[2]) < 4  # the shaded paper grey (real about 252)
    assert abs(our_m[3] - real_m[3]) < 15  # rows gained (real about +19)
    assert -4 < our_m[4] < 8  # columns gained (real about +1.3)


def _smear(clean: np.ndarray, img: np.ndarray) -> float:
    """Energy of a horizontal difference of Gaussians (σ 1 px − σ 3 px) of the ink, relative to the clean image's:
    about 0.7 for an image without motion blur, under 0.2 for one smeared over 10 px or more."""
    import cv2

    def band(a):
        ink = 255.0 - a.astype(np.float32)
        ink -= np.median(ink)
        fine = cv2.GaussianBlur(ink, (0, 0), sigmaX=1.0, sigmaY=0.01)
        coarse = cv2.GaussianBlur(ink, (0, 0), sigmaX=3.0, sigmaY=0.01)
        return float(((fine - coarse) ** 2).sum() / (ink ** 2).sum())

    return band(img) / band(clean)


@pytest.mark.parametrize("name", ["literal", "calibrated", "fitted"])
def test_smear_resembles_the_real_pairs(primus_samples, name):
    # A quarter of the real distorted images are smeared over 10-20 px (lower quartile of the ratio about 0.15);
    # the recipe's small motion blur never smears that much (lower quartile about 0.4), the fitted ranges do.
    rng = np.random.default_rng(0)
    real, ours = [], []
    for folder in primus_samples[::3]:  # 20 pairs
        with Image.open(folder / f"{folder.name}.png") as im:
            clean = np.asarray(im.convert("L"))
        with Image.open(folder / f"{folder.name}_distorted.jpg") as im:
            real.append(_smear(clean, np.asarray(im)))
        ours.append(_smear(clean, D.distort(clean, rng, D.config_named(name))))
    real_q25, our_q25 = np.percentile(real, 25), np.percentile(ours, 25)
    assert real_q25 < 0.25
    if name == "fitted":
        assert our_q25 < 0.3 and abs(np.mean(ours) - np.mean(real)) < 0.1
    else:
        assert our_q25 > 0.3
