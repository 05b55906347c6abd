"""Engrave a Plaine & Easie incipit the way Camera-PrIMuS did: Verovio → SVG → a two-colour PNG of one staff.

Camera-PrIMuS's clean images (``<id>.png``) were engraved with Verovio 2.0 (2017) from the RISM incipit
(``regular_pae.pae``); ``<id>.mei`` is Verovio's MEI of the same incipit.  What the 60 real samples show, and how
this module reproduces it:

- **One staff system, trimmed.**  The ink touches the image on all sides but for a one-pixel white border.  We
  render with Verovio and crop to the ink's bounding box plus :attr:`EngraveConfig.border`.
- **Verovio's default page.**  Staff spaces are 18 px (Verovio's ``unit`` 9 at scale 100), and no image is wider
  than 2003 px: the default page is 2100 px wide with 50 px margins, so one system holds at most 2000 px.  Short
  incipits keep their natural width (936-1582 px in the samples); incipits whose natural width is at least 80 %
  of the line (Verovio's ``minLastJustification``) are justified to the full 2000 px, which is why a third of the
  real images are exactly 2002 px wide.
- **Three music fonts.**  Verovio of 2017 shipped three SMuFL fonts, Leipzig, Bravura and Gootville, and the real
  images use all three, one per incipit.  Engraving each sample's own ``regular_pae.pae`` in each font and
  comparing the first 200 columns (clef, key and time signature, staff lines left out) with the real image
  (:func:`mtlnb.camera_primus.corpus.engraving_compare.header_iou`), one font overlaps at 0.62-0.94 (median 0.86)
  and the other two at 0.27-0.63: 19 of the 60 samples are Leipzig, 24 Bravura, 17 Gootville (Petaluma and
  Leland, later fonts, never match best).  The fonts differ where the OMR must look closely: sharps are 15 px
  wide in Leipzig and 18 px in Bravura, the C clefs and the common-time C are other glyphs, and so on.  With the
  matching font the opening symbols of 92 % of the real images' components lie within 1 px of ours (68 % when
  all were engraved in Leipzig).  The counts fit an even draw (chi-square 1.3, 2 d.o.f.), so
  :func:`choose_font` spreads :attr:`EngraveConfig.fonts` evenly, by a hash of the PAE text.
- **Two colours, 3 px staff lines.**  The real PNGs are palette images with exactly two entries: white and a dark
  grey between 49 and 75 (median 63.5) that varies from image to image.  Every real staff line is 3 px thick;
  the thin strokes (stems, bar lines, measured across the middle rows of the staff spaces) are 2 px in 37 %,
  3 px in 44 %, wider in the rest; filled noteheads measure 22 x 19 px (median).  Verovio draws staff lines on
  whole pixels, so a line straddles two rows; we move the drawing half a pixel down
  (:attr:`EngraveConfig.shift`) so that the lines are centred on pixel rows, and count as ink every rendered
  pixel darker than :attr:`EngraveConfig.ink_threshold` (160: about 40 % coverage).  With ``staff_line_width``
  0.2 and ``stem_width`` 0.235 this gives, on the 60 real incipits in their own fonts: staff lines 3 px (all),
  thin strokes 2 px in 39 % and 3 px in 44 %, noteheads 22 x 19 px, ink share 0.166 (real 0.165; before:
  0.130, 2 px lines, 49 % / 33 % of 2 / 3 px strokes).
- **The ink's grey follows the drawing.**  The real grey is what a two-colour quantisation of an anti-aliased
  render gives: the mean of the non-white pixels.  The mean sRGB grey of our render's pixels darker than
  :attr:`EngraveConfig.ink_below` (250) predicts each real image's grey with correlation 0.89 and a mean
  absolute error of 2.8 grey levels (mean 65.0 against the real 64.2; a fixed grey 64 errs by 6.9): images
  with more hairline strokes get a lighter grey.  Three images dense with beams come out darker (35-39) than
  any real one (their real greys 50-58), so the grey is clipped to the real range,
  :attr:`EngraveConfig.ink_range` = 49-75: then correlation 0.96, mean absolute error 2.0, spread (sd) 7.9
  against the real 7.7.  (An OMR trained on grey-64 images reads the real incipits engraved with grey 50 about
  1 SER point worse than with 64 or 76, so the spread matters.)  ``ink`` = a number paints every image with
  that grey instead.
- :data:`TWO_MEANS` keeps the earlier rendering: Leipzig only, a 2-means split of the anti-aliased render in
  linear light (:func:`binarise`), 2 px lines, grey 64.

Choices where the sources are silent (all fields of :class:`EngraveConfig`):

- PAE dialect.  The ``regular_pae.pae`` files use the old RISM one-line form ``%clef@timesig$keysigü data``;
  Verovio 6 reads the ``@clef:/@keysig:/@timesig:/@data:`` form, so :func:`primus_pae_to_verovio` converts.  Three
  things Verovio 2 accepted and Verovio 6 rejects are repaired there: a mixed metre ``c/; 3/2`` keeps its first
  metre (the PrIMuS ``.semantic`` files do the same), stray characters in the key (``xFC&``) are dropped, and an
  accidental written before the duration or octave marks (``b8A``, ``x,F``) is moved next to its note.
- Grace notes.  Verovio 2 read the PAE grace note ``q`` as an acciaccatura (MEI ``grace="unacc"``, drawn with a
  slash through the flag, as in the real ``.mei`` and ``.png``); Verovio 6 reads it as an appoggiatura
  (``grace="acc"``, no slash).  With :attr:`EngraveConfig.slashed_grace`, an incipit with a single ``q`` mark
  is reloaded from Verovio's MEI with its grace notes set to ``unacc`` (incipits with only ``qq`` … ``r`` groups
  are left to Verovio: no real sample has one).
- Incipits too long for one 2000 px system: Verovio 2 fitted every PrIMuS incipit on one line, Verovio 6 spaces a
  little wider, so we tighten the linear spacing in steps (:attr:`EngraveConfig.squeeze`) until the incipit fits
  one justified system; if even the tightest does not fit we keep one unjustified system wider than 2000 px
  rather than break it into two staves.
- Spacing is calibrated to the real images (see the fields).  Raster: ``resvg`` (the Rust SVG
  renderer, PyPI ``resvg-py``; a self-contained wheel, no system cairo) with system fonts skipped, so the same
  incipit gives the same bytes on every machine (Verovio draws all music symbols as paths, no text).
- The MEI is Verovio 6's (MEI 5/6-dev, not the archive's MEI 4); its ``<date>`` is removed so that it is
  deterministic too.  Verovio's element ids are seeded (:attr:`EngraveConfig.id_seed`).
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass

import numpy as np
from PIL import Image

# The real PNGs carry a 96 dpi pHYs chunk (3780 px/m); we write the same so that files look alike to tools.
PRIMUS_DPI = (96.012, 96.012)
VEROVIO_FONTS = ("Leipzig", "Bravura", "Gootville", "Petaluma", "Leland")


@dataclass(frozen=True)
class EngraveConfig:
    page_width: int = 2100  # Verovio's default page: 2000 px of line inside the margins, PrIMuS's 2002 px cap
    page_margin: int = 50  # Verovio's default left/right margin in px at scale 100
    min_last_justification: float = 0.8  # Verovio's default: lines filling >= 80 % are justified (as in PrIMuS)
    spacing_linear: float = 0.26  # Verovio 6 default 0.25 gives natural widths 4 % under Verovio 2's; 0.26 ~ 1 %
    spacing_non_linear: float = 0.6  # Verovio's default
    staff_line_width: float = 0.2  # Verovio units (9 px): with the half-pixel shift and ink_threshold, 3 px lines
    stem_width: float = 0.235  # thin strokes 39 % 2 px, 44 % 3 px (real 37 %, 44 %); Verovio's 0.2: 47 %, 36 %
    ink_threshold: int | None = 160  # sRGB grey below which a rendered pixel is ink; None = 2-means (binarise)
    shift: tuple[float, float] = (0.0, 0.5)  # px added to the drawing's (x, y): staff lines centred on pixel rows
    fonts: tuple[str, ...] = ("Leipzig", "Bravura", "Gootville")  # SMuFL fonts drawn from, one per incipit
    slashed_grace: bool = True  # PAE 'q' grace notes as Verovio 2 drew them: with a slash (MEI grace="unacc")
    multi_rest_style: str = "block"  # PrIMuS (Verovio 2) draws every multi-rest as the H-bar with its number
    ink: int | None = None  # grey of the ink; None: the drawing's (see ink_below; 2-means cluster mean without
    # ink_threshold)
    ink_below: int = 250  # the ink grey is the mean of the rendered pixels darker than this ...
    ink_range: tuple[int, int] = (49, 75)  # ... clipped to the real greys' range
    squeeze: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)  # spacing factors tried to fit one system
    border: int = 1  # white pixels left around the ink's bounding box, as in the real images
    id_seed: int = 1  # seeds Verovio's xml:id generator so the MEI and SVG are deterministic

    def __post_init__(self) -> None:
        if self.ink is not None and not 0 <= self.ink <= 254:
            raise ValueError(f"EngraveConfig.ink must be a grey level in 0..254 (or None), got {self.ink}")
        if self.border < 0:
            raise ValueError(f"EngraveConfig.border must be >= 0, got {self.border}")
        if not 0 <= self.ink_range[0] <= self.ink_range[1] <= 254:
            raise ValueError(f"EngraveConfig.ink_range must be grey levels lo <= hi in 0..254, got {self.ink_range}")
        if not 1 <= self.ink_below <= 255:
            raise ValueError(f"EngraveConfig.ink_below must be a grey level in 1..255, got {self.ink_below}")
        if self.ink_threshold is not None and not 1 <= self.ink_threshold <= 255:
            raise ValueError(f"EngraveConfig.ink_threshold must be a grey level in 1..255 (or None), "
                             f"got {self.ink_threshold}")
        if not self.fonts or any(f not in VEROVIO_FONTS for f in self.fonts):
            raise ValueError(f"EngraveConfig.fonts must be Verovio fonts {VEROVIO_FONTS}, got {self.fonts}")
        if not self.squeeze or any(not 0 < f <= 1 for f in self.squeeze):
            raise ValueError(f"EngraveConfig.squeeze must be spacing factors in (0, 1], got {self.squeeze}")


# The engraving before it was matched stroke by stroke to the real images: Verovio 6's drawing on whole pixels, a
# 2-means split of the anti-aliased render, 2 px staff lines and stems.  Kept for comparison.
TWO_MEANS = EngraveConfig(staff_line_width=0.25, stem_width=0.2, ink_threshold=None, shift=(0.0, 0.0),
                          fonts=("Leipzig",), slashed_grace=False, ink=64)


@dataclass(frozen=True)
class Engraving:
    """One engraved incipit.

    Attributes
    ----------
    pae : str
        The PAE as given to :func:`engrave`.
    pae_verovio : str
        The same incipit in the ``@clef:…`` form Verovio 6 reads.
    mei : str
        Verovio's MEI of the incipit (deterministic: date removed, ids seeded).
    svg : str
        Verovio's SVG of the page before trimming.
    image : np.ndarray, shape (H, W), uint8
        The trimmed two-colour image: 255 for paper and :attr:`ink` for ink.
    ink : int
        The grey level of the ink (0-255), as in the real palette images.
    png : bytes
        ``image`` encoded as a two-entry palette PNG, like the real ``<id>.png``.
    justified : bool
        Whether the system was stretched to the full line width.
    spacing_factor : float
        The factor applied to ``spacing_linear`` to fit one system (1.0 for almost all incipits).
    font : str
        The music font it was engraved with.
    """

    pae: str
    pae_verovio: str
    mei: str
    svg: str
    image: np.ndarray
    ink: int
    png: bytes
    justified: bool
    spacing_factor: float
    font: str = "Leipzig"


# --------------------------------------------------------------------------------------------------- PAE dialect

_PRIMUS_PAE = re.compile(r"%(?P<clef>[^@]*)@(?P<time>[^$]*)\$(?P<key>[^ü\s]*)ü?\s*(?P<data>.*)", re.S)
# An accidental (x sharp, b flat, n natural; doubled for double ones) followed by octave marks and/or a duration
# before its note letter: Verovio 6 wants the accidental right before the letter.
_EARLY_ACCIDENTAL = re.compile(r"([xbn]{1,2})((?:[',]+|\d+\.*)+)(?=[A-G])")
_KEY_CHARS = set("xbn[]ABCDEFG")


def primus_pae_to_verovio(pae: str) -> str:
    """Convert a PrIMuS ``regular_pae.pae`` incipit to the keyed PAE form that Verovio 6 reads.

    Parameters
    ----------
    pae : str
        ``%clef@timesig$keysigü data`` (the RISM one-line form PrIMuS stores; the ``ü`` may be a space), or text
        already in the ``@clef:…`` form, which is returned with the data repairs applied.

    Returns
    -------
    str
        ``@clef:…\\n@keysig:…\\n@timesig:…\\n@data:…\\n``.

    Raises
    ------
    ValueError
        If ``pae`` is in neither form.
    """
    text = pae.strip()
    if text.startswith("@"):
        fields = dict(re.findall(r"^@(\w+):(.*)$", text, re.M))
        if "data" not in fields:
            raise ValueError(f"PAE in keyed form has no @data: line: {pae[:80]!r}")
        clef, time, key, data = (fields.get(k, "") for k in ("clef", "timesig", "keysig", "data"))
    else:
        m = _PRIMUS_PAE.fullmatch(text)
        if m is None:
            raise ValueError(f"not a PrIMuS PAE incipit (expected '%clef@timesig$keysigü data'): {pae[:80]!r}")
        clef, time, key, data = m.group("clef", "time", "key", "data")
    clef = clef.strip()
    if not clef:
        raise ValueError(f"PAE incipit has no clef: {pae[:80]!r}")
    time = time.split(";")[0].strip()  # mixed metre 'c/; 3/2': PrIMuS's semantic encoding keeps the first
    key = "".join(c for c in key if c in _KEY_CHARS)
    data = _EARLY_ACCIDENTAL.sub(r"\2\1", data.strip())
    return f"@clef:{clef}\n@keysig:{key}\n@timesig:{time}\n@data:{data}\n"


# ------------------------------------------------------------------------------------------------------ Verovio


def choose_font(pae: str, fonts: tuple[str, ...]) -> str:
    """The font an incipit is engraved with: one of ``fonts``, picked by a CRC-32 of the PAE text.

    A hash rather than a random draw keeps :func:`engrave` a function of its input (the same incipit always looks
    the same, whoever engraves it) while spreading the fonts evenly over a corpus.
    """
    return fonts[zlib.crc32(pae.strip().encode("utf-8")) % len(fonts)]


def _toolkit(config: EngraveConfig, spacing_factor: float, breaks: str, font: str = "Leipzig"):
    import verovio  # imported here: the rest of mtlnb does not need it

    tk = verovio.toolkit()
    tk.setOptions(
        {
            "inputFrom": "pae",
            "breaks": breaks,
            "pageWidth": config.page_width,
            "pageMarginLeft": config.page_margin,
            "pageMarginRight": config.page_margin,
            "adjustPageHeight": True,  # a short page: less to rasterise; we trim anyway
            "header": "none",
            "footer": "none",
            "minLastJustification": config.min_last_justification,
            "spacingLinear": config.spacing_linear * spacing_factor,
            "spacingNonLinear": config.spacing_non_linear,
            "staffLineWidth": config.staff_line_width,
            "stemWidth": config.stem_width,
            "multiRestStyle": config.multi_rest_style,
            "xmlIdSeed": config.id_seed,
            "font": font,
        }
    )
    return tk


def _lay_out(pae_verovio: str, config: EngraveConfig, font: str = "Leipzig"):
    """Return (toolkit, svg, spacing factor, justified) for a one-system layout."""
    for factor in config.squeeze:
        tk = _toolkit(config, factor, "auto", font)
        if not tk.loadData(pae_verovio):
            raise ValueError(f"Verovio could not read the PAE incipit: {pae_verovio!r}")
        svg = tk.renderToSVG(1)
        if tk.getPageCount() == 1 and svg.count('class="system"') == 1:
            return tk, svg, factor, None
    tk = _toolkit(config, 1.0, "none", font)  # nothing fits one line: one long line rather than two staves
    tk.loadData(pae_verovio)
    return tk, tk.renderToSVG(1), 1.0, False


_PAGE_MARGIN = re.compile(r'(class="page-margin" transform="translate\()(-?[\d.]+), (-?[\d.]+)(\)")')


def shift_drawing(svg: str, dx: float, dy: float) -> str:
    """Move everything Verovio drew by ``(dx, dy)`` px (its page-margin group; Verovio draws 10 units per px).

    Verovio puts staff lines on whole pixels, so a line of odd pixel width straddles two rows; half a pixel down
    centres the lines on pixel rows, the way the real images' 3 px lines sit.
    """
    if dx == 0 and dy == 0:
        return svg
    def move(m: re.Match) -> str:
        x, y = float(m.group(2)) + 10 * dx, float(m.group(3)) + 10 * dy
        return f"{m.group(1)}{x:g}, {y:g}{m.group(4)}"
    out, n = _PAGE_MARGIN.subn(move, svg, count=1)
    if n != 1:
        raise ValueError("shift_drawing: the SVG has no Verovio page-margin group to move")
    return out


def rasterise(svg: str) -> np.ndarray:
    """Render an SVG to grey levels with resvg (anti-aliased, white background, no system fonts).

    Returns
    -------
    np.ndarray, shape (H, W), uint8
        One pixel per SVG px.
    """
    try:
        import resvg_py
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("mtlnb.camera_primus.corpus.engraving needs the resvg-py package to rasterise SVG: "
                          "pip install resvg-py") from e

    png = resvg_py.svg_to_bytes(svg_string=svg, background="#ffffff", skip_system_fonts=True)
    with Image.open(io.BytesIO(bytes(png))) as im:
        return np.asarray(im.convert("L"), dtype=np.uint8).copy()


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: float) -> float:
    return 255.0 * (12.92 * x if x <= 0.0031308 else 1.055 * x ** (1 / 2.4) - 0.055)


def binarise(gray: np.ndarray, iterations: int = 100) -> tuple[np.ndarray, int]:
    """Two-colour quantisation of an anti-aliased render in linear light (2-means on the histogram).

    Parameters
    ----------
    gray : np.ndarray, shape (H, W), uint8
        sRGB grey levels, ink dark on white.
    iterations : int
        Lloyd iterations (it converges in a handful).

    Returns
    -------
    ink_mask : np.ndarray, shape (H, W), bool
        Pixels assigned to the dark cluster.
    ink : int
        The dark cluster's mean, taken in linear light and written back in sRGB (0-255).

    Raises
    ------
    ValueError
        If ``gray`` is not a 2-D uint8 array or holds a single grey level (nothing to separate).
    """
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"binarise: expected a 2-D uint8 image, got shape {gray.shape} dtype {gray.dtype}")
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    levels = _srgb_to_linear(np.arange(256))
    present = np.nonzero(hist)[0]
    if present.size < 2:
        raise ValueError("binarise: the image has a single grey level (no ink)")
    dark, light = levels[present[0]], levels[present[-1]]
    for _ in range(iterations):
        low = levels <= (dark + light) / 2
        new_dark = float((hist[low] * levels[low]).sum() / hist[low].sum())
        new_light = float((hist[~low] * levels[~low]).sum() / hist[~low].sum())
        if (new_dark, new_light) == (dark, light):
            break
        dark, light = new_dark, new_light
    threshold = int(np.nonzero(levels <= (dark + light) / 2)[0].max())  # last sRGB level in the dark cluster
    return gray <= threshold, int(round(_linear_to_srgb(dark)))


def trim(mask: np.ndarray, border: int) -> tuple[slice, slice]:
    """Row and column slices of the ink's bounding box grown by ``border`` pixels (clipped to the image)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("trim: the mask holds no ink")
    h, w = mask.shape
    return (
        slice(max(rows[0] - border, 0), min(rows[-1] + border + 1, h)),
        slice(max(cols[0] - border, 0), min(cols[-1] + border + 1, w)),
    )


def encode_png(image: np.ndarray, ink: int) -> bytes:
    """Encode a two-colour image (values 255 and ``ink``) as a 1-bit palette PNG like PrIMuS's.

    Parameters
    ----------
    image : np.ndarray, shape (H, W), uint8
        Only the values 255 and ``ink`` may occur.
    ink : int
        The ink grey level (palette entry 1; entry 0 is white, as in the real files).
    """
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"encode_png: expected a 2-D uint8 image, got shape {image.shape} dtype {image.dtype}")
    if not np.isin(image, (ink, 255)).all():
        raise ValueError(f"encode_png: the image holds values other than 255 and the ink level {ink}")
    im = Image.fromarray((image != 255).astype(np.uint8), mode="L").convert("P")
    im.putpalette([255, 255, 255, ink, ink, ink])
    buf = io.BytesIO()
    im.save(buf, format="PNG", bits=1, dpi=PRIMUS_DPI)
    return buf.getvalue()


# A single 'q' before a note (not a 'qq' ... 'r' group): the acciaccatura of the PAE incipits.
_ACCIACCATURA = re.compile(r"(?<!q)q(?!q)")
_MEI_DATE = re.compile(r"\s*<date\b[^>]*/>|\s*<date\b[^>]*>.*?</date>", re.S)


def engrave(pae: str, config: EngraveConfig | None = None, font: str | None = None) -> Engraving:
    """Engrave one incipit like Camera-PrIMuS's ``<id>.png`` and ``<id>.mei``.

    Parameters
    ----------
    pae : str
        A PrIMuS ``regular_pae.pae`` incipit (``%G-2@2/4$xFCGü 8.'E6E…``) or keyed PAE (``@clef:G-2`` …).
    config : EngraveConfig, optional
        Layout and rendering settings; the defaults reproduce the real images' scale.
    font : str, optional
        A Verovio music font; by default :func:`choose_font` picks one of ``config.fonts`` from the PAE.

    Returns
    -------
    Engraving
        MEI, SVG, the trimmed two-colour image (about 110-200 px high, one 18 px staff space per 18 px) and its
        PNG bytes.  The same ``pae`` and ``config`` always give identical bytes.

    Raises
    ------
    ValueError
        If ``pae`` is not PAE that Verovio can read.
    """
    config = config or EngraveConfig()
    pae_verovio = primus_pae_to_verovio(pae)
    font = font or choose_font(pae, config.fonts)
    if font not in VEROVIO_FONTS:
        raise ValueError(f"engrave: font must be one of {VEROVIO_FONTS}, got {font!r}")
    tk, svg, factor, justified = _lay_out(pae_verovio, config, font)
    mei = tk.getMEI()
    if config.slashed_grace and _ACCIACCATURA.search(pae_verovio.split("@data:", 1)[1]) and 'grace="acc"' in mei:
        tk.setOptions({"inputFrom": "mei"})  # same layout options; only the grace notes' type changes
        tk.loadData(mei.replace('grace="acc"', 'grace="unacc"'))
        svg, mei = tk.renderToSVG(1), tk.getMEI()
    mei = _MEI_DATE.sub("", mei, count=1)
    gray = rasterise(shift_drawing(svg, *config.shift))
    if config.ink_threshold is None:
        mask, render_ink = binarise(gray)
    else:
        mask = gray < config.ink_threshold
        lo, hi = config.ink_range
        render_ink = int(np.clip(round(float(gray[gray < config.ink_below].mean())), lo, hi))
    ink = render_ink if config.ink is None else config.ink
    rows, cols = trim(mask, config.border)
    mask = mask[rows, cols]
    image = np.where(mask, np.uint8(ink), np.uint8(255))
    if justified is None:  # one system from the 'auto' layout: justified when it spans the whole line
        line = config.page_width - 2 * config.page_margin
        justified = image.shape[1] - 2 * config.border >= line - 1
    return Engraving(
        pae=pae,
        pae_verovio=pae_verovio,
        mei=mei,
        svg=svg,
        image=image,
        ink=ink,
        png=encode_png(image, ink),
        justified=bool(justified),
        spacing_factor=factor,
        font=font,
    )
