"""The "Predict" widget on a real napari viewer (a tiny trained model)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from napari.layers import Image, Labels

from napari_thinseg._napari.widgets import _common
from napari_thinseg._napari.widgets.predict.dock import (
    MODEL_CHECKPOINT,
    MODEL_DEFAULT,
    MODEL_TRAINED,
    STAMP_KEY,
    PredictWidget,
)
from napari_thinseg.dataset.folders import Pair
from napari_thinseg.dataset.synth import synthetic_sandstone, to_seed_labels
from napari_thinseg.inference.predict import (
    predict_image as predict_image_core,
)
from napari_thinseg.model import cache, checkpoints, keras_archive
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED
from napari_thinseg.training.loop import TrainSettings, train

SHAPE = (64, 80)
TIMEOUT_MS = 60_000

# each test starts and ends with an empty model registry
pytestmark = pytest.mark.usefixtures("no_trained_models")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 32x32 model trained for one tiny epoch, and its checkpoint.

    Made on first use, after the test's viewer: TensorFlow loaded before
    napari's first OpenGL canvas makes Mesa's LLVM clash with TensorFlow's
    at process exit, the order the plugin never meets in napari.
    """
    made = []

    def get():
        if not made:
            image, labels = synthetic_sandstone(SHAPE, seed=7)
            prefix = tmp_path_factory.mktemp("ck") / "M"
            settings = TrainSettings(
                input_height=32,
                input_width=32,
                epochs=1,
                batch_size=2,
                steps_per_epoch=2,
            )
            _common.import_tensorflow()  # as the widgets import it
            result = run(
                train(
                    [Pair("t", image, to_seed_labels(labels))],
                    SEED,
                    settings,
                    checkpoints_path=prefix,
                )
            )
            made.append((result, prefix))
        return made[0]

    return get


def add_image(viewer, name="ts", seed=1, shape=SHAPE, **kwargs):
    image, _ = synthetic_sandstone(shape, seed=seed)
    return viewer.add_image(image, name=name, rgb=True, **kwargs)


def register(result) -> None:
    cache.trained_models.add(
        cache.TrainedModel(result.model, result.config, "M (epoch 1)")
    )


def open_widget(viewer) -> PredictWidget:
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Predict"
    )
    assert isinstance(widget, PredictWidget)
    return widget


def run_prediction(qtbot, widget, on_yield=None):
    """Click Predict and wait; returns (layers, failure)."""
    got = {}
    widget.predicted.connect(lambda r: got.setdefault("layers", r))
    widget.failed.connect(lambda m: got.setdefault("failed", m))
    widget.predict_button.click()
    assert widget.worker is not None  # it runs in a thread_worker
    if on_yield is not None:
        widget.worker.yielded.connect(on_yield)
    assert not widget.predict_button.isEnabled()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert widget.predict_button.isEnabled()
    return got.get("layers"), got.get("failed")


def assert_prediction(layer, image):
    assert isinstance(layer, Labels)
    assert layer.data.dtype == np.uint8
    assert layer.data.shape == image.data.shape[:2]
    assert set(np.unique(layer.data)) <= set(SEED.ids)
    np.testing.assert_allclose(layer.scale, image.scale)
    np.testing.assert_allclose(layer.translate, image.translate)
    assert list(layer.features["name"]) == ["unlabelled", *SEED.names]
    for cls in SEED:
        np.testing.assert_allclose(
            layer.colormap.map(cls.id)[..., :3].ravel(),
            np.array(cls.rgb) / 255,
            atol=1e-6,
        )


def test_predict_from_manifest_with_model_just_trained(
    make_napari_viewer, qtbot, notes, trained, no_default_model
):
    viewer = make_napari_viewer()
    result, _ = trained()
    image = add_image(viewer, scale=(2.0, 3.0), translate=(5.0, 7.0))
    widget = open_widget(viewer)
    # no default model shipped and nothing trained: a checkpoint is asked
    assert widget.model_kind() == MODEL_CHECKPOINT
    register(result)
    widget.set_model(MODEL_TRAINED)
    assert "M (epoch 1)" in widget.model_label.text()
    widget.confidence.setChecked(True)

    layers, failed = run_prediction(qtbot, widget)
    assert failed is None and notes["error"] == []
    labels = viewer.layers["ts prediction"]
    assert layers == [labels]
    assert_prediction(labels, image)
    conf = viewer.layers["ts confidence"]
    assert isinstance(conf, Image)
    assert conf.data.dtype == np.float32
    assert conf.data.shape == SHAPE
    assert conf.data.min() >= 0.0 and conf.data.max() <= 1.0
    # neutral: the class colours over it keep their hue (issue 12: magma
    # under the class map at 0.7 opacity looked pink)
    assert conf.colormap.name == "gray"
    np.testing.assert_allclose(conf.scale, image.scale)
    # the class map lies above its confidence
    names = [ly.name for ly in viewer.layers]
    assert names.index("ts confidence") < names.index("ts prediction")
    assert "ts prediction" in notes["info"][-1]
    assert notes["info"][-1].endswith("with M (epoch 1)")  # which model
    assert widget.status_label.text() == notes["info"][-1]


def test_predict_checkpoint_cache_update_and_painted_layer(
    make_napari_viewer, qtbot, notes, trained, monkeypatch
):
    viewer = make_napari_viewer()
    result, prefix = trained()
    loads = []

    def counting_load(path, *args, **kwargs):
        loads.append(path)
        return checkpoints.load_model(path, *args, **kwargs)

    monkeypatch.setattr(cache, "load_model", counting_load)
    image = add_image(viewer)
    widget = PredictWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.set_model(MODEL_CHECKPOINT, f"{prefix}_config.json")
    assert "32×32" in widget.model_label.text()

    layers, failed = run_prediction(qtbot, widget)
    assert failed is None and notes["error"] == []
    first = viewer.layers["ts prediction"]
    assert_prediction(first, image)
    assert first.metadata[STAMP_KEY]["model"] == "M"
    assert len(loads) == 1

    # again, in resize mode: the cached model, the same layer updated
    n_layers = len(viewer.layers)
    widget.set_mode("resize")
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None and len(loads) == 1
    assert layers == [first] and len(viewer.layers) == n_layers
    assert first.metadata[STAMP_KEY]["mode"] == "resize"
    assert_prediction(first, image)

    # painted on: the next prediction goes to a new layer
    edited = first.data.copy()
    edited[:4, :4] = 0 if edited[0, 0] else 1
    first.data = edited
    widget.set_mode("tile")
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None
    second = viewer.layers["ts prediction 2"]
    assert layers == [second]
    np.testing.assert_array_equal(first.data, edited)  # kept
    assert_prediction(second, image)

    # all open images (not the prediction's own layers)
    other = add_image(viewer, name="other", seed=2, shape=(40, 48))
    widget.all_images.setChecked(True)
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None and len(loads) == 1
    assert [ly.name for ly in layers] == [
        "ts prediction 2",
        "other prediction",
    ]
    assert_prediction(viewer.layers["other prediction"], other)


def test_stop_ends_prediction_within_a_batch(
    make_napari_viewer, qtbot, notes, trained, monkeypatch
):
    from napari_thinseg._napari.widgets.predict import job as predict_job

    def slow_predict_image(*args, **kwargs):
        job = predict_image_core(*args, **kwargs)
        first = next(job)
        yield first
        # a slow tile: Stop is clicked while it runs, whatever the load
        # of the machine, and the worker sees it at the next yield (else
        # the result could come first)
        time.sleep(2)
        yield first
        return (yield from job)

    monkeypatch.setattr(predict_job, "predict_image", slow_predict_image)
    viewer = make_napari_viewer()
    result, _ = trained()
    register(result)
    rng = np.random.default_rng(0)
    viewer.add_image(
        rng.integers(0, 256, (640, 640, 3), dtype=np.uint8), name="big"
    )
    widget = open_widget(viewer)
    widget.set_model(MODEL_TRAINED)
    ticks = []

    def stop_at_first(item):
        ticks.append(item)
        if len(ticks) == 1:
            widget.stop_button.click()

    layers, failed = run_prediction(qtbot, widget, stop_at_first)
    assert layers is None and "stopped" in failed
    assert "big prediction" not in viewer.layers
    # (640x640 was ~170 batches of 32x32 tiles; now the network is rebuilt
    # for one 640x640 tile, and Stop still comes before its result)
    assert len(ticks) < 20
    assert notes["error"] == [] and "stopped" in notes["warning"][-1]


def test_errors_are_notifications(
    make_napari_viewer, notes, tmp_path, no_default_model
):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    widget.set_model(MODEL_TRAINED)
    widget.predict_button.click()  # no image
    assert widget.worker is None
    assert "no image layer" in notes["error"][-1]

    add_image(viewer)
    widget.predict_button.click()  # nothing trained yet
    assert widget.worker is None
    assert "no model trained yet" in notes["error"][-1]
    assert "no model trained yet" in widget.model_label.text()

    widget.set_model(MODEL_DEFAULT)  # not installed
    assert "not installed" in widget.model_label.text()
    widget.predict_button.click()
    assert widget.worker is None
    assert "default model is not installed" in notes["error"][-1]

    widget.set_model(MODEL_CHECKPOINT, tmp_path / "missing_config.json")
    widget.predict_button.click()
    assert widget.worker is None
    assert "no such file" in notes["error"][-1]

    (tmp_path / "bad_config.json").write_text("{not json")
    widget.set_model(MODEL_CHECKPOINT, tmp_path / "bad_config.json")
    widget.predict_button.click()
    assert widget.worker is None
    assert "not a readable JSON config" in notes["error"][-1]

    viewer.add_image(np.zeros((3, 16, 16), np.uint8), name="stack")
    widget.image_combo.set_layer(viewer.layers["stack"])
    widget.set_model(MODEL_TRAINED)
    widget._set_status("predicted 'ts prediction' with M")  # an old run
    widget.predict_button.click()
    assert widget.worker is None
    assert "2D image" in notes["error"][-1]
    # the status says the refusal, not the previous run (issue 12)
    assert widget.status_label.text() == notes["error"][-1]
    # "all open images" skips stacks, with a warning
    viewer.layers.remove("ts")
    widget.all_images.setChecked(True)
    widget.predict_button.click()
    assert widget.worker is None
    assert "skipped: stack" in notes["warning"][-1]
    assert "no image layer" in notes["error"][-1]
    assert not [ly for ly in viewer.layers if isinstance(ly, Labels)]


def test_starts_on_the_shipped_default_model(make_napari_viewer):
    widget = open_widget(make_napari_viewer())
    assert widget.model_kind() == MODEL_DEFAULT
    assert "thinseg_default" in widget.model_label.text()


def test_unsafe_keras_file_is_a_notification(
    make_napari_viewer, qtbot, notes, tmp_path
):
    """A .keras model with a Lambda layer (code in the file) is refused
    before anything runs; the viewer stays usable."""
    from napari.utils import progress

    viewer = make_napari_viewer()  # GL first, then TensorFlow (see trained)
    _common.import_tensorflow()
    import keras

    x = keras.Input((32, 32, 3))
    y = keras.layers.Lambda(lambda t: t * 2.0)(x)
    keras.Model(x, keras.layers.Conv2D(6, 1)(y)).save(tmp_path / "m.keras")
    add_image(viewer)
    widget = open_widget(viewer)
    widget.set_model(MODEL_CHECKPOINT, tmp_path / "m.keras")
    assert "Lambda" in widget.model_label.text()
    widget.predict_button.click()
    assert widget.worker is None
    assert "holds a Lambda layer" in notes["error"][-1]
    assert "\n" not in notes["error"][-1]
    assert not list(progress._all_instances)
    assert [ly.name for ly in viewer.layers] == ["ts"]


def test_keras_file_predicts(make_napari_viewer, qtbot, trained, tmp_path):
    """A safe .keras VGG-UNet predicts like its checkpoint."""
    from napari.utils import progress

    viewer = make_napari_viewer()
    image = add_image(viewer)
    result, _ = trained()
    result.model.save(tmp_path / "m.keras")
    widget = open_widget(viewer)
    widget.set_model(MODEL_CHECKPOINT, tmp_path / "m.keras")
    assert "6 classes" in widget.model_label.text()
    assert "input 32×32" in widget.model_label.text()
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None
    assert layers[0].data.shape == image.data.shape[:2]
    # the same weights, and no thinseg config: class 0 is a class here
    config = keras_archive.read_keras_config(tmp_path / "m.keras")
    expected = run(predict_image_core(result.model, config, image.data))
    np.testing.assert_array_equal(layers[0].data, expected.labels)
    assert not list(progress._all_instances)


def test_odd_image_layers(make_napari_viewer, qtbot, notes, trained):
    """RGBA, 16-bit, float beyond [0, 1] and tiny layers predict at their
    own size; a 1x1 layer is refused by name before any work."""
    from napari.utils import progress

    viewer = make_napari_viewer()
    base, _ = synthetic_sandstone(SHAPE, seed=2)
    gray = base.mean(-1).astype(np.uint8)
    alpha = np.full(SHAPE, 255, np.uint8)
    viewer.add_image(np.dstack([base, alpha]), name="rgba", rgb=True)
    viewer.add_image(gray.astype(np.uint16) * 257, name="u16")
    viewer.add_image(gray.astype(np.float32) * 40.0, name="f32")
    viewer.add_image(base[:3, :3], name="3x3", rgb=True)
    result, _ = trained()
    register(result)
    widget = open_widget(viewer)
    widget.set_model(MODEL_TRAINED)
    widget.all_images.setChecked(True)
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None
    shapes = {ly.name.split(" ")[0]: ly.data.shape for ly in layers}
    assert shapes == {"rgba": SHAPE, "u16": SHAPE, "f32": SHAPE, "3x3": (3, 3)}
    # 16-bit and its 8-bit original agree
    u16 = viewer.layers["u16"].data
    p16 = run(predict_image_core(result.model, result.config, u16)).labels
    p8 = run(predict_image_core(result.model, result.config, gray)).labels
    np.testing.assert_array_equal(p16, p8)
    # float beyond [0, 1] is stretched, and the user is told
    assert any(
        m.startswith("f32: float image of values") for m in notes["info"]
    )
    # 12-bit data in 16 bits: as its 8-bit original, and said so
    viewer.add_image(gray.astype(np.uint16) * 16 + gray // 16, name="u12")
    widget.all_images.setChecked(False)
    widget.image_combo.set_layer(viewer.layers["u12"])
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None
    np.testing.assert_array_equal(layers[0].data, p8)
    assert (
        "u12: 12-bit data in a 16-bit image: 0..4095 scaled to 0..255"
        in (notes["info"])
    )

    viewer.add_image(base[:1, :1], name="dot", rgb=True)
    widget.all_images.setChecked(False)
    widget.image_combo.set_layer(viewer.layers["dot"])
    widget.predict_button.click()
    assert widget.worker is None
    assert notes["error"][-1].startswith("dot: image is 1x1 pixels")
    assert not list(progress._all_instances)


@pytest.mark.parametrize(
    "case, words",
    [
        ("wrong_type", ("M_config.json", "n_classes: 'six' is not of type")),
        ("truncated", ("M.", "unreadable weights file")),
        ("nan", ("M.", "NaN or infinite weights")),
        ("class_count", ("M.", "trained for 6 classes, the model has 4")),
    ],
)
def test_broken_checkpoints_are_notifications(
    make_napari_viewer, qtbot, notes, trained, tmp_path, case, words
):
    """A broken model file: one line naming it, the progress bar closed,
    no layer added, the widget ready for the next try."""
    import json
    import shutil

    from napari.utils import progress

    viewer = make_napari_viewer()
    add_image(viewer)
    result, prefix = trained()
    for f in prefix.parent.iterdir():
        shutil.copy(f, tmp_path / f.name)
    mine = tmp_path / prefix.name
    epoch = int(str(result.checkpoint).rsplit(".", 1)[1])
    weights = tmp_path / f"{prefix.name}.{epoch}"
    assert weights.is_file()
    config = json.loads(checkpoints.config_path(mine).read_text())
    if case == "wrong_type":
        config["n_classes"] = "six"
    elif case == "class_count":
        config["n_classes"] = 4
        config.pop("scheme", None)
    checkpoints.config_path(mine).write_text(json.dumps(config))
    if case == "truncated":
        weights.write_bytes(weights.read_bytes()[:5000])
    elif case == "nan":
        good = result.model.get_weights()
        broken = [w.copy() for w in good]
        broken[2][...] = np.nan
        result.model.set_weights(broken)
        try:
            checkpoints.save_checkpoint(mine, epoch, result.model)
        finally:
            result.model.set_weights(good)  # shared with other tests
    widget = open_widget(viewer)
    widget.set_model(MODEL_CHECKPOINT, checkpoints.config_path(mine))
    widget.predict_button.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    message = notes["error"][-1]
    assert all(w in message for w in words), message
    assert "\n" not in message
    assert not list(progress._all_instances)
    assert [ly.name for ly in viewer.layers] == ["ts"]
    assert widget.predict_button.isEnabled()


def test_precision_choice_reaches_the_job(
    make_napari_viewer, qtbot, notes, trained, monkeypatch
):
    from napari_thinseg._napari.widgets.predict import job as predict_job

    viewer = make_napari_viewer()
    result, _ = trained()
    register(result)
    image = add_image(viewer)
    widget = open_widget(viewer)
    widget.set_model(MODEL_TRAINED)
    asked = []

    def recording_predict(*args, **kwargs):
        asked.append(kwargs["precision"])
        return predict_image_core(*args, **kwargs)

    monkeypatch.setattr(predict_job, "predict_image", recording_predict)
    assert widget.precision.currentData() == "auto"
    widget.set_precision("float32")
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None and notes["error"] == []
    assert asked == ["float32"]
    expected = run(
        predict_image_core(
            result.model, result.config, image.data, precision="float32"
        )
    )
    np.testing.assert_array_equal(layers[0].data, expected.labels)


def test_tta_choice_reaches_the_prediction(
    make_napari_viewer, qtbot, notes, trained, monkeypatch
):
    """The test-time augmentation box is for tile mode only, and what it
    says goes to the prediction."""
    from napari_thinseg._napari.widgets.predict import job as job_module

    viewer = make_napari_viewer()
    result, _ = trained()
    add_image(viewer)
    widget = open_widget(viewer)
    register(result)
    widget.set_model(MODEL_TRAINED)
    widget.mode.setCurrentIndex(widget.mode.findData("resize"))
    assert not widget.tta.isEnabled()
    widget.mode.setCurrentIndex(widget.mode.findData("tile"))
    assert widget.tta.isEnabled()
    widget.tta.setChecked(True)
    asked = []
    real = job_module.predict_image

    def spy(*args, **kwargs):
        asked.append(kwargs.get("tta"))
        return real(*args, **kwargs)

    monkeypatch.setattr(job_module, "predict_image", spy)
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None and notes["error"] == []
    assert asked == [True]


def test_the_sandstone_model_can_be_chosen(
    sandstone_model, make_napari_viewer
):
    from napari_thinseg._napari.widgets.predict.dock import MODEL_SANDSTONE

    widget = open_widget(make_napari_viewer())
    widget.set_model(MODEL_SANDSTONE)
    assert widget.model_kind() == MODEL_SANDSTONE
    assert "thinseg_sandstone" in widget.model_label.text()
    source = widget.model_source()
    assert source.config.class_scheme.name == "sandstone"


def test_closing_the_dock_stops_the_prediction(
    make_napari_viewer, qtbot, notes, trained, monkeypatch
):
    from napari_thinseg._napari.widgets.predict import job as predict_job
    from napari_thinseg.progress import Progress

    def endless(*args, **kwargs):
        while True:  # a huge image: tiles without end
            time.sleep(0.005)
            yield Progress(1, 1_000_000, "tile")

    monkeypatch.setattr(predict_job, "predict_image", endless)
    viewer = make_napari_viewer()
    result, _ = trained()
    register(result)
    add_image(viewer, name="ts", seed=1)
    dock, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Predict"
    )
    widget.set_model(MODEL_TRAINED)
    widget.predict_button.click()
    qtbot.wait(200)
    assert widget.worker is not None
    viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert "Predict closed: the prediction stops" in notes["info"]
    assert "ts prediction" not in viewer.layers


def test_a_preview_lands_under_the_labels_being_painted(make_napari_viewer):
    """Issue 26: a new "<image> preview" layer went on top of the layer
    list, over the labels being painted; it goes just under them, and the
    labels stay the active layer."""
    from napari_thinseg._napari.layers import PREVIEW_KEY
    from napari_thinseg._napari.widgets.predict.model_output import (
        write_labels,
    )

    viewer = make_napari_viewer()
    image = viewer.add_image(np.zeros(SHAPE + (3,), np.uint8), name="a")
    painted = viewer.add_labels(np.zeros(SHAPE, np.uint8), name="a labels")
    viewer.add_points(name="notes")
    viewer.layers.selection.active = painted
    labels = np.ones(SHAPE, np.uint8)
    layer = write_labels(viewer, image, labels, SEED, "preview", PREVIEW_KEY)
    names = [ly.name for ly in viewer.layers]
    assert names == ["a", "a preview", "a labels", "notes"]
    assert viewer.layers.selection.active is painted
    # written again in place: where the user left it
    viewer.layers.move(names.index("a preview"), len(names))
    again = write_labels(viewer, image, labels, SEED, "preview", PREVIEW_KEY)
    assert again is layer and viewer.layers[-1] is layer
    # a prediction still goes on top (it is what one corrects next)
    predicted = write_labels(viewer, image, labels, SEED, "prediction", "k")
    assert viewer.layers[-1] is predicted
