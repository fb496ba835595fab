"""Train the VGG-UNet from (image, labels) pairs.

Pairs come from open napari layers, dataset folders or arrays. Each step
draws random crops at the model's input size from images of any size
(weighted by how many labelled pixels they hold), with flips, 90 degree
rotations, mild scale and colour jitter when augmenting. Label 0 means
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

from .classes import ClassScheme
from .colormap import rgb8
from .dataset import Pair, pair_files
from .errors import ThinsegError
from .io import check_labels, read_annotation, read_image
from .model import ModelConfig, build, preprocess, tensorflow
from .predict import confusion_matrix, iou_from_confusion, resize_nearest
from .progress import Progress

OPTIMIZERS = ("adadelta", "adam", "sgd", "rmsprop")


@dataclass
class TrainSettings:
    """How to train (keras-segmentation's defaults where it has one).

    ``learning_rate`` None means the optimizer's classic default: 1.0 for
    adadelta (as in Keras 2, which keras-segmentation used; Keras 3's 0.001
    barely moves), 0.001 for adam and rmsprop, 0.01 for sgd.
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


# -- data --------------------------------------------------------------------
def pairs_from_folders(
    images: str | Path, annotations: str | Path
) -> list[Pair]:
    """Read every matched (image, annotation) pair of two folders."""
    images, annotations = Path(images), Path(annotations)
    for folder in (images, annotations):
        if not folder.is_dir():
            raise ThinsegError(f"{folder}: no such folder")
    samples, orphans = pair_files(images, annotations)
    missing = [s for s in samples if s.annotation_path is None]
    if missing:
        raise ThinsegError(
            f"{missing[0].image_path}: no annotation of that name in "
            f"{annotations}"
        )
    if orphans:
        raise ThinsegError(f"{orphans[0]}: annotation without an image")
    if not samples:
        raise ThinsegError(f"{images}: no images")
    return [
        Pair(
            s.name,
            read_image(s.image_path),
            read_annotation(s.annotation_path),
            str(s.annotation_path),
        )
        for s in samples
    ]


def check_pairs(pairs: Sequence[Pair], n_classes: int) -> list[Pair]:
    """uint8 RGB images and uint8 labels, refusing what can't be learnt."""
    if not pairs:
        raise ThinsegError("no training images")
    out = []
    for p in pairs:
        labels = check_labels(p.labels, p.where)
        image = rgb8(np.asarray(p.image))
        if labels.shape != image.shape[:2]:
            raise ThinsegError(
                f"{p.where}: image {image.shape[0]}x{image.shape[1]} and "
                f"labels {labels.shape[0]}x{labels.shape[1]} differ in size"
            )
        if labels.max(initial=0) >= n_classes:
            raise ThinsegError(
                f"{p.where}: label {labels.max()} >= n_classes {n_classes} "
                f"(class ids run 0..{n_classes - 1})"
            )
        out.append(Pair(p.name, image, labels, p.source))
    return out


class CropSampler:
    """Random training crops at the model input size, with augmentation."""

    def __init__(
        self, pairs: Sequence[Pair], settings: TrainSettings, ignore_zero: bool
    ):
        self.pairs = list(pairs)
        self.s = settings
        self.rng = np.random.default_rng(settings.seed)
        counts = np.array(
            [
                (p.labels > 0).sum() if ignore_zero else p.labels.size
                for p in self.pairs
            ],
            float,
        )
        if counts.sum() == 0:
            raise ThinsegError(
                "the labels are all 0 (unlabelled): nothing to learn; paint "
                "some classes first"
            )
        self.weights = counts / counts.sum()

    def crop(self) -> tuple[np.ndarray, np.ndarray]:
        th, tw = self.s.input_height, self.s.input_width
        pair = self.pairs[self.rng.choice(len(self.pairs), p=self.weights)]
        rotate = self.s.augment and self.rng.random() < 0.5
        scale = self.rng.uniform(0.85, 1.15) if self.s.augment else 1.0
        # a window that becomes th x tw after scaling (and a quarter turn)
        wh, ww = (tw, th) if rotate else (th, tw)
        wh, ww = max(2, round(wh / scale)), max(2, round(ww / scale))
        image, labels = _pad_to(pair.image, pair.labels, wh, ww)
        y = self.rng.integers(0, image.shape[0] - wh + 1)
        x = self.rng.integers(0, image.shape[1] - ww + 1)
        img = image[y : y + wh, x : x + ww]
        lab = labels[y : y + wh, x : x + ww]
        if rotate:
            img, lab = np.rot90(img), np.rot90(lab)
        if self.s.augment:
            if self.rng.random() < 0.5:
                img, lab = img[:, ::-1], lab[:, ::-1]
            if self.rng.random() < 0.5:
                img, lab = img[::-1], lab[::-1]
        if img.shape[:2] != (th, tw):
            from .predict import resize_bilinear

            img = resize_bilinear(np.ascontiguousarray(img), th, tw)
            lab = resize_nearest(lab, th, tw, centred=True)
        return np.ascontiguousarray(img), np.ascontiguousarray(lab)

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        crops = [self.crop() for _ in range(self.s.batch_size)]
        x = np.stack([c[0] for c in crops]).astype(np.float32)
        if self.s.augment:
            x = self._jitter(x)
        x = np.stack([preprocess(img) for img in x])
        oh, ow = self.s.input_height // 2, self.s.input_width // 2
        y = np.stack([resize_nearest(c[1], oh, ow).ravel() for c in crops])
        return x, y.astype(np.int32)

    def _jitter(self, x: np.ndarray) -> np.ndarray:
        """Brightness, contrast and saturation changes of a few percent:
        stain and lighting vary between thin sections, hue (the blue dye)
        much less."""
        out = np.empty_like(x)
        for i, img in enumerate(x):
            b, c, s = self.rng.uniform(0.9, 1.1, 3)
            gray = img @ np.array([0.2125, 0.7154, 0.0721], np.float32)
            img = gray[..., None] + s * (img - gray[..., None])
            img = img.mean() + c * (img - img.mean())
            out[i] = np.clip(img * b, 0, 255)
        return out.round()


def _pad_to(image, labels, height, width):
    ph, pw = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if ph or pw:
        mode = "reflect" if min(image.shape[:2]) > 1 else "edge"
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)
        # padded pixels are not ground truth
        labels = np.pad(labels, ((0, ph), (0, pw)))
    return image, labels


def validation_crops(
    pairs: Sequence[Pair], height: int, width: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic crops (a grid over each image) for validation."""
    xs, ys = [], []
    for p in pairs:
        image, labels = _pad_to(p.image, p.labels, height, width)
        for y in range(0, image.shape[0] - height + 1, height):
            for x in range(0, image.shape[1] - width + 1, width):
                xs.append(image[y : y + height, x : x + width])
                ys.append(labels[y : y + height, x : x + width])
    if len(xs) > limit:
        keep = np.linspace(0, len(xs) - 1, limit).round().astype(int)
        xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
    return np.stack(xs), np.stack(ys)


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
    from . import checkpoints as ck

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
    start_epoch = 0
    prefix = None if checkpoints_path is None else Path(checkpoints_path)
    resume_from = None
    if prefix is not None:
        existing = ck.list_checkpoints(prefix)
        has_config = ck.config_path(prefix).exists()
        if auto_resume and existing:
            old = ck.read_config(prefix)
            if (old.n_classes, old.input_height, old.input_width) != (
                n_classes,
                settings.input_height,
                settings.input_width,
            ):
                raise ThinsegError(
                    f"{prefix}: checkpoints are for {old.n_classes} classes "
                    f"at {old.input_height}x{old.input_width}; cannot resume "
                    f"with {n_classes} at "
                    f"{settings.input_height}x{settings.input_width}"
                )
            start_epoch = max(existing) + 1
            resume_from = existing[max(existing)]
        elif (existing or has_config) and not overwrite:
            raise ThinsegError(
                f"{prefix}: checkpoints already exist (resume with "
                "auto_resume_checkpoint, or overwrite)"
            )

    if model is None:
        tensorflow()
        import keras

        # same seed, same initial weights and crops: reproducible runs
        keras.utils.set_random_seed(settings.seed)
        model = build(new_config, settings.encoder_weights)
    if load_weights:
        ck.load_weights(model, load_weights)
    if resume_from is not None:
        ck.load_weights(model, resume_from)
    model.compile(
        optimizer=make_optimizer(settings.optimizer, settings.learning_rate),
        loss=_loss(settings.ignore_zero),
    )
    if prefix is not None:
        if overwrite and resume_from is None:
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
