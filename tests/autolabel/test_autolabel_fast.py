"""The uint8 path of auto-label against the documented float rule.

The float rule is the package's own float path (uint16 and float images
still take it), fed ``image / 255.0``: exactly the values the README's
step 1 gives a uint8 image. Speed is the benchmark's business
(bench/bench_autolabel.py); here: agreement, equality, ties, which path
runs, and that its options are honoured.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from skimage.color import rgb2gray, rgb2hsv
from skimage.filters import gaussian

from napari_thinseg.autolabel import fast as fast
from napari_thinseg.autolabel.preview import PreviewCache
from napari_thinseg.autolabel.rule import (
    AutoLabelParams,
    EpoxyWindow,
    autolabel,
    autolabel_stack,
    epoxy_mask,
    labels_from_gray,
    smoothed_gray,
)
from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.progress import run

SEED_DATA = Path(__file__).parents[3] / "shared/data/seed-thin-sections"
PACKAGED = (
    Path(__file__).parents[2] / "src/napari_thinseg/data/seed/sandstone_2.png"
)
PARAMS = [
    AutoLabelParams(),
    AutoLabelParams(sigma=0.0),
    AutoLabelParams(sigma=2.5, thresholds=(0.2, 0.45, 0.6, 0.8)),
    AutoLabelParams(sigma=1.5, thresholds=(0.3, 0.5)),
    AutoLabelParams("epoxy", epoxy=EpoxyWindow()),
    AutoLabelParams("epoxy", sigma=0.0, epoxy=EpoxyWindow()),
    AutoLabelParams("epoxy", sigma=2.0, epoxy=EpoxyWindow(0.5, 0.7, 0.3, 0.1)),
    AutoLabelParams("epoxy", thresholds=(0.3, 0.5), epoxy=EpoxyWindow()),
    AutoLabelParams("epoxy"),  # the dye found in the image
    AutoLabelParams("multiotsu"),
]


def params_id(params: AutoLabelParams) -> str:
    found = "-found" if params.method == "epoxy" and not params.epoxy else ""
    n = len(params.thresholds)
    return f"{params.method}{found}-sigma{params.sigma}-{n}t"


def float_rule(image: np.ndarray, params: AutoLabelParams) -> np.ndarray:
    """The documented rule on a uint8 image, by the float path."""
    return autolabel(image / 255.0, params)


# -- agreement on real thin sections -------------------------------------
@pytest.mark.parametrize("params", PARAMS, ids=params_id)
def test_agrees_with_the_float_rule_on_the_bundled_seed(params):
    image = iio.imread(PACKAGED)
    assert image.dtype == np.uint8
    assert (autolabel(image, params) == float_rule(image, params)).mean() >= (
        0.999
    )


@pytest.mark.skipif(not SEED_DATA.exists(), reason="seed data not here")
@pytest.mark.parametrize("params", PARAMS, ids=params_id)
def test_agrees_with_the_float_rule_on_every_seed_image(params):
    paths = sorted((SEED_DATA / "images").glob("*.png"))
    assert paths
    for path in paths:
        image = iio.imread(path)
        agreement = autolabel(image, params) == float_rule(image, params)
        assert agreement.mean() >= 0.999, path.name


# -- equality away from ties ---------------------------------------------
def _images():
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (40, 29, 4), dtype=np.uint8)
    sandstone, _ = synthetic_sandstone((96, 128), seed=3, grain_size=12)
    return {
        "noise": noise,
        "rgba": rgba,
        "sandstone": sandstone,
        "thin": rng.integers(0, 256, (3, 200, 3), dtype=np.uint8),
        "gray": rng.integers(0, 256, (31, 45), dtype=np.uint8),
    }


IMAGES = _images()
MARGIN = 1e-6  # float32 rounding is ~6e-8 of the level


def _smooth_rgb(image, sigma):
    rgb = image[..., :3] / 255.0
    if sigma > 0:
        rgb = gaussian(rgb, sigma=sigma, channel_axis=-1)
    return np.clip(rgb, 0, 1)


def _far_from_ties(image, params):
    """Pixels whose float-rule values are not within MARGIN of a gray
    threshold (or of the epoxy window's edges)."""
    rgb = image.ndim == 3
    gray = smoothed_gray(image / 255.0, params.sigma, rgb)
    cuts = list(params.thresholds)
    if params.method == "epoxy" and len(cuts) == 4:
        cuts.append((cuts[1] + cuts[2]) / 2)
    far = np.ones(gray.shape, bool)
    for t in cuts:
        far &= np.abs(gray - t) > MARGIN
    if params.method == "epoxy" and params.epoxy is not None:
        # (the dye found in the image is the same mask on both paths)
        w = params.epoxy
        h, s, v = np.moveaxis(rgb2hsv(_smooth_rgb(image, params.sigma)), -1, 0)
        for values, edges in (
            (h, (w.hue_min, w.hue_max)),
            (s, (w.min_saturation,)),
            (v, (w.min_value,)),
        ):
            for edge in edges:
                if 0 < edge < 1:  # (0 and 1 are met by every pixel)
                    far &= np.abs(values - edge) > MARGIN
    return far


@pytest.mark.parametrize("name", list(IMAGES))
@pytest.mark.parametrize("sigma", [0.0, 0.6, 1.0, 2.5, 7.0])
@pytest.mark.parametrize("method", ["gray", "epoxy"])
def test_equal_to_the_float_rule_away_from_ties(name, sigma, method):
    image = IMAGES[name]
    if method == "epoxy" and image.ndim == 2:
        return
    params = AutoLabelParams(method, sigma=sigma)
    far = _far_from_ties(image, params)
    assert far.mean() > 0.99
    fast_labels = autolabel(image, params)
    np.testing.assert_array_equal(
        fast_labels[far], float_rule(image, params)[far]
    )


@pytest.mark.parametrize("sigma", [0.0, 0.1, 0.6, 1.0, 3.0, 9.0])
def test_gray_level_is_the_float_rule_rounded_to_float32(sigma):
    image = IMAGES["rgba"]
    gray = smoothed_gray(image, sigma)
    assert gray.dtype == np.float32
    reference = rgb2gray(image[..., :3] / 255.0)
    if sigma > 0:
        # skimage.filters.gaussian: truncate 4, mode "nearest"
        reference = gaussian(reference, sigma=sigma)
    # the float64 blur is rounded to float32 once: within half a float32
    # step (6e-8 at the top of the range)
    assert np.abs(gray - reference).max() <= 2**-24


def test_blur_matches_skimage_in_float64():
    values = np.random.default_rng(1).random((23, 31))
    image = (values * 255).astype(np.uint8)
    for sigma in (0.3, 1.0, 4.0, 8.0):

        def planes(rows, out):
            out[:, 0] = rows

        blur = fast.StripBlur(planes, 1, image.shape[1], sigma, np.float64)
        got = np.empty(image.shape)
        for y0, strip in blur.strips(image):
            got[y0 : y0 + len(strip)] = strip[:, 0]
        want = gaussian(image.astype(float), sigma=sigma, preserve_range=True)
        assert np.abs(got - want).max() < 1e-9, sigma


# -- the blue-dye window ---------------------------------------------------
def test_window_test_is_rgb2hsv_on_many_windows():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (120, 150, 3)).astype(np.float32)
    rgb[:40] = np.round(rgb[:40] / 51) * 51  # ties for the maximum
    rgb[40:50] = rgb[40:50, :, :1]  # grays
    rgb[50:52] = 0  # black
    h, s, v = np.moveaxis(rgb2hsv(rgb / 255.0), -1, 0)
    planes = np.ascontiguousarray(rgb.transpose(0, 2, 1))
    windows = [EpoxyWindow(), EpoxyWindow(0.0, 1.0, 0.0, 0.0)]
    windows += [EpoxyWindow(0.0, 0.12, 0.0, 0.3), EpoxyWindow(0.9, 1.0)]
    # grays have hue 0 and saturation 0; black has value 0 too
    windows += [EpoxyWindow(0.3, 0.6, 0.0, 0.0), EpoxyWindow(0.3, 0.6, 0.2, 0)]
    for _ in range(40):
        lo, hi = np.sort(rng.random(2))
        windows.append(EpoxyWindow(lo, hi, *rng.random(2) * 0.6))
    for w in windows:
        want = (
            (h >= w.hue_min)
            & (h <= w.hue_max)
            & (s >= w.min_saturation)
            & (v >= w.min_value)
        )
        got = fast.BlueTest(w, h.shape)(planes, np.empty(h.shape, bool))
        edges = (w.hue_min, w.hue_max, w.min_saturation, w.min_value)
        far = np.ones(h.shape, bool)
        for values, edge in zip((h, h, s, v), edges, strict=True):
            if 0 < edge < 1:  # (0 and 1 are met by every pixel)
                far &= np.abs(values - edge) > MARGIN
        np.testing.assert_array_equal(got[far], want[far], err_msg=str(w))


def test_epoxy_mask_is_honoured_and_uint8():
    image = np.zeros((24, 24, 3), np.uint8)
    image[:, :12] = (40, 110, 215)  # hue ~0.59
    mask = epoxy_mask(image, 0.0)
    assert mask[:, :12].all() and not mask[:, 12:].any()
    assert not epoxy_mask(image, 0.0, EpoxyWindow(0.65, 0.75)).any()
    assert not epoxy_mask(image, 0.0, EpoxyWindow(min_value=0.9)).any()


# -- ties ------------------------------------------------------------------
# colours whose gray level is exactly 0.4 (2125 R + 7154 G + 721 B =
# 0.4 * 255 * 10000) or exactly 0.6
TIES = {
    0.4: [(102, 102, 102), (4, 117, 242), (39, 119, 119)],
    0.6: [(153,) * 3],
}


@pytest.mark.parametrize("sigma", [0.0, 1.0, 3.0])
def test_a_gray_level_at_a_threshold_goes_to_the_lower_class(sigma):
    for level, colours in TIES.items():
        lower = 2 if level == 0.4 else 3
        for colour in colours:
            image = np.empty((40, 40, 3), np.uint8)
            image[:] = colour
            # flat: exactly the level, also after smoothing
            assert (smoothed_gray(image, sigma) == np.float32(level)).all()
            assert (autolabel(image, sigma=sigma) == lower).all(), colour
    # one step of uint8 above a threshold is above it
    image = np.full((8, 8), 103, np.uint8)  # 103 / 255 > 0.4
    assert (autolabel(image, sigma=sigma) == 3).all()


def test_ties_at_custom_thresholds_and_in_labels_from_gray():
    image = np.full((16, 16), 51, np.uint8)  # 51 / 255 = 0.2
    labels = autolabel(image, thresholds=(0.2, 0.7), sigma=1.0)
    assert (labels == 1).all()
    gray = np.array([[0.2, np.nextafter(np.float32(0.2), 1)]], np.float32)
    labels = labels_from_gray(gray, AutoLabelParams(thresholds=(0.2, 0.7)))
    assert labels.tolist() == [[1, 2]]


def test_epoxy_bins_of_the_uint8_path_are_apply_epoxys():
    gray = np.linspace(0, 1, 4001, dtype=np.float32).reshape(1, -1)
    blue = np.random.default_rng(3).random(gray.shape) < 0.3
    for thresholds in [(0.25, 0.4, 0.6, 0.75), (0.3, 0.5)]:
        params = AutoLabelParams("epoxy", thresholds=thresholds)
        got = labels_from_gray(gray, params, blue=blue)
        want = labels_from_gray(gray.astype(np.float64), params, blue=blue)
        # float32 and float64 grays of the same values: the same bins
        np.testing.assert_array_equal(got, want)


# -- which path runs -------------------------------------------------------
def test_uint16_and_float_images_keep_the_float_path(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the uint8 path ran")

    for name in ("smoothed_gray", "epoxy_mask", "autolabel", "bin_gray"):
        monkeypatch.setattr(fast, name, refuse)
    rgb8 = IMAGES["noise"]
    for image in (rgb8.astype(np.uint16) * 257, rgb8 / 255.0):
        gray = smoothed_gray(image, 1.0)
        assert gray.dtype == np.float64
        reference = gaussian(rgb2gray(rgb8 / 255.0), sigma=1.0)
        np.testing.assert_allclose(gray, reference, rtol=0, atol=1e-15)
        labels = autolabel(image)
        want = np.ones(labels.shape, np.uint8)
        for t in (0.25, 0.4, 0.6, 0.75):
            want += smoothed_gray(image, 1.0) > t
        np.testing.assert_array_equal(labels, want)
        autolabel(image, method="epoxy")
        autolabel(image, method="multiotsu")


def test_the_uint8_path_makes_no_float_copy_of_the_image(monkeypatch):
    # one thread: each thread holds its own strip buffers
    monkeypatch.setattr(fast, "THREADS", 1)
    image = np.random.default_rng(4).integers(
        0, 256, (1000, 1000, 3), dtype=np.uint8
    )
    pixels = image.shape[0] * image.shape[1]

    def peak(fn, *args, **kwargs):
        tracemalloc.start()
        try:
            fn(*args, **kwargs)
            return tracemalloc.get_traced_memory()[1] / pixels
        finally:
            tracemalloc.stop()

    # a float64 RGB copy alone is 24 bytes a pixel; the float path needs
    # more, the uint8 path keeps the labels (1) and strip buffers
    assert peak(autolabel, image.astype(np.uint16)) > 24
    assert peak(autolabel, image) < 6
    window = EpoxyWindow()
    assert peak(autolabel, image, method="epoxy", epoxy=window) < 8
    # the dye found in the image: its mask, a strip in float, the speckle
    # fill's labels; still no float copy of the image
    assert peak(autolabel, image, method="epoxy") < 24
    assert peak(smoothed_gray, image) < 8  # its float32 result is 4


@pytest.mark.parametrize("method", ["gray", "epoxy"])
def test_threads_do_not_change_the_labels(method):
    image, _ = synthetic_sandstone((203, 150), seed=5, grain_size=14)
    window = EpoxyWindow() if method == "epoxy" else None
    t = (0.25, 0.4, 0.6, 0.75)
    one = fast.autolabel(image, t, 1.0, True, window, threads=1)
    for threads in (2, 3, 7):
        many = fast.autolabel(image, t, 1.0, True, window, threads=threads)
        np.testing.assert_array_equal(many, one)
    gray = fast.smoothed_gray(image, 2.0, True, threads=1)
    np.testing.assert_array_equal(
        fast.smoothed_gray(image, 2.0, True, threads=4), gray
    )


@pytest.mark.parametrize("params", PARAMS[:6], ids=params_id)
def test_one_pass_labels_equal_the_steps(params):
    """autolabel's fused pass = smoothed gray + mask + labels_from_gray,
    which the preview cache uses."""
    image = IMAGES["sandstone"]
    cache = PreviewCache()
    cache.fill("plane", params, image, rgb=True)
    np.testing.assert_array_equal(
        cache.labels("plane", params), autolabel(image, params)
    )


def test_stacks_of_uint8_planes():
    stack = np.stack([IMAGES["sandstone"]] * 2)
    labels = run(autolabel_stack(stack, AutoLabelParams("epoxy")))
    want = float_rule(IMAGES["sandstone"], AutoLabelParams("epoxy"))
    assert (labels == want).mean() > 0.999
    np.testing.assert_array_equal(labels[0], labels[1])
