"""The "Train" widget: train the VGG-UNet on open image / labels layers.

A thin shell over :func:`napari_thinseg.train.train`, a generator that
yields a :class:`~napari_thinseg.train.TrainEvent` per batch and per epoch.
It runs in a napari ``thread_worker`` (TensorFlow is first imported there,
never when the widget is built), so the viewer stays responsive. Stop sets
a :class:`threading.Event` that ``train`` polls before every batch: the
run ends within one batch, keeps the checkpoints of finished epochs and
returns the model trained so far. The activity dock's cancel
(``worker.quit()``) ends it at the next batch too, but without a result.

The trained model stays in memory (:attr:`TrainWidget.last_result`) and is
registered in :data:`._common.trained_models`, where the Predict widget
finds it as "model just trained".
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.qt.threading import thread_worker
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...dataset import Pair
from ...errors import OUT_OF_MEMORY, ThinsegError, is_out_of_memory
from ...model.cache import TrainedModel, trained_models
from ...model.checkpoints import (
    config_path,
    default_model_prefix,
    list_checkpoints,
    load_model,
    read_config,
    resolve_prefix,
)
from ...model.config import MAX_INPUT_SIDE, check_input_size
from ...progress import Progress
from ...schemes import ClassScheme
from ...train import TrainEvent, TrainResult, TrainSettings, train
from ..notify import (
    notify_error,
    notify_info,
    notify_warning,
    one_line,
    report_failure,
    reports_errors,
)
from ..workers import Refused
from ._common import (
    CONFIDENCE_KEY,
    button,
    idle_progress_bar,
    import_tensorflow,
    layer_array,
    single_shot_timer,
    status_label,
    sync_progress,
    theme_colors,
)
from .export import PairTable, dataset_scheme, layer_pairs

START_NEW, START_DEFAULT, START_CHECKPOINT = "new", "default", "checkpoint"
START_TEXT = {
    START_NEW: "new random model",
    START_DEFAULT: "default model (fine-tune)",
    START_CHECKPOINT: "checkpoint…",
}
VAL_NONE, VAL_HOLD_OUT, VAL_TRAINING = "none", "hold out", "training"
VAL_TEXT = {
    VAL_NONE: "none",
    VAL_HOLD_OUT: "hold out a share of the ticked pairs",
    VAL_TRAINING: "the training pairs (fit check)",
}
IF_EXISTS_REFUSE, IF_EXISTS_RESUME, IF_EXISTS_OVERWRITE = (
    "refuse",
    "resume",
    "overwrite",
)
IF_EXISTS_TEXT = {
    IF_EXISTS_REFUSE: "stop with a message",
    IF_EXISTS_RESUME: "resume from the latest epoch",
    IF_EXISTS_OVERWRITE: "overwrite",
}
OPTIMIZER_CHOICES = ("adadelta", "adam")
SIZE_STEP = 32
DEFAULT_NAME = "thinseg"
#: the plots are redrawn at most this often while training (ms)
PLOT_INTERVAL_MS = 250


@dataclass
class TrainPlan:
    """Everything one training run needs, read from the widget."""

    pairs: list[Pair]
    validation: list[Pair]
    scheme: ClassScheme
    settings: TrainSettings
    prefix: Path | None = None
    start_prefix: Path | None = None
    auto_resume: bool = False
    overwrite: bool = False


def train_job(plan: TrainPlan, stop):
    """Generator for ``thread_worker``: load the start model, then
    :func:`~napari_thinseg.train.train`.

    A :class:`ThinsegError` or an out-of-memory error comes back as a
    :class:`~.export.Refused` result (one line for the user) instead of
    a traceback.
    """
    s = plan.settings
    total = s.epochs * s.steps_per_epoch
    try:
        model = config = None
        yield Progress(0, total, "starting TensorFlow")
        import_tensorflow()
        if plan.start_prefix is not None:
            yield Progress(0, total, f"loading {plan.start_prefix.name}")
            model, config, _ = load_model(plan.start_prefix)
        else:
            yield Progress(0, total, "building the model")
        result = yield from train(
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
    except ThinsegError as exc:
        return Refused(str(exc))
    except Exception as exc:
        if is_out_of_memory(exc):
            return Refused(OUT_OF_MEMORY)
        raise
    return result


def hold_out(
    pairs: Sequence[Pair], fraction: float, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """Split ``pairs`` into (training, validation) with a seeded draw.

    At least one pair goes to each side.

    Raises
    ------
    ThinsegError
        Fewer than two pairs.
    """
    n = len(pairs)
    if n < 2:
        raise ThinsegError(
            "holding out pairs for validation needs at least two ticked "
            "pairs; tick more, or validate on the training pairs"
        )
    n_val = min(n - 1, max(1, round(fraction * n)))
    order = np.random.default_rng(seed).permutation(n)
    val = set(order[:n_val].tolist())
    return (
        [p for i, p in enumerate(pairs) if i not in val],
        [p for i, p in enumerate(pairs) if i in val],
    )


def _size_spin(value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(SIZE_STEP, MAX_INPUT_SIDE)
    spin.setSingleStep(SIZE_STEP)
    spin.setValue(value)
    spin.setToolTip(tip)

    def snap():
        v = spin.value()
        snapped = max(SIZE_STEP, round(v / SIZE_STEP) * SIZE_STEP)
        if snapped != v:
            spin.setValue(snapped)

    spin.editingFinished.connect(snap)
    return spin


def _int_spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


class TrainWidget(QWidget):
    """Train the VGG-UNet on ticked (image, labels) layer pairs.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Attributes
    ----------
    trained : Signal(object)
        Emitted with the :class:`~napari_thinseg.train.TrainResult` (also
        when stopped).
    failed : Signal(str)
        Emitted with a one-line reason when a run is refused, fails or is
        cancelled.
    progressed : Signal(object)
        Emitted with every :class:`~napari_thinseg.train.TrainEvent`.
    worker : GeneratorWorker or None
        The running training, if any.
    last_result : TrainResult or None
        The latest run's result; its model is also the latest entry of
        :data:`._common.trained_models`.
    history : list of TrainEvent
        The current (or last) run's events.
    """

    trained = Signal(object)
    failed = Signal(str)
    progressed = Signal(object)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.last_result: TrainResult | None = None
        self.history: list[TrainEvent] = []
        self._plan: TrainPlan | None = None
        self._succeeded = False
        self._stop_event = threading.Event()
        self._start_config = None
        self._loss = ([], [])
        self._epoch_loss = ([], [])
        self._iou: list[tuple] = []  # (epoch, per-class IoU, mean)
        self._class_lines: dict[int, object] = {}

        self._build_ui()
        self._on_pairs_changed()
        self._on_start_changed()
        # a widget closed while training stops its run (the lambda holds
        # the event, not the widget)
        event = self._stop_event
        self.destroyed.connect(lambda *_: event.set())

    # -- ui ------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.pairs_table = PairTable(
            self.viewer,
            include=lambda ly: CONFIDENCE_KEY not in ly.metadata,
        )
        self.pairs_table.setMinimumHeight(90)
        self.pairs_table.changed.connect(self._on_pairs_changed)
        self.scheme_label = QLabel()
        self.scheme_label.setWordWrap(True)
        data_box = QGroupBox("Training data")
        data_layout = QVBoxLayout(data_box)
        data_layout.addWidget(self.pairs_table)
        data_layout.addWidget(self.scheme_label)

        # model
        self.start_from = QComboBox()
        for key, text in START_TEXT.items():
            self.start_from.addItem(text, key)
        self.start_from.setToolTip(
            "Train a new network, or fine-tune the shipped default model or "
            "a checkpoint (its input size and classes then apply)"
        )
        self.start_path = QLineEdit()
        self.start_path.setPlaceholderText("P_config.json or prefix P")
        self.start_browse = button(
            "Browse…", self.browse_start, "Choose a checkpoint config"
        )
        start_row = QHBoxLayout()
        start_row.addWidget(self.start_path, 1)
        start_row.addWidget(self.start_browse)
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.input_height = _size_spin(
            416, "Crop height the network sees (multiple of 32)"
        )
        self.input_width = _size_spin(
            608, "Crop width the network sees (multiple of 32)"
        )
        size_row = QHBoxLayout()
        size_row.addWidget(self.input_height)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.input_width)
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        model_form.addRow("start from", self.start_from)
        model_form.addRow("checkpoint", start_row)
        model_form.addRow(self.model_label)
        model_form.addRow("input size", size_row)

        # training
        self.epochs = _int_spin(
            1,
            100_000,
            5,
            "Train until this many epochs (a resumed run counts the "
            "finished ones)",
        )
        self.batch_size = _int_spin(
            1, 256, 2, "Crops per batch (lower it when memory runs out)"
        )
        self.steps_per_epoch = _int_spin(
            1, 1_000_000, 512, "Batches per epoch"
        )
        self.optimizer = QComboBox()
        self.optimizer.addItems(OPTIMIZER_CHOICES)
        self.learning_rate = QDoubleSpinBox()
        self.learning_rate.setDecimals(5)
        self.learning_rate.setRange(0.0, 10.0)
        self.learning_rate.setSingleStep(0.0001)
        self.learning_rate.setSpecialValueText("optimizer default")
        self.learning_rate.setToolTip(
            "0 = the optimizer's default (1.0 for adadelta, 0.001 for adam)"
        )
        self.augment = QCheckBox("augment (flips, rotations, colour jitter)")
        self.ignore_zero = QCheckBox("unlabelled pixels (0) are not trained")
        self.ignore_zero.setChecked(True)
        self.seed = _int_spin(0, 2**31 - 1, 0, "Seed of crops and splits")
        self.validation = QComboBox()
        for key, text in VAL_TEXT.items():
            self.validation.addItem(text, key)
        self.validation.setToolTip(
            "Per-class IoU after each epoch, on held-out pairs or on the "
            "training pairs themselves"
        )
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.9)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(0.2)
        self.val_fraction.setToolTip("Share of the ticked pairs held out")
        train_box = QGroupBox("Training")
        train_form = QFormLayout(train_box)
        train_form.addRow("epochs", self.epochs)
        train_form.addRow("batch size", self.batch_size)
        train_form.addRow("steps per epoch", self.steps_per_epoch)
        train_form.addRow("optimizer", self.optimizer)
        train_form.addRow("learning rate", self.learning_rate)
        train_form.addRow(self.augment)
        train_form.addRow(self.ignore_zero)
        train_form.addRow("seed", self.seed)
        train_form.addRow("validation", self.validation)
        train_form.addRow("held-out share", self.val_fraction)

        # checkpoints
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("folder (empty: keep in memory only)")
        self.folder_browse = button(
            "Browse…", self.browse_folder, "Choose the checkpoint folder"
        )
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.folder_browse)
        self.name = QLineEdit(DEFAULT_NAME)
        self.name.setToolTip(
            "Checkpoint prefix P: writes P_config.json and P.<epoch>"
        )
        self.if_exists = QComboBox()
        for key, text in IF_EXISTS_TEXT.items():
            self.if_exists.addItem(text, key)
        ck_box = QGroupBox("Checkpoints")
        ck_form = QFormLayout(ck_box)
        ck_form.addRow("folder", folder_row)
        ck_form.addRow("name", self.name)
        ck_form.addRow("if they exist", self.if_exists)

        # run
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

        # plots
        self.figure = Figure(figsize=(3.5, 3.2), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.canvas.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding
        )
        self.loss_ax, self.iou_ax = self.figure.subplots(2, 1)
        (self.loss_line,) = self.loss_ax.plot([], [], lw=0.8, label="batch")
        (self.epoch_loss_line,) = self.loss_ax.plot(
            [], [], "o-", ms=3, lw=1.2, label="epoch mean"
        )
        (self.iou_line,) = self.iou_ax.plot(
            [], [], "o-", ms=3, lw=2.0, label="mean"
        )
        self._style_axes()
        self._plot_timer = single_shot_timer(
            self, PLOT_INTERVAL_MS, self.redraw
        )

        # per-class IoU
        self.iou_table = QTableWidget(0, 3)
        self.iou_table.setHorizontalHeaderLabels(["id", "class", "IoU"])
        self.iou_table.verticalHeader().setVisible(False)
        self.iou_table.setEditTriggers(
            QAbstractItemView.EditTrigger.NoEditTriggers
        )
        self.iou_table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.Stretch
        )
        self.iou_table.setMinimumHeight(80)

        # the settings scroll; the run controls and plots stay in view
        form = QWidget()
        form_layout = QVBoxLayout(form)
        form_layout.setContentsMargins(0, 0, 0, 0)
        for box in (data_box, model_box, train_box, ck_box):
            form_layout.addWidget(box)
        form_layout.addStretch(1)
        self.settings_area = QScrollArea()
        self.settings_area.setWidgetResizable(True)
        self.settings_area.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )
        self.settings_area.setFrameShape(QFrame.Shape.NoFrame)
        self.settings_area.setWidget(form)
        self.settings_area.setMinimumHeight(200)
        layout = QVBoxLayout(self)
        layout.addWidget(self.settings_area, 2)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(QLabel("validation IoU of the last epoch"))
        layout.addWidget(self.iou_table)

        self.start_from.currentIndexChanged.connect(self._on_start_changed)
        self.start_path.editingFinished.connect(self._on_start_changed)
        self.validation.currentIndexChanged.connect(self._on_validation)
        self._on_validation()

    def _style_axes(self) -> None:
        bg, fg = theme_colors(self.viewer)
        self.figure.set_facecolor(bg)
        for ax, ylabel in ((self.loss_ax, "loss"), (self.iou_ax, "val IoU")):
            ax.set_facecolor(bg)
            ax.tick_params(colors=fg, labelsize=7)
            ax.set_ylabel(ylabel, color=fg, fontsize=8)
            for spine in ax.spines.values():
                spine.set_color(fg)
        self.loss_ax.set_xlabel("batch", color=fg, fontsize=8)
        self.iou_ax.set_xlabel("epoch", color=fg, fontsize=8)
        self.iou_ax.set_ylim(0, 1)
        self.iou_line.set_color(fg)

    # -- reading the form ------------------------------------------------
    def start_kind(self) -> str:
        """``"new"``, ``"default"`` or ``"checkpoint"``."""
        return self.start_from.currentData()

    def set_start(self, kind: str, path: str | Path = "") -> None:
        """Choose what training starts from (``path`` for a checkpoint)."""
        self.start_path.setText(str(path))
        self.start_from.setCurrentIndex(self.start_from.findData(kind))
        self._on_start_changed()

    def set_validation(self, kind: str) -> None:
        """Choose ``"none"``, ``"hold out"`` or ``"training"``."""
        self.validation.setCurrentIndex(self.validation.findData(kind))

    def set_if_exists(self, kind: str) -> None:
        """Choose ``"refuse"``, ``"resume"`` or ``"overwrite"``."""
        self.if_exists.setCurrentIndex(self.if_exists.findData(kind))

    def start_prefix(self) -> Path | None:
        """The checkpoint prefix training starts from (None: a new model).

        Raises
        ------
        ThinsegError
            The default model is not installed, or no checkpoint is given.
        """
        kind = self.start_kind()
        if kind == START_DEFAULT:
            return default_model_prefix()
        if kind == START_CHECKPOINT:
            text = self.start_path.text().strip()
            if not text:
                raise ThinsegError("choose the checkpoint to start from")
            prefix = resolve_prefix(Path(text).expanduser())
            if not config_path(prefix).is_file():
                raise ThinsegError(f"{config_path(prefix)}: no such file")
            return prefix
        return None

    def settings(self) -> TrainSettings:
        """The training settings of the form (validated)."""
        height, width = self.input_height.value(), self.input_width.value()
        if self._start_config is not None:
            height = self._start_config.input_height
            width = self._start_config.input_width
        check_input_size(height, width)
        rate = self.learning_rate.value()
        return TrainSettings(
            input_height=height,
            input_width=width,
            epochs=self.epochs.value(),
            batch_size=self.batch_size.value(),
            steps_per_epoch=self.steps_per_epoch.value(),
            optimizer=self.optimizer.currentText(),
            learning_rate=rate if rate > 0 else None,
            augment=self.augment.isChecked(),
            ignore_zero=self.ignore_zero.isChecked(),
            seed=self.seed.value(),
        )

    def checkpoint_prefix(self) -> Path | None:
        """``<folder>/<name>``, or None when no folder is given."""
        folder = self.folder.text().strip()
        if not folder:
            return None
        name = self.name.text().strip()
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise ThinsegError(
                f"checkpoint name {name!r}: give a plain file-name prefix"
            )
        return Path(folder).expanduser() / name

    def plan(self) -> TrainPlan:
        """Read the form and the ticked layers into a :class:`TrainPlan`.

        Raises
        ------
        ThinsegError
            Anything the run would refuse that can be told now.
        """
        chosen = self.pairs_table.chosen()
        scheme = dataset_scheme([lb for _, lb in chosen])
        for _, labels in chosen:
            if layer_array(labels).ndim != 2:
                raise ThinsegError(
                    f"{labels.name}: training needs 2D labels layers"
                )
        pairs = layer_pairs(chosen)
        start_prefix = self.start_prefix()
        self._update_start_config(start_prefix)
        settings = self.settings()
        kind = self.validation.currentData()
        validation: list[Pair] = []
        if kind == VAL_HOLD_OUT:
            pairs, validation = hold_out(
                pairs, self.val_fraction.value(), settings.seed
            )
        elif kind == VAL_TRAINING:
            validation = list(pairs)
        policy = self.if_exists.currentData()
        return TrainPlan(
            pairs=pairs,
            validation=validation,
            scheme=scheme,
            settings=settings,
            prefix=self.checkpoint_prefix(),
            start_prefix=start_prefix,
            auto_resume=policy == IF_EXISTS_RESUME,
            overwrite=policy == IF_EXISTS_OVERWRITE,
        )

    # -- form reactions ----------------------------------------------------
    def _on_pairs_changed(self) -> None:
        try:
            labels = [lb for _, ok, lb in self.pairs_table.rows() if ok]
            labels = [lb for lb in labels if lb is not None]
            if not labels:
                self.scheme_label.setText(
                    "tick images with labels layers to train on"
                )
                return
            scheme = dataset_scheme(labels)
        except ThinsegError as exc:
            self.scheme_label.setText(str(exc))
            return
        names = ", ".join(f"{c.id} {c.name}" for c in scheme)
        self.scheme_label.setText(
            f"{len(labels)} pair(s), scheme '{scheme.name}': {names}"
        )

    def _on_validation(self, *_) -> None:
        self.val_fraction.setEnabled(
            self.validation.currentData() == VAL_HOLD_OUT
        )

    def _update_start_config(self, prefix: Path | None) -> None:
        self._start_config = None if prefix is None else read_config(prefix)
        fixed = self._start_config is not None
        if fixed:
            self.input_height.setValue(self._start_config.input_height)
            self.input_width.setValue(self._start_config.input_width)
        self.input_height.setEnabled(not fixed)
        self.input_width.setEnabled(not fixed)

    def _on_start_changed(self, *_) -> None:
        kind = self.start_kind()
        self.start_path.setEnabled(kind == START_CHECKPOINT)
        self.start_browse.setEnabled(kind == START_CHECKPOINT)
        try:
            prefix = None
            if kind == START_DEFAULT or (
                kind == START_CHECKPOINT and self.start_path.text().strip()
            ):
                prefix = self.start_prefix()
            self._update_start_config(prefix)
        except ThinsegError as exc:
            self._update_start_config(None)
            if kind == START_DEFAULT:
                self.model_label.setText(
                    "the default model is not installed yet: train a new "
                    "model or start from a checkpoint"
                )
            else:
                self.model_label.setText(one_line(exc))
            return
        config = self._start_config
        if config is None:
            self.model_label.setText(
                "a new VGG-UNet with random weights"
                if kind == START_NEW
                else "choose a checkpoint config (P_config.json)"
            )
            return
        self.model_label.setText(
            f"{config.n_classes} classes ('{config.class_scheme.name}'), "
            f"input {config.input_height}×{config.input_width}"
        )

    @reports_errors
    def browse_start(self) -> None:
        """Choose the checkpoint to start from with a dialog."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Start from checkpoint",
            self.start_path.text(),
            "Checkpoint configs (*_config.json);;All files (*)",
        )
        if path:
            self.set_start(START_CHECKPOINT, path)

    @reports_errors
    def browse_folder(self) -> None:
        """Choose the checkpoint folder with a dialog."""
        path = QFileDialog.getExistingDirectory(
            self, "Save checkpoints to", self.folder.text()
        )
        if path:
            self.folder.setText(path)

    # -- running -------------------------------------------------------------
    @reports_errors
    def start(self):
        """Start training in a worker thread; returns the worker."""
        if self.worker is not None:
            raise ThinsegError("training is already running")
        plan = self.plan()
        exists = plan.prefix is not None and bool(
            list_checkpoints(plan.prefix) or config_path(plan.prefix).exists()
        )
        if exists and not (plan.auto_resume or plan.overwrite):
            raise ThinsegError(
                f"{plan.prefix}: checkpoints already exist; choose "
                "'resume' or 'overwrite' under 'if they exist', or another "
                "name"
            )
        if plan.prefix is None:
            notify_info(
                "no checkpoint folder: the model is kept in memory only"
            )
        elif plan.overwrite:
            stale = [
                e
                for e in list_checkpoints(plan.prefix)
                if e >= plan.settings.epochs
            ]
            if stale:
                notify_warning(
                    f"{plan.prefix}.{max(stale)} stays from an earlier run "
                    "and will count as the latest epoch; delete it or use "
                    "another name"
                )
        self._plan = plan
        self._succeeded = False
        self._stop_event.clear()
        self._reset_plots(plan)
        self.progress_bar.setRange(0, 0)
        self._set_status("starting (loading TensorFlow)…")
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        make = thread_worker(
            train_job,
            progress={"desc": "Training the VGG-UNet"},
            connect={
                "yielded": self._on_yielded,
                "returned": self._on_returned,
                "errored": self._on_errored,
                "aborted": self._on_aborted,
                "finished": self._on_finished,
            },
        )
        self.worker = make(plan, self._stop_event.is_set)
        return self.worker

    def stop(self) -> None:
        """Stop training after the current batch."""
        if self.worker is None:
            return
        self._stop_event.set()
        self.stop_button.setEnabled(False)
        self._set_status("stopping after this batch…")

    def _on_yielded(self, event) -> None:
        if not isinstance(event, TrainEvent):
            self._set_status(f"{event.message}…")
            return
        self.history.append(event)
        worker = self.worker
        sync_progress(
            getattr(worker, "pbar", None),
            event.step,
            event.total,
            event.message,
        )
        self.progress_bar.setRange(0, max(1, event.total))
        self.progress_bar.setValue(event.step)
        if event.epoch_end:
            self._epoch_loss[0].append(event.step)
            self._epoch_loss[1].append(event.loss)
            text = f"{event.message}: mean loss {event.loss:.4f}"
            if event.val_iou is not None:
                self._iou.append(
                    (event.epoch + 1, event.val_iou, event.val_mean_iou)
                )
                text += f", val mean IoU {event.val_mean_iou:.3f}"
            self._set_status(text)
            self.redraw()
        else:
            self._loss[0].append(event.step)
            self._loss[1].append(event.loss)
            if not self._stop_event.is_set():
                self._set_status(
                    f"{event.message}, batch {event.batch}: "
                    f"loss {event.loss:.4f}"
                )
            if not self._plot_timer.isActive():
                self._plot_timer.start()
        self.progressed.emit(event)

    def _on_returned(self, value) -> None:
        if isinstance(value, Refused):
            report_failure(self, value.message, notify_error)
            return
        result: TrainResult = value
        self.last_result = result
        self._succeeded = True
        self._fill_iou_table(result)
        if result.stopped and not self.history:
            message = "training stopped before the first batch"
            notify_info(message)
            self._set_status(message)
            self.trained.emit(result)
            return
        epochs = [r["epoch"] for r in result.history]
        where = f"epoch {epochs[-1] + 1}" if epochs else "no finished epoch"
        prefix = None if self._plan is None else self._plan.prefix
        name = f"{prefix.name if prefix else 'unsaved model'} ({where})"
        trained_models.add(
            TrainedModel(result.model, result.config, name, result.checkpoint)
        )
        if result.stopped:
            message = f"training stopped ({where} finished)"
        else:
            message = f"training done ({where})"
        if result.checkpoint:
            message += f"; last checkpoint {result.checkpoint}"
        notify_info(message)
        self._set_status(message)
        self.trained.emit(result)

    def _on_errored(self, exc) -> None:
        # napari's worker already shows unexpected errors with a traceback
        report_failure(self, one_line(exc))

    def _on_aborted(self) -> None:
        message = (
            "training cancelled: the checkpoints of finished epochs are kept"
        )
        report_failure(self, message, notify_warning)

    def _on_finished(self) -> None:
        self.worker = None
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if self._succeeded else 0)
        self._plot_timer.stop()
        self.redraw()

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    # -- plots and table ---------------------------------------------------
    def _reset_plots(self, plan: TrainPlan) -> None:
        self.history = []
        self._loss = ([], [])
        self._epoch_loss = ([], [])
        self._iou = []
        for line in self._class_lines.values():
            line.remove()
        self._class_lines = {}
        if plan.validation:
            for cls in plan.scheme:
                (line,) = self.iou_ax.plot(
                    [], [], lw=0.8, color=cls.color, label=cls.name
                )
                self._class_lines[cls.id] = line
        self.iou_table.setRowCount(0)
        self.redraw()

    def loss_points(self) -> list[tuple[int, float]]:
        """``(step, batch loss)`` of the current (or last) run."""
        return list(zip(*self._loss, strict=True))

    def redraw(self) -> None:
        """Put the collected losses and IoUs into the plots."""
        self.loss_line.set_data(*self._loss)
        self.epoch_loss_line.set_data(*self._epoch_loss)
        epochs = [e for e, _, _ in self._iou]
        means = [np.nan if m is None else m for _, _, m in self._iou]
        self.iou_line.set_data(epochs, means)
        for class_id, line in self._class_lines.items():
            line.set_data(
                epochs,
                [
                    np.nan
                    if class_id >= len(iou) or iou[class_id] is None
                    else iou[class_id]
                    for _, iou, _ in self._iou
                ],
            )
        self.loss_ax.relim()
        self.loss_ax.autoscale_view()
        self.iou_ax.relim()
        self.iou_ax.autoscale_view(scaley=False)
        if epochs:
            self.iou_ax.set_xlim(0.5, max(epochs) + 0.5)
        self.canvas.draw_idle()

    def _fill_iou_table(self, result: TrainResult) -> None:
        record = next(
            (r for r in reversed(result.history) if "val_iou" in r), None
        )
        self.iou_table.setRowCount(0)
        if record is None or self._plan is None:
            return
        iou = record["val_iou"]
        rows = [
            (
                str(cls.id),
                cls.name,
                iou[cls.id] if cls.id < len(iou) else None,
            )
            for cls in self._plan.scheme
        ]
        rows.append(("", "mean (classes present)", record["val_mean_iou"]))
        self.iou_table.setRowCount(len(rows))
        for row, (cid, name, value) in enumerate(rows):
            text = (
                "—"
                if value is None or not np.isfinite(value)
                else f"{value:.3f}"
            )
            for col, cell in enumerate((cid, name, text)):
                self.iou_table.setItem(row, col, QTableWidgetItem(cell))

    def iou_rows(self) -> list[tuple[str, str, str]]:
        """The per-class IoU table as text: ``(id, class, IoU)`` rows."""
        return [
            tuple(
                self.iou_table.item(r, c).text()
                for c in range(self.iou_table.columnCount())
            )
            for r in range(self.iou_table.rowCount())
        ]
