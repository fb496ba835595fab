"""napari layer data tuples, class schemes on layers, and the stamp that
tells a layer the plugin wrote from one the user has edited since.

A Labels layer carries its class scheme twice: as the ``features`` table
(what napari's status bar shows: the class name under the cursor) and whole
in ``metadata["thinseg_scheme"]`` (scheme name and pore classes too).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from ..errors import ThinsegError
from ..schemes import SEED, ClassScheme

SCHEME_KEY = "thinseg_scheme"
PREDICTION_KEY = "thinseg_prediction"
"""Metadata key of the Labels layers the Predict widget writes."""
PREVIEW_KEY = "thinseg_preview"
"""Metadata key of the Labels layers the Train widget's preview writes."""
SLIDE_KEY = "thinseg_slide"
"""Metadata key of a whole slide's Image layer: the file it shows."""


def is_model_output(layer) -> bool:
    """Whether a layer holds a model's prediction (or a preview), not
    labels a user made: pair tables never take it for labels by
    themselves."""
    meta = getattr(layer, "metadata", {}) or {}
    return PREDICTION_KEY in meta or PREVIEW_KEY in meta


def labels_kwargs(scheme: ClassScheme) -> dict:
    """Keyword arguments that give a Labels layer the scheme's colours and
    class names."""
    return {
        "colormap": scheme.colormap_dict(),
        "features": scheme.to_features(),
        "metadata": {SCHEME_KEY: scheme.to_dict()},
    }


def layer_levels(levels) -> dict:
    """``data`` and ``multiscale`` of a layer showing pyramid ``levels``:
    napari takes no Labels pyramid of one level (it unwraps the list, then
    fails), so one level is shown as a plain layer."""
    levels = list(levels)
    one = len(levels) == 1
    return {"data": levels[0] if one else levels, "multiscale": not one}


def labels_layer_data(labels, scheme: ClassScheme, name: str, **extra):
    """A ``(data, kwargs, "labels")`` layer data tuple."""
    return (labels, {"name": name, **labels_kwargs(scheme), **extra}, "labels")


def scheme_of(layer, default: ClassScheme = SEED) -> ClassScheme:
    """The class scheme stored on a Labels layer, else ``default``."""
    meta = getattr(layer, "metadata", {}) or {}
    if SCHEME_KEY in meta:
        try:
            return ClassScheme.from_dict(meta[SCHEME_KEY])
        except ThinsegError:
            pass
    features = getattr(layer, "features", None)
    if features is not None and {"index", "name", "color"} <= set(features):
        try:
            return ClassScheme.from_features(features, layer.name)
        except ThinsegError:
            pass
    return default


def apply_scheme(layer, scheme: ClassScheme) -> None:
    """Give an existing Labels layer the scheme's colours and names."""
    kwargs = labels_kwargs(scheme)
    layer.colormap = kwargs["colormap"]
    layer.features = kwargs["features"]
    layer.metadata = {**layer.metadata, **kwargs["metadata"]}


# -- layers the plugin wrote, and whether the user edited them since ---------
def checksum(data) -> int:
    """CRC32 of an array's bytes (tells whether a layer was edited)."""
    return zlib.crc32(np.ascontiguousarray(data).view(np.uint8).ravel())


def stamp(data, **info) -> dict:
    """What to keep in a written layer's ``metadata[key]``: the data's
    checksum and ``info`` (image, method, model...)."""
    return {"checksum": checksum(data), **info}


def is_untouched(layer, key: str, shape) -> bool:
    """Whether ``layer`` is a Labels layer the plugin wrote under
    ``metadata[key]`` and nobody has painted on since: its data still has
    the stamped checksum (and ``shape``)."""
    from napari.layers import Labels

    if not isinstance(layer, Labels) or layer.multiscale:
        return False
    found = layer.metadata.get(key)
    data = layer.data
    return (
        isinstance(found, dict)
        and isinstance(data, np.ndarray)
        and data.shape == tuple(shape)
        and data.dtype == np.uint8
        and found.get("checksum") == checksum(data)
    )


def writable_labels(
    layers, base: str, key: str, shape, numbered: Callable[[int], str]
):
    """``(layer, name)`` to write new labels to: the first of ``base``,
    ``numbered(2)``, ``numbered(3)``... that is untouched (layer) or free
    (``None`` and the name for a new layer). Edited layers are never
    overwritten."""
    k = 1
    while True:
        name = base if k == 1 else numbered(k)
        if name not in layers:
            return None, name
        if is_untouched(layers[name], key, shape):
            return layers[name], name
        k += 1
