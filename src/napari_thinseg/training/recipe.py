"""The training recipe: loss, class weights, optimizer, learning-rate
schedule, and which epoch to keep.

- **Loss**: sparse categorical cross-entropy; with ``ignore_zero``, label
  0 (unlabelled) is left out and the mean runs over labelled pixels only,
  so a few brush strokes weigh in fully.
- **Class balance** (optional): each class's loss is weighted by
  ``min(CAP, sqrt(median share / its share))`` of the labelled pixels,
  scaled so that the labelled pixels' mean weight is 1: rare cements or
  opaques count more the rarer they are (up to :data:`CAP` times), the
  loss keeps its scale. The square root because the full inverse
  frequency (median-frequency balancing) starved the common minerals:
  with 10 sandstone classes it gave quartz 0.23 against up to 8.6 for
  rare ones, and quartz IoU fell.
- **Schedule** (optional): a linear warm-up over the first
  :data:`WARMUP_SHARE` of the steps to the learning rate, then a cosine
  decay to :data:`FINAL_SHARE` of it (Keras' ``CosineDecay``).
- **Weight averaging** (optional): an exponential moving average of the
  weights over the steps (Keras optimizers' ``use_ema``) is what
  validation sees, what checkpoints hold and what training returns. With
  small batches and a constant rate the weights of one step swing from
  batch to batch; their average does not (:func:`averaged_weights`).
- **Best epoch** (with validation): the epoch with the highest validation
  mean IoU is what training returns; with ``patience``, training stops
  after that many epochs without a better one.
- **A time budget** (:func:`propose`): crop size, batch and steps that fit
  "train for 5 minutes" on this machine, estimated from its measured
  matrix-product speed before anything starts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ..errors import ThinsegError
from ..model.backend import tensorflow

OPTIMIZERS = ("adadelta", "adam", "sgd", "rmsprop")
#: the Train widget's weight averaging: a horizon of about 100 steps
AVERAGE_MOMENTUM = 0.99
SCHEDULES = ("constant", "cosine")
DEFAULT_LEARNING_RATES = {
    "adadelta": 1.0,
    "adam": 1e-3,
    "rmsprop": 1e-3,
    "sgd": 1e-2,
}
"""The optimizers' classic defaults (adadelta's 1.0 as Keras 2 had it,
which keras-segmentation used; Keras 3's 0.001 barely moves)."""
CAP = 10.0
"""Largest class weight relative to the median class."""
BALANCE_POWER = 0.5
"""Power of the median-share ratio a class is weighted by (1 would be
median-frequency balancing)."""
WARMUP_SHARE = 0.05
"""Share of the steps spent warming up (``cosine`` schedule)."""
FINAL_SHARE = 0.01
"""Learning rate at the end of the cosine decay, as a share of the peak."""


def class_weights(
    labels: Sequence[np.ndarray],
    n_classes: int,
    ignore_zero: bool = True,
    cap: float = CAP,
    power: float = BALANCE_POWER,
) -> np.ndarray:
    """Loss weight per class (``(n_classes,)`` float32) from the labelled
    pixels' class shares; see the module docstring.

    Classes without pixels get weight 0 (they never appear in a batch);
    with ``ignore_zero`` so does class 0.
    """
    counts = np.zeros(n_classes, np.int64)
    for lab in labels:
        counts += np.bincount(np.asarray(lab).ravel(), minlength=n_classes)[
            :n_classes
        ]
    if ignore_zero:
        counts[0] = 0
    present = counts > 0
    if not present.any():
        raise ThinsegError("no labelled pixels to weigh the classes by")
    share = counts / counts.sum()
    weights = np.zeros(n_classes)
    weights[present] = np.minimum(
        cap, (np.median(share[present]) / share[present]) ** power
    )
    # the labelled pixels' mean weight is 1: the loss keeps its scale
    weights /= float((share * weights).sum())
    return weights.astype(np.float32)


def loss_function(ignore_zero: bool, weights: np.ndarray | None = None):
    """The Keras loss of the recipe (see the module docstring)."""
    tensorflow()
    import keras
    from keras import ops

    if not ignore_zero and weights is None:
        return keras.losses.SparseCategoricalCrossentropy()
    table = None if weights is None else ops.convert_to_tensor(weights)

    def masked_sparse_categorical_crossentropy(y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        ce = keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        if ignore_zero:
            mask = ops.cast(y_true > 0, ce.dtype)
        else:
            mask = ops.ones_like(ce)
        if table is not None:
            ce = ce * ops.cast(ops.take(table, y_true), ce.dtype)
        # mean over labelled pixels only: sparse strokes weigh in fully
        return ops.sum(ce * mask, axis=-1) / ops.maximum(
            ops.sum(mask, axis=-1), 1.0
        )

    return masked_sparse_categorical_crossentropy


def distillation_loss(weight: float):
    """The loss of a fine-tune from strokes: cross-entropy on the painted
    pixels (their mean, as :func:`loss_function`) plus ``weight`` times
    the KL divergence from the start model's probabilities on the
    unpainted ones (their mean).

    ``y_true`` is ``(B, P, 1 + C)``: the label id (0 unpainted), then
    the soft target (all 0 where there is none: a pixel of a class the
    start model does not know, or past the image's edge).
    """
    tensorflow()
    import keras
    from keras import ops

    def strokes_and_distillation(y_true, y_pred):
        hard = ops.cast(y_true[..., 0], "int32")
        soft = ops.cast(y_true[..., 1:], y_pred.dtype)
        painted = ops.cast(hard > 0, y_pred.dtype)
        ce = keras.losses.sparse_categorical_crossentropy(hard, y_pred)
        strokes = ops.sum(ce * painted, -1) / ops.maximum(
            ops.sum(painted, -1), 1.0
        )
        kept = (1.0 - painted) * ops.cast(ops.sum(soft, -1) > 0, soft.dtype)
        eps = 1e-7
        kl = ops.sum(
            soft * (ops.log(soft + eps) - ops.log(y_pred + eps)), axis=-1
        )
        distilled = ops.sum(kl * kept, -1) / ops.maximum(
            ops.sum(kept, -1), 1.0
        )
        return strokes + weight * distilled

    return strokes_and_distillation


def learning_rate(
    optimizer: str,
    learning_rate: float | None,
    schedule: str = "constant",
    total_steps: int = 1,
):
    """The learning rate (a number) or, for ``cosine``, Keras' warm-up +
    cosine decay schedule over ``total_steps``."""
    peak = DEFAULT_LEARNING_RATES[optimizer]
    if learning_rate is not None:
        peak = learning_rate
    if schedule == "constant":
        return peak
    if schedule != "cosine":
        raise ThinsegError(
            f"unknown schedule {schedule!r} (use {', '.join(SCHEDULES)})"
        )
    tensorflow()
    import keras

    warmup = max(1, round(WARMUP_SHARE * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        warmup_target=peak,
        warmup_steps=warmup,
        decay_steps=max(1, total_steps - warmup),
        alpha=FINAL_SHARE,
    )


def make_optimizer(
    name: str,
    rate: float | None,
    schedule: str = "constant",
    total_steps: int = 1,
    average: float = 0.0,
):
    """A Keras optimizer by name (see :data:`OPTIMIZERS`); ``average``, a
    momentum such as 0.99, keeps a moving average of the weights."""
    tensorflow()
    import keras

    cls = {
        "adadelta": keras.optimizers.Adadelta,
        "adam": keras.optimizers.Adam,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }[name]
    averaging = {"use_ema": True, "ema_momentum": average} if average else {}
    return cls(
        learning_rate=learning_rate(name, rate, schedule, total_steps),
        **averaging,
    )


def _weight_averages(model) -> list[tuple[object, object]]:
    """(variable, its moving average) of every averaged weight; empty
    without averaging or before the first step (the averages are zeros
    until then)."""
    optimizer = getattr(model, "optimizer", None)
    # float16 training wraps the optimizer in a loss-scale one
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if optimizer is None or not getattr(optimizer, "use_ema", False):
        return []
    if int(optimizer.iterations.numpy()) == 0:
        return []
    # the optimizer's own order: its averages follow the variables it
    # was built with (Keras keeps no public accessor for either)
    return [
        (v, a)
        for v, a in zip(
            optimizer._trainable_variables,
            optimizer._model_variables_moving_average,
            strict=True,
        )
        if a is not None
    ]


def use_averaged_weights(model) -> bool:
    """Replace the model's weights by the optimizer's moving averages for
    good (the result of a training with averaging); False, and the model
    left as it is, without averaging or before the first step."""
    pairs = _weight_averages(model)
    for v, a in pairs:
        v.assign(a)
    return bool(pairs)


@contextmanager
def averaged_weights(model) -> Iterator[bool]:
    """The model's weights replaced by the optimizer's moving averages
    for the block (validation, saving a checkpoint), the trained ones put
    back after it. Yields whether there were averages (see
    :func:`use_averaged_weights`)."""
    trained = [(v, v.numpy()) for v, _ in _weight_averages(model)]
    averaged = use_averaged_weights(model)
    try:
        yield averaged
    finally:
        for v, w in trained:
            v.assign(w)


class BestEpoch:
    """Which epoch is best by validation mean IoU, and when to stop.

    ``update(epoch, score)`` returns True when ``score`` beats every
    earlier one (the first finite score does); :attr:`stop` turns True
    after ``patience`` epochs in a row without a better score (never with
    ``patience`` None).
    """

    def __init__(self, patience: int | None = None):
        self.patience = patience
        self.epoch: int | None = None
        self.score = -np.inf
        self.waited = 0

    def update(self, epoch: int, score: float | None) -> bool:
        if score is not None and np.isfinite(score) and score > self.score:
            self.epoch, self.score, self.waited = epoch, float(score), 0
            return True
        self.waited += 1
        return False

    @property
    def stop(self) -> bool:
        return self.patience is not None and self.waited >= self.patience


# -- settings that fit the machine -------------------------------------------
TRAIN_FLOP_PER_PIXEL = 3 * 742e3
"""Work of one training step per crop pixel: the forward pass's 0.742
MFLOP a pixel (187.8 GFLOP at 416 x 608), about three times over with the
backward pass."""
ENCODER_FORWARD_SHARE = (0.0, 0.104, 0.253, 0.502, 0.750)
"""Share of the forward pass's work in the encoder's first 0-4 VGG blocks
(multiply-adds a pixel: 38.6k, 55.3k, 92.2k and 92.2k of 371k); frozen
blocks have no backward pass (the step times ``bench/bench_model.py``
measured: 0.89, 0.80, 0.65 and 0.49 of the full step at 224 x 224, batch
4, bfloat16)."""
EFFICIENCY = {"float32": 0.9, "bfloat16": 1.75, "float16": 1.75}
"""Training GFLOP/s as a share of the CPU's float32 SGEMM (measured by
``bench/bench_model.py``: 0.96 and 1.77 on a 2-core EPYC)."""
STEP_OVERHEAD_S = 0.05
PROPOSED_SIDE = 224
PROPOSED_BATCH = 4
PROPOSED_STEPS = 50
EPOCH_SECONDS = 25.0
"""About how long a proposed epoch lasts: a checkpoint (and a model a
budget can keep) every 20-30 s."""


def sgemm_gflops(n: int = 1024, repeat: int = 5) -> float:
    """This machine's float32 matrix-product GFLOP/s (numpy, a few ms)."""
    import time

    a = np.ones((n, n), np.float32)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / max(best, 1e-9) / 1e9


def seconds_per_step(
    height: int,
    width: int,
    batch: int,
    precision: str,
    gflops: float,
    frozen_blocks: int = 0,
) -> float:
    """Estimated seconds of one training step on this machine (``gflops``:
    :func:`sgemm_gflops`; ``precision`` resolved; ``frozen_blocks`` of the
    encoder not trained)."""
    rate = gflops * EFFICIENCY.get(precision, 0.9) * 1e9
    # forward everywhere, backward (twice the forward) where trained
    work = 1 - 2 / 3 * ENCODER_FORWARD_SHARE[frozen_blocks]
    return work * TRAIN_FLOP_PER_PIXEL * height * width * batch / rate + (
        STEP_OVERHEAD_S
    )


@dataclass(frozen=True)
class Proposal:
    """Training sizes that fit a time budget, and the time they take."""

    input_height: int
    input_width: int
    batch_size: int
    steps_per_epoch: int
    epochs: int
    seconds: float

    def describe(self) -> str:
        steps = self.steps_per_epoch * self.epochs
        return (
            f"{steps} steps of {self.batch_size} crops "
            f"{self.input_height}x{self.input_width}, about "
            f"{max(1, round(self.seconds / 60))} min"
        )


def propose(
    image_shapes: Sequence[tuple[int, int]],
    minutes: float,
    precision: str,
    gflops: float,
    frozen_blocks: int = 0,
) -> Proposal:
    """Crop size, batch and steps for ``minutes`` of training on images
    of ``image_shapes``: 224-pixel crops (smaller for smaller images, a
    multiple of 32, at least 64), batches of 4, epochs of up to 50 steps,
    as many steps as the estimate fits in the budget (at least one), in
    epochs of about :data:`EPOCH_SECONDS` each."""
    if not image_shapes:
        raise ThinsegError("no training images")
    if not minutes > 0:
        raise ThinsegError(f"the time budget must be positive, got {minutes}")
    smallest = min(min(h, w) for h, w in image_shapes)
    side = max(64, min(PROPOSED_SIDE, smallest // 32 * 32))
    step = seconds_per_step(
        side, side, PROPOSED_BATCH, precision, gflops, frozen_blocks
    )
    total = max(1, int(minutes * 60 / step))
    per_epoch = min(PROPOSED_STEPS, total, max(1, round(EPOCH_SECONDS / step)))
    epochs = max(1, total // per_epoch)
    return Proposal(
        side,
        side,
        PROPOSED_BATCH,
        per_epoch,
        epochs,
        per_epoch * epochs * step,
    )
