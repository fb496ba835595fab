"""Tiles through a fixed-size network, blended or cut at a margin: plain
arrays, no model."""

import numpy as np
import pytest

from napari_thinseg.inference.tiling import (
    MARGIN,
    MAX_AUTO_TILE_PIXELS,
    MAX_TILE_SIDE,
    auto_tile_shape,
    blend_weight,
    class_map,
    confidence_map,
    margin_for,
    margin_starts,
    max_tile_pixels,
    predict_margin_tiles,
    predict_tiles,
    tile_pixels,
    tile_starts,
)
from napari_thinseg.progress import run


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


# -- margin tiles ------------------------------------------------------------
def test_margin_tiles_start_on_the_grid_and_reach_the_end():
    assert margin_starts(500, 512, 32) == [0]
    assert margin_starts(2000, 1056, 32) == [0, 992]
    for size, tile, margin in [(3000, 1056, 32), (150, 64, 16), (97, 96, 32)]:
        starts = margin_starts(size, tile, margin)
        assert all(s % 32 == 0 for s in starts)
        assert starts[-1] + tile >= size > starts[-1]
        # each tile's core meets its neighbour's: no gap, no double
        stride = tile - 2 * margin
        assert np.diff(starts).tolist() == [stride] * (len(starts) - 1)


def test_margin_shrinks_for_small_tiles():
    assert margin_for((1056, 800)) == MARGIN == 32
    assert margin_for((64, 96)) == 16
    assert margin_for((32, 32)) == 0


@pytest.mark.parametrize(
    "shape, expected, max_work",
    [
        ((552, 685), (576, 704), 1.08),  # one tile, no larger than needed
        ((3, 3), (32, 32), 114),
        ((2000, 3000), (1056, 1056), 1.12),
        ((4000, 4000), None, 1.12),
        ((3000, 7000), None, 1.12),
    ],
)
def test_auto_tiles_fit_the_image(shape, expected, max_work):
    tile = auto_tile_shape(*shape, max_pixels=MAX_AUTO_TILE_PIXELS)
    if expected is not None:
        assert tile == expected
    assert tile[0] * tile[1] <= MAX_AUTO_TILE_PIXELS
    assert all(side % 32 == 0 for side in tile)
    work = tile_pixels(*shape, tile, MARGIN) / (shape[0] * shape[1])
    assert work <= max_work


def test_auto_tiles_stay_within_memory():
    assert max_tile_pixels() <= MAX_AUTO_TILE_PIXELS
    tile = auto_tile_shape(4000, 4000, max_pixels=512 * 512)
    assert tile == (512, 512)
    # smaller tiles, more margins: (512 / 448)^2 = 1.31x the pixels
    assert tile_pixels(4000, 4000, tile, MARGIN) < 1.35 * 4000 * 4000
    # a very long strip still gets tiles models can be built at
    th, tw = auto_tile_shape(100, 20000)
    assert th == 128 and tw <= MAX_TILE_SIDE


def test_network_work_on_a_large_image_is_counted_in_tile_pixels():
    """2000 x 3000: the tiles passed to the network hold at most 1.15x the
    image's pixels (25 % overlap at the training size took ~1.8x), and
    the class map is the pointwise one everywhere: no gap, no seam."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (2000, 3000, 3), dtype=np.uint8)
    tile = auto_tile_shape(2000, 3000, max_pixels=MAX_AUTO_TILE_PIXELS)
    seen = []

    def forward(tiles):
        seen.append(tiles.shape)
        return red_rule(tiles)

    events = []
    labels, conf = run(
        predict_margin_tiles(forward, image, tile, MARGIN), events.append
    )
    assert all(s == (1, *tile, 3) for s in seen)  # one fixed shape
    work = sum(int(np.prod(s[:3])) for s in seen) / (2000 * 3000)
    assert work <= 1.15, work
    assert work == tile_pixels(2000, 3000, tile, MARGIN) / (2000 * 3000)
    np.testing.assert_array_equal(labels, np.where(image[..., 0] > 128, 2, 1))
    assert conf is None
    assert [e.step for e in events] == list(range(1, len(seen) + 1))
    assert events[-1].total == len(seen)


def test_every_pixel_is_decided_with_a_margin_of_context():
    """Each pixel comes from a tile in which it lies at least ``margin``
    pixels from the edge, except along the image's own border."""
    margin = 16
    image = np.zeros((150, 230, 3), np.uint8)

    def distance_rule(tiles):
        _, h, w, _ = tiles.shape
        y, x = np.mgrid[:h, :w]
        edge = np.minimum(np.minimum(y, h - 1 - y), np.minimum(x, w - 1 - x))
        inside = (edge >= margin)[None, ..., None]
        return np.where(inside, [0.1, 0.1, 0.8], [0.1, 0.8, 0.1]).astype(
            np.float32
        )

    labels, conf = run(
        predict_margin_tiles(
            distance_rule, image, (64, 96), margin, confidence=True
        )
    )
    assert (labels[margin:-margin, margin:-margin] == 2).all()
    assert labels.shape == conf.shape == (150, 230)
    assert 0 < conf.min() <= conf.max() < 1


def test_the_next_tile_runs_while_this_one_is_placed_and_stop_ends_it():
    """The network gets the next tile before the caller has this one's
    progress event; closing the generator (Stop) leaves no worker thread
    and starts no more tiles."""
    import threading

    image = np.zeros((300, 300, 3), np.uint8)
    threads, calls = set(), []

    def forward(tiles):
        threads.add(threading.current_thread())
        calls.append(1)
        return red_rule(tiles)

    gen = predict_margin_tiles(forward, image, (96, 96), 16)
    first = next(gen)
    assert first.step == 1 and first.total == 25
    assert len(threads) == 1
    assert all(t.name.startswith("thinseg-ahead") for t in threads)
    gen.close()
    assert len(calls) <= 2
    for t in threads:
        t.join(timeout=5)
        assert not t.is_alive()


def test_dihedral_mean_of_a_pointwise_rule_is_the_rule():
    """Test-time augmentation of a rule that looks at each pixel alone
    changes nothing; the 8 views reach the network at their own shapes."""
    from napari_thinseg.inference.tiling import DIHEDRAL, dihedral_mean

    rng = np.random.default_rng(5)
    tiles = rng.integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
    shapes = []

    def forward_at(shape):
        def forward(views):
            assert views.shape[1:3] == shape
            shapes.append(shape)
            return red_rule(views)

        return forward

    averaged = dihedral_mean(forward_at)(tiles)
    np.testing.assert_allclose(averaged, red_rule(tiles), rtol=1e-6)
    assert len(DIHEDRAL) == 8 and len(set(DIHEDRAL)) == 8
    assert shapes.count((64, 96)) == 4 and shapes.count((96, 64)) == 4


def test_dihedral_mean_undoes_each_view():
    """A rule that marks the top-left quadrant in its own orientation:
    averaged over the 8 views it is symmetric, and every view was turned
    back (a view left turned would break the symmetry)."""
    from napari_thinseg.inference.tiling import dihedral_mean

    def forward_at(shape):
        def forward(views):
            _, h, w, _ = views.shape
            probs = np.zeros((1, h, w, 2), np.float32)
            probs[..., 0] = 1
            probs[:, : h // 2, : w // 2] = (0, 1)
            return probs

        return forward

    out = dihedral_mean(forward_at)(np.zeros((1, 8, 8, 3), np.uint8))[
        0, ..., 1
    ]
    np.testing.assert_allclose(out, np.full((8, 8), 0.25), rtol=1e-6)
