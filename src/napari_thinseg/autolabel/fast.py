"""The auto-label rule on uint8 images: fast, and in little memory.

The same rule as :mod:`.rule` (``docs/autolabel.md``, "The rule,
exactly"), computed strip by strip so that no float copy of the whole
image is ever made:

- **gray**: rgb2gray's weights 0.2125, 0.7154, 0.0721 are whole numbers of
  1e-4, so ``2125 R + 7154 G + 721 B`` (``10000 v`` for a gray image) is
  the gray level in units of 1 / (255 * 10000), exact in float32;
- **blur**: the separable Gaussian of ``skimage.filters.gaussian`` (scipy's
  kernel, ``truncate=4``, ``mode="nearest"``), each 1D pass one matrix
  product with a banded kernel matrix (BLAS) on a strip of rows:
  horizontally on blocks of columns, vertically on a ring of rows. The gray
  is blurred in float64 and rounded to float32 once, so a flat patch keeps
  its exact level and a tie with a threshold stays a tie (lower class);
  the colour channels of the blue-dye test are blurred in float32;
- **epoxy**: the hue / saturation / value window as inequalities on the
  maximum, minimum and channel differences of the smoothed RGB;
- **bins**: float32 comparisons with the thresholds rounded to float32.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..schemes import SEED

TRUNCATE = 4.0
"""Kernel radius in sigmas (skimage.filters.gaussian's default)."""
GRAY_WEIGHTS = (2125.0, 7154.0, 721.0)
"""rgb2gray's R, G, B weights in units of 1e-4."""
GRAY_UNIT = 255 * 10000
"""Gray level 1.0 in the exact units of :data:`GRAY_WEIGHTS`."""
STRIP_ROWS = 16
"""Rows per strip: few enough for the strip to stay in cache, enough for
BLAS to be efficient."""
BLOCK = 16
"""Columns per block of the horizontal pass (at least twice the radius)."""
BLAS_SIZE = 1 << 18
"""Rows x columns x depth of the largest matrix product: OpenBLAS runs
smaller ones on one thread."""
SMALL_IMAGE = 1 << 18
"""Pixels below which one thread does all the work."""
THREADS: int | None = None
"""Threads for one image (None: one per core, at most 8)."""


def applies(image: np.ndarray) -> bool:
    """Whether the uint8 path computes ``image``'s labels."""
    return image.dtype == np.uint8 and image.ndim in (2, 3)


def gaussian_kernel(sigma: float) -> np.ndarray:
    """scipy.ndimage's 1D Gaussian weights (radius ``int(4 sigma + 0.5)``)."""
    sigma = float(sigma)
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x**2)
    return phi / phi.sum()


class StripBlur:
    """Separable Gaussian of image planes, one strip of rows at a time.

    ``planes(rows, out)`` writes the planes of uint8 image rows
    (``(n, W[, C])``) into ``out`` (``(n, n_planes, W)``, ``dtype``); the
    blur of those planes times ``scale`` comes out strip by strip from
    :meth:`strips`. Rows outside the image repeat its edge rows (mode
    ``nearest``), as columns do.
    """

    def __init__(self, planes, n_planes, width, sigma, dtype, scale=1.0):
        kernel = gaussian_kernel(sigma)
        self.planes, self.dtype = planes, np.dtype(dtype)
        self.radius = r = kernel.size // 2
        self.width, self.n_planes = width, n_planes
        self.rows = rows = max(STRIP_ROWS, r)
        self.ring_rows = rows + 2 * r
        self.block = block = -(-max(BLOCK, 2 * r) // 8) * 8
        # blocks in groups of at most `per` a product (see below)
        per = max(1, BLAS_SIZE // ((block + 2 * r) * block))
        self.groups = _groups(-(-width // block), per)
        self.span = span = self.groups[0] * self.groups[1] * block
        # columns: out[x] = sum_j padded[x + j] kernel[j], per block
        self.h_kernel = np.zeros((block + 2 * r, block), self.dtype)
        for i in range(block):
            self.h_kernel[i : i + 2 * r + 1, i] = kernel
        # rows: output row i of a strip from ring rows i .. i + 2r
        self.v_kernel = np.zeros((rows, self.ring_rows))
        for i in range(rows):
            self.v_kernel[i, i : i + 2 * r + 1] = kernel * scale
        self._rolled: dict[int, np.ndarray] = {}
        # many small products rather than one: OpenBLAS keeps each on one
        # thread (waking its threads for every strip costs more than it
        # gains), so strips can run in threads of our own
        self.chunk = max(64, BLAS_SIZE // (rows * self.ring_rows) // 64 * 64)
        total = -(-n_planes * span // self.chunk) * self.chunk
        # ring row p holds (horizontally blurred) image row y, p = y mod L;
        # zeros: rows not loaded yet meet zero weights, and 0 * NaN is NaN
        self.ring = np.zeros((self.ring_rows, total), self.dtype)
        self.padded = np.empty((rows, n_planes, span + 2 * r), self.dtype)
        self.unfolded = np.empty(
            (rows, n_planes, *self.groups, block + 2 * r), self.dtype
        )
        self.out = np.empty((rows, total), self.dtype)

    def _load(self, image: np.ndarray, start: int, stop: int) -> None:
        """Blur rows ``start .. stop - 1`` across and put them in the ring
        (rows outside the image are its edge rows)."""
        r, w, height = self.radius, self.width, image.shape[0]
        item = self.dtype.itemsize
        while start < stop:
            pos = start % self.ring_rows
            n = min(stop - start, self.rows, self.ring_rows - pos)
            if start >= 0 and start + n <= height:
                source = image[start : start + n]
            else:
                rows = np.clip(np.arange(start, start + n), 0, height - 1)
                source = image[rows]
            padded = self.padded[:n]
            self.planes(source, padded[..., r : r + w])
            padded[..., :r] = padded[..., r : r + 1]
            padded[..., r + w :] = padded[..., r + w - 1 : r + w]
            unfolded = self.unfolded[:n]
            step = self.block * item
            windows = as_strided(
                padded,
                unfolded.shape,
                padded.strides[:2] + (self.groups[1] * step, step, item),
            )
            np.copyto(unfolded, windows)
            ring = self.ring[pos : pos + n, : self.n_planes * self.span]
            shape = unfolded.shape[:-1] + (self.block,)
            np.matmul(unfolded, self.h_kernel, out=ring.reshape(shape))
            start += n

    def _vertical(self, top: int) -> np.ndarray:
        """The row kernel for ring rows starting at image row ``top``."""
        shift = top % self.ring_rows
        if shift not in self._rolled:
            rolled = np.roll(self.v_kernel, shift, axis=1)
            self._rolled[shift] = rolled.astype(self.dtype)
        return self._rolled[shift]

    def strips(self, image: np.ndarray, start: int = 0, stop=None):
        """Yield ``(y0, blurred)`` for rows ``start .. stop - 1`` in strips;
        ``blurred`` (``(n, n_planes, W)``) is reused by the next strip."""
        stop = image.shape[0] if stop is None else stop
        r, chunk = self.radius, self.chunk
        loaded = start - r
        ring = self.ring.reshape(self.ring_rows, -1, chunk).transpose(1, 0, 2)
        for y0 in range(start, stop, self.rows):
            n = min(self.rows, stop - y0)
            self._load(image, loaded, y0 + n + r)
            loaded = y0 + n + r
            out = self.out[:n]
            np.matmul(
                self._vertical(y0 - r)[:n],
                ring,
                out=out.reshape(n, -1, chunk).transpose(1, 0, 2),
            )
            planes = out[:, : self.n_planes * self.span]
            yield y0, planes.reshape(n, self.n_planes, -1)[..., : self.width]


def _groups(count: int, per: int) -> tuple[int, int]:
    """``count`` items (rounded up) as (groups, items per group), at most
    ``per`` a group."""
    if count <= per:
        return 1, count
    return -(-count // per), per


# -- planes: uint8 rows -> what is blurred ------------------------------------
def _block_weights(channels: int, weights, pixels: int = 4) -> np.ndarray:
    """(pixels * channels, pixels) matrix: weighted channel sums of
    ``pixels`` interleaved pixels in one product."""
    out = np.zeros((pixels * channels, pixels), np.float32)
    for p in range(pixels):
        out[p * channels : p * channels + len(weights), p] = weights
    return out


class GrayPlanes:
    """Exact gray levels (units of 1 / :data:`GRAY_UNIT`) of uint8 rows."""

    def __init__(self, image: np.ndarray, rgb: bool):
        self.rgb = rgb
        self.channels = image.shape[2] if image.ndim == 3 else 1
        if rgb:
            self.weights = _block_weights(self.channels, GRAY_WEIGHTS)
        self._values = self._gray = np.empty((0, 0), np.float32)

    def units(self, rows: np.ndarray) -> np.ndarray:
        """Gray levels of ``rows`` as exact float32 whole numbers."""
        n, w = rows.shape[:2]
        if not self.rgb:
            plane = rows if rows.ndim == 2 else rows[..., 0]
            return np.multiply(plane, np.float32(10000), dtype=np.float32)
        # four pixels (4 C channels) to four gray levels per product row,
        # small products (see StripBlur on OpenBLAS threads)
        depth = 4 * self.channels
        groups = _groups(-(-w // 4), BLAS_SIZE // (depth * 4))
        if len(self._values) < n or self._values.shape[1:3] != groups:
            self._values = np.zeros((n, *groups, depth), np.float32)
            self._gray = np.empty((n, *groups, 4), np.float32)
        values, gray = self._values[:n], self._gray[:n]
        np.copyto(values.reshape(n, -1, self.channels)[:, :w], rows)
        np.matmul(values, self.weights, out=gray)
        return gray.reshape(n, -1)[:, :w]

    def __call__(self, rows: np.ndarray, out: np.ndarray) -> None:
        out[:, 0] = self.units(rows)


def colour_planes(rows: np.ndarray, out: np.ndarray) -> None:
    """R, G, B planes (0..255) of RGB(A) uint8 rows."""
    np.copyto(out, rows[..., :3].transpose(0, 2, 1))


def strip_rows(sigma: float) -> int:
    """Rows per strip for ``sigma`` (all strips of an image start at
    multiples of it, threads or not, so the results never depend on how
    the work was split)."""
    return max(STRIP_ROWS, int(TRUNCATE * float(sigma) + 0.5))


def in_threads(work, image: np.ndarray, sigma: float, threads=None) -> None:
    """``work(start, stop)`` on row ranges of ``image`` that together cover
    it, in up to ``threads`` threads (None: :data:`THREADS`, 1 for small
    images); numpy and BLAS release the GIL."""
    height = image.shape[0]
    threads = THREADS if threads is None else threads
    if threads is None:
        small = image.shape[0] * image.shape[1] < SMALL_IMAGE
        threads = 1 if small else min(_cores(), 8)
    step = strip_rows(sigma)
    strips = -(-height // step)
    per = -(-strips // max(1, min(int(threads), strips)))
    ranges = [
        (a * step, min(height, (a + per) * step))
        for a in range(0, strips, per)
    ]
    if len(ranges) <= 1:
        work(0, height)
        return
    with ThreadPoolExecutor(len(ranges)) as pool:
        for done in [pool.submit(work, a, b) for a, b in ranges]:
            done.result()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# -- gray levels --------------------------------------------------------------
def gray_strips(
    image: np.ndarray, sigma: float, rgb: bool, start=0, stop=None
):
    """Yield ``(y0, gray)``: the smoothed gray level in [0, 1] (float32) of
    strips of rows ``start .. stop - 1`` of a uint8 image."""
    stop = image.shape[0] if stop is None else stop
    planes = GrayPlanes(image, rgb)
    if int(TRUNCATE * float(sigma) + 0.5) == 0:
        unit = np.float32(GRAY_UNIT)
        for y0 in range(start, stop, STRIP_ROWS):
            units = planes.units(image[y0 : min(y0 + STRIP_ROWS, stop)])
            # a division of whole numbers: correctly rounded, ties exact
            yield y0, np.divide(units, unit, out=units)
        return
    blur = StripBlur(
        planes, 1, image.shape[1], sigma, np.float64, 1.0 / GRAY_UNIT
    )
    gray = np.empty((blur.rows, image.shape[1]), np.float32)
    for y0, strip in blur.strips(image, start, stop):
        out = gray[: len(strip)]
        np.copyto(out, strip[:, 0])
        yield y0, out


def smoothed_gray(image, sigma: float, rgb: bool, threads=None) -> np.ndarray:
    """Steps 1-3 of the rule for a uint8 image: float32 (H, W)."""
    out = np.empty(image.shape[:2], np.float32)

    def work(start, stop):
        for y0, gray in gray_strips(image, sigma, rgb, start, stop):
            out[y0 : y0 + len(gray)] = gray

    in_threads(work, image, sigma, threads)
    return out


# -- blue dye -----------------------------------------------------------------
def hue_intervals(window) -> list[tuple[int, float, float, bool]]:
    """The hue window as ``(sector, low, high, below)``: a pixel whose
    maximum is channel ``sector`` (0 red, 1 green, 2 blue) has hue in the
    window when ``low <= q <= high`` (``q < high`` if ``below``), ``q`` =
    (next channel - previous channel) / (max - min) in [-1, 1] (rgb2hsv:
    hue = (2 sector + q) / 6 mod 1)."""
    lo, hi = 6 * window.hue_min, 6 * window.hue_max
    pieces = [
        (0, max(lo, 0.0), min(hi, 1.0), False),  # red, hue q / 6
        (0, max(lo - 6, -1.0), min(hi - 6, 0.0), hi >= 6),  # 1 + q / 6
        (1, max(lo - 2, -1.0), min(hi - 2, 1.0), False),
        (2, max(lo - 4, -1.0), min(hi - 4, 1.0), False),
    ]
    return [p for p in pieces if p[1] < p[2] or (p[1] == p[2] and not p[3])]


class BlueTest:
    """The blue-dye window test of float32 R, G, B planes (0..255).

    rgb2hsv's value is the maximum, saturation (max - min) / max, hue the
    difference of the two other channels over (max - min), offset by which
    channel is the maximum; grays (max == min) have hue and saturation 0.
    Where two channels tie for the maximum both sectors' formulas give the
    same hue, so each sector is tested on its own.
    """

    def __init__(self, window, shape):
        self.window = window
        self.pieces = hue_intervals(window)
        self.min_value = np.float32(window.min_value * 255)
        self.min_saturation = np.float32(window.min_saturation)
        sat, hue = window.min_saturation, window.hue_min
        # grays (hue 0) are in a hue window only if it starts at 0; a
        # saturation and a value above 0 keep them (and black) out anyway
        self.gray_ok = sat == 0 and hue == 0
        self.test_spread = not self.gray_ok and not (
            sat > 0 and window.min_value > 0
        )
        self.high, self.spread, self.diff, self.scaled = (
            np.empty(shape, np.float32) for _ in range(4)
        )
        self.ok, self.sector, self.passed = (
            np.empty(shape, bool) for _ in range(3)
        )

    def __call__(self, rgb: np.ndarray, out: np.ndarray) -> np.ndarray:
        n = len(rgb)
        red, green, blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        high, spread = self.high[:n], self.spread[:n]
        diff, scaled = self.diff[:n], self.scaled[:n]
        ok, sector, passed = self.ok[:n], self.sector[:n], self.passed[:n]
        np.maximum(red, green, out=high)
        np.maximum(high, blue, out=high)
        np.minimum(red, green, out=spread)
        np.minimum(spread, blue, out=spread)
        np.subtract(high, spread, out=spread)
        np.multiply(high, self.min_saturation, out=scaled)
        np.greater_equal(spread, scaled, out=ok)
        if self.min_value > 0:
            ok &= np.greater_equal(high, self.min_value, out=passed)
        if self.test_spread:
            ok &= np.greater(spread, 0, out=passed)
        hue_ok = out
        hue_ok[...] = False
        channels = (red, green, blue)
        for index, low, top, below in self.pieces:
            np.equal(channels[index], high, out=sector)
            ahead, behind = channels[(index + 1) % 3], channels[index - 1]
            np.subtract(ahead, behind, out=diff)
            if low > -1:
                np.multiply(spread, np.float32(low), out=scaled)
                sector &= np.greater_equal(diff, scaled, out=passed)
            if below:  # (top is 0)
                sector &= np.less(diff, 0, out=passed)
            elif top < 1:
                np.multiply(spread, np.float32(top), out=scaled)
                sector &= np.less_equal(diff, scaled, out=passed)
            hue_ok |= sector
        if self.gray_ok:
            hue_ok |= np.equal(spread, 0, out=passed)
        out &= ok
        return out


def blue_strips(image: np.ndarray, sigma: float, window, start=0, stop=None):
    """Yield ``(y0, mask)``: where strips of rows ``start .. stop - 1`` of a
    uint8 RGB(A) image are blue dye after smoothing."""
    stop = image.shape[0] if stop is None else stop
    rows = strip_rows(sigma)
    test = BlueTest(window, (rows, image.shape[1]))
    mask = np.empty((rows, image.shape[1]), bool)
    if int(TRUNCATE * float(sigma) + 0.5) == 0:
        planes = np.empty((rows, 3, image.shape[1]), np.float32)
        for y0 in range(start, stop, rows):
            source = image[y0 : min(y0 + rows, stop)]
            n = len(source)
            colour_planes(source, planes[:n])
            yield y0, test(planes[:n], mask[:n])
        return
    blur = StripBlur(colour_planes, 3, image.shape[1], sigma, np.float32)
    for y0, strip in blur.strips(image, start, stop):
        yield y0, test(strip, mask[: len(strip)])


def epoxy_mask(image, sigma: float, window, threads=None) -> np.ndarray:
    """Where a uint8 RGB(A) image's smoothed colour is blue dye."""
    out = np.empty(image.shape[:2], bool)

    def work(start, stop):
        for y0, mask in blue_strips(image, sigma, window, start, stop):
            out[y0 : y0 + len(mask)] = mask

    in_threads(work, image, sigma, threads)
    return out


# -- bins ---------------------------------------------------------------------
def cutoffs(thresholds, dtype=np.float32) -> list:
    """Thresholds in the gray's precision: a gray level equal to one (a
    tie) stays equal, and goes to the lower class."""
    return [np.dtype(dtype).type(t) for t in thresholds]


def bin_strip(gray, thresholds, blue=None, out=None) -> np.ndarray:
    """``1 + #{t : gray > t}`` as uint8; with ``blue`` (the epoxy method)
    blue pixels get the pore class and non-blue ones leave it, as
    :func:`~napari_thinseg.autolabel.rule.apply_epoxy` does."""
    levels = cutoffs(thresholds, gray.dtype)
    out = np.empty(gray.shape, np.uint8) if out is None else out
    above = np.empty(gray.shape, bool)
    pore = len(levels) + 2
    if blue is not None and len(levels) == 4:
        # non-blue pixels of the pore bin go below or above its middle:
        # its two thresholds counted as two at the middle
        pore = SEED.pore_id
        middle = (thresholds[pore - 2] + thresholds[pore - 1]) / 2
        levels[pore - 2] = levels[pore - 1] = gray.dtype.type(middle)
    # bools as uint8 views: same-type adds, no casts
    np.greater(gray, levels[0], out=out.view(bool))
    for level in levels[1:]:
        np.greater(gray, level, out=above)
        np.add(out, above.view(np.uint8), out=out)
    out += 1
    if blue is not None:
        np.copyto(out, pore, where=blue)
    return out


def bin_gray(gray, thresholds, blue=None) -> np.ndarray:
    """:func:`bin_strip` of a whole float32 gray image, strip by strip."""
    out = np.empty(gray.shape, np.uint8)
    step = max(1, (1 << 16) // max(1, gray.shape[-1]))
    for y0 in range(0, gray.shape[0], step):
        rows = slice(y0, y0 + step)
        part = None if blue is None else blue[rows]
        bin_strip(gray[rows], thresholds, part, out[rows])
    return out


def autolabel(
    image, thresholds, sigma, rgb, window=None, threads=None, blue=None
):
    """Labels (uint8) of a uint8 image in one pass over it: the gray
    method, or the epoxy method in ``window`` or with the blue-dye mask
    ``blue`` (the dye found by :mod:`.epoxy`); the gray level and the
    window's mask live only a strip at a time."""
    out = np.empty(image.shape[:2], np.uint8)

    def work(start, stop):
        grays = gray_strips(image, sigma, rgb, start, stop)
        if blue is not None:
            for y0, gray in grays:
                rows = slice(y0, y0 + len(gray))
                bin_strip(gray, thresholds, blue[rows], out[rows])
            return
        if window is None:
            for y0, gray in grays:
                bin_strip(gray, thresholds, out=out[y0 : y0 + len(gray)])
            return
        blues = blue_strips(image, sigma, window, start, stop)
        for (y0, gray), (_, strip) in zip(grays, blues, strict=True):
            bin_strip(gray, thresholds, strip, out[y0 : y0 + len(gray)])

    in_threads(work, image, sigma, threads)
    return out
