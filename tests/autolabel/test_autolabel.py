from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from skimage.color import rgb2gray
from skimage.filters import gaussian

from napari_thinseg.autolabel.rule import (
    DEFAULT_THRESHOLDS,
    AutoLabelParams,
    EpoxyWindow,
    autolabel,
    autolabel_stack,
    bin_gray,
    epoxy_mask,
    gray_level,
    label_scheme,
    multiotsu_thresholds,
    parse_thresholds,
)
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.convert import to_float
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED

SEED_DATA = Path(__file__).parents[3] / "shared/data/seed-thin-sections"
PACKAGED = (
    Path(__file__).parents[2] / "src/napari_thinseg/data/seed/sandstone_2.png"
)


def test_threshold_edges_go_to_lower_class():
    gray = np.array(
        [0.0, 0.25, 0.2500001, 0.4, 0.40001, 0.6, 0.61, 0.75, 0.7501, 1.0]
    )
    assert bin_gray(gray, DEFAULT_THRESHOLDS).tolist() == [
        1,
        1,
        2,
        2,
        3,
        3,
        4,
        4,
        5,
        5,
    ]


def test_gray_uint8_image_exact_edges_without_smoothing():
    # 0.4 * 255 = 102: a uint8 value of exactly a threshold stays below it
    values = np.array(
        [[0, 63, 64, 102, 103, 153, 154, 191, 192, 255]], np.uint8
    )
    image = np.repeat(values, 3, axis=0)
    labels = autolabel(image, sigma=0)
    assert labels.dtype == np.uint8
    assert labels[0].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_rgb_weights_and_alpha_dropped():
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 1] = 255  # pure green: luminance 0.7154 -> class 4
    assert np.all(autolabel(rgb, sigma=0) == 4)
    rgba = np.concatenate([rgb, np.zeros((4, 4, 1), np.uint8)], axis=-1)
    assert np.array_equal(autolabel(rgba, sigma=0), autolabel(rgb, sigma=0))
    assert gray_level(rgba) == pytest.approx(0.7154)


def test_16bit_and_float_match_8bit():
    g8 = np.tile(np.arange(0, 256, 5, dtype=np.uint8), (6, 1))
    g16 = g8.astype(np.uint16) * 257  # same fractions of full scale
    gf = g8 / 255.0
    ref = autolabel(g8, sigma=1.0)
    assert np.array_equal(autolabel(g16, sigma=1.0), ref)
    assert np.array_equal(autolabel(gf, sigma=1.0), ref)


def test_float_outside_unit_range_is_stretched():
    image = np.array([[0.0, 127.5, 255.0]] * 3)
    assert to_float(image)[0].tolist() == [0.0, 0.5, 1.0]
    assert autolabel(image, sigma=0)[0].tolist() == [1, 3, 5]


def test_seed_rule_on_real_seed_image():
    """The documented formula, recomputed here, on a real thin section."""
    image = iio.imread(PACKAGED)
    rgb = image[..., :3] / 255.0
    smooth = gaussian(rgb2gray(rgb), sigma=1.0)
    ref = np.ones(smooth.shape, np.uint8)
    for t in (0.25, 0.4, 0.6, 0.75):
        ref[smooth > t] += 1
    labels = autolabel(image)
    assert labels.shape == image.shape[:2]
    assert (labels == ref).mean() >= 0.999


@pytest.mark.skipif(not SEED_DATA.exists(), reason="seed data not here")
def test_seed_rule_close_to_published_annotation():
    image = iio.imread(SEED_DATA / "images/10.png")
    published = iio.imread(SEED_DATA / "annotations/10.png")
    # the README measured 99.6 % agreement for this image
    assert (autolabel(image) == published).mean() > 0.99


def test_epoxy_separates_blue_from_brown_of_same_gray():
    blue = np.array([40, 110, 215], np.uint8)  # gray ~0.42
    brown = np.array([170, 105, 60], np.uint8)  # gray ~0.44
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = blue
    image[:, 20:] = brown
    gray = autolabel(image)
    assert set(np.unique(gray)) == {3}  # gray bins can't tell them apart
    epoxy = autolabel(image, method="epoxy")
    assert np.all(epoxy[:, :18] == 3)
    assert np.all(epoxy[:, 22:] == 2)  # below the bin's middle: class 2
    mask = epoxy_mask(image)
    assert mask[:, :18].all() and not mask[:, 22:].any()


def test_epoxy_window_is_tunable_and_validated():
    image = np.zeros((8, 8, 3), np.uint8)
    image[:] = (40, 110, 215)  # hue ~0.59
    assert epoxy_mask(image).all()
    assert not epoxy_mask(image, window=EpoxyWindow(0.65, 0.75)).any()
    with pytest.raises(ThinsegError, match="hue window"):
        EpoxyWindow(0.7, 0.6)


def test_epoxy_needs_colour():
    with pytest.raises(ThinsegError, match="colour"):
        autolabel(np.zeros((8, 8), np.uint8), method="epoxy")


def test_multiotsu_finds_the_levels():
    levels = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    truth = np.repeat(np.arange(5), 40).reshape(1, -1).repeat(10, axis=0)
    noise = np.random.default_rng(0).normal(0, 0.01, truth.shape)
    image = np.clip(levels[truth] + noise, 0, 1)
    t = multiotsu_thresholds(image, 5)
    assert len(t) == 4
    for lo, th, hi in zip(levels[:-1], t, levels[1:], strict=True):
        assert lo < th < hi  # anywhere in the empty gap is optimal
    labels = autolabel(image, method="multiotsu", sigma=0)
    # skimage returns histogram bin centres: a sliver of the top bin of a
    # level may go up
    assert (labels == truth + 1).mean() > 0.99


def test_label_scheme_follows_bin_count():
    assert label_scheme() is SEED
    three = label_scheme(AutoLabelParams(thresholds=(0.3, 0.6)))
    assert three.ids == [1, 2, 3]
    epoxy = label_scheme(AutoLabelParams("epoxy", thresholds=(0.5,)))
    assert epoxy.ids == [1, 2, 3] and epoxy.pore_ids == (3,)
    image = np.zeros((8, 8, 3), np.uint8)
    image[:] = (40, 110, 215)
    assert np.all(autolabel(image, method="epoxy", thresholds=(0.5,)) == 3)


def test_stack_labels_every_plane():
    stack = np.stack([np.full((6, 7), v, np.uint8) for v in (10, 120, 250)])
    gen = autolabel_stack(stack)
    events = []
    labels = run(gen, events.append)
    assert [e.step for e in events] == [1, 2, 3]
    assert labels.shape == (3, 6, 7)
    assert [int(p[0, 0]) for p in labels] == [1, 3, 5]
    assert np.array_equal(run(autolabel_stack(stack)), labels)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"thresholds": (0.5, 0.4)}, "increase"),
        ({"thresholds": (0.0, 0.4)}, r"\(0, 1\)"),
        ({"thresholds": ()}, "at least one"),
        ({"method": "kmeans"}, "unknown method"),
        ({"sigma": -1}, "sigma"),
        ({"n_classes": 12}, "2..8"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ThinsegError, match=message):
        AutoLabelParams(**kwargs)


def test_bad_images():
    with pytest.raises(ThinsegError, match="1x1"):
        autolabel(np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(ThinsegError, match="NaN"):
        autolabel(np.full((4, 4), np.nan))
    with pytest.raises(ThinsegError, match="not an image"):
        autolabel(np.array([["a", "b"], ["c", "d"]]))


def test_parse_thresholds():
    assert parse_thresholds("0.2, 0.5") == (0.2, 0.5)
    with pytest.raises(ThinsegError, match="numbers"):
        parse_thresholds("0.2,x")


@pytest.mark.parametrize(
    "dye", [(150, 185, 205), (20, 40, 90), (31, 95, 208)]
)  # pale, dark, the seed's
def test_epoxy_window_from_a_sampled_colour_takes_that_dye(dye):
    from napari_thinseg.autolabel.rule import epoxy_window_from_sample

    rng = np.random.default_rng(0)
    grains = rng.integers(150, 230, (40, 60, 1)) * np.array([1, 0.92, 0.8])
    image = grains.astype(np.uint8)
    image[10:30, 10:30] = dye
    window = epoxy_window_from_sample(image[15:20, 15:20])
    labels = autolabel(image, method="epoxy", epoxy=window)
    pore = label_scheme(AutoLabelParams(method="epoxy")).pore_ids[0]
    assert (labels[12:28, 12:28] == pore).all()  # inside the smoothed rim
    assert not (labels[:, 35:] == pore).any()
    with pytest.raises(ThinsegError, match="not blue dye"):
        epoxy_window_from_sample(image[:5, 40:45])
