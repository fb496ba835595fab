"""The report of a measurement: table rows and CSV, and the text the CLI
and the Measure dock show."""

import math

import numpy as np
import pandas as pd
import pytest
from _label_images import PORE, QUARTZ, discs_image

from napari_thinseg.errors import ThinsegError
from napari_thinseg.measure import (
    Interval,
    format_measurement,
    measure,
    write_csv,
)
from napari_thinseg.measure.report import (
    NO_VALUE,
    PLAIN,
    SIZE_KEYS,
    counted_text,
    interval_text,
    median_text,
    methods,
    number,
    percent,
    phi_text,
    size_texts,
)
from napari_thinseg.schemes import SANDSTONE


# -- rows, CSV ---------------------------------------------------------------
def test_row_columns_carry_units():
    m = measure(discs_image(), SANDSTONE, pixel_size_um=20.0)
    row = m.to_row()
    for col in (
        "porosity_fraction",
        "porosity_binomial_low",
        "porosity_binomial_high",
        "porosity_bootstrap_low",
        "porosity_bootstrap_high",
        "quartz_fraction",
        "quartz_area_mm2",
        "rock_fragment_fraction",
        "grain_count",
        "grain_mean_phi",
        "grain_sorting_phi",
        "grain_sorting",
        "pore_median_diameter_um",
        "pore_border_fraction",
        "pixel_size_um",
        "counted_pixels",
    ):
        assert col in row, col
    assert row["grain_count"] == m.grains.count
    assert row["binomial_method"] == "binomial (Wilson, 300 points)"


def test_csv_round_trip(tmp_path):
    a = measure(discs_image(), SANDSTONE, pixel_size_um=20.0, name="a")
    b = measure(discs_image()[:100], SANDSTONE, sizes=False, name="b")
    path = write_csv([a, b.to_row()], tmp_path / "sub" / "stats.csv")
    table = pd.read_csv(path)
    assert list(table["name"]) == ["a", "b"]
    assert list(table.columns) == list(a.to_row())
    assert table["porosity_fraction"][0] == a.porosity  # full precision
    assert table["grain_mean_phi"][0] == pytest.approx(a.grains.mean_phi)
    assert table["grain_sorting"][0] == a.grains.sorting_class
    assert np.isnan(table["grain_count"][1])  # not measured: empty cell
    assert table["counted_pixels"][1] == b.counted_pixels
    with pytest.raises(ThinsegError, match="already exists"):
        write_csv([a], path)
    write_csv([b], path, overwrite=True)
    assert list(pd.read_csv(path)["name"]) == ["b"]


# -- text --------------------------------------------------------------------
def half_pore():
    """7900 counted px of 10 um: pore left, quartz right, a 10 x 10
    unlabelled corner."""
    labels = np.full((100, 80), QUARTZ, np.uint8)
    labels[:, :40] = PORE
    labels[:10, :10] = 0
    return labels


def test_numbers_as_text_typeset_and_plain():
    assert percent(0.125) == "12.50" and percent(0.125, 1) == "12.5"
    assert percent(None) == NO_VALUE == "–"
    assert percent(math.nan, style=PLAIN) == "-"
    interval = Interval(0.091, 0.159, "x")
    assert interval_text(interval) == "9.10–15.90"
    assert interval_text(interval, 1, PLAIN) == "9.1-15.9"
    assert interval_text(None) == NO_VALUE
    assert interval_text(Interval(math.nan, math.nan, "x"), 1, PLAIN) == "-"
    assert number(0.0032) == "0.0032" and number(None) == NO_VALUE
    assert number(math.nan, style=PLAIN) == "-"
    assert phi_text(1.234) == "1.23 φ" and phi_text(1.234, PLAIN) == (
        "1.23 phi"
    )
    assert phi_text(None) == NO_VALUE


def test_median_text_in_micrometres_or_pixels():
    with_size = measure(half_pore(), SANDSTONE, pixel_size_um=10.0).grains
    assert median_text(with_size) == "713.6 µm"
    assert median_text(with_size, 0, PLAIN) == "714 um"
    bare = measure(half_pore(), SANDSTONE).grains
    assert median_text(bare) == median_text(bare, 0, PLAIN) == "71.4 px"


def test_format_measurement_is_the_cli_table():
    m = measure(
        half_pore(), SANDSTONE, pixel_size_um=10.0, n_boot=0, name="half"
    )
    lines = format_measurement(m).splitlines()
    assert lines[0] == (
        "half: 7,900 counted px (0.79 mm2 at 10 um/px), scheme sandstone"
    )
    table = [
        "  class                  %  binomial 95%  bootstrap 95%",
        "  pore               49.37     43.8-55.0              -",
        "  quartz             50.63     45.0-56.2              -",
        "  feldspar            0.00       0.0-1.3              -",
    ]
    assert lines[1:5] == table
    assert lines[12] == (
        "  porosity           49.37     43.8-55.0              -"
    )
    assert lines[13] == (
        "  binomial: binomial (Wilson, 300 points); bootstrap: not "
        "available (fewer than 2 blocks)"
    )
    assert lines[14] == "  grains: 1; median 714 um; 1 on the edge"
    assert lines[15] == (
        "  pore bodies: 1; median 705 um; 100.0 % of pore area touches the "
        "edge"
    )
    assert len(lines) == 16


def test_format_measurement_with_phi_and_without_sizes():
    m = measure(discs_image(), SANDSTONE, pixel_size_um=50.0)
    grains = format_measurement(m).splitlines()[-2]
    assert grains.startswith("  grains: 21; mean ")
    assert " phi; sorting " in grains and "(very well sorted)" in grains
    bare = format_measurement(measure(discs_image(), SANDSTONE, sizes=False))
    assert "grains:" not in bare and "pore bodies" not in bare


def test_dock_texts_of_a_measurement():
    m = measure(discs_image(), SANDSTONE, pixel_size_um=50.0, name="discs")
    assert counted_text(m) == (
        "discs: 78,000 labelled pixels counted (50 µm/px)"
    )
    assert methods(m) == (
        "95 % intervals: binomial (Wilson, 300 points); block bootstrap "
        "(200 resamples, 32 px blocks)"
    )
    sizes = size_texts(m)
    assert list(sizes) == list(SIZE_KEYS)
    assert sizes["grains"] == "21 (0 on the edge)"
    assert sizes["mean"] == phi_text(m.grains.mean_phi)
    assert sizes["sorting"] == (
        f"{phi_text(m.grains.sorting_phi)}, very well sorted"
    )
    assert sizes["median"] == "1183.5 µm"
    assert sizes["pores"] == f"0, median {NO_VALUE}"
    assert sizes["border"] == NO_VALUE

    one_block = measure(discs_image(), SANDSTONE, block_px=1000, sizes=False)
    assert counted_text(one_block).endswith("(pixel size unknown)")
    assert methods(one_block).endswith(
        "no block bootstrap (fewer than two blocks counted)"
    )
    assert set(size_texts(one_block).values()) == {NO_VALUE}


def test_sizes_without_a_pixel_size_are_given_in_pixels():
    """Issue 26: mean size and sorting showed a bare dash without a pixel
    size; they are given from the sizes in pixels, and say so."""
    from napari_thinseg.measure.report import NO_PIXEL_SIZE

    labels = np.full((120, 120), 3, np.uint8)  # epoxy around grains
    for k, r in enumerate((4, 5, 6, 7, 8, 5, 6, 7, 4)):
        cy, cx = 20 + 40 * (k // 3), 20 + 40 * (k % 3)
        yy, xx = np.ogrid[:120, :120]
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 5
    m = measure(labels, "seed", n_boot=0)
    texts = size_texts(m)
    assert texts["mean"].endswith(f"px ({NO_PIXEL_SIZE}: no φ)")
    assert 8 < float(texts["mean"].split()[0]) < 16
    assert NO_PIXEL_SIZE in texts["sorting"]
    assert texts["sorting"].split()[0] != NO_VALUE
    with_size = measure(labels, "seed", n_boot=0, pixel_size_um=2.0)
    g, g_px = with_size.grains, m.grains
    assert g.sorting_phi == pytest.approx(g_px.sorting_px)  # scale-free
    assert "px" not in size_texts(with_size)["mean"]
    assert NO_PIXEL_SIZE in format_measurement(m)
    # too few grains: the dash says why
    few = measure(labels[:40, :40], "seed", n_boot=0)
    assert size_texts(few)["mean"] == f"{NO_VALUE} (fewer than 5 grains)"
