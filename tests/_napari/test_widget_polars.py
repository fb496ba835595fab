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

from napari_thinseg._napari.widgets.predict import MODEL_TRAINED
from napari_thinseg._napari.widgets.train_choices import START_NEW

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
