"""Predict class maps with a VGG-UNet, and evaluate it on annotated images.

Two ways to run the network over an image:

* ``"tile"`` (the default): native resolution. The image is cut into
  overlapping tiles of the model's input size (:mod:`.tiling`), each tile's
  class probabilities are brought to full resolution and blended, so the
  result is seamless and has the input image's size. Images smaller than
  the input are padded, never stretched.
* ``"resize"``: keras-segmentation's way. The whole image is resized to the
  model input, the class map comes out at half that size and is brought back
  to the image size (nearest neighbour). Use it for parity with
  keras-segmentation.

Both are generators that yield :class:`~.progress.Progress` per batch of
tiles and return a :class:`Prediction`.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from .errors import ThinsegError
from .imaging.convert import rgb8
from .imaging.files import check_image, is_stack
from .imaging.resize import resize_bilinear, resize_nearest
from .metrics import confusion_matrix, iou_from_confusion
from .model.backend import tensorflow
from .model.config import ModelConfig
from .model.vgg_unet import preprocess
from .progress import Progress, run
from .tiling import class_map, confidence_map, predict_tiles

MODES = ("tile", "resize")


@dataclass
class Prediction:
    """A predicted class map (uint8, image size) and, when asked, the
    confidence ``1 - normalised softmax entropy`` (float32, 0..1)."""

    labels: np.ndarray
    confidence: np.ndarray | None = None


def _forward(model, batch: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Softmax output of a batch of preprocessed tiles, (B, oh, ow, C)."""
    out = np.asarray(model.predict_on_batch(batch))
    if not np.isfinite(out).all():
        # finite weights can still overflow on real images
        raise ThinsegError(
            "the model produced NaN or infinite class probabilities; its "
            "weights are broken (retrain or load another checkpoint)"
        )
    return out.reshape(
        len(batch),
        config.output_height,
        config.output_width,
        config.n_classes,
    )


def predict_resize_output(model, config: ModelConfig, image) -> np.ndarray:
    """Softmax at the model's output size after resizing the whole image
    (exactly keras-segmentation's ``predict`` before its argmax)."""
    x = preprocess(
        resize_bilinear(rgb8(image), config.input_height, config.input_width)
    )
    return _forward(model, x[None], config)[0]


def predict_image(
    model,
    config: ModelConfig,
    image: np.ndarray,
    mode: str = "tile",
    overlap: float = 0.25,
    batch_size: int = 4,
    confidence: bool = False,
) -> Generator[Progress, None, Prediction]:
    """Predict the class of every pixel of one 2D image.

    Parameters
    ----------
    model, config
        From :func:`~.model.checkpoints.load_model` or training.
    image : ndarray
        2D gray, RGB or RGBA, any dtype.
    mode : {"tile", "resize"}
        See the module docstring.
    overlap : float
        Fraction of a tile shared with its neighbour (tile mode).
    batch_size : int
        Tiles per forward pass.
    confidence : bool
        Also return ``1 - normalised entropy`` of the class probabilities.
    """
    if mode not in MODES:
        raise ThinsegError(f"unknown mode {mode!r} (use {', '.join(MODES)})")
    if not 0.0 <= overlap < 0.9:
        raise ThinsegError(f"overlap must be in [0, 0.9), got {overlap}")
    image = np.asarray(image)
    check_image(image)
    if is_stack(image):
        raise ThinsegError(
            f"expected a 2D image, got shape {image.shape}; predict a stack "
            "plane by plane"
        )
    height, width = image.shape[:2]
    exclude_zero = bool(config.trained_on.get("ignore_zero", False))

    if mode == "resize":
        probs = predict_resize_output(model, config, rgb8(image))
        yield Progress(1, 1, "resized image")
        labels = resize_nearest(class_map(probs, exclude_zero), height, width)
        conf = None
        if confidence:
            conf = resize_nearest(confidence_map(probs), height, width)
        return Prediction(labels, conf)
    tf = tensorflow()
    th, tw = config.input_height, config.input_width

    def forward(tiles: np.ndarray) -> np.ndarray:
        batch = np.stack([preprocess(t) for t in tiles])
        out = _forward(model, batch, config)
        # output is at half resolution: back to the tile's pixels
        return tf.image.resize(out, (th, tw), method="bilinear").numpy()

    labels, conf = yield from predict_tiles(
        forward,
        image,
        (th, tw),
        config.n_classes,
        overlap,
        batch_size,
        confidence,
        exclude_zero,
    )
    return Prediction(labels, conf)


# -- evaluation --------------------------------------------------------------
def evaluate(
    model,
    config: ModelConfig,
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    mode: str = "tile",
) -> Generator[Progress, None, dict]:
    """keras-segmentation's metrics, and full-resolution ones.

    ``frequency_weighted_IU``, ``mean_IU`` and ``class_wise_IU`` are computed
    exactly as keras-segmentation 0.3.0 does: class maps at the model's
    output size (``resize`` prediction), annotations resized to it by
    nearest neighbour, IoU with its epsilon, averaged over all n_classes.
    Under ``full_resolution``: pixel accuracy, per-class IoU, mean IoU over
    the classes present, and the confusion matrix of ``mode`` predictions at
    the images' own size, unlabelled (0) pixels excluded.
    """
    n = config.n_classes
    tp = np.zeros(n)
    fp = np.zeros(n)
    fn = np.zeros(n)
    n_pixels = np.zeros(n)
    cm = np.zeros((n, n), np.int64)
    for k, (name, image, truth) in enumerate(pairs):
        if truth.shape != image.shape[:2]:
            raise ThinsegError(
                f"{name}: image {image.shape[:2]} and annotation "
                f"{truth.shape} differ in size"
            )
        probs = predict_resize_output(model, config, image)
        pr = probs.argmax(-1).ravel()
        gt = resize_nearest(
            truth, config.output_height, config.output_width
        ).ravel()
        for c in range(n):
            tp[c] += np.sum((pr == c) & (gt == c))
            fp[c] += np.sum((pr == c) & (gt != c))
            fn[c] += np.sum((pr != c) & (gt == c))
            n_pixels[c] += np.sum(gt == c)
        if mode == "resize":
            full = resize_nearest(
                probs.argmax(-1).astype(np.uint8), *truth.shape
            )
        else:
            full = run(predict_image(model, config, image, mode=mode)).labels
        labelled = truth > 0
        cm += confusion_matrix(truth[labelled], full[labelled], n)
        yield Progress(k + 1, len(pairs), name)
    class_wise = tp / (tp + fp + fn + 1e-12)
    weights = n_pixels / max(n_pixels.sum(), 1)
    iou = iou_from_confusion(cm)
    present = cm.sum(1) > 0
    return {
        "frequency_weighted_IU": float(np.sum(class_wise * weights)),
        "mean_IU": float(np.mean(class_wise)),
        "class_wise_IU": class_wise.tolist(),
        "full_resolution": {
            "mode": mode,
            "pixel_accuracy": float(np.trace(cm) / max(cm.sum(), 1)),
            "class_wise_IoU": [None if np.isnan(v) else float(v) for v in iou],
            "mean_IoU_present": float(np.nanmean(iou[present]))
            if present.any()
            else None,
            "confusion_matrix": cm.tolist(),
        },
    }
