"""Resizing images and class maps as keras-segmentation (OpenCV) does, so
that the same image gives the same network input without OpenCV."""

from __future__ import annotations

import numpy as np


def _linear_taps(n_out: int, n_in: int):
    """Source index and 11-bit fixed-point weights per output pixel, as
    OpenCV's INTER_LINEAR computes them (half-pixel centres, clamped)."""
    scale = n_in / n_out
    f = ((np.arange(n_out) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    frac = f - i0
    low, high = i0 < 0, i0 >= n_in - 1
    frac[low | high] = 0
    i0 = np.clip(i0, 0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = np.round(frac * 2048).astype(np.int64)
    w0 = np.round((1 - frac) * 2048).astype(np.int64)
    return i0, i1, w0, w1


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 image resized as OpenCV's ``cv2.resize(..., INTER_LINEAR)``.

    keras-segmentation feeds its network through cv2.resize; this repeats
    its fixed-point arithmetic (11-bit weights, rows first, then the
    vector kernel's rounding of the column pass) so that the same image
    gives the same network input, without OpenCV as a dependency. An exact
    2x reduction is an average of 2 x 2 blocks, as OpenCV switches to
    INTER_AREA there.
    """
    src = np.asarray(image)
    squeeze = src.ndim == 2
    if squeeze:
        src = src[..., None]
    h, w = src.shape[:2]
    if (h, w) == (height, width):
        out = src.copy()
    elif h == 2 * height and w == 2 * width:
        blocks = src.reshape(height, 2, width, 2, -1).astype(np.int64)
        out = ((blocks.sum((1, 3)) + 2) >> 2).astype(np.uint8)
    else:
        x0, x1, a0, a1 = _linear_taps(width, w)
        y0, y1, b0, b1 = _linear_taps(height, h)
        s = src.astype(np.int64)
        rows = s[:, x0] * a0[None, :, None] + s[:, x1] * a1[None, :, None]
        r0, r1 = rows[y0] >> 4, rows[y1] >> 4
        out = (
            ((b0[:, None, None] * r0) >> 16)
            + ((b1[:, None, None] * r1) >> 16)
            + 2
        ) >> 2
        out = np.clip(out, 0, 255).astype(np.uint8)
    return out[..., 0] if squeeze else out


def resize_nearest(
    labels: np.ndarray, height: int, width: int, centred: bool = False
) -> np.ndarray:
    """Class map resized by nearest neighbour.

    By default like OpenCV's INTER_NEAREST (``floor(i * scale)``), which
    keras-segmentation applies to annotations; ``centred`` samples at pixel
    centres (``floor((i + 0.5) * scale)``), aligned with bilinear image
    resizing, for augmentation.
    """
    shift = 0.5 if centred else 0.0

    def index(n_out, n_in):
        i = np.floor((np.arange(n_out) + shift) * n_in / n_out).astype(int)
        return np.minimum(i, n_in - 1)

    rows = index(height, labels.shape[0])
    cols = index(width, labels.shape[1])
    return labels[rows[:, None], cols[None, :]]
