"""Train the VGG-UNet from (image, labels) pairs.

Pairs come from open napari layers, dataset folders or arrays. Each step
draws random crops at the model's input size from images of any size
(:mod:`.augment`: weighted by how many labelled pixels they hold, with
flips, 90 degree rotations, mild scale and colour jitter when augmenting).
Label 0 means
unlabelled and is left out of the loss, so a few brush strokes are valid
training data.

:func:`train` is a generator: it yields a :class:`TrainEvent` after every
batch and every epoch, writes ``P_config.json`` and one ``P.<epoch>``
checkpoint per finished epoch (atomically), and returns a
:class:`TrainResult`. Stop (a ``stop()`` callable returning True, or closing
the generator) takes effect within one batch and keeps the last finished
epoch's checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .augment import CropSampler, validation_crops
from .dataset import Pair, check_pairs
from .errors import ThinsegError
from .imaging.resize import resize_nearest
from .metrics import confusion_matrix, iou_from_confusion
from .model import checkpoints as ck
from .model.backend import (
    PRECISIONS,
    dtype_policy,
    resolve_precision,
    tensorflow,
)
from .model.config import ModelConfig
from .model.vgg_unet import build, compute_dtype, preprocess, rebuild
from .model.weights import load_weights as load_weights_into
from .progress import Progress
from .schemes import ClassScheme

OPTIMIZERS = ("adadelta", "adam", "sgd", "rmsprop")


@dataclass
class TrainSettings:
    """How to train (keras-segmentation's defaults where it has one).

    ``learning_rate`` None means the optimizer's classic default: 1.0 for
    adadelta (as in Keras 2, which keras-segmentation used; Keras 3's 0.001
    barely moves), 0.001 for adam and rmsprop, 0.01 for sgd. ``precision``
    is what the network computes in (``auto``: bfloat16 on CPUs with
    native bfloat16, float16 on a GPU, else float32); weights and
    checkpoints stay float32.
    """

    input_height: int = 416
    input_width: int = 608
    epochs: int = 5
    batch_size: int = 2
    steps_per_epoch: int = 512
    optimizer: str = "adadelta"
    learning_rate: float | None = None
    augment: bool = False
    ignore_zero: bool = True
    val_crops: int = 16
    seed: int = 0
    encoder_weights: str | None = None
    precision: str = "auto"

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
        if self.precision not in PRECISIONS:
            resolve_precision(self.precision)  # its one-line refusal
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise ThinsegError(
                f"learning rate must be positive, got {self.learning_rate}"
            )


@dataclass(frozen=True)
class TrainEvent(Progress):
    """Progress of training: ``step``/``total`` count batches of the whole
    run; ``epoch`` is 0-based like keras-segmentation's checkpoints."""

    epoch: int = 0
    batch: int = 0
    loss: float = float("nan")
    epoch_end: bool = False
    val_iou: tuple | None = None
    val_mean_iou: float | None = None
    checkpoint: str | None = None


@dataclass
class TrainResult:
    """The trained model, its config and what happened."""

    model: object
    config: ModelConfig
    history: list[dict] = field(default_factory=list)
    stopped: bool = False
    checkpoint: str | None = None


def _loss(ignore_zero: bool):
    tensorflow()
    import keras
    from keras import ops

    if not ignore_zero:
        return keras.losses.SparseCategoricalCrossentropy()

    def masked_sparse_categorical_crossentropy(y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        mask = ops.cast(y_true > 0, y_pred.dtype)
        ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        # mean over labelled pixels only: sparse strokes weigh in fully
        return ops.sum(ce * mask, axis=-1) / ops.maximum(
            ops.sum(mask, axis=-1), 1.0
        )

    return masked_sparse_categorical_crossentropy


def make_optimizer(name: str, learning_rate: float | None):
    tensorflow()
    import keras

    defaults = {"adadelta": 1.0, "adam": 1e-3, "rmsprop": 1e-3, "sgd": 1e-2}
    lr = defaults[name] if learning_rate is None else learning_rate
    cls = {
        "adadelta": keras.optimizers.Adadelta,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }[name]
    return cls(learning_rate=lr)


def _validate(model, config, x_val, y_val, batch_size):
    oh, ow, n = config.output_height, config.output_width, config.n_classes
    cm = np.zeros((n, n), np.int64)
    for i in range(0, len(x_val), batch_size):
        xb = np.stack([preprocess(img) for img in x_val[i : i + batch_size]])
        probs = np.asarray(model.predict_on_batch(xb)).reshape(-1, oh, ow, n)
        if config.trained_on.get("ignore_zero"):
            pred = probs[..., 1:].argmax(-1) + 1
        else:
            pred = probs.argmax(-1)
        for p, t in zip(pred, y_val[i : i + batch_size], strict=True):
            t = resize_nearest(t, oh, ow)
            cm += confusion_matrix(t[t > 0], p[t > 0], n)
    iou = iou_from_confusion(cm)
    present = cm.sum(1) > 0
    mean = float(np.nanmean(iou[present])) if present.any() else float("nan")
    return tuple(None if np.isnan(v) else float(v) for v in iou), mean


# -- training ----------------------------------------------------------------
def train(
    pairs: Sequence[Pair],
    scheme: ClassScheme,
    settings: TrainSettings | None = None,
    validation: Sequence[Pair] = (),
    checkpoints_path: str | Path | None = None,
    model=None,
    config: ModelConfig | None = None,
    load_weights: str | Path | None = None,
    auto_resume: bool = False,
    overwrite: bool = False,
    n_classes: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> Generator[TrainEvent, None, TrainResult]:
    """Train a VGG-UNet; see the module docstring.

    Parameters
    ----------
    pairs, validation
        Training and validation (image, labels) pairs.
    scheme
        The classes; ``n_classes`` defaults to ``scheme.n_classes``.
    settings
        Sizes, epochs, optimizer, augmentation...
    checkpoints_path
        Prefix ``P`` for ``P_config.json`` and ``P.<epoch>``; existing
        checkpoints are refused unless ``auto_resume`` or ``overwrite``.
    model, config
        Fine-tune this model (e.g. the default model) instead of a new one.
    load_weights
        A weights file to start from.
    auto_resume
        Continue from the latest epoch under ``checkpoints_path``.
    stop
        Polled before every batch; True stops training.
    """
    settings = settings or TrainSettings()
    n_classes = n_classes or scheme.n_classes
    if n_classes < scheme.n_classes:
        raise ThinsegError(
            f"n_classes {n_classes} is too small for scheme {scheme.name!r} "
            f"(ids up to {scheme.max_id})"
        )
    if model is not None and config is not None:
        if config.n_classes != n_classes:
            raise ThinsegError(
                f"the model has {config.n_classes} classes, the labels' "
                f"scheme needs {n_classes}"
            )
        settings.input_height = config.input_height
        settings.input_width = config.input_width
    pairs = check_pairs(pairs, n_classes)
    validation = check_pairs(validation, n_classes) if validation else []
    sampler = CropSampler(pairs, settings, settings.ignore_zero)

    new_config = ModelConfig(
        n_classes,
        settings.input_height,
        settings.input_width,
        scheme=scheme.to_dict(),
        trained_on={
            "images": [p.name for p in pairs][:200],
            "n_images": len(pairs),
            "ignore_zero": settings.ignore_zero,
            "optimizer": settings.optimizer,
            "augment": settings.augment,
            "batch_size": settings.batch_size,
            "steps_per_epoch": settings.steps_per_epoch,
        },
    )
    plan = ck.plan_checkpoints(
        checkpoints_path, new_config, auto_resume, overwrite
    )
    start_epoch, prefix = plan.start_epoch, plan.prefix
    # after the checks: "auto" asks TensorFlow whether there is a GPU
    precision = resolve_precision(settings.precision)
    new_config.trained_on["precision"] = precision

    if model is None:
        tensorflow()
        import keras

        # same seed, same initial weights and crops: reproducible runs
        keras.utils.set_random_seed(settings.seed)
        with dtype_policy(precision):
            model = build(new_config, settings.encoder_weights)
    elif compute_dtype(model) != precision:
        # the same weights in a network computing in ``precision``
        model = rebuild(
            model,
            new_config,
            new_config.input_height,
            new_config.input_width,
            precision,
        )
    if load_weights:
        load_weights_into(model, load_weights)
    if plan.resume_from is not None:
        load_weights_into(model, plan.resume_from)
    model.compile(
        optimizer=make_optimizer(settings.optimizer, settings.learning_rate),
        loss=_loss(settings.ignore_zero),
    )
    if prefix is not None:
        if plan.replace:
            ck.remove_checkpoints(prefix)
        ck.write_config(prefix, new_config)
    if validation:
        x_val, y_val = validation_crops(
            validation,
            settings.input_height,
            settings.input_width,
            settings.val_crops,
        )

    result = TrainResult(model, new_config)
    total = (settings.epochs - start_epoch) * settings.steps_per_epoch
    done = 0
    for epoch in range(start_epoch, settings.epochs):
        losses = []
        for b in range(settings.steps_per_epoch):
            if stop is not None and stop():
                result.stopped = True
                return result
            x, y = sampler.batch()
            loss = float(np.asarray(model.train_on_batch(x, y)).ravel()[0])
            if not np.isfinite(loss):
                raise ThinsegError(
                    f"training diverged at epoch {epoch}, batch {b + 1} "
                    "(loss is NaN); lower the learning rate"
                )
            losses.append(loss)
            done += 1
            yield TrainEvent(
                done,
                total,
                f"epoch {epoch + 1}/{settings.epochs}",
                epoch=epoch,
                batch=b + 1,
                loss=loss,
            )
        record = {"epoch": epoch, "loss": float(np.mean(losses))}
        val_iou = val_mean = None
        if validation:
            val_iou, val_mean = _validate(
                model, new_config, x_val, y_val, settings.batch_size
            )
            record.update(val_iou=val_iou, val_mean_iou=val_mean)
        saved = None
        if prefix is not None:
            saved = str(ck.save_checkpoint(prefix, epoch, model))
            result.checkpoint = saved
        result.history.append(record)
        yield TrainEvent(
            done,
            total,
            f"epoch {epoch + 1}/{settings.epochs} done",
            epoch=epoch,
            batch=settings.steps_per_epoch,
            loss=record["loss"],
            epoch_end=True,
            val_iou=val_iou,
            val_mean_iou=val_mean,
            checkpoint=saved,
        )
    return result
