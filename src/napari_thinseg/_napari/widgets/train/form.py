"""The Train widget's settings: the (image, labels) pairs to learn from,
the model to start from, the training settings and where checkpoints go,
read into one :class:`TrainPlan`.

Until the user edits them, the controls follow the form's defaults
(:mod:`.defaults`): training starts from the model the labels were
corrected from, the sizes are what Fit proposes for the time budget (2
minutes), and strokes on a model show the fine-tune recipe's optimizer
and rate; a fine-tune takes the edited values and the sizes shown from
the form (:attr:`TrainPlan.given`), the rest from the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ....dataset.folders import Pair, hold_out
from ....errors import ThinsegError
from ....model.cache import checkpoint_prefix
from ....model.checkpoints import model_prefix
from ....model.config import check_input_size
from ....model.vgg_unet import ENCODER_BLOCKS
from ....schemes import ClassScheme
from ....training.loop import TrainSettings
from ....training.recipe import AVERAGE_MOMENTUM
from ...notify import reports_errors
from .._common import CONFIDENCE_KEY, button, layer_array
from ..pair_table import PairTable, dataset_scheme, layer_pairs
from ..predict.job import PRECISION_TEXT
from .budget import BudgetRow
from .choices import (
    DEFAULT_NAME,
    IF_EXISTS_OVERWRITE,
    IF_EXISTS_RESUME,
    IF_EXISTS_TEXT,
    OPTIMIZER_CHOICES,
    SCHEDULE_TEXT,
    START_CHECKPOINT,
    START_DEFAULT,
    START_NEW,
    START_SANDSTONE,
    START_TEXT,
    VAL_HOLD_OUT,
    VAL_TEXT,
    VAL_TRAINING,
    int_spin,
    size_spin,
)
from .defaults import FormDefaults


@dataclass
class TrainPlan:
    """Everything one training run needs, read from the widget.

    ``given``: the settings the user edited and, with a budget, the
    sizes shown: what a fine-tune from strokes takes from the form
    (:func:`~napari_thinseg.strokes.finetune.finetune_settings`);
    ``finetune``: whether the run is one, as the form tells it.
    """

    pairs: list[Pair]
    validation: list[Pair]
    scheme: ClassScheme
    settings: TrainSettings
    prefix: Path | None = None
    start_prefix: Path | None = None
    auto_resume: bool = False
    overwrite: bool = False
    preview: bool = False
    given: dict = field(default_factory=dict)
    finetune: bool = False


class TrainForm(FormDefaults, QWidget):
    """The settings of a training run, read with :meth:`plan`.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose image and labels layers can be ticked.
    """

    def __init__(self, viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self._start_config = None
        self._finetune = False
        boxes = (
            self._data_box(),
            self._model_box(),
            self._training_box(),
            self._checkpoint_box(),
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for box in boxes:
            layout.addWidget(box)
        layout.addStretch(1)
        self._follow_defaults()
        self._connect()
        self._on_validation()
        self._on_pairs_changed()
        self._on_start_changed()

    # -- building the form -----------------------------------------------
    def _data_box(self) -> QGroupBox:
        """The (image, labels) pairs to train on and their scheme."""
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
        return data_box

    def _model_box(self) -> QGroupBox:
        """The model to start from, the quick preview and the input."""
        self.start_from = QComboBox()
        for key, text in START_TEXT.items():
            self.start_from.addItem(text, key)
        self.start_from.setToolTip(
            "Train a new network, or start from the shipped default model "
            "or a checkpoint (its input size applies; for other classes its "
            "weights are transferred: classes of the same name keep theirs, "
            "new ones start afresh)"
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
        self.run_label = QLabel()
        self.run_label.setWordWrap(True)
        self.preview = QCheckBox("quick preview first (about a minute)")
        self.preview.setChecked(True)
        self.preview.setToolTip(
            "Before training: a random forest on the start model's encoder "
            "features (the sandstone model's for a new model) learns the "
            "labels and predicts the images as '<image> preview' layers"
        )
        self.input_height = size_spin(
            416, "Crop height the network sees (multiple of 32)"
        )
        self.input_width = size_spin(
            608, "Crop width the network sees (multiple of 32)"
        )
        self.frozen_blocks = int_spin(
            0,
            ENCODER_BLOCKS,
            0,
            "The encoder's first VGG blocks (from the image on) that keep "
            "the start model's weights: fewer weights to fit from a few "
            "images, and faster batches",
        )
        self.frozen_blocks.setSpecialValueText("none (train all)")
        size_row = QHBoxLayout()
        size_row.addWidget(self.input_height)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.input_width)
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        model_form.addRow("start from", self.start_from)
        model_form.addRow("checkpoint", start_row)
        model_form.addRow(self.model_label)
        model_form.addRow(self.run_label)
        model_form.addRow(self.preview)
        model_form.addRow("frozen encoder blocks", self.frozen_blocks)
        model_form.addRow("input size", size_row)
        return model_box

    def _training_box(self) -> QGroupBox:
        """Epochs, batches, optimizer, augmentation, precision,
        validation and the time budget."""
        self._optimizer_controls()
        self._validation_controls()
        train_box = QGroupBox("Training")
        train_form = QFormLayout(train_box)
        train_form.addRow("time budget", self.budget)
        train_form.addRow("epochs", self.epochs)
        train_form.addRow("batch size", self.batch_size)
        train_form.addRow("steps per epoch", self.steps_per_epoch)
        train_form.addRow("optimizer", self.optimizer)
        train_form.addRow("learning rate", self.learning_rate)
        train_form.addRow(self.augment)
        train_form.addRow(self.colour_augment)
        train_form.addRow(self.ignore_zero)
        train_form.addRow(self.balance)
        train_form.addRow(self.average)
        train_form.addRow("learning-rate schedule", self.schedule)
        train_form.addRow("seed", self.seed)
        train_form.addRow("precision", self.precision)
        train_form.addRow("validation", self.validation)
        train_form.addRow("held-out share", self.val_fraction)
        return train_box

    def _optimizer_controls(self) -> None:
        """How long and how the network learns."""
        self.epochs = int_spin(
            1,
            100_000,
            5,
            "Train until this many epochs (a resumed run counts the "
            "finished ones)",
        )
        self.batch_size = int_spin(
            1, 256, 2, "Crops per batch (lower it when memory runs out)"
        )
        self.steps_per_epoch = int_spin(1, 1_000_000, 512, "Batches per epoch")
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
        self.colour_augment = QCheckBox(
            "colour augmentation (other microscopes)"
        )
        self.colour_augment.setToolTip(
            "White balance, gamma, saturation, small hue turns that keep "
            "blue epoxy blue, slight blur and noise: a model that works on "
            "photos from other microscopes and cameras"
        )
        self.ignore_zero = QCheckBox("unlabelled pixels (0) are not trained")
        self.ignore_zero.setChecked(True)
        self.balance = QCheckBox("balance classes (rare ones weigh more)")
        self.balance.setToolTip(
            "Weigh each class's loss by how rare its labelled pixels are "
            "(at most 10x the median class)"
        )
        self.average = QCheckBox("average the weights (steadier result)")
        self.average.setToolTip(
            "Keep a moving average of the weights over about the last 100 "
            "batches: validation, checkpoints and the trained model use it. "
            "Worth it for runs of several hundred batches or more"
        )
        self.schedule = QComboBox()
        for key, text in SCHEDULE_TEXT.items():
            self.schedule.addItem(text, key)
        self.schedule.setToolTip(
            "Learning rate over the run: constant, or a short warm-up "
            "then a cosine decay to 1 %"
        )
        self.seed = int_spin(0, 2**31 - 1, 0, "Seed of crops and splits")
        self.precision = QComboBox()
        for key, text in PRECISION_TEXT.items():
            self.precision.addItem(text, key)
        self.precision.setToolTip(
            "What the network computes in while training; checkpoints are "
            "float32 either way"
        )

    def _validation_controls(self) -> None:
        """Precision, validation and the budget."""
        self.validation = QComboBox()
        for key, text in VAL_TEXT.items():
            self.validation.addItem(text, key)
        self.validation.setToolTip(
            "Per-class IoU after each epoch, on held-out pairs or on the "
            "training pairs themselves; with it, the epoch of the best "
            "mean IoU is the model you get (and the latest checkpoint)"
        )
        self.val_fraction = QDoubleSpinBox()
        self.val_fraction.setRange(0.05, 0.9)
        self.val_fraction.setSingleStep(0.05)
        self.val_fraction.setValue(0.2)
        self.val_fraction.setToolTip("Share of the ticked pairs held out")
        self.budget = BudgetRow(
            self._training_shapes, self._sizes, self.apply_proposal
        )

    def _checkpoint_box(self) -> QGroupBox:
        """Where checkpoints go and what to do when they exist."""
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
        return ck_box

    def _connect(self) -> None:
        """What refreshes the estimate and the proposal."""
        for spin in (
            self.input_height,
            self.input_width,
            self.batch_size,
            self.steps_per_epoch,
            self.epochs,
        ):
            spin.valueChanged.connect(self.budget.update_estimate)
        # what the proposal depends on
        self.frozen_blocks.valueChanged.connect(self._refresh)
        self.precision.currentIndexChanged.connect(self._refresh)
        self.budget.minutes.valueChanged.connect(self._refresh)
        self.start_from.currentIndexChanged.connect(self._on_start_changed)
        self.start_path.editingFinished.connect(self._on_start_changed)
        self.validation.currentIndexChanged.connect(self._on_validation)

    # -- reading the form ------------------------------------------------
    def start_kind(self) -> str:
        """``"new"``, ``"default"`` or ``"checkpoint"``."""
        return self.start_from.currentData()

    def set_start(self, kind: str, path: str | Path = "") -> None:
        """Choose what training starts from (``path`` for a checkpoint);
        it no longer follows the ticked labels."""
        self.defaults.pin("start")
        self._put_start((kind, str(path)))
        self._on_start_changed()

    def _put_start(self, start: tuple[str, str]) -> None:
        kind, path = start
        self.start_path.setText(path)
        self.start_from.setCurrentIndex(self.start_from.findData(kind))

    def set_validation(self, kind: str) -> None:
        """Choose ``"none"``, ``"hold out"`` or ``"training"``."""
        self.validation.setCurrentIndex(self.validation.findData(kind))

    def set_precision(self, precision: str) -> None:
        """Choose ``"auto"``, ``"float32"`` or ``"bfloat16"``."""
        self.precision.setCurrentIndex(self.precision.findData(precision))

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
        return self._prefix_of(self.start_kind(), self.start_path.text())

    @staticmethod
    def _prefix_of(kind: str, path: str) -> Path | None:
        if kind in (START_DEFAULT, START_SANDSTONE):
            return model_prefix(kind)  # as `thinseg train --base NAME`
        if kind == START_CHECKPOINT:
            if not path.strip():
                raise ThinsegError("choose the checkpoint to start from")
            return checkpoint_prefix(path.strip())
        return None

    def settings(self) -> TrainSettings:
        """The training settings of the form (validated)."""
        height, width = self.input_height.value(), self.input_width.value()
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
            colour_augment=self.colour_augment.isChecked(),
            ignore_zero=self.ignore_zero.isChecked(),
            seed=self.seed.value(),
            precision=self.precision.currentData(),
            balance_classes=self.balance.isChecked(),
            schedule=self.schedule.currentData(),
            minutes=self.budget.budget(),
            frozen_blocks=self._frozen_blocks(),
            average_weights=(
                AVERAGE_MOMENTUM if self.average.isChecked() else 0.0
            ),
        )

    def _frozen_blocks(self) -> int:
        # a new model has no weights to keep (the box is disabled)
        if self.start_kind() == START_NEW:
            return 0
        return self.frozen_blocks.value()

    # -- the time budget ---------------------------------------------------
    def _training_shapes(self) -> list[tuple[int, int]]:
        return [
            tuple(layer_array(image).shape[:2])
            for image, ok, labels, _ in self.pairs_table.rows()
            if ok and labels is not None
        ]

    def _sizes(self) -> tuple[int, int, int, int, int, str, int]:
        return (
            self.input_height.value(),
            self.input_width.value(),
            self.batch_size.value(),
            self.steps_per_epoch.value(),
            self.epochs.value(),
            self.precision.currentData(),
            self._frozen_blocks(),
        )

    def apply_proposal(self, proposal, force: bool = True) -> None:
        """Put a :class:`~napari_thinseg.training.recipe.Proposal` into the
        form
        (the crop size only without a start model, as
        :func:`~napari_thinseg.training.settings.crop_size` ranks them);
        ``force``: over the user's sizes too, which follow the proposals
        again (Fit)."""
        names = ["batch_size", "steps_per_epoch", "epochs"]
        if self._start_config is None:
            names = ["input_height", "input_width", *names]
        for name in names:
            self.defaults.offer(name, getattr(proposal, name), force)

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
        scheme = dataset_scheme([lb for _, lb, _ in chosen])
        for _, labels, _ in chosen:
            if layer_array(labels).ndim != 2:
                raise ThinsegError(
                    f"{labels.name}: training needs 2D labels layers"
                )
        pairs = layer_pairs(chosen)
        self._refresh()  # the labels as they are painted now
        start_prefix = self.start_prefix()
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
            preview=self.preview.isChecked(),
            given=self.given(settings),
            finetune=self._finetune,
        )

    # -- form reactions ----------------------------------------------------
    def _on_validation(self, *_) -> None:
        self.val_fraction.setEnabled(
            self.validation.currentData() == VAL_HOLD_OUT
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
