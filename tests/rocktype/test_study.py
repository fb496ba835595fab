"""The whole study, through the package's public API."""

import numpy as np
import pytest

from napari_thinseg import rocktype as rt
from napari_thinseg.errors import ThinsegError


def study(n=16, new=2, seed=0):
    """Samples whose porosity and log k follow the optical porosity."""
    rng = np.random.default_rng(seed)
    names = [f"s{i:02d}" for i in range(n + new)]
    optical = rng.uniform(0.04, 0.26, n + new)
    grain = rng.normal(2.0, 0.5, n + new)
    forms = ["A" if i % 2 else "B" for i in range(n + new)]
    phi = 0.03 + 1.05 * optical + rng.normal(0, 0.008, n + new)
    logk = -1.0 + 14 * optical - 0.4 * grain + rng.normal(0, 0.1, n + new)
    rock = ["good" if v > 1.0 else "poor" for v in logk]
    columns = {
        "sample": names,
        "porosity": [f"{v:.4f}" for v in phi[:n]] + [""] * new,
        "permeability_md": [f"{10**v:.4g}" for v in logk[:n]] + [""] * new,
        "rock_type": rock[:n] + [""] * new,
        "formation": forms,
    }
    rows = [
        {
            "porosity_fraction": o,
            "porosity_binomial_low": o - 0.01,  # not a model feature
            "grain_mean_phi": g,
            "clay_fraction": 0.1,  # constant: left out
            "scheme": "seed",  # text: left out
        }
        for o, g in zip(optical, grain, strict=True)
    ]
    feats = rt.features_from_rows(names, rows)
    return rt.samples_from_columns(columns, "study.csv"), feats


def test_rock_typing_without_images():
    samples, _ = study(new=0)
    res = rt.rock_typing(samples)
    rows = res.rows()
    assert len(rows) == 16
    row = rows[0]
    k, phi = row["permeability_md"], row["porosity_fraction"]
    assert row["r35_um"] == pytest.approx(rt.winland_r35(k, phi))
    assert row["fzi_um"] == pytest.approx(rt.fzi(k, phi))
    assert row["flow_unit"] == rt.flow_units(row["fzi_um"])
    assert "porosity_pred" not in row
    text = "\n".join(res.lines())
    assert "pore-throat classes" in text and "flow units" in text
    # unmeasured rows need image features
    with_new, _ = study(new=1)
    with pytest.raises(ThinsegError, match="s16.*no image features"):
        rt.rock_typing(with_new)


def test_rock_typing_with_features_predicts_and_warns():
    samples, feats = study(n=16, new=2)
    res = rt.rock_typing(samples, feats, calibrate=True, n_flow_units=3)
    assert res.feature_columns == ("porosity_fraction", "grain_mean_phi")
    assert res.porosity_cv.n == 16
    assert res.porosity_cv.rmse < 0.5 * res.porosity_cv.baseline_rmse
    assert res.log_k_cv.rmse < 0.5 * res.log_k_cv.baseline_rmse
    assert res.rock_type_cv is not None
    assert res.optical_bias < 0  # optical below plug, and said so
    assert set(res.calibrations) == {"A", "B"}
    rows = res.rows()
    assert rows[0]["prediction"] == "held-out"
    assert rows[-1]["prediction"] == "new"
    assert 0 < rows[-1]["porosity_pred"] < 1
    assert rows[-1]["rock_type_pred"] in {"good", "poor"}
    assert rows[-1]["pore_throat_class_pred"] in dict(rt.PORE_THROAT_CLASSES)
    assert np.isfinite(rows[-1]["porosity_calibrated"])
    assert "img_porosity_fraction" in rows[0]
    text = "\n".join(res.lines())
    assert "warning: only 16 training sample(s) (< 20)" in text
    assert "baseline" in text and "plug phi =" in text
    assert "below plug porosity" in text
    csv = rt.rows_to_csv(rows)
    header = csv.splitlines()[0].split(",")
    assert header[:2] == ["sample", "formation"]
    assert "nan" not in csv


def test_rock_typing_too_few_training_samples():
    samples, feats = study(n=2, new=1)
    with pytest.raises(ThinsegError, match="at least 3"):
        rt.rock_typing(samples, feats)


def test_calibration_in_study_refuses_small_formation():
    samples, feats = study(n=5, new=0)  # formations A: 2, B: 3
    with pytest.raises(ThinsegError, match="'A'.*at least 3"):
        rt.rock_typing(samples, feats, calibrate=True)
