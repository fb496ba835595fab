"""Optical-to-plug porosity calibration, one line per formation.

Optical (thin-section) porosity misses micro-porosity, so plug porosity
is fitted as ``a + b * optical`` per formation by least squares; the
line is reported, not hidden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ThinsegError

MIN_CALIBRATION_SAMPLES = 3
"""Fewest samples of a formation its line is fitted to."""


@dataclass(frozen=True)
class Calibration:
    """plug_phi = a + b * optical_phi, least squares on ``n`` samples."""

    formation: str
    a: float
    b: float
    n: int
    residual_std: float

    def apply(self, optical):
        return self.a + self.b * np.asarray(optical, dtype=float)

    def summary(self) -> str:
        return (
            f"{self.formation}: plug phi = {self.a:.4f} + {self.b:.4f} x "
            f"optical phi (n={self.n}, residual std {self.residual_std:.4f})"
        )


ALL_FORMATIONS = "all samples"
"""The formation name of the one line fitted when formations are not
given."""


def _formation_keys(formations, n, what):
    if formations is None:
        return [ALL_FORMATIONS] * n
    keys = list(formations)
    for i, f in enumerate(keys):
        if f is None or not str(f).strip():
            raise ThinsegError(
                f"{what} {i + 1} has no formation; the optical porosity "
                "calibration is per formation"
            )
    return [str(f) for f in keys]


def fit_calibration(
    optical, plug, formations: Sequence[str] | None = None
) -> dict[str, Calibration]:
    """Per-formation least-squares lines from optical to plug porosity.

    ``formations`` ``None`` fits one line to all samples. The residual std
    uses n - 2 degrees of freedom (0 for exactly 2 points; never here).

    Raises
    ------
    ThinsegError
        A formation with fewer than 3 samples, or whose optical porosity
        does not vary (no slope to fit).
    """
    optical = np.asarray(optical, dtype=float)
    plug = np.asarray(plug, dtype=float)
    keys = _formation_keys(formations, len(optical), "sample")
    out = {}
    for f in sorted(set(keys)):
        idx = [i for i, k in enumerate(keys) if k == f]
        if len(idx) < MIN_CALIBRATION_SAMPLES:
            raise ThinsegError(
                f"formation {f!r}: {len(idx)} sample(s) with plug and "
                "optical porosity; the calibration needs at least "
                f"{MIN_CALIBRATION_SAMPLES} per formation"
            )
        x, y = optical[idx], plug[idx]
        if np.ptp(x) == 0:
            raise ThinsegError(
                f"formation {f!r}: optical porosity is the same in every "
                "sample; no line to fit"
            )
        b, a = np.polyfit(x, y, 1)
        resid = y - (a + b * x)
        std = math.sqrt(float(resid @ resid) / (len(idx) - 2))
        out[f] = Calibration(f, float(a), float(b), len(idx), std)
    return out


def apply_calibration(
    calibrations: Mapping[str, Calibration],
    optical,
    formations: Sequence[str] | None = None,
) -> np.ndarray:
    """Calibrated porosity for each sample from its formation's line."""
    optical = np.asarray(optical, dtype=float)
    keys = _formation_keys(formations, len(optical), "sample")
    out = np.empty_like(optical)
    for i, f in enumerate(keys):
        if f not in calibrations:
            raise ThinsegError(
                f"formation {f!r} has no optical porosity calibration "
                f"(calibrated: {', '.join(calibrations) or 'none'})"
            )
        out[i] = calibrations[f].apply(optical[i])
    return out


def held_out_calibration(
    optical, plug, formations: Sequence[str] | None = None
) -> np.ndarray:
    """Each sample's calibrated porosity from the line fitted to the rest
    of its formation (leave-one-out), so that its score is not the
    in-sample fit.

    Where the rest of a formation has one optical porosity only, the line
    is flat at their mean plug porosity.
    """
    optical = np.asarray(optical, dtype=float)
    plug = np.asarray(plug, dtype=float)
    keys = _formation_keys(formations, len(optical), "sample")
    held = np.empty(len(optical))
    for j in range(len(optical)):
        same = [t for t in range(len(keys)) if keys[t] == keys[j] and t != j]
        xo, yo = optical[same], plug[same]
        b, a = np.polyfit(xo, yo, 1) if np.ptp(xo) > 0 else (0.0, yo.mean())
        held[j] = a + b * optical[j]
    return held
