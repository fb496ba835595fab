"""Predict class maps with a VGG-UNet, and evaluate it on annotated images.

Two ways to run the network over an image:

* ``"tile"`` (the default): native resolution. The image is cut into
  overlapping tiles of the model's input size (reflect-padded where smaller),
  each tile's class probabilities are brought to full resolution and
  blended with a weight that fades towards the tile edges, so the result is
  seamless and has the input image's size. Images smaller than the input are
  padded, never stretched.
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

from .autolabel import float_range
from .colormap import rgb8
from .errors import ThinsegError
from .io import check_image, is_stack
from .model import ModelConfig, preprocess, tensorflow
from .progress import Progress

MODES = ("tile", "resize")
FINALIZE_COLUMNS = 1024
"""Columns of a finished strip turned into classes at a time."""


@dataclass
class Prediction:
    """A predicted class map (uint8, image size) and, when asked, the
    confidence ``1 - normalised softmax entropy`` (float32, 0..1)."""

    labels: np.ndarray
    confidence: np.ndarray | None = None


def _linear_taps(n_out: int, n_in: int):
    """Source index and 11-bit fixed-point weights per output pixel, as
    OpenCV's INTER_LINEAR computes them (half-pixel centres, clamped)."""
    scale = n_in / n_out
    f = ((np.arange(n_out) + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f).astype(np.int64)
    frac = f - i0
    low, high = i0 < 0, i0 >= n_in - 1
    frac[low | high] = 0
    i0 = np.clip(i0, 0, n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = np.round(frac * 2048).astype(np.int64)
    w0 = np.round((1 - frac) * 2048).astype(np.int64)
    return i0, i1, w0, w1


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 image resized as OpenCV's ``cv2.resize(..., INTER_LINEAR)``.

    keras-segmentation feeds its network through cv2.resize; this repeats
    its fixed-point arithmetic (11-bit weights, rows first, then the
    vector kernel's rounding of the column pass) so that the same image
    gives the same network input, without OpenCV as a dependency. An exact
    2x reduction is an average of 2 x 2 blocks, as OpenCV switches to
    INTER_AREA there.
    """
    src = np.asarray(image)
    squeeze = src.ndim == 2
    if squeeze:
        src = src[..., None]
    h, w = src.shape[:2]
    if (h, w) == (height, width):
        out = src.copy()
    elif h == 2 * height and w == 2 * width:
        blocks = src.reshape(height, 2, width, 2, -1).astype(np.int64)
        out = ((blocks.sum((1, 3)) + 2) >> 2).astype(np.uint8)
    else:
        x0, x1, a0, a1 = _linear_taps(width, w)
        y0, y1, b0, b1 = _linear_taps(height, h)
        s = src.astype(np.int64)
        rows = s[:, x0] * a0[None, :, None] + s[:, x1] * a1[None, :, None]
        r0, r1 = rows[y0] >> 4, rows[y1] >> 4
        out = (
            ((b0[:, None, None] * r0) >> 16)
            + ((b1[:, None, None] * r1) >> 16)
            + 2
        ) >> 2
        out = np.clip(out, 0, 255).astype(np.uint8)
    return out[..., 0] if squeeze else out


def resize_nearest(
    labels: np.ndarray, height: int, width: int, centred: bool = False
) -> np.ndarray:
    """Class map resized by nearest neighbour.

    By default like OpenCV's INTER_NEAREST (``floor(i * scale)``), which
    keras-segmentation applies to annotations; ``centred`` samples at pixel
    centres (``floor((i + 0.5) * scale)``), aligned with bilinear image
    resizing, for augmentation.
    """
    shift = 0.5 if centred else 0.0

    def index(n_out, n_in):
        i = np.floor((np.arange(n_out) + shift) * n_in / n_out).astype(int)
        return np.minimum(i, n_in - 1)

    rows = index(height, labels.shape[0])
    cols = index(width, labels.shape[1])
    return labels[rows[:, None], cols[None, :]]


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


def _argmax(probs: np.ndarray, exclude_zero: bool) -> np.ndarray:
    if exclude_zero and probs.shape[-1] > 1:
        return (probs[..., 1:].argmax(-1) + 1).astype(np.uint8)
    return probs.argmax(-1).astype(np.uint8)


def _confidence(probs: np.ndarray) -> np.ndarray:
    p = np.clip(probs, 1e-12, 1.0)
    entropy = -(p * np.log(p)).sum(-1) / np.log(probs.shape[-1])
    return (1.0 - entropy).astype(np.float32)


def predict_resize_output(model, config: ModelConfig, image) -> np.ndarray:
    """Softmax at the model's output size after resizing the whole image
    (exactly keras-segmentation's ``predict`` before its argmax)."""
    x = preprocess(
        resize_bilinear(rgb8(image), config.input_height, config.input_width)
    )
    return _forward(model, x[None], config)[0]


def _tile_starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride))
    starts.append(size - tile)
    return starts


def _blend_weight(height: int, width: int) -> np.ndarray:
    """Tent window, highest in the tile centre, never zero."""

    def ramp(n):
        r = np.minimum(np.arange(n) + 0.5, n - np.arange(n) - 0.5)
        return r / r.max()

    w = np.outer(ramp(height), ramp(width))
    return (0.05 + w).astype(np.float32)


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
        From :func:`~.checkpoints.load_model` or training.
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
        labels = resize_nearest(_argmax(probs, exclude_zero), height, width)
        conf = None
        if confidence:
            conf = resize_nearest(_confidence(probs), height, width)
        return Prediction(labels, conf)
    return (
        yield from _predict_tiles(
            model, config, image, overlap, batch_size, confidence, exclude_zero
        )
    )


def _tile_rgb(image, y, x, th, tw, value_range) -> np.ndarray:
    """uint8 RGB of the (th, tw) tile at (y, x), reflect-padded where the
    image is smaller than the tile."""
    rgb = rgb8(image[y : y + th, x : x + tw], value_range)
    pad_h, pad_w = th - rgb.shape[0], tw - rgb.shape[1]
    if pad_h or pad_w:
        mode = "reflect" if min(rgb.shape[:2]) > 1 else "edge"
        rgb = np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)
    return rgb


def _predict_tiles(
    model, config, image, overlap, batch_size, confidence, exclude_zero
):
    """Tile mode, one row of tiles at a time.

    Blended probabilities are kept only for the rows the current row of
    tiles covers, and rows no later tile reaches are turned into classes
    at once, so memory beyond the input and the class map grows with the
    image width, not its area: for a 20000 x 20000 scan and 6 classes the
    strip is 72 MB with the default model's 128-pixel tiles (0.57 GB with
    1024-pixel ones), where whole-image probabilities would take 11 GB.
    """
    tf = tensorflow()
    height, width = image.shape[:2]
    th, tw = config.input_height, config.input_width
    n_classes = config.n_classes
    value_range = float_range(image) if image.dtype.kind == "f" else None
    rows = _tile_starts(height, th, max(1, int(th * (1 - overlap))))
    cols = _tile_starts(width, tw, max(1, int(tw * (1 - overlap))))
    window = _blend_weight(th, tw)[..., None]
    labels = np.zeros((height, width), np.uint8)
    conf = np.zeros((height, width), np.float32) if confidence else None
    # probabilities of rows [top, top + th), with their blend weights
    acc = np.zeros((th, max(width, tw), n_classes), np.float32)
    weight_sum = np.zeros((th, max(width, tw), 1), np.float32)
    n_tiles = len(rows) * len(cols)
    n_batches = len(rows) * -(-len(cols) // batch_size)
    done_batches = done_tiles = 0
    for i, top in enumerate(rows):
        for b in range(0, len(cols), batch_size):
            chunk = cols[b : b + batch_size]
            batch = np.stack(
                [
                    preprocess(_tile_rgb(image, top, x, th, tw, value_range))
                    for x in chunk
                ]
            )
            out = _forward(model, batch, config)
            # output is at half resolution: back to the tile's pixels
            full = tf.image.resize(out, (th, tw), method="bilinear").numpy()
            for x, p in zip(chunk, full, strict=True):
                acc[:, x : x + tw] += p * window
                weight_sum[:, x : x + tw] += window
            done_batches += 1
            done_tiles += len(chunk)
            yield Progress(
                done_batches,
                n_batches,
                f"tiles {done_tiles - len(chunk) + 1}-{done_tiles} of "
                f"{n_tiles}",
            )
        # rows above the next tile row are final; done in column blocks so
        # that no temporary as large as the strip is made
        bottom = rows[i + 1] if i + 1 < len(rows) else min(top + th, height)
        n = min(bottom, height) - top
        shift = bottom - top
        for x0 in range(0, acc.shape[1], FINALIZE_COLUMNS):
            x1 = x0 + FINALIZE_COLUMNS
            if x0 < width:
                xe = min(x1, width)
                probs = acc[:n, x0:xe] / weight_sum[:n, x0:xe]
                labels[top : top + n, x0:xe] = _argmax(probs, exclude_zero)
                if conf is not None:
                    conf[top : top + n, x0:xe] = _confidence(probs)
            if i + 1 < len(rows):
                for buf in (acc, weight_sum):
                    buf[: th - shift, x0:x1] = buf[shift:, x0:x1]
                    buf[th - shift :, x0:x1] = 0.0
    return Prediction(labels, conf)


# -- evaluation --------------------------------------------------------------
def confusion_matrix(
    truth: np.ndarray, pred: np.ndarray, n_classes: int
) -> np.ndarray:
    """``cm[t, p]`` pixel counts (labels >= n_classes are dropped)."""
    t = truth.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    keep = (t < n_classes) & (p < n_classes)
    return np.bincount(
        t[keep] * n_classes + p[keep], minlength=n_classes * n_classes
    ).reshape(n_classes, n_classes)


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU; NaN for classes absent from truth and prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


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
            gen = predict_image(model, config, image, mode=mode)
            while True:
                try:
                    next(gen)
                except StopIteration as stop:
                    full = stop.value.labels
                    break
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
