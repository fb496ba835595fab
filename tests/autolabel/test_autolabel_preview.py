"""The auto-label preview cache, without napari: what it keeps, what it
recomputes, and what survives an error."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_thinseg.autolabel import preview as autolabel_preview
from napari_thinseg.autolabel.epoxy import fit_epoxy
from napari_thinseg.autolabel.preview import PreviewCache
from napari_thinseg.autolabel.rule import (
    AutoLabelParams,
    EpoxyWindow,
    autolabel,
    smoothed_gray,
)
from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.errors import ThinsegError


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rgb, _ = synthetic_sandstone((96, 128), seed=3, grain_size=12)
    return rgb


@pytest.fixture
def smoothings(monkeypatch) -> list[float]:
    """The sigma of every smoothed gray the cache computes."""
    calls: list[float] = []

    def counting(image, sigma, **kwargs):
        calls.append(sigma)
        return smoothed_gray(image, sigma, **kwargs)

    monkeypatch.setattr(autolabel_preview, "smoothed_gray", counting)
    return calls


@pytest.mark.parametrize(
    "params",
    [
        AutoLabelParams(),
        AutoLabelParams(thresholds=(0.2, 0.45, 0.6, 0.8), sigma=2.0),
        AutoLabelParams(method="multiotsu", n_classes=4),
        AutoLabelParams(method="epoxy", sigma=0.0),
    ],
)
def test_labels_from_the_cache_equal_autolabel(image, params):
    cache = PreviewCache()
    cache.fill("plane", params, image, "ts", rgb=True)
    assert cache.missing("plane", params) is None
    np.testing.assert_array_equal(
        cache.labels("plane", params), autolabel(image, params, rgb=True)
    )


def test_a_threshold_change_reuses_the_cached_gray(image, smoothings):
    cache = PreviewCache()
    cache.fill("plane", AutoLabelParams(), image, "ts", rgb=True)
    version = cache.gray_version
    for t1 in (0.3, 0.32, 0.35):
        moved = AutoLabelParams(thresholds=(t1, 0.4, 0.6, 0.75))
        assert cache.missing("plane", moved) is None
        np.testing.assert_array_equal(
            cache.labels("plane", moved), autolabel(image, moved)
        )
    assert smoothings == [1.0]
    assert cache.gray_version == version  # no new histogram to draw


def test_a_sigma_change_recomputes(image, smoothings):
    cache = PreviewCache()
    cache.fill("plane", AutoLabelParams(), image, "ts", rgb=True)
    version = cache.gray_version
    wider = AutoLabelParams(sigma=1.5)
    fill = cache.missing("plane", wider)
    assert fill is not None and fill.gray is None
    cache.fill("plane", wider, image, "ts", rgb=True)
    assert smoothings == [1.0, 1.5]
    assert cache.gray_version != version
    np.testing.assert_array_equal(
        cache.labels("plane", wider), autolabel(image, wider)
    )


def test_another_plane_recomputes(image, smoothings):
    cache = PreviewCache()
    cache.fill(("layer", 0), AutoLabelParams(), image, "ts", rgb=True)
    assert cache.missing(("layer", 1), AutoLabelParams()) is not None
    cache.fill(("layer", 1), AutoLabelParams(), image, "ts", rgb=True)
    assert smoothings == [1.0, 1.0]


def test_only_the_missing_parts_are_computed(image, smoothings):
    cache = PreviewCache()
    cache.fill("plane", AutoLabelParams(), image, "ts", rgb=True)

    epoxy = AutoLabelParams(method="epoxy")
    fill = cache.missing("plane", epoxy)
    assert fill.gray is cache.gray  # reused, not smoothed again
    # the dye found in the image: a mask and the fit that chose it
    assert fill.need_blue and fill.window is None and fill.n_classes is None
    cache.fill("plane", epoxy, image, "ts", rgb=True)
    assert cache.has_blue("plane", epoxy) and cache.fit is not None
    assert cache.fit == fit_epoxy(image)

    # samples refine it: a new mask only
    sampled = AutoLabelParams("epoxy", epoxy_samples=((0.1, 0.3, 0.8),))
    fill = cache.missing("plane", sampled)
    assert fill.gray is not None and fill.samples == ((0.1, 0.3, 0.8),)

    # another window: a new mask only
    window = EpoxyWindow(hue_min=0.5)
    fill = cache.missing("plane", AutoLabelParams("epoxy", epoxy=window))
    assert fill.gray is not None and fill.window == window
    cache.fill(
        "plane", AutoLabelParams("epoxy", epoxy=window), image, rgb=True
    )
    assert cache.fit is None  # a fixed window chose nothing

    otsu = AutoLabelParams(method="multiotsu", n_classes=3)
    fill = cache.missing("plane", otsu)
    assert fill.gray is not None and fill.n_classes == 3
    cache.fill("plane", otsu, image, "ts", rgb=True)
    assert cache.otsu == pytest.approx(
        autolabel_preview.multiotsu_thresholds(cache.gray, 3)
    )
    assert smoothings == [1.0]


def test_what_came_before_an_error_is_kept(image, smoothings):
    gray_image = image[..., 1]
    cache = PreviewCache()
    epoxy = AutoLabelParams(method="epoxy")
    with pytest.raises(ThinsegError, match="colour"):
        cache.fill("plane", epoxy, gray_image, "gray", rgb=False)
    assert cache.gray is not None  # the histogram still has its data
    fill = cache.missing("plane", epoxy)
    assert fill.gray is cache.gray and fill.need_blue
    # the gray methods need nothing more
    assert cache.missing("plane", AutoLabelParams()) is None
    np.testing.assert_array_equal(
        cache.labels("plane", AutoLabelParams()), autolabel(gray_image)
    )
    assert smoothings == [1.0]


def test_a_fill_computed_in_a_thread_is_stored_after(image):
    cache = PreviewCache()
    params = AutoLabelParams(method="multiotsu")
    fill = cache.missing("plane", params)
    worker = threading.Thread(target=fill.compute, args=(image, "ts", True))
    worker.start()
    worker.join()
    assert cache.gray is None  # the worker did not touch the cache
    cache.store(fill)
    np.testing.assert_array_equal(
        cache.labels("plane", params), autolabel(image, params)
    )


def test_a_fill_asked_before_a_clear_is_dropped(image):
    cache = PreviewCache()
    fill = cache.missing("plane", AutoLabelParams())
    fill.compute(image, "ts", rgb=True)
    cache.clear()  # the data changed meanwhile
    cache.store(fill)
    assert cache.gray is None and cache.gray_version is None
    assert cache.missing("plane", AutoLabelParams()) is not None


def test_labels_need_a_filled_cache(image):
    cache = PreviewCache()
    with pytest.raises(LookupError):
        cache.labels("plane", AutoLabelParams())
    cache.fill("plane", AutoLabelParams(), image, "ts", rgb=True)
    with pytest.raises(LookupError):
        cache.labels("plane", AutoLabelParams(method="epoxy"))


def test_a_bad_image_is_refused_before_smoothing():
    cache = PreviewCache()
    with pytest.raises(ThinsegError, match="tiny: pixel type"):
        cache.fill("plane", AutoLabelParams(), np.zeros((4, 4), "U1"), "tiny")
    assert cache.gray is None
