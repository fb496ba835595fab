"""Petrographic colours for label images.

A class scheme's colours paint a label image (:func:`colorize`); "match the
thin section" recolours each class by the median RGB of its pixels in the
photo (:func:`match_colors`), so the labels look like the rock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from .autolabel import to_float
from .classes import ClassScheme, rgb_to_hex
from .errors import ThinsegError
from .io import check_labels, write_png


def colorize(labels: np.ndarray, scheme: ClassScheme) -> np.ndarray:
    """RGB uint8 picture of ``labels`` in the scheme's colours.

    Unlabelled (0) pixels and ids outside the scheme are black.
    """
    return scheme.lut()[check_labels(labels)]


def rgb8(
    image: np.ndarray, value_range: tuple[float, float] | None = None
) -> np.ndarray:
    """Any gray/RGB/RGBA image as uint8 RGB (H, W, 3).

    ``value_range``: see :func:`~.autolabel.to_float` (tiles of a float
    image).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.round(to_float(image, value_range) * 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    elif image.shape[-1] in (1, 2):
        image = np.repeat(image[..., :1], 3, axis=-1)
    return image[..., :3]


def class_medians(
    labels: np.ndarray, image: np.ndarray, ids
) -> dict[int, tuple[int, int, int]]:
    """Median RGB of ``image`` over the pixels of each class in ``ids``.

    Classes with no pixels are left out.
    """
    labels = check_labels(labels)
    rgb = rgb8(image)
    if rgb.shape[:2] != labels.shape:
        raise ThinsegError(
            f"image {rgb.shape[:2]} and labels {labels.shape} differ in size"
        )
    present = [i for i in ids if np.any(labels == i)]
    if not present:
        return {}
    medians = np.stack(
        [
            ndimage.median(rgb[..., ch], labels=labels, index=present)
            for ch in range(3)
        ],
        axis=-1,
    )
    return {
        i: tuple(int(round(v)) for v in m)
        for i, m in zip(present, np.atleast_2d(medians), strict=True)
    }


def match_colors(
    labels: np.ndarray, image: np.ndarray, scheme: ClassScheme
) -> ClassScheme:
    """The scheme recoloured by each class's median colour in ``image``.

    Classes absent from ``labels`` keep their colour.
    """
    medians = class_medians(labels, image, scheme.ids)
    return scheme.recolored({i: rgb_to_hex(m) for i, m in medians.items()})


def save_colored(
    path: str | Path,
    labels: np.ndarray,
    scheme: ClassScheme,
    overwrite: bool = False,
) -> Path:
    """Write the coloured label picture as an RGB PNG."""
    return write_png(path, colorize(labels, scheme), overwrite)
