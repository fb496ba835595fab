"""napari layer data tuples and class schemes on layers (no napari import).

A Labels layer carries its class scheme twice: as the ``features`` table
(what napari's status bar shows: the class name under the cursor) and whole
in ``metadata["thinseg_scheme"]`` (scheme name and pore classes too).
"""

from __future__ import annotations

from ..errors import ThinsegError
from ..schemes import SEED, ClassScheme

SCHEME_KEY = "thinseg_scheme"


def labels_kwargs(scheme: ClassScheme) -> dict:
    """Keyword arguments that give a Labels layer the scheme's colours and
    class names."""
    return {
        "colormap": scheme.colormap_dict(),
        "features": scheme.to_features(),
        "metadata": {SCHEME_KEY: scheme.to_dict()},
    }


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
