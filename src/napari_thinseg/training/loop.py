"""Train the VGG-UNet from (image, labels) pairs.

Pairs come from open napari layers, dataset folders or arrays. Each step
draws random crops at the model's input size from images of any size
(:mod:`..dataset.augment`: weighted by how many labelled pixels they hold, with
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

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dataset.augment import CropSampler, validation_crops
from ..dataset.folders import Pair, check_pairs
from ..errors import ThinsegError
from ..imaging.convert import describe_views
from ..imaging.resize import resize_nearest
from ..inference.metrics import confusion_matrix, iou_from_confusion
from ..model import checkpoints as ck
from ..model.backend import (
    dtype_policy,
    outer_strategy,
    replica_devices,
    replica_scope,
    resolve_precision,
    split_batch,
    tensorflow,
)
from ..model.config import ModelConfig
from ..model.transfer import (
    Transfer,
    class_mapping,
    is_identity,
    transfer_weights,
)
from ..model.vgg_unet import (
    build,
    compute_dtype,
    freeze_encoder,
    preprocess,
    rebuild,
)
from ..model.weights import load_weights as load_weights_into
from ..prefetch import map_ahead
from ..progress import Progress
from ..schemes import ClassScheme
from .recipe import (
    BestEpoch,
    averaged_weights,
    class_weights,
    distillation_loss,
    loss_function,
    make_optimizer,
    use_averaged_weights,
)
from .settings import TrainSettings

__all__ = ["TrainEvent", "TrainResult", "TrainSettings", "train"]


@dataclass(frozen=True)
class TrainEvent(Progress):
    """Progress of training: ``step``/``total`` count batches of the whole
    run; ``epoch`` is 0-based like keras-segmentation's checkpoints;
    ``budget_left``: seconds to the time budget (None without one)."""

    epoch: int = 0
    batch: int = 0
    loss: float = float("nan")
    epoch_end: bool = False
    val_iou: tuple | None = None
    val_mean_iou: float | None = None
    checkpoint: str | None = None
    best: bool = False
    budget_left: float | None = None


@dataclass
class TrainResult:
    """The trained model, its config and what happened."""

    model: object
    config: ModelConfig
    history: list[dict] = field(default_factory=list)
    stopped: bool = False
    checkpoint: str | None = None
    transfer: Transfer | None = None
    best_epoch: int | None = None
    budget_ended: bool = False


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
    soft_targets: Sequence[np.ndarray | None] | None = None,
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
        Start from this model (e.g. a shipped one) instead of a new one,
        trained on crops of ``settings``' input size (the network is
        fully convolutional). With the same classes it is fine-tuned as
        it is; with other classes (more, fewer, renamed) a new network of
        the labels' scheme takes all its weights but the output layer's,
        and the classes both have (by name) keep their output weights
        (:mod:`~napari_thinseg.model.transfer`; ``TrainResult.transfer`` says
        which).
    load_weights
        A weights file to start from.
    auto_resume
        Continue from the latest epoch under ``checkpoints_path``.
    stop
        Polled before every batch; True stops training.
    soft_targets
        Per pair, the start model's class probabilities ``(H, W,
        n_classes)`` that its unpainted pixels learn, weighted by
        ``settings.distill`` (:mod:`~napari_thinseg.strokes.soft_targets`).
    """
    settings = settings or TrainSettings()
    n_classes = n_classes or scheme.n_classes
    pairs, validation = _checked_pairs(pairs, validation, scheme, n_classes)
    base, model = _start_network(model, config, scheme, n_classes, pairs)
    distilled = bool(settings.distill) and soft_targets is not None
    sampler = CropSampler(
        pairs,
        settings,
        settings.ignore_zero,
        soft=soft_targets if distilled else None,
        stroke_crops=settings.stroke_crops,
    )
    new_config = _new_config(pairs, scheme, settings, n_classes, distilled)
    plan = ck.plan_checkpoints(
        checkpoints_path, new_config, auto_resume, overwrite
    )
    started = model is not None or base is not None or bool(load_weights)
    _check_frozen(settings, started or plan.resume_from is not None)
    # after the checks: "auto" asks TensorFlow whether there is a GPU
    precision = resolve_precision(settings.precision)
    new_config.trained_on["precision"] = precision
    total = (settings.epochs - plan.start_epoch) * settings.steps_per_epoch
    weights = _balanced_weights(settings, pairs, n_classes, new_config)
    compile_network = _compiler(settings, distilled, weights, total)
    model, transfer = _network(
        model,
        base,
        new_config,
        settings,
        precision,
        [load_weights, plan.resume_from],
        compile_network,
    )
    if plan.prefix is not None:
        if plan.replace:
            ck.remove_checkpoints(plan.prefix)
        ck.write_config(plan.prefix, new_config)
    val = None
    if validation:
        size = (settings.input_height, settings.input_width)
        val = validation_crops(validation, *size, settings.val_crops)
    result = TrainResult(model, new_config, transfer=transfer)
    return (
        yield from _epochs(result, sampler, settings, plan, total, val, stop)
    )


def _balanced_weights(settings, pairs, n_classes, new_config):
    """Class weights of the labels when ``balance_classes`` (recorded in
    the config), else None."""
    if not settings.balance_classes:
        return None
    weights = class_weights(
        [p.labels for p in pairs], n_classes, settings.ignore_zero
    )
    new_config.trained_on["class_weights"] = [
        round(float(w), 4) for w in weights
    ]
    return weights


def _compiler(settings, distilled: bool, weights, total: int):
    """A function that compiles a network with the settings' optimizer
    (its schedule over ``total`` steps) and loss."""

    def compile_network(network) -> None:
        network.compile(
            optimizer=make_optimizer(
                settings.optimizer,
                settings.learning_rate,
                settings.schedule,
                total,
                settings.average_weights,
            ),
            loss=distillation_loss(settings.distill)
            if distilled
            else loss_function(settings.ignore_zero, weights),
        )

    return compile_network


def _checked_pairs(pairs, validation, scheme, n_classes):
    """The training and validation pairs, checked against the classes and
    each other's views."""
    if n_classes < scheme.n_classes:
        raise ThinsegError(
            f"n_classes {n_classes} is too small for scheme {scheme.name!r} "
            f"(ids up to {scheme.max_id})"
        )
    pairs = check_pairs(pairs, n_classes)
    validation = check_pairs(validation, n_classes) if validation else []
    channels = pairs[0].image.shape[-1]
    if validation and validation[0].image.shape[-1] != channels:
        raise ThinsegError(
            f"validation {validation[0].where}: "
            f"{describe_views(validation[0].image)}, the training images: "
            f"{describe_views(pairs[0].image)}"
        )
    return pairs, validation


def _start_network(model, config, scheme, n_classes, pairs):
    """``(base, model)``: the start model trained as it is (``base``
    None), or, with other classes or another input, ``base = (model, its
    scheme, its class count)`` whose weights a new network takes
    (``model`` None)."""
    if model is None or config is None:
        return None, model
    channels = pairs[0].image.shape[-1]
    if config.input_channels > channels:
        raise ThinsegError(
            "the base model takes "
            f"{describe_views(config.input_channels)}; these "
            f"images are {describe_views(pairs[0].image)}: give the "
            "crossed-polarised images too, or start from an RGB model"
        )
    mapping = class_mapping(
        config.class_scheme, config.n_classes, scheme, n_classes
    )
    if (
        is_identity(mapping, config.n_classes, n_classes)
        and config.input_channels == channels
    ):
        return None, model
    return (model, config.class_scheme, config.n_classes), None


def _new_config(pairs, scheme, settings, n_classes, distilled):
    """The trained model's config, with what it was trained on."""
    trained_on = {
        "images": [p.name for p in pairs][:200],
        "n_images": len(pairs),
        **{name: getattr(settings, name) for name in RECORDED_SETTINGS},
    }
    if distilled:
        trained_on["distill"] = settings.distill
    for name in ("stroke_crops", "frozen_blocks", "average_weights"):
        if getattr(settings, name):
            trained_on[name] = getattr(settings, name)
    return ModelConfig(
        n_classes,
        settings.input_height,
        settings.input_width,
        pairs[0].image.shape[-1],
        scheme=scheme.to_dict(),
        trained_on=trained_on,
    )


RECORDED_SETTINGS = (
    "ignore_zero",
    "optimizer",
    "augment",
    "colour_augment",
    "batch_size",
    "steps_per_epoch",
    "schedule",
    "balance_classes",
)
"""The settings every config records in ``trained_on``."""


def _check_frozen(settings, started: bool) -> None:
    """Frozen encoder blocks keep the weights training starts from: refuse
    them on random weights."""
    started = started or settings.encoder_weights is not None
    if settings.frozen_blocks and not started:
        # random weights kept fixed would only slow learning
        raise ThinsegError(
            "frozen encoder blocks keep the weights training starts "
            "from: start from a model (--base), --load_weights or "
            "--init imagenet"
        )


def _network(
    model, base, new_config, settings, precision, weight_files, compile_it
):
    """``(network, transfer)``: the network that trains, on every device
    (one: as it is), computing in ``precision`` at the crop size; a new
    one (``base = (model, scheme, n_classes)``'s weights transferred, or
    the settings' initial ones), or ``model`` rebuilt where it must be;
    ``weight_files`` (None skipped) loaded into it in turn, its encoder
    frozen as the settings say, compiled by ``compile_it``."""
    # a strategy the caller opened (several machines) rules; else ours
    outer = outer_strategy()
    replicas = [] if outer else replica_devices(settings.devices)
    n_replicas = outer.num_replicas_in_sync if outer else len(replicas)
    if n_replicas > 1:
        if settings.batch_size % n_replicas:
            raise ThinsegError(
                f"batch size {settings.batch_size} does not split over "
                f"{n_replicas} devices: use a multiple of {n_replicas}"
            )
        new_config.trained_on["replicas"] = n_replicas
    transfer = None
    with replica_scope(replicas):
        if model is None:
            model, transfer = _new_network(
                base, new_config, settings, precision
            )
        elif (
            n_replicas > 1
            or compute_dtype(model) != precision
            or model.input_shape[1:3]
            != (settings.input_height, settings.input_width)
        ):
            # the same weights in a network of the crop size computing in
            # ``precision`` (the VGG-UNet is fully convolutional)
            model = rebuild(
                model,
                new_config,
                new_config.input_height,
                new_config.input_width,
                precision,
            )
        for path in weight_files:
            if path:
                load_weights_into(model, path)
        freeze_encoder(model, settings.frozen_blocks, settings.frozen_norms)
        compile_it(model)
    return model, transfer


def _new_network(base, new_config, settings, precision):
    """A new network of ``new_config``, seeded, with ``base``'s weights
    transferred where given; and the transfer."""
    tensorflow()
    import keras

    # same seed, same initial weights and crops: reproducible runs
    keras.utils.set_random_seed(settings.seed)
    with dtype_policy(precision):
        model = build(new_config, None if base else settings.encoder_weights)
    if base is None:
        return model, None
    base_model, base_scheme, base_classes = base
    scheme = new_config.class_scheme
    transfer = transfer_weights(base_model, base_scheme, model, scheme)
    record = {
        "from_classes": base_classes,
        "kept": {str(t): s for t, s in transfer.kept.items()},
    }
    if transfer.channels:
        record["from_channels"] = transfer.channels[0]
    new_config.trained_on["transfer"] = record
    return model, transfer


def _epochs(result, sampler, settings, plan, total, val, stop):
    """Train ``result.model`` epoch by epoch, yielding a
    :class:`TrainEvent` per batch and per epoch; returns ``result``."""
    model, prefix = result.model, plan.prefix
    # with validation, the best epoch is what training gives: only better
    # epochs are saved (so the latest checkpoint is the best one) and its
    # weights come back at the end
    keep_best = settings.keep_best and val is not None
    best = BestEpoch(settings.patience if val is not None else None)
    best_weights = None
    # the next batch is cropped and augmented while the network trains on
    # this one (one thread, in order: the same crops as a plain loop)
    batches = map_ahead(lambda _: sampler.batch(), range(total))
    budget = Budget(settings.minutes)
    try:
        done = 0
        for epoch in range(plan.start_epoch, settings.epochs):
            losses = []
            for b in range(settings.steps_per_epoch):
                if stop is not None and stop():
                    result.stopped = True
                    return result
                if budget.ended():
                    result.stopped = result.budget_ended = True
                    break
                x, y = next(batches)
                if done:
                    # the first batch builds the step from plain arrays
                    # (Keras cannot trace it from per-device parts); it
                    # runs whole on every device, which sums the same
                    x, y = split_batch(model.distribute_strategy, x, y)
                losses.append(_step(model, x, y, epoch, b))
                done += 1
                yield TrainEvent(
                    done,
                    total,
                    f"epoch {epoch + 1}/{settings.epochs}",
                    epoch=epoch,
                    batch=b + 1,
                    loss=losses[-1],
                    budget_left=budget.left(),
                )
            if not losses:
                break  # the budget ended with the epoch before
            record = {"epoch": epoch, "loss": float(np.mean(losses))}
            if len(losses) < settings.steps_per_epoch:
                record["steps"] = len(losses)  # cut short by the budget
            # validated, saved and kept as averaged (with averaging)
            with averaged_weights(model):
                if val is not None:
                    val_iou, val_mean = _validate(
                        model, result.config, *val, settings.batch_size
                    )
                    record.update(val_iou=val_iou, val_mean_iou=val_mean)
                improved = best.update(epoch, record.get("val_mean_iou"))
                saved = None
                if prefix is not None and (improved or not keep_best):
                    saved = str(ck.save_checkpoint(prefix, epoch, model))
                    result.checkpoint = saved
                if improved and keep_best:
                    best_weights = model.get_weights()
                    result.best_epoch = epoch
            result.history.append(record)
            short = " (the time budget ended it)" if "steps" in record else ""
            yield TrainEvent(
                done,
                total,
                f"epoch {epoch + 1}/{settings.epochs} done{short}",
                epoch=epoch,
                batch=len(losses),
                loss=record["loss"],
                epoch_end=True,
                val_iou=record.get("val_iou"),
                val_mean_iou=record.get("val_mean_iou"),
                checkpoint=saved,
                best=improved,
                budget_left=budget.left(),
            )
            if best.stop or result.budget_ended:
                break  # patience: no better epoch for that many
    finally:
        batches.close()
        if best_weights is not None:
            model.set_weights(best_weights)
        else:
            # finished or stopped: the averages are the result
            use_averaged_weights(model)
        if prefix is not None and not ck.list_checkpoints(prefix):
            # stopped (or failed) before any epoch was saved: no config
            # without weights left behind
            ck.config_path(prefix).unlink(missing_ok=True)
    return result


class Budget:
    """A time budget of ``minutes`` (None: none) from now; it ends the
    epoch in progress, which is then kept."""

    def __init__(self, minutes: float | None):
        self._deadline = None
        if minutes is not None:
            self._deadline = time.monotonic() + 60 * minutes

    def left(self) -> float | None:
        """Seconds left (None without a budget)."""
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def ended(self) -> bool:
        return self._deadline is not None and time.monotonic() > self._deadline


def _step(model, x, y, epoch: int, batch: int) -> float:
    """One batch trained; its loss (a NaN loss is refused)."""
    loss = float(np.asarray(model.train_on_batch(x, y)).ravel()[0])
    if not np.isfinite(loss):
        raise ThinsegError(
            f"training diverged at epoch {epoch}, batch {batch + 1} "
            "(loss is NaN); lower the learning rate"
        )
    return loss
