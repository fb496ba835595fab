"""``thinseg stats`` run as a user would, in a subprocess."""

import numpy as np
import pandas as pd
import pytest
from test_cli import assert_bad_input, thinseg

from napari_thinseg.imaging.files import write_annotation
from napari_thinseg.schemes import SANDSTONE

PORE = SANDSTONE.id_of("pore")
QUARTZ = SANDSTONE.id_of("quartz")
FELDSPAR = SANDSTONE.id_of("feldspar")


def grains(pore_rows: int) -> np.ndarray:
    """80 x 120 labels: pore rows on top, quartz below with four feldspar
    discs (r = 10) in it."""
    labels = np.full((80, 120), QUARTZ, np.uint8)
    labels[:pore_rows] = PORE
    yy, xx = np.ogrid[:80, :120]
    for x in range(15, 120, 30):
        labels[(yy - 60) ** 2 + (xx - x) ** 2 <= 100] = FELDSPAR
    return labels


@pytest.fixture
def dataset(tmp_path):
    """A folder (with a space) of two label PNGs and a sandstone scheme."""
    folder = tmp_path / "my labels"
    write_annotation(folder / "a.png", grains(20))  # porosity 0.25
    write_annotation(folder / "b.png", grains(40))  # porosity 0.5
    SANDSTONE.save(folder / "classes.json")
    return folder


def test_help_lists_stats():
    proc = thinseg("--help")
    assert proc.returncode == 0
    assert "stats" in proc.stdout


def test_stats_table_and_csv(dataset, tmp_path):
    out = tmp_path / "out" / "stats.csv"
    proc = thinseg("stats", dataset, "--pixel_size_um", "10", "--csv", out)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "a.png" in text and "b.png" in text
    assert "scheme sandstone" in text
    assert "binomial (Wilson, 300 points)" in text
    assert "block bootstrap (200 resamples, 10 px blocks)" in text
    porosity = [ln for ln in text.splitlines() if "porosity  " in ln]
    assert "25.00" in porosity[0] and "50.00" in porosity[1]
    assert "grains:" in text and "phi" in text

    table = pd.read_csv(out)
    assert list(table["name"]) == ["a.png", "b.png"]
    assert table["porosity_fraction"].tolist() == [0.25, 0.5]
    for col in (
        "porosity_binomial_low",
        "porosity_binomial_high",
        "porosity_bootstrap_low",
        "porosity_bootstrap_high",
        "quartz_fraction",
        "quartz_area_mm2",
        "feldspar_fraction",
        "grain_count",
        "grain_mean_phi",
        "grain_sorting_phi",
        "grain_sorting",
        "pore_median_diameter_um",
        "pore_border_fraction",
        "pixel_size_um",
        "counted_pixels",
    ):
        assert col in table.columns, col
    assert table["counted_pixels"].tolist() == [9600, 9600]
    # 9600 px of 10 um: 0.96 mm2
    assert table["counted_area_mm2"][0] == pytest.approx(0.96)
    assert table["grain_count"][0] >= 4
    low, high = table["porosity_binomial_low"], table["porosity_binomial_high"]
    assert (
        (low < table["porosity_fraction"])
        & (table["porosity_fraction"] < high)
    ).all()


def test_stats_points_and_no_sizes(dataset):
    proc = thinseg(
        "stats", dataset / "a.png", "--points", "1000", "--no_sizes"
    )
    assert proc.returncode == 0, proc.stderr
    assert "binomial (Wilson, 1000 points)" in proc.stdout
    assert "grains:" not in proc.stdout


def test_stats_scheme_default_and_flag(tmp_path):
    labels = np.full((30, 30), 3, np.uint8)
    labels[:15] = 5
    write_annotation(tmp_path / "s.png", labels)
    proc = thinseg("stats", tmp_path / "s.png")
    assert proc.returncode == 0, proc.stderr
    assert "scheme seed" in proc.stdout
    assert "bright quartz grains" in proc.stdout
    proc = thinseg("stats", tmp_path / "s.png", "--scheme", "sandstone")
    assert proc.returncode == 0, proc.stderr
    assert "scheme sandstone" in proc.stdout
    assert "feldspar" in proc.stdout


def test_stats_existing_csv_needs_overwrite(dataset, tmp_path):
    out = tmp_path / "stats.csv"
    out.write_text("keep me\n")
    assert_bad_input(
        thinseg("stats", dataset, "--csv", out), "stats.csv", "exists"
    )
    assert out.read_text() == "keep me\n"
    proc = thinseg("stats", dataset, "--csv", out, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert len(pd.read_csv(out)) == 2


def test_stats_non_image_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    assert_bad_input(thinseg("stats", bad), "notes.png")


def test_stats_missing_file(tmp_path):
    assert_bad_input(thinseg("stats", tmp_path / "nothing.png"), "nothing.png")


def test_stats_all_unlabelled(tmp_path):
    write_annotation(tmp_path / "empty.png", np.zeros((10, 10), np.uint8))
    assert_bad_input(thinseg("stats", tmp_path / "empty.png"), "empty.png")


def test_stats_bad_pixel_size(dataset):
    assert_bad_input(
        thinseg("stats", dataset, "--pixel_size_um", "-3"), "pixel_size_um"
    )
