"""Petrophysics from plug porosity and permeability alone.

The Winland r35 pore-throat radius and its class, the reservoir quality
index (RQI), normalised porosity (phi_z), the flow zone indicator (FZI)
and hydraulic flow units, fixed or by natural breaks.

Units: porosity as a fraction, permeability in millidarcy (mD), r35, RQI
and FZI in micrometres. numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ThinsegError

# -- constants ---------------------------------------------------------------
WINLAND = (0.732, 0.588, 0.864)
"""Winland (Kolodzie 1980): log r35 = a + b log k - c log phi_percent."""

PORE_THROAT_CLASSES = (
    ("nano", 0.0),
    ("micro", 0.1),
    ("meso", 0.5),
    ("macro", 2.0),
    ("mega", 10.0),
)
"""Pore-throat classes by r35 (um) and their lower bounds.

A class holds ``lower <= r35 < next lower``: a radius exactly on a
boundary belongs to the larger class (r35 = 2 um is macro, 10 um is mega,
anything below 0.1 um is nano).
"""

RQI_CONSTANT = 0.0314
"""sqrt(mD) -> um conversion in RQI = 0.0314 sqrt(k / phi)."""

FZI_BIN_EDGES_UM = tuple(0.09375 * 2.0**i for i in range(10))
"""Default flow-unit edges: FZI doubling from 0.09375 to 48 um.

These are the edges of the global hydraulic elements (Corbett & Potter,
2004); fixed edges keep a sample's unit independent of the other samples
in the file. Units count up from 1 (FZI < 0.09375 um) to 11 (>= 48 um);
a value on an edge goes to the higher unit.
"""


# -- petrophysics ------------------------------------------------------------
def _phi_k(porosity, permeability_md=None):
    phi = np.asarray(porosity, dtype=float)
    if not np.all((phi > 0) & (phi < 1)):
        raise ThinsegError(
            "porosity must be a fraction in (0, 1), got "
            f"{phi[~((phi > 0) & (phi < 1))].ravel()[0]!r}"
        )
    if permeability_md is None:
        return phi, None
    k = np.asarray(permeability_md, dtype=float)
    if not np.all(np.isfinite(k) & (k > 0)):
        raise ThinsegError(
            "permeability must be positive (mD), got "
            f"{k[~(np.isfinite(k) & (k > 0))].ravel()[0]!r}"
        )
    return phi, k


def winland_r35(permeability_md, porosity):
    """Winland r35 pore-throat radius (um).

    Parameters
    ----------
    permeability_md : array_like
        Air permeability in mD (> 0).
    porosity : array_like
        Porosity as a fraction in (0, 1); the equation itself takes
        percent and the conversion happens here.
    """
    phi, k = _phi_k(porosity, permeability_md)
    a, b, c = WINLAND
    return 10.0 ** (a + b * np.log10(k) - c * np.log10(100.0 * phi))


def winland_permeability(r35_um, porosity):
    """Permeability (mD) on the r35 iso-line through ``porosity``."""
    phi, _ = _phi_k(porosity)
    a, b, c = WINLAND
    log_k = (np.log10(r35_um) - a + c * np.log10(100.0 * phi)) / b
    return 10.0**log_k


def pore_throat_class(r35_um):
    """Class name(s) for r35 radii (um); see :data:`PORE_THROAT_CLASSES`."""
    r = np.asarray(r35_um, dtype=float)
    lows = [lo for _, lo in PORE_THROAT_CLASSES[1:]]
    idx = np.searchsorted(lows, r, side="right")
    names = np.array([n for n, _ in PORE_THROAT_CLASSES], dtype=object)
    return names[idx] if r.ndim else str(names[idx])


def rqi(permeability_md, porosity):
    """Reservoir quality index, 0.0314 sqrt(k / phi) (um)."""
    phi, k = _phi_k(porosity, permeability_md)
    return RQI_CONSTANT * np.sqrt(k / phi)


def phi_z(porosity):
    """Normalised porosity (pore to grain volume ratio), phi / (1 - phi)."""
    phi, _ = _phi_k(porosity)
    return phi / (1.0 - phi)


def fzi(permeability_md, porosity):
    """Flow zone indicator, RQI / phi_z (um)."""
    return rqi(permeability_md, porosity) / phi_z(porosity)


def natural_breaks(values, n_units: int) -> tuple[float, ...]:
    """Edges splitting ``values`` into ``n_units`` groups, least squares.

    Optimal one-dimensional k-means (Jenks natural breaks) by dynamic
    programming, so the answer is exact and deterministic (no random
    starts). Equal values always share a group; with fewer distinct
    values than ``n_units`` there are fewer groups. An edge lies halfway
    between the neighbouring groups.
    """
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ThinsegError("natural breaks need finite values")
    if n_units < 1:
        raise ThinsegError(f"number of units must be >= 1, got {n_units}")
    u, w = np.unique(x, return_counts=True)
    m = u.size
    k = min(n_units, m)
    c0 = np.concatenate([[0.0], np.cumsum(w)])
    c1 = np.concatenate([[0.0], np.cumsum(w * u)])
    c2 = np.concatenate([[0.0], np.cumsum(w * u * u)])

    def cost(i, j):  # SSE of u[i..j] inclusive; i may be an array
        n = c0[j + 1] - c0[i]
        s = c1[j + 1] - c1[i]
        return np.maximum(c2[j + 1] - c2[i] - s * s / n, 0.0)

    best = np.full((k, m), np.inf)
    start = np.zeros((k, m), dtype=int)
    best[0] = [cost(0, j) for j in range(m)]
    for g in range(1, k):
        for j in range(g, m):
            i = np.arange(g, j + 1)
            total = best[g - 1, i - 1] + cost(i, j)
            t = int(np.argmin(total))  # first minimum: deterministic
            best[g, j] = total[t]
            start[g, j] = i[t]
    edges = []
    j = m - 1
    for g in range(k - 1, 0, -1):
        i = start[g, j]
        edges.append(0.5 * (u[i - 1] + u[i]))
        j = i - 1
    return tuple(sorted(float(e) for e in edges))


def flow_unit_edges(fzi_um, n_units: int | None = None) -> tuple[float, ...]:
    """FZI edges (um) between hydraulic flow units.

    ``None`` gives the fixed :data:`FZI_BIN_EDGES_UM`; a number clusters
    log10 FZI into that many units by :func:`natural_breaks`.
    """
    if n_units is None:
        return FZI_BIN_EDGES_UM
    logs = np.log10(np.asarray(fzi_um, dtype=float))
    return tuple(10.0**e for e in natural_breaks(logs, n_units))


def flow_units(fzi_um, edges: Sequence[float] | None = None):
    """Unit numbers (1 = lowest FZI) of FZI values for the given edges."""
    edges = FZI_BIN_EDGES_UM if edges is None else edges
    return 1 + np.searchsorted(np.asarray(edges), fzi_um, side="right")
