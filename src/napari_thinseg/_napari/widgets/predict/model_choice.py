"""The model choice the Predict and Whole slide widgets share: a shipped
model (default, sandstone), the model trained last in this session, or a
checkpoint, with a line saying what the chosen model is."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QComboBox, QFileDialog, QLabel, QLineEdit

from ....errors import ThinsegError
from ....model.cache import checkpoint_prefix, trained_models
from ....model.checkpoints import default_model_prefix, model_prefix
from ...notify import one_line, reports_errors
from .._common import button
from .job import ModelSource, file_source, trained_source

MODEL_DEFAULT, MODEL_SANDSTONE, MODEL_TRAINED, MODEL_CHECKPOINT = (
    "default",
    "sandstone",
    "trained",
    "checkpoint",
)
MODEL_TEXT = {
    MODEL_DEFAULT: "default model (gray-level classes)",
    MODEL_SANDSTONE: "sandstone model (minerals)",
    MODEL_TRAINED: "model just trained",
    MODEL_CHECKPOINT: "checkpoint…",
}


class ModelChoice:
    """A mixin of a ``QWidget``: call :meth:`_build_model_choice` where the
    controls are made (``model_choice``, ``checkpoint``, ``browse_button``,
    ``model_label``, to lay out), and :meth:`_follow_model_choice` once
    the widget is built."""

    def _build_model_choice(self) -> None:
        self.model_choice = QComboBox()
        for key, text in MODEL_TEXT.items():
            self.model_choice.addItem(text, key)
        self.checkpoint = QLineEdit()
        self.checkpoint.setPlaceholderText("P_config.json or prefix P")
        self.browse_button = button(
            "Browse…", self.browse, "Choose a checkpoint config"
        )
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)

    def _follow_model_choice(self) -> None:
        self.model_choice.currentIndexChanged.connect(self._on_model_changed)
        self.checkpoint.editingFinished.connect(self._on_model_changed)
        trained_models.connect(self._on_trained)
        self.model_choice.setCurrentIndex(
            self.model_choice.findData(self._initial_choice())
        )
        self._on_model_changed()

    @staticmethod
    def _initial_choice() -> str:
        try:
            default_model_prefix()
        except ThinsegError:
            return MODEL_TRAINED if len(trained_models) else MODEL_CHECKPOINT
        return MODEL_DEFAULT

    def model_kind(self) -> str:
        """``"default"``, ``"sandstone"``, ``"trained"`` or
        ``"checkpoint"``."""
        return self.model_choice.currentData()

    def set_model(self, kind: str, path: str | Path = "") -> None:
        """Choose the model (``path`` for a checkpoint)."""
        if path:
            self.checkpoint.setText(str(path))
        self.model_choice.setCurrentIndex(self.model_choice.findData(kind))
        self._on_model_changed()

    def _prefix(self) -> Path:
        kind = self.model_kind()
        if kind in (MODEL_DEFAULT, MODEL_SANDSTONE):
            try:
                return model_prefix(kind)  # as `thinseg predict --model`
            except ThinsegError:
                raise ThinsegError(
                    f"the {kind} model is not installed: choose a "
                    "checkpoint, or train a model in the Train widget"
                ) from None
        text = self.checkpoint.text().strip()
        if not text:
            raise ThinsegError("choose a checkpoint (P_config.json) first")
        return checkpoint_prefix(text)

    def model_source(self) -> ModelSource:
        """The chosen model, loaded (trained, cached) or to load.

        Raises
        ------
        ThinsegError
            No such model: default not installed, nothing trained yet, a
            checkpoint that does not exist.
        """
        if self.model_kind() == MODEL_TRAINED:
            return trained_source()
        return file_source(self._prefix())

    def _on_model_changed(self, *_) -> None:
        kind = self.model_kind()
        self.checkpoint.setEnabled(kind == MODEL_CHECKPOINT)
        self.browse_button.setEnabled(kind == MODEL_CHECKPOINT)
        if kind == MODEL_CHECKPOINT and not self.checkpoint.text().strip():
            self.model_label.setText("choose a checkpoint config")
            return
        try:
            source = self.model_source()
        except ThinsegError as exc:
            self.model_label.setText(one_line(exc))
            return
        config = source.config
        self.model_label.setText(
            f"{source.name}: {config.n_classes} classes "
            f"('{config.class_scheme.name}'), input "
            f"{config.input_height}×{config.input_width}"
        )

    def _on_trained(self) -> None:
        if self.model_kind() == MODEL_TRAINED:
            self._on_model_changed()

    @reports_errors
    def browse(self) -> None:
        """Choose a checkpoint with a file dialog."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Predict with checkpoint",
            self.checkpoint.text(),
            "Checkpoint configs (*_config.json);;Keras models (*.keras);;"
            "All files (*)",
        )
        if path:
            self.set_model(MODEL_CHECKPOINT, path)
