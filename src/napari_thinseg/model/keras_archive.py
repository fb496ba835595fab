""".keras archives, loaded safely.

The archive's JSON is read first and refused if it holds layers that carry
code (``Lambda``) or classes from outside Keras; Keras then loads it with
``safe_mode=True``, and only its weights are copied into a VGG-UNet built
here from the validated config.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ThinsegError
from .backend import tensorflow
from .config import ModelConfig
from .vgg_unet import build
from .weights import assign_weights, weight_layers

UNSAFE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
"""Layers whose saved form carries Python code."""


def _layer_classes(node):
    """Every ``(class_name, module)`` in a Keras config tree."""
    if isinstance(node, dict):
        if "class_name" in node:
            yield str(node["class_name"]), str(node.get("module") or "")
        for value in node.values():
            yield from _layer_classes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _layer_classes(value)


def read_keras_config(path: str | Path) -> ModelConfig:
    """The :class:`~.config.ModelConfig` of a ``.keras`` archive, from its
    JSON alone (nothing is deserialised), refusing archives that hold
    layers carrying code (``Lambda``) or classes from outside Keras."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise ThinsegError(f"{path}: no such model file")
    try:
        with zipfile.ZipFile(path) as archive:
            tree = json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise ThinsegError(
            f"{path}: not a readable .keras archive ({exc})"
        ) from None
    for name, module in _layer_classes(tree):
        if name in UNSAFE_LAYERS:
            raise ThinsegError(
                f"{path}: holds a {name} layer, which runs code stored in "
                "the file; refused"
            )
        if module and module.split(".")[0] not in ("keras", "builtins"):
            raise ThinsegError(
                f"{path}: holds {name} from module {module!r}, not from "
                "Keras; refused"
            )
    layers = (tree.get("config") or {}).get("layers") or []
    shape = filters = None
    for layer in layers:
        cfg = layer.get("config") or {}
        if layer.get("class_name") == "InputLayer" and shape is None:
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if "filters" in cfg:
            filters = cfg["filters"]
    if not (
        isinstance(shape, list) and len(shape) == 4 and shape[-1] in (3, 6)
    ):
        raise ThinsegError(
            f"{path}: input shape {shape} is not a batch of RGB images "
            "(or of plane + crossed polars pairs)"
        )
    try:
        return ModelConfig(
            n_classes=filters,
            input_height=shape[1],
            input_width=shape[2],
            input_channels=shape[-1],
        )
    except ThinsegError as exc:
        raise ThinsegError(f"{path}: not a VGG-UNet ({exc})") from None


def load_keras_file(path: str | Path):
    """A VGG-UNet from a Keras 3 ``.keras`` archive, loaded safely.

    The archive's config is read as plain JSON first
    (:func:`read_keras_config`); Keras then deserialises it with
    ``safe_mode=True``. Only its weights are used: they are copied, shape
    by shape, into a VGG-UNet built here from the validated config.

    Returns
    -------
    model, config
    """
    config = read_keras_config(path)
    tensorflow()
    import keras

    try:
        loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise ThinsegError(
            f"{path}: cannot be loaded safely ({type(exc).__name__}: {reason})"
        ) from None
    out_shape = tuple(loaded.output_shape)
    if (
        tuple(loaded.input_shape)[1:]
        != (
            config.input_height,
            config.input_width,
            3,
        )
        or out_shape[-1] != config.n_classes
    ):
        raise ThinsegError(
            f"{path}: input {loaded.input_shape} / output {out_shape} are "
            "not those of a VGG-UNet"
        )
    model = build(config)
    assign_weights(
        model,
        [(ly.name, ly.get_weights()) for ly in weight_layers(loaded)],
        str(path),
    )
    return model, config
