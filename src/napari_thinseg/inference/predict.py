"""Predict class maps with a VGG-UNet, and evaluate it on annotated images.

Two ways to run the network over an image:

* ``"tile"`` (the default): native resolution. The network, fully
  convolutional, is rebuilt with the trained weights at a tile size fitted
  to the image (up to about 1120 x 1120 pixels; ``tile`` forces one) and in
  the fastest precision the machine has (``precision``); tiles overlap by
  a margin of context that is dropped (:mod:`.tiling`), so the result is
  the network's on the whole image, at about 1.1x the image's pixels of
  network work. Rebuilt networks are cached
  (:data:`~napari_thinseg.model.cache.inference_networks`). Tiles of the
  model's
  training size (``tile`` equal to it, or models that cannot be rebuilt)
  are the classic overlapping tiles, blended. Images smaller than a tile
  are padded, never stretched.
* ``"resize"``: keras-segmentation's way. The whole image is resized to the
  model input, the class map comes out at half that size and is brought back
  to the image size (nearest neighbour), in float32. Use it for parity with
  keras-segmentation.

Both are generators that yield :class:`~napari_thinseg.progress.Progress` per
tile (or
batch of tiles) and return a :class:`Prediction`.
"""

from __future__ import annotations

import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ThinsegError
from ..imaging.convert import describe_views, n_views, views8
from ..imaging.files import check_image, is_stack
from ..imaging.resize import resize_bilinear, resize_nearest
from ..model.backend import PRECISIONS, resolve_precision, tensorflow
from ..model.cache import inference_networks
from ..model.config import MAX_INPUT_SIDE, ModelConfig
from ..model.vgg_unet import compute_dtype, preprocess
from ..progress import Progress, run
from .metrics import confusion_matrix, iou_from_confusion
from .tiling import (
    GRID,
    auto_tile_shape,
    class_map,
    confidence_map,
    dihedral_mean,
    margin_for,
    margin_starts,
    overlap_starts,
    predict_margin_tiles,
    predict_tiles,
)

MODES = ("tile", "resize")


@dataclass
class Prediction:
    """A predicted class map (uint8, image size) and, when asked, the
    confidence ``1 - normalised softmax entropy`` (float32, 0..1)."""

    labels: np.ndarray
    confidence: np.ndarray | None = None


def _finite(out: np.ndarray) -> np.ndarray:
    if not np.isfinite(out).all():
        # finite weights can still overflow on real images
        raise ThinsegError(
            "the model produced NaN or infinite class probabilities; its "
            "weights are broken (retrain or load another checkpoint)"
        )
    return out


def _forward(model, batch: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Softmax output of a batch of preprocessed tiles, (B, oh, ow, C)."""
    out = _finite(np.asarray(model.predict_on_batch(batch)))
    return out.reshape(
        len(batch),
        config.output_height,
        config.output_width,
        config.n_classes,
    )


def is_rebuildable(model) -> bool:
    """Whether ``model`` is a Keras 3 model, which
    :mod:`~napari_thinseg.model.cache` can
    rebuild at another tile size and precision (stand-ins and tf.keras
    models run as they are, at their input size)."""
    keras = sys.modules.get("keras")  # none imported: no Keras model
    return keras is not None and isinstance(model, keras.Model)


def float32_model(model, config: ModelConfig):
    """``model``, or its float32 twin when it computes in 16 bits (trained
    under a mixed precision policy)."""
    if not is_rebuildable(model) or compute_dtype(model) == "float32":
        return model
    size = (config.input_height, config.input_width)
    return inference_networks.get(model, config, size, "float32").model


def predict_resize_output(model, config: ModelConfig, image) -> np.ndarray:
    """Softmax at the model's output size after resizing the whole image
    (exactly keras-segmentation's ``predict`` before its argmax, float32)."""
    x = preprocess(
        resize_bilinear(views8(image), config.input_height, config.input_width)
    )
    return _forward(float32_model(model, config), x[None], config)[0]


def check_tile(tile) -> tuple[int, int] | None:
    """``(height, width)`` of a ``tile`` option (pixels, or a pair), None
    for automatic; refuses sides that are not multiples of 32."""
    if tile is None:
        return None
    sides = (tile, tile) if np.ndim(tile) == 0 else tuple(tile)
    ok = len(sides) == 2 and all(
        isinstance(v, int | np.integer)
        and GRID <= v <= MAX_INPUT_SIDE
        and v % GRID == 0
        for v in sides
    )
    if not ok:
        raise ThinsegError(
            f"tile {tile!r}: give a multiple of {GRID} in "
            f"{GRID}..{MAX_INPUT_SIDE} pixels (or a pair of them)"
        )
    return int(sides[0]), int(sides[1])


def tile_shape(model, config, height, width, tile=None) -> tuple[int, int]:
    """The tile shape tile mode uses: ``tile`` (never larger than the
    image needs), else fitted to the image (:func:`.tiling.auto_tile_shape`);
    the
    training size for models that cannot be rebuilt."""
    training = (config.input_height, config.input_width)
    tile = check_tile(tile)
    if not is_rebuildable(model):
        if tile not in (None, training):
            raise ThinsegError(
                f"tile {tile[0]}x{tile[1]}: this model cannot be rebuilt at "
                f"another size; it runs at {training[0]}x{training[1]}"
            )
        return training
    if tile is None:
        return auto_tile_shape(height, width)
    if tile == training:
        return tile
    return (
        min(tile[0], -(-height // GRID) * GRID),
        min(tile[1], -(-width // GRID) * GRID),
    )


def check_model_input(image: np.ndarray, config: ModelConfig) -> None:
    """Refuse an image the model cannot take: not an image, or RGB for a
    plane + crossed polars model (and the other way round)."""
    views = n_views(image)
    if views != config.n_views:
        raise ThinsegError(
            f"the model takes {describe_views(config.input_channels)}; "
            f"this image is {describe_views(image)}"
            + (
                ": give the crossed-polarised image too"
                if config.n_views > views
                else ": give the plane-polarised image alone"
            )
        )
    check_image(image[..., :3] if views > 1 else image)


def _check_request(image, config, mode, overlap, precision, tile, tta):
    """``image`` as an array, once it and the options suit the model and
    :func:`predict_image`; refused in one line if not."""
    if mode not in MODES:
        raise ThinsegError(f"unknown mode {mode!r} (use {', '.join(MODES)})")
    if not 0.0 <= overlap < 0.9:
        raise ThinsegError(f"overlap must be in [0, 0.9), got {overlap}")
    if precision not in PRECISIONS:
        resolve_precision(precision)  # the one message for a bad name
    check_tile(tile)
    image = np.asarray(image)
    check_model_input(image, config)
    if config.n_views == 1 and is_stack(image):
        raise ThinsegError(
            f"expected a 2D image, got shape {image.shape}; predict a stack "
            "plane by plane"
        )
    if tta and mode == "resize":
        raise ThinsegError(
            "test-time augmentation works in tile mode; resize mode is "
            "keras-segmentation's, unchanged"
        )
    return image


def _predict_resized(model, config, image, confidence, exclude_zero):
    """Resize mode: the class map (and confidence) of the image resized
    to the model's input, brought back to the image's size."""
    height, width = image.shape[:2]
    probs = predict_resize_output(model, config, views8(image))
    yield Progress(1, 1, "resized image")
    labels = resize_nearest(class_map(probs, exclude_zero), height, width)
    conf = None
    if confidence:
        conf = resize_nearest(confidence_map(probs), height, width)
    return Prediction(labels, conf)


def _predict_classic_tiles(
    model,
    config: ModelConfig,
    image: np.ndarray,
    shape: tuple[int, int],
    overlap: float,
    batch_size: int,
    precision: str,
    tta: bool,
    confidence: bool,
    exclude_zero: bool,
):
    """Tile mode at the model's input size ``shape``: overlapping tiles,
    blended; refuses ``tta``, which needs fitted tiles."""
    if tta:
        raise ThinsegError(
            "test-time augmentation needs fitted tiles: leave the tile "
            "size automatic (or give another than the model's input "
            "size)"
        )
    # batches run along a row of tiles: none padded for a narrow image
    per_row = len(overlap_starts(image.shape[1], shape[1], overlap))
    batch_size = min(batch_size, per_row)
    forward = _training_size_forward(model, config, batch_size, precision)
    labels, conf = yield from predict_tiles(
        forward,
        image,
        shape,
        config.n_classes,
        overlap,
        batch_size,
        confidence,
        exclude_zero,
    )
    return Prediction(labels, conf)


def _predict_fitted_tiles(
    model,
    config: ModelConfig,
    image: np.ndarray,
    shape: tuple[int, int],
    precision: str,
    tta: bool,
    confidence: bool,
    exclude_zero: bool,
):
    """Tile mode at a fitted ``shape``: margin tiles whose context is
    dropped, in ``precision`` (resolved here), averaged over flips and
    turns with ``tta``."""
    height, width = image.shape[:2]
    precision = resolve_precision(precision)
    margin = margin_for(shape)
    n_tiles = len(margin_starts(height, shape[0], margin)) * len(
        margin_starts(width, shape[1], margin)
    )
    # before the network is built and traced (seconds): Stop can act
    yield Progress(0, n_tiles, f"{shape[0]}x{shape[1]} tiles in {precision}")
    forward = margin_forward(model, config, shape, precision, tta)
    labels, conf = yield from predict_margin_tiles(
        forward, image, shape, margin, confidence, exclude_zero
    )
    return Prediction(labels, conf)


def predict_image(
    model,
    config: ModelConfig,
    image: np.ndarray,
    mode: str = "tile",
    overlap: float = 0.25,
    batch_size: int = 4,
    confidence: bool = False,
    tile=None,
    precision: str = "auto",
    tta: bool = False,
) -> Generator[Progress, None, Prediction]:
    """Predict the class of every pixel of one 2D image.

    Parameters
    ----------
    model, config
        From :func:`~napari_thinseg.model.checkpoints.load_model` or training.
    image : ndarray
        2D gray, RGB or RGBA, any dtype; for a plane + crossed polars
        model, both photos side by side ``(H, W, 6)``
        (:func:`~napari_thinseg.imaging.convert.stack_views`).
    mode : {"tile", "resize"}
        See the module docstring.
    overlap : float
        Fraction of a tile shared with its neighbour (training-size tiles).
    batch_size : int
        Training-size tiles per forward pass (larger tiles go one by one).
    confidence : bool
        Also return ``1 - normalised entropy`` of the class probabilities.
    tile : int or (int, int), optional
        Tile side(s) in pixels, multiples of 32 (tile mode); None fits them
        to the image; the model's input size gives the classic tiling.
    precision : {"auto", "float32", "bfloat16", "float16"}
        What the network computes in (tile mode): ``auto`` is bfloat16 on
        CPUs with native bfloat16, float16 on a GPU, else float32.
    tta : bool
        Test-time augmentation (tile mode): the class probabilities of the
        8 flips and quarter turns of every tile, averaged (8x the work).
    """
    image = _check_request(image, config, mode, overlap, precision, tile, tta)
    exclude_zero = bool(config.trained_on.get("ignore_zero", False))
    if mode == "resize":
        steps = _predict_resized(
            model, config, image, confidence, exclude_zero
        )
        return (yield from steps)
    height, width = image.shape[:2]
    shape = tile_shape(model, config, height, width, tile)
    training = (config.input_height, config.input_width)
    # classic tiles when asked for (or the only way); a fitted tile that
    # happens to be the training size is still a margin tile
    if not is_rebuildable(model) or check_tile(tile) == training:
        steps = _predict_classic_tiles(
            model,
            config,
            image,
            shape,
            overlap,
            batch_size,
            precision,
            tta,
            confidence,
            exclude_zero,
        )
        return (yield from steps)
    steps = _predict_fitted_tiles(
        model, config, image, shape, precision, tta, confidence, exclude_zero
    )
    return (yield from steps)


def margin_forward(model, config, shape, precision: str, tta: bool = False):
    """``forward`` for margin tiles of ``shape``: the cached network in
    ``precision`` (resolved), averaged over flips and turns with ``tta``."""

    def forward_at(tile_shape):
        network = inference_networks.get(model, config, tile_shape, precision)
        return lambda tiles: _finite(network.probabilities(tiles).numpy())

    return dihedral_mean(forward_at) if tta else forward_at(shape)


def _training_size_forward(model, config, batch_size, precision):
    """``forward`` for :func:`.tiling.predict_tiles` at the model's input size:
    the cached network at one batch shape (short batches padded), or the
    model's own ``predict_on_batch`` where it cannot be rebuilt."""
    tf = tensorflow()
    th, tw = config.input_height, config.input_width
    if is_rebuildable(model):
        network = inference_networks.get(
            model, config, (th, tw), resolve_precision(precision), batch_size
        )

        def forward(tiles: np.ndarray) -> np.ndarray:
            n = len(tiles)
            if n < batch_size:
                pad = np.zeros((batch_size - n, *tiles.shape[1:]), np.uint8)
                tiles = np.concatenate([tiles, pad])
            return _finite(network.probabilities(tiles).numpy()[:n])

        return forward

    def forward(tiles: np.ndarray) -> np.ndarray:
        batch = np.stack([preprocess(t) for t in tiles])
        out = _forward(model, batch, config)
        # output is at half resolution: back to the tile's pixels
        return tf.image.resize(out, (th, tw), method="bilinear").numpy()

    return forward


# -- evaluation --------------------------------------------------------------
def evaluate(
    model,
    config: ModelConfig,
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    mode: str = "tile",
    tile=None,
    precision: str = "auto",
    tta: bool = False,
) -> Generator[Progress, None, dict]:
    """keras-segmentation's metrics, and full-resolution ones.

    ``frequency_weighted_IU``, ``mean_IU`` and ``class_wise_IU`` are computed
    exactly as keras-segmentation 0.3.0 does: class maps at the model's
    output size (``resize`` prediction), annotations resized to it by
    nearest neighbour, IoU with its epsilon, averaged over all n_classes.
    Under ``full_resolution``: pixel accuracy, per-class IoU, mean IoU over
    the classes present, and the confusion matrix of ``mode`` predictions at
    the images' own size, unlabelled (0) pixels excluded (``tile``,
    ``precision`` and ``tta`` as in :func:`predict_image`).
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
            full = run(
                predict_image(
                    model,
                    config,
                    image,
                    mode=mode,
                    tile=tile,
                    precision=precision,
                    tta=tta,
                )
            ).labels
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


# -- folder runs -------------------------------------------------------------
def written_labels(outputs: Sequence) -> tuple[set[int], list]:
    """What a stopped folder run already wrote of ``outputs`` (label
    files; a stack's may be its ``.tif``): the indices of those written
    whole, to skip, and the temporary files interrupted writes left (to
    report). A label file that exists but does not read back whole is
    refused in one line (never taken for done, never replaced unasked).
    """
    from pathlib import Path

    from ..imaging.atomic import leftover_temps
    from ..imaging.files import read_image

    done, leftovers = set(), []
    for k, out in enumerate(outputs):
        out = Path(out)
        for path in dict.fromkeys((out, out.with_suffix(".tif"))):
            leftovers += leftover_temps(path)
            if not path.exists():
                continue
            try:
                read_image(path)
            except ThinsegError as exc:
                raise ThinsegError(
                    f"{exc}: a torn label file? remove it, or use "
                    "overwrite to predict it again"
                ) from None
            done.add(k)
    return done, leftovers
