"""The rock-typing study: plug petrophysics and image models together.

:func:`rock_typing` runs the petrophysics of :mod:`.petrophysics` on every
sample with plug porosity and permeability; given image features it also
fits them to plug porosity and log10 permeability by ridge regression,
and to rock-type labels by k-nearest neighbours, every score
cross-validated and set against a naive baseline, because thin-section
studies have few samples (the models and the cross-validation live in
:mod:`.regression`; the samples and features tables are read and checked
in :mod:`.tables`). Optical porosity misses micro-porosity, so a
per-formation linear calibration to plug porosity (:mod:`.calibration`)
is offered and reported, not hidden. What the study finds is a
:class:`.result.RockTypeResult`.

Units throughout: porosity as a fraction, permeability in millidarcy (mD),
r35, RQI and FZI in micrometres. numpy only (no scikit-learn).
"""

from __future__ import annotations

import numpy as np

from ..errors import ThinsegError
from .calibration import (
    apply_calibration,
    fit_calibration,
    held_out_calibration,
)
from .petrophysics import (
    FZI_BIN_EDGES_UM,
    flow_unit_edges,
    flow_units,
    phi_z,
    pore_throat_class,
    rqi,
    winland_r35,
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
from .result import RockTypeResult
from .tables import Features, Samples, model_columns

OPTICAL_POROSITY = "porosity_fraction"
"""The image feature that is the optical (visible, epoxy) porosity."""


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
        From :func:`.tables.read_samples` or
        :func:`.tables.samples_from_columns`.
    features : Features, optional
        Image features by sample name; samples without a row have none.
    n_flow_units : int, optional
        Natural breaks of log10 FZI into this many units; default fixed
        :data:`.petrophysics.FZI_BIN_EDGES_UM`.
    calibrate : bool
        Fit :func:`.calibration.fit_calibration` per formation (optical
        porosity is the ``porosity_fraction`` feature) and report
        calibrated porosity.
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
    held = held_out_calibration(optical[idx], s.porosity[idx], forms)
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
