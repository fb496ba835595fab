"""Modal analysis of label images: class fractions, porosity, grain sizes.

What a petrographer reports from a point count, measured on every pixel of
a label image instead:

* **Counted pixels.** A pixel is counted when its label is a class of the
  scheme and it lies inside ``mask`` (when one is given). Unlabelled
  pixels (0), pixels outside the region and any label that is not in the
  scheme (a frame or background value such as 255) are left out of every
  denominator.
* **Fractions** of every class over the counted pixels, exact. Optical
  porosity is the fraction of the scheme's pore classes
  (:attr:`~.classes.ClassScheme.pore_ids`).
* **Two 95 % intervals** per fraction, saying which is which:

  - *binomial*: the Wilson score interval of a point count of ``points``
    points (300 by default) that found the measured fraction. It is what
    a petrographer's point count of that size would carry, so a point
    count and the image can be compared on equal terms; it says nothing
    about how representative the image is.
  - *block bootstrap*: the image is cut into non-overlapping square blocks
    (``block_px``, by default an eighth of the shorter side; the last row
    and column of blocks take what is left), the blocks are resampled
    with replacement ``n_boot`` times and the fraction is recomputed
    (counted pixels of the resampled blocks as denominator); the
    interval is the 2.5 and 97.5 percentiles. Blocks keep the spatial
    clustering of grains and pores, which pixel-wise resampling would
    ignore. It needs at least two blocks with counted pixels and is
    deterministic for a given ``seed``.

* **Areas** in mm2 when the pixel size (micrometres per pixel) is known.
* **Grains**: each grain class (:func:`grain_ids`) is split into 4-connected
  components; touching grains are then split by a watershed of the negated
  Euclidean distance transform, seeded at its local maxima
  (``peak_local_max`` with ``min_distance`` half the class's median
  inscribed radius, so a pair of touching grains gets two seeds while the
  bumps of one ragged grain get one; one seed per flat top, and tops of
  1 px or less seed nothing); regions whose neck is less than
  :data:`GRAIN_MERGE_PX` below the lower peak are joined again, so a
  slanted lath or slot is one object, not a string of them. Objects
  under :data:`MIN_OBJECT_PX` pixels are classification speckle, not
  grains, and are dropped. Size is the
  equivalent circle diameter ``2 * sqrt(area / pi)``. Objects touching the
  edge of the counted area (image edge, mask edge, unlabelled or frame
  pixels) are measured as seen, so they are truncated; their number is
  reported as ``border_count``.
* **Folk and Ward (1957)** statistics in phi units, ``phi = -log2(d_mm)``,
  from the number-frequency distribution of the equivalent diameters
  (each grain counts once, as in a point count of grains; percentiles by
  linear interpolation between order statistics): graphic mean
  ``M = (phi16 + phi50 + phi84) / 3`` and inclusive graphic standard
  deviation ``sigma = (phi84 - phi16) / 4 + (phi95 - phi5) / 6.6`` with
  Folk's verbal sorting classes. They need the pixel size and at least
  :data:`MIN_SIZED` grains.
* **Pores**: the same splitting on the union of the pore classes gives the
  pore-body size distribution, and the fraction of pore area lying in pore
  bodies that touch the edge of the counted area (those bodies are cut by
  the field of view, so a large fraction warns that pore sizes are
  underestimated).

Speed: fractions and the bootstrap are a few ``bincount`` calls (about
0.05 s for 2000 x 2000). The size analysis dominates, about 2.5-3 s of CPU
for a 2000 x 2000 synthetic sandstone (some 2750 grains, 2100 pore
bodies): per grain class a labelling, two maximum filters and the peak
search, and the watershed on each component that has two seeds or more.
One distance transform serves all classes (distance to the nearest pixel
of another class, at most 0.59 px above the per-class transform), which
saves a transform per class. Pass ``sizes=False`` to skip sizes.

Only numpy, scipy and scikit-image are used; no napari or Qt.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import ThinsegError
from ..progress import Progress
from ..schemes import ClassScheme, get_scheme, scheme_near

Z95 = 1.959963984540054
"""Two-sided 95 % standard normal quantile."""

MIN_OBJECT_PX = 10
"""Objects (grains, pore bodies) smaller than this many pixels are dropped
as classification speckle."""

MIN_SIZED = 5
"""Fewest sized objects for Folk and Ward statistics (a 'distribution' of
fewer says nothing about sorting)."""

GRAIN_MERGE_PX = 0.75
PORE_MERGE_PX = 1.25
"""Two watershed regions are one object when the lower of their peaks
rises less than this many pixels above the saddle between them: the neck
is no real constriction. Without it the distance ridge of a slanted lath
or slot, which wobbles by a pixel on the pixel grid, is cut into a string
of pieces (a 16 x 170 px lath at a slant gave 31-65 'grains'). Measured on
synthetic sandstones, 0.75 px keeps laths and 5:1 ellipses whole and
undercounts grains by 1-2 % at radii 10-18 px (5 % at 6 px); pores,
where slots are common and a body is only a body behind a real throat,
merge across necks of up to 1.25 px."""


PIXEL_SIZE_RANGE = (1e-6, 1e6)
"""Pixel sizes (micrometres) accepted: a picometre to a metre."""


SORTING_CLASSES = (
    (0.35, "very well sorted"),
    (0.50, "well sorted"),
    (0.71, "moderately well sorted"),
    (1.00, "moderately sorted"),
    (2.00, "poorly sorted"),
    (math.nextafter(4.00, math.inf), "very poorly sorted"),
    (math.inf, "extremely poorly sorted"),
)
"""Folk's verbal classes, each from the previous bound (inclusive) to
below its own: sigma = 0.35 is well sorted; Folk's 'over 4.00' makes
4.00 itself very poorly sorted."""

_NOT_GRAIN = re.compile(
    r"\b(cement|clay|matrix|other|background|frame|unlabell?ed|pore|"
    r"porosity|epoxy)",
    re.IGNORECASE,
)


# -- results -------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A 95 % interval; ``method`` says how it was made."""

    low: float
    high: float
    method: str


@dataclass
class ClassStats:
    """Fraction of one class over the counted pixels, with its intervals."""

    id: int
    name: str
    pixels: int
    fraction: float
    area_mm2: float | None
    binomial: Interval
    bootstrap: Interval | None


@dataclass
class SizeStats:
    """Sizes of grains or pore bodies (equivalent circle diameters).

    ``mean_phi`` / ``sorting_phi`` are Folk and Ward's graphic mean and
    inclusive graphic standard deviation; None without a pixel size or
    with fewer than :data:`MIN_SIZED` objects. ``border_count`` objects
    touch the edge of the counted area (measured as seen, truncated).
    """

    count: int
    diameters_px: np.ndarray
    diameters_um: np.ndarray | None
    mean_phi: float | None
    sorting_phi: float | None
    sorting_class: str | None
    median_diameter_um: float | None
    border_count: int = 0

    @property
    def median_diameter_px(self) -> float | None:
        if not self.count:
            return None
        return float(np.median(self.diameters_px))


@dataclass
class Measurement:
    """Everything measured on one label image."""

    name: str
    counted_pixels: int
    pixel_size_um: float | None
    classes: list[ClassStats]
    porosity: float
    porosity_binomial: Interval
    porosity_bootstrap: Interval | None
    grains: SizeStats | None
    pores: SizeStats | None
    pore_border_fraction: float | None
    scheme_name: str = ""

    @property
    def counted_area_mm2(self) -> float | None:
        return _area_mm2(self.counted_pixels, self.pixel_size_um)

    def to_row(self) -> dict:
        """One flat CSV row; column names carry their units.

        Fractions are 0..1 (``_fraction``, interval ``_low`` / ``_high``),
        areas ``_mm2``, diameters ``_px`` / ``_um``, sorting ``_phi``.
        Missing values are None.
        """
        row: dict = {
            "name": self.name,
            "scheme": self.scheme_name,
            "counted_pixels": self.counted_pixels,
            "pixel_size_um": self.pixel_size_um,
            "counted_area_mm2": self.counted_area_mm2,
        }
        _interval_cols(
            row,
            "porosity",
            self.porosity,
            self.porosity_binomial,
            self.porosity_bootstrap,
        )
        row["porosity_area_mm2"] = _area_mm2(
            round(self.porosity * self.counted_pixels)
            if np.isfinite(self.porosity)
            else None,
            self.pixel_size_um,
        )
        for c, key in zip(
            self.classes, _column_keys(self.classes), strict=True
        ):
            row[f"{key}_pixels"] = c.pixels
            _interval_cols(row, key, c.fraction, c.binomial, c.bootstrap)
            row[f"{key}_area_mm2"] = c.area_mm2
        for prefix, s in (("grain", self.grains), ("pore", self.pores)):
            row[f"{prefix}_count"] = None if s is None else s.count
            row[f"{prefix}_border_count"] = (
                None if s is None else s.border_count
            )
            row[f"{prefix}_median_diameter_px"] = (
                None if s is None else s.median_diameter_px
            )
            row[f"{prefix}_median_diameter_um"] = (
                None if s is None else s.median_diameter_um
            )
            row[f"{prefix}_mean_phi"] = None if s is None else s.mean_phi
            row[f"{prefix}_sorting_phi"] = None if s is None else s.sorting_phi
            row[f"{prefix}_sorting"] = None if s is None else s.sorting_class
        row["pore_border_fraction"] = self.pore_border_fraction
        row["binomial_method"] = self.porosity_binomial.method
        row["bootstrap_method"] = (
            None
            if self.porosity_bootstrap is None
            else self.porosity_bootstrap.method
        )
        return row


def _interval_cols(row, key, value, binomial, bootstrap):
    row[f"{key}_fraction"] = value
    row[f"{key}_binomial_low"] = binomial.low
    row[f"{key}_binomial_high"] = binomial.high
    row[f"{key}_bootstrap_low"] = None if bootstrap is None else bootstrap.low
    row[f"{key}_bootstrap_high"] = (
        None if bootstrap is None else bootstrap.high
    )


# class prefixes that would make a class column equal a fixed one
# ("porosity_fraction", "counted_pixels", "counted_area_mm2")
_RESERVED = ("porosity", "counted", "counted_area")


def _column_keys(classes: Sequence[ClassStats]) -> list[str]:
    """Column prefixes from class names (``"rock fragment"`` ->
    ``rock_fragment``); a clash or an empty slug falls back on the id."""
    slugs = [
        re.sub(r"[^0-9a-z]+", "_", c.name.lower()).strip("_") for c in classes
    ]
    out = []
    for c, s in zip(classes, slugs, strict=True):
        if not s or slugs.count(s) > 1 or s in _RESERVED:
            s = f"class{c.id}_{s}" if s else f"class{c.id}"
        out.append(s)
    return out


def _area_mm2(pixels, pixel_size_um):
    if pixels is None or pixel_size_um is None:
        return None
    return float(pixels) * (pixel_size_um / 1000.0) ** 2


# -- statistics ----------------------------------------------------------
def wilson_interval(
    fraction: float, n: int, z: float = Z95
) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    Parameters
    ----------
    fraction : float
        Observed proportion, 0..1.
    n : int
        Number of trials (points counted).
    z : float
        Normal quantile (1.96 for 95 %).

    Returns
    -------
    (low, high) : tuple of float
    """
    if not n >= 1:
        raise ThinsegError(f"a binomial interval needs n >= 1, got {n!r}")
    if not np.isfinite(fraction):
        return math.nan, math.nan
    p = min(max(float(fraction), 0.0), 1.0)
    z2n = z * z / n
    centre = (p + z2n / 2) / (1 + z2n)
    half = z * math.sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n)
    return max(0.0, centre - half), min(1.0, centre + half)


def folk_ward(phi: np.ndarray) -> tuple[float, float]:
    """Folk and Ward (1957) graphic mean and inclusive graphic standard
    deviation of phi values (number frequency).

    Percentiles interpolate linearly between order statistics (numpy's
    default), phi_p being the p-th percentile of the phi values.

    Returns
    -------
    (mean_phi, sorting_phi) : tuple of float
    """
    phi = np.asarray(phi, float)
    if phi.size == 0:
        raise ThinsegError("no sizes to compute Folk and Ward statistics")
    p5, p16, p50, p84, p95 = np.percentile(phi, [5, 16, 50, 84, 95])
    mean = (p16 + p50 + p84) / 3
    sorting = (p84 - p16) / 4 + (p95 - p5) / 6.6
    return float(mean), float(sorting)


def sorting_class(sigma: float) -> str:
    """Folk's verbal sorting class of an inclusive graphic standard
    deviation in phi."""
    for bound, name in SORTING_CLASSES:
        if sigma < bound:
            return name
    return SORTING_CLASSES[-1][1]


def size_stats(
    diameters_px: np.ndarray,
    pixel_size_um: float | None = None,
    border_count: int = 0,
) -> SizeStats:
    """Size statistics of a set of equivalent diameters in pixels."""
    d_px = np.asarray(diameters_px, float)
    d_um = None if pixel_size_um is None else d_px * pixel_size_um
    mean = sigma = verbal = median_um = None
    if d_um is not None and d_um.size:
        median_um = float(np.median(d_um))
        if d_um.size >= MIN_SIZED:
            mean, sigma = folk_ward(-np.log2(d_um / 1000.0))
            verbal = sorting_class(sigma)
    return SizeStats(
        count=int(d_px.size),
        diameters_px=d_px,
        diameters_um=d_um,
        mean_phi=mean,
        sorting_phi=sigma,
        sorting_class=verbal,
        median_diameter_um=median_um,
        border_count=int(border_count),
    )


# -- objects -------------------------------------------------------------
def split_objects(
    binary: np.ndarray,
    min_distance: int | None = None,
    dist: np.ndarray | None = None,
    merge_px: float = GRAIN_MERGE_PX,
) -> tuple[np.ndarray, int]:
    """Label the objects of a binary image, splitting touching ones.

    4-connected components are seeded at the local maxima of the distance
    transform (``peak_local_max``); components with two or more seeds are
    split by a watershed of the negated distance, the others stay whole.
    Regions whose neck is shallower than ``merge_px`` are joined again.

    Parameters
    ----------
    binary : ndarray of bool
    min_distance : int, optional
        Smallest distance between seeds in pixels; default half the median
        inscribed radius (largest distance value) of the components of at
        least :data:`MIN_OBJECT_PX` pixels, and at least 2.
    dist : ndarray of float, optional
        The distance of each object pixel to the background, when already
        known (:func:`measure` makes one map for all classes).
    merge_px : float
        Join two regions when the lower peak rises less than this above
        their saddle (:data:`GRAIN_MERGE_PX`; pores use
        :data:`PORE_MERGE_PX`).

    Returns
    -------
    labels : ndarray of int32
        0 background, 1..n objects.
    n : int
    """
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    binary = np.asarray(binary, bool)
    comp, n = ndi.label(binary)
    comp = comp.astype(np.int32, copy=False)
    if n == 0:
        return comp, 0
    if min_distance is not None and not min_distance >= 1:
        raise ThinsegError(
            f"seed distance must be at least 1 pixel, got {min_distance!r}"
        )
    if dist is None:
        dist = ndi.distance_transform_edt(binary)
    else:
        dist = np.where(binary, dist, 0.0)
    if min_distance is None:
        min_distance = _seed_spacing(dist, comp, n)
    peaks = peak_local_max(
        _plateau_peaks(dist, comp, int(min_distance)),
        min_distance=int(min_distance),
        threshold_abs=1.0,
        exclude_border=False,
    )
    owner = comp[tuple(peaks.T)]
    multi = np.bincount(owner, minlength=n + 1) >= 2
    multi[0] = False
    seeds = peaks[multi[owner]]
    next_id = n + 1
    if len(seeds):
        # the watershed runs on each component due a split, cropped to its
        # box: one call on the whole image costs more than a thousand small
        # ones, and the other components need none
        seeds = seeds[np.argsort(owner[multi[owner]], kind="stable")]
        starts = np.searchsorted(comp[tuple(seeds.T)], np.arange(n + 2))
        boxes = ndi.find_objects(comp)
        for c in np.flatnonzero(multi):
            box = boxes[c - 1]
            mine = seeds[starts[c] : starts[c + 1]]
            inside = comp[box] == c
            markers = np.zeros(inside.shape, np.int32)
            local = mine - [sl.start for sl in box]
            markers[tuple(local.T)] = np.arange(
                next_id, next_id + len(mine), dtype=np.int32
            )
            next_id += len(mine)
            ws = watershed(-dist[box], markers, mask=inside)
            ws = _merge_shallow(
                ws, dist[box], next_id - len(mine), local, merge_px
            )
            comp[box][inside] = ws[inside]
    # renumber 1..k (split components left their old number unused)
    used = np.bincount(comp.ravel(), minlength=next_id) > 0
    used[0] = False
    lut = np.cumsum(used, dtype=np.int32) * used
    return lut[comp], int(used.sum())


def _merge_shallow(ws, dist, first, seeds, merge_px):
    """Merge watershed regions ``first..first+k-1`` (seeded at ``seeds``,
    local coordinates) across necks shallower than ``merge_px``."""
    k = len(seeds)
    top = dist[tuple(seeds.T)].astype(float)
    keys, heights = [], []
    for a, b, da, db in (
        (ws[:, :-1], ws[:, 1:], dist[:, :-1], dist[:, 1:]),
        (ws[:-1], ws[1:], dist[:-1], dist[1:]),
    ):
        touch = (a != b) & (a > 0) & (b > 0)
        i, j = a[touch] - first, b[touch] - first
        keys.append(np.minimum(i, j) * k + np.maximum(i, j))
        heights.append(np.minimum(da[touch], db[touch]))
    keys, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    if not len(keys):
        return ws
    saddle = np.full(len(keys), -np.inf)
    np.maximum.at(saddle, inverse, np.concatenate(heights))
    parent = list(range(k))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    # highest saddles first: the order in which flooding would join them
    for n in np.argsort(-saddle, kind="stable"):
        i, j = root(int(keys[n] // k)), root(int(keys[n] % k))
        low = min(top[i], top[j])
        if i != j and low - saddle[n] < merge_px:
            parent[j] = i
            top[i] = max(top[i], top[j])
    lut = np.zeros(first + k, ws.dtype)
    lut[first:] = first + np.array([root(i) for i in range(k)])
    return lut[ws]


def _plateau_peaks(dist, comp, min_distance):
    """``dist`` kept at one pixel of each flat top of the components with
    two tops or more, 0 elsewhere.

    A distance map has plateaus (the ridge of a gap of even width is one
    long run of equal values); ``peak_local_max`` would weigh every pixel
    of them against every other, which is slow and seeds a ridge many
    times. One pixel per 8-connected flat top is enough. Tops not above
    1 (slivers one or two pixels wide) are no seeds: such objects stay
    whole.
    """
    size = 2 * min_distance + 1
    top = (dist == ndi.maximum_filter(dist, size=size)) & (dist > 1.0)
    flat, n = ndi.label(top, structure=np.ones((3, 3), bool))
    out = np.zeros_like(dist)
    if n:
        index = np.flatnonzero(flat)
        first = index[np.unique(flat.flat[index], return_index=True)[1]]
        # a component with a single top is one object already: leaving it
        # out spares peak_local_max most of its work
        owner = comp.flat[first]
        first = first[np.bincount(owner)[owner] >= 2]
        out.flat[first] = dist.flat[first]
    return out


def _seed_spacing(dist, comp, n) -> int:
    """Half the median inscribed radius of the components, at least 2."""
    radius = np.zeros(n + 1)
    np.maximum.at(radius, comp.ravel(), dist.ravel())
    sizes = np.bincount(comp.ravel(), minlength=n + 1)
    big = radius[1:][sizes[1:] >= MIN_OBJECT_PX]
    typical = float(np.median(big if big.size else radius[1:]))
    return max(2, int(round(0.5 * typical)))


def _class_distance(col: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the nearest pixel of another column
    (class, or not counted), for all classes in one transform.

    Pixels with a 4-neighbour of another column are at 1; the rest at 1 +
    their Euclidean distance to those. This is the per-class distance
    transform or up to 2 - sqrt(2) = 0.59 px more (measured on a synthetic
    sandstone), at the cost of one transform for all classes.
    """
    step = np.zeros(col.shape, bool)
    diff = col[:, 1:] != col[:, :-1]
    step[:, 1:] |= diff
    step[:, :-1] |= diff
    diff = col[1:] != col[:-1]
    step[1:] |= diff
    step[:-1] |= diff
    return ndi.distance_transform_edt(~step) + 1.0


def _objects(binary, edge, dist, merge_px, min_px=MIN_OBJECT_PX):
    """Areas of split objects, whether each touches ``edge``, and the pixel
    total of all (kept or dropped) objects touching it."""
    lab, n = split_objects(binary, dist=dist, merge_px=merge_px)
    areas = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    touch = np.bincount(lab[edge], minlength=n + 1)[1:] > 0
    border_px = int(areas[touch].sum())
    keep = areas >= min_px
    return areas[keep], touch[keep], border_px


def _diameters(areas: np.ndarray) -> np.ndarray:
    return 2.0 * np.sqrt(areas / math.pi)


def grain_ids(scheme) -> list[int]:
    """Ids of the grain classes of a scheme.

    Grains are every class that is not a pore class and whose name does not
    say cement, clay, matrix, other, background, frame, unlabelled, pore,
    porosity or epoxy. Seed scheme: 1, 2, 4, 5; sandstone: quartz,
    feldspar, rock fragment, carbonate grain, opaque.
    """
    scheme = get_scheme(scheme)
    return [
        c.id
        for c in scheme.classes
        if c.id not in scheme.pore_ids and not _NOT_GRAIN.search(c.name)
    ]


# -- measuring -----------------------------------------------------------
def _check_args(pixel_size_um, points, n_boot, block_px):
    if pixel_size_um is not None:
        try:
            pixel_size_um = float(pixel_size_um)
        except (TypeError, ValueError):
            raise ThinsegError(
                f"pixel size must be a number, got {pixel_size_um!r}"
            ) from None
        if not (math.isfinite(pixel_size_um) and pixel_size_um > 0):
            raise ThinsegError(
                f"pixel size must be positive micrometres, got {pixel_size_um}"
            )
        if not PIXEL_SIZE_RANGE[0] <= pixel_size_um <= PIXEL_SIZE_RANGE[1]:
            # beyond these areas overflow and phi sizes become infinite
            raise ThinsegError(
                f"pixel size must be {PIXEL_SIZE_RANGE[0]:g} to "
                f"{PIXEL_SIZE_RANGE[1]:g} micrometres, got {pixel_size_um:g}"
            )
    for label, value, least in (
        ("points", points, 1),
        ("bootstrap resamples", n_boot, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ThinsegError(f"{label} must be an integer, got {value!r}")
        if value < least:
            raise ThinsegError(f"{label} must be >= {least}, got {value}")
    if block_px is not None and (
        isinstance(block_px, bool)
        or not isinstance(block_px, int | np.integer)
        or block_px < 1
    ):
        raise ThinsegError(
            f"block size must be a positive number of pixels, got {block_px!r}"
        )
    return pixel_size_um, int(points), int(n_boot)


def _columns(labels, scheme: ClassScheme, mask, name):
    """Per-pixel column index: i for the scheme's i-th class, K for not
    counted (0, outside the mask, not in the scheme)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ThinsegError(
            f"{name}: a 2D label image is needed, got shape {labels.shape}"
        )
    if labels.dtype.kind == "b":
        labels = labels.view(np.uint8)
    elif labels.dtype.kind not in "ui":
        raise ThinsegError(
            f"{name}: labels must be integers, got {labels.dtype}"
        )
    k = len(scheme)
    lut = np.full(256, k, np.uint8)
    for i, cid in enumerate(scheme.ids):
        lut[cid] = i
    if labels.dtype != np.uint8:
        # values outside 0..255 cannot be scheme ids: count them as 0
        inside = (labels >= 0) & (labels <= 255)
        labels = np.where(inside, labels, 0).astype(np.uint8)
    col = lut[labels]
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != col.shape:
            raise ThinsegError(
                f"{name}: mask shape {mask.shape} differs from labels "
                f"{col.shape}"
            )
        col[~mask.astype(bool, copy=False)] = k
    return col, k


def _edge(valid: np.ndarray) -> np.ndarray:
    """Counted pixels with a 4-neighbour that is not counted or off the
    image: the edge of the measured region."""
    out = np.pad(~valid, 1, constant_values=True)
    near = out[:-2, 1:-1] | out[2:, 1:-1] | out[1:-1, :-2] | out[1:-1, 2:]
    return valid & near


def default_block_px(shape) -> int:
    """Bootstrap block side: an eighth of the shorter image side."""
    return max(1, min(shape[:2]) // 8)


def _bootstrap(col, k, block, n_boot, seed, pore_cols):
    """Percentile intervals of every class fraction and the porosity from
    resampled blocks; None where fewer than two blocks have counted
    pixels."""
    h, w = col.shape
    nbx = -(-w // block)
    bid = (np.arange(h) // block)[:, None] * nbx + (np.arange(w) // block)
    flat = (bid * (k + 1) + col).ravel()
    nb = (-(-h // block)) * nbx
    counts = np.bincount(flat, minlength=nb * (k + 1)).reshape(nb, k + 1)
    counts = counts[:, :k]
    counts = counts[counts.sum(axis=1) > 0]
    nb = len(counts)
    if nb < 2 or n_boot == 0:
        return None
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, nb, size=(n_boot, nb))
    # how often each block is drawn in each resample
    times = np.bincount(
        (np.arange(n_boot)[:, None] * nb + pick).ravel(),
        minlength=n_boot * nb,
    ).reshape(n_boot, nb)
    boot = times @ counts.astype(float)
    total = boot.sum(axis=1, keepdims=True)
    frac = boot / total
    lo, hi = np.percentile(frac, [2.5, 97.5], axis=0)
    method = f"block bootstrap ({n_boot} resamples, {block} px blocks)"
    classes = [
        Interval(float(a), float(b), method)
        for a, b in zip(lo, hi, strict=True)
    ]
    porosity = None
    if pore_cols:
        pf = frac[:, pore_cols].sum(axis=1)
        plo, phi = np.percentile(pf, [2.5, 97.5])
        porosity = Interval(float(plo), float(phi), method)
    return classes, porosity


def measure(
    labels: np.ndarray,
    scheme=None,
    mask: np.ndarray | None = None,
    pixel_size_um: float | None = None,
    points: int = 300,
    n_boot: int = 200,
    block_px: int | None = None,
    sizes: bool = True,
    seed: int = 0,
    name: str = "",
) -> Measurement:
    """Modal analysis of one label image.

    Parameters
    ----------
    labels : ndarray
        2D integer class ids.
    scheme : ClassScheme or str, optional
        The class scheme (a built-in name or a classes.json path too);
        default the seed scheme.
    mask : ndarray of bool, optional
        True inside the region to measure.
    pixel_size_um : float, optional
        Micrometres per pixel; gives areas in mm2 and phi statistics.
    points : int
        Equivalent point count of the binomial (Wilson) interval.
    n_boot : int
        Bootstrap resamples (0: no bootstrap interval).
    block_px : int, optional
        Bootstrap block side; default :func:`default_block_px`.
    sizes : bool
        Measure grain and pore sizes (the slow part).
    seed : int
        Bootstrap random seed.
    name : str
        Name of the image in tables.

    Returns
    -------
    Measurement

    Raises
    ------
    ThinsegError
        Bad arguments, or no pixel of the image is counted.
    """
    scheme = get_scheme(scheme)
    where = name or "labels"
    pixel_size_um, points, n_boot = _check_args(
        pixel_size_um, points, n_boot, block_px
    )
    col, k = _columns(labels, scheme, mask, where)
    counts = np.bincount(col.ravel(), minlength=k + 1)[:k]
    counted = int(counts.sum())
    if counted == 0:
        raise ThinsegError(
            f"{where}: no pixel carries a class of scheme "
            f"{scheme.name!r}" + ("" if mask is None else " inside the mask")
        )
    fractions = counts / counted
    pore_cols = [scheme.ids.index(i) for i in scheme.pore_ids]

    block = int(block_px) if block_px else default_block_px(col.shape)
    boot = _bootstrap(col, k, block, n_boot, seed, pore_cols)
    binom = f"binomial (Wilson, {points} points)"

    def binomial(p):
        return Interval(*wilson_interval(p, points), binom)

    classes = [
        ClassStats(
            id=c.id,
            name=c.name,
            pixels=int(counts[i]),
            fraction=float(fractions[i]),
            area_mm2=_area_mm2(int(counts[i]), pixel_size_um),
            binomial=binomial(fractions[i]),
            bootstrap=None if boot is None else boot[0][i],
        )
        for i, c in enumerate(scheme.classes)
    ]
    # no pore class in the scheme: porosity is unknown, not zero
    porosity = float(fractions[pore_cols].sum()) if pore_cols else math.nan

    grains = pores = border = None
    if sizes:
        edge = _edge(col != k)
        dist = _class_distance(col)
        d, touch = [], 0
        for cid in grain_ids(scheme):
            i = scheme.ids.index(cid)
            areas, t, _ = _objects(col == i, edge, dist, GRAIN_MERGE_PX)
            d.append(_diameters(areas))
            touch += int(t.sum())
        grains = size_stats(
            np.concatenate(d) if d else np.zeros(0), pixel_size_um, touch
        )
        if pore_cols:
            pore_px = np.isin(col, pore_cols)
            if len(pore_cols) > 1:
                # pore classes touching each other form one pore space
                dist = ndi.distance_transform_edt(pore_px)
            areas, t, border_px = _objects(pore_px, edge, dist, PORE_MERGE_PX)
            pores = size_stats(_diameters(areas), pixel_size_um, t.sum())
            total = int(counts[pore_cols].sum())
            border = border_px / total if total else None

    return Measurement(
        name=name,
        counted_pixels=counted,
        pixel_size_um=pixel_size_um,
        classes=classes,
        porosity=porosity,
        porosity_binomial=binomial(porosity),
        porosity_bootstrap=None if boot is None else boot[1],
        grains=grains,
        pores=pores,
        pore_border_fraction=border,
        scheme_name=scheme.name,
    )


def measure_files(
    paths: Iterable[str | Path],
    scheme=None,
    pixel_size_um: float | None = None,
    points: int = 300,
    n_boot: int = 200,
    block_px: int | None = None,
    sizes: bool = True,
    seed: int = 0,
) -> Generator[Progress, None, list[Measurement]]:
    """Measure label image files (folders give their images), one
    :class:`Progress` per file; returns the measurements.

    ``scheme`` None takes :func:`scheme_near` of each file. Arguments are
    checked before the first file is read.
    """
    from ..imaging.files import list_images, read_annotation

    _check_args(pixel_size_um, points, n_boot, block_px)
    files = list_images(paths)
    chosen = None if scheme is None else get_scheme(scheme)
    out = []
    for k, path in enumerate(files):
        labels = read_annotation(path)
        try:
            m = measure(
                labels,
                scheme_near(path, chosen),
                pixel_size_um=pixel_size_um,
                points=points,
                n_boot=n_boot,
                block_px=block_px,
                sizes=sizes,
                seed=seed,
                name=path.name,
            )
        except ThinsegError as exc:
            # name the file by its path, once
            text = str(exc).removeprefix(f"{path.name}: ")
            raise ThinsegError(f"{path}: {text}") from None
        out.append(m)
        yield Progress(k + 1, len(files), path.name)
    return out


# -- output --------------------------------------------------------------
def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return "" if not np.isfinite(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def write_csv(
    measurements_or_rows: Iterable[Measurement | dict],
    path: str | Path,
    overwrite: bool = False,
) -> Path:
    """Write measurements (or their rows) as CSV, one row each.

    Columns are the union of the rows' keys in first-seen order; missing
    values are empty cells. Written atomically; an existing file is
    replaced only with ``overwrite``.
    """
    from ..imaging.atomic import atomic_write_text, ensure_dir, refuse_existing

    path = Path(path)
    rows = [
        r.to_row() if isinstance(r, Measurement) else dict(r)
        for r in measurements_or_rows
    ]
    if not rows:
        raise ThinsegError(f"{path}: no measurements to write")
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    columns = list(dict.fromkeys(key for r in rows for key in r))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in columns])
    return atomic_write_text(path, buf.getvalue())


def _pct(interval: Interval | None) -> str:
    if interval is None or not np.isfinite(interval.low):
        return "-"
    return f"{100 * interval.low:.1f}-{100 * interval.high:.1f}"


def format_measurement(m: Measurement) -> str:
    """A readable plain-text table of one measurement (percentages)."""
    area = m.counted_area_mm2
    head = f"{m.name or 'labels'}: {m.counted_pixels:,} counted px"
    if area is not None:
        head += f" ({area:.4g} mm2 at {m.pixel_size_um:g} um/px)"
    if m.scheme_name:
        head += f", scheme {m.scheme_name}"
    names = [c.name for c in m.classes] + ["porosity"]
    width = max(len(n) for n in names)
    lines = [
        head,
        f"  {'class':<{width}}  {'%':>6}  {'binomial 95%':>12}  "
        f"{'bootstrap 95%':>13}",
    ]

    def line(label, fraction, binomial, bootstrap):
        value = f"{100 * fraction:6.2f}" if np.isfinite(fraction) else "     -"
        return (
            f"  {label:<{width}}  {value}  {_pct(binomial):>12}  "
            f"{_pct(bootstrap):>13}"
        )

    for c in m.classes:
        lines.append(line(c.name, c.fraction, c.binomial, c.bootstrap))
    lines.append(
        line("porosity", m.porosity, m.porosity_binomial, m.porosity_bootstrap)
    )
    lines.append(
        f"  binomial: {m.porosity_binomial.method}; bootstrap: "
        + (
            m.porosity_bootstrap.method
            if m.porosity_bootstrap is not None
            else "not available (fewer than 2 blocks)"
        )
    )
    if m.grains is not None:
        g = m.grains
        text = f"  grains: {g.count}"
        if g.mean_phi is not None:
            text += (
                f"; mean {g.mean_phi:.2f} phi; sorting "
                f"{g.sorting_phi:.2f} phi ({g.sorting_class})"
            )
        if g.median_diameter_um is not None:
            text += f"; median {g.median_diameter_um:.0f} um"
        elif g.count:
            text += f"; median {g.median_diameter_px:.1f} px"
        lines.append(text + f"; {g.border_count} on the edge")
    if m.pores is not None:
        p = m.pores
        text = f"  pore bodies: {p.count}"
        if p.median_diameter_um is not None:
            text += f"; median {p.median_diameter_um:.0f} um"
        elif p.count:
            text += f"; median {p.median_diameter_px:.1f} px"
        if m.pore_border_fraction is not None:
            text += (
                f"; {100 * m.pore_border_fraction:.1f} % of pore area "
                "touches the edge"
            )
        lines.append(text)
    return "\n".join(lines)


__all__ = [
    "Interval",
    "ClassStats",
    "SizeStats",
    "Measurement",
    "grain_ids",
    "measure",
    "measure_files",
    "write_csv",
    "format_measurement",
    "folk_ward",
    "sorting_class",
    "size_stats",
    "split_objects",
    "wilson_interval",
    "scheme_near",
    "default_block_px",
]
