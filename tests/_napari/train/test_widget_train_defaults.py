"""The Train tab's defaults (issue 24): a 2-minute budget, sizes that fit
it, training from the model the labels were corrected from, the
fine-tune recipe for strokes on a model; time left counts down to the
budget; the status line ends on the result and its held-out verdict."""

from __future__ import annotations

import time

import numpy as np
import pytest
from test_widget_train import add_pair, make_tiny, open_widget, run_training

from napari_thinseg._napari.layers import PREDICTION_KEY, labels_kwargs
from napari_thinseg._napari.widgets.train import dock as train_module
from napari_thinseg._napari.widgets.train.choices import (
    IF_EXISTS_RESUME,
    START_CHECKPOINT,
    START_DEFAULT,
    START_NEW,
    START_SANDSTONE,
)
from napari_thinseg.dataset.synth import synthetic_sandstone, to_seed_labels
from napari_thinseg.model import cache
from napari_thinseg.model.checkpoints import read_config
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.progress import TimeLeft
from napari_thinseg.schemes import SANDSTONE, SEED
from napari_thinseg.strokes.finetune import (
    DEFAULT_MINUTES,
    RECIPE,
    FinetuneResult,
)
from napari_thinseg.training.loop import TrainEvent, TrainResult

pytestmark = pytest.mark.usefixtures("no_trained_models")

TIMEOUT_MS = 240_000
#: a real config for the stand-in results (other docks open in the
#: session describe every model registered)
SEED_CONFIG = ModelConfig(SEED.n_classes, 64, 64, scheme=SEED.to_dict())


def add_strokes(viewer, name, seed, scheme=SEED, shape=(64, 80)):
    """An image and a labels layer of one pixel strokes every 8 px (about
    1.5 % painted: strokes, not a dense annotation)."""
    image, truth = synthetic_sandstone(shape, seed=seed)
    if scheme is SEED:
        truth = to_seed_labels(truth)
    strokes = np.zeros_like(truth)
    strokes[4::8, 4::8] = truth[4::8, 4::8]
    viewer.add_image(image, name=name, rgb=True)
    viewer.add_labels(strokes, name=f"{name} labels", **labels_kwargs(scheme))
    return truth


def add_prediction(viewer, name, shape=(64, 80), **stamp):
    """What the Predict widget writes: ``"<image> prediction"`` stamped
    with the model that predicted it."""
    data = np.ones(shape, np.uint8)
    kwargs = labels_kwargs(SANDSTONE)
    kwargs["metadata"] = {**kwargs["metadata"], PREDICTION_KEY: stamp}
    return viewer.add_labels(data, name=f"{name} prediction", **kwargs)


def start_of(form):
    return form.start_kind(), form.start_path.text()


def test_defaults_follow_the_labels_and_the_budget(
    make_napari_viewer, sandstone_model, default_model
):
    viewer = make_napari_viewer()
    form = open_widget(viewer).form
    # a 2-minute budget, on; a new model while nothing is ticked
    assert form.budget.minutes.value() == DEFAULT_MINUTES
    assert form.settings().minutes == DEFAULT_MINUTES
    assert start_of(form) == (START_NEW, "")
    assert "once images are ticked" in form.budget.estimate.text()
    assert not form.run_label.isVisible()

    # seed strokes: the shipped model of the seed scheme, fine-tuned
    add_strokes(viewer, "a", 1)
    # (a row listed before its labels layer came stays unticked)
    form.pairs_table.set_row("a", checked=True)
    assert start_of(form) == (START_DEFAULT, "")
    assert "fine-tune" in form.run_label.text()
    assert form.optimizer.currentText() == RECIPE.optimizer
    assert form.learning_rate.value() == pytest.approx(RECIPE.learning_rate)
    assert form.augment.isChecked() == RECIPE.augment
    # sizes: what Fit proposes for the 2 minutes (not the start's size)
    proposal = form.budget.proposal()
    assert form.input_height.isEnabled()
    assert form.input_height.value() == proposal.input_height == 64
    assert form.epochs.value() == proposal.epochs
    assert form.steps_per_epoch.value() == proposal.steps_per_epoch
    assert "min on this machine" in form.budget.estimate.text()
    assert "stops at" not in form.budget.estimate.text()
    # nothing edited: a fine-tune takes the sizes shown, the rest from
    # the core
    sizes = {
        "input_height": 64,
        "input_width": 64,
        "batch_size": proposal.batch_size,
        "steps_per_epoch": proposal.steps_per_epoch,
        "epochs": proposal.epochs,
    }
    assert form.plan().given == sizes

    # corrected from the sandstone model's prediction: that model
    add_prediction(viewer, "a", model="thinseg_sandstone")
    assert start_of(form) == (START_SANDSTONE, "")
    # a stamped checkpoint prefix, or a model trained in this session
    # with a checkpoint, is started from as a checkpoint
    add_prediction(viewer, "a", model="x", prefix=str(sandstone_model))
    assert start_of(form) == (START_CHECKPOINT, str(sandstone_model))
    for layer in [ly for ly in viewer.layers if "prediction" in ly.name]:
        viewer.layers.remove(layer)
    assert start_of(form) == (START_DEFAULT, "")  # the scheme's again
    cache.trained_models.add(
        cache.TrainedModel(
            object(),
            read_config(sandstone_model),
            "P (epoch 3)",
            f"{sandstone_model}.12",
        )
    )
    add_prediction(viewer, "a", model="P (epoch 3)")
    assert start_of(form) == (START_CHECKPOINT, str(sandstone_model))

    # edited values are the user's: kept, and handed to the fine-tune
    form.epochs.setValue(proposal.epochs + 3)
    form.optimizer.setCurrentText("adadelta")
    form.budget.minutes.setValue(3)
    assert form.epochs.value() == proposal.epochs + 3
    given = form.plan().given
    assert given["epochs"] == proposal.epochs + 3
    assert given["optimizer"] == "adadelta"
    assert "learning_rate" not in given and "augment" not in given
    # Fit puts the proposal back over the user's sizes
    form.budget.fit_button.click()
    assert form.epochs.value() == form.budget.proposal().epochs
    # without a budget, only the edited values
    form.budget.minutes.setValue(0)
    assert form.plan().given == {"optimizer": "adadelta"}
    # a choice of start is the user's too
    form.set_start(START_NEW)
    add_prediction(viewer, "a", model="thinseg_sandstone")
    assert start_of(form) == (START_NEW, "")
    assert not form.run_label.isVisible()  # a new model is no fine-tune


def test_dense_labels_train_as_they_are(make_napari_viewer, default_model):
    """Dense labels on the seed scheme: the default model, trained with
    training's defaults at its own crop size."""
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 1)
    form = open_widget(viewer).form
    assert start_of(form) == (START_DEFAULT, "")
    assert not form.run_label.isVisible()
    assert form.optimizer.currentText() == "adadelta"
    assert form.learning_rate.value() == 0  # the optimizer's default
    # crop_size's rule: the start model's size, unless edited
    _, config = default_model
    assert form.settings().input_height == config.input_height
    assert form.settings().input_width == config.input_width
    form.input_height.setValue(config.input_height - 32)
    form._refresh()
    assert form.settings().input_height == config.input_height - 32
    assert form.settings().input_width == config.input_width
    assert form.settings().minutes == DEFAULT_MINUTES


def test_no_shipped_model_starts_a_new_one(
    make_napari_viewer, no_default_model
):
    viewer = make_napari_viewer()
    add_strokes(viewer, "a", 1)
    form = open_widget(viewer).form
    assert start_of(form) == (START_NEW, "")


def fake_training(events, result):
    """A stand-in for the core's train(): yields ``events``, returns
    ``result``."""

    def fake(*args, **kwargs):
        yield from events
        return result

    return fake


def test_time_left_never_exceeds_the_budget_left(
    make_napari_viewer, qtbot, notes, monkeypatch
):
    """Issue 24: 'about 10 min left' at 25 s of a 2-minute budget."""
    total = 6
    budget = [90.0, 50.0, 45.0, 30.0, 3.0, 0.0]
    events = [
        TrainEvent(
            k + 1,
            total,
            "epoch 1/1",
            batch=k + 1,
            loss=1.0,
            budget_left=budget[k],
        )
        for k in range(total)
    ]
    result = TrainResult(object(), SEED_CONFIG, [{"epoch": 0, "loss": 1.0}])
    monkeypatch.setattr(train_module, "train", fake_training(events, result))
    monkeypatch.setattr(train_module, "import_tensorflow", lambda: None)
    # batches "take" 100 s each: the rate says minutes, the budget less
    ticks = iter(range(0, 10_000, 100))
    monkeypatch.setattr(
        train_module,
        "TimeLeft",
        lambda: TimeLeft(clock=lambda: float(next(ticks))),
    )
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 1)
    widget = open_widget(viewer)
    make_tiny(widget)
    seen = []
    _, failed = run_training(
        qtbot, widget, lambda ev: seen.append(widget.status_label.text())
    )
    assert failed is None
    assert "left)" not in seen[0]  # no rate yet
    assert seen[1].endswith("(about 50 s left)"), seen
    assert seen[2].endswith("(about 45 s left)"), seen
    assert seen[4].endswith("(about 3 s left)"), seen
    assert "left)" not in seen[5]


def test_a_late_batch_event_does_not_overwrite_the_result(
    make_napari_viewer, qtbot, notes, monkeypatch
):
    """Issue 24: the status kept 'epoch 1/1, batch 30 ... (about 4 s
    left)' after the run. napari's activity bar processes events while
    a batch is shown, so the result can be handled inside the last
    batch's handler; and an event can arrive after it."""
    from qtpy.QtWidgets import QApplication

    events = [
        TrainEvent(k, 3, "epoch 1/1", batch=k, loss=1.0) for k in (1, 2, 3)
    ]
    result = TrainResult(object(), SEED_CONFIG, [{"epoch": 0, "loss": 1.0}])
    monkeypatch.setattr(train_module, "train", fake_training(events, result))
    monkeypatch.setattr(train_module, "import_tensorflow", lambda: None)
    widget = None

    def nested_sync(pbar, step, total, desc=""):
        # what napari's bar does: processEvents, here until the result
        deadline = time.monotonic() + 10
        while step == total and not widget._returned:
            QApplication.processEvents()
            time.sleep(0.005)
            assert time.monotonic() < deadline

    monkeypatch.setattr(train_module, "sync_progress", nested_sync)
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 1)
    widget = open_widget(viewer)
    make_tiny(widget)
    got, failed = run_training(qtbot, widget)
    assert failed is None and got is result
    done = "training done (epoch 1)"
    assert widget.status_label.text() == done
    widget._on_yielded(TrainEvent(3, 3, "epoch 1/1", batch=3, loss=2.0))
    assert widget.status_label.text() == done
    assert notes["info"][-1] == done


def test_a_fit_run_on_strokes_ends_with_a_model_and_its_verdict(
    make_napari_viewer, qtbot, notes, tmp_path, default_model
):
    """In a real viewer: strokes on the default model's prediction, the
    Train tab's defaults but a budget of 6 s (0.1 min, through the
    form): the real worker runs the real fine-tune, which ends with a
    model and the held-out verdict on the status line."""
    viewer = make_napari_viewer()
    add_strokes(viewer, "a", 3, shape=(96, 128))
    add_prediction(viewer, "a", (96, 128), model="thinseg_default")
    widget = open_widget(viewer)
    form = widget.form
    assert start_of(form) == (START_DEFAULT, "")
    assert "fine-tune" in form.run_label.text()
    form.preview.setChecked(False)  # tested on its own
    form.folder.setText(str(tmp_path))
    form.budget.minutes.setValue(0.1)
    given = form.plan().given
    assert set(given) == {
        "input_height",
        "input_width",
        "batch_size",
        "steps_per_epoch",
        "epochs",
    }
    statuses = []
    widget.progressed.connect(
        lambda ev: statuses.append(widget.status_label.text())
    )
    got = {}
    widget.trained.connect(lambda r: got.setdefault("result", r))
    widget.failed.connect(lambda m: got.setdefault("failed", m))
    widget.start_button.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    assert "failed" not in got and notes["error"] == []
    result = got["result"]
    assert isinstance(result, FinetuneResult)
    assert result.model is not None and result.verdict is not None
    assert result.training.history  # an epoch, cut short or not
    text = widget.status_label.text()
    assert text.startswith("training done (epoch ")
    assert result.verdict.describe() in text
    assert "held-out strokes:" in text and "agree; kept the" in text
    assert f"last checkpoint {result.checkpoint}" in text
    assert notes["info"][-1] == text
    assert (tmp_path / "thinseg_config.json").is_file()
    assert cache.trained_models.latest().model is result.model
    # the recipe's optimizer ran, at the sizes the form showed
    trained_on = result.config.trained_on
    assert trained_on["steps_per_epoch"] == given["steps_per_epoch"]
    assert trained_on["batch_size"] == given["batch_size"]
    assert trained_on["optimizer"] == RECIPE.optimizer
    assert trained_on["distill"] == RECIPE.distill
    assert "held_out" in trained_on
    assert widget.progress_bar.value() == widget.progress_bar.maximum()
    # time left never said more than the 6 s budget
    assert not any("min left" in s for s in statuses), statuses
    # a fine-tune does not resume: said before anything starts
    form.set_if_exists(IF_EXISTS_RESUME)
    widget.start_button.click()
    assert widget.worker is None
    assert "does not resume" in notes["error"][-1]
