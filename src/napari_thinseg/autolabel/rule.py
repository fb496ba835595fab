"""Auto-label a thin section by gray level (the seed's rule) or blue dye.

The seed rule, exactly:

1. ``rgb`` = the image as float in [0, 1] (integers divided by their dtype's
   maximum; float images used as they are when inside [0, 1], else min-max
   rescaled), alpha dropped;
2. ``gray = skimage.color.rgb2gray(rgb)`` (0.2125 R + 0.7154 G + 0.0721 B);
   gray images are used directly;
3. ``smooth = skimage.filters.gaussian(gray, sigma)`` (sigma 1.0; 0 skips);
4. ``class = 1 + number of thresholds t with smooth > t``
   (thresholds 0.25, 0.4, 0.6, 0.75 -> classes 1..5).

A value exactly at a threshold goes to the lower class, as the seed's
strict ``>`` comparisons put it; the seed's own code left pixels exactly at
0.25 unlabelled (0), which is a gap we close by putting them in class 1.

Gray bins put blue epoxy and brown grains of the same brightness in one
class; the ``"epoxy"`` method therefore gives the pore class to pixels whose
colour is blue dye, and the gray bins elsewhere. By default the dye is
found in each photo by :mod:`.epoxy` (white balance, then the one bluish
population in Lab; clicked samples refine it); an explicit
:class:`EpoxyWindow` (a hue / saturation / value window on the smoothed
RGB) takes its place when one is given.

uint8 images (PNG, JPEG, 8-bit TIFF) take :mod:`.fast`, the same
rule strip by strip without float copies of the image: its gray level is
float32 (the float rule rounded once) and its labels are the float rule's
but for pixels within float rounding of a threshold or of the blue window's
edges; a flat patch exactly at a threshold goes to the lower class (where
the float path's rounding may put it above). Other types take the float
path below.
"""

from __future__ import annotations

import numbers
from collections.abc import Generator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..errors import ThinsegError
from ..imaging.convert import is_rgb, to_float
from ..imaging.files import check_image
from ..progress import Progress
from ..schemes import SEED, ClassScheme, PetroClass, rgb_to_hex
from . import fast
from .epoxy import check_samples, find_epoxy

DEFAULT_THRESHOLDS = (0.25, 0.4, 0.6, 0.75)
METHODS = ("gray", "multiotsu", "epoxy")


@dataclass(frozen=True)
class EpoxyWindow:
    """The colour of blue-dye epoxy in HSV (all in [0, 1]).

    The defaults take cyan-to-deep-blue dye (hue 162-270 degrees) that is
    clearly coloured; bluish-gray grains under crossed polars (saturation
    about 0.3) stay out.
    """

    hue_min: float = 0.45
    hue_max: float = 0.75
    min_saturation: float = 0.35
    min_value: float = 0.2

    def __post_init__(self):
        for name in ("hue_min", "hue_max", "min_saturation", "min_value"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ThinsegError(f"epoxy {name} must be in [0, 1], got {v}")
        if self.hue_min >= self.hue_max:
            raise ThinsegError(
                f"epoxy hue window is empty ({self.hue_min} >= {self.hue_max})"
            )


BLUE_DYE_HUES = (0.40, 0.80)
"""Hues (fractions of the circle, 144-288 degrees: cyan to violet) a
sampled blue-dye colour may have."""

EPOXY_HUE_HALF_WIDTH = 0.08
"""Half the hue window (a fraction of the colour circle, about 29
degrees) set around a sampled epoxy colour."""


def epoxy_window_from_sample(pixels) -> EpoxyWindow:
    """An epoxy window around sampled epoxy pixels (``(..., 3)`` RGB):
    the median hue +- :data:`EPOXY_HUE_HALF_WIDTH`, and minimum
    saturation and value at 60 % and 50 % of the sample's medians, so pale
    or dark dye is taken while gray grains stay out."""
    from skimage.color import rgb2hsv

    rgb = to_float(np.asarray(pixels))[..., :3].reshape(-1, 1, 3)
    if not rgb.size:
        raise ThinsegError("no pixels sampled")
    hue, sat, val = (np.median(c) for c in np.moveaxis(rgb2hsv(rgb), -1, 0))
    if sat < 0.05 or not BLUE_DYE_HUES[0] <= hue <= BLUE_DYE_HUES[1]:
        what = (
            f"gray (saturation {sat:.2f})"
            if sat < 0.05
            else f"not blue dye (hue {360 * hue:.0f} degrees)"
        )
        raise ThinsegError(
            f"the clicked colour is {what}: click on the dyed epoxy of a pore"
        )
    low = max(0.0, hue - EPOXY_HUE_HALF_WIDTH)
    high = min(1.0, hue + EPOXY_HUE_HALF_WIDTH)
    return EpoxyWindow(
        round(low, 3),
        round(high, 3),
        round(max(0.03, 0.6 * sat), 3),
        round(max(0.02, 0.5 * val), 3),
    )


@dataclass(frozen=True)
class AutoLabelParams:
    """Everything the auto-label needs besides the image.

    Parameters
    ----------
    method : {"gray", "multiotsu", "epoxy"}
        Fixed gray bins, gray bins at multi-Otsu thresholds, or gray bins
        with the pore class wherever the colour is blue dye.
    thresholds : sequence of float
        Increasing gray thresholds in (0, 1) for ``gray`` and ``epoxy``.
    sigma : float
        Gaussian smoothing in pixels before binning (0 = none).
    n_classes : int
        Number of classes multi-Otsu splits the gray levels into.
    epoxy : EpoxyWindow or None
        A fixed blue-dye colour window for ``epoxy``; None (the default)
        finds the dye in each image (:mod:`.epoxy`).
    epoxy_samples : tuple of (r, g, b)
        Colours in [0, 1] of sampled dye that refine the found one (only
        without a fixed window; :func:`.epoxy.sample_colour`).
    """

    method: str = "gray"
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    sigma: float = 1.0
    n_classes: int = 5
    epoxy: EpoxyWindow | None = None
    epoxy_samples: tuple = ()

    def __post_init__(self):
        if self.method not in METHODS:
            raise ThinsegError(
                f"unknown method {self.method!r} (use {', '.join(METHODS)})"
            )
        object.__setattr__(
            self, "thresholds", check_thresholds(self.thresholds)
        )
        # (NaN and inf fail the comparison)
        if not (
            isinstance(self.sigma, numbers.Real) and 0 <= self.sigma <= 100
        ):
            raise ThinsegError(
                f"sigma must be in [0, 100], got {self.sigma!r}"
            )
        object.__setattr__(self, "n_classes", check_n_classes(self.n_classes))
        if self.epoxy is not None and not isinstance(self.epoxy, EpoxyWindow):
            raise ThinsegError(f"not an epoxy window: {self.epoxy!r}")
        samples = check_samples(self.epoxy_samples)
        if samples and self.epoxy is not None:
            raise ThinsegError(
                "give either epoxy samples or a fixed hue / saturation / "
                "value window, not both"
            )
        object.__setattr__(self, "epoxy_samples", samples)

    def n_bins(self) -> int:
        if self.method == "multiotsu":
            return self.n_classes
        return len(self.thresholds) + 1


def check_thresholds(thresholds: Sequence[float]) -> tuple[float, ...]:
    """Validate gray thresholds: strictly increasing values in (0, 1)."""
    try:
        values = tuple(float(t) for t in thresholds)
    except (TypeError, ValueError, OverflowError):
        raise ThinsegError(
            f"thresholds must be numbers, got {thresholds!r}"
        ) from None
    if not values:
        raise ThinsegError("give at least one threshold")
    if any(not 0.0 < t < 1.0 for t in values):
        raise ThinsegError(f"thresholds must lie in (0, 1), got {values}")
    if any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ThinsegError(f"thresholds must increase, got {values}")
    return values


def check_n_classes(n_classes) -> int:
    """Validate a multi-Otsu class count: a whole number 2..8 (the search
    grows as bins ** (classes - 1), and scikit-image crashes on 1)."""
    try:
        n = int(n_classes)
        whole = n == n_classes and not isinstance(n_classes, bool | str)
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not (whole and 2 <= n <= 8):
        raise ThinsegError(
            f"multi-Otsu classes must be a whole number 2..8, got "
            f"{n_classes!r}"
        )
    return n


def parse_thresholds(text: str) -> tuple[float, ...]:
    """``"0.25,0.4,0.6,0.75"`` -> validated tuple."""
    try:
        return check_thresholds(float(t) for t in text.split(",") if t.strip())
    except ValueError as exc:
        if isinstance(exc, ThinsegError):
            raise
        raise ThinsegError(
            f"thresholds must be numbers, got {text!r}"
        ) from None


def plane_kind(image: np.ndarray, rgb: bool | None = None) -> bool:
    """Whether the 2D image ``image`` is colour (checking its shape; a
    guess when ``rgb`` is None)."""
    rgb = is_rgb(image) if rgb is None else rgb
    if rgb and (image.ndim != 3 or image.shape[-1] not in (3, 4)):
        raise ThinsegError(
            f"expected a 2D colour image (H, W, 3 or 4), got shape "
            f"{image.shape}"
        )
    if not rgb and not (
        image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (1, 2))
    ):
        raise ThinsegError(
            f"expected a 2D image, got shape {image.shape}; label a stack "
            "plane by plane"
        )
    return rgb


def gray_level(image: np.ndarray, rgb: bool | None = None) -> np.ndarray:
    """Luminance in [0, 1] of one 2D image (gray, RGB or RGBA), float64."""
    from skimage.color import rgb2gray

    rgb = plane_kind(image, rgb)
    values = to_float(image)
    if rgb:
        return rgb2gray(values[..., :3])
    return values if values.ndim == 2 else values[..., 0]  # (gray + alpha)


def smooth(values: np.ndarray, sigma: float, channels: bool = False):
    """Gaussian smoothing as the seed did it (skimage defaults)."""
    if sigma <= 0:
        return values
    from skimage.filters import gaussian

    return gaussian(
        values,
        sigma=sigma,
        preserve_range=True,
        channel_axis=-1 if channels else None,
    )


def smoothed_gray(
    image: np.ndarray, sigma: float = 1.0, rgb: bool | None = None
) -> np.ndarray:
    """Steps 1-3 of the seed rule: float32 for uint8 images (computed by
    :mod:`.fast`), float64 for others."""
    image = np.asarray(image)
    rgb = plane_kind(image, rgb)
    if fast.applies(image):
        return fast.smoothed_gray(image, sigma, rgb)
    return smooth(gray_level(image, rgb), sigma)


def bin_gray(gray: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Step 4: ``1 + #{t : gray > t}`` as uint8 (ties go to the lower bin)."""
    t = check_thresholds(thresholds)
    # one comparison per threshold: 15x faster than searchsorted on
    # 4000 x 4000 images, which keeps the widget's preview live
    out = np.ones(gray.shape, np.uint8)
    for value in t:
        out += gray > value
    return out


def multiotsu_thresholds(gray: np.ndarray, n_classes: int = 5) -> tuple:
    """Thresholds splitting ``gray`` into ``n_classes`` by multi-Otsu."""
    from skimage.filters import threshold_multiotsu

    # the search is exhaustive over histogram bins (O(nbins**(n-1))): 256
    # bins take 3.5 s for five classes, 128 bins 0.2 s within 0.005 gray
    n_classes = check_n_classes(n_classes)
    if not np.size(gray):
        # scikit-image would read past its histogram
        raise ThinsegError("multi-Otsu failed: the image is empty")
    nbins = 256 if n_classes <= 3 else 128 if n_classes <= 5 else 48
    try:
        t = threshold_multiotsu(gray, classes=n_classes, nbins=nbins)
    except ValueError as exc:
        raise ThinsegError(f"multi-Otsu failed: {exc}") from None
    t = np.unique(np.clip(t, 1e-6, 1 - 1e-6))
    if len(t) != n_classes - 1:
        raise ThinsegError(
            f"multi-Otsu found no {n_classes} distinct gray levels in the "
            "image"
        )
    return tuple(float(v) for v in t)


def check_colour(image: np.ndarray) -> None:
    """Refuse what the blue-epoxy method cannot read: a non-colour image."""
    if not is_rgb(image) or image.ndim != 3:
        raise ThinsegError(
            "the blue-epoxy method needs a 2D colour (RGB) image, got shape "
            f"{image.shape}"
        )


def epoxy_mask(
    image: np.ndarray,
    sigma: float = 1.0,
    window: EpoxyWindow | None = EpoxyWindow(),
    samples=(),
) -> np.ndarray:
    """True where the (smoothed) colour of an RGB image is blue dye: in
    ``window``, or (``window`` None) the dye :func:`.epoxy.find_epoxy`
    finds, refined by ``samples``."""
    from skimage.color import rgb2hsv

    image = np.asarray(image)
    check_colour(image)
    if window is None:
        return find_epoxy(image, sigma, samples)[0]
    if fast.applies(image):
        return fast.epoxy_mask(image, sigma, window)
    rgb = np.clip(smooth(to_float(image)[..., :3], sigma, channels=True), 0, 1)
    hsv = rgb2hsv(rgb)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return (
        (h >= window.hue_min)
        & (h <= window.hue_max)
        & (s >= window.min_saturation)
        & (v >= window.min_value)
    )


def apply_epoxy(
    bins: np.ndarray,
    gray: np.ndarray,
    blue: np.ndarray,
    thresholds: Sequence[float],
) -> np.ndarray:
    """Give blue pixels the pore class and move non-blue pixels out of it.

    With the seed's five bins the pore class is bin 3; a non-blue pixel in
    that bin (a brown grain as bright as the dye) goes to the darker-grain
    class on its side of the bin's middle (2 below, 4 above). With any other
    number of bins the pore class is an extra class after the gray levels.
    """
    out = bins.copy()
    if len(thresholds) == len(DEFAULT_THRESHOLDS):
        pore = SEED.pore_id
        lo, hi = thresholds[pore - 2], thresholds[pore - 1]
        wrong = (bins == pore) & ~blue
        out[wrong] = np.where(gray[wrong] <= (lo + hi) / 2, pore - 1, pore + 1)
        out[blue] = pore
    else:
        out[blue] = len(thresholds) + 2
    return out


def label_scheme(params: AutoLabelParams = AutoLabelParams()) -> ClassScheme:
    """The class scheme of what :func:`autolabel` returns for ``params``.

    Five bins are the seed scheme; other counts get "gray level k" classes
    shaded dark to light (plus a pore class for the epoxy method).
    """
    n = params.n_bins()
    if n == 5:
        return SEED
    shades = np.linspace(40, 240, n)
    classes = [
        PetroClass(
            k + 1, f"gray level {k + 1}", rgb_to_hex([s, s * 0.9, s * 0.75])
        )
        for k, s in enumerate(shades)
    ]
    pores = ()
    if params.method == "epoxy":
        classes.append(
            PetroClass(
                n + 1, "blue-dye epoxy (visual porosity)", SEED[3].color
            )
        )
        pores = (n + 1,)
    return ClassScheme(f"gray{n}", tuple(classes), pores)


def autolabel(
    image: np.ndarray,
    params: AutoLabelParams | None = None,
    rgb: bool | None = None,
    **kwargs,
) -> np.ndarray:
    """Class ids (uint8, ``image``'s 2D shape) of one 2D image.

    Parameters
    ----------
    image : ndarray
        2D gray (H, W), or colour (H, W, 3|4); uint8, uint16 or float.
    params : AutoLabelParams, optional
        Method and settings; keyword arguments override its fields
        (``autolabel(img, method="epoxy", sigma=2)``).
    rgb : bool, optional
        Whether the last axis is colour (guessed when None).
    """
    params = replace(params or AutoLabelParams(), **kwargs)
    image = np.asarray(image)
    check_image(image)
    if fast.applies(image) and params.method != "multiotsu":
        # one pass, a strip at a time: same labels as the steps below
        rgb = plane_kind(image, rgb)
        window = blue = None
        if params.method == "epoxy":
            check_colour(image)
            window = params.epoxy
            if window is None:
                blue = epoxy_mask(
                    image, params.sigma, None, params.epoxy_samples
                )
        return fast.autolabel(
            image, params.thresholds, params.sigma, rgb, window, blue=blue
        )
    gray = smoothed_gray(image, params.sigma, rgb)
    thresholds = (
        multiotsu_thresholds(gray, params.n_classes)
        if params.method == "multiotsu"
        else params.thresholds
    )
    blue = None
    if params.method == "epoxy":
        check_colour(image)
        blue = epoxy_mask(
            image, params.sigma, params.epoxy, params.epoxy_samples
        )
    return labels_from_gray(gray, params, thresholds, blue)


def labels_from_gray(
    gray: np.ndarray,
    params: AutoLabelParams,
    thresholds: Sequence[float] | None = None,
    blue: np.ndarray | None = None,
) -> np.ndarray:
    """The last steps of :func:`autolabel`, from precomputed parts.

    ``gray`` is the smoothed gray level, ``thresholds`` the ones to bin at
    (``params.thresholds`` when None; the multi-Otsu ones for that method)
    and ``blue`` the epoxy mask (needed for the epoxy method). The widget
    caches these so a threshold change only re-bins.
    """
    thresholds = params.thresholds if thresholds is None else thresholds
    thresholds = check_thresholds(thresholds)
    epoxy = params.method == "epoxy"
    if epoxy:
        if blue is None:
            raise ThinsegError("the epoxy method needs the blue-dye mask")
        if np.shape(blue) != np.shape(gray):
            raise ThinsegError(
                f"blue-dye mask shape {np.shape(blue)} differs from the "
                f"image's {np.shape(gray)}"
            )
    fast_gray = isinstance(gray, np.ndarray) and gray.dtype == np.float32
    if fast_gray and gray.ndim == 2:
        # the uint8 path's gray: float32 comparisons, strip by strip (the
        # same labels as below, faster)
        mask = np.asarray(blue, bool) if epoxy else None
        return fast.bin_gray(gray, thresholds, mask)
    labels = bin_gray(gray, thresholds)
    if epoxy:
        labels = apply_epoxy(labels, gray, blue, thresholds)
    return labels


def autolabel_stack(
    stack: np.ndarray,
    params: AutoLabelParams | None = None,
    rgb: bool | None = None,
) -> Generator[Progress, None, np.ndarray]:
    """Label every plane of a (Z, H, W[, C]) stack; yields per plane."""
    stack = np.asarray(stack)
    rgb = is_rgb(stack) if rgb is None else rgb
    if stack.ndim != (4 if rgb else 3):
        raise ThinsegError(f"expected a 3D stack, got shape {stack.shape}")
    out = np.zeros(stack.shape[:3], np.uint8)
    for z in range(len(stack)):
        out[z] = autolabel(stack[z], params, rgb=rgb)
        yield Progress(z + 1, len(stack), f"plane {z + 1}")
    return out
