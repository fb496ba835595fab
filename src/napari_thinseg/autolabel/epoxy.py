"""Find the blue-dye epoxy of a thin-section photo by itself.

Photos from different microscopes differ in white balance: the same blue
dye reads cyan-green under a warm lamp and deep blue under a cold one, and
it may be pale or dark, so no fixed hue / saturation box suits them all.
The finder adapts to the photo instead:

1. **white balance**: the brightest pixels of a plane-polarised photo are
   clear grains (quartz, feldspar); the median colour of the brightest
   5 % (:data:`WHITE_QUANTILE`) of the pixels that are not clearly blue
   is taken as white, and every channel is divided by it (a white-patch
   correction; plain gray-world would pull the photo towards yellow
   wherever a third of it is dye, and a warm photo's gray world makes
   white quartz look blue);
2. **blueness**: in CIE Lab of the balanced (smoothed) colours, the dye's
   direction in the (a*, b*) plane is the median direction of the more
   chromatic half of the pixels with b* < 0 (the bluish half-plane), or of
   the clicked samples; a pixel's blueness is its (a*, b*) along that
   direction, in Lab units;
3. **the dye's population**: Otsu's threshold
   (:func:`skimage.filters.threshold_otsu`) on the blueness clipped at 0,
   which splits the one bluish population from everything else (grains
   of any colour sit at or below 0); clicked samples lower it so that each
   lies inside (:data:`SAMPLE_MARGIN`). A population paler than
   :data:`MIN_DYE_BLUENESS` is no dye: nothing is found;
4. **speckle**: holes in the dye of up to :data:`SPECKLE_PIXELS` pixels
   (the dye's own specks, dust, bubbles) are filled
   (:func:`skimage.morphology.remove_small_holes`).

The fit uses at most :data:`FIT_PIXELS` pixels; the mask is computed a
strip of rows at a time, so a whole-slide photo needs no float copy of
itself. The explicit hue / saturation / value window of
:class:`~napari_thinseg.autolabel.rule.EpoxyWindow` remains for users who set
one.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ..errors import ThinsegError
from ..imaging.convert import to_float

WHITE_QUANTILE = 0.95
"""Pixels brighter than this quantile of the luminance give the white."""
WHITE_MAX_BLUE_SATURATION = 0.2
"""Pixels whose strongest channel is blue and whose HSV saturation is
above this are never taken for white."""
MIN_DYE_BLUENESS = 8.0
"""Median blueness (Lab units) below which a population is no dye."""
SAMPLE_MARGIN = 0.6
"""With samples, the threshold is at most this share of the palest
sample's blueness."""
SPECKLE_PIXELS = 32
"""Holes in the dye up to this many pixels are filled."""
FIT_PIXELS = 1 << 16
"""At most this many pixels go into the fit."""
STRIP_PIXELS = 1 << 16
"""About this many pixels are converted to Lab at a time (at least 16
rows)."""
BLUE_HUES = (160.0, 330.0)
"""Lab hue angles (degrees in the a*, b* plane) a dye direction may have:
cyan to violet."""


@dataclass(frozen=True)
class EpoxyFit:
    """What the finder chose for one photo.

    Attributes
    ----------
    white : (float, float, float)
        The white reference (RGB in [0, 1]) each channel is divided by.
    direction : (float, float)
        Unit vector of the dye's colour in the (a*, b*) plane.
    threshold : float
        Blueness (Lab units) above which a pixel is dye.
    found : bool
        Whether a bluish population was found (False: the mask is empty).
    samples : int
        How many clicked samples refined it.
    """

    white: tuple[float, float, float]
    direction: tuple[float, float]
    threshold: float
    found: bool
    samples: int = 0

    @property
    def hue_degrees(self) -> float:
        """The dye's Lab hue angle in degrees (0..360)."""
        return float(np.degrees(np.arctan2(*self.direction[::-1])) % 360)

    def describe(self) -> str:
        """One line for a status bar or a log."""
        if not self.found:
            return "no blue dye found"
        clicks = f", {self.samples} sample(s)" if self.samples else ""
        return (
            f"dye at Lab hue {self.hue_degrees:.0f} degrees, blueness > "
            f"{self.threshold:.1f}{clicks}"
        )


def sample_colour(pixels) -> tuple[float, float, float]:
    """The median RGB colour (in [0, 1]) of sampled pixels (``(..., 3|4)``,
    any image dtype): one sample of the dye."""
    rgb = to_float(np.asarray(pixels))
    if rgb.ndim < 1 or rgb.shape[-1] not in (3, 4) or not rgb.size:
        raise ThinsegError(
            f"an epoxy sample needs RGB pixels, got shape {np.shape(pixels)}"
        )
    median = np.median(rgb[..., :3].reshape(-1, 3), axis=0)
    return tuple(round(float(v), 4) for v in median)


def check_samples(samples: Iterable) -> tuple:
    """Validate samples: RGB colours in [0, 1] -> a tuple of 3-tuples."""
    try:
        out = tuple(tuple(float(v) for v in s) for s in samples)
    except (TypeError, ValueError):
        raise ThinsegError(
            f"epoxy samples must be RGB colours, got {samples!r}"
        ) from None
    for s in out:
        if len(s) != 3 or not all(0.0 <= v <= 1.0 for v in s):
            raise ThinsegError(
                f"an epoxy sample must be 3 values in [0, 1], got {s}"
            )
    return out


# -- colour -------------------------------------------------------------------
def _smoothed_rows(image: np.ndarray, sigma: float, start: int, stop: int):
    """Rows ``start .. stop - 1`` of the RGB image, float in [0, 1],
    smoothed as :func:`~napari_thinseg.autolabel.rule.smooth` smooths the whole
    image (rows
    beyond the strip are read, so strips join without seams)."""
    pad = int(4.0 * sigma + 0.5) if sigma > 0 else 0
    top, bottom = max(0, start - pad), min(image.shape[0], stop + pad)
    rgb = to_float(np.asarray(image[top:bottom]))[..., :3]
    if pad:
        from skimage.filters import gaussian

        rgb = gaussian(rgb, sigma=sigma, preserve_range=True, channel_axis=-1)
    return np.clip(rgb[start - top : stop - top], 0, 1)


def white_point(rgb: np.ndarray) -> np.ndarray:
    """The median colour of the brightest pixels of ``(N, 3)`` colours,
    leaving out clearly blue ones (blue the strongest channel and a
    saturation above :data:`WHITE_MAX_BLUE_SATURATION`): pale dye may be
    the brightest thing in a photo, and is never its white."""
    high, low = rgb.max(axis=-1), rgb.min(axis=-1)
    blue = (rgb[:, 2] >= high) & (
        high - low > WHITE_MAX_BLUE_SATURATION * high
    )
    candidates = rgb[~blue]
    if len(candidates) < max(10, len(rgb) // 100):
        return np.ones(3)  # nothing but blue: no balance to be had
    lum = candidates.mean(axis=-1)
    bright = candidates[lum >= np.quantile(lum, WHITE_QUANTILE)]
    return np.maximum(np.median(bright, axis=0), 1e-3)


def balanced_ab(rgb: np.ndarray, white) -> np.ndarray:
    """(a*, b*) of RGB colours in [0, 1] after dividing by ``white``."""
    from skimage.color import rgb2lab

    balanced = np.clip(np.asarray(rgb, float) / np.asarray(white), 0, 1)
    return rgb2lab(balanced)[..., 1:]


def _hue(ab: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(ab[1], ab[0])) % 360)


def _fit_pixels(image: np.ndarray, sigma: float) -> np.ndarray:
    """Smoothed colours (``(N, 3)``) of at most :data:`FIT_PIXELS` pixels
    spread over the image."""
    h, w = image.shape[:2]
    step = max(1, int(np.ceil(np.sqrt(h * w / FIT_PIXELS))))
    rows = []
    for y0, y1 in _strips(image):
        first = -y0 % step  # keep the rows that are multiples of step
        strip = _smoothed_rows(image, sigma, y0, y1)
        rows.append(strip[first::step, ::step].reshape(-1, 3))
    return np.concatenate(rows)


def fit_epoxy(image, sigma: float = 1.0, samples=()) -> EpoxyFit:
    """Find the dye's colour in an RGB(A) image (module docstring).

    Parameters
    ----------
    image : ndarray
        2D colour image (H, W, 3|4), any dtype :func:`to_float` reads.
    sigma : float
        Gaussian smoothing in pixels before the colours are read.
    samples : sequence of (r, g, b)
        Colours in [0, 1] of clicked dye (:func:`sample_colour`).

    Raises
    ------
    ThinsegError
        If the image is no colour image, or a sample is not bluish.
    """
    from skimage.filters import threshold_otsu

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ThinsegError(
            "the blue-epoxy method needs a 2D colour (RGB) image, got "
            f"shape {image.shape}"
        )
    samples = check_samples(samples)
    rgb = _fit_pixels(image, sigma)
    white = white_point(rgb)
    ab = balanced_ab(rgb, white)
    white_t = tuple(round(float(v), 4) for v in white)
    if samples:
        direction, palest = _sample_direction(samples, white)
    else:
        direction, palest = _auto_direction(ab), None
    if direction is None:
        return EpoxyFit(white_t, (0.0, -1.0), float("inf"), False)
    blueness = np.maximum(ab @ direction, 0)
    if np.ptp(blueness) < 1e-6:
        threshold = 0.0  # one colour: dye or not, as a whole
    else:
        threshold = float(threshold_otsu(blueness))
    if palest is not None:
        threshold = min(threshold, SAMPLE_MARGIN * palest)
    dye = blueness[blueness > threshold]
    found = bool(
        dye.size and (palest is not None or np.median(dye) >= MIN_DYE_BLUENESS)
    )
    return EpoxyFit(
        white_t,
        (float(direction[0]), float(direction[1])),
        round(threshold, 4),
        found,
        len(samples),
    )


def _auto_direction(ab: np.ndarray) -> np.ndarray | None:
    """The median (a*, b*) direction of the more chromatic half of the
    bluish pixels (None: there are none)."""
    bluish = ab[ab[:, 1] < 0]
    if len(bluish) < 10:
        return None
    chroma = np.hypot(bluish[:, 0], bluish[:, 1])
    centre = np.median(bluish[chroma >= np.median(chroma)], axis=0)
    norm = np.hypot(*centre)
    if norm < 1e-6 or not BLUE_HUES[0] <= _hue(centre) <= BLUE_HUES[1]:
        return None
    return centre / norm


def _sample_direction(samples, white) -> tuple[np.ndarray, float]:
    """The direction of the samples' median (a*, b*), and the smallest
    blueness of a sample along it; refuses a sample that is not bluish."""
    ab = balanced_ab(np.array(samples).reshape(-1, 1, 3), white)[:, 0]
    for colour, (a, b) in zip(samples, ab, strict=True):
        hue, chroma = _hue((a, b)), float(np.hypot(a, b))
        if chroma < MIN_DYE_BLUENESS / 2 or not (
            BLUE_HUES[0] <= hue <= BLUE_HUES[1]
        ):
            rgb = ", ".join(f"{round(255 * v)}" for v in colour)
            what = (
                f"gray here (chroma {chroma:.1f})"
                if chroma < MIN_DYE_BLUENESS / 2
                else f"not blue dye (Lab hue {hue:.0f} degrees)"
            )
            raise ThinsegError(
                f"the sampled colour ({rgb}) is {what}: sample the dyed "
                "epoxy of a pore"
            )
    centre = np.median(ab, axis=0)
    direction = centre / np.hypot(*centre)
    return direction, float((ab @ direction).min())


# -- the mask -----------------------------------------------------------------
def _strips(image: np.ndarray):
    """``(start, stop)`` row ranges of about :data:`STRIP_PIXELS` pixels."""
    rows = max(16, STRIP_PIXELS // max(1, image.shape[1]))
    for y0 in range(0, image.shape[0], rows):
        yield y0, min(image.shape[0], y0 + rows)


def dye_pixels(image, fit: EpoxyFit, sigma: float = 1.0) -> np.ndarray:
    """Where a pixel's blueness under ``fit`` is above its threshold
    (bool, 2D; speckle not filled), a strip at a time."""
    image = np.asarray(image)
    out = np.zeros(image.shape[:2], bool)
    if not fit.found:
        return out
    direction = np.asarray(fit.direction)
    for y0, y1 in _strips(image):
        rgb = _smoothed_rows(image, sigma, y0, y1)
        blue = balanced_ab(rgb, fit.white) @ direction
        np.greater(blue, fit.threshold, out=out[y0:y1])
    return out


def fill_speckle(mask: np.ndarray, size: int = SPECKLE_PIXELS):
    """``mask`` with its holes of up to ``size`` pixels filled."""
    from skimage.morphology import remove_small_holes

    if size <= 0 or not mask.any():
        return mask
    # scikit-image 0.26 renamed the argument (and counts "up to")
    if "max_size" in inspect.signature(remove_small_holes).parameters:
        return remove_small_holes(mask, max_size=size)
    return remove_small_holes(mask, area_threshold=size + 1)


def find_epoxy(
    image, sigma: float = 1.0, samples=(), fit: EpoxyFit | None = None
) -> tuple[np.ndarray, EpoxyFit]:
    """Where the photo is blue dye (bool, 2D) and the fit that says so.

    ``fit`` (from :func:`fit_epoxy`) skips the fit; see it for the rest.
    Besides the mask, it holds a strip of about :data:`STRIP_PIXELS`
    pixels in float at a time, and the speckle fill's labels.
    """
    image = np.asarray(image)
    fit = fit_epoxy(image, sigma, samples) if fit is None else fit
    return fill_speckle(dye_pixels(image, fit, sigma)), fit
