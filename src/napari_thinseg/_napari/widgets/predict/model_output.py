"""Writing a model's output beside its image layer: the class map as a
Labels layer (the Predict widget's ``"<image> prediction"``, the Train
widget's ``"<image> preview"``) and the confidence as an Image layer.

A layer the user has painted on since it was written is never
overwritten: a numbered one is added instead (:func:`.layers.
writable_labels`). The layer's stamp in ``metadata[key]`` says which
model wrote it.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Image, Labels

from ....schemes import ClassScheme
from ...layers import (
    PREVIEW_KEY,
    apply_scheme,
    is_model_output,
    labels_kwargs,
    stamp,
    writable_labels,
)
from .._common import CONFIDENCE_KEY, plane_shape

CONFIDENCE_COLORMAP = "gray"
"""Neutral, so that class colours over it keep their hue (black =
unsure)."""


def placement(image) -> dict:
    """The ``scale`` and ``translate`` of ``image``'s plane."""
    return {
        "scale": tuple(image.scale)[-2:],
        "translate": tuple(image.translate)[-2:],
    }


def write_labels(
    viewer, image, labels, scheme: ClassScheme, suffix: str, key: str, **info
):
    """Write ``labels`` as ``"<image> <suffix>"`` (or a numbered name when
    that layer was edited) with ``scheme``'s colours, over ``image``;
    ``info`` goes into the stamp. Returns the Labels layer."""
    labels = np.ascontiguousarray(labels, dtype=np.uint8)
    written = stamp(labels, **info)
    base = f"{image.name} {suffix}"
    layer, name = writable_labels(
        viewer.layers, base, key, labels.shape, lambda k: f"{base} {k}"
    )
    if layer is None:
        kwargs = labels_kwargs(scheme)
        kwargs["metadata"] = {**kwargs["metadata"], key: written}
        active = viewer.layers.selection.active
        layer = viewer.add_labels(
            labels, name=name, **placement(image), **kwargs
        )
        if key == PREVIEW_KEY:
            put_under_labels(viewer, layer, image, active)
        return layer
    layer.data = labels
    for attribute, value in placement(image).items():
        setattr(layer, attribute, value)
    apply_scheme(layer, scheme)
    layer.metadata = {**layer.metadata, key: written}
    return layer


def put_under_labels(viewer, layer, image, active=None) -> None:
    """Move a new ``layer`` (a preview) under the labels being painted:
    just below the lowest Labels layer above ``image`` that a user made
    (of the same size), else leave it on top; the layer that was active
    stays active, so painting goes on where it was."""
    layers = viewer.layers
    start = layers.index(image) + 1 if image in layers else 0
    shape = plane_shape(layer)
    target = next(
        (
            i
            for i in range(start, layers.index(layer))
            if isinstance(ly := layers[i], Labels)
            and not is_model_output(ly)
            and plane_shape(ly) == shape
        ),
        None,
    )
    if target is not None:
        layers.move(layers.index(layer), target)
    if active is not None and active in layers:
        layers.selection.active = active


def write_confidence(viewer, image, confidence) -> Image:
    """Write ``confidence`` (0..1) as ``"<image> confidence"``; write it
    before the class map, which then lies above it."""
    name = f"{image.name} confidence"
    data = np.asarray(confidence, dtype=np.float32)
    found = [ly for ly in viewer.layers if ly.name == name]
    if found and isinstance(layer := found[0], Image):
        layer.data = data
        for attribute, value in placement(image).items():
            setattr(layer, attribute, value)
        layer.contrast_limits = (0.0, 1.0)
        return layer
    return viewer.add_image(
        data,
        name=name,
        colormap=CONFIDENCE_COLORMAP,
        contrast_limits=(0.0, 1.0),
        **placement(image),
        metadata={CONFIDENCE_KEY: True},
    )
