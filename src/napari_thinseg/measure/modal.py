"""Modal analysis of label images: class fractions and porosity with
their intervals, and the measurement of one image or of files.

What a petrographer reports from a point count, measured on every pixel of
a label image instead:

* **Counted pixels.** A pixel is counted when its label is a class of the
  scheme and it lies inside ``mask`` (when one is given). Unlabelled
  pixels (0), pixels outside the region and any label that is not in the
  scheme (a frame or background value such as 255) are left out of every
  denominator.
* **Fractions** of every class over the counted pixels, exact. Optical
  porosity is the fraction of the scheme's pore classes
  (:attr:`~napari_thinseg.schemes.ClassScheme.pore_ids`).
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
* **Grains and pores**: sizes, Folk and Ward statistics and the pore
  border fraction, from :mod:`.grains`.

Speed: fractions and the bootstrap are a few ``bincount`` calls (about
0.05 s for 2000 x 2000); the size analysis dominates (about 2.5-3 s of
CPU for a 2000 x 2000 synthetic sandstone, see :mod:`.grains`). Pass
``sizes=False`` to skip sizes.

Only numpy, scipy and scikit-image are used; no napari or Qt.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterable
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from ..progress import Progress
from ..schemes import ClassScheme, get_scheme, scheme_near
from .grains import grain_and_pore_sizes
from .results import ClassStats, Interval, Measurement, area_mm2

Z95 = 1.959963984540054
"""Two-sided 95 % standard normal quantile."""


PIXEL_SIZE_RANGE = (1e-6, 1e6)
"""Pixel sizes (micrometres) accepted: a picometre to a metre."""


# -- statistics ----------------------------------------------------------
class NothingLabelled(ThinsegError):
    """No pixel (inside the mask) carries a class of the scheme: a new,
    empty Labels layer, normal before anything is painted or predicted.
    The GUI says so on a status line, not as an error."""


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


def default_block_px(shape) -> int:
    """Bootstrap block side: an eighth of the shorter image side."""
    return max(1, min(shape[:2]) // 8)


def _block_counts(col, k, block) -> np.ndarray:
    """Counted pixels of every class in every bootstrap block, blocks row
    by row, ``(blocks, k)``."""
    h, w = col.shape
    nbx = -(-w // block)
    bid = (np.arange(h) // block)[:, None] * nbx + (np.arange(w) // block)
    flat = (bid * (k + 1) + col).ravel()
    nb = (-(-h // block)) * nbx
    counts = np.bincount(flat, minlength=nb * (k + 1)).reshape(nb, k + 1)
    return counts[:, :k]


def _bootstrap(counts, block, n_boot, seed, pore_cols):
    """Percentile intervals of every class fraction and the porosity from
    resampled blocks (their class ``counts``); None where fewer than two
    blocks have counted pixels."""
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
    pixel_size_um, points, n_boot = _check_args(
        pixel_size_um, points, n_boot, block_px
    )
    col, k = _columns(labels, scheme, mask, name or "labels")
    block = int(block_px) if block_px else default_block_px(col.shape)
    block_counts = _block_counts(col, k, block)
    grains = pores = border = None
    if sizes and block_counts.any():  # else refused below, not after it
        grains, pores, border = grain_and_pore_sizes(
            col, scheme, pixel_size_um
        )
    return _measurement(
        block_counts,
        block,
        scheme,
        (grains, pores, border),
        pixel_size_um,
        points,
        n_boot,
        seed,
        name,
        mask is not None,
    )


def measure_lazy(
    labels,
    scheme=None,
    pixel_size_um: float | None = None,
    points: int = 300,
    n_boot: int = 200,
    block_px: int | None = None,
    seed: int = 0,
    name: str = "",
) -> Measurement:
    """:func:`measure` of a label image too large to load (a zarr or dask
    array, a whole slide's pyramid level), one bootstrap block at a time:
    the same fractions and intervals; no grain or pore sizes."""
    from ..imaging.lazy import read_region

    scheme = get_scheme(scheme)
    pixel_size_um, points, n_boot = _check_args(
        pixel_size_um, points, n_boot, block_px
    )
    if len(labels.shape) != 2:
        raise ThinsegError(
            f"{name or 'labels'}: a 2D label image is needed, got shape "
            f"{tuple(labels.shape)}"
        )
    h, w = labels.shape
    block = int(block_px) if block_px else default_block_px((h, w))
    k = len(scheme)
    counts = []
    for y in range(0, h, block):
        for x in range(0, w, block):
            part = read_region(labels[y : y + block, x : x + block])
            col, _ = _columns(part, scheme, None, name or "labels")
            counts.append(np.bincount(col.ravel(), minlength=k + 1)[:k])
    return _measurement(
        np.array(counts),
        block,
        scheme,
        (None, None, None),
        pixel_size_um,
        points,
        n_boot,
        seed,
        name,
        False,
    )


def _measurement(
    block_counts,
    block,
    scheme,
    sizes,
    pixel_size_um,
    points,
    n_boot,
    seed,
    name,
    masked,
) -> Measurement:
    where = name or "labels"
    counts = block_counts.sum(axis=0)
    counted = int(counts.sum())
    if counted == 0:
        raise NothingLabelled(
            f"{where}: no pixel carries a class of scheme "
            f"{scheme.name!r}" + (" inside the mask" if masked else "")
        )
    fractions = counts / counted
    pore_cols = [scheme.ids.index(i) for i in scheme.pore_ids]
    boot = _bootstrap(block_counts, block, n_boot, seed, pore_cols)
    binom = f"binomial (Wilson, {points} points)"

    def binomial(p):
        return Interval(*wilson_interval(p, points), binom)

    classes = [
        ClassStats(
            id=c.id,
            name=c.name,
            pixels=int(counts[i]),
            fraction=float(fractions[i]),
            area_mm2=area_mm2(int(counts[i]), pixel_size_um),
            binomial=binomial(fractions[i]),
            bootstrap=None if boot is None else boot[0][i],
        )
        for i, c in enumerate(scheme.classes)
    ]
    # no pore class in the scheme: porosity is unknown, not zero
    porosity = float(fractions[pore_cols].sum()) if pore_cols else math.nan
    grains, pores, border = sizes

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
    client=None,
) -> Generator[Progress, None, list[Measurement]]:
    """Measure label image files (folders give their images), one
    :class:`Progress` per file; returns the measurements.

    ``scheme`` None takes :func:`scheme_near` of each file.
    ``pixel_size_um`` None takes the pixel size each file records
    (:func:`~..imaging.pixel_size.file_pixel_size_um`: predict and
    auto-label copy their input's). Arguments are checked before the
    first file is read. With a ``distributed.Client``, every file is a
    task on its cluster (:mod:`..distributed`); the order stays the
    files'.
    """
    from ..imaging.files import list_images, read_annotation
    from ..imaging.pixel_size import file_pixel_size_um

    _check_args(pixel_size_um, points, n_boot, block_px)
    files = list_images(paths)
    chosen = None if scheme is None else get_scheme(scheme)
    if client is not None:
        from ..inference.cluster import map_files

        options = {
            "pixel_size_um": pixel_size_um,
            "points": points,
            "n_boot": n_boot,
            "block_px": block_px,
            "sizes": sizes,
            "seed": seed,
        }
        found: list = [None] * len(files)
        items = [str(f) for f in files]
        tasks = map_files(client, measure_file, items, chosen, options)
        for done, (k, m) in enumerate(tasks, start=1):
            found[k] = m
            yield Progress(done, len(files), files[k].name)
        return found
    out = []
    for k, path in enumerate(files):
        labels = read_annotation(path)
        try:
            m = measure(
                labels,
                scheme_near(path, chosen),
                pixel_size_um=pixel_size_um or file_pixel_size_um(path),
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


def measure_file(scheme, options: dict, path: str) -> Measurement:
    """:func:`measure` of one label image file (``scheme`` None: the one
    near it; ``options``: keywords of :func:`measure`, a None pixel size
    the file's own): a task of :func:`measure_files` on a cluster."""
    from ..imaging.files import read_annotation
    from ..imaging.pixel_size import file_pixel_size_um

    options = dict(options)
    options["pixel_size_um"] = options.get(
        "pixel_size_um"
    ) or file_pixel_size_um(path)
    try:
        return measure(
            read_annotation(path),
            scheme_near(Path(path), scheme),
            name=Path(path).name,
            **options,
        )
    except ThinsegError as exc:
        text = str(exc).removeprefix(f"{Path(path).name}: ")
        raise ThinsegError(f"{path}: {text}") from None
