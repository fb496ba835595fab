"""Plane + crossed polars pairs, by name and by file."""

from __future__ import annotations

import pytest

from napari_thinseg.imaging.pairing import (
    View,
    crossed_twin,
    field_key,
    pair_text,
    pair_views,
    view_of_path,
)


def pairs(views):
    return [(p.plane, p.crossed, p.rule) for p in pair_views(views)]


@pytest.mark.parametrize(
    ("plane", "crossed"),
    [
        ("/d/ppl/7a.jpg", "/d/xpl/7a.jpg"),
        ("/d/PPL/7a.png", "/d/XPL/7a.tif"),
        ("/d/plane/7a.png", "/d/crossed/7a.png"),
        ("/d/7a_ppl.png", "/d/7a_xpl.png"),
        ("/d/7a plane.png", "/d/7a-crossed.png"),
        ("/d/images/7a.png", "/d/images_xpl/7a.png"),
        ("/d/s1_PPL/7a.jpg", "/d/s1_XPL/7a.jpg"),
    ],
)
def test_files_of_one_field_pair(plane, crossed):
    views = [View("7a", crossed, (8, 8)), View("7a [1]", plane, (8, 8))]
    assert pairs(views) == [(1, 0, "file")]
    assert view_of_path(crossed) == "crossed"
    assert field_key(plane) == field_key(crossed)
    assert crossed_twin(views, 1) == 0
    assert crossed_twin(views, 0) is None


def test_what_does_not_pair():
    # other fields, other folders, other sizes, two plane photos
    assert (
        pairs([View("7a", "/d/ppl/7a.jpg"), View("7b", "/d/xpl/7b.jpg")]) == []
    )
    assert (
        pairs([View("a", "/d/ppl/7a.jpg"), View("b", "/e/xpl/7a.jpg")]) == []
    )
    assert (
        pairs(
            [
                View("a", "/d/ppl/7a.jpg", (8, 8)),
                View("b", "/d/xpl/7a.jpg", (9, 8)),
            ]
        )
        == []
    )
    assert pairs([View("a", "/d/ppl/7a.jpg"), View("b", "/d/7a.jpg")]) == []
    # one file opened twice is not its own twin, nor is a layer
    assert (
        pairs([View("a", "/d/xpl/7a.jpg"), View("b", "/d/xpl/7a.jpg")]) == []
    )
    assert pairs([View("7a xpl"), View("7a XPL")]) == []
    assert pairs([View("7a xpl", "/d/xpl/7a.jpg")]) == []


def test_names_first_and_one_pair_each():
    views = [
        View("4a", "/d/ppl/4a.jpg"),
        View("4a XPL"),
        View("4a [1]", "/d/xpl/4a.jpg"),
    ]
    assert pairs(views) == [(0, 1, "name")]
    assert pairs([View("4a"), View("4A_crossed")]) == [(0, 1, "name")]
    # two plane photos of one field: the first one free gets the twin
    views = [
        View("p", "/d/ppl/4a.jpg"),
        View("x", "/d/xpl/4a.jpg"),
        View("q", "/d/ppl/4a.png"),
    ]
    assert pairs(views) == [(0, 1, "file")]


def test_pair_text_says_which_files():
    views = [View("7a", "/d/ppl/7a.jpg"), View("7a [1]", "/d/xpl/7a.jpg")]
    assert pair_text(views, pair_views(views)[0]) == (
        "'7a' + '7a [1]' (ppl/7a.jpg, xpl/7a.jpg)"
    )
    views = [View("7a"), View("7a XPL")]
    assert pair_text(views, pair_views(views)[0]) == "'7a' + '7a XPL'"
