"""Modal analysis (fractions, porosity, their intervals, files) against
constructed label images with known answers."""

import math

import numpy as np
import pytest
from _label_images import PORE, QUARTZ

from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.files import write_annotation
from napari_thinseg.measure import (
    ClassStats,
    Interval,
    Measurement,
    measure,
    measure_files,
)
from napari_thinseg.measure.modal import wilson_interval
from napari_thinseg.progress import Progress, run
from napari_thinseg.schemes import SANDSTONE, SEED, ClassScheme, PetroClass


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


# -- files -----------------------------------------------------------------
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


def test_a_lazy_label_image_measures_as_in_memory():
    import dask.array as da

    from napari_thinseg.measure.modal import measure_lazy

    rng = np.random.default_rng(5)
    labels = rng.integers(0, 9, (1003, 777)).astype(np.uint8)
    labels[:100] = 255  # a frame outside the scheme
    whole = measure(labels, SANDSTONE, pixel_size_um=2.0, sizes=False)
    for block_px in (None, 64):
        lazy = measure_lazy(
            da.from_array(labels, chunks=200),
            SANDSTONE,
            pixel_size_um=2.0,
            block_px=block_px,
        )
        ref = (
            whole
            if block_px is None
            else measure(
                labels, SANDSTONE, pixel_size_um=2.0, sizes=False, block_px=64
            )
        )
        assert lazy.counted_pixels == ref.counted_pixels
        assert lazy.porosity == ref.porosity
        assert [c.pixels for c in lazy.classes] == [
            c.pixels for c in ref.classes
        ]
        assert lazy.porosity_bootstrap.low == pytest.approx(
            ref.porosity_bootstrap.low, rel=1e-12
        )
        assert lazy.porosity_bootstrap.high == pytest.approx(
            ref.porosity_bootstrap.high, rel=1e-12
        )
        assert lazy.grains is None
    with pytest.raises(ThinsegError, match="no pixel"):
        measure_lazy(da.zeros((50, 50), dtype=np.uint8), SANDSTONE)
