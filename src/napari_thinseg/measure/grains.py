"""Grains and pore bodies of a label image: objects, sizes, sorting.

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

Speed: about 2.5-3 s of CPU for a 2000 x 2000 synthetic sandstone (some
2750 grains, 2100 pore bodies): per grain class a labelling, two maximum
filters and the peak search, and the watershed on each component that has
two seeds or more. One distance transform serves all classes (distance to
the nearest pixel of another class, at most 0.59 px above the per-class
transform), which saves a transform per class.
"""

from __future__ import annotations

import math
import re

import numpy as np
from scipy import ndimage as ndi

from ..errors import ThinsegError
from ..schemes import ClassScheme, get_scheme
from .results import SizeStats

MIN_OBJECT_PX = 10
"""Objects (grains, pore bodies) smaller than this many pixels are dropped
as classification speckle."""

SPECK_PX = 64
"""Enclosed specks of other classes smaller than this many pixels inside
grains are filled before grains are split (:func:`_fill_specks`)."""

GRAY_FRAGMENT = 0.25
"""With gray-level classes, objects under this share of the median grain
diameter are dropped as fragments: auto-labels of real photos are
speckled where the epoxy rule meets a dirty grain or a lithic fragment
(measured on the seed's sandstone_2: 175 objects, 136 with this, against
117 counted by hand; see the README)."""

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


# -- size statistics ---------------------------------------------------
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
    mean = sigma = verbal = median_um = mean_px = sigma_px = None
    if d_px.size >= MIN_SIZED and np.all(d_px > 0):
        m_px, sigma_px = folk_ward(-np.log2(d_px))
        mean_px = float(2.0**-m_px)
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
        mean_diameter_px=mean_px,
        sorting_px=sigma_px,
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
        known (:func:`grain_and_pore_sizes` makes one map for all classes).
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


_GRAY_LEVEL = re.compile(r"\bgr[ae]y\b|\bgr[ae]y[ -]?level", re.IGNORECASE)


def is_gray_level(scheme) -> bool:
    """Whether a scheme's classes are gray-level bins rather than minerals:
    the seed scheme, auto-label's ``grayN`` schemes, or a scheme whose grain
    classes are named by gray level ("medium-gray grains")."""
    scheme = get_scheme(scheme)
    if scheme.name == "seed" or re.fullmatch(r"gray\d+", scheme.name):
        return True
    names = [scheme[i].name for i in grain_ids(scheme)]
    return any(_GRAY_LEVEL.search(n) for n in names)


def _fill_specks(grain_px: np.ndarray) -> np.ndarray:
    """Grain pixels with the enclosed specks of other pixels under
    :data:`SPECK_PX` filled. On gray-level auto-labels of real photos they
    are a dirty grain's dark spots, a fluid inclusion or the epoxy in a
    lithic fragment's pores, and do not part grains (they still count
    where the class fractions are measured). Mineral labels keep them: a
    small pore between grains is one there (filled, synthetic sandstones
    lost up to 10 % of their grains)."""
    from skimage.morphology import remove_small_holes

    return remove_small_holes(grain_px, max_size=SPECK_PX - 1)


def _edge(valid: np.ndarray) -> np.ndarray:
    """Counted pixels with a 4-neighbour that is not counted or off the
    image: the edge of the measured region."""
    out = np.pad(~valid, 1, constant_values=True)
    near = out[:-2, 1:-1] | out[2:, 1:-1] | out[1:-1, :-2] | out[1:-1, 2:]
    return valid & near


def grain_and_pore_sizes(
    columns: np.ndarray, scheme: ClassScheme, pixel_size_um: float | None
) -> tuple[SizeStats, SizeStats | None, float | None]:
    """Sizes of the grains and the pore bodies of a label image.

    Parameters
    ----------
    columns : ndarray of uint8
        Per pixel the index of its class in ``scheme.ids``, or
        ``len(scheme)`` where the pixel is not counted.
    scheme : ClassScheme
    pixel_size_um : float, optional

    Returns
    -------
    grains : SizeStats
    pores : SizeStats or None
        None when the scheme has no pore class.
    pore_border_fraction : float or None
        Share of the pore pixels in pore bodies touching the edge of the
        counted area; None without pore classes or pore pixels.
    """
    edge = _edge(columns != len(scheme))
    # grains: the union of the grain classes, so that a grain whose
    # pixels fall in two classes (gray-level bins, a zoned or altered
    # mineral) is one grain, not speckle of each
    grain_px = np.isin(
        columns, [scheme.ids.index(c) for c in grain_ids(scheme)]
    )
    gray = is_gray_level(scheme)
    if gray:
        # gray-level bins: the union's distance, its specks filled
        grain_px = _fill_specks(grain_px)
        dist = ndi.distance_transform_edt(grain_px)
    else:
        # minerals: two touching grains of different classes are two
        # grains (distance to another class)
        dist = _class_distance(columns)
    areas, t, _ = _objects(grain_px, edge, dist, GRAIN_MERGE_PX)
    if gray and len(areas):
        big = _diameters(areas) >= GRAY_FRAGMENT * np.median(_diameters(areas))
        areas, t = areas[big], t[big]
    grains = size_stats(_diameters(areas), pixel_size_um, int(t.sum()))
    grains.gray_levels = gray
    pore_cols = [scheme.ids.index(i) for i in scheme.pore_ids]
    if not pore_cols:
        return grains, None, None
    pore_px = np.isin(columns, pore_cols)
    # pore classes touching each other form one pore space
    dist = ndi.distance_transform_edt(pore_px)
    areas, t, border_px = _objects(pore_px, edge, dist, PORE_MERGE_PX)
    pores = size_stats(_diameters(areas), pixel_size_um, t.sum())
    total = int(pore_px.sum())
    return grains, pores, border_px / total if total else None
