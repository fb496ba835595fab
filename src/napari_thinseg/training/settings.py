"""How to train: :class:`TrainSettings`, checked when made (one
message per bad value, for the GUI and the CLI alike)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ThinsegError
from ..model.backend import PRECISIONS, resolve_precision
from ..model.vgg_unet import ENCODER_BLOCKS
from .recipe import OPTIMIZERS, SCHEDULES


@dataclass
class TrainSettings:
    """How to train (keras-segmentation's defaults where it has one).

    ``learning_rate`` None means the optimizer's classic default: 1.0 for
    adadelta (as in Keras 2, which keras-segmentation used; Keras 3's 0.001
    barely moves), 0.001 for adam and rmsprop, 0.01 for sgd. ``precision``
    is what the network computes in (``auto``: bfloat16 on CPUs with
    native bfloat16, float16 on a GPU, else float32); weights and
    checkpoints stay float32. ``colour_augment`` adds the colour casts of
    other microscopes (:func:`~napari_thinseg.dataset.augment.colour_cast`).
    ``balance_classes``,
    ``schedule``, ``keep_best`` and ``patience`` are the recipe's options
    (:mod:`.recipe`); ``keep_best`` and ``patience`` need validation pairs.
    ``frozen_blocks``: the encoder's first N VGG blocks (of 4) keep the
    weights training starts from (fewer weights to fit from few images).
    ``average_weights``: a momentum (0.99, say; 0 is off) for a moving
    average of the weights over the steps, which validation sees,
    checkpoints hold and training returns (:func:`.recipe.averaged_weights`).
    ``minutes`` stops training at that budget of wall time (after the
    batch in progress; :func:`.recipe.propose` gives sizes that fit it);
    an epoch the budget cuts short ends there, validated and saved like
    any other, so a budget always leaves a model.
    ``distill``: with soft targets (a fine-tune from strokes,
    :mod:`~napari_thinseg.strokes.finetune`), the weight of the unpainted
    pixels' term
    (:func:`.recipe.distillation_loss`); ``stroke_crops``: the share of
    crops centred on a labelled pixel; ``frozen_norms`` keeps the
    decoder's batch normalisations as the start model has them (the
    statistics of a few small crops would shift the whole model).
    ``devices``: None trains on every GPU when there are several (a
    ``MirroredStrategy``: each batch split across them), 1 on one device,
    N on N (GPUs, else logical CPUs); the batch size must split evenly.
    """

    input_height: int = 416
    input_width: int = 608
    epochs: int = 5
    batch_size: int = 2
    steps_per_epoch: int = 512
    optimizer: str = "adadelta"
    learning_rate: float | None = None
    augment: bool = False
    colour_augment: bool = False
    ignore_zero: bool = True
    val_crops: int = 16
    seed: int = 0
    encoder_weights: str | None = None
    precision: str = "auto"
    balance_classes: bool = False
    schedule: str = "constant"
    keep_best: bool = True
    patience: int | None = None
    minutes: float | None = None
    devices: int | None = None
    frozen_blocks: int = 0
    average_weights: float = 0.0
    distill: float = 0.0
    stroke_crops: float = 0.0
    frozen_norms: bool = False

    def __post_init__(self):
        for name in ("epochs", "batch_size", "steps_per_epoch"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ThinsegError(
                    f"{name} must be a positive integer, got {v}"
                )
        if self.optimizer not in OPTIMIZERS:
            raise ThinsegError(
                f"unknown optimizer {self.optimizer!r} "
                f"(use {', '.join(OPTIMIZERS)})"
            )
        if self.schedule not in SCHEDULES:
            raise ThinsegError(
                f"unknown schedule {self.schedule!r} "
                f"(use {', '.join(SCHEDULES)})"
            )
        if self.minutes is not None and not self.minutes > 0:
            raise ThinsegError(
                f"the time budget must be positive, got {self.minutes}"
            )
        if self.patience is not None and (
            not isinstance(self.patience, int) or self.patience < 1
        ):
            raise ThinsegError(
                f"patience must be a positive integer, got {self.patience}"
            )
        if self.frozen_blocks not in range(ENCODER_BLOCKS + 1):
            raise ThinsegError(
                f"frozen blocks must be 0 to {ENCODER_BLOCKS} (the "
                f"encoder's VGG blocks), got {self.frozen_blocks}"
            )
        if not self.distill >= 0:
            raise ThinsegError(
                f"the distillation weight must be >= 0, got {self.distill}"
            )
        if not 0 <= self.stroke_crops <= 1:
            raise ThinsegError(
                "the share of crops on strokes must be 0 to 1, got "
                f"{self.stroke_crops}"
            )
        if not 0 <= self.average_weights < 1:
            raise ThinsegError(
                "weight averaging takes a momentum from 0 (off) to below 1, "
                f"such as 0.99; got {self.average_weights}"
            )
        if self.precision not in PRECISIONS:
            resolve_precision(self.precision)  # its one-line refusal
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ThinsegError(
                f"learning rate must be positive, got {self.learning_rate}"
            )


KERAS_SEGMENTATION_CROP = (416, 608)
"""keras-segmentation's ``input_height`` and ``input_width``."""


def crop_size(given=(None, None), start_config=None, proposal=None):
    """``(height, width)`` of the crops a training (not a fine-tune from
    strokes, whose recipe sizes its own) learns from, side by side: the
    size given (a flag, or the Train tab's boxes once edited); else the
    start model's own (its batch statistics were learnt at that size;
    the VGG-UNet takes any size); else what a time budget proposes
    (:func:`.recipe.propose`); else keras-segmentation's 416 x 608. The
    rule of ``thinseg train`` and the Train tab alike."""
    sources = [
        given,
        (start_config.input_height, start_config.input_width)
        if start_config is not None
        else (None, None),
        (proposal.input_height, proposal.input_width)
        if proposal is not None
        else (None, None),
        KERAS_SEGMENTATION_CROP,
    ]
    return tuple(
        next(int(s[k]) for s in sources if s[k] is not None) for k in (0, 1)
    )
