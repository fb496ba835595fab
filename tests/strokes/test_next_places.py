"""Where to correct next, on synthetic confidence maps."""

from __future__ import annotations

import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.strokes.next_places import (
    Place,
    next_places,
    uncertainty,
)

SHAPE = (120, 160)


def blob(center, radius, depth, shape=SHAPE):
    """How much a round patch lowers the confidence: ``depth`` inside."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    inside = (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius**2
    return np.where(inside, depth, 0.0).astype(np.float32)


def labels_of(shape=SHAPE, value=2):
    return np.full(shape, value, np.uint8)


def test_the_least_certain_blob_comes_first():
    confidence = 1 - blob((30, 40), 6, 0.5) - blob((90, 120), 6, 0.8)
    labels = labels_of()
    labels[80:100, 110:130] = 3
    places = next_places(confidence, labels, n=5, brush=6)
    assert len(places) == 2  # a sure field elsewhere has nothing to offer
    worst, second = places
    assert isinstance(worst, Place)
    assert (worst.y, worst.x) == (90, 120) and worst.class_id == 3
    assert (second.y, second.x) == (30, 40) and second.class_id == 2
    assert 0 < second.score < worst.score <= 0.8


def test_a_wider_patch_outranks_a_lone_noisy_pixel():
    confidence = np.ones(SHAPE, np.float32)
    confidence[20, 20] = 0.0  # one pixel, fully unsure
    confidence -= blob((80, 100), 8, 0.4)
    places = next_places(confidence, labels_of(), n=2, brush=10)
    assert (places[0].y, places[0].x) == (80, 100)


def test_places_keep_their_distance_and_their_number():
    rng = np.random.default_rng(0)
    confidence = rng.random(SHAPE).astype(np.float32)
    places = next_places(confidence, labels_of(), n=8, min_distance=25)
    assert len(places) == 8
    points = np.array([(p.y, p.x) for p in places])
    gaps = np.hypot(*(points[:, None] - points[None]).transpose(2, 0, 1))
    assert gaps[~np.eye(len(points), dtype=bool)].min() >= 25
    scores = [p.score for p in places]
    assert scores == sorted(scores, reverse=True)
    # default spacing: five brush diameters
    spread = next_places(confidence, labels_of(), n=50, brush=4)
    points = np.array([(p.y, p.x) for p in spread])
    gaps = np.hypot(*(points[:, None] - points[None]).transpose(2, 0, 1))
    assert gaps[~np.eye(len(points), dtype=bool)].min() >= 20


def test_a_place_beside_a_dropped_one_is_kept():
    # B is too near A (higher), C is far from A but near B: A and C
    confidence = 1 - blob((60, 30), 5, 0.9) - blob((60, 60), 5, 0.6)
    confidence -= blob((60, 95), 5, 0.3)
    places = next_places(confidence, labels_of(), brush=6, min_distance=40)
    assert [(p.y, p.x) for p in places] == [(60, 30), (60, 95)]


def test_disagreement_counts():
    # the model is a little unsure at A and sure, but contradicted, at B
    confidence = 1 - blob((30, 40), 6, 0.3)
    labels = labels_of()
    other = labels_of()
    other[80:101, 110:131] = 4  # centred on (90, 120)
    alone = next_places(confidence, labels, n=3, brush=6)
    assert [(p.y, p.x) for p in alone] == [(30, 40)]
    both = next_places(confidence, labels, other, n=3, brush=6)
    assert (both[0].y, both[0].x) == (90, 120)
    assert both[0].class_id == 2  # the prediction's class, not the other's
    assert (both[1].y, both[1].x) == (30, 40)
    # weighted off, disagreement is ignored
    none = next_places(confidence, labels, other, brush=6, disagreement=0)
    assert [(p.y, p.x) for p in none] == [(30, 40)]


def test_uncertainty_is_0_to_1_and_ignores_class_0():
    confidence = np.full((4, 4), 0.5, np.float32)
    labels = labels_of((4, 4))
    other = labels_of((4, 4), 3)
    other[0] = 0  # no class there: no disagreement
    u = uncertainty(confidence, labels, other)
    assert u.dtype == np.float32
    np.testing.assert_allclose(u[0], 0.25)
    np.testing.assert_allclose(u[1:], 0.75)
    np.testing.assert_allclose(uncertainty(confidence), 0.5)


def test_the_padded_edge_gets_no_place():
    # a network is unsure on its image's outer pixels, whatever is there
    confidence = np.ones(SHAPE, np.float32)
    confidence[:, :3] = 0.3
    confidence -= blob((60, 140), 6, 0.4)
    places = next_places(confidence, labels_of(), brush=10)
    assert [(p.y, p.x) for p in places] == [(60, 140)]
    # without the cut, the edge comes first
    places = next_places(confidence, labels_of(), brush=10, edge=0)
    assert {p.x for p in places[:-1]} == {0}
    assert (places[-1].y, places[-1].x) == (60, 140)
    # a patch just inside the cut is still found, at its edge
    confidence = 1 - blob((60, 2), 8, 0.6)
    (place,) = next_places(confidence, labels_of(), brush=10)
    assert (place.y, place.x) == (60, 5)


def test_a_sure_map_has_no_places():
    assert next_places(np.ones(SHAPE, np.float32), labels_of()) == []


@pytest.mark.parametrize(
    "confidence, labels, other, kwargs, words",
    [
        (np.ones((3, 4, 4)), labels_of((4, 4)), None, {}, "2D map"),
        (np.ones((0, 4)), labels_of((0, 4)), None, {}, "2D map"),
        (np.ones((4, 4), np.uint8), labels_of((4, 4)), None, {}, "floats"),
        (np.full((4, 4), np.nan), labels_of((4, 4)), None, {}, "NaN"),
        (np.full((4, 4), 1.5), labels_of((4, 4)), None, {}, "0..1"),
        (np.ones((4, 4)), labels_of((4, 5)), None, {}, "size"),
        (np.ones((4, 4)), labels_of((4, 4)), labels_of((5, 4)), {}, "size"),
        (np.ones((4, 4)), np.ones((4, 4)), None, {}, "class ids"),
        (np.ones((4, 4)), labels_of((4, 4)), None, {"n": 0}, "places"),
        (np.ones((4, 4)), labels_of((4, 4)), None, {"n": 2.5}, "places"),
        (np.ones((4, 4)), labels_of((4, 4)), None, {"brush": 0}, "brush"),
        (
            np.ones((4, 4)),
            labels_of((4, 4)),
            None,
            {"min_distance": 0},
            "min_distance",
        ),
        (
            np.ones((4, 4)),
            labels_of((4, 4)),
            labels_of((4, 4)),
            {"disagreement": -1},
            "disagreement",
        ),
        (np.ones((4, 4)), labels_of((4, 4)), None, {"edge": -1}, "edge"),
        (np.ones((4, 4)), labels_of((4, 4)), None, {"edge": 1.5}, "edge"),
    ],
)
def test_bad_input_is_refused_in_one_line(
    confidence, labels, other, kwargs, words
):
    with pytest.raises(ThinsegError, match=words) as info:
        next_places(confidence, labels, other, **kwargs)
    assert "\n" not in str(info.value)
