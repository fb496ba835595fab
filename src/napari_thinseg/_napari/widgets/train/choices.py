"""The choices of the Train form: what training starts from, validation,
what to do with existing checkpoints, and its spin boxes."""

from __future__ import annotations

from qtpy.QtWidgets import QSpinBox

from ....model.config import MAX_INPUT_SIDE

START_NEW, START_DEFAULT, START_SANDSTONE, START_CHECKPOINT = (
    "new",
    "default",
    "sandstone",
    "checkpoint",
)
START_TEXT = {
    START_NEW: "new random model",
    START_DEFAULT: "default model (gray-level classes)",
    START_SANDSTONE: "sandstone model (minerals)",
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
SCHEDULE_TEXT = {
    "constant": "constant",
    "cosine": "warm-up, then cosine decay",
}
SIZE_STEP = 32
DEFAULT_NAME = "thinseg"


def size_spin(value: int, tip: str) -> QSpinBox:
    """A crop side: multiples of 32 (an edited value is snapped)."""
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


def int_spin(lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    """An integer from ``lo`` to ``hi``, starting at ``value``."""
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin
