"""The "Train" widget on a real napari viewer (tiny, CPU-sized runs)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from napari_thinseg._napari.layers import PREVIEW_KEY, labels_kwargs
from napari_thinseg._napari.widgets import _common
from napari_thinseg._napari.widgets.train import dock as train_module
from napari_thinseg._napari.widgets.train.dock import (
    IF_EXISTS_RESUME,
    START_CHECKPOINT,
    START_DEFAULT,
    START_NEW,
    VAL_HOLD_OUT,
    VAL_NONE,
    TrainWidget,
)
from napari_thinseg.dataset.folders import Pair, hold_out
from napari_thinseg.dataset.synth import synthetic_sandstone, to_seed_labels
from napari_thinseg.errors import ThinsegError
from napari_thinseg.model import cache
from napari_thinseg.progress import TimeLeft
from napari_thinseg.schemes import SANDSTONE, SEED
from napari_thinseg.training.loop import TrainResult

SHAPE = (64, 80)
TIMEOUT_MS = 60_000

# each test starts and ends with an empty model registry
pytestmark = pytest.mark.usefixtures("no_trained_models")


def add_pair(viewer, name: str, seed: int):
    image, labels = synthetic_sandstone(SHAPE, seed=seed)
    im = viewer.add_image(image, name=name, rgb=True)
    lb = viewer.add_labels(
        to_seed_labels(labels), name=f"{name} labels", **labels_kwargs(SEED)
    )
    return im, lb


def open_widget(viewer) -> TrainWidget:
    _, widget = viewer.window.add_plugin_dock_widget("napari-thinseg", "Train")
    assert isinstance(widget, TrainWidget)
    return widget


def make_tiny(
    widget, folder=None, name="P", epochs=1, steps=2, start=START_NEW
):
    """Tiny sizes, no preview; a new model unless ``start`` says (None:
    as the form has it)."""
    if start is not None:  # the default follows the labels' scheme
        widget.form.set_start(start)
    widget.form.preview.setChecked(False)  # tested on its own
    widget.form.input_height.setValue(32)
    widget.form.input_width.setValue(32)
    widget.form.epochs.setValue(epochs)
    widget.form.batch_size.setValue(2)
    widget.form.steps_per_epoch.setValue(steps)
    widget.form.folder.setText("" if folder is None else str(folder))
    widget.form.name.setText(name)


def run_training(qtbot, widget, on_event=None, on_start=None):
    """Click Start and wait for the worker; returns (result, failure)."""
    got = {}
    widget.trained.connect(lambda r: got.setdefault("result", r))
    widget.failed.connect(lambda m: got.setdefault("failed", m))
    if on_event is not None:
        widget.progressed.connect(on_event)
    widget.start_button.click()
    assert widget.worker is not None  # it runs in a thread_worker
    assert not widget.start_button.isEnabled()
    assert widget.stop_button.isEnabled()
    if on_start is not None:
        on_start()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert widget.start_button.isEnabled()
    assert not widget.stop_button.isEnabled()
    return got.get("result"), got.get("failed")


def test_widgets_do_not_import_tensorflow():
    code = (
        "import sys\n"
        "import napari_thinseg._napari.widgets.train.dock\n"
        "import napari_thinseg._napari.widgets.predict.dock\n"
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_train_from_manifest_then_resume_and_stop(
    make_napari_viewer, qtbot, notes, tmp_path, monkeypatch
):
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 1)
    add_pair(viewer, "b", 2)
    widget = open_widget(viewer)
    assert [
        (im.name, ok, lb.name)
        for im, ok, lb, _ in widget.form.pairs_table.rows()
    ] == [
        ("a", True, "a labels"),
        ("b", True, "b labels"),
    ]
    assert "seed" in widget.form.scheme_label.text()
    make_tiny(widget, tmp_path, steps=3)
    widget.form.set_validation(VAL_HOLD_OUT)

    # a clock that gains 10 s a reading: batches "take" 10 s each
    ticks = iter(range(0, 10_000, 10))
    monkeypatch.setattr(
        train_module,
        "TimeLeft",
        lambda: TimeLeft(clock=lambda: float(next(ticks))),
    )
    seen = []
    result, failed = run_training(
        qtbot,
        widget,
        lambda ev: seen.append((ev.step, widget.status_label.text())),
    )
    assert failed is None and notes["error"] == []
    assert result is widget.last_result and not result.stopped
    statuses = dict(seen)  # the status each batch left (the last one's)
    assert sorted(statuses) == [1, 2, 3], seen
    # from the second batch on, the status says how long is left
    assert "left)" not in statuses[1], seen
    assert statuses[2].endswith("(about 10 s left)"), seen
    assert "left)" not in seen[-1][1]  # done
    assert (tmp_path / "P_config.json").is_file()
    assert (tmp_path / "P.0").is_file()
    assert result.checkpoint == str(tmp_path / "P.0")
    assert result.config.input_height == result.config.input_width == 32
    # live plots: one loss point per batch, one IoU point per epoch
    assert [s for s, _ in widget.plots.loss_points()] == [1, 2, 3]
    assert len(widget.plots.loss_line.get_xdata()) == 3
    assert len(widget.plots.epoch_loss_line.get_xdata()) == 1
    assert list(widget.plots.iou_line.get_xdata()) == [1]
    # per-class IoU of the held-out pair, class names from the scheme
    rows = widget.plots.iou_rows()
    assert [r[1] for r in rows[:-1]] == SEED.names
    assert [r[0] for r in rows[:-1]] == [str(i) for i in SEED.ids]
    assert rows[-1][1].startswith("mean")
    assert float(rows[-1][2]) >= 0.0
    # kept in memory for the Predict widget
    latest = cache.trained_models.latest()
    assert latest.model is result.model and latest.config is result.config
    assert latest.name == "P (epoch 1)"
    assert any("training done" in m for m in notes["info"])

    # fine-tune that checkpoint, resuming its prefix; Stop ends the run
    # within a batch and saves no unfinished epoch
    widget.form.set_start(START_CHECKPOINT, tmp_path / "P_config.json")
    # the start model's crop size unless the user edits it (as the CLI)
    assert widget.form.input_height.isEnabled()
    assert widget.form.settings().input_height == 32
    assert "32×32" in widget.form.model_label.text()
    widget.form.set_if_exists(IF_EXISTS_RESUME)
    widget.form.set_validation(VAL_NONE)
    make_tiny(widget, tmp_path, epochs=3, steps=100_000, start=None)
    p0 = (tmp_path / "P.0").read_bytes()

    def stop_at_first_batch(event):
        if len(widget.history) == 1:
            widget.stop_button.click()
            assert not widget.stop_button.isEnabled()
            assert "stopping" in widget.status_label.text()

    result2, failed = run_training(qtbot, widget, stop_at_first_batch)
    assert failed is None and notes["error"] == []
    assert result2.stopped and result2.history == []
    assert result2.checkpoint is None
    # resumed after epoch 0; at most a few queued batches after the Stop
    assert 1 <= len(widget.history) <= 5
    assert all(e.epoch == 1 and not e.epoch_end for e in widget.history)
    assert widget.plots.iou_rows() == []  # no validation this time
    assert sorted(p.name for p in tmp_path.glob("P.*")) == ["P.0"]
    assert (tmp_path / "P.0").read_bytes() == p0
    assert any("stopped" in m for m in notes["info"])
    # stopped before its first epoch: the model trained before stays
    # "model just trained" (issue 12), not the barely trained network
    assert cache.trained_models.latest().model is result.model
    assert len(cache.trained_models) == 1


def test_errors_are_notifications(
    make_napari_viewer, qtbot, notes, tmp_path, no_default_model
):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    widget.start_button.click()  # no layers at all
    assert widget.worker is None
    assert "nothing to train on" in notes["error"][-1]

    add_pair(viewer, "a", 4)
    viewer.add_image(  # what the Predict widget writes: not training data
        np.ones(SHAPE, np.float32),
        name="a confidence",
        metadata={_common.CONFIDENCE_KEY: True},
    )
    assert [im.name for im, *_ in widget.form.pairs_table.rows()] == ["a"]
    make_tiny(widget, tmp_path)
    widget.form.pairs_table.set_row("a", checked=False)
    widget.start_button.click()
    assert widget.worker is None
    assert "nothing to train on" in notes["error"][-1]
    widget.form.pairs_table.set_row("a", checked=True)

    widget.form.set_start(START_DEFAULT)  # not installed
    assert "not installed" in widget.form.model_label.text()
    widget.start_button.click()
    assert widget.worker is None
    assert "default model" in notes["error"][-1]

    widget.form.set_start(START_CHECKPOINT, tmp_path / "nope_config.json")
    widget.start_button.click()
    assert widget.worker is None
    assert "no such" in notes["error"][-1]

    widget.form.set_start("new")
    widget.form.set_validation(VAL_HOLD_OUT)  # one pair cannot be split
    widget.start_button.click()
    assert widget.worker is None
    assert "at least two" in notes["error"][-1]
    widget.form.set_validation(VAL_NONE)

    widget.form.name.setText("a/b")
    widget.start_button.click()
    assert widget.worker is None
    assert "prefix" in notes["error"][-1]

    # existing checkpoints are refused unless resumed or overwritten
    (tmp_path / "P_config.json").write_text("{}")
    widget.form.name.setText("P")
    widget.start_button.click()
    assert widget.worker is None
    assert "already exist" in notes["error"][-1]
    assert len(cache.trained_models) == 0
    assert viewer.layers["a"] is not None  # the viewer is still usable


@pytest.mark.parametrize("kind", ["memory", "tensorflow"])
def test_out_of_memory_says_what_to_lower(
    make_napari_viewer, qtbot, notes, monkeypatch, kind
):
    class ResourceExhaustedError(RuntimeError):
        """Named like TensorFlow's."""

    def exhausted(*args, **kwargs):
        if kind == "memory":
            raise MemoryError
        raise ResourceExhaustedError("OOM when allocating tensor")
        yield  # a generator, as the core's train()

    monkeypatch.setattr(train_module, "train", exhausted)
    monkeypatch.setattr(train_module, "import_tensorflow", lambda: None)
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 5)
    widget = open_widget(viewer)
    make_tiny(widget)
    result, failed = run_training(qtbot, widget)
    assert result is None
    assert "lower the batch size or the input size" in failed
    assert notes["error"] == [failed]


def test_stop_before_the_first_batch_keeps_no_model(
    make_napari_viewer, qtbot, notes, monkeypatch
):
    def waiting_train(*args, stop, **kwargs):
        while not stop():  # e.g. TensorFlow still loading
            time.sleep(0.005)
        return TrainResult(object(), None, stopped=True)
        yield  # a generator, as the core's train()

    monkeypatch.setattr(train_module, "train", waiting_train)
    monkeypatch.setattr(train_module, "import_tensorflow", lambda: None)
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 6)
    widget = open_widget(viewer)
    make_tiny(widget)
    result, failed = run_training(
        qtbot, widget, on_start=widget.stop_button.click
    )
    assert failed is None and result.stopped
    assert len(cache.trained_models) == 0
    assert "before the first batch" in notes["info"][-1]
    assert widget.progress_bar.value() == widget.progress_bar.maximum()


def test_hold_out_is_seeded_and_keeps_both_sides():
    pairs = [Pair(str(i), None, None) for i in range(5)]
    train, val = hold_out(pairs, 0.4, seed=0)
    assert len(train) == 3 and len(val) == 2
    assert hold_out(pairs, 0.4, seed=0) == (train, val)
    assert {p.name for p in train + val} == {p.name for p in pairs}
    train, val = hold_out(pairs[:2], 0.9, seed=1)
    assert len(train) == len(val) == 1
    with pytest.raises(ThinsegError, match="at least two"):
        hold_out(pairs[:1], 0.5, seed=0)


def test_unlabelled_layers_are_refused(
    make_napari_viewer, qtbot, notes, tmp_path
):
    """All-zero labels: nothing to learn, said in one line; no checkpoint."""
    from napari.utils import progress

    viewer = make_napari_viewer()
    _, labels = add_pair(viewer, "a", 6)
    labels.data = np.zeros_like(labels.data)
    widget = open_widget(viewer)
    make_tiny(widget, tmp_path)
    result, failed = run_training(qtbot, widget)
    assert result is None
    assert "nothing to learn" in failed and "\n" not in failed
    assert notes["error"] == [failed]
    assert not list(tmp_path.iterdir())
    assert not list(progress._all_instances)


@pytest.mark.parametrize(
    "case, words",
    [
        ("too_large", ("'a labels'", "label 9 >= n_classes 6")),
        ("negative", ("'a labels'", "negative label -1")),
    ],
)
def test_bad_label_values_are_refused(
    make_napari_viewer, qtbot, notes, tmp_path, case, words
):
    """Label values the scheme cannot hold: one line naming the layer,
    nothing written, the layer untouched."""
    from napari.utils import progress

    viewer = make_napari_viewer()
    _, labels = add_pair(viewer, "a", 7)
    data = labels.data.astype(np.int32)
    data[5:9, 5:9] = 9 if case == "too_large" else -1
    labels.data = data
    widget = open_widget(viewer)
    make_tiny(widget, tmp_path)
    widget.start_button.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    message = notes["error"][-1]
    assert all(w in message for w in words), message
    assert "\n" not in message
    assert not list(tmp_path.iterdir())
    assert not list(progress._all_instances)
    np.testing.assert_array_equal(viewer.layers["a labels"].data, data)


def test_precision_and_averaging_choices_reach_training(
    make_napari_viewer, qtbot, notes
):
    from napari_thinseg.model.vgg_unet import compute_dtype
    from napari_thinseg.training.recipe import AVERAGE_MOMENTUM

    viewer = make_napari_viewer()
    add_pair(viewer, "a", 1)
    widget = open_widget(viewer)
    make_tiny(widget)
    assert widget.form.precision.currentData() == "auto"
    assert widget.form.settings().average_weights == 0.0
    widget.form.set_precision("float32")
    widget.form.average.setChecked(True)
    assert widget.form.plan().settings.precision == "float32"
    result, failed = run_training(qtbot, widget)
    assert failed is None and notes["error"] == []
    assert compute_dtype(result.model) == "float32"
    assert result.config.trained_on["precision"] == "float32"
    assert result.config.trained_on["average_weights"] == AVERAGE_MOMENTUM


def test_start_from_the_sandstone_model(sandstone_model, make_napari_viewer):
    from napari_thinseg._napari.widgets.train.choices import START_SANDSTONE

    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-thinseg", "Train")
    widget.form.set_start(START_SANDSTONE)
    assert "11 classes ('sandstone')" in widget.form.model_label.text()
    assert widget.form.start_prefix().name == "thinseg_sandstone"


def test_time_budget_fits_the_settings_and_shows_the_estimate(
    make_napari_viewer, monkeypatch
):
    """ "Train for 5 minutes": Fit puts the proposed sizes into the form
    (the recipe's proposal for the ticked images), the estimate is shown
    before Start, and the budget goes into the settings."""
    from napari_thinseg._napari.widgets.train import budget as train_budget
    from napari_thinseg.training.recipe import propose

    monkeypatch.setattr(train_budget, "sgemm_gflops", lambda: 100.0)
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0)
    widget = open_widget(viewer)
    form = widget.form
    form.set_start(START_NEW)  # a start model would fix the crop size
    form.set_precision("float32")
    assert "on this machine" in form.budget.estimate.text()
    form.budget.minutes.setValue(5)
    proposal = form.budget.fit()
    shape = viewer.layers["a"].data.shape[:2]
    assert proposal == propose([shape], 5, "float32", 100.0)
    assert form.input_height.value() == proposal.input_height
    assert form.batch_size.value() == proposal.batch_size
    assert form.steps_per_epoch.value() == proposal.steps_per_epoch
    assert form.epochs.value() == proposal.epochs
    assert form.settings().minutes == 5
    assert form.budget.seconds() == pytest.approx(proposal.seconds)
    form.epochs.setValue(proposal.epochs * 10)
    assert "stops at 5 min" in form.budget.estimate.text()
    form.budget.minutes.setValue(0)
    assert form.settings().minutes is None


def test_frozen_encoder_blocks(sandstone_model, make_napari_viewer):
    """The box keeps the start model's first blocks; a new model has none
    to keep (disabled, 0); the estimate counts the shorter steps."""
    from napari_thinseg._napari.widgets.train.choices import (
        START_NEW,
        START_SANDSTONE,
    )

    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0)
    form = open_widget(viewer).form
    form.set_start(START_SANDSTONE)
    assert form.frozen_blocks.isEnabled()
    form.budget.minutes.setValue(0)  # a budget would fit the sizes again
    before = form.budget.seconds()
    form.frozen_blocks.setValue(4)
    assert form.settings().frozen_blocks == 4
    assert form.budget.seconds() < 0.6 * before
    form.set_start(START_NEW)
    assert not form.frozen_blocks.isEnabled()
    assert form.settings().frozen_blocks == 0


def test_quick_preview_comes_first_and_names_its_model(
    sandstone_model, make_napari_viewer, qtbot, notes
):
    """Strokes on a new model: the sandstone model's encoder features and a
    forest predict "<image> preview" layers before training starts."""
    pytest.importorskip("sklearn", reason="the preview needs scikit-learn")
    viewer = make_napari_viewer()
    for name, seed in (("a", 1), ("b", 2)):
        image, labels = synthetic_sandstone((96, 128), seed=seed)
        viewer.add_image(image, name=name, rgb=True)
        strokes = np.zeros_like(labels)
        strokes[::4, ::4] = labels[::4, ::4]  # about 6 % of the pixels
        viewer.add_labels(
            strokes, name=f"{name} labels", **labels_kwargs(SANDSTONE)
        )
    widget = open_widget(viewer)
    make_tiny(widget)
    widget.form.preview.setChecked(True)
    widget.form.set_validation(VAL_HOLD_OUT)
    order = []
    widget.previewed.connect(lambda p: order.append(("preview", p)))
    result, failed = run_training(
        qtbot, widget, lambda e: order.append(("batch", e))
    )
    assert failed is None and result is not None
    assert order[0][0] == "preview" and order[1][0] == "batch"
    preview = order[0][1]
    # the training image, then the held-out one
    assert sorted(preview.names) == ["a", "b"]
    assert [ly.name for ly in widget.preview_layers] == [
        f"{n} preview" for n in preview.names
    ]
    truth = {
        n: synthetic_sandstone((96, 128), seed=s)[1]
        for n, s in (("a", 1), ("b", 2))
    }
    for layer, name in zip(widget.preview_layers, preview.names, strict=True):
        assert layer.data.shape == truth[name].shape
        # measured 0.79 (trained) and 0.74 (held out) on these sections
        assert (layer.data == truth[name]).mean() > 0.55, name
        stamp = layer.metadata[PREVIEW_KEY]
        assert "encoder classifier" in stamp["model"]
        assert "'sandstone' VGG-UNet" in stamp["model"]
    # the status and a notification said which model it came from
    said = [m for m in notes["info"] if "preview of 2 image(s)" in m]
    assert said and "'sandstone' VGG-UNet" in said[0]
    # a preview is not taken for labels by the pair tables
    viewer.layers.remove("b labels")
    rows = {
        im.name: (ok, lb) for im, ok, lb, _ in widget.form.pairs_table.rows()
    }
    assert rows["b"] == (False, None)


def test_a_preview_that_cannot_be_made_does_not_stop_training(
    sandstone_model, make_napari_viewer, qtbot, notes
):
    pytest.importorskip("sklearn", reason="the preview needs scikit-learn")
    viewer = make_napari_viewer()
    image, labels = synthetic_sandstone(SHAPE, seed=3)
    viewer.add_image(image, name="a", rgb=True)
    one = np.where(labels == labels.max(), labels, 0)  # one class only
    viewer.add_labels(one, name="a labels", **labels_kwargs(SANDSTONE))
    widget = open_widget(viewer)
    make_tiny(widget)
    widget.form.preview.setChecked(True)
    result, failed = run_training(qtbot, widget)
    assert failed is None and result is not None
    assert any(
        m.startswith("no preview:") and "one class" in m
        for m in notes["warning"]
    )
    assert "a preview" not in viewer.layers


def test_closing_the_dock_stops_training(
    make_napari_viewer, qtbot, notes, monkeypatch
):
    """Issue 12: checkpoints kept appearing 40 s after the dock was
    closed (napari takes the widget out of its dock; nothing else)."""

    def waiting_train(*args, stop, **kwargs):
        while not stop():
            time.sleep(0.005)
        return TrainResult(object(), None, stopped=True)
        yield  # a generator, as the core's train()

    monkeypatch.setattr(train_module, "train", waiting_train)
    monkeypatch.setattr(train_module, "import_tensorflow", lambda: None)
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 6)
    dock, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Train"
    )
    make_tiny(widget)
    got = []
    widget.trained.connect(got.append)
    widget.start_button.click()
    assert widget.worker is not None
    qtbot.wait(200)  # running, waiting for stop
    assert widget.worker is not None
    viewer.window.remove_dock_widget(dock)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert got and got[0].stopped
    assert any(m.startswith("Train closed") for m in notes["info"])


def test_a_stop_before_the_first_epoch_keeps_the_model_trained_before(
    make_napari_viewer, qtbot, notes, monkeypatch
):
    """Issue 12: stopping in the first epoch replaced "model just trained"
    with a barely trained network, and said "no finished epoch
    finished"."""
    from napari_thinseg.training.loop import TrainEvent

    def one_batch_then_stop(*args, stop, **kwargs):
        yield TrainEvent(1, 10, "epoch 1/1", batch=1, loss=1.0)
        while not stop():
            time.sleep(0.005)
        return TrainResult(object(), None, stopped=True)

    monkeypatch.setattr(train_module, "train", one_batch_then_stop)
    monkeypatch.setattr(train_module, "import_tensorflow", lambda: None)
    from napari_thinseg.model.config import ModelConfig

    before = cache.TrainedModel(
        object(), ModelConfig(6, 32, 32), "earlier (epoch 3)", None
    )
    cache.trained_models.add(before)
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 6)
    widget = open_widget(viewer)
    make_tiny(widget)
    result, failed = run_training(
        qtbot,
        widget,
        lambda event: widget.stop_button.click(),
    )
    assert failed is None and result.stopped
    assert cache.trained_models.latest() is before
    message = notes["info"][-1]
    assert message == (
        "training stopped before the first epoch finished: no model kept"
    )
    assert "finished finished" not in widget.status_label.text()
