"""Petrographic colours for label images.

A class scheme's colours paint a label image (:func:`colorize`); "match the
thin section" recolours each class by the median RGB of its pixels in the
photo (:func:`match_colors`), so the labels look like the rock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from .errors import ThinsegError
from .imaging.convert import rgb8
from .imaging.files import check_labels, write_png
from .schemes import ClassScheme, rgb_to_hex


def colorize(labels: np.ndarray, scheme: ClassScheme) -> np.ndarray:
    """RGB uint8 picture of ``labels`` in the scheme's colours.

    Unlabelled (0) pixels and ids outside the scheme are black.
    """
    return scheme.lut()[check_labels(labels)]


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
