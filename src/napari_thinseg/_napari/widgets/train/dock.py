"""The "Train" widget: train the VGG-UNet on open image / labels layers.

A thin shell over :func:`napari_thinseg.training.loop.train`, a generator that
yields a :class:`~napari_thinseg.training.loop.TrainEvent` per batch and
per epoch,
or, for strokes on a start model
(:func:`~napari_thinseg.strokes.finetune.wants_finetune`), over
:func:`~napari_thinseg.strokes.finetune.finetune` with the settings
:func:`~napari_thinseg.strokes.finetune.finetune_settings` makes of the
budget, the sizes the form shows and the values the user edited; its
held-out verdict ends the status line.
It runs in a napari ``thread_worker`` (TensorFlow is first imported there,
never when the widget is built), so the viewer stays responsive. Stop sets
a :class:`threading.Event` that ``train`` polls before every batch: the
run ends within one batch, keeps the checkpoints of finished epochs and
returns the model trained so far. The activity dock's cancel
(``worker.quit()``) ends it at the next batch too, but without a result.

The form (:mod:`.form`) reads the settings into a plan, the live
view (:mod:`.plots`) shows the loss and validation IoU. The trained
model stays in memory (:attr:`TrainWidget.last_result`) and is registered
in :data:`napari_thinseg.model.cache.trained_models`, where the Predict
widget finds it as "model just trained".
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ....errors import ThinsegError
from ....model.cache import TrainedModel, trained_models
from ....model.checkpoints import (
    load_model,
    plan_checkpoints,
)
from ....model.config import ModelConfig
from ....progress import Progress, TimeLeft, time_left_text
from ....strokes.finetune import (
    DEFAULT_MINUTES,
    FinetuneResult,
    finetune,
    finetune_settings,
    wants_finetune,
)
from ....strokes.preview import (
    QuickPreview,
    features_model_prefix,
    quick_preview,
)
from ....training.loop import TrainEvent, TrainResult, train
from ... import workers
from ...layers import PREVIEW_KEY
from ...notify import (
    notify_error,
    notify_info,
    notify_warning,
    one_line,
    report_failure,
    reports_errors,
)
from ...pixel_scale import follow_file_pixel_sizes
from .._common import (
    StopsWithDock,
    button,
    end_run,
    idle_progress_bar,
    import_tensorflow,
    status_label,
    sync_progress,
)
from ..predict.model_output import write_labels
from .choices import (
    IF_EXISTS_OVERWRITE,
    IF_EXISTS_REFUSE,
    IF_EXISTS_RESUME,
    START_CHECKPOINT,
    START_DEFAULT,
    START_NEW,
    VAL_HOLD_OUT,
    VAL_NONE,
    VAL_TRAINING,
)
from .form import TrainForm, TrainPlan
from .plots import TrainingPlots

__all__ = [
    "IF_EXISTS_OVERWRITE",
    "IF_EXISTS_REFUSE",
    "IF_EXISTS_RESUME",
    "START_CHECKPOINT",
    "START_DEFAULT",
    "START_NEW",
    "VAL_HOLD_OUT",
    "VAL_NONE",
    "VAL_TRAINING",
    "TrainWidget",
    "train_job",
]

#: how the refusal names the choices to make when checkpoints exist
EXISTING_CHOICES = (
    "choose 'resume' or 'overwrite' under 'if they exist', or another name"
)
EXISTING_FINETUNE = (
    "a fine-tune from strokes starts from its model and does not resume: "
    "choose 'overwrite' under 'if they exist', or another name"
)


@dataclass(frozen=True)
class PreviewSkipped:
    """The quick preview could not be made (training goes on)."""

    message: str


def preview_job(plan: TrainPlan, model, config, stop):
    """Yield the :class:`~napari_thinseg.strokes.preview.QuickPreview` of
    the plan's pairs (the start model's features, else those of
    :func:`~napari_thinseg.strokes.preview.features_model_prefix`), or
    :class:`PreviewSkipped` with the reason."""
    try:
        if model is None:
            prefix = features_model_prefix(plan.scheme)
            yield Progress(0, 1, f"loading {prefix.name} (preview)")
            model, config, _ = load_model(prefix)
        preview = yield from quick_preview(
            model,
            config,
            plan.pairs,
            plan.validation,
            n_classes=plan.scheme.n_classes,
            scheme=plan.scheme,
            precision=plan.settings.precision,
            stop=stop,
        )
    except ThinsegError as exc:
        yield PreviewSkipped(f"no preview: {one_line(exc)}")
        return
    if preview is not None:
        yield preview


def finetune_plan_settings(plan: TrainPlan):
    """The settings of a fine-tune from the plan's strokes: the core's
    (:func:`~napari_thinseg.strokes.finetune.finetune_settings`) for
    the plan's budget, with the values the form gives
    (:attr:`~.form.TrainPlan.given`)."""
    s = plan.settings
    shapes = [p.labels.shape for p in plan.pairs]
    settings = finetune_settings(
        shapes,
        s.minutes or DEFAULT_MINUTES,
        precision=s.precision,
        **plan.given,
    )
    # no budget: the sizes the user gave (or the proposal's) run out
    return settings if s.minutes else replace(settings, minutes=None)


def train_job(plan: TrainPlan, stop):
    """Generator for the worker: load the start model, make the quick
    preview when asked, then :func:`~napari_thinseg.training.loop.train`, or
    :func:`~napari_thinseg.strokes.finetune.finetune` for strokes on a
    start model."""
    s = plan.settings
    total = s.epochs * s.steps_per_epoch
    model = config = None
    yield Progress(0, total, "starting TensorFlow")
    import_tensorflow()
    if plan.start_prefix is not None:
        yield Progress(0, total, f"loading {plan.start_prefix.name}")
        model, config, _ = load_model(plan.start_prefix)
    if plan.preview:
        yield from preview_job(plan, model, config, stop)
    if plan.start_prefix is None:
        yield Progress(0, total, "building the model")
    if wants_finetune(model, plan.pairs):
        return (
            yield from finetune(
                plan.pairs,
                plan.scheme,
                model,
                config,
                settings=finetune_plan_settings(plan),
                checkpoints_path=plan.prefix,
                overwrite=plan.overwrite,
                stop=stop,
                seed=s.seed,
                validation=plan.validation,
            )
        )
    return (
        yield from train(
            plan.pairs,
            plan.scheme,
            s,
            validation=plan.validation,
            checkpoints_path=plan.prefix,
            model=model,
            config=config,
            auto_resume=plan.auto_resume,
            overwrite=plan.overwrite,
            stop=stop,
        )
    )


class TrainWidget(StopsWithDock, QWidget):
    """Train the VGG-UNet on ticked (image, labels) layer pairs.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Attributes
    ----------
    trained : Signal(object)
        Emitted with the :class:`~napari_thinseg.training.loop.TrainResult`, or
        the :class:`~napari_thinseg.strokes.finetune.FinetuneResult` of
        a fine-tune from strokes (also when stopped).
    failed : Signal(str)
        Emitted with a one-line reason when a run is refused, fails or is
        cancelled.
    progressed : Signal(object)
        Emitted with every :class:`~napari_thinseg.training.loop.TrainEvent`.
    previewed : Signal(object)
        Emitted with the quick preview
        (:class:`~napari_thinseg.strokes.preview.QuickPreview`) once its
        layers are written.
    worker : GeneratorWorker or None
        The running training, if any.
    last_result : TrainResult, FinetuneResult or None
        The latest run's result; its model is also the latest entry of
        :data:`napari_thinseg.model.cache.trained_models`.
    history : list of TrainEvent
        The current (or last) run's events.
    preview_layers : list of napari.layers.Labels
        The last preview's ``"<image> preview"`` layers.
    form : TrainForm
        The settings.
    plots : TrainingPlots
        The loss and IoU view.
    """

    closed_message = (
        "Train closed: training stops after this batch (the checkpoints "
        "of finished epochs are kept)"
    )

    trained = Signal(object)
    failed = Signal(str)
    progressed = Signal(object)
    previewed = Signal(object)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        follow_file_pixel_sizes(napari_viewer)
        self.worker = None
        self.last_result: TrainResult | FinetuneResult | None = None
        self.history: list[TrainEvent] = []
        self.preview_layers: list = []
        self._plan: TrainPlan | None = None
        self._succeeded = False
        self._returned = False  # the status shows the result: keep it
        self._stop_event = threading.Event()

        self.form = TrainForm(napari_viewer)
        self.start_button = button("Start", self.start, "Start training")
        self.stop_button = button(
            "Stop", self.stop, "Stop after the current batch"
        )
        self.stop_button.setEnabled(False)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.stop_button)
        self.progress_bar = idle_progress_bar()
        self.status_label = status_label()
        self.plots = TrainingPlots(napari_viewer)

        # the settings scroll; the run controls and plots stay in view
        self.settings_area = QScrollArea()
        self.settings_area.setWidgetResizable(True)
        self.settings_area.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        self.settings_area.setFrameShape(QFrame.Shape.NoFrame)
        self.settings_area.setWidget(self.form)
        self.settings_area.setMinimumHeight(200)
        # as wide as the form: never cut at the side (no sideways scroll)
        self.settings_area.setMinimumWidth(
            self.form.minimumSizeHint().width()
            + self.settings_area.verticalScrollBar().sizeHint().width()
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.settings_area, 2)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.plots, 1)

        # a widget closed while training stops its run (the lambda holds
        # the event, not the widget)
        event = self._stop_event
        self.destroyed.connect(lambda *_: event.set())

    # -- running -------------------------------------------------------------
    @reports_errors
    def start(self):
        """Start training in a worker thread; returns the worker."""
        if self.worker is not None:
            raise ThinsegError("training is already running")
        plan = self.form.plan()
        config = ModelConfig(
            plan.scheme.n_classes,
            plan.settings.input_height,
            plan.settings.input_width,
        )
        # the rule train() applies, told before anything starts
        plan_checkpoints(
            plan.prefix,
            config,
            plan.auto_resume and not plan.finetune,
            plan.overwrite,
            choices=EXISTING_FINETUNE if plan.finetune else EXISTING_CHOICES,
        )
        if plan.prefix is None:
            notify_info(
                "no checkpoint folder: the model is kept in memory only"
            )
        self._plan = plan
        self._succeeded = self._returned = False
        self._stop_event.clear()
        self.history = []
        self._time_left = TimeLeft()
        self.plots.reset(plan.scheme, bool(plan.validation))
        self.progress_bar.setRange(0, 0)
        self._set_status("starting (loading TensorFlow)…")
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.worker = workers.start(
            train_job,
            plan,
            self._stop_event.is_set,
            desc="Training the VGG-UNet",
            yielded=self._on_yielded,
            returned=self._on_returned,
            refused=self._on_refused,
            errored=self._on_errored,
            aborted=self._on_aborted,
            finished=self._on_finished,
        )
        return self.worker

    def stop(self) -> None:
        """Stop training after the current batch."""
        if self.worker is None:
            return
        self._stop_event.set()
        self.stop_button.setEnabled(False)
        self._set_status("stopping after this batch…")

    def _on_yielded(self, event) -> None:
        if self._returned:  # a late event: the status keeps the result
            return
        if isinstance(event, QuickPreview | PreviewSkipped):
            self._show_preview(event)
            return
        if not isinstance(event, TrainEvent):
            # the preview's, the start model's view and the judging
            if event.total and event.step:
                self.progress_bar.setRange(0, event.total)
                self.progress_bar.setValue(event.step)
            self._set_status(f"{event.message}…")
            return
        self.history.append(event)
        self.progress_bar.setRange(0, max(1, event.total))
        self.progress_bar.setValue(event.step)
        self.plots.add(event)
        seconds = self._time_left.update(event.step, event.total)
        if seconds is not None and event.budget_left is not None:
            seconds = min(seconds, event.budget_left)  # the budget ends it
        left = time_left_text(seconds)
        left = f" ({left})" if left else ""
        if event.epoch_end:
            text = f"{event.message}: mean loss {event.loss:.4f}"
            if event.val_iou is not None:
                text += f", val mean IoU {event.val_mean_iou:.3f}"
            self._set_status(text + left)
        elif not self._stop_event.is_set():
            self._set_status(
                f"{event.message}, batch {event.batch}: "
                f"loss {event.loss:.4f}{left}"
            )
        self.progressed.emit(event)
        # last: napari's activity bar processes events here, which may
        # run the next events' handlers, and the result's
        sync_progress(
            getattr(self.worker, "pbar", None),
            event.step,
            event.total,
            event.message,
        )

    def _on_refused(self, message: str) -> None:
        report_failure(self, message, notify_error)

    def _on_returned(self, result: TrainResult | FinetuneResult) -> None:
        self._returned = True
        self.last_result = result
        self._succeeded = True
        training = getattr(result, "training", result)  # a fine-tune's
        self.plots.fill_iou_table(
            training, None if self._plan is None else self._plan.scheme
        )
        message = self._describe(result, training)
        notify_info(message)
        self._set_status(message)
        self.trained.emit(result)

    def _describe(self, result, training: TrainResult) -> str:
        """What a run left: registers its model as "model just trained"
        and returns the line to show."""
        if training.stopped and not self.history:
            return "training stopped before the first batch"
        epochs = [r["epoch"] for r in training.history]
        if not epochs or result.model is None:
            # a barely trained network is no model to predict with: the
            # one trained before stays "model just trained"
            return (
                "training stopped before the first epoch finished: no "
                "model kept"
            )
        where = f"epoch {epochs[-1] + 1}"
        verdict = getattr(result, "verdict", None)
        prefix = None if self._plan is None else self._plan.prefix
        kept = verdict is not None and verdict.kept_start
        name = f"{prefix.name if prefix else 'unsaved model'} ({where}"
        name += "; the start model kept)" if kept else ")"
        trained_models.add(
            TrainedModel(result.model, result.config, name, result.checkpoint)
        )
        if training.budget_ended:
            message = f"training done ({where}, at the time budget)"
        elif training.stopped:
            message = f"training stopped after {where}"
        else:
            message = f"training done ({where})"
        if verdict is not None:
            message += "; " + verdict.describe()
        if result.checkpoint:
            message += f"; last checkpoint {result.checkpoint}"
        if training.transfer is not None and self._plan is not None:
            message += "; " + training.transfer.describe(self._plan.scheme)
        return message

    def _on_errored(self, exc) -> None:
        # napari's worker already shows unexpected errors with a traceback
        report_failure(self, one_line(exc))

    def _on_aborted(self) -> None:
        message = (
            "training cancelled: the checkpoints of finished epochs are kept"
        )
        report_failure(self, message, notify_warning)

    def _on_finished(self) -> None:
        end_run(self, self.start_button, self._succeeded)
        self.plots.stop_timer()
        self.plots.redraw()

    def _show_preview(self, preview) -> None:
        """Write the preview's class maps as ``"<image> preview"`` layers
        (or say why there is none)."""
        if isinstance(preview, PreviewSkipped):
            notify_warning(preview.message)
            self._set_status(preview.message)
            return
        self.preview_layers = []
        for name, prediction in zip(
            preview.names, preview.predictions, strict=True
        ):
            if name not in self.viewer.layers:
                continue  # removed meanwhile
            self.preview_layers.append(
                write_labels(
                    self.viewer,
                    self.viewer.layers[name],
                    prediction.labels,
                    self._plan.scheme,
                    "preview",
                    PREVIEW_KEY,
                    model=preview.source,
                )
            )
        message = f"{preview.describe()}; training goes on"
        notify_info(message)
        self._set_status(message)
        self.previewed.emit(preview)

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
