"""Tiles of a large image through a fixed-size network, put together
seamlessly; two ways.

* Margin tiles (:func:`predict_margin_tiles`), for a network rebuilt at a
  large tile size (:func:`auto_tile_shape`): tiles overlap by two margins
  of :data:`MARGIN` pixels, each keeps its core and drops the margin on
  every side where a neighbour takes over, so the network sees at least
  ``MARGIN`` pixels of context around every pixel it decides. Tiles start
  on multiples of 32 (the network's pooling grid), so inside the image the
  result is the network's on the whole image; network work is the tiles'
  pixels, about 1.1x the image's.
* Overlapping tiles at the network's training size (:func:`predict_tiles`,
  the classic way, for models that cannot be rebuilt): neighbours share
  ``overlap`` of a tile and are blended with a weight that fades towards
  the tile edges.

Tiles are reflect-padded where they pass the image's edge. Memory beyond
the input and the class map grows with the image width (one row of
tiles), not its area.

Nothing here knows the network: :mod:`.predict` passes a ``forward``
callable, so the tiling is tested with plain arrays.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np

from ..imaging.convert import data_range, views8
from ..imaging.lazy import read_region
from ..prefetch import map_ahead
from ..progress import Progress

FINALIZE_COLUMNS = 1024
"""Columns of a finished strip turned into classes at a time."""

GRID = 32
"""Tile sides and starts are multiples of this: the VGG-UNet pools by 16
and needs sides divisible by 32."""

MARGIN = 32
"""Pixels of context dropped at a tile's inner edges (a multiple of 16)."""

MAX_TILE_SIDE = 4096
"""The largest side a network is built at (as model configs allow)."""

MAX_AUTO_TILE_PIXELS = 1120 * 1120
"""Largest automatic tile: about 4 s of work on 2 CPU cores, so Stop and
the progress bar stay responsive; beyond about 512 x 512 pixels larger
tiles are no faster per pixel."""

TILE_BYTES_PER_PIXEL = 1024
"""Working memory of a float32 VGG-UNet forward pass per tile pixel
(measured: about 1 KB; half that in bfloat16)."""


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
    """uint8 RGB (or stacked views) of the (th, tw) tile at (y, x),
    reflect-padded where the image is smaller than the tile."""
    # one read of a lazy (zarr, dask) image's region
    rgb = views8(read_region(image[y : y + th, x : x + tw]), value_range)
    pad_h, pad_w = th - rgb.shape[0], tw - rgb.shape[1]
    if pad_h or pad_w:
        mode = "reflect" if min(rgb.shape[:2]) > 1 else "edge"
        rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
    return rgb


# -- test-time augmentation ---------------------------------------------------
Forward = Callable[[np.ndarray], np.ndarray]
"""Tiles ``(B, h, w, channels)`` uint8 -> class probabilities
``(B, h, w, n)``."""
DIHEDRAL = tuple((turns, flip) for turns in range(4) for flip in (False, True))
"""The 8 flips and quarter turns of a tile: (quarter turns, mirrored)."""


def dihedral_mean(
    forward_at: Callable[[tuple[int, int]], Forward],
) -> Forward:
    """A ``forward`` that averages the class probabilities of the 8 flips
    and quarter turns of each tile (test-time augmentation), each brought
    back to the tile's orientation first.

    ``forward_at(shape)`` gives the network ``forward`` for tiles of
    ``shape``: a quarter turn of a non-square tile needs the network at
    the transposed shape.
    """

    def forward(tiles: np.ndarray) -> np.ndarray:
        total = None
        for turns, flip in DIHEDRAL:
            view = tiles[:, :, ::-1] if flip else tiles
            view = np.ascontiguousarray(np.rot90(view, turns, axes=(1, 2)))
            probs = forward_at(view.shape[1:3])(view)
            probs = np.rot90(probs, -turns, axes=(1, 2))
            probs = probs[:, :, ::-1] if flip else probs
            total = (
                probs.astype(np.float32) if total is None else total + probs
            )
        return total / np.float32(len(DIHEDRAL))

    return forward


# -- margin tiles ------------------------------------------------------------
def _ceil_to(value: float, step: int) -> int:
    return int(-(-value // step) * step)


def max_tile_pixels() -> int:
    """Tile pixels for automatic tiles: :data:`MAX_AUTO_TILE_PIXELS`, or
    fewer where an eighth of the machine's memory would not hold one."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # Windows
        return MAX_AUTO_TILE_PIXELS
    budget = memory // 8 // TILE_BYTES_PER_PIXEL
    return int(max(256 * 256, min(MAX_AUTO_TILE_PIXELS, budget)))


def margin_for(tile_shape: tuple[int, int], margin: int = MARGIN) -> int:
    """The margin of ``tile_shape``: ``margin``, less for tiles too small
    to keep a core of 32 pixels between two margins."""
    room = (min(tile_shape) - GRID) // 2
    return max(0, min(margin, room // 16 * 16))


def margin_starts(size: int, tile: int, margin: int) -> list[int]:
    """Starts of tiles of ``tile`` pixels along ``size`` that keep
    ``margin`` pixels of context at their inner edges: every
    ``tile - 2 * margin`` pixels from 0, the last one reaching the end."""
    if size <= tile:
        return [0]
    stride = tile - 2 * margin
    return [k * stride for k in range(1 + -(-(size - tile) // stride))]


def _tile_for(size: int, n: int, margin: int) -> int:
    """The smallest side (multiple of :data:`GRID`) of which ``n`` margin
    tiles cover ``size`` pixels."""
    if n == 1:
        return _ceil_to(size, GRID)
    return _ceil_to(-(-(size + 2 * margin * (n - 1)) // n), GRID)


def auto_tile_shape(
    height: int,
    width: int,
    margin: int = MARGIN,
    max_pixels: int | None = None,
) -> tuple[int, int]:
    """The tile shape that covers a ``height`` x ``width`` image with the
    least network work (tile pixels) within ``max_pixels`` a tile
    (:func:`max_tile_pixels`): one tile no larger than the image needs
    when it fits, else the number of rows and columns of tiles whose
    sides waste least."""
    max_pixels = max_pixels or max_tile_pixels()

    def options(size):
        out = {}
        for n in range(1, size // (4 * GRID) + 2):
            side = _tile_for(size, n, margin)
            if side <= MAX_TILE_SIDE:
                out.setdefault(side, n)
            if side <= 4 * GRID:
                break
        return [(n, side) for side, n in out.items()]

    best = None
    for n_rows, th in options(height):
        for n_cols, tw in options(width):
            if th * tw > max_pixels and best is not None:
                continue
            # least work, then fewest tiles; over budget only as a last
            # resort (never for images of realistic shape)
            rank = (
                th * tw > max_pixels,
                n_rows * th * n_cols * tw,
                n_rows * n_cols,
            )
            if best is None or rank < best[0]:
                best = (rank, (th, tw))
    return best[1]


def tile_pixels(height, width, tile_shape, margin: int) -> int:
    """Pixels that margin tiles of ``tile_shape`` pass through the network
    for a ``height`` x ``width`` image (its network work)."""
    th, tw = tile_shape
    rows = margin_starts(height, th, margin)
    cols = margin_starts(width, tw, margin)
    return len(rows) * len(cols) * th * tw


@dataclass(frozen=True)
class MarginTile:
    """One margin tile: its origin ``(y, x)`` in the image, and the part of
    it that goes into the class map, ``core = (top, bottom, left, right)``
    in tile coordinates (the margin dropped where a neighbour takes
    over, and whatever lies past the image's edge)."""

    index: int
    y: int
    x: int
    core: tuple[int, int, int, int]

    @property
    def region(self) -> tuple[int, int, int, int]:
        """The core in image coordinates, ``(y0, y1, x0, x1)``."""
        top, bottom, left, right = self.core
        return self.y + top, self.y + bottom, self.x + left, self.x + right


def margin_tiles(
    height: int, width: int, tile_shape: tuple[int, int], margin: int
) -> list[MarginTile]:
    """The margin tiles of a ``height`` x ``width`` image, row by row;
    their cores cover the image exactly once."""
    th, tw = tile_shape
    rows = margin_starts(height, th, margin)
    cols = margin_starts(width, tw, margin)
    out = []
    for i, y in enumerate(rows):
        top = margin if i else 0
        bottom = min(th if i == len(rows) - 1 else th - margin, height - y)
        for j, x in enumerate(cols):
            left = margin if j else 0
            right = min(tw if j == len(cols) - 1 else tw - margin, width - x)
            out.append(MarginTile(len(out), y, x, (top, bottom, left, right)))
    return out


def margin_tile_probabilities(
    forward: Forward,
    image,
    tile: MarginTile,
    tile_shape: tuple[int, int],
    value_range=None,
) -> np.ndarray:
    """Class probabilities ``(core h, core w, n)`` of one margin tile's
    core."""
    rgb = tile_rgb(image, tile.y, tile.x, *tile_shape, value_range)
    top, bottom, left, right = tile.core
    return forward(rgb[None])[0][top:bottom, left:right]


def margin_tile_classes(
    forward: Forward,
    image,
    tile: MarginTile,
    tile_shape: tuple[int, int],
    value_range=None,
    confidence: bool = False,
    exclude_zero: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class map (and confidence) of one margin tile's core; ``image`` is
    any array that slices to numpy (numpy, zarr, dask)."""
    probs = margin_tile_probabilities(
        forward, image, tile, tile_shape, value_range
    )
    labels = class_map(probs, exclude_zero)
    return labels, confidence_map(probs) if confidence else None


def predict_margin_tiles(
    forward: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    tile_shape: tuple[int, int],
    margin: int = MARGIN,
    confidence: bool = False,
    exclude_zero: bool = False,
) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray | None]]:
    """Class map (and confidence) of ``image`` from margin tiles.

    ``forward`` takes one uint8 RGB tile ``(1, th, tw, 3)`` and returns its
    class probabilities at the tile's resolution ``(1, th, tw, n)`` (it
    runs in a worker thread, one tile ahead); each tile's core
    (:class:`MarginTile`) goes into the class map as it comes. Yields a
    :class:`Progress` per tile; returns ``(labels, confidence or None)``.
    """
    height, width = image.shape[:2]
    value_range = None if image.dtype == np.uint8 else data_range(image)
    tiles = margin_tiles(height, width, tile_shape, margin)
    labels = np.zeros((height, width), np.uint8)
    conf = np.zeros((height, width), np.float32) if confidence else None

    def classes(tile):
        return margin_tile_classes(
            forward,
            image,
            tile,
            tile_shape,
            value_range,
            confidence,
            exclude_zero,
        )

    # the network works on the next tile while this one's class map is
    # placed
    outputs = map_ahead(classes, tiles)
    try:
        for tile, (part, part_conf) in zip(tiles, outputs, strict=True):
            y0, y1, x0, x1 = tile.region
            labels[y0:y1, x0:x1] = part
            if conf is not None:
                conf[y0:y1, x0:x1] = part_conf
            k = tile.index + 1
            yield Progress(k, len(tiles), f"tile {k} of {len(tiles)}")
    finally:
        outputs.close()
    return labels, conf


# -- overlapping tiles at the training size ----------------------------------
def overlap_starts(size: int, tile: int, overlap: float) -> list[int]:
    """Starts of tiles sharing ``overlap`` of their side with the next."""
    return tile_starts(size, tile, max(1, int(tile * (1 - overlap))))


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
    value_range = None if image.dtype == np.uint8 else data_range(image)
    rows = overlap_starts(height, th, overlap)
    cols = overlap_starts(width, tw, overlap)
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
