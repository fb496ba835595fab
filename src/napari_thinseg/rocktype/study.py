"""Rock typing from plug porosity, permeability and thin-section images.

Petrophysics from plugs alone: the Winland r35 pore-throat radius and its
class, the reservoir quality index (RQI), normalised porosity (phi_z), the
flow zone indicator (FZI) and hydraulic flow units. From images: image
features fitted to plug porosity and log10 permeability by ridge
regression, and to rock-type labels by k-nearest neighbours, every score
cross-validated and set against a naive baseline, because thin-section
studies have few samples (the models and the cross-validation live in
:mod:`.regression`; the samples and features tables are read and checked
in :mod:`.samples`).
Optical porosity misses micro-porosity, so a per-formation linear
calibration to plug porosity is offered and reported, not hidden.

Units throughout: porosity as a fraction, permeability in millidarcy (mD),
r35, RQI and FZI in micrometres. numpy only (no scikit-learn).
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from ..imaging.atomic import (
    atomic_write_bytes,
    atomic_write_text,
    ensure_dir,
    refuse_existing,
)
from .regression import (
    ClassificationCV,
    NearestNeighbours,
    RegressionCV,
    Ridge,
    cross_validate_classifier,
    cross_validate_regression,
    no_information_rate,
    rmse_r2,
)
from .tables import Features, Samples, model_columns

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

SMALL_SAMPLE_N = 20
"""Below this many training samples the output warns that CV scores are
themselves uncertain."""

MIN_CALIBRATION_SAMPLES = 3
OPTICAL_POROSITY = "porosity_fraction"
"""The image feature that is the optical (visible, epoxy) porosity."""


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


# -- optical porosity calibration ---------------------------------------
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


# -- the whole study ---------------------------------------------------------
@dataclass
class RockTypeResult:
    """Everything :func:`rock_typing` found; :meth:`rows` is the CSV."""

    samples: Samples
    r35_um: np.ndarray
    pore_throat: np.ndarray
    rqi_um: np.ndarray
    phi_z: np.ndarray
    fzi_um: np.ndarray
    flow_unit: np.ndarray
    flow_unit_edges: tuple[float, ...]
    flow_unit_method: str
    features: Features | None = None
    feature_columns: tuple[str, ...] = ()
    training: np.ndarray | None = None
    to_predict: np.ndarray | None = None
    porosity_cv: RegressionCV | None = None
    log_k_cv: RegressionCV | None = None
    rock_type_cv: ClassificationCV | None = None
    pore_throat_cv: ClassificationCV | None = None
    porosity_pred: np.ndarray | None = None
    log_k_pred: np.ndarray | None = None
    rock_type_pred: list | None = None
    calibrations: dict[str, Calibration] | None = None
    calibration_cv: RegressionCV | None = None
    porosity_calibrated: np.ndarray | None = None
    optical_bias: float | None = None
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, object]]:
        """One dict per sample, in the samples' order."""
        s = self.samples
        out = []
        feats = (
            self.features.take(s.names) if self.features is not None else None
        )
        for i, name in enumerate(s.names):
            row: dict[str, object] = {"sample": name}
            if s.formations is not None:
                row["formation"] = s.formations[i]
            if s.rock_types is not None:
                row["rock_type"] = s.rock_types[i]
            if s.images is not None:
                row["image"] = s.images[i]
            row["porosity_fraction"] = s.porosity[i]
            row["permeability_md"] = s.permeability_md[i]
            row["r35_um"] = self.r35_um[i]
            row["pore_throat_class"] = self.pore_throat[i]
            row["rqi_um"] = self.rqi_um[i]
            row["phi_z"] = self.phi_z[i]
            row["fzi_um"] = self.fzi_um[i]
            unit = int(self.flow_unit[i])
            row["flow_unit"] = unit if unit > 0 else None
            if feats is not None:
                for c, col in enumerate(self.features.columns):
                    row[f"img_{col}"] = feats[i, c]
            if self.porosity_pred is not None:
                row.update(self._prediction_row(i))
            out.append(row)
        return out

    def _prediction_row(self, i) -> dict[str, object]:
        row: dict[str, object] = {}
        held_out = bool(self.training[i])
        known = held_out or bool(self.to_predict[i])
        row["prediction"] = (
            "held-out" if held_out else "new" if known else None
        )
        phi, logk = self.porosity_pred[i], self.log_k_pred[i]
        row["porosity_pred"] = phi
        row["log10_k_pred"] = logk
        row["permeability_md_pred"] = 10.0**logk
        if self.rock_type_pred is not None:
            row["rock_type_pred"] = self.rock_type_pred[i]
        if self.porosity_calibrated is not None:
            row["porosity_calibrated"] = self.porosity_calibrated[i]
        r35 = np.nan
        if np.isfinite(phi) and 0 < phi < 1:
            r35 = float(winland_r35(10.0**logk, phi))
        row["r35_um_pred"] = r35
        row["pore_throat_class_pred"] = (
            pore_throat_class(r35) if np.isfinite(r35) else None
        )
        row["flow_unit_pred"] = (
            int(flow_units(fzi(10.0**logk, phi), self.flow_unit_edges))
            if np.isfinite(r35)
            else None
        )
        return row

    def lines(self) -> list[str]:
        """The report printed by ``thinseg rocktype``."""
        s = self.samples
        n_meas = int(s.measured.sum())
        out = [
            f"{len(s)} sample(s), {n_meas} with plug porosity and "
            f"permeability; {s.porosity_note}",
        ]
        counts = Counter(self.pore_throat[s.measured])
        out.append(
            "pore-throat classes (Winland r35): "
            + ", ".join(
                f"{n} {counts[n]}" for n, _ in PORE_THROAT_CLASSES if counts[n]
            )
        )
        units = Counter(self.flow_unit[s.measured].tolist())
        out.append(
            f"flow units ({self.flow_unit_method}): "
            + ", ".join(f"unit {u}: {units[u]}" for u in sorted(units))
        )
        if self.porosity_cv is not None:
            cv = self.porosity_cv
            out.append(
                f"image models on {cv.n} sample(s) with "
                f"{len(self.feature_columns)} feature(s), {cv.cv} CV:"
            )
            for res in (
                self.porosity_cv,
                self.log_k_cv,
                self.rock_type_cv,
                self.pore_throat_cv,
                self.calibration_cv,
            ):
                if res is not None:
                    out.append("  " + res.summary())
            if cv.n < SMALL_SAMPLE_N:
                out.append(
                    f"warning: only {cv.n} training sample(s) (< "
                    f"{SMALL_SAMPLE_N}): the CV scores are themselves "
                    "uncertain; treat the image models as indicative"
                )
        if self.optical_bias is not None:
            side = "below" if self.optical_bias < 0 else "above"
            out.append(
                "optical porosity is on average "
                f"{abs(self.optical_bias):.4f} {side} plug porosity "
                "(micro-porosity is invisible in thin section)"
            )
        if self.calibrations:
            out.append("optical porosity calibration:")
            out += ["  " + c.summary() for c in self.calibrations.values()]
        out += [f"note: {n}" for n in self.notes]
        return out

    def write(self, out: str | Path, overwrite: bool = False):
        """Write ``out/rocktypes.csv`` and ``out/crossplot.png``."""
        out = Path(out)
        paths = (out / "rocktypes.csv", out / "crossplot.png")
        refuse_existing(paths, overwrite)
        ensure_dir(out)
        m = self.samples.measured
        png = crossplot_png(
            self.samples.porosity[m],
            self.samples.permeability_md[m],
            self.pore_throat[m],
        )
        atomic_write_text(paths[0], rows_to_csv(self.rows()))
        atomic_write_bytes(paths[1], png)
        return paths


def rock_typing(
    samples: Samples,
    features: Features | None = None,
    *,
    n_flow_units: int | None = None,
    calibrate: bool = False,
    n_folds: int | None = None,
    seed: int = 0,
) -> RockTypeResult:
    """Petrophysics for every measured sample, and with ``features`` the
    cross-validated image models and predictions for unmeasured samples.

    Parameters
    ----------
    samples : Samples
        From :func:`.samples.read_samples` or
        :func:`.samples.samples_from_columns`.
    features : Features, optional
        Image features by sample name; samples without a row have none.
    n_flow_units : int, optional
        Natural breaks of log10 FZI into this many units; default fixed
        :data:`FZI_BIN_EDGES_UM`.
    calibrate : bool
        Fit :func:`fit_calibration` per formation (optical porosity is the
        ``porosity_fraction`` feature) and report calibrated porosity.
    n_folds, seed
        See :func:`.regression.cv_folds`.
    """
    n = len(samples)
    m = samples.measured
    nan = np.full(n, np.nan)
    r35, rq, pz, fz = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    phi, k = samples.porosity[m], samples.permeability_md[m]
    if m.any():
        r35[m] = winland_r35(k, phi)
        rq[m] = rqi(k, phi)
        pz[m] = phi_z(phi)
        fz[m] = rq[m] / pz[m]
    classes = np.full(n, None, dtype=object)
    classes[m] = pore_throat_class(r35[m])
    units = np.zeros(n, dtype=int)
    if n_flow_units is None:
        edges = FZI_BIN_EDGES_UM
        how = "fixed FZI bins doubling from 0.09375 um"
    else:
        if not m.any():
            raise ThinsegError("flow units need measured samples")
        edges = flow_unit_edges(fz[m], n_flow_units)
        how = f"natural breaks of log10 FZI, {len(edges) + 1} unit(s)" + (
            f" (asked {n_flow_units}; fewer distinct FZI values)"
            if len(edges) + 1 < n_flow_units
            else ""
        )
    units[m] = flow_units(fz[m], edges)
    result = RockTypeResult(
        samples, r35, classes, rq, pz, fz, units, tuple(edges), how
    )
    if features is None:
        if not m.all():
            i = int(np.flatnonzero(~m)[0])
            raise ThinsegError(
                f"{samples.source}: sample {samples.names[i]!r} has no "
                "porosity/permeability and no image features to predict from"
            )
        return result
    _image_models(result, features, calibrate, n_folds, seed)
    return result


def _image_models(result, features, calibrate, n_folds, seed):
    s = result.samples
    keep = model_columns(features.columns)
    features = Features(
        features.names,
        keep,
        features.values[:, [features.columns.index(c) for c in keep]],
    )
    x_all = features.take(s.names)
    known = set(features.names)
    has = np.array([n in known for n in s.names])
    lacking = np.flatnonzero(~s.measured & ~has)
    if lacking.size:
        i = int(lacking[0])
        raise ThinsegError(
            f"{s.source}: sample {s.names[i]!r} has no porosity/"
            "permeability and no image features to predict from"
        )
    train = s.measured & has
    new = ~s.measured & has
    n_train = int(train.sum())
    if n_train < 3:
        raise ThinsegError(
            f"{n_train} sample(s) have both plug measurements and image "
            "features; the image models need at least 3"
        )
    xt = x_all[train]
    usable = np.all(np.isfinite(xt), axis=0) & (np.ptp(xt, axis=0) > 0)
    # a column equal to an earlier one (optical porosity and the fraction
    # of a scheme's only pore class) adds nothing but double weight
    for j in np.flatnonzero(usable):
        if any(
            np.array_equal(xt[:, i], xt[:, j]) for i in range(j) if usable[i]
        ):
            usable[j] = False
    cols = tuple(c for c, u in zip(features.columns, usable, strict=True) if u)
    dropped = [
        c for c, u in zip(features.columns, usable, strict=True) if not u
    ]
    if dropped:
        result.notes.append(
            "features left out (missing in a training sample, constant or "
            "a duplicate): " + ", ".join(dropped)
        )
    if not cols:
        raise ThinsegError(
            "no image feature both varies and is present in every "
            "training sample"
        )
    x = x_all[:, usable]
    # a new sample missing a feature gets the training mean (neutral after
    # standardising) rather than no prediction at all
    col_mean = x[train].mean(axis=0)
    gaps = new[:, None] & ~np.isfinite(x)
    if gaps.any():
        x = np.where(gaps, col_mean, x)
        names = [s.names[i] for i in np.flatnonzero(gaps.any(axis=1))]
        result.notes.append(
            "training-mean values filled in for missing features of "
            + ", ".join(names)
        )
    result.features = features
    result.feature_columns = cols
    result.training, result.to_predict = train, new
    phi_t = s.porosity[train]
    logk_t = np.log10(s.permeability_md[train])
    result.porosity_cv = cross_validate_regression(
        x[train], phi_t, "porosity (fraction)", n_folds, seed
    )
    result.log_k_cv = cross_validate_regression(
        x[train], logk_t, "log10 k (mD)", n_folds, seed
    )
    n = len(s)
    result.porosity_pred = np.full(n, np.nan)
    result.log_k_pred = np.full(n, np.nan)
    result.porosity_pred[train] = result.porosity_cv.predicted
    result.log_k_pred[train] = result.log_k_cv.predicted
    if new.any():
        result.porosity_pred[new] = (
            Ridge().fit(x[train], phi_t).predict(x[new])
        )
        result.log_k_pred[new] = Ridge().fit(x[train], logk_t).predict(x[new])
    # the pore-throat class of the held-out phi and k predictions, scored
    # against the measured class with the majority class as baseline
    # (a predicted porosity outside (0, 1) is clipped just inside it)
    pred_phi = np.clip(result.porosity_cv.predicted, 1e-4, 0.9999)
    pred_k = 10.0**result.log_k_cv.predicted
    pred_class = pore_throat_class(winland_r35(pred_k, pred_phi))
    true_class = result.pore_throat[train]
    result.pore_throat_cv = ClassificationCV(
        "pore-throat class from predicted phi and k",
        tuple(pred_class),
        float(np.mean(pred_class == true_class)),
        no_information_rate(list(true_class)),
        n_train,
        len(set(true_class)),
        result.porosity_cv.cv,
    )
    _rock_type_model(result, x, train, new, n_folds, seed)
    _optical(result, x_all, train, new, calibrate)


def _rock_type_model(result, x, train, new, n_folds, seed):
    s = result.samples
    if s.rock_types is None:
        return
    labelled = train & np.array([r is not None for r in s.rock_types])
    types = [s.rock_types[i] for i in np.flatnonzero(labelled)]
    if len(set(types)) < 2 or len(types) < 3:
        result.notes.append(
            "no rock-type classifier: needs at least 3 labelled training "
            "samples of at least 2 rock types"
        )
        return
    result.rock_type_cv = cross_validate_classifier(
        x[labelled], types, "rock type", n_folds, seed
    )
    pred = [None] * len(s)
    for i, p in zip(
        np.flatnonzero(labelled), result.rock_type_cv.predicted, strict=True
    ):
        pred[i] = p
    if new.any():
        model = NearestNeighbours().fit(x[labelled], types)
        for i, p in zip(
            np.flatnonzero(new), model.predict(x[new]), strict=True
        ):
            pred[i] = p
    result.rock_type_pred = pred


def _optical(result, x_all, train, new, calibrate):
    s = result.samples
    feats = result.features
    if OPTICAL_POROSITY not in feats.columns:
        if calibrate:
            raise ThinsegError(
                f"calibration needs the image feature {OPTICAL_POROSITY!r} "
                "(optical porosity)"
            )
        return
    optical = x_all[:, feats.columns.index(OPTICAL_POROSITY)]
    ok = train & np.isfinite(optical)
    if ok.any():
        result.optical_bias = float(np.mean(optical[ok] - s.porosity[ok]))
    if not calibrate:
        return
    idx = np.flatnonzero(ok)
    forms = None if s.formations is None else [s.formations[i] for i in idx]
    cals = fit_calibration(optical[idx], s.porosity[idx], forms)
    result.calibrations = cals
    # held-out calibrated porosity: each sample from the line fitted to the
    # rest of its formation, so the score is not the in-sample fit; the
    # baseline is the raw optical porosity, bias and all
    keys = _formation_keys(forms, len(idx), "sample")
    held = np.empty(len(idx))
    for j in range(len(idx)):
        same = [t for t in range(len(idx)) if keys[t] == keys[j] and t != j]
        xo, yo = optical[idx[same]], s.porosity[idx[same]]
        b, a = np.polyfit(xo, yo, 1) if np.ptp(xo) > 0 else (0.0, yo.mean())
        held[j] = a + b * optical[idx[j]]
    base = optical[idx]
    y = s.porosity[idx]
    rmse, r2 = rmse_r2(y, held)
    b_rmse, b_r2 = rmse_r2(y, base)
    result.calibration_cv = RegressionCV(
        "calibrated optical porosity",
        held,
        base,
        rmse,
        r2,
        b_rmse,
        b_r2,
        len(idx),
        "leave-one-out within formation",
        "raw optical porosity",
    )
    want = (train | new) & np.isfinite(optical)
    if s.formations is not None:
        # a new image of unknown formation gets no calibrated porosity
        # rather than some other formation's line
        unknown = want & np.array([f is None for f in s.formations])
        if unknown.any():
            result.notes.append(
                "no calibrated porosity (no formation) for "
                + ", ".join(s.names[i] for i in np.flatnonzero(unknown))
            )
        want &= ~unknown
    want = np.flatnonzero(want)
    out = np.full(len(s), np.nan)
    out[want] = apply_calibration(
        cals,
        optical[want],
        None if s.formations is None else [s.formations[i] for i in want],
    )
    result.porosity_calibrated = out


# -- outputs -----------------------------------------------------------------
def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


def rows_to_csv(rows: Sequence[Mapping[str, object]]) -> str:
    """CSV text of dict rows (columns: union, first-seen order)."""
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


CLASS_COLORS = {
    "nano": "#7b3294",
    "micro": "#c2a5cf",
    "meso": "#a6dba0",
    "macro": "#1b9e77",
    "mega": "#00441b",
}
CROSSPLOT_SIZE_PX = (700, 500)
"""Width and height of the cross-plot PNG."""


def crossplot_png(
    porosity, permeability_md, classes=None, dpi: int = 100
) -> bytes:
    """PNG bytes of log k against porosity with Winland r35 iso-lines.

    Points are coloured by pore-throat class; the iso-lines are the class
    boundaries (0.1, 0.5, 2 and 10 um). Drawn with the Agg canvas directly,
    so no GUI backend or pyplot state is touched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    phi = np.asarray(porosity, dtype=float)
    k = np.asarray(permeability_md, dtype=float)
    if classes is None:
        classes = pore_throat_class(winland_r35(k, phi)) if phi.size else []
    w, h = CROSSPLOT_SIZE_PX
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = max(0.35, float(phi.max()) * 1.1) if phi.size else 0.35
    grid = np.linspace(0.005, min(top, 0.99), 200)
    for _, r in PORE_THROAT_CLASSES[1:]:
        ax.plot(
            100 * grid,
            winland_permeability(r, grid),
            color="0.55",
            lw=0.9,
            ls="--",
        )
        ax.annotate(
            f"r35 = {r:g} um",
            (100 * grid[-1], winland_permeability(r, grid[-1])),
            fontsize=7,
            color="0.35",
            ha="right",
            va="bottom",
        )
    classes = np.asarray(classes, dtype=object)
    for name, _ in PORE_THROAT_CLASSES:
        sel = classes == name
        if np.any(sel):
            ax.scatter(
                100 * phi[sel],
                k[sel],
                s=28,
                color=CLASS_COLORS[name],
                edgecolor="k",
                linewidth=0.4,
                label=f"{name} ({int(np.sum(sel))})",
                zorder=3,
            )
    ax.set_yscale("log")
    ax.set_xlim(0, 100 * top)
    if k.size:
        ax.set_ylim(
            min(1e-3, float(k.min()) / 3), max(1e4, float(k.max()) * 3)
        )
    else:
        ax.set_ylim(1e-3, 1e4)
    ax.set_xlabel("porosity (%)")
    ax.set_ylabel("permeability (mD)")
    ax.set_title("porosity-permeability, Winland r35 pore-throat classes")
    ax.grid(True, which="major", lw=0.3, color="0.85")
    if classes.size:
        ax.legend(loc="upper left", fontsize=8, title="pore throats")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_crossplot(
    path: str | Path, porosity, permeability_md, classes=None, overwrite=False
) -> Path:
    """Write :func:`crossplot_png` to ``path`` atomically."""
    path = Path(path)
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    return atomic_write_bytes(
        path, crossplot_png(porosity, permeability_md, classes)
    )
