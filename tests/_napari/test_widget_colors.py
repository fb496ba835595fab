"""The "Petrographic colours" widget on a real napari viewer."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from qtpy.QtGui import QColor
from qtpy.QtWidgets import QColorDialog, QFileDialog

from napari_thinseg._napari.layers import labels_kwargs, scheme_of
from napari_thinseg._napari.widgets.colors import (
    NAME,
    OWN,
    SWATCH,
    ColorsWidget,
    new_class_color,
)
from napari_thinseg.colorize import colorize
from napari_thinseg.schemes import SANDSTONE, SEED, ClassScheme, PetroClass

LABELS = np.array(
    [
        [0, 1, 1, 2, 2, 2],
        [1, 1, 2, 2, 3, 3],
        [4, 4, 5, 5, 3, 0],
        [4, 5, 5, 5, 3, 0],
    ],
    dtype=np.uint8,
)


def open_widget(viewer) -> ColorsWidget:
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Petrographic colours"
    )
    assert isinstance(widget, ColorsWidget)
    return widget


def layer_rgb(layer, ids) -> np.ndarray:
    """The 0..255 RGB the layer's colormap gives each id."""
    rgba = layer.colormap.map(np.asarray(ids, dtype=np.uint8))
    return np.round(np.asarray(rgba)[:, :3] * 255).astype(int)


def legend_names(widget) -> list[str]:
    return [
        widget.legend.item(r, NAME).text()
        for r in range(widget.legend.rowCount())
    ]


def assert_layer_has(layer, scheme: ClassScheme):
    np.testing.assert_array_equal(
        layer_rgb(layer, scheme.ids), [c.rgb for c in scheme]
    )
    assert list(layer.features["name"]) == ["unlabelled", *scheme.names]
    assert list(layer.features["index"]) == [0, *scheme.ids]
    assert scheme_of(layer).classes == scheme.classes


def test_apply_builtin_scheme_from_manifest(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(LABELS.copy(), name="rock labels")
    widget = open_widget(viewer)
    assert widget.labels_combo.layer() is layer
    assert widget.scheme_combo.currentText() == OWN

    widget.scheme_combo.setCurrentText("sandstone")
    assert legend_names(widget) == SANDSTONE.names
    widget.apply_button.click()
    assert_layer_has(layer, SANDSTONE)
    assert layer.features["name"][3] == "feldspar"

    widget.scheme_combo.setCurrentText("seed")
    widget.apply_button.click()
    assert_layer_has(layer, SEED)
    # the layer's own scheme is what was applied
    widget.scheme_combo.setCurrentText(OWN)
    assert widget.scheme.classes == SEED.classes
    assert notes["error"] == []


def test_legend_edits_apply_to_layer(
    make_napari_viewer, notes, monkeypatch, tmp_path
):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(
        LABELS.copy(), name="rock labels", **labels_kwargs(SEED)
    )
    widget = open_widget(viewer)
    assert legend_names(widget) == SEED.names

    # rename
    widget.legend.item(0, NAME).setText("opaque")
    assert scheme_of(layer)[1].name == "opaque"
    assert layer.features["name"][1] == "opaque"
    # a duplicate name is refused, the legend shows the old name again
    widget.legend.item(1, NAME).setText("opaque")
    assert notes["error"] and "opaque" in notes["error"][-1]
    assert widget.legend.item(1, NAME).text() == SEED[2].name
    assert scheme_of(layer)[2].name == SEED[2].name

    # recolour (dialog monkeypatched), and a cancelled dialog changes nothing
    monkeypatch.setattr(
        QColorDialog, "getColor", lambda *a, **k: QColor("#123456")
    )
    widget.legend.cellWidget(1, SWATCH).click()
    np.testing.assert_array_equal(layer_rgb(layer, [2]), [[0x12, 0x34, 0x56]])
    assert scheme_of(layer)[2].color == "#123456"
    monkeypatch.setattr(QColorDialog, "getColor", lambda *a, **k: QColor())
    widget.legend.cellWidget(1, SWATCH).click()
    assert scheme_of(layer)[2].color == "#123456"

    # add a class: next free id, new name and colour, on the layer
    widget.add_button.click()
    assert widget.scheme.ids == [1, 2, 3, 4, 5, 6]
    assert legend_names(widget)[-1] == "class 6"
    np.testing.assert_array_equal(
        layer_rgb(layer, [6]), [PetroClass(6, "x", new_class_color(6)).rgb]
    )
    assert layer.features["name"][6] == "class 6"
    assert scheme_of(layer).pore_ids == SEED.pore_ids

    # save the scheme and load it back
    saved = tmp_path / "mine.json"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(saved), "")
    )
    widget.save_scheme_button.click()
    assert ClassScheme.load(saved).to_dict() == widget.scheme.to_dict()

    other = SANDSTONE.with_class(11, "glauconite", "#2e8b57")
    path = tmp_path / "classes.json"
    other.save(path)
    monkeypatch.setattr(
        QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), "")
    )
    widget.load_button.click()
    assert widget.scheme_combo.currentText() == "sandstone (classes.json)"
    assert legend_names(widget) == other.names
    widget.apply_button.click()
    assert_layer_has(layer, other)
    assert notes["error"] == [notes["error"][0]]


def test_match_thin_section_uses_class_medians(make_napari_viewer, notes):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (*LABELS.shape, 3), dtype=np.uint8)
    viewer = make_napari_viewer()
    viewer.add_image(image, name="section", rgb=True)
    layer = viewer.add_labels(LABELS.copy(), name="section labels")
    widget = open_widget(viewer)
    widget.scheme_combo.setCurrentText("sandstone")
    assert widget.image_combo.layer().name == "section"

    widget.match_button.click()
    assert notes["error"] == []
    expected = {}
    for c in SANDSTONE:
        mask = np.equal(LABELS, c.id)
        if mask.any():
            expected[c.id] = tuple(
                int(round(np.median(image[..., ch][mask]))) for ch in range(3)
            )
        else:  # absent classes keep their colour
            expected[c.id] = c.rgb
    got = {c.id: c.rgb for c in scheme_of(layer)}
    assert got == expected
    np.testing.assert_array_equal(
        layer_rgb(layer, SANDSTONE.ids), [expected[i] for i in SANDSTONE.ids]
    )
    # the legend shows the matched colours
    assert widget.scheme == scheme_of(layer)
    swatch = widget.legend.cellWidget(0, SWATCH).styleSheet()
    assert widget.scheme[1].color in swatch
    assert widget.scheme_combo.currentText() == OWN


def test_save_png_never_overwrites_unasked(
    make_napari_viewer, notes, monkeypatch, tmp_path
):
    viewer = make_napari_viewer()
    layer = viewer.add_labels(LABELS.copy(), name="rock labels")
    widget = open_widget(viewer)
    widget.scheme_combo.setCurrentText("sandstone")
    target = tmp_path / "colored.png"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), "")
    )

    widget.save_png_button.click()
    assert notes["error"] == []
    np.testing.assert_array_equal(
        iio.imread(target), colorize(layer.data, SANDSTONE)
    )
    before = target.read_bytes()

    widget.scheme_combo.setCurrentText("seed")
    widget.save_png_button.click()
    assert len(notes["error"]) == 1
    assert "already exists" in notes["error"][0]
    assert "overwrite" in notes["error"][0]
    assert target.read_bytes() == before

    widget.overwrite.setChecked(True)
    widget.save_png_button.click()
    assert len(notes["error"]) == 1
    np.testing.assert_array_equal(
        iio.imread(target), colorize(layer.data, SEED)
    )

    # a name without suffix gets .png
    bare = tmp_path / "bare"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(bare), "")
    )
    widget.save_png_button.click()
    assert (tmp_path / "bare.png").is_file()


def test_errors_are_notifications(make_napari_viewer, notes, monkeypatch):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    widget.apply_button.click()
    widget.match_button.click()
    assert len(notes["error"]) == 2
    assert all("Labels layer" in m for m in notes["error"])

    layer = viewer.add_labels(LABELS.copy(), name="rock labels")
    assert widget.labels_combo.layer() is layer
    widget.match_button.click()
    assert "Image layer" in notes["error"][-1]

    viewer.add_image(np.zeros((5, 5, 3), np.uint8), name="other", rgb=True)
    widget.match_button.click()
    assert "differ in size" in notes["error"][-1]

    viewer.add_labels(np.zeros((2, 4, 6), np.uint8), name="stack")
    widget.labels_combo.set_layer(viewer.layers["stack"])
    monkeypatch.setattr(
        QFileDialog,
        "getSaveFileName",
        lambda *a, **k: pytest.fail("no dialog for 3D labels"),
    )
    widget.save_png_button.click()
    assert "2D" in notes["error"][-1]
    assert all("\n" not in m for m in notes["error"])


def test_combos_follow_layer_list(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    assert widget.labels_combo.count() == 0
    first = viewer.add_labels(LABELS.copy(), name="a")
    second = viewer.add_labels(
        LABELS.copy(), name="b", **labels_kwargs(SANDSTONE)
    )
    assert [widget.labels_combo.itemText(i) for i in range(2)] == ["a", "b"]
    assert widget.labels_combo.layer() is first
    widget.labels_combo.set_layer(second)
    # "layer's own" follows the chosen layer
    assert widget.scheme.classes == SANDSTONE.classes
    first.name = "renamed"
    assert widget.labels_combo.itemText(0) == "renamed"
    assert widget.labels_combo.layer() is second
    viewer.layers.remove(second)
    assert widget.labels_combo.layer() is first
    assert widget.scheme.classes == SEED.classes
