"""The "Point count" widget on a real napari viewer: grid, assign with
the class keys, confirm, export, reopen."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_thinseg._napari.layers import labels_kwargs
from napari_thinseg._napari.widgets.measure.point_count import (
    COUNT_KEY,
    PointCountWidget,
    summary_path,
)
from napari_thinseg.measure.point_count import read_points_csv
from napari_thinseg.schemes import SANDSTONE


def halves():
    labels = np.full((120, 200), 2, np.uint8)  # quartz
    labels[:, :100] = 1  # pore
    return labels


def open_widget(viewer) -> PointCountWidget:
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Point count"
    )
    assert isinstance(widget, PointCountWidget)
    return widget


def press(layer, key):
    """What napari does when ``key`` is pressed on the selected layer."""
    from app_model.types import KeyBinding

    layer.keymap[KeyBinding.from_str(key)](layer)


def rows(widget):
    table = widget.table
    return {
        table.item(r, 0).text(): [
            table.item(r, c).text() for c in range(table.columnCount())
        ]
        for r in range(table.rowCount())
    }


def test_grid_assign_confirm_export_reopen(
    make_napari_viewer, notes, tmp_path
):
    viewer = make_napari_viewer()
    viewer.add_labels(
        halves(),
        name="ts labels",
        scale=(2.5, 2.5),
        **labels_kwargs(SANDSTONE),
    )
    widget = open_widget(viewer)
    widget.n_points.setValue(100)
    widget.grid_button.click()
    layer = viewer.layers["ts labels point count"]
    assert layer.metadata[COUNT_KEY]
    n = len(layer.data)
    assert n == 100  # the number asked (issue 26: 110 were given)
    assert tuple(layer.scale) == (2.5, 2.5)
    # pre-assigned from the labels, half and half; nothing confirmed yet
    table = rows(widget)
    assert int(table["pore"][1]) + int(table["quartz"][1]) == n
    assert float(table["pore"][4]) == pytest.approx(50.0)
    assert not widget.count.confirmed.any()

    # key 3 (the 3rd class, feldspar) on the current point: confirmed,
    # and on to the next
    first = widget.current
    press(layer, "3")
    assert widget.count.class_ids[first] == SANDSTONE.id_of("feldspar")
    assert widget.count.confirmed[first]
    assert widget.current == first + 1
    assert layer.selected_data == {first + 1}
    assert rows(widget)["feldspar"][1] == "1"
    assert layer.features["class_id"][first] == SANDSTONE.id_of("feldspar")
    assert layer.features["confirmed"][first] == 1
    assert np.allclose(layer.border_color[first], (1, 1, 1, 1))
    # a selection of points gets the class at once
    layer.selected_data = {5, 6, 7}
    press(layer, "1")
    assert widget.count.confirmed[[5, 6, 7]].all()
    assert (widget.count.class_ids[[5, 6, 7]] == 1).all()
    assert widget.current == 8
    press(layer, "n")
    assert widget.current == 9  # n skips the current point for now

    # export: points and summary; never over existing files unasked
    path = tmp_path / "count.csv"
    written = widget.export(path)
    assert written == (path, summary_path(path))
    summary = {r[1]: r for r in csv.reader(summary_path(path).open())}
    assert summary["feldspar"][2] == "1"
    assert summary["confirmed"][2] == "4"
    assert widget.export(path) is None
    assert "exist" in notes["error"][-1]

    # reopen: the same points and calls, on to the first unconfirmed one
    viewer.layers.remove(layer)
    widget.open_csv(path)
    again = viewer.layers["ts labels point count"]
    saved = read_points_csv(path, SANDSTONE)
    np.testing.assert_allclose(again.data, saved.points)
    assert np.array_equal(widget.count.class_ids, saved.class_ids)
    assert widget.count.confirmed.sum() == 4
    assert widget.current == 1
    assert "reopened count.csv: 4 of" in widget.status_label.text()


def test_refusals_are_one_line(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    widget.grid_button.click()
    assert "no Labels layer" in notes["error"][-1]
    assert widget.export("x.csv") is None
    assert "make a grid first" in notes["error"][-1]
    viewer.add_labels(np.zeros((3, 8, 8), np.uint8), name="stack")
    widget.grid_button.click()
    assert "2D labels" in notes["error"][-1]
