"""Tiles of a large image through a fixed-size network, blended seamlessly.

The image is cut into overlapping tiles of the network's input size
(reflect-padded where smaller); each tile's class probabilities, brought to
full resolution by the caller's ``forward``, are blended with a weight that
fades towards the tile edges, so the result is seamless and has the image's
size. Tiles are processed one row of tiles at a time and finished rows are
turned into classes at once, so memory beyond the input and the class map
grows with the image width, not its area.

Nothing here knows the network: :mod:`.predict` passes a ``forward``
callable, so the tiling is tested with plain arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import numpy as np

from .imaging.convert import float_range, rgb8
from .progress import Progress

FINALIZE_COLUMNS = 1024
"""Columns of a finished strip turned into classes at a time."""


def class_map(probs: np.ndarray, exclude_zero: bool) -> np.ndarray:
    """uint8 class ids of class probabilities (last axis), leaving out
    class 0 when the model was trained with 0 as "unlabelled"."""
    if exclude_zero and probs.shape[-1] > 1:
        return (probs[..., 1:].argmax(-1) + 1).astype(np.uint8)
    return probs.argmax(-1).astype(np.uint8)


def confidence_map(probs: np.ndarray) -> np.ndarray:
    """``1 - normalised softmax entropy`` (float32, 0..1)."""
    p = np.clip(probs, 1e-12, 1.0)
    entropy = -(p * np.log(p)).sum(-1) / np.log(probs.shape[-1])
    return (1.0 - entropy).astype(np.float32)


def tile_starts(size: int, tile: int, stride: int) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels every ``stride`` pixels,
    the last one flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def blend_weight(height: int, width: int) -> np.ndarray:
    """Tent window, highest in the tile centre, never zero."""

    def ramp(n):
        r = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5)
        return r / r.max()

    w = np.outer(ramp(height), ramp(width))
    return (0.05 + w).astype(np.float32)


def tile_rgb(image, y, x, th, tw, value_range) -> np.ndarray:
    """uint8 RGB of the (th, tw) tile at (y, x), reflect-padded where the
    image is smaller than the tile."""
    rgb = rgb8(image[y : y + th, x : x + tw], value_range)
    pad_h, pad_w = th - rgb.shape[0], tw - rgb.shape[1]
    if pad_h or pad_w:
        mode = "reflect" if min(rgb.shape[:2]) > 1 else "edge"
        rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
    return rgb


def predict_tiles(
    forward: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile_shape: tuple[int, int],
    n_classes: int,
    overlap: float = 0.25,
    batch_size: int = 4,
    confidence: bool = False,
    exclude_zero: bool = False,
) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray | None]]:
    """Class map (and confidence) of ``image``, tile row by tile row.

    ``forward`` takes a batch of uint8 RGB tiles ``(B, th, tw, 3)`` and
    returns their class probabilities at the tiles' resolution,
    ``(B, th, tw, n_classes)``. Yields a :class:`Progress` per batch;
    returns ``(labels, confidence or None)``.

    Blended probabilities are kept only for the rows the current row of
    tiles covers: for a 20000 x 20000 scan and 6 classes the strip is 72 MB
    with the default model's 128-pixel tiles (0.57 GB with 1024-pixel
    ones), where whole-image probabilities would take 11 GB.
    """
    height, width = image.shape[:2]
    th, tw = tile_shape
    value_range = float_range(image) if image.dtype.kind == "f" else None
    rows = tile_starts(height, th, max(1, int(th * (1 - overlap))))
    cols = tile_starts(width, tw, max(1, int(tw * (1 - overlap))))
    window = blend_weight(th, tw)[..., None]
    labels = np.zeros((height, width), np.uint8)
    conf = np.zeros((height, width), np.float32) if confidence else None
    # probabilities of rows [top, top + th), with their blend weights
    acc = np.zeros((th, max(width, tw), n_classes), np.float32)
    weight_sum = np.zeros((th, max(width, tw), 1), np.float32)
    n_tiles = len(rows) * len(cols)
    n_batches = len(rows) * -(-len(cols) // batch_size)
    done_batches = done_tiles = 0
    for i, top in enumerate(rows):
        for b in range(0, len(cols), batch_size):
            chunk = cols[b : b + batch_size]
            batch = np.stack(
                [tile_rgb(image, top, x, th, tw, value_range) for x in chunk]
            )
            full = forward(batch)
            for x, p in zip(chunk, full, strict=True):
                acc[:, x : x + tw] += p * window
                weight_sum[:, x : x + tw] += window
            done_batches += 1
            done_tiles += len(chunk)
            yield Progress(
                done_batches,
                n_batches,
                f"tiles {done_tiles - len(chunk) + 1}-{done_tiles} of "
                f"{n_tiles}",
            )
        # rows above the next tile row are final; done in column blocks so
        # that no temporary as large as the strip is made
        bottom = rows[i + 1] if i + 1 < len(rows) else min(top + th, height)
        n = min(bottom, height) - top
        shift = bottom - top
        for x0 in range(0, acc.shape[1], FINALIZE_COLUMNS):
            x1 = x0 + FINALIZE_COLUMNS
            if x0 < width:
                xe = min(x1, width)
                probs = acc[:n, x0:xe] / weight_sum[:n, x0:xe]
                labels[top : top + n, x0:xe] = class_map(probs, exclude_zero)
                if conf is not None:
                    conf[top : top + n, x0:xe] = confidence_map(probs)
            if i + 1 < len(rows):
                for buf in (acc, weight_sum):
                    buf[: th - shift, x0:x1] = buf[shift:, x0:x1]
                    buf[th - shift :, x0:x1] = 0.0
    return labels, conf
