"""Synthetic sandstone thin sections with exact ground-truth labels.

:func:`synthetic_sandstone` draws a plane-polarised-light image of a packed
sandstone whose pores are filled with blue-dyed epoxy, together with the
label image it was drawn from (ids of
:data:`~napari_thinseg.schemes.SANDSTONE`). It gives
tests, demos and training runs an image whose every pixel's class is known.

How it is built:

1. seed points on a jittered hexagonal grid (a few dropped so that grain
   sizes vary) split the plane into Voronoi cells, one grain per cell;
2. each grain is the part of its cell within a per-grain radius (its
   cell's, times a lognormal factor), measured in a per-grain norm that
   mixes a circle with a random polygon (angular outlines), stretched along
   a random axis and perturbed by smooth noise; a quarter or so of the
   contacts between grains open into 1-3 px epoxy gaps;
3. one global scale on all radii is set from a quantile so that the pore
   fraction of the label image equals ``porosity`` to within a pixel;
4. optional cement: quartz overgrowth rims on some quartz grains, clay
   linings and patchy carbonate cement in the pores;
5. colours with per-grain and in-grain texture, then an illumination
   vignette, a slight blur and Gaussian noise. Labels are never blurred.

The colours are chosen so that gray level alone cannot find the pores: the
blue epoxy and the brown rock fragments (and clay) have the same luminance,
inside the seed's gray bin 3 (0.4 < gray <= 0.6), while only the epoxy is
inside :class:`~napari_thinseg.autolabel.rule.EpoxyWindow`'s default hue
window.

Only numpy, scipy and scikit-image are used; no napari or Qt.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage as ndi

from ..errors import ThinsegError
from ..schemes import SANDSTONE

PORE = SANDSTONE.id_of("pore")
QUARTZ = SANDSTONE.id_of("quartz")
FELDSPAR = SANDSTONE.id_of("feldspar")
ROCK_FRAGMENT = SANDSTONE.id_of("rock fragment")
CARBONATE_GRAIN = SANDSTONE.id_of("carbonate grain")
OPAQUE = SANDSTONE.id_of("opaque")
QUARTZ_CEMENT = SANDSTONE.id_of("quartz cement")
CARBONATE_CEMENT = SANDSTONE.id_of("carbonate cement")
CLAY = SANDSTONE.id_of("clay")
OTHER = SANDSTONE.id_of("other")

GRAIN_MIX = {
    QUARTZ: 0.55,
    FELDSPAR: 0.15,
    ROCK_FRAGMENT: 0.20,
    CARBONATE_GRAIN: 0.04,
    OPAQUE: 0.04,
    OTHER: 0.02,
}
"""Share of grains of each mineral (a lithic-feldspathic sandstone)."""

COLORS = {
    # luminance 0.2125 R + 0.7154 G + 0.0721 B in the comments
    PORE: (0.32, 0.53, 0.89),  # 0.511, hue 0.61, saturation 0.64
    QUARTZ: (0.93, 0.92, 0.88),  # 0.919
    FELDSPAR: (0.83, 0.74, 0.62),  # 0.750 before its cloudy specks
    ROCK_FRAGMENT: (0.65, 0.505, 0.38),  # 0.527, hue 0.08
    CARBONATE_GRAIN: (0.78, 0.69, 0.57),  # 0.701
    OPAQUE: (0.07, 0.065, 0.06),  # 0.065; value 0.07 < the window's 0.2
    QUARTZ_CEMENT: (0.95, 0.95, 0.93),  # 0.949
    CARBONATE_CEMENT: (0.81, 0.72, 0.59),  # 0.730
    CLAY: (0.56, 0.52, 0.30),  # 0.510, hue 0.14 (olive brown)
    OTHER: (0.34, 0.42, 0.19),  # 0.387, hue 0.22 (glauconite green)
}
"""Mean RGB (0..1) of each class before texture, vignette and noise."""

_SEED_OF = {
    0: 0,
    PORE: 3,
    QUARTZ: 5,
    QUARTZ_CEMENT: 5,
    FELDSPAR: 4,
    CARBONATE_GRAIN: 4,
    CARBONATE_CEMENT: 4,
    ROCK_FRAGMENT: 2,
    CLAY: 2,
    OTHER: 2,
    OPAQUE: 1,
}

_MIN_SIDE, _MAX_SIDE = 16, 20000
_FACETS = 7  # polygon facets of the angular part of a grain's outline
_VIGNETTE = 0.12  # light lost in the corners
_SIZE_SPREAD = 0.2  # sd of log grain radius about its cell's radius


# -- public API ---------------------------------------------------------------
def synthetic_sandstone(
    shape=(512, 512),
    seed=0,
    grain_size: float = 18.0,
    porosity: float = 0.2,
    cement: bool = True,
    noise: float = 0.03,
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic blue-epoxy sandstone thin section and its labels.

    Parameters
    ----------
    shape : (int, int)
        Image height and width in pixels, each 16..20000.
    seed : int or None
        Random seed (>= 0); the same seed gives the same image.
    grain_size : float
        Median grain radius in pixels (measured 0.9-1.05 times this),
        3 .. half the shorter side.
    porosity : float
        Pore (epoxy) fraction of the label image, in (0, 0.6); met to
        within a pixel (tiny images and porosities near 0 aside).
    cement : bool
        Add quartz overgrowths, clay linings and carbonate cement.
    noise : float
        Standard deviation of the Gaussian pixel noise (0..1 scale).

    Returns
    -------
    rgb : ndarray
        (H, W, 3) uint8 image.
    labels : ndarray
        (H, W) uint8 ids of :data:`~napari_thinseg.schemes.SANDSTONE`.
    """
    shape, grain_size, porosity, noise = _check_args(
        shape, seed, grain_size, porosity, cement, noise
    )
    rng = np.random.default_rng(seed)
    labels, cell, fields = _layout(rng, shape, grain_size, porosity, cement)
    rgb = _render(rng, labels, cell, fields, grain_size, noise)
    return rgb, labels


def to_seed_labels(labels) -> np.ndarray:
    """Map SANDSTONE ids onto the seed's five gray-level classes.

    Pore -> 3; quartz and quartz cement -> 5; feldspar, carbonate grain and
    carbonate cement -> 4; rock fragment, clay and other -> 2; opaque -> 1;
    0 (unlabelled) stays 0.

    Parameters
    ----------
    labels : array_like of int
        SANDSTONE ids 0..10.

    Returns
    -------
    ndarray
        uint8 :data:`~napari_thinseg.schemes.SEED` ids, same shape.
    """
    labels = np.asarray(labels)
    if labels.dtype.kind not in "uib":
        raise ThinsegError(
            f"labels must be integers, got pixel type {labels.dtype}"
        )
    lut = np.zeros(SANDSTONE.max_id + 1, np.uint8)
    for src, dst in _SEED_OF.items():
        lut[src] = dst
    if labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi > SANDSTONE.max_id:
            raise ThinsegError(
                f"labels must be SANDSTONE ids 0..{SANDSTONE.max_id}, "
                f"got values {lo}..{hi}"
            )
    return lut[labels.astype(np.intp)]


# -- validation ---------------------------------------------------------------
def _check_args(shape, seed, grain_size, porosity, cement, noise):
    try:
        h, w = shape
    except (TypeError, ValueError):
        raise ThinsegError(
            f"shape must be (height, width), got {shape!r}"
        ) from None
    if not all(isinstance(n, numbers.Integral) for n in (h, w)) or any(
        isinstance(n, bool) for n in (h, w)
    ):
        raise ThinsegError(f"shape must be two integers, got {shape!r}")
    h, w = int(h), int(w)
    if not (_MIN_SIDE <= h <= _MAX_SIDE and _MIN_SIDE <= w <= _MAX_SIDE):
        raise ThinsegError(
            f"shape sides must be {_MIN_SIDE}..{_MAX_SIDE} pixels, got {h}x{w}"
        )
    if seed is not None and (
        isinstance(seed, bool)
        or not isinstance(seed, numbers.Integral)
        or seed < 0
    ):
        raise ThinsegError(
            f"seed must be a non-negative integer or None, got {seed!r}"
        )
    grain_size = _number("grain_size", grain_size)
    if not 3 <= grain_size <= min(h, w) / 2:
        raise ThinsegError(
            f"grain_size must be in [3, {min(h, w) / 2:g}] pixels for a "
            f"{h}x{w} image, got {grain_size:g}"
        )
    porosity = _number("porosity", porosity)
    if not 0 < porosity < 0.6:
        raise ThinsegError(f"porosity must be in (0, 0.6), got {porosity:g}")
    noise = _number("noise", noise)
    if not noise >= 0:
        raise ThinsegError(f"noise must be >= 0, got {noise:g}")
    if not isinstance(cement, bool | np.bool_):
        raise ThinsegError(f"cement must be True or False, got {cement!r}")
    return (h, w), grain_size, porosity, noise


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ThinsegError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ThinsegError(f"{name} must be finite, got {value}")
    return value


# -- noise fields -------------------------------------------------------------
def _smooth_noise(rng, shape, scale: float) -> np.ndarray:
    """Zero-mean, unit-std float32 noise with features ``scale`` px wide.

    Filtering a coarse grid and interpolating it up costs a fraction of
    filtering full-size white noise with a wide kernel.
    """
    step = max(scale / 2.0, 1.0)
    coarse_shape = tuple(int(np.ceil(n / step)) + 3 for n in shape)
    coarse = ndi.gaussian_filter(
        rng.standard_normal(coarse_shape, dtype=np.float32),
        1.0,
        mode="wrap",
    )
    out = _upsample(coarse, shape, step)
    out -= out.mean()
    std = out.std()
    return out / std if std > 0 else out


def _upsample(coarse, shape, step):
    """Separable linear interpolation of ``coarse`` at spacing ``step``."""
    for axis, n in enumerate(shape):
        pos = np.arange(n, dtype=np.float32) / np.float32(step) + 1.0
        i0 = pos.astype(np.intp)
        frac = (pos - i0).astype(np.float32)
        lo = np.take(coarse, i0, axis=axis)
        hi = np.take(coarse, i0 + 1, axis=axis)
        frac = frac.reshape((-1, 1) if axis == 0 else (1, -1))
        coarse = lo + (hi - lo) * frac
    return coarse


def _fine_noise(rng, shape, sigma: float = 0.8) -> np.ndarray:
    """Zero-mean, unit-std speckle a pixel or two wide."""
    out = ndi.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), sigma
    )
    return out / max(float(out.std()), 1e-6)


# -- geometry -----------------------------------------------------------------
def _cells(rng, shape, spacing):
    """Voronoi cells of jittered hexagonal seeds.

    Returns the cell id per pixel, the offset (dy, dx) of each pixel from
    its seed, the number of cells and each cell's area. Seeds also fill a
    margin around the image, so cells at the border are whole.
    """
    pad = int(np.ceil(spacing))
    ch, cw = shape[0] + 2 * pad, shape[1] + 2 * pad
    row_step = spacing * np.sqrt(3) / 2
    ys, xs = np.meshgrid(
        np.arange(0, ch + row_step, row_step),
        np.arange(0, cw + spacing, spacing),
        indexing="ij",
    )
    xs = xs + (np.arange(ys.shape[0]) % 2)[:, None] * spacing / 2
    ys, xs = ys.ravel(), xs.ravel()
    jitter = 0.3 * spacing
    ys = ys + rng.uniform(-jitter, jitter, ys.size)
    xs = xs + rng.uniform(-jitter, jitter, xs.size)
    # dropping a few seeds merges cells: larger, elongated grains
    keep = rng.random(ys.size) > 0.12
    py = np.clip(np.round(ys[keep]), 0, ch - 1).astype(np.intp)
    px = np.clip(np.round(xs[keep]), 0, cw - 1).astype(np.intp)
    flat = np.unique(py * cw + px)
    py, px = np.divmod(flat, cw)

    not_seed = np.ones((ch, cw), bool)
    not_seed[py, px] = False
    iy, ix = ndi.distance_transform_edt(
        not_seed, return_distances=False, return_indices=True
    )
    seed_id = np.zeros((ch, cw), np.int32)
    seed_id[py, px] = np.arange(py.size, dtype=np.int32)
    # areas over the whole canvas: border cells are not cut by the frame
    area = np.bincount(seed_id[iy, ix].ravel(), minlength=py.size)
    crop = (slice(pad, pad + shape[0]), slice(pad, pad + shape[1]))
    iy, ix = iy[crop], ix[crop]
    cell = seed_id[iy, ix]
    dy = (np.arange(pad, pad + shape[0])[:, None] - iy).astype(np.float32)
    dx = (np.arange(pad, pad + shape[1])[None, :] - ix).astype(np.float32)
    return cell, dy, dx, py.size, area


def _grain_norm(rng, cell, dy, dx, n, grain_size):
    """Per-pixel distance from the grain centre in the grain's own norm.

    A mix of the Euclidean norm and a random 7-gon's (angular outlines),
    after stretching along a random axis (elongated grains).
    """
    phi = rng.uniform(0, np.pi, n).astype(np.float32)
    stretch = rng.uniform(1.0, 1.45, n).astype(np.float32)
    cos_p, sin_p = np.cos(phi)[cell], np.sin(phi)[cell]
    u = (dx * cos_p + dy * sin_p) / stretch[cell]
    v = dy * cos_p - dx * sin_p
    r = np.hypot(u, v)
    theta0 = rng.uniform(0, 2 * np.pi, n)
    poly = np.zeros_like(r)
    for k in range(_FACETS):
        theta = theta0 + 2 * np.pi * k / _FACETS
        theta = theta + rng.uniform(-0.25, 0.25, n)
        height = rng.uniform(0.8, 1.15, n)
        cu = (np.cos(theta) / height).astype(np.float32)[cell]
        cv = (np.sin(theta) / height).astype(np.float32)[cell]
        np.maximum(poly, u * cu + v * cv, out=poly)
    angular = rng.uniform(0.3, 0.95, n).astype(np.float32)[cell]
    norm = r + angular * (poly - r)
    # smooth noise about a third of a grain across: embayments and bumps
    bumps = _smooth_noise(rng, cell.shape, grain_size * 0.7)
    norm *= 1.0 + 0.09 * bumps
    return norm


def _layout(rng, shape, grain_size, porosity, cement):
    """Label image, per-pixel grain id and the fields rendering needs."""
    # seed spacing for a median grain radius of about grain_size whatever
    # the porosity (measured factor 1.065: cement and gaps take room too)
    spacing = 2.13 * grain_size * np.sqrt(0.8 / (1.0 - porosity))
    cell, dy, dx, n, area = _cells(rng, shape, spacing)
    norm = _grain_norm(rng, cell, dy, dx, n, grain_size)
    # contacts between grains: a 1-px line on one side of every cell edge
    edge = np.zeros(shape, bool)
    edge[:, :-1] |= cell[:, :-1] != cell[:, 1:]
    edge[:-1] |= cell[:-1] != cell[1:]
    del dy, dx

    mineral = rng.choice(
        np.array(list(GRAIN_MIX), np.uint8),
        size=n,
        p=np.array(list(GRAIN_MIX.values())) / sum(GRAIN_MIX.values()),
    )
    # grain radius follows its cell (no grain swamps a small cell) with a
    # lognormal spread; opaques are typically smaller than framework grains
    cell_radius = np.sqrt(np.maximum(area, 1) / np.pi)
    radius = cell_radius * np.exp(rng.normal(0.0, _SIZE_SPREAD, n))
    radius[mineral == OPAQUE] *= 0.75
    radius = radius.astype(np.float32)
    s = norm / radius[cell]  # < alpha inside the grain
    del norm

    # where a smooth field says so a contact is open: an epoxy-filled gap
    # 1 px wide (openness > 0.5) or 3 px (> 1.5) on about a quarter of
    # the contacts; compacted, low-porosity rocks have fewer open contacts
    openness = _smooth_noise(rng, shape, grain_size) - 0.4
    openness *= min(1.0, porosity / 0.15) * 1.6
    ring = ndi.binary_dilation(edge, np.ones((3, 3), bool))
    gap = (edge & (openness > 0.5)) | (ring & (openness > 1.5))
    del openness, ring

    # cement: rims measured in pixels become radius-relative offsets
    overgrown = np.zeros(n, bool)
    rim = np.zeros(n, np.float32)
    carb_patch = np.zeros(shape, bool)
    clay_zone = np.zeros(shape, bool)
    clay_rim = np.zeros(n, np.float32)
    if cement:
        overgrown = (mineral == QUARTZ) & (rng.random(n) < 0.45)
        rim = np.where(overgrown, rng.uniform(1.5, 4.0, n) / radius, 0).astype(
            np.float32
        )
        carb_patch = _smooth_noise(rng, shape, grain_size * 3) > 1.15
        clay_zone = _smooth_noise(rng, shape, grain_size * 2) > 0.35
        clay_rim = (rng.uniform(1.2, 2.5, n) / radius).astype(np.float32)
    clay_zone &= ~overgrown[cell]

    # pore iff t >= alpha: as alpha grows all grains (and their rims
    # with them), the quantile of t sets the pore fraction to a pixel
    offset = rim[cell] + np.where(clay_zone, clay_rim[cell], 0)
    t = s - offset
    t[gap] = np.inf
    t[carb_patch] = -np.inf
    t = t.ravel()
    k = min(int(round((1.0 - porosity) * t.size)), t.size - 1)
    alpha = np.partition(t, k)[k]
    del t
    if not np.isfinite(alpha):
        # only gaps (or only cement) are left at this porosity: the grains
        # fill everything else or nothing, and the pore fraction is off
        alpha = np.float32(s.max() + 1 if alpha > 0 else 1e-6)

    labels = np.full(shape, PORE, np.uint8)
    labels[carb_patch] = CARBONATE_CEMENT
    in_rim = s < alpha + offset
    labels[in_rim & clay_zone] = CLAY
    labels[in_rim & overgrown[cell]] = QUARTZ_CEMENT
    is_grain = s < alpha
    labels[is_grain] = mineral[cell[is_grain]]
    labels[gap] = np.where(carb_patch[gap], CARBONATE_CEMENT, PORE)
    is_grain &= ~gap

    fields = {
        "s": s / alpha,  # 1 at the grain's outline
        "radius": radius * alpha,  # actual grain radius in pixels
        "overgrown": overgrown,
        "contact": edge & is_grain,
        "is_grain": is_grain,
        "n": n,
        "mineral": mineral,
    }
    return labels, cell, fields


# -- rendering ----------------------------------------------------------------
def _render(rng, labels, cell, fields, grain_size, noise):
    """Colour the label image: texture, vignette, blur, noise -> uint8."""
    shape = labels.shape
    n, mineral = fields["n"], fields["mineral"]
    is_grain = fields["is_grain"]
    table = np.zeros((SANDSTONE.max_id + 1, 3), np.float32)
    for cid, rgb in COLORS.items():
        table[cid] = rgb

    # per-grain tint (every grain of a kind differs a bit); pores and
    # cements take row n, which is neutral. Quartz is colourless: a tint
    # would read as a different mineral
    tint = np.ones((n + 1, 3), np.float32)
    spread = np.where(mineral[:, None] == QUARTZ, 0.005, 0.015)
    tint[:n] += rng.normal(0, 1.0, (n, 3)) * spread
    owner = np.where(is_grain, cell, n)
    img = table[labels]
    img *= tint[owner]

    # one scalar shade collects every brightness effect, so the colour
    # image is multiplied once; first per-grain brightness
    bright = np.ones(n + 1, np.float32)
    bright[:n] += rng.normal(0, 0.04, n)
    shade = bright[owner]
    del owner

    # in-grain mottling, strongest in polycrystalline rock fragments;
    # epoxy varies a little with thickness and mixing
    amp = np.full(SANDSTONE.max_id + 1, 0.02, np.float32)
    amp[[QUARTZ, QUARTZ_CEMENT]] = 0.012
    amp[[PORE, FELDSPAR, CARBONATE_GRAIN, CARBONATE_CEMENT]] = 0.03
    amp[[ROCK_FRAGMENT, CLAY]] = 0.06
    amp[[OPAQUE, OTHER]] = 0.08
    mid = _smooth_noise(rng, shape, max(grain_size / 3, 2.0))
    shade *= 1 + amp[labels] * mid
    del mid
    fine = _fine_noise(rng, shape)
    # fine crystals of lithic clasts; fibrous clay
    fine_amp = np.zeros(SANDSTONE.max_id + 1, np.float32)
    fine_amp[[ROCK_FRAGMENT, CLAY]] = (0.04, 0.05)
    shade += fine_amp[labels] * fine
    # sparse fluid/mineral inclusions in quartz
    shade[(labels == QUARTZ) & (fine > 2.7)] *= np.float32(0.72)
    # feldspar turns cloudy with alteration: brownish specks
    specks = (labels == FELDSPAR) & (fine > 0.9)
    del fine
    _cleavage(rng, shade, labels, cell, n)

    # relief: grain edges against epoxy look darker; tight contacts show
    # as thin lines; a dust line marks where an overgrowth began
    s, radius = fields["s"], fields["radius"]
    edge_band = is_grain & (s > 1 - 1.6 / radius[cell])
    dust = edge_band & fields["overgrown"][cell]
    shade[edge_band & ~dust] *= np.float32(0.9)
    shade[fields["contact"]] *= np.float32(0.85)

    # vignette: microscope illumination falls off towards the corners
    yy = np.linspace(-1, 1, shape[0], dtype=np.float32)[:, None]
    xx = np.linspace(-1, 1, shape[1], dtype=np.float32)[None, :]
    light = 1 - _VIGNETTE * (yy**2 + xx**2) / 2
    light *= 1 + 0.02 * _smooth_noise(rng, shape, min(shape) / 2)
    shade *= light

    img *= shade[..., None]
    del shade
    img[specks] *= np.float32([0.86, 0.82, 0.78])
    img[dust] *= np.float32([0.78, 0.74, 0.68])

    img = ndi.gaussian_filter(img, sigma=(0.7, 0.7, 0))
    if noise > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(
            noise
        )
    np.clip(img, 0, 1, out=img)
    return (img * 255 + 0.5).astype(np.uint8)


def _cleavage(rng, shade, labels, cell, n):
    """Faint rhombohedral cleavage stripes in carbonate grains and cement.

    Cement takes the orientation of the cell it fills, so neighbouring
    cement crystals meet along the cell edges as real ones do.
    """
    # drawn even when unused, so later draws do not depend on carbonate
    period = rng.uniform(3.5, 6.0, n).astype(np.float32)
    base = rng.uniform(0, np.pi, n)
    where = np.nonzero(
        (labels == CARBONATE_GRAIN) | (labels == CARBONATE_CEMENT)
    )
    if not where[0].size:
        return
    c = cell[where]
    y, x = (w.astype(np.float32) for w in where)
    period = period[c]
    stripes = np.ones(c.size, np.float32)
    for extra in (0.0, 1.31):  # two cleavage sets ~75 degrees apart
        ang = base + extra
        cos_a = np.cos(ang).astype(np.float32)[c]
        sin_a = np.sin(ang).astype(np.float32)[c]
        wave = np.cos(2 * np.pi * (x * cos_a + y * sin_a) / period)
        stripes -= 0.05 * np.clip(wave, 0, 1) ** 6
    shade[where] *= stripes
