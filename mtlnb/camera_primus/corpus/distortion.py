"""Camera-like distortion of a clean score image: the twelve-step Camera-PrIMuS recipe, without GraphicsMagick.

Camera-PrIMuS's ``<id>_distorted.jpg`` files (Calvo-Zaragoza & Rizo 2018) were made by piping each clean engraving
through GraphicsMagick filters.  The exact command lines are not public; the same group's later reimplementation
(Alfaro-Contreras et al. 2023) applies, in order: implode, chop, swirl, spread, shear, shade, wave, rotate, noise,
wave, motion blur, median ("the recipe" below).  Each step here is a small function that reimplements the
GraphicsMagick operator of the same name on float32 grey images in 0-255 (geometry, units and sign conventions in
each docstring).  :func:`distort` draws one set of parameters (:func:`sample_params`) and applies the twelve steps.

Fidelity to GraphicsMagick.  Against GraphicsMagick 1.3 on real clean scores, implode, swirl, wave, ``+shade`` and
median agree to under 0.2 grey levels on average.  Two operators follow GraphicsMagick's code rather than
ImageMagick's documentation: ``-shear`` slants rows by tan(x/2) and columns by sin(y) (ImageMagick: tan x, tan y, so
the recipe's ±5° x shear is a ±2.5° slant), and ``-motion-blur`` truncates its direction to integers and rounds the
tap offsets towards zero, so at the recipe's small angles a smear stays on its row (staff lines stay sharp while
stems smear, as in the real images; a rounded i·sin θ thickened staff lines by a row or two).  Both now agree with
GraphicsMagick to under 1 grey level on average (the shear to within a fraction of a pixel's placement).

Four named configurations (:func:`config_named`):

- ``literal`` (:data:`LITERAL`): the recipe's ranges, including spread 2 px and a "small" motion blur
  (radius 0-6, sigma 0-3) on every image.
- ``calibrated`` (:data:`CALIBRATED`): the earlier correction, no spread and a narrower x shear (measured as a ±2°
  slant, ±4° in GraphicsMagick's convention), otherwise literal.
- ``fitted`` (:data:`FITTED`, the defaults of :class:`DistortionConfig`): fitted to the distributions of the 60 real
  sample pairs, not to the pairs one by one; its torn openings are a smooth stretch (:func:`bend`).
- ``swept`` (:data:`SWEPT`, :data:`DEFAULT_CAMERA` and :data:`MEASURED_CAMERA_PRIMUS`, what the synthetic corpus
  uses): the fitted ranges with the torn openings drawn as the real ones look, straight streaks (:func:`sweep`;
  "Beyond the recipe" below).  Corpora built before it was the default used ``fitted`` (their manifests say so).

How the fitted ranges were measured.  Each real clean PNG was compared with its real distorted JPEG, and with our
distortion of the same PNG (three draws per configuration, saved as JPEG quality 75).  Registration-free statistics,
each relative to the clean image's (ink = 255 − grey, paper level subtracted): ``bx``/``by``, the energy of a
difference of Gaussians (σ 1 px − σ 3 px) along x/y, which falls as strokes smear along that axis; the grey levels of
paper (median) and ink (1st percentile); the width gained by stems and staff lines (mean length of dark runs along x
and y); rows and columns gained.  After an affine registration (ECC, coarse to fine) of clean onto distorted: the
slant, rotation and scale of the affine map, a least-squares blur kernel, and dense optical flow (Farneback) for the
local warps.  Ranges ``q5 … q95`` below are over the 60 pairs; "ours" are the fitted ranges unless named.

- Motion blur: radius 0-14 px, sigma 0-10 px, angle ±15°, on 70 % of the images (``motion_probability``).  The real
  smear is bimodal: a quarter of the real images are smeared over 10-20 px (``bx`` under 0.16; stems become grey
  bands while staff lines stay sharp), another quarter show no smear at all (``bx`` 0.67-0.89, the level of an
  unsmeared image).  Real ``bx`` mean 0.45 (q5 0.08, q25 0.16, median 0.46, q75 0.67); literal 0.55 (0.33, 0.44,
  0.54, 0.63): it never smears as much as a quarter of the real images; fitted 0.44 (0.06, 0.18, 0.52, 0.66).
  Stem widening: real +1.18 px on average, fitted +1.15, calibrated +0.70.
- Spread: none.  A 2-px spread scatters every edge: the vertical energy ratio ``by`` falls to 0.56 (real 0.71,
  fitted 0.73) and the dark-pixel fraction to 0.70 of the clean image's (real 0.85, fitted 0.89).
- Shear: x ±5° as in the recipe, which GraphicsMagick makes a ±2.5° slant: columns gained real +1.3 (q5 −2, q95 5),
  fitted +1.7 (−2, 5); x slant of the registered affine map real q10-q90 −2.7…2.4°, fitted −3.0…2.3°.  y ±1.2°
  instead of ±1.5°: rows gained real +19.1 (q25 7, median 16, q95 41), ±1.5° gives +23.5 (13, 25, 50), ±1.2° gives
  +19.3 (11, 20, 41).
- Implode 0-0.07 (the recipe's): fitting the amount per pair (clean imploded by 0, 0.035, 0.07, 0.1 … 0.45, then
  affine-registered; best correlation) gives 0 for 22 real pairs, 0.035 for 22, 0.07 for 16 and never more; our
  U(0, 0.07) draws fitted the same way give 0.030 on average, as the real pairs do.
- Everything else keeps the recipe's ranges, which the statistics do not contradict: paper grey (real median 253,
  q5 242; fitted the same), ink grey (real 1st percentile 64 on average, fitted 64), staff-line thickening (real
  +0.87 px, fitted +0.95), the vertical scale of the affine map (real 0.993, ours 0.997), the wave's sub-pixel
  jitter (per-column vertical shift, high-passed: real σ 0.12 px, fitted 0.10; mean wave length 29 px in both), the
  grain of flat paper after JPEG (σ 0.2 grey levels in both).
- Save as baseline JPEG, quality 75: the real files' quantisation tables are the IJG tables at quality 75.

Beyond the recipe.  Two things the real images show that no step of the recipe makes, added as steps of their own
(:func:`bend` after the swirl; the spread step's radius), each on a share of the images and drawn after every recipe
parameter, so that ``literal`` and ``calibrated`` (which have neither) keep their random streams:

- The torn opening (``bend_probability`` 0.2): 6 of the 60 real images have their first 80-130 px torn into
  strands, the staff lines leaving the staff and rising steeply to the upper left, the clef and signatures drawn out
  into strokes that lean right, the lowest part of the clef still in place.  All 6 are first incipits of their
  record (ids ``…-1_1_1``), 6 of the 17 such ids among the 60 and none of the other 43; 69 % of the cleansed archive's
  22,285 ids are first incipits, so the archive-wide share is about 0.69 · 6/17 ≈ 24 % (the 60 samples, a run of
  consecutive ids, hold fewer first incipits than the archive).  We draw it on 20 % of the images, whatever the id
  (our incipits have no record structure).  :func:`bend` imitates the look with a stretch anchored at the bottom edge
  (lift 0.7-0.95 of the height at the left edge, reach 80-130 px, power 1-2, slant 0.5-1.5 columns per row); the real
  strands are thinner and more numerous than ours, but the opening symbols are as unreadable.
- The torn opening, swept (``tear = "sweep"``, the ``swept`` configuration): looked at closely
  (3× zoom), the real tears are not a smooth stretch.  Each staff line runs straight up to a diagonal boundary
  (about 10-40 px from the left edge at the bottom line, 80-130 px at the top of the image) and there turns sharply
  into a straight streak rising to the upper left at 55-70°; everything left of the boundary -- the clef's body,
  the key signature's first accidentals -- is replaced by such streaks, except the part of the clef below the
  staff (the hook of a C clef on line 1 stays in place).  :func:`sweep` draws exactly that: left of the boundary,
  each pixel takes the value of the boundary point it reaches going down-right along the streak direction.  Why it
  matters: the mini OMR reads 3 of the 60 real images' torn C1 (soprano) clefs as G2 (the tall streaks look like a
  G clef's loop) and then every note two steps too high (the largest single cause of its camera share); our
  :func:`bend` leaves the clef readable, so a network trained on it never learns that streaks are not a clef.
  Measured (``mini`` OMR, 60 epochs, 60 real samples, seed 0; ``sim2real --decomposition``): the OMR trained on the
  fitted corpus, probed with the swept camera, reads (d) at 22.9 % instead of 19.9 % (real (e) 24.2 %), clefs right
  93.3 % instead of 98.3 % (real 91.7 %), pitch only 15.3 % (real 15.2 %): the camera share falls from 4.3 to 1.3
  points.  Retrained from scratch on the same corpus with its 336 torn images redrawn swept: synthetic test SER
  23.0 % (fitted: 18.1 / 18.7 % in two trainings), real 27.7 % (24.2 / 26.0 %), ratio 1.20 (1.34 / 1.39), pitch only
  15.5 % (15.2 / 16.3 %), clefs right on the real images 98.3 % (91.7 / 93.3 %; two of the three torn C1 clefs now
  read), key signatures 86.7 %, shares music 1.1, engraving 2.0, camera 1.6 points.  A corpus built with ``swept``
  from the start (the ``mini`` study, notebook 02, one torch thread), 60 epochs: synthetic test SER 24.0 %, real
  27.9 %, ratio 1.16, pitch only 16.8 %, clefs 96.7 %, key signatures 75.0 % (synthetic 80.9 %), shares 0.7 / 1.2 /
  2.0 points; the same training continued to 90 epochs (the committed ``mini``): 20.6 %, 24.1 %, 1.17, 13.5 %,
  96.7 %, 85.0 % (90.6 %), shares 0.5 / 2.0 / 0.9.  So with ``swept`` the synthetic corpus is as hard as the real
  archive and each share of the gap is within 2 points, which is what the study's numbers need; the price is a network
  that reads both worse than one trained on ``fitted`` (its synthetic images are easier than the real ones: ratio 1.34
  / 1.39), mostly through key signatures and the accidentals they imply, which a torn opening hides in a fifth of the
  training images (as the real camera hides them).  ``swept`` is the default (:data:`DEFAULT_CAMERA`); ``fitted`` stays
  switchable.
- Speckled edges (``spread_probability`` 0.07, radius 1-2 px): 4 of the 60 real images (3 of them first incipits)
  show the pitted strokes and scattered dots of GraphicsMagick's spread; the other 56 show no spread at all, which is
  why the fitted default has none otherwise.

Checked with the same kind of probe as below (the ``mini`` OMR trained 40 epochs on a corpus without either step,
validation SER 29.4 %, greedy decoding, seed 0): on the real clean PNGs through our camera it reads 31.2 % SER
without them and 35.4 % with them, against 36.6 % on the real distorted images; key signatures right 86.7 % without,
76.7 % with, 76.7 % real; clefs 96.7 %, 86.7 %, 88.3 %.  The camera's share of the sim-to-real gap fell from 5.3 to
1.2 SER points.

Not reproduced: a few real images show a short torn stretch near the centre where the staff turns steeply
diagonal, and one (of 60) has strokes thickened to twice their width.

Checked with an OMR (the ``mini`` CRNN trained 40 epochs on the synthetic corpus only, validation SER 23.5 %,
greedy decoding) on the 60 real samples: symbol error rate 45.8 % on the real distorted images, 30.6 % on the real
clean ones, and on the clean ones through our distortion (three draws each) 45.3 % with the fitted ranges, 32.0 %
with the calibrated ones, 31.0 % with the literal ones; ignoring accidentals and durations 33.5 % real, 31.4 %
fitted.  The smeared share matters most: with the motion blur on 60 % or 80 % of the images instead of 70 % the
rate is 43.0 % or 47.4 %.  Three earlier snapshots of the same training agreed (fitted vs real 49.8 vs 49.9,
59.4 vs 60.5, 47.1 vs 47.8 %).

Other choices where the recipe is silent:

- "chop (a few pixels at a random edge)": 0-3 columns from the left or right and 0-3 rows from the top or bottom
  (ImageMagick ``-chop WxH`` at a random corner gravity); the real images lose up to 3 px in each direction.
- The noise step is ImageMagick's Gaussian model with its strength (``-attenuate``) drawn from
  :attr:`DistortionConfig.noise_attenuate`, whose range keeps the grain as faint as in the real images.
- Wave: amplitude and wave length in pixels, as ImageMagick defines them, from the recipe's ranges (0-0.5 px,
  0-0.4 px): a sub-pixel wave length aliases into a per-column vertical jitter of at most half a pixel.
- New canvas from shear, rotate and wave is filled with white (ImageMagick's default background), which after
  shading is a little lighter than the paper: the real images show the same light corners.
- Median radius r: a square window of 2⌈r⌉+1 pixels (GraphicsMagick's kernel width rule); r = 0 is no filtering.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields, replace

import cv2
import numpy as np
from scipy import ndimage

from mtlnb.core.io import atomic_path

# The real *_distorted.jpg files use the IJG luminance table scaled to quality 75 (checked with PIL's
# Image.quantization on all 60 samples); GraphicsMagick's default quality is also 75.
PRIMUS_JPEG_QUALITY = 75
WHITE = 255.0  # ImageMagick's default background colour fills every new canvas
TEARS = ("bend", "sweep")  # the two drawings of the torn opening (module docstring, "Beyond the recipe")


@dataclass(frozen=True)
class DistortionConfig:
    """Ranges of the twelve steps' parameters; each is drawn uniformly from (low, high).

    The defaults are the ranges fitted to the real Camera-PrIMuS pairs (:data:`FITTED`, evidence in the module
    docstring); :data:`LITERAL` holds the recipe's own ranges and :data:`CALIBRATED` the earlier two-range
    correction.  :func:`config_named` picks one by name.
    """

    implode: tuple[float, float] = (0.0, 0.07)  # ImageMagick implode amount
    chop: tuple[int, int] = (0, 3)  # pixels chopped per direction (integers, inclusive): "a few pixels"
    swirl: tuple[float, float] = (-3.0, 3.0)  # degrees at the centre
    spread: tuple[float, float] = (0.0, 0.0)  # GraphicsMagick spread radius; the real edges show none
    shear_x: tuple[float, float] = (-5.0, 5.0)  # GraphicsMagick degrees (verticals slant by half): rows slide
    shear_y: tuple[float, float] = (-1.2, 1.2)  # degrees, columns slide up/down
    shade_azimuth: tuple[float, float] = (0.0, 120.0)  # degrees, direction of the light
    shade_elevation: tuple[float, float] = (80.0, 110.0)  # degrees above the page
    wave_amplitude: tuple[float, float] = (0.0, 0.5)  # pixels
    wave_length: tuple[float, float] = (0.0, 0.4)  # pixels
    rotate: tuple[float, float] = (0.0, 0.3)  # degrees clockwise
    noise_attenuate: tuple[float, float] = (0.0, 0.05)  # x ImageMagick's Gaussian σ≈20 levels; real grain < 1
    motion_radius: tuple[float, float] = (0.0, 14.0)  # pixels: kernel length 2⌈r⌉+1
    motion_sigma: tuple[float, float] = (0.0, 10.0)  # pixels: Gaussian fall-off along the smear
    motion_angle: tuple[float, float] = (-15.0, 15.0)  # degrees from horizontal
    median: tuple[float, float] = (0.0, 1.1)  # median radius in pixels
    motion_probability: float = 0.7  # fraction of images smeared at all (the rest skip the motion blur)
    # Not in the recipe; seen in the real archive (module docstring, "Beyond the recipe").  Each is drawn only when
    # its probability is above 0, after every other draw, so configurations without them keep their streams.
    spread_probability: float = 0.07  # fraction of images whose ink is spread (speckled edges) by ``spread_ragged``
    spread_ragged: tuple[float, float] = (1.0, 2.0)  # spread radius (pixels) of those images
    bend_probability: float = 0.2  # fraction of images whose opening symbols are torn into upward strands
    bend_reach: tuple[float, float] = (80.0, 130.0)  # pixels from the left edge that the bend moves
    bend_lift: tuple[float, float] = (0.7, 0.95)  # at the left edge, the part of the height the bottom stretches over
    bend_power: tuple[float, float] = (1.0, 2.0)  # how fast the lift grows towards the edge
    bend_slant: tuple[float, float] = (0.5, 1.5)  # columns per row the strands lean right, at the left edge
    tear: str = "bend"  # how the torn opening is drawn: "bend" (a smooth stretch) or "sweep" (straight streaks)
    sweep_foot: tuple[float, float] = (10.0, 40.0)  # pixels from the left edge where the boundary meets the bottom
    sweep_angle: tuple[float, float] = (55.0, 70.0)  # degrees above the horizontal at which the streaks rise

    def __post_init__(self) -> None:
        if self.tear not in TEARS:
            raise ValueError(f"DistortionConfig.tear must be one of {TEARS}, got {self.tear!r}")
        if not (0.0 < self.sweep_angle[0] and self.sweep_angle[1] < 90.0):
            raise ValueError(f"DistortionConfig.sweep_angle must lie in (0, 90) degrees, got {self.sweep_angle}")
        for f in fields(self):
            if f.name.endswith("_probability") or f.name == "tear":
                continue
            low, high = getattr(self, f.name)
            if low > high:
                raise ValueError(f"DistortionConfig.{f.name}: low {low} is above high {high}")
        nonnegative = ("implode", "chop", "spread", "wave_amplitude", "wave_length", "noise_attenuate",
                       "motion_radius", "motion_sigma", "median", "spread_ragged", "bend_reach", "bend_lift",
                       "bend_power", "bend_slant", "sweep_foot", "sweep_angle")
        for name in nonnegative:
            if getattr(self, name)[0] < 0:
                raise ValueError(f"DistortionConfig.{name} must not be negative, got {getattr(self, name)}")
        for name in ("motion_probability", "spread_probability", "bend_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"DistortionConfig.{name} must lie in [0, 1], got {getattr(self, name)}")


#: The recipe's ranges, literally: spread a fixed 2 px, motion blur "small" (radius ≤ 6, sigma ≤ 3, every image).
LITERAL = DistortionConfig(implode=(0.0, 0.07), swirl=(-3.0, 3.0), spread=(2.0, 2.0), shear_x=(-5.0, 5.0),
                           shear_y=(-1.5, 1.5), motion_radius=(0.0, 6.0), motion_sigma=(0.0, 3.0), median=(0.0, 1.1),
                           motion_probability=1.0, spread_probability=0.0, bend_probability=0.0)

#: The earlier correction of the recipe (no spread, narrower x shear), with the recipe's small motion blur.  Its
#: x shear was measured as ±2° of slant; under GraphicsMagick's half-angle convention (:func:`shear`) that is ±4°.
CALIBRATED = replace(LITERAL, spread=(0.0, 0.0), shear_x=(-4.0, 4.0))

#: The ranges fitted to the real archive's distributions (DistortionConfig's defaults; see the module docstring).
FITTED = DistortionConfig()

#: The fitted ranges with the torn opening drawn as straight streaks (:func:`sweep`) instead of a stretch.
SWEPT = replace(FITTED, tear="sweep")

CONFIGS = {"fitted": FITTED, "swept": SWEPT, "calibrated": CALIBRATED, "literal": LITERAL}

#: The name of the configuration that follows the real archive best (what the synthetic corpus uses): the fitted
#: ranges with the swept tear, whose camera share of the sim-to-real gap is the smallest (module docstring).
DEFAULT_CAMERA = "swept"
MEASURED_CAMERA_PRIMUS = CONFIGS[DEFAULT_CAMERA]


def config_named(name: str) -> DistortionConfig:
    """The named configuration: 'swept' (the default), 'fitted', 'calibrated' or 'literal'."""
    if name not in CONFIGS:
        raise ValueError(f"unknown distortion config {name!r}; choose one of {sorted(CONFIGS)}")
    return CONFIGS[name]


@dataclass(frozen=True)
class DistortionParams:
    """One concrete draw of the twelve steps' parameters (all zeros/identity: :meth:`identity`)."""

    implode: float
    chop_columns: int
    chop_rows: int
    chop_corner: str  # 'nw', 'ne', 'sw' or 'se': where the columns (w/e) and rows (n/s) are removed
    swirl: float
    spread: float
    shear_x: float
    shear_y: float
    shade_azimuth: float
    shade_elevation: float
    wave1_amplitude: float
    wave1_length: float
    rotate: float
    noise_attenuate: float
    wave2_amplitude: float
    wave2_length: float
    motion_radius: float
    motion_sigma: float
    motion_angle: float
    median: float
    bend_reach: float = 0.0  # :func:`bend` (not in the recipe); 0: none
    bend_lift: float = 0.0
    bend_power: float = 1.0
    bend_slant: float = 0.0
    sweep_reach: float = 0.0  # :func:`sweep` (not in the recipe); 0: none
    sweep_foot: float = 0.0
    sweep_angle: float = 60.0

    @classmethod
    def identity(cls) -> "DistortionParams":
        """Parameters under which every step is the identity except shade, which lights flat paper at 90°."""
        return cls(0.0, 0, 0, "nw", 0.0, 0.0, 0.0, 0.0, 0.0, 90.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def sample_params(rng: np.random.Generator, config: DistortionConfig | None = None) -> DistortionParams:
    """Draw one set of step parameters, uniformly within ``config``'s ranges, in a fixed order."""
    c = config or DistortionConfig()

    def u(r: tuple[float, float]) -> float:
        return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])

    def i(r: tuple[int, int]) -> int:
        return int(rng.integers(r[0], r[1] + 1))

    params = DistortionParams(
        implode=u(c.implode),
        chop_columns=i(c.chop),
        chop_rows=i(c.chop),
        chop_corner=("nw", "ne", "sw", "se")[int(rng.integers(4))],
        swirl=u(c.swirl),
        spread=u(c.spread),
        shear_x=u(c.shear_x),
        shear_y=u(c.shear_y),
        shade_azimuth=u(c.shade_azimuth),
        shade_elevation=u(c.shade_elevation),
        wave1_amplitude=u(c.wave_amplitude),
        wave1_length=u(c.wave_length),
        rotate=u(c.rotate),
        noise_attenuate=u(c.noise_attenuate),
        wave2_amplitude=u(c.wave_amplitude),
        wave2_length=u(c.wave_length),
        motion_radius=u(c.motion_radius),
        motion_sigma=u(c.motion_sigma),
        motion_angle=u(c.motion_angle),
        median=u(c.median),
    )
    if c.motion_probability < 1.0 and rng.random() >= c.motion_probability:  # drawn last: the other draws
        params = replace(params, motion_radius=0.0, motion_sigma=0.0)  # stay those of the full-probability config
    if c.spread_probability > 0 and rng.random() < c.spread_probability:
        params = replace(params, spread=u(c.spread_ragged))
    if c.bend_probability > 0 and rng.random() < c.bend_probability:
        if c.tear == "bend":
            params = replace(params, bend_reach=u(c.bend_reach), bend_lift=u(c.bend_lift),
                             bend_power=u(c.bend_power), bend_slant=u(c.bend_slant))
        else:  # the same measured reach (80-130 px at the top of the image) as the bend's
            params = replace(params, sweep_reach=u(c.bend_reach), sweep_foot=u(c.sweep_foot),
                             sweep_angle=u(c.sweep_angle))
    return params


# ------------------------------------------------------------------------------------------------------ helpers


def _remap(image: np.ndarray, src_x: np.ndarray, src_y: np.ndarray, border_value: float | None = None) -> np.ndarray:
    """Bilinear resampling at source coordinates (pixel indices); outside: edge pixels, or ``border_value``."""
    if border_value is None:
        return cv2.remap(image, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return cv2.remap(image, src_x.astype(np.float32), src_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_CONSTANT, borderValue=border_value)


def _affine(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2×2 linear map about the image centre onto a canvas just large enough (white fill)."""
    h, w = image.shape
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], dtype=np.float64) - [(w - 1) / 2, (h - 1) / 2]
    mapped = corners @ matrix.T
    span = mapped.max(axis=0) - mapped.min(axis=0)
    new_w, new_h = (int(math.floor(s + 1 + 0.5)) for s in span)  # pixel count covering the mapped corners
    offset = np.array([(new_w - 1) / 2, (new_h - 1) / 2]) - matrix @ [(w - 1) / 2, (h - 1) / 2]
    m = np.hstack([matrix, offset[:, None]]).astype(np.float64)
    return cv2.warpAffine(image, m, (new_w, new_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=WHITE)


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)  # float32: cv2.remap's map type, and half the memory traffic
    return x, y


def _centred_ellipse(shape: tuple[int, int]):
    """ImageMagick's frame for implode and swirl: each pixel's offset from the centre, with the shorter axis
    stretched so that the centred ellipse touching the image's edges becomes a circle of ``radius`` (half the longer
    side).  Returns ``(cx, cy), (sx, sy), dx, dy, d, radius``: the centre, the axis stretches, the stretched
    offsets and their length (float32 arrays of ``shape``), and the radius (pixels)."""
    h, w = shape
    cx, cy = 0.5 * w, 0.5 * h
    sx, sy = (1.0, w / h) if w > h else (h / w, 1.0)
    x, y = _grid(shape)
    dx, dy = sx * (x - cx), sy * (y - cy)
    return (cx, cy), (sx, sy), dx, dy, np.sqrt(dx * dx + dy * dy), max(cx, cy)


def _check(image: np.ndarray, where: str) -> None:
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"{where}: expected a non-empty 2-D grey image, got shape {image.shape}")


# -------------------------------------------------------------------------------------------------- the 12 steps


def implode(image: np.ndarray, amount: float) -> np.ndarray:
    """ImageMagick ``-implode amount``: pull the picture towards its centre (amount > 0) inside an ellipse.

    The ellipse is the largest one centred in the image (the shorter axis is scaled up to the longer one, so a wide
    score is affected across its whole width).  A pixel at normalised distance d < 1 from the centre samples the
    source at ``sin(π d / 2) ** -amount`` times its offset, bilinearly.  Shape unchanged; amount 0 is the identity.

    Parameters
    ----------
    image : np.ndarray, shape (H, W), float32, grey levels 0-255
    amount : float
        Implode amount (ImageMagick's unit-less factor; the recipe uses 0-0.07).
    """
    _check(image, "implode")
    if amount == 0:
        return image.copy()
    (cx, cy), (sx, sy), dx, dy, d, radius = _centred_ellipse(image.shape)
    inside = (d < radius) & (d > 0)
    factor = np.ones_like(d)
    factor[inside] = np.sin(np.pi * d[inside] / radius / 2) ** -amount
    return _remap(image, factor * dx / sx + cx, factor * dy / sy + cy)


def chop(image: np.ndarray, columns: int, rows: int, corner: str = "nw") -> np.ndarray:
    """ImageMagick ``-gravity <corner> -chop {columns}x{rows}``: remove whole columns and rows at one corner.

    ``corner`` 'nw' removes the leftmost ``columns`` and the top ``rows``; 'se' the rightmost and the bottom, etc.
    The image shrinks by (rows, columns); zero removes nothing.
    """
    _check(image, "chop")
    if corner not in ("nw", "ne", "sw", "se"):
        raise ValueError(f"chop: corner must be one of 'nw', 'ne', 'sw', 'se', got {corner!r}")
    h, w = image.shape
    if columns < 0 or rows < 0 or columns >= w or rows >= h:
        raise ValueError(f"chop: cannot remove {columns} columns and {rows} rows from a {h}×{w} image")
    r0, r1 = (rows, h) if corner[0] == "n" else (0, h - rows)
    c0, c1 = (columns, w) if corner[1] == "w" else (0, w - columns)
    return image[r0:r1, c0:c1].copy()


def swirl(image: np.ndarray, degrees: float) -> np.ndarray:
    """ImageMagick ``-swirl degrees``: turn the picture about its centre by ``degrees`` · (1 − d)², d < 1.

    d is the distance from the centre normalised by the same centred ellipse as :func:`implode`, so the centre
    turns by the full angle and the ellipse's rim not at all.  As in ImageMagick, the output pixel at offset p
    samples the source at p rotated by +θ (y down), so positive degrees turn the content counter-clockwise on
    screen.  Bilinear.  Shape unchanged; 0° is the identity.
    """
    _check(image, "swirl")
    if degrees == 0:
        return image.copy()
    (cx, cy), (sx, sy), dx, dy, d, radius = _centred_ellipse(image.shape)
    f = np.where(d < radius, 1.0 - d / radius, 0.0)
    theta = math.radians(degrees) * f * f
    sin, cos = np.sin(theta), np.cos(theta)
    return _remap(image, (cos * dx - sin * dy) / sx + cx, (sin * dx + cos * dy) / sy + cy)


def bend(image: np.ndarray, reach: float, lift: float, power: float = 1.0, slant: float = 0.0) -> np.ndarray:
    """Tear the opening symbols into upward strands (not a GraphicsMagick operator; module docstring).

    Column ``x < reach`` is stretched upwards from the bottom edge and slanted: with ``t = ((reach − x) / reach) **
    power`` and ``u = (H − 1 − y) · t``, the pixel (x, y) samples the source at ``(x − slant · u, y + lift · u)``.
    At the left edge the bottom ``(1 − lift)`` of the image fills the whole height, so staff lines leave the staff
    at ``x = reach`` and rise steeply towards the edge, and the clef's strokes are drawn out into strands that lean
    to the right, while its lowest part stays in place; columns from ``reach`` on are unchanged.  Bilinear, edges
    replicated.  Shape unchanged; ``reach`` or ``lift`` 0 is the identity.

    Parameters
    ----------
    image : np.ndarray, shape (H, W), float32, grey levels 0-255
    reach : float
        Pixels from the left edge that move.
    lift : float
        0-1: how much of the distance to the bottom edge the left edge's rows move.
    power : float
        1: the stretch grows linearly towards the edge; 2: it stays mild longer, then grows steeply.
    slant : float
        Columns the source moves left per row above the bottom, at the left edge (0: strands stay vertical).
    """
    _check(image, "bend")
    if reach <= 0 or lift == 0:
        return image.copy()
    x, y = _grid(image.shape)
    t = np.clip((reach - x) / reach, 0.0, None) ** power
    u = (np.float32(image.shape[0] - 1) - y) * t
    return _remap(image, x - np.float32(slant) * u, y + np.float32(lift) * u)


def sweep(image: np.ndarray, reach: float, foot: float, angle: float) -> np.ndarray:
    """Tear the opening into straight streaks (not a GraphicsMagick operator; module docstring, "Beyond the recipe").

    The boundary runs from ``foot`` px at the bottom row to ``reach`` px at the top row.  Every pixel left of it
    takes the value of the boundary point it reaches going down and to the right at ``angle`` degrees below the
    horizontal: a staff line crossing the boundary turns into a streak rising to the upper left at ``angle``, and
    what lay left of the boundary is gone, except below the point where the boundary leaves the image.  Bilinear,
    edges replicated; shape unchanged; ``reach`` 0 is the identity.

    Parameters
    ----------
    image : np.ndarray, shape (H, W), float32, grey levels 0-255
    reach, foot : float
        The boundary's distance from the left edge at the top and at the bottom row (pixels).
    angle : float
        Degrees (0-90) between the streaks and the horizontal.
    """
    _check(image, "sweep")
    if reach <= 0:
        return image.copy()
    x, y = _grid(image.shape)
    height = np.float32(max(image.shape[0] - 1, 1))
    slope = np.float32((reach - foot) / height)  # boundary: x_b(y) = foot + slope · (H − 1 − y)
    dx, dy = np.float32(math.cos(math.radians(angle))), np.float32(math.sin(math.radians(angle)))
    steps = np.clip((np.float32(foot) + slope * (height - y) - x) / (dx + slope * dy), 0.0, None)
    return _remap(image, x + steps * dx, y + steps * dy)


def spread(image: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """GraphicsMagick ``-spread radius``: replace each pixel by a randomly displaced neighbour.

    GraphicsMagick draws each displacement as ``(long)((2r+1)·u − r)`` with u uniform in [0, 1) and the cast
    truncating towards zero, so for r = 2 the x and y offsets are −1, 0, 1, 2 with probabilities 0.2, 0.4, 0.2, 0.2
    (−2 never happens); offsets that would leave the image are drawn again.  Nearest neighbour, no blending.
    Shape unchanged; radius < 1 is the identity.
    """
    _check(image, "spread")
    r = int(math.floor(radius))
    if r < 1:
        return image.copy()
    h, w = image.shape

    def positions(n: int, size: int, axis: int) -> np.ndarray:
        base = np.broadcast_to(np.arange(n).reshape((-1, 1) if axis == 0 else (1, -1)), (h, w))
        pos = base + np.trunc((2 * r + 1) * rng.random((h, w)) - r).astype(np.int64)
        bad = (pos < 0) | (pos >= size)
        while bad.any():  # redraw, as GraphicsMagick does, instead of clamping onto the edge
            pos[bad] = base[bad] + np.trunc((2 * r + 1) * rng.random(int(bad.sum())) - r).astype(np.int64)
            bad = (pos < 0) | (pos >= size)
        return pos

    xx = positions(w, w, 1)
    yy = positions(h, h, 0)
    return image[yy, xx]


def shear(image: np.ndarray, x_degrees: float, y_degrees: float) -> np.ndarray:
    """GraphicsMagick ``-shear {x}x{y}``: an x shear (rows slide sideways) followed by a y shear (columns slide).

    GraphicsMagick's ShearImage turns the angles into slopes as its three-shear rotation does: rows slide by
    tan(x / 2) per row (x shear ``−tan(x/2)``; a positive x leans verticals to the right at the top), then columns by
    sin(y) per column right of the centre (a positive y lowers the right side).  So ``-shear 5x0`` slants verticals
    by 2.5°, not 5° (ImageMagick's ``-shear`` uses tan x: twice as much); checked against GraphicsMagick 1.3 to a
    mean difference under 0.25 grey levels.  The canvas grows to hold the result, about W + H·|tan(x/2)| by
    H + W'·|sin y|, filled with white.  (0, 0) is the identity.
    """
    _check(image, "shear")
    if x_degrees == 0 and y_degrees == 0:
        return image.copy()
    kx, ky = -math.tan(math.radians(x_degrees) / 2.0), math.sin(math.radians(y_degrees))
    return _affine(image, np.array([[1.0, kx], [ky, 1.0 + ky * kx]]))


def shade(image: np.ndarray, azimuth: float, elevation: float) -> np.ndarray:
    """ImageMagick ``+shade azimuth x elevation`` (colour shading): light the picture as a relief.

    The surface normal at each pixel is (Σ left column − Σ right column, Σ row below − Σ row above, 2) of its 3×3
    neighbourhood, grey levels scaled to 0-1 (edges replicated); the light comes from ``azimuth`` degrees (0 along
    +x, 90 along +y) at ``elevation`` degrees above the page.  Each pixel is multiplied by the cosine between normal
    and light (0 where it faces away).  Flat areas get sin(elevation): 0.94-1 for the recipe's 80-110°, which is
    the grey of the real paper.  Ink edges get a highlight on one side and a shadow on the other.
    Shape unchanged; elevation 90° leaves flat areas untouched but still shades edges.
    """
    _check(image, "shade")
    az, el = math.radians(azimuth), math.radians(elevation)
    lx, ly, lz = math.cos(az) * math.cos(el), math.sin(az) * math.cos(el), math.sin(el)
    p = np.pad(image.astype(np.float32) / np.float32(WHITE), 1, mode="edge")
    left, right = p[:, :-2], p[:, 2:]
    nx = (left[:-2] + left[1:-1] + left[2:]) - (right[:-2] + right[1:-1] + right[2:])
    above, below = p[:-2], p[2:]
    ny = (below[:, :-2] + below[:, 1:-1] + below[:, 2:]) - (above[:, :-2] + above[:, 1:-1] + above[:, 2:])
    nz = 2.0
    dot = nx * lx + ny * ly + nz * lz
    norm = np.sqrt(nx * nx + ny * ny + nz * nz)
    s = np.where(dot > 0, dot / norm, 0.0)
    flat = (np.abs(nx) <= 1e-12) & (np.abs(ny) <= 1e-12)
    s = np.where(flat, lz, s)
    return (image * s).astype(np.float32)


def wave(image: np.ndarray, amplitude: float, length: float) -> np.ndarray:
    """ImageMagick ``-wave amplitude x length``: shift each column vertically along a sine.

    Column x moves down by |a| + a·sin(2πx / length) pixels (both in pixels); the canvas grows by ⌊2|a|⌋ rows and
    uncovered pixels are white.  A wave length under 2 px aliases into an irregular per-column jitter.
    Amplitude 0 or length 0 is the identity.
    """
    _check(image, "wave")
    if amplitude == 0 or length <= 0:
        return image.copy()
    h, w = image.shape
    new_h = int(h + 2 * abs(amplitude))
    shift = abs(amplitude) + amplitude * np.sin(2 * np.pi * np.arange(w) / length)
    y, x = np.mgrid[0:new_h, 0:w].astype(np.float64)
    return _remap(image, x, y - shift[None, :], border_value=WHITE)


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    """ImageMagick ``-rotate degrees``: rotate clockwise about the centre onto the bounding canvas (white fill).

    The canvas grows to about W·|cos| + H·|sin| by W·|sin| + H·|cos|; 0° is the identity.
    """
    _check(image, "rotate")
    if degrees == 0:
        return image.copy()
    t = math.radians(degrees)  # clockwise on screen = counter-clockwise in y-down coordinates
    return _affine(image, np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]))


def noise(image: np.ndarray, attenuate: float, rng: np.random.Generator) -> np.ndarray:
    """ImageMagick ``-attenuate a +noise Gaussian``: add zero-mean Gaussian noise of σ = a · 255 · 0.078125.

    ImageMagick's Gaussian model is p + √p·σ₁·g₁ + Q·τ·g₂ with τ = 0.078125·a (σ ≈ 20 grey levels at a = 1); the
    signal-dependent first term is below a hundredth of a grey level at 16-bit depth and is left out.  Values are
    clipped to 0-255.  Shape unchanged; a = 0 is the identity.
    """
    _check(image, "noise")
    if attenuate == 0:
        return image.copy()
    sigma = WHITE * 0.078125 * attenuate
    return np.clip(image + sigma * rng.standard_normal(image.shape, dtype=np.float32), 0, WHITE).astype(np.float32)


def motion_kernel(radius: float, sigma: float, angle: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """GraphicsMagick's motion-blur kernel: tap weights and integer (x, y) offsets, as MotionBlurImage builds them.

    ``width = 2⌈radius⌉+1`` taps.  Tap i's weight integrates the Gaussian exp(−t²/2σ²) over t in [i, i+1) at a third
    of a pixel (GraphicsMagick's KernelRank 3), normalised to sum 1.  The direction is first truncated to integers,
    ``(dx, dy) = (int(width·cos θ), int(−width·sin θ))``, and tap i reads the pixel at
    ``(int(i·dx/|d| + 0.5), int(i·dy/|d| + 0.5))`` (C casts, truncating towards zero).  At the recipe's small angles
    this keeps most taps on the same row: a smear at 10° moves a 13-tap kernel down by one row only for its last
    three taps, so staff lines stay sharp while stems smear, as in the real images.
    """
    width = int(2 * math.ceil(radius) + 1)
    t = np.arange(3 * width) / 3.0
    fine = np.exp(-(t * t) / (2.0 * sigma * sigma))
    weights = fine.reshape(width, 3).sum(axis=1)
    weights /= weights.sum()
    dx = int(width * math.sin(math.radians(angle + 90)))
    dy = int(width * math.cos(math.radians(angle + 90)))
    norm = math.sqrt(dx * dx + dy * dy) or 1.0
    ox = np.array([int(i * dx / norm + 0.5) for i in range(width)])
    oy = np.array([int(i * dy / norm + 0.5) for i in range(width)])
    return weights, ox, oy


def motion_blur(image: np.ndarray, radius: float, sigma: float, angle: float) -> np.ndarray:
    """GraphicsMagick ``-motion-blur radius x sigma + angle``: a one-sided Gaussian smear along ``angle``.

    Output(x, y) = Σ_i w_i · input(x + ox_i, y + oy_i) over the taps of :func:`motion_kernel` (edges replicated);
    θ in degrees, 0 along +x.  Checked against GraphicsMagick 1.3's output pixel for pixel (differences are the
    8-bit truncation of its sums).  Shape unchanged; radius 0 or sigma 0 is the identity.
    """
    _check(image, "motion_blur")
    if radius <= 0 or sigma <= 0:
        return image.copy()
    weights, ox, oy = motion_kernel(radius, sigma, angle)
    h, w = image.shape
    px, py = int(np.abs(ox).max()), int(np.abs(oy).max())
    p = np.pad(image.astype(np.float32), ((py, py), (px, px)), mode="edge")
    out = np.zeros((h, w), dtype=np.float32)
    for wk, x0, y0 in zip(weights, ox, oy):
        out += np.float32(wk) * p[py + y0:py + y0 + h, px + x0:px + x0 + w]
    return out


def median(image: np.ndarray, radius: float) -> np.ndarray:
    """GraphicsMagick ``-median radius``: the median of a square window 2⌈radius⌉+1 pixels wide (edges replicated).

    Radius 0 is the identity (no window).
    """
    _check(image, "median")
    if radius <= 0:
        return image.copy()
    size = int(2 * math.ceil(radius) + 1)
    if size <= 5:  # OpenCV's float median handles 3 and 5 (replicated edges), several times faster than SciPy
        return cv2.medianBlur(np.ascontiguousarray(image, dtype=np.float32), size)
    return ndimage.median_filter(image, size=size, mode="nearest")


# ---------------------------------------------------------------------------------------------------- the recipe


def apply(image: np.ndarray, params: DistortionParams, rng: np.random.Generator) -> np.ndarray:
    """Apply the twelve steps in the recipe's order with the given parameters.

    Parameters
    ----------
    image : np.ndarray, shape (H, W), uint8
        Clean engraving, dark ink on white.
    params : DistortionParams
    rng : np.random.Generator
        Source of the per-pixel randomness of spread and noise.

    Returns
    -------
    np.ndarray, shape (H', W'), uint8
        H' and W' differ from H and W by the chop (smaller), shear, rotate and waves (larger).
    """
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"distort: expected a 2-D uint8 grey image, got shape {image.shape} dtype {image.dtype}")
    p = params
    x = image.astype(np.float32)
    x = implode(x, p.implode)
    x = chop(x, p.chop_columns, p.chop_rows, p.chop_corner)
    x = swirl(x, p.swirl)
    x = bend(x, p.bend_reach, p.bend_lift, p.bend_power, p.bend_slant)
    x = sweep(x, p.sweep_reach, p.sweep_foot, p.sweep_angle)
    x = spread(x, p.spread, rng)
    x = shear(x, p.shear_x, p.shear_y)
    x = shade(x, p.shade_azimuth, p.shade_elevation)
    x = wave(x, p.wave1_amplitude, p.wave1_length)
    x = rotate(x, p.rotate)
    x = noise(x, p.noise_attenuate, rng)
    x = wave(x, p.wave2_amplitude, p.wave2_length)
    x = motion_blur(x, p.motion_radius, p.motion_sigma, p.motion_angle)
    x = median(x, p.median)
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def distort(image: np.ndarray, rng: np.random.Generator, config: DistortionConfig | None = None) -> np.ndarray:
    """Camera-like distortion of a clean score image (the Camera-PrIMuS recipe, see the module docstring).

    Draws the step parameters from ``config`` with ``rng`` (:func:`sample_params`), then :func:`apply`.  The same
    image and the same generator state give the same output.

    Parameters
    ----------
    image : np.ndarray, shape (H, W), uint8
        Clean engraving, dark ink on white (e.g. :attr:`mtlnb.camera_primus.corpus.engraving.Engraving.image`).
    rng : np.random.Generator
    config : DistortionConfig, optional

    Returns
    -------
    np.ndarray, shape (H', W'), uint8
        Usually a few pixels wider and up to ~60 px taller than the input.
    """
    return apply(image, sample_params(rng, config), rng)


def save_distorted_jpg(image: np.ndarray, path: str | os.PathLike, quality: int = PRIMUS_JPEG_QUALITY) -> None:
    """Write a grey image as a baseline JPEG like the real ``<id>_distorted.jpg`` (atomically).

    Parameters
    ----------
    image : np.ndarray, shape (H, W), uint8
    path : path of the ``.jpg`` file
    quality : int
        IJG quality 1-100; the real files use 75.
    """
    from PIL import Image

    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"save_distorted_jpg: expected a 2-D uint8 image, got shape {image.shape} {image.dtype}")
    if not 1 <= quality <= 100:
        raise ValueError(f"save_distorted_jpg: quality must be in 1..100, got {quality}")
    with atomic_path(path) as tmp:
        Image.fromarray(image, mode="L").save(tmp, format="JPEG", quality=quality)


def params_dict(params: DistortionParams) -> dict:
    """The parameters as a plain dict (for manifests)."""
    return asdict(params)
