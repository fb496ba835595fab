"""Image values in the forms the pipeline needs: float in [0, 1] and
uint8 RGB.

uint8 is divided by 255. Wider unsigned integers are divided by the
largest value of the bit depth the data uses (:func:`used_bits`: 8, 10,
12, 14 or 16 bits), since cameras write 12-bit data into 16-bit files:
values 0-4080 in a uint16 TIFF are 12-bit data (divided by 4095), not a
black 16-bit image. Signed integers are divided by their dtype's maximum;
float images are used as they are when inside [0, 1], else their range
is stretched onto [0, 1]; alpha is dropped. :func:`describe_scaling`
says in words what was applied where it is not the obvious.
"""

from __future__ import annotations

import numpy as np

from ..errors import ThinsegError


def is_rgb(image: np.ndarray) -> bool:
    """Guess napari-style whether the last axis holds colour channels."""
    return image.ndim >= 3 and image.shape[-1] in (3, 4)


def float_range(image: np.ndarray) -> tuple[float, float]:
    """The values :func:`to_float` maps onto [0, 1] for a float image:
    (0, 1) when they lie within it, else their minimum and maximum."""
    image = np.asarray(image)
    if not image.size:
        return 0.0, 1.0
    lo, hi = float(np.min(image)), float(np.max(image))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ThinsegError("image contains NaN or infinite values")
    if lo < 0.0 or hi > 1.0:
        return lo, hi
    return 0.0, 1.0


BIT_DEPTHS = (8, 10, 12, 14, 16, 24, 32, 64)
"""The bit depths :func:`used_bits` chooses from."""


def used_bits(image: np.ndarray) -> int:
    """The bit depth an unsigned-integer image's values use: the smallest
    of :data:`BIT_DEPTHS` that holds its largest value (its dtype's for
    other images)."""
    image = np.asarray(image)
    full = 8 * image.dtype.itemsize
    if image.dtype.kind != "u" or full == 8 or not image.size:
        return full
    top = int(np.max(image))
    return next(b for b in BIT_DEPTHS if b >= full or top < 2**b)


def data_range(image: np.ndarray) -> tuple[float, float]:
    """The values mapped onto 0 and 1: ``(0, 2**used_bits - 1)`` for
    unsigned integers, ``(0, dtype max)`` for signed ones,
    :func:`float_range` for floats. Computed on the whole image and given
    to :func:`to_float` for its tiles, so that all tiles scale alike."""
    image = np.asarray(image)
    if image.dtype.kind == "u":
        return 0.0, float(2 ** used_bits(image) - 1)
    if image.dtype.kind == "i":
        return 0.0, float(np.iinfo(image.dtype).max)
    if image.dtype.kind == "b":
        return 0.0, 1.0
    return float_range(image)


def describe_scaling(image: np.ndarray) -> str | None:
    """What :func:`to_float` does to ``image`` in words, where it is not
    plain 8-bit or full-range data: ``"12-bit data in a 16-bit image:
    0..4095 shown as 0..255"``; None otherwise."""
    image = np.asarray(image)
    kind, full = image.dtype.kind, 8 * image.dtype.itemsize
    if kind == "u" and full > 8:
        bits = used_bits(image)
        if bits < full:
            return (
                f"{bits}-bit data in a {full}-bit image: "
                f"0..{2**bits - 1} scaled to 0..255"
            )
    elif kind == "f":
        lo, hi = float_range(image)
        if (lo, hi) != (0.0, 1.0):
            return f"float image of values {lo:g}..{hi:g}: stretched to 0..255"
    return None


def to_float(
    image: np.ndarray, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Image values as float64 in [0, 1] (see the module docstring).

    ``value_range`` is the whole image's :func:`data_range`, given when
    ``image`` is a tile of a larger image so that all tiles scale alike.
    """
    image = np.asarray(image)
    if image.dtype.kind == "b":
        return image.astype(np.float64)
    if image.dtype.kind in "ui":
        # integers: the whole image's data_range when given (a usable one)
        top = value_range[1] if value_range is not None else 0.0
        if not (np.isfinite(top) and top > 0):
            top = data_range(image)[1]
        out = image.astype(np.float64) / top
        return np.clip(out, 0.0, 1.0)
    # floats outside [0, 1] carry no scale of their own (0..255 floats,
    # calibrated intensities): their range is stretched onto [0, 1]
    lo, hi = float_range(image) if value_range is None else value_range
    out = image.astype(np.float64)
    if (lo, hi) != (0.0, 1.0):
        # halves first: hi - lo overflows for ranges wider than 1.8e308
        out = (
            (out / 2 - lo / 2) / (hi / 2 - lo / 2)
            if hi > lo
            else np.zeros_like(out)
        )
    return np.clip(out, 0.0, 1.0) if value_range is not None else out


def rgb8(
    image: np.ndarray, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Any gray/RGB/RGBA image as uint8 RGB (H, W, 3).

    ``value_range``: see :func:`to_float` (tiles of a float image).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.round(to_float(image, value_range) * 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    elif image.shape[-1] in (1, 2):
        image = np.repeat(image[..., :1], 3, axis=-1)
    return image[..., :3]


VIEW_NAMES = ("plane-polarised (PPL)", "crossed-polarised (XPL)")
"""What the 3-channel views of a multi-view model input are, in order."""
MAX_VIEWS = 4


def n_views(image: np.ndarray) -> int:
    """How many co-registered RGB views an array holds: 2 for a plane +
    crossed polars stack ``(H, W, 6)``, 1 for any gray/RGB/RGBA image."""
    image = np.asarray(image)
    channels = image.shape[-1] if image.ndim == 3 else 1
    if channels > 4 and channels % 3 == 0 and channels // 3 <= MAX_VIEWS:
        return channels // 3
    return 1


def views8(
    image: np.ndarray, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """An image as the network's uint8 input: :func:`rgb8` of a one-view
    image, each view's :func:`rgb8` side by side for a stack of views
    (``(H, W, 3 * views)``)."""
    views = n_views(image)
    if views == 1:
        return rgb8(image, value_range)
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image
    return np.round(to_float(image, value_range) * 255).astype(np.uint8)


def stack_views(*images: np.ndarray) -> np.ndarray:
    """Co-registered photos of one field (plane polars first, then crossed
    polars) as one ``(H, W, 3 * n)`` uint8 model input.

    Raises
    ------
    ThinsegError
        The photos differ in size.
    """
    if not images:
        raise ThinsegError("no images to stack")
    rgbs = [rgb8(im) for im in images]
    shapes = {im.shape[:2] for im in rgbs}
    if len(shapes) > 1:
        sizes = " and ".join(f"{h}x{w}" for h, w in sorted(shapes))
        raise ThinsegError(
            f"the plane- and crossed-polarised images must be the same "
            f"field, pixel to pixel: they are {sizes}"
        )
    return rgbs[0] if len(rgbs) == 1 else np.concatenate(rgbs, axis=-1)


def describe_views(image: np.ndarray | int) -> str:
    """What an image (or a model input of that many channels) is:
    ``"plane + crossed polars (6 channels)"``, ``"an RGB photo"``..."""
    if isinstance(image, int):
        image = np.zeros((1, 1, image), np.uint8)
    views = n_views(image)
    if views == 1:
        return "an RGB photo"
    if views == 2:
        return "plane + crossed polars (6 channels)"
    return f"{views} stacked photos ({3 * views} channels)"
