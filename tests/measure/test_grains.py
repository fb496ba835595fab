"""Grains and pore bodies (splitting, sizes, Folk and Ward, sorting)
against drawn label images with known answers."""

import numpy as np
import pytest
from _label_images import CLAY, FELDSPAR, PORE, QUARTZ, disc, discs_image

from napari_thinseg.measure import SizeStats, measure
from napari_thinseg.measure.grains import (
    folk_ward,
    grain_ids,
    size_stats,
    sorting_class,
    split_objects,
)
from napari_thinseg.schemes import SANDSTONE, SEED


# -- grains ----------------------------------------------------------------
def test_grain_ids():
    assert grain_ids(SEED) == [1, 2, 4, 5]
    assert grain_ids(SANDSTONE) == [2, 3, 4, 5, 6]
    assert grain_ids("sandstone") == [2, 3, 4, 5, 6]


def test_discs_counted_and_sized():
    m = measure(discs_image(), SANDSTONE)
    g = m.grains
    assert g.count == 6 + 8 + 4 + 3
    d = np.sort(g.diameters_px)
    assert np.all(np.abs(d[:3] / 12 - 1) < 0.05)
    assert np.all(np.abs(d[3:] / 24 - 1) < 0.05)
    assert g.diameters_um is None and g.mean_phi is None
    assert g.sorting_class is None and g.border_count == 0


def test_touching_pair_split_along_the_neck():
    shape = (60, 90)
    binary = disc(shape, (30, 30), 15) | disc(shape, (30, 57), 15)
    labels, n = split_objects(binary)
    assert n == 2
    left, right = labels[30, 30], labels[30, 57]
    assert left != right
    assert abs((labels == left).sum() - (labels == right).sum()) <= 15


@pytest.mark.parametrize("slope", [0.2, 0.4, 1.0])
def test_slanted_lath_and_slot_stay_whole(slope):
    # the distance ridge of a slanted band wobbles on the pixel grid;
    # without joining shallow necks a lath came out as 31-65 grains
    yy, xx = np.mgrid[:300, :300]
    across = np.abs(yy - slope * xx - 20) / np.sqrt(1 + slope**2)
    band = (xx > 30) & (xx < 200) & (yy < 290)
    lath = np.full((300, 300), CLAY, np.uint8)
    lath[band & (across < 8)] = QUARTZ
    assert measure(lath, SANDSTONE, n_boot=0).grains.count == 1
    slot = np.full((300, 300), QUARTZ, np.uint8)
    slot[band & (across < 4)] = PORE
    assert measure(slot, SANDSTONE, n_boot=0).pores.count == 1


def test_grain_phi_stats_with_pixel_size():
    m = measure(discs_image(), SANDSTONE, pixel_size_um=50.0)
    g = m.grains
    np.testing.assert_allclose(g.diameters_um, g.diameters_px * 50.0)
    truth = np.array([24.0] * 18 + [12.0] * 3) * 50 / 1000
    mean, sigma = folk_ward(-np.log2(truth))
    assert g.mean_phi == pytest.approx(mean, abs=0.05)
    assert g.sorting_phi == pytest.approx(sigma, abs=0.05)
    assert g.sorting_class == sorting_class(g.sorting_phi)
    assert g.median_diameter_um == pytest.approx(1200, rel=0.05)


def test_synthetic_sandstone_grain_size():
    from napari_thinseg.synth import synthetic_sandstone

    _, labels = synthetic_sandstone((512, 512), seed=4, grain_size=14)
    m = measure(labels, SANDSTONE, pixel_size_um=10)
    # synth: median grain radius 0.9-1.05 times grain_size
    radius = np.median(m.grains.diameters_px) / 2
    assert 0.85 * 14 <= radius <= 1.1 * 14
    assert m.porosity == pytest.approx(0.2, abs=1e-4)


# -- Folk and Ward -----------------------------------------------------------
def test_folk_ward_hand_computed():
    # phi 0, 0.05, ..., 5: phi_p = p / 20
    mean, sigma = folk_ward(np.linspace(0, 5, 101))
    assert mean == pytest.approx((0.8 + 2.5 + 4.2) / 3)
    assert sigma == pytest.approx((4.2 - 0.8) / 4 + (4.75 - 0.25) / 6.6)
    # six grains: phi5 0.25, phi16 0.8, phi50 1, phi84 2.4, phi95 3.5
    mean, sigma = folk_ward([0, 1, 1, 1, 2, 4])
    assert mean == pytest.approx(1.4)
    assert sigma == pytest.approx(0.4 + 3.25 / 6.6)
    assert sorting_class(sigma) == "moderately sorted"


def test_size_stats_from_diameters():
    phi = np.linspace(0, 5, 101)
    s = size_stats(1000 * 2.0**-phi, pixel_size_um=1.0, border_count=3)
    assert isinstance(s, SizeStats)
    assert s.count == 101 and s.border_count == 3
    assert s.mean_phi == pytest.approx(2.5)
    assert s.sorting_phi == pytest.approx(0.85 + 4.5 / 6.6)
    assert s.sorting_class == "poorly sorted"
    assert s.median_diameter_um == pytest.approx(1000 * 2**-2.5)
    few = size_stats([10.0, 12.0], pixel_size_um=1.0)
    assert few.mean_phi is None and few.median_diameter_um == 11.0
    bare = size_stats([10.0] * 10)
    assert bare.mean_phi is None and bare.diameters_um is None


@pytest.mark.parametrize(
    ("sigma", "name"),
    [
        (0.2, "very well sorted"),
        (0.35, "well sorted"),
        (0.5, "moderately well sorted"),
        (0.71, "moderately sorted"),
        (0.99, "moderately sorted"),
        (1.0, "poorly sorted"),
        (2.0, "very poorly sorted"),
        (4.0, "very poorly sorted"),
        (4.01, "extremely poorly sorted"),
    ],
)
def test_sorting_classes(sigma, name):
    assert sorting_class(sigma) == name


# -- pores -----------------------------------------------------------------
def test_pore_sizes_and_border_fraction():
    shape = (120, 200)
    labels = np.full(shape, QUARTZ, np.uint8)
    edge = disc(shape, (60, 0), 10)  # cut by the image edge
    inner = disc(shape, (60, 60), 10) | disc(shape, (60, 120), 8)
    labels[edge | inner] = PORE
    m = measure(labels, SANDSTONE)
    assert m.pores.count == 3
    assert m.pores.border_count == 1
    assert m.pore_border_fraction == edge.sum() / (edge.sum() + inner.sum())
    d = np.sort(m.pores.diameters_px)
    assert d[1:] == pytest.approx([16, 20], rel=0.05)


def test_pore_border_fraction_at_region_edge():
    shape = (120, 200)
    labels = np.full(shape, QUARTZ, np.uint8)
    cut = disc(shape, (60, 150), 10)
    inner = disc(shape, (60, 60), 10)
    labels[cut | inner] = PORE
    mask = np.ones(shape, bool)
    mask[:, 150:] = False  # the region ends across the second pore
    m = measure(labels, SANDSTONE, mask=mask)
    kept = (cut & mask).sum()
    assert m.pore_border_fraction == kept / (kept + inner.sum())


def test_sizes_off():
    m = measure(discs_image(), SANDSTONE, sizes=False)
    assert m.grains is None and m.pores is None
    assert m.pore_border_fraction is None


def test_measures_a_2000_square_image():
    # a packed grid of slightly overlapping discs, in two classes
    yy, xx = np.ogrid[:2000, :2000]
    inside = (yy % 40 - 20) ** 2 + (xx % 40 - 20) ** 2 <= 21**2
    third = (yy // 40 + xx // 40) % 3 == 0
    labels = np.full((2000, 2000), PORE, np.uint8)
    labels[inside] = QUARTZ
    labels[inside & third] = FELDSPAR
    m = measure(labels, SANDSTONE, pixel_size_um=5)
    assert m.grains.count >= 2500  # its speed: bench/bench_analysis.py
