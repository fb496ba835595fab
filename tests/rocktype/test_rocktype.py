import math

import imageio.v3 as iio
import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.rocktype import study as rt
from napari_thinseg.rocktype import tables as sm


# -- petrophysics against hand arithmetic -------------------------------------
def test_winland_r35_hand_computed():
    # k = 100 mD, phi = 20 %:
    # log r35 = 0.732 + 0.588 * log10(100) - 0.864 * log10(20)
    #         = 0.732 + 1.176 - 0.864 * 1.301030 = 1.908 - 1.124090
    #         = 0.783910  ->  r35 = 10 ** 0.783910 = 6.0801 um
    assert rt.winland_r35(100, 0.20) == pytest.approx(6.0801, abs=1e-4)
    # k = 1 mD, phi = 10 %: log r35 = 0.732 + 0 - 0.864 * 1 = -0.132
    # -> r35 = 10 ** -0.132 = 0.73790 um
    assert rt.winland_r35(1, 0.10) == pytest.approx(0.73790, abs=1e-5)
    # vectorised, and the iso-line inverts it
    r = rt.winland_r35([100, 1], [0.2, 0.1])
    assert r == pytest.approx([6.0801, 0.73790], abs=1e-4)
    assert rt.winland_permeability(r, [0.2, 0.1]) == pytest.approx([100, 1])


def test_rqi_phi_z_fzi_hand_computed():
    # k = 100 mD, phi = 0.20: RQI = 0.0314 * sqrt(100 / 0.2)
    #   = 0.0314 * sqrt(500) = 0.0314 * 22.360680 = 0.702125 um
    # phi_z = 0.2 / 0.8 = 0.25; FZI = 0.702125 / 0.25 = 2.808501 um
    assert rt.rqi(100, 0.2) == pytest.approx(0.702125, abs=1e-6)
    assert rt.phi_z(0.2) == pytest.approx(0.25)
    assert rt.fzi(100, 0.2) == pytest.approx(2.808501, abs=1e-6)
    # k = 0.5 mD, phi = 0.08: RQI = 0.0314 * sqrt(6.25) = 0.0314 * 2.5
    #   = 0.0785; phi_z = 0.08 / 0.92 = 0.0869565; FZI = 0.0785 / 0.0869565
    #   = 0.90275 um
    assert rt.rqi(0.5, 0.08) == pytest.approx(0.0785)
    assert rt.fzi(0.5, 0.08) == pytest.approx(0.90275, abs=1e-5)


@pytest.mark.parametrize(
    ("r35", "name"),
    [
        (0.05, "nano"),
        (0.0999, "nano"),
        (0.1, "micro"),  # a boundary belongs to the larger class
        (0.4999, "micro"),
        (0.5, "meso"),
        (1.9999, "meso"),
        (2.0, "macro"),
        (9.9999, "macro"),
        (10.0, "mega"),
        (250.0, "mega"),
    ],
)
def test_pore_throat_class_boundaries(r35, name):
    assert rt.pore_throat_class(r35) == name
    assert list(rt.pore_throat_class([r35, r35])) == [name, name]


@pytest.mark.parametrize(
    ("k", "phi"), [(0, 0.2), (-1, 0.2), (10, 0), (10, 1.0), (10, -0.1)]
)
def test_petrophysics_refuses_impossible_values(k, phi):
    with pytest.raises(ThinsegError):
        rt.winland_r35(k, phi)
    with pytest.raises(ThinsegError):
        rt.fzi(k, phi)


# -- flow units ---------------------------------------------------------------
def test_fixed_flow_unit_bins():
    edges = rt.FZI_BIN_EDGES_UM
    assert edges[0] == 0.09375 and edges[-1] == 48.0
    units = rt.flow_units([0.05, 0.09375, 0.1, 0.75, 47.9, 48.0, 100.0])
    assert units.tolist() == [1, 2, 2, 5, 10, 11, 11]


def test_natural_breaks_recovers_groups_and_is_deterministic():
    rng = np.random.default_rng(1)
    fzi = np.concatenate(
        [
            10 ** rng.normal(-0.8, 0.05, 12),
            10 ** rng.normal(0.0, 0.05, 9),
            10 ** rng.normal(0.9, 0.05, 7),
        ]
    )
    truth = np.repeat([1, 2, 3], [12, 9, 7])
    edges = rt.flow_unit_edges(fzi, 3)
    assert len(edges) == 2
    assert np.array_equal(rt.flow_units(fzi, edges), truth)
    # same answer for shuffled input and on every call
    perm = rng.permutation(fzi.size)
    assert rt.flow_unit_edges(fzi[perm], 3) == edges
    assert rt.flow_unit_edges(fzi, 3) == edges


def test_natural_breaks_keeps_equal_values_together():
    assert rt.natural_breaks([1, 1, 1, 1], 3) == ()
    assert rt.natural_breaks([1, 1, 5, 5, 9], 3) == (3.0, 7.0)
    with pytest.raises(ThinsegError):
        rt.natural_breaks([1, 2], 0)


# -- calibration --------------------------------------------------------------
def test_calibration_recovers_a_b_per_formation():
    rng = np.random.default_rng(5)
    optical = rng.uniform(0.05, 0.25, 20)
    forms = ["North"] * 12 + ["South"] * 8
    truth = {"North": (0.03, 1.10), "South": (0.06, 0.85)}
    plug = np.array(
        [
            truth[f][0] + truth[f][1] * o
            for f, o in zip(forms, optical, strict=True)
        ]
    ) + rng.normal(0, 0.002, 20)
    cals = rt.fit_calibration(optical, plug, forms)
    for f, (a, b) in truth.items():
        assert cals[f].a == pytest.approx(a, abs=0.006)
        assert cals[f].b == pytest.approx(b, abs=0.04)
        assert cals[f].residual_std == pytest.approx(0.002, rel=0.6)
    assert cals["North"].n == 12 and cals["South"].n == 8
    got = rt.apply_calibration(cals, [0.1, 0.1], ["North", "South"])
    assert got == pytest.approx([0.03 + 0.11, 0.06 + 0.085], abs=0.005)


def test_calibration_refuses_small_formations():
    with pytest.raises(ThinsegError, match="'B'.*2 sample.*at least 3"):
        rt.fit_calibration(
            [0.1, 0.2, 0.3, 0.1, 0.2], [0.1] * 5, ["A"] * 3 + ["B"] * 2
        )
    cals = rt.fit_calibration([0.1, 0.2, 0.3], [0.12, 0.22, 0.33])
    assert list(cals) == [rt.ALL_FORMATIONS]
    with pytest.raises(ThinsegError, match="'Z' has no"):
        rt.apply_calibration(cals, [0.1], ["Z"])
    with pytest.raises(ThinsegError, match="same in every"):
        rt.fit_calibration([0.1] * 3, [0.1, 0.2, 0.3])


# -- the whole study ----------------------------------------------------------
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
    feats = sm.features_from_rows(names, rows)
    return sm.samples_from_columns(columns, "study.csv"), feats


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


# -- cross-plot ---------------------------------------------------------------
def test_crossplot_png_written_and_not_blank(tmp_path):
    phi = np.array([0.08, 0.12, 0.18, 0.22, 0.25])
    k = np.array([0.05, 2.0, 40.0, 300.0, 2000.0])
    path = rt.save_crossplot(tmp_path / "x.png", phi, k)
    image = iio.imread(path)
    w, h = rt.CROSSPLOT_SIZE_PX
    assert image.shape[:2] == (h, w)
    rgb = image[..., :3].reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 20
    assert rgb.std() > 10
    # the points are there in their class colours
    for name in set(rt.pore_throat_class(rt.winland_r35(k, phi))):
        colour = rt.CLASS_COLORS[name]
        want = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        assert (np.abs(rgb.astype(int) - want).sum(axis=1) == 0).any(), name
    with pytest.raises(ThinsegError, match="already exists"):
        rt.save_crossplot(path, phi, k)


def test_result_write_refuses_existing(tmp_path):
    samples, _ = study(new=0)
    res = rt.rock_typing(samples)
    csv_path, png = res.write(tmp_path / "out")
    assert csv_path.read_text().startswith("sample,")
    assert png.stat().st_size > 1000
    with pytest.raises(ThinsegError, match="already exists"):
        res.write(tmp_path / "out")
    res.write(tmp_path / "out", overwrite=True)
    assert not math.isnan(res.optical_bias or 0.0)
