"""Where to correct next: the least certain places of a prediction.

A stroke helps most where the model is unsure or wrong. After a
prediction, :func:`next_places` ranks the places worth a stroke: where the
confidence (``1 - normalised softmax entropy``, from
:func:`napari_thinseg.inference.predict.predict_image` with
``confidence=True``) is
low and, when a second class map is given (the quick preview's, say),
where the two maps disagree. The uncertainty is smoothed at about a
brush's scale, so that a patch a stroke can cover outranks a lone noisy
pixel, and the places are kept apart, so that the user is not sent to the
same grain boundary twice.

The image's outer half brush is left out: a network sees least there (its
tiles are padded). The sandstone model's confidence on sandstone 113 is
0.47 on the outer pixel and 0.74 inside, whatever lies there; without the
cut, 9 of its 20 places sat on the outermost pixels.

Interactive-segmentation benches simulate a user who paints where the
prediction is most wrong; this is that user's guess of where that is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ThinsegError

BRUSH = 10
"""Brush diameter in pixels that the uncertainty is smoothed at (napari's
default Labels brush)."""
SPACING = 5
"""Places lie at least this many brush diameters apart by default."""
PLACES = 20
"""Places offered by default: a round of strokes, not a to-do list."""


def _spaced_maxima(smooth, n, radius, min_distance) -> list[tuple[int, int]]:
    """Up to ``n`` local maxima (within ``radius``) of ``smooth`` over
    0.001, highest first, each at least ``min_distance`` from those before
    it (ties: the first in row order)."""
    from scipy.ndimage import maximum_filter

    peaks = smooth == maximum_filter(smooth, size=2 * radius + 1)
    left = np.where(peaks & (smooth > 1e-3), smooth, -np.inf)
    # greedy, on the image: a maximum filter min_distance wide would also
    # drop a peak beside a higher one that was itself dropped, and a
    # candidate list is huge on a plateau
    reach = int(np.ceil(min_distance))
    yy, xx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    disk = yy**2 + xx**2 < min_distance**2
    kept = []
    while len(kept) < n:
        y, x = np.unravel_index(int(np.argmax(left)), left.shape)
        if left[y, x] == -np.inf:
            break  # a sure map, or every peak taken or too near one
        kept.append((int(y), int(x)))
        top, lft = y - reach, x - reach
        rows = slice(max(0, top), min(left.shape[0], y + reach + 1))
        cols = slice(max(0, lft), min(left.shape[1], x + reach + 1))
        near = disk[
            rows.start - top : rows.stop - top,
            cols.start - lft : cols.stop - lft,
        ]
        left[rows, cols][near] = -np.inf
    return kept


@dataclass(frozen=True)
class Place:
    """One place to correct: its pixel (``y``, ``x``), its ``score`` (the
    smoothed uncertainty there, 0..1, higher is less certain) and the
    class the prediction gives it (``class_id``)."""

    y: int
    x: int
    score: float
    class_id: int


def _plane(array, what: str, classes: bool = False) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ThinsegError(
            f"{what} must be a 2D map (rows x columns), got shape "
            f"{array.shape}"
        )
    if classes and not np.issubdtype(array.dtype, np.integer):
        raise ThinsegError(
            f"{what} must hold class ids (integers), got dtype {array.dtype}"
        )
    return array


def uncertainty(confidence, labels=None, other=None, disagreement=1.0):
    """The per-pixel uncertainty (float32, 0..1) before smoothing.

    Parameters
    ----------
    confidence : array_like
        Confidence map, H x W, 0..1 (1 is sure).
    labels, other : array_like, optional
        Two class maps of the same size; where both give a class (not 0)
        and they differ, the pixel counts as uncertain too.
    disagreement : float
        Weight of a disagreement against ``1 - confidence``.

    Returns
    -------
    numpy.ndarray
        ``((1 - confidence) + disagreement * differ) / (1 + disagreement)``,
        or ``1 - confidence`` without ``other``.
    """
    conf = _plane(confidence, "confidence")
    if not np.issubdtype(conf.dtype, np.floating):
        raise ThinsegError(
            f"confidence must be floats 0..1, got dtype {conf.dtype}"
        )
    if not np.isfinite(conf).all():
        raise ThinsegError("confidence has NaN or infinite values")
    # a little slack: float32 entropies round just outside 0..1
    if conf.min() < -1e-3 or conf.max() > 1 + 1e-3:
        raise ThinsegError(
            f"confidence must lie in 0..1, got {conf.min():.3g}.."
            f"{conf.max():.3g}"
        )
    unsure = 1.0 - np.clip(conf, 0.0, 1.0).astype(np.float32)
    if other is None:
        return unsure
    if labels is None:
        raise ThinsegError("a class map to disagree with needs the labels")
    if not np.isfinite(disagreement) or disagreement < 0:
        raise ThinsegError(
            f"disagreement weight must be 0 or more, got {disagreement!r}"
        )
    labels = _plane(labels, "labels", classes=True)
    other = _plane(other, "the class map to compare with", classes=True)
    if other.shape != conf.shape or labels.shape != conf.shape:
        raise ThinsegError(
            f"the class maps ({labels.shape}, {other.shape}) are not the "
            f"confidence map's size {conf.shape}"
        )
    # 0 is "no class" (unlabelled, not predicted): no opinion to differ
    differ = (labels != other) & (labels != 0) & (other != 0)
    return (unsure + np.float32(disagreement) * differ) / np.float32(
        1.0 + disagreement
    )


def next_places(
    confidence,
    labels,
    other=None,
    *,
    n: int = PLACES,
    brush: float = BRUSH,
    min_distance: float | None = None,
    disagreement: float = 1.0,
    edge: int | None = None,
) -> list[Place]:
    """The ``n`` least certain places of a prediction, worst first.

    Parameters
    ----------
    confidence : array_like
        The prediction's confidence, H x W floats 0..1
        (:attr:`napari_thinseg.inference.predict.Prediction.confidence`).
    labels : array_like
        The prediction's class map, H x W (the class of each place).
    other : array_like, optional
        A second class map of the image (the quick preview's); where it
        and ``labels`` disagree counts as uncertain too.
    n : int
        How many places at most.
    brush : float
        Brush diameter in pixels: the uncertainty is smoothed with a
        Gaussian of sigma ``brush / 2``.
    min_distance : float, optional
        Pixels between two places at least; default ``SPACING`` brush
        diameters.
    disagreement : float
        Weight of a disagreement with ``other`` against ``1 - confidence``.
    edge : int, optional
        Pixels at the image's edge where no place goes (default half a
        brush; none in an image too small to spare them).

    Returns
    -------
    list of Place
        Local maxima of the smoothed uncertainty, highest score first,
        each the highest left once those nearer than ``min_distance`` to
        a place already kept are dropped; fewer than ``n`` (none for a map
        that is sure everywhere) when the image holds fewer.

    Raises
    ------
    ThinsegError
        Maps that are not 2D, of different sizes, not 0..1, or bad
        ``n``, ``brush`` or ``min_distance``.
    """
    from scipy.ndimage import gaussian_filter

    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ThinsegError(f"number of places must be 1 or more, got {n!r}")
    if not np.isfinite(brush) or brush <= 0:
        raise ThinsegError(f"brush must be over 0 pixels, got {brush!r}")
    if min_distance is None:
        min_distance = max(1, round(SPACING * brush))
    if not np.isfinite(min_distance) or min_distance < 1:
        raise ThinsegError(
            f"min_distance must be 1 pixel or more, got {min_distance!r}"
        )
    if edge is None:
        edge = round(brush / 2)
    if isinstance(edge, bool) or not isinstance(edge, (int, np.integer)):
        raise ThinsegError(f"edge must be whole pixels, got {edge!r}")
    if edge < 0:
        raise ThinsegError(f"edge must be 0 pixels or more, got {edge!r}")
    labels = _plane(labels, "labels", classes=True)
    unsure = uncertainty(confidence, labels, other, disagreement)
    if labels.shape != unsure.shape:
        raise ThinsegError(
            f"labels {labels.shape} are not the confidence map's size "
            f"{unsure.shape}"
        )
    edge = int(edge) if min(unsure.shape) > 4 * edge else 0
    inner = unsure[
        edge : unsure.shape[0] - edge, edge : unsure.shape[1] - edge
    ]
    # a stroke covers about a brush: rank patches, not single pixels
    smooth = gaussian_filter(inner, sigma=brush / 2, mode="reflect")
    kept = _spaced_maxima(smooth, n, max(1, round(brush / 2)), min_distance)
    places = []
    for y, x in kept:
        score = float(smooth[y, x])
        y, x = y + edge, x + edge  # back to the image's pixels
        places.append(Place(y, x, score, int(labels[y, x])))
    return places
