"""Modal analysis against constructed label images with known answers."""

import math

import numpy as np
import pandas as pd
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.files import write_annotation
from napari_thinseg.measure.modal import (
    ClassStats,
    Interval,
    Measurement,
    SizeStats,
    folk_ward,
    grain_ids,
    measure,
    measure_files,
    size_stats,
    sorting_class,
    split_objects,
    wilson_interval,
    write_csv,
)
from napari_thinseg.progress import Progress, run
from napari_thinseg.schemes import SANDSTONE, SEED, ClassScheme, PetroClass

PORE = SANDSTONE.id_of("pore")
QUARTZ = SANDSTONE.id_of("quartz")
FELDSPAR = SANDSTONE.id_of("feldspar")
CLAY = SANDSTONE.id_of("clay")


def disc(shape, centre, radius):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def by_name(m: Measurement, name: str) -> ClassStats:
    return next(c for c in m.classes if c.name == name)


# -- fractions -------------------------------------------------------------
def test_half_pore_is_exactly_half():
    labels = np.full((100, 80), QUARTZ, np.uint8)
    labels[:, :40] = PORE
    m = measure(labels, SANDSTONE, sizes=False)
    assert m.counted_pixels == 8000
    assert m.porosity == 0.5
    assert by_name(m, "quartz").fraction == 0.5
    assert by_name(m, "quartz").pixels == 4000
    assert by_name(m, "feldspar").fraction == 0.0
    assert [c.id for c in m.classes] == SANDSTONE.ids
    assert sum(c.fraction for c in m.classes) == pytest.approx(1.0)


def test_unlabelled_frame_and_mask_are_not_counted():
    labels = np.full((60, 60), QUARTZ, np.uint8)
    labels[:10] = 0  # unlabelled: 600 px
    labels[:, :5] = 255  # frame, not in the scheme: 300 px more
    labels[30:40, 20:40] = PORE  # 200 px
    mask = np.ones(labels.shape, bool)
    mask[50:] = False  # 10 rows x 55 counted columns out
    m = measure(labels, SANDSTONE, mask=mask, sizes=False)
    counted = 60 * 60 - 600 - 50 * 5 - 10 * 55
    assert m.counted_pixels == counted
    assert m.porosity == 200 / counted
    assert by_name(m, "quartz").pixels == counted - 200


def test_labels_beyond_uint8_and_bool_mask_of_ints():
    labels = np.full((20, 20), 2, np.int32)
    labels[0] = 300  # cannot be a scheme id
    labels[1] = -1
    labels[2:4] = 3
    m = measure(labels, SEED, mask=np.ones((20, 20), int), sizes=False)
    assert m.counted_pixels == 18 * 20
    assert m.porosity == 40 / 360  # seed's pore class is 3


def test_mm2_units():
    labels = np.full((100, 100), QUARTZ, np.uint8)
    labels[:50] = PORE
    m = measure(labels, SANDSTONE, pixel_size_um=10.0, sizes=False)
    # 5000 px of (0.01 mm)^2
    assert by_name(m, "pore").area_mm2 == pytest.approx(0.5)
    assert m.counted_area_mm2 == pytest.approx(1.0)
    row = m.to_row()
    assert row["pore_area_mm2"] == pytest.approx(0.5)
    assert row["porosity_area_mm2"] == pytest.approx(0.5)
    assert measure(labels, SANDSTONE, sizes=False).classes[0].area_mm2 is None


def test_no_pore_class_gives_unknown_porosity():
    scheme = ClassScheme("two", (PetroClass(1, "a", "#000000"),))
    m = measure(np.ones((10, 10), np.uint8), scheme)
    assert math.isnan(m.porosity)
    assert m.pores is None and m.pore_border_fraction is None


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"labels": np.zeros((5, 5), np.uint8)}, "no pixel"),
        ({"labels": np.ones((2, 5, 5), np.uint8)}, "2D"),
        ({"labels": np.full((5, 5), 1.5)}, "integers"),
        ({"pixel_size_um": -1}, "pixel size"),
        ({"pixel_size_um": "x"}, "pixel size"),
        ({"points": 0}, "points"),
        ({"n_boot": -1}, "resamples"),
        ({"block_px": 0}, "block"),
        ({"mask": np.ones((4, 4), bool)}, "mask shape"),
    ],
)
def test_bad_input_is_one_line(kwargs, words):
    args = {"labels": np.ones((5, 5), np.uint8), **kwargs}
    with pytest.raises(ThinsegError, match=words) as info:
        measure(args.pop("labels"), SEED, **args)
    assert "\n" not in str(info.value)


# -- intervals -------------------------------------------------------------
def test_wilson_known_values():
    z2 = 1.959963984540054**2
    low, high = wilson_interval(0.0, 10)
    assert low == 0.0
    assert high == pytest.approx(z2 / (10 + z2))
    low, high = wilson_interval(0.5, 300)
    half = math.sqrt(z2 * (0.25 / 300 + z2 / (4 * 300**2)))
    assert low == pytest.approx((0.5 + z2 / 600 - half) / (1 + z2 / 300))
    assert low + high == pytest.approx(1.0)


def test_binomial_interval_is_labelled_wilson_of_points():
    labels = np.full((50, 50), QUARTZ, np.uint8)
    labels[:10] = PORE
    m = measure(labels, SANDSTONE, points=500, sizes=False)
    assert m.porosity_binomial.method == "binomial (Wilson, 500 points)"
    assert (m.porosity_binomial.low, m.porosity_binomial.high) == (
        pytest.approx(wilson_interval(0.2, 500))
    )


@pytest.mark.parametrize("truth", [0.05, 0.2, 0.5])
def test_wilson_covers_point_count_truth_95_percent(truth):
    # a petrographer's 300-point counts of a rock with this pore fraction
    rng = np.random.default_rng(1)
    hits = rng.binomial(300, truth, size=2000)
    covered = [
        lo <= truth <= hi
        for lo, hi in (wilson_interval(k / 300, 300) for k in hits)
    ]
    assert 0.92 <= np.mean(covered) <= 0.98


def test_point_counts_of_a_label_image_through_measure():
    # 300 random points of an image whose porosity is exactly 0.3: the
    # binomial interval measure() gives each count covers 0.3 ~95 %
    rng = np.random.default_rng(2)
    image = np.full(10_000, QUARTZ, np.uint8)
    image[:3000] = PORE
    covered = []
    for _ in range(2000):
        points = rng.choice(image, 300).reshape(15, 20)
        m = measure(points, SANDSTONE, n_boot=0, sizes=False)
        b = m.porosity_binomial
        covered.append(b.low <= 0.3 <= b.high)
    assert 0.92 <= np.mean(covered) <= 0.98


def patchy(shape, seed, fraction=0.3):
    """Pore patches some 10 px across in quartz, for the bootstrap."""
    from scipy import ndimage as ndi

    field = ndi.gaussian_filter(
        np.random.default_rng(seed).normal(size=shape), 4
    )
    labels = np.full(shape, QUARTZ, np.uint8)
    labels[field > np.quantile(field, 1 - fraction)] = PORE
    return labels


def test_bootstrap_contains_observed_and_is_labelled():
    labels = patchy((256, 256), 0)
    m = measure(labels, SANDSTONE, sizes=False)
    b = m.porosity_bootstrap
    assert b.method == "block bootstrap (200 resamples, 32 px blocks)"
    assert b.low < m.porosity < b.high
    for c in m.classes:
        assert c.bootstrap.low <= c.fraction <= c.bootstrap.high
    quartz = by_name(m, "quartz").bootstrap
    assert quartz.low == pytest.approx(1 - b.high)


def test_bootstrap_narrows_with_more_blocks():
    width = []
    for side in (256, 1024):
        m = measure(
            patchy((side, side), 0), SANDSTONE, block_px=32, sizes=False
        )
        width.append(m.porosity_bootstrap.high - m.porosity_bootstrap.low)
    # 16 times the blocks: about a quarter of the width
    assert width[1] < 0.5 * width[0]


def test_bootstrap_deterministic_and_needs_two_blocks():
    labels = patchy((128, 128), 3)
    a = measure(labels, SANDSTONE, sizes=False, seed=5)
    b = measure(labels, SANDSTONE, sizes=False, seed=5)
    c = measure(labels, SANDSTONE, sizes=False, seed=6)
    assert a.porosity_bootstrap == b.porosity_bootstrap
    assert a.porosity_bootstrap != c.porosity_bootstrap
    one = measure(labels, SANDSTONE, block_px=128, sizes=False)
    assert one.porosity_bootstrap is None
    assert all(cl.bootstrap is None for cl in one.classes)
    assert measure(labels, SANDSTONE, n_boot=0).porosity_bootstrap is None


def test_bootstrap_ignores_blocks_outside_mask():
    labels = patchy((128, 128), 4)
    mask = np.zeros(labels.shape, bool)
    mask[:64, :64] = True
    m = measure(labels, SANDSTONE, mask=mask, block_px=16, sizes=False)
    inside = measure(labels[:64, :64], SANDSTONE, block_px=16, sizes=False)
    assert m.porosity == inside.porosity
    # the same 16 blocks hold counted pixels, the same resamples follow
    assert m.porosity_bootstrap == inside.porosity_bootstrap


# -- grains ----------------------------------------------------------------
def test_grain_ids():
    assert grain_ids(SEED) == [1, 2, 4, 5]
    assert grain_ids(SANDSTONE) == [2, 3, 4, 5, 6]
    assert grain_ids("sandstone") == [2, 3, 4, 5, 6]


def discs_image():
    """Quartz discs r=12 in clay: 6 alone, 4 touching pairs; 2 feldspar
    discs touching quartz ones; 3 small r=6; some 3x3 specks."""
    shape = (260, 300)
    labels = np.full(shape, CLAY, np.uint8)
    centres = [(30, 30 + 45 * i) for i in range(6)]
    for i in range(4):  # pairs 23 px apart: overlapping by a sliver
        y, x = 90 + 40 * (i // 2), 40 + 130 * (i % 2)
        centres += [(y, x), (y, x + 23)]
    for c in centres:
        labels[disc(shape, c, 12)] = QUARTZ
    for y, x in [(230, 40), (230, 120)]:
        labels[disc(shape, (y, x), 12)] = QUARTZ
        labels[disc(shape, (y, x + 23), 12)] = FELDSPAR
    for x in (200, 230, 260):
        labels[disc(shape, (230, x), 6)] = QUARTZ
    for x in (200, 240, 280):
        labels[160:163, x : x + 3] = QUARTZ  # 9 px: speckle, dropped
    return labels


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


# -- rows, CSV, files ------------------------------------------------------
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


def test_measure_files_scheme_near_and_progress(tmp_path):
    labels = np.full((40, 40), QUARTZ, np.uint8)
    labels[:10] = PORE
    data = tmp_path / "set"
    write_annotation(data / "annotations" / "x.png", labels)
    SANDSTONE.save(data / "classes.json")
    other = tmp_path / "y.png"
    write_annotation(other, labels)  # no scheme near: seed
    gen = measure_files([data / "annotations", other], sizes=False)
    events = []
    result = run(gen, events.append)
    assert events == [Progress(1, 2, "x.png"), Progress(2, 2, "y.png")]
    assert [m.name for m in result] == ["x.png", "y.png"]
    assert result[0].scheme_name == "sandstone"
    assert result[0].porosity == 0.25
    assert result[1].scheme_name == "seed"
    assert result[1].porosity == 0.0  # seed pore id 3 absent


def test_measure_files_bad_file(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ThinsegError, match="notes.png"):
        list(measure_files([bad]))
    with pytest.raises(ThinsegError, match="pixel size"):
        list(measure_files([bad], pixel_size_um=0))


def test_interval_is_frozen():
    i = Interval(0.1, 0.2, "x")
    with pytest.raises(AttributeError):
        i.low = 0.0
