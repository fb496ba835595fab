"""Plane + crossed polars in the Train, Predict and Export widgets, end to
end on a real viewer, with a small crop of
``../shared/data/polarised-sandstones`` (GPL-3.0 data, read from there;
skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from test_widget_predict import open_widget as open_predict
from test_widget_predict import run_prediction
from test_widget_train import make_tiny, run_training
from test_widget_train import open_widget as open_train

from napari_thinseg._napari.widgets.predict.dock import MODEL_TRAINED
from napari_thinseg._napari.widgets.train.choices import START_NEW

POLARISED = Path(__file__).parents[3] / "shared/data/polarised-sandstones"
WINDOW = np.s_[400:464, 600:680]

pytestmark = pytest.mark.usefixtures("no_trained_models")


@pytest.fixture
def polarised_crop():
    if not POLARISED.is_dir():
        pytest.skip(f"{POLARISED} is absent (../shared not checked out)")
    ppl = iio.imread(POLARISED / "ppl" / "4a.jpg")[WINDOW]
    xpl = iio.imread(POLARISED / "xpl" / "4a.jpg")[WINDOW]
    labels = iio.imread(POLARISED / "annotations" / "4a.png")[WINDOW]
    return ppl, xpl, labels


def test_train_and_predict_on_plane_and_crossed_polars(
    polarised_crop, make_napari_viewer, qtbot, notes
):
    ppl, xpl, labels = polarised_crop
    viewer = make_napari_viewer()
    viewer.add_image(ppl, name="4a", rgb=True)
    viewer.add_image(xpl, name="4a XPL", rgb=True)
    viewer.add_labels(labels, name="4a labels")

    train = open_train(viewer)
    # the twin is found by name and is not a row of its own
    rows = train.form.pairs_table.rows()
    assert [(im.name, ok, lb.name, x.name) for im, ok, lb, x in rows] == [
        ("4a", True, "4a labels", "4a XPL")
    ]
    train.form.set_start(START_NEW)
    make_tiny(train)
    result, failed = run_training(qtbot, train)
    assert failed is None, failed
    assert result.config.input_channels == 6
    assert result.model.input_shape[-1] == 6

    predict = open_predict(viewer)
    predict.set_model(MODEL_TRAINED)
    predict.image_combo.set_layer(viewer.layers["4a"])
    assert predict.xpl_combo.layer() is viewer.layers["4a XPL"]
    layers, failed = run_prediction(qtbot, predict)
    assert failed is None, failed
    assert layers == [viewer.layers["4a prediction"]]
    assert layers[0].data.shape == labels.shape

    # without its crossed-polarised twin: one plain notification
    predict.xpl_combo.set_layer(None)
    _, failed = run_prediction(qtbot, predict)
    assert "crossed-polarised" in failed
    assert any("crossed-polarised" in m for m in notes["error"])


def test_export_writes_the_crossed_polars_folder(
    polarised_crop, make_napari_viewer, qtbot, tmp_path
):
    ppl, xpl, labels = polarised_crop
    viewer = make_napari_viewer()
    viewer.add_image(ppl, name="4a", rgb=True)
    viewer.add_image(xpl, name="4a_xpl", rgb=True)
    viewer.add_labels(labels, name="4a labels")
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Export annotations"
    )
    assert [r[3].name for r in widget.rows()] == ["4a_xpl"]
    widget.folder.setText(str(tmp_path))
    widget.export_button.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=10000)
    twin = tmp_path / "images_xpl_prepped_train" / "4a.png"
    np.testing.assert_array_equal(iio.imread(twin), xpl)


def test_photos_opened_from_ppl_and_xpl_folders_pair(
    make_napari_viewer, qtbot, tmp_path, notes
):
    """Issue 26: ppl/7a.jpg and xpl/7a.jpg open as "7a" and "7a [1]";
    they pair by their folders, no image is its own twin, and the pair is
    told."""
    rng = np.random.default_rng(0)
    for folder in ("ppl", "xpl"):
        (tmp_path / folder).mkdir()
        photo = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        iio.imwrite(tmp_path / folder / "7a.jpg", photo)
    other = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "other.png", other)
    viewer = make_napari_viewer()
    predict = open_predict(viewer)
    for path in ("ppl/7a.jpg", "xpl/7a.jpg", "other.png"):
        viewer.open(str(tmp_path / path), plugin="napari")
    assert [ly.name for ly in viewer.layers] == ["7a", "7a [1]", "other"]
    plane, crossed = viewer.layers["7a"], viewer.layers["7a [1]"]

    predict.image_combo.set_layer(plane)
    assert predict.xpl_combo.layer() is crossed
    offered = [
        predict.xpl_combo.itemText(i) for i in range(predict.xpl_combo.count())
    ]
    assert offered == ["(none)", "7a [1]", "other"]  # not "7a" itself
    assert "'7a' + '7a [1]' (ppl/7a.jpg, xpl/7a.jpg)" in (
        predict.pairs_label.text()
    )
    # another image: never offered as its own twin, no twin found
    predict.image_combo.set_layer(viewer.layers["other"])
    assert predict.xpl_combo.layer() is None
    offered = [
        predict.xpl_combo.itemText(i) for i in range(predict.xpl_combo.count())
    ]
    assert "other" not in offered
    # all open images: the twin is stacked, not predicted on its own
    predict.all_images.setChecked(True)
    assert predict.targets() == [plane, viewer.layers["other"]]

    # the pair table of Export: the twin is no row of its own
    _, export = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Export annotations"
    )
    rows = {im.name: x for im, _, _, x in export.table.rows()}
    assert rows == {"7a": crossed, "other": None}
    assert export.table.pairs_text() == (
        "'7a' + '7a [1]' (ppl/7a.jpg, xpl/7a.jpg)"
    )
    # told once, however many docks look
    told = [m for m in notes["info"] if "crossed polars" in m]
    assert told == [
        "plane + crossed polars: '7a' + '7a [1]' (ppl/7a.jpg, xpl/7a.jpg)"
    ]
    assert notes["error"] == []
