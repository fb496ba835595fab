"""Sessions: a day's work saved as a folder, opened again (layers,
schemes, point counts and the model trained last)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from napari_thinseg._napari.layers import labels_kwargs, scheme_of
from napari_thinseg._napari.session import (
    SESSION_FILE,
    open_session,
    save_session,
)
from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.errors import ThinsegError
from napari_thinseg.model import cache
from napari_thinseg.schemes import SANDSTONE

pytestmark = pytest.mark.usefixtures("no_trained_models")


def fill(viewer):
    rgb, labels = synthetic_sandstone((48, 64), seed=2)
    viewer.add_image(rgb, name="ts", rgb=True, scale=(2.5, 2.5))
    viewer.add_image(
        (rgb[..., 0].astype(np.uint16) * 16), name="ts 12-bit", visible=False
    )
    viewer.add_labels(
        labels,
        name="ts labels",
        scale=(2.5, 2.5),
        opacity=0.5,
        **labels_kwargs(SANDSTONE),
    )
    features = pd.DataFrame({"class_id": [1, 2, 3], "confirmed": [1, 0, 1]})
    viewer.add_points(
        [[4.0, 5.0], [10.5, 20.25], [30.0, 60.0]],
        name="ts point count",
        features=features,
        size=9,
    )


def test_save_and_open_a_session(
    make_napari_viewer, tmp_path, notes, default_model
):
    viewer = make_napari_viewer()
    fill(viewer)
    model, config = default_model
    cache.trained_models.add(
        cache.TrainedModel(model, config, "P (epoch 3)", None)
    )
    folder = tmp_path / "monday"
    path = save_session(viewer, folder)
    assert path == folder / SESSION_FILE
    with pytest.raises(ThinsegError, match="exist"):
        save_session(viewer, folder)  # never replaced unasked
    before = {ly.name: ly for ly in viewer.layers}

    cache.trained_models.clear()
    fresh = make_napari_viewer()
    layers = open_session(fresh, folder)
    assert [ly.name for ly in layers] == list(before)
    for layer in layers:
        old = before[layer.name]
        assert type(layer) is type(old)
        np.testing.assert_array_equal(np.asarray(layer.data), old.data)
        assert np.asarray(layer.data).dtype == np.asarray(old.data).dtype
        np.testing.assert_allclose(layer.scale, old.scale)
        assert layer.visible == old.visible
        assert layer.opacity == pytest.approx(old.opacity)
    labels = fresh.layers["ts labels"]
    assert scheme_of(labels).classes == SANDSTONE.classes
    assert list(labels.features["name"])[1] == "pore"
    points = fresh.layers["ts point count"]
    assert points.features["class_id"].tolist() == [1, 2, 3]
    assert points.features["confirmed"].tolist() == [1, 0, 1]
    # "model just trained" survives the restart, weights and all
    latest = cache.trained_models.latest()
    assert latest.name == "P (epoch 3) (from session)"
    assert latest.config.class_scheme.classes == config.class_scheme.classes
    for a, b in zip(
        latest.model.get_weights()[-2:], model.get_weights()[-2:], strict=True
    ):
        np.testing.assert_allclose(a, b)


def test_a_session_folder_opens_in_napari_and_refusals(
    make_napari_viewer, tmp_path
):
    viewer = make_napari_viewer()
    with pytest.raises(ThinsegError, match="nothing to save"):
        save_session(viewer, tmp_path / "empty")
    fill(viewer)
    save_session(viewer, tmp_path / "s")
    assert cache.trained_models.latest() is None
    assert not (tmp_path / "s" / "model").exists()
    fresh = make_napari_viewer()
    fresh.open(str(tmp_path / "s"), plugin="napari-thinseg")
    assert [ly.name for ly in fresh.layers] == [
        ly.name for ly in viewer.layers
    ]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / SESSION_FILE).write_text('{"version": 99}')
    with pytest.raises(ThinsegError, match="not a napari-thinseg session"):
        open_session(fresh, tmp_path / "bad")


def test_the_panel_saves_and_opens_sessions(
    make_napari_viewer, tmp_path, notes
):
    viewer = make_napari_viewer()
    fill(viewer)
    _, panel = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Thin sections"
    )
    assert panel.cornerWidget().text() == "Session"
    assert panel.save_session(tmp_path / "s") == tmp_path / "s" / SESSION_FILE
    assert panel.save_session(tmp_path / "s") is None
    assert "exist" in notes["error"][-1]
    viewer.layers.clear()
    assert len(panel.open_session(tmp_path / "s")) == 4
    assert "session s: 4 layer(s)" in notes["info"][-1]


def test_the_panel_keeps_the_steps_settings(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    fill(viewer)
    _, panel = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Thin sections"
    )
    auto, train = panel.steps["Auto-label"], panel.steps["Train"]
    auto.sigma_spin.setValue(2.5)
    auto.method_combo.setCurrentIndex(auto.method_combo.findData("epoxy"))
    auto.epoxy_spins["min_saturation"].setValue(0.12)
    train.form.epochs.setValue(7)
    train.form.optimizer.setCurrentText("adam")
    train.form.folder.setText(str(tmp_path / "runs"))
    panel.steps["Points"].n_points.setValue(500)
    panel.save_session(tmp_path / "s")

    fresh = make_napari_viewer()
    _, again = fresh.window.add_plugin_dock_widget(
        "napari-thinseg", "Thin sections"
    )
    again.open_session(tmp_path / "s")
    auto2, train2 = again.steps["Auto-label"], again.steps["Train"]
    assert auto2.sigma_spin.value() == 2.5
    assert auto2.method() == "epoxy"
    assert auto2.epoxy_spins["min_saturation"].value() == pytest.approx(0.12)
    assert train2.form.epochs.value() == 7
    assert train2.form.optimizer.currentText() == "adam"
    assert train2.form.folder.text() == str(tmp_path / "runs")
    assert again.steps["Points"].n_points.value() == 500
    # the layer choices follow the opened layers
    assert auto2.image_layer is fresh.layers["ts"]


def test_whole_slides_are_kept_by_their_files(make_napari_viewer, tmp_path):
    import tifffile

    from napari_thinseg._napari.layers import PREDICTION_KEY
    from napari_thinseg.imaging.lazy import open_lazy
    from napari_thinseg.imaging.pyramid import LabelsPyramid

    rgb, labels = synthetic_sandstone((1200, 1100), seed=3)
    scan = tmp_path / "scan.tif"
    with tifffile.TiffWriter(scan) as tif:
        tif.write(rgb, tile=(256, 256), photometric="rgb", subifds=1)
        tif.write(
            rgb[::2, ::2], tile=(256, 256), photometric="rgb", subfiletype=1
        )
    out = tmp_path / "scan_labels.ome.zarr"
    pyramid = LabelsPyramid.create(out, labels.shape, SANDSTONE)
    pyramid.write(0, 0, labels)  # a stopped run: only its .partial exists
    viewer = make_napari_viewer()
    viewer.add_image(
        open_lazy(scan).levels,
        name="scan",
        multiscale=True,
        metadata={"thinseg_slide": str(scan)},
    )
    kwargs = labels_kwargs(SANDSTONE)
    kwargs["metadata"][PREDICTION_KEY] = {"output": str(out)}
    viewer.add_labels(
        pyramid.levels, name="scan prediction", multiscale=True, **kwargs
    )
    folder = tmp_path / "session"
    save_session(viewer, folder)
    assert not (folder / "images").exists()  # nothing copied
    fresh = make_napari_viewer()
    open_session(fresh, folder)
    image, predicted = fresh.layers["scan"], fresh.layers["scan prediction"]
    assert image.multiscale and predicted.multiscale
    assert image.data.shapes[0][:2] == (1200, 1100)
    np.testing.assert_array_equal(np.asarray(predicted.data[0]), labels)
    assert scheme_of(predicted) == SANDSTONE
    viewer.layers.clear()
    viewer.add_image(open_lazy(scan).levels, name="lost", multiscale=True)
    with pytest.raises(ThinsegError, match="saved by its file"):
        save_session(viewer, tmp_path / "s2")
