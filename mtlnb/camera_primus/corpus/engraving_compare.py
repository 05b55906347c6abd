"""Measure an engraved staff and compare two engravings of the same incipit (a real Camera-PrIMuS ``<id>.png``
and ours).

Every measure works on one trimmed, one-staff image (ink dark on white) and is expressed in pixels, so that two
engravings of the same incipit can be set side by side:

- :func:`staff_lines`: the five staff lines (rows that are mostly ink): their centres and thicknesses, hence the
  staff space (:func:`engraving_measures` ``staff_space``) and the staff-line thickness.
- :func:`thin_strokes`: horizontal run lengths of ink, in the middle rows of the four staff spaces, that are at
  most a third of a staff space long: the cross-sections of stems and bar lines.
- :func:`solid_blobs`: the connected components that survive a morphological opening by a square of ``0.4``
  staff space (lines, stems and thin glyph strokes vanish; filled noteheads, beams, rests and the heavy strokes
  of clefs and time signatures stay); the notehead-sized ones give the notehead width and height.
- :func:`engraving_measures`: all of these in one dict, plus ink coverage (on and off the staff lines), the
  image's size and the left margin to the first ink.
- :func:`compare_engravings`: the measures of paired images, real against ours, as the median of each measure
  and the median of the per-image ratio ours/real.
- :func:`header_iou`: how well the opening symbols (clef, key and time signature) of two engravings overlap; it
  tells which music font a real image was engraved in (:func:`identify_font`).

:func:`engraving_comparison` draws one real image above ours for the same incipit, aligned by their top staff
lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def ink_mask(image: np.ndarray, threshold: int = 128) -> np.ndarray:
    """Ink pixels of a grey image (dark on white): ``image < threshold``; a bool mask is returned as is."""
    image = np.asarray(image)
    if image.dtype == bool:
        return image
    if image.ndim != 2:
        raise ValueError(f"ink_mask: expected a 2-D grey image, got shape {image.shape}")
    return image < threshold


def _runs(values: np.ndarray) -> list[np.ndarray]:
    """Split sorted integers into runs of consecutive values."""
    if values.size == 0:
        return []
    return np.split(values, np.flatnonzero(np.diff(values) > 1) + 1)


def run_lengths(line: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in a 1-D bool array."""
    x = np.concatenate([[0], np.asarray(line, dtype=np.int8), [0]])
    d = np.diff(x)
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


@dataclass(frozen=True)
class StaffLines:
    """The staff lines of one image: centre rows and thickness (rows) of each, top to bottom."""

    centres: np.ndarray
    thicknesses: np.ndarray

    @property
    def space(self) -> float:
        """Mean distance between neighbouring line centres (the staff space), NaN with fewer than two lines."""
        return float(np.diff(self.centres).mean()) if len(self.centres) > 1 else float("nan")


def staff_lines(mask: np.ndarray, fill: float = 0.5) -> StaffLines:
    """Find the staff lines: runs of rows whose share of ink pixels exceeds ``fill``.

    Parameters
    ----------
    mask : np.ndarray, shape (H, W), bool
        Ink mask of a trimmed one-staff image (the lines run across the whole width).
    fill : float
        Share of the row that must be ink.
    """
    mask = ink_mask(mask)
    runs = _runs(np.flatnonzero(mask.mean(axis=1) > fill))
    return StaffLines(np.array([r.mean() for r in runs]), np.array([len(r) for r in runs]))


def _space_rows(lines: StaffLines) -> list[int]:
    c = lines.centres
    return [int(round((c[i] + c[i + 1]) / 2)) for i in range(len(c) - 1)]


def thin_strokes(mask: np.ndarray, lines: StaffLines | None = None) -> np.ndarray:
    """Widths (px) of the thin vertical strokes (stems, bar lines) crossing the middle rows of the staff spaces.

    Runs of ink no longer than a third of a staff space in those rows; note that a stem crossing all four spaces
    is counted up to four times, which weights every stem by its length inside the staff.
    """
    mask = ink_mask(mask)
    lines = lines or staff_lines(mask)
    if len(lines.centres) < 2:
        return np.zeros(0, int)
    limit = lines.space / 3
    widths = np.concatenate([run_lengths(mask[r]) for r in _space_rows(lines)])
    return widths[widths <= limit]


@dataclass(frozen=True)
class Blob:
    """A connected component of the opened ink: its bounding box size (px) and area (px)."""

    width: int
    height: int
    area: int


def solid_blobs(mask: np.ndarray, space: float) -> list[Blob]:
    """Components of the ink left after an opening by a square of side ``round(0.4 * space)`` px."""
    mask = ink_mask(mask)
    side = max(int(round(0.4 * space)), 2)
    opened = ndimage.binary_opening(mask, structure=np.ones((side, side), bool))
    labels, n = ndimage.label(opened)
    if n == 0:
        return []
    boxes = ndimage.find_objects(labels)
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    return [Blob(b[1].stop - b[1].start, b[0].stop - b[0].start, int(a)) for b, a in zip(boxes, areas)]


def noteheads(blobs: list[Blob], space: float) -> list[Blob]:
    """The notehead-sized blobs: 0.9-1.8 staff spaces wide, 0.6-1.3 high (a filled head is ~1.3 x 1.0)."""
    return [b for b in blobs if 0.9 * space <= b.width <= 1.8 * space and 0.6 * space <= b.height <= 1.3 * space]


def engraving_measures(image: np.ndarray) -> dict[str, float]:
    """Measures of one trimmed one-staff engraving, in px (see the module docstring).

    Returns
    -------
    dict
        ``staff_space``, ``staff_line`` (median thickness), ``stroke`` (mean thin-stroke width), ``stroke_3px``
        (share of thin-stroke runs at least 3 px wide), ``head_w``, ``head_h`` (median notehead blob size, NaN
        if none), ``heads`` (their number), ``ink`` (share of ink pixels), ``ink_off_lines`` (share of ink in the
        rows that are not staff lines), ``height``, ``width``, ``left`` (first ink column after the clef's left
        margin, i.e. the trimmed image's left border).
    """
    mask = ink_mask(image)
    lines = staff_lines(mask)
    space = lines.space
    strokes = thin_strokes(mask, lines)
    heads = noteheads(solid_blobs(mask, space), space) if np.isfinite(space) else []
    on_line = np.zeros(mask.shape[0], bool)
    for c, t in zip(lines.centres, lines.thicknesses):
        lo = int(round(c - t / 2 + 0.01))
        on_line[max(lo, 0): lo + int(t)] = True
    cols = np.flatnonzero(mask.any(axis=0))
    return {
        "staff_space": space,
        "staff_line": float(np.median(lines.thicknesses)) if len(lines.thicknesses) else float("nan"),
        "stroke": float(strokes.mean()) if strokes.size else float("nan"),
        "stroke_3px": float((strokes >= 3).mean()) if strokes.size else float("nan"),
        "head_w": float(np.median([b.width for b in heads])) if heads else float("nan"),
        "head_h": float(np.median([b.height for b in heads])) if heads else float("nan"),
        "heads": float(len(heads)),
        "ink": float(mask.mean()),
        "ink_off_lines": float(mask[~on_line].mean()) if (~on_line).any() else float("nan"),
        "height": float(mask.shape[0]),
        "width": float(mask.shape[1]),
        "left": float(cols[0]) if cols.size else float("nan"),
    }


def compare_engravings(real: list[np.ndarray], ours: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Compare paired engravings of the same incipits.

    Parameters
    ----------
    real, ours : list of np.ndarray
        Images of the same incipits, pairwise.

    Returns
    -------
    dict
        For each measure of :func:`engraving_measures`: ``real`` and ``ours`` (medians over the images, NaNs
        ignored) and ``ratio`` (median of ours/real over the pairs where both are finite and real is not 0).
    """
    if len(real) != len(ours):
        raise ValueError(f"compare_engravings: {len(real)} real images but {len(ours)} of ours")
    mr = [engraving_measures(x) for x in real]
    mo = [engraving_measures(x) for x in ours]
    out = {}
    for key in mr[0] if mr else []:
        a = np.array([m[key] for m in mr], float)
        b = np.array([m[key] for m in mo], float)
        ok = np.isfinite(a) & np.isfinite(b) & (a != 0)
        out[key] = {
            "real": float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan"),
            "ours": float(np.nanmedian(b)) if np.isfinite(b).any() else float("nan"),
            "ratio": float(np.median(b[ok] / a[ok])) if ok.any() else float("nan"),
        }
    return out


def align_by_staff(real: np.ndarray, ours: np.ndarray, above: int = 40, below: int = 40,
                   width: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Crop two grey images to the same band around their staves, top staff lines on the same row.

    Returns two uint8 arrays of equal shape ``(above + staff height + below, width)``, padded with white (a bool
    mask is first drawn as black ink on white).
    """
    out = []
    real, ours = (np.where(x, np.uint8(0), np.uint8(255)) if np.asarray(x).dtype == bool else np.asarray(x)
                  for x in (real, ours))
    tops = [staff_lines(ink_mask(x)).centres for x in (real, ours)]
    if any(len(t) == 0 for t in tops):
        raise ValueError("align_by_staff: an image has no staff lines")
    span = int(round(max(t[-1] - t[0] for t in tops)))
    width = width or max(real.shape[1], ours.shape[1])
    for img, t in zip((real, ours), tops):
        img = np.asarray(img)
        pad = above + below + span
        padded = np.pad(img, ((pad, pad), (0, max(0, width - img.shape[1]))), constant_values=255)
        top = int(round(t[0])) + pad - above
        out.append(padded[top: top + above + span + below, :width])
    return out[0], out[1]


def header_iou(real: np.ndarray, ours: np.ndarray, width: int = 200) -> float:
    """Overlap of the ink of two engravings' first ``width`` columns (clef, key and time signature), staff lines
    excluded: intersection over union after :func:`align_by_staff`.

    The staff's opening symbols do not depend on the spacing, so the same incipit engraved in the same music font
    overlaps almost exactly (0.8-0.95) and in another font much less (0.3-0.6): the font of a real image is the
    one whose engraving of its incipit has the highest ``header_iou``.
    """
    a, b = (x < 128 for x in align_by_staff(np.asarray(real), np.asarray(ours), width=width))
    keep = ~((a.mean(axis=1) > 0.5) | (b.mean(axis=1) > 0.5))
    a, b = a[keep], b[keep]
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else float("nan")


def identify_font(real: np.ndarray, pae: str, fonts: tuple[str, ...] = ("Leipzig", "Bravura", "Gootville"),
                  width: int = 200) -> tuple[str, dict[str, float]]:
    """The music font a real image was engraved in: engrave its PAE in each of ``fonts`` and keep the one whose
    opening symbols overlap the real image's best (:func:`header_iou`).

    Returns
    -------
    font : str
    overlaps : dict
        :func:`header_iou` of each font.
    """
    from mtlnb.camera_primus.corpus.engraving import engrave

    overlaps = {f: header_iou(real, engrave(pae, font=f).image, width) for f in fonts}
    return max(overlaps, key=overlaps.get), overlaps


def engraving_comparison(real: np.ndarray, ours: np.ndarray, title: str = "", x_range: tuple[int, int] | None = None,
                         margin: int = 70, ax=None):
    """Draw a real clean image above our engraving of the same incipit, aligned by the top staff line.

    Parameters
    ----------
    real, ours : np.ndarray, shape (H, W), uint8
        The real ``<id>.png`` and our engraving of its ``regular_pae.pae``.
    title : str
        Axis title.
    x_range : (int, int), optional
        Column range to show (default: all).
    margin : int
        Rows shown above the top staff line and below the bottom one (the images reach about 4 staff spaces
        beyond the staff).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is made if None.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    a, b = align_by_staff(real, ours, above=margin, below=margin)
    if x_range is not None:
        a, b = a[:, x_range[0]: x_range[1]], b[:, x_range[0]: x_range[1]]
    gap = np.full((6, a.shape[1]), 160, np.uint8)
    both = np.vstack([a, gap, b])
    if ax is None:
        fig, ax = plt.subplots(figsize=(min(both.shape[1] / 100, 16), both.shape[0] / 100 + 0.4))
    else:
        fig = ax.figure
    ax.imshow(both, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_yticks([a.shape[0] / 2, a.shape[0] + 6 + b.shape[0] / 2], ["real", "ours"])
    ax.set_title(title)
    return fig
