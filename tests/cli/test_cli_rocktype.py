"""``thinseg rocktype`` run as a user runs it (a subprocess)."""

import csv

import imageio.v3 as iio
import numpy as np
import pytest
from test_cli import assert_bad_input, thinseg

from napari_thinseg.rocktype.plots import CROSSPLOT_SIZE_PX


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


SAMPLES = (
    "sample,porosity,permeability_md,formation\n"
    "p1,8.5,0.4,A\np2,12,3.2,A\np3,18,45,B\np4,22,310,B\np5,25,1200,B\n"
    "p6,5,0.02,A\n"
)


@pytest.fixture
def samples_csv(tmp_path):
    p = tmp_path / "samples.csv"
    p.write_text(SAMPLES)
    return p


def test_help_lists_rocktype():
    proc = thinseg("--help")
    assert proc.returncode == 0
    assert "rocktype" in proc.stdout


def test_samples_only(samples_csv, tmp_path):
    out = tmp_path / "out"
    proc = thinseg("rocktype", "--samples", samples_csv, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "porosity read as percent" in proc.stdout
    assert "pore-throat classes" in proc.stdout
    rows = read_rows(out / "rocktypes.csv")
    assert [r["sample"] for r in rows] == [f"p{i}" for i in range(1, 7)]
    # p2: k = 3.2 mD, phi = 12 %: log r35 = 0.732 + 0.588 log 3.2
    # - 0.864 log 12 = 0.732 + 0.297030 - 0.932403 = 0.096627 -> 1.2490
    assert float(rows[1]["r35_um"]) == pytest.approx(1.2490, abs=2e-4)
    assert rows[1]["pore_throat_class"] == "meso"
    for col in ("rqi_um", "phi_z", "fzi_um", "flow_unit"):
        assert rows[1][col]
    png = iio.imread(out / "crossplot.png")
    assert png.shape[:2] == CROSSPLOT_SIZE_PX[::-1]
    assert png[..., :3].std() > 10


@pytest.fixture
def study(tmp_path):
    """10 plugs with thin sections whose pore fraction drives porosity and
    permeability, and one new image without a plug."""
    rng = np.random.default_rng(0)
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    lines = ["sample,image,porosity_fraction,permeability_md,formation"]
    for i in range(11):
        pore = 0.05 + 0.02 * i
        lab = np.full((48, 48), 5, np.uint8)
        lab[rng.random((48, 48)) < 0.3] = 2  # darker grains
        lab.reshape(-1)[rng.permutation(lab.size)[: int(pore * lab.size)]] = 3
        name = f"s{i:02d}" if i < 10 else "new1"
        iio.imwrite(labels / f"{name}.png", lab)
        iio.imwrite(
            images / f"{name}.png",
            rng.integers(0, 255, (48, 48, 3), dtype=np.uint8),
        )
        if i < 10:
            phi = 0.04 + 1.1 * pore + rng.normal(0, 0.004)
            k = 10 ** (-1 + 15 * pore + rng.normal(0, 0.05))
            lines.append(f"{name},{name}.png,{phi:.4f},{k:.4g},{'AB'[i % 2]}")
    samples = tmp_path / "samples.csv"
    samples.write_text("\n".join(lines) + "\n")
    return samples, images, labels


def test_images_cv_calibration_and_new_image(study, tmp_path):
    samples, images, labels = study
    out = tmp_path / "out"
    proc = thinseg(
        "rocktype",
        "--samples",
        samples,
        "--images",
        images,
        "--labels",
        labels,
        "--pixel_size_um",
        "2.5",
        "--calibrate",
        "--out",
        out,
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "leave-one-out CV" in text
    assert "mean-predictor baseline" in text
    assert "warning: only 10 training sample(s) (< 20)" in text
    assert "below plug porosity" in text
    assert "A: plug phi =" in text and "B: plug phi =" in text
    rows = read_rows(out / "rocktypes.csv")
    assert len(rows) == 11
    new = rows[-1]
    assert new["sample"] == "new1" and new["prediction"] == "new"
    assert new["porosity_fraction"] == "" and new["r35_um"] == ""
    assert 0 < float(new["porosity_pred"]) < 1
    assert new["pore_throat_class_pred"]
    held = rows[0]
    assert held["prediction"] == "held-out"
    assert float(held["img_porosity_fraction"]) == pytest.approx(0.05, 0.05)
    assert held["porosity_calibrated"]


def test_features_table(samples_csv, tmp_path):
    feats = tmp_path / "features.csv"
    feats.write_text(
        "sample,porosity_fraction,grain_mean_phi\n"
        "p1,0.05,2.1\np2,0.08,1.9\np3,0.13,1.5\np4,0.17,1.2\n"
        "p5,0.20,1.0\np6,0.03,2.4\nq1,0.15,1.4\n"
    )
    out = tmp_path / "out"
    proc = thinseg(
        "rocktype",
        "--samples",
        samples_csv,
        "--features",
        feats,
        "--out",
        out,
        "--flow_units",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    assert "natural breaks" in proc.stdout
    rows = read_rows(out / "rocktypes.csv")
    assert rows[-1]["sample"] == "q1" and rows[-1]["prediction"] == "new"
    assert {r["flow_unit"] for r in rows[:-1]} == {"1", "2"}


def test_unreadable_csv(tmp_path):
    bad = tmp_path / "samples.csv"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    proc = thinseg("rocktype", "--samples", bad, "--out", tmp_path / "o")
    assert_bad_input(proc, "samples.csv", "not a readable CSV")


def test_missing_column(tmp_path):
    p = tmp_path / "samples.csv"
    p.write_text("sample,porosity\na,0.1\nb,0.2\n")
    proc = thinseg("rocktype", "--samples", p, "--out", tmp_path / "o")
    assert_bad_input(proc, "no permeability_md column")


def test_non_positive_permeability(tmp_path):
    p = tmp_path / "samples.csv"
    p.write_text("sample,porosity,permeability_md\na,0.1,5\nb,0.2,0\n")
    proc = thinseg("rocktype", "--samples", p, "--out", tmp_path / "o")
    assert_bad_input(proc, "'b'", "not positive")


def test_existing_outputs_need_overwrite(samples_csv, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "crossplot.png").write_bytes(b"old")
    proc = thinseg("rocktype", "--samples", samples_csv, "--out", out)
    assert_bad_input(proc, "crossplot.png", "already exists")
    assert (out / "crossplot.png").read_bytes() == b"old"
    proc = thinseg(
        "rocktype", "--samples", samples_csv, "--out", out, "--overwrite"
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "crossplot.png").read_bytes()[:4] == b"\x89PNG"


def test_listed_image_missing(study, tmp_path):
    samples, images, labels = study
    (images / "s03.png").unlink()
    proc = thinseg(
        "rocktype",
        "--samples",
        samples,
        "--images",
        images,
        "--labels",
        labels,
        "--out",
        tmp_path / "o",
    )
    assert_bad_input(proc, "'s03'", "s03.png not found")
    assert not (tmp_path / "o").exists()
