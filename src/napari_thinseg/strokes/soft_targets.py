"""What the start model says of every pixel: the soft targets that
unpainted pixels keep while brush strokes move the model.

A fine-tune on strokes alone moves the whole model towards the few
classes painted: 1.2 % of two photos painted made a shipped model call
half of an unseen photo feldspar. So every unpainted pixel keeps the
start model's class probabilities as its target (distillation), mapped
onto the labels' scheme by class name; a class the start model does not
know has probability 0 there (it learns from its strokes alone).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import numpy as np

from ..imaging.convert import data_range
from ..inference.predict import check_model_input, margin_forward, tile_shape
from ..inference.tiling import (
    class_map,
    margin_for,
    margin_tile_probabilities,
    margin_tiles,
)
from ..model.backend import resolve_precision
from ..model.config import ModelConfig
from ..model.transfer import class_mapping
from ..progress import Progress
from ..schemes import ClassScheme


@dataclass(frozen=True)
class StartView:
    """What the start model says of an image: the soft targets
    (:func:`soft_targets`) and its class map in the labels' ids (-1
    where it names no class of theirs); both None when the schemes share
    no class."""

    soft: np.ndarray | None
    labels: np.ndarray | None


def probability_map(
    model, config: ModelConfig, image: np.ndarray, precision: str = "auto"
) -> Generator[Progress, None, tuple[np.ndarray, np.ndarray]]:
    """Class probabilities ``(H, W, config.n_classes)`` (float16) of
    ``model`` at every pixel of ``image`` and its class map (uint8), from
    margin tiles as :func:`~napari_thinseg.inference.predict.predict_image`
    predicts (the same class map)."""
    image = np.asarray(image)
    check_model_input(image, config)
    height, width = image.shape[:2]
    shape = tile_shape(model, config, height, width)
    forward = margin_forward(
        model, config, shape, resolve_precision(precision)
    )
    value_range = None if image.dtype == np.uint8 else data_range(image)
    tiles = margin_tiles(height, width, shape, margin_for(shape))
    exclude_zero = bool(config.trained_on.get("ignore_zero", False))
    out = np.zeros((height, width, config.n_classes), np.float16)
    labels = np.zeros((height, width), np.uint8)
    for tile in tiles:
        y0, y1, x0, x1 = tile.region
        probs = margin_tile_probabilities(
            forward, image, tile, shape, value_range
        )
        out[y0:y1, x0:x1] = probs
        labels[y0:y1, x0:x1] = class_map(probs, exclude_zero)
        yield Progress(tile.index + 1, len(tiles), "the start model's view")
    return out, labels


def shared_classes(
    config: ModelConfig, scheme: ClassScheme, n_classes: int | None = None
) -> dict[int, int]:
    """``{labels' class id: model's class id}`` of the classes the
    model's scheme and ``scheme`` (of ``n_classes``, by default its own
    count) both name (case and spaces ignored), in the labels' order;
    class 0 (unlabelled) left out."""
    mapping = class_mapping(
        config.class_scheme,
        config.n_classes,
        scheme,
        n_classes or scheme.n_classes,
    )
    return {t: s for t, s in sorted(mapping.items()) if t > 0}


def labels_ids(
    config: ModelConfig, scheme: ClassScheme, n_classes: int
) -> np.ndarray:
    """A table from the model's class ids to the labels' (-1 for a class
    the labels lack, which never agrees with a stroke)."""
    table = np.full(max(256, config.n_classes), -1, np.int32)
    for target, source in shared_classes(config, scheme, n_classes).items():
        table[source] = target
    return table


def soft_targets(
    model,
    config: ModelConfig,
    image: np.ndarray,
    scheme: ClassScheme,
    n_classes: int,
    precision: str = "auto",
) -> Generator[Progress, None, np.ndarray | None]:
    """The start model's probabilities of ``image`` over the labels'
    classes ``(H, W, n_classes)`` (float16, summing to 1 over the shared
    classes; 0 for the others and for class 0), or None when the two
    schemes share no class."""
    view = yield from start_view(
        model, config, image, scheme, n_classes, precision
    )
    return view.soft


def start_view(
    model,
    config: ModelConfig,
    image: np.ndarray,
    scheme: ClassScheme,
    n_classes: int,
    precision: str = "auto",
) -> Generator[Progress, None, StartView]:
    """The :class:`StartView` of ``image``, from one pass of the model."""
    shared = shared_classes(config, scheme, n_classes)
    if not shared:
        return StartView(None, None)
    probs, labels = yield from probability_map(model, config, image, precision)
    table = labels_ids(config, scheme, n_classes)
    return StartView(_over_shared(probs, shared, n_classes), table[labels])


def _over_shared(probs: np.ndarray, shared: dict, n_classes: int):
    """``probs`` of the model's classes as the labels' shared ones."""
    out = np.zeros((*probs.shape[:2], n_classes), np.float32)
    for target, source in shared.items():
        out[..., target] = probs[..., source]
    total = out.sum(-1, keepdims=True)
    # what the start model gave classes the labels do not have is spread
    # over those they share, as its own odds among them
    np.divide(out, total, out=out, where=total > 0)
    return out.astype(np.float16)
