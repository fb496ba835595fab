"""Tiles through a fixed-size network, blended: plain arrays, no model."""

import numpy as np
import pytest

from napari_thinseg.progress import run
from napari_thinseg.tiling import (
    blend_weight,
    class_map,
    confidence_map,
    predict_tiles,
    tile_starts,
)


def red_rule(tiles):
    """Per-pixel class probabilities from the tile itself: class 2 where
    red > 128, else class 1 (a pointwise rule, so blending changes
    nothing)."""
    red = tiles[..., 0].astype(np.float32)
    p2 = np.where(red > 128, 0.8, 0.1)
    probs = np.stack([np.full_like(p2, 0.1), 0.9 - p2, p2], -1)
    return probs.astype(np.float32)


def test_tiles_cover_the_image_and_end_flush():
    assert tile_starts(10, 32, 16) == [0]
    assert tile_starts(90, 32, 16) == [0, 16, 32, 48, 58]
    assert tile_starts(64, 32, 32) == [0, 32]


def test_blend_weight_peaks_in_the_centre_and_is_never_zero():
    w = blend_weight(8, 6)
    assert w.shape == (8, 6) and w.min() > 0
    assert w[3:5, 2:4].min() == w.max()


def test_a_pointwise_network_gives_the_pointwise_map_seamlessly():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    calls = []

    def forward(tiles):
        calls.append(tiles.shape)
        return red_rule(tiles)

    events = []
    labels, conf = run(
        predict_tiles(forward, image, (32, 32), 3, 0.25, 3, True),
        events.append,
    )
    np.testing.assert_array_equal(labels, np.where(image[..., 0] > 128, 2, 1))
    assert conf.shape == labels.shape and 0 <= conf.min() <= conf.max() <= 1
    assert all(shape[1:] == (32, 32, 3) for shape in calls)
    assert events[-1].step == events[-1].total == len(calls)


def test_small_images_are_padded_not_stretched():
    image = np.zeros((10, 12, 3), np.uint8)
    image[:, 6:, 0] = 255
    labels, conf = run(
        predict_tiles(red_rule, image, (32, 32), 3, confidence=False)
    )
    assert labels.shape == (10, 12) and conf is None
    assert (labels[:, :6] == 1).all() and (labels[:, 6:] == 2).all()


@pytest.mark.parametrize("exclude_zero, expected", [(False, 0), (True, 2)])
def test_class_map_can_leave_out_unlabelled(exclude_zero, expected):
    probs = np.array([[[0.5, 0.2, 0.3]]], np.float32)
    assert class_map(probs, exclude_zero)[0, 0] == expected


def test_confidence_is_one_for_certain_and_zero_for_uniform():
    probs = np.array([[[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]]], np.float32)
    np.testing.assert_allclose(confidence_map(probs)[0], [1.0, 0.0], atol=1e-5)
