"""Weights files: reading Keras 2 HDF5 files, tf.keras TensorFlow
checkpoints and Keras 3 ``.weights.h5`` files, writing Keras 2 HDF5 files,
and putting weights into a model by layer order with every shape checked.

Weights are plain ``[(layer name, [arrays])]`` lists here, so nothing but
:func:`read_tf_checkpoint` and the model methods needs TensorFlow.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from .backend import tensorflow


def weight_layers(model) -> list:
    """Layers that carry weights, in model order (what checkpoints hold)."""
    return [ly for ly in model.layers if ly.weights]


# -- reading -----------------------------------------------------------------
def _decode(names) -> list[str]:
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_hdf5_weights(path: str | Path) -> list[tuple[str, list[np.ndarray]]]:
    """``[(layer name, [arrays])]`` of the layers with weights, in order.

    Reads Keras 2 weight files (``layer_names`` attribute, also inside a
    whole-model file's ``model_weights``).
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            group = f.get("model_weights", f)
            if "layer_names" in group.attrs:
                out = []
                for name in _decode(group.attrs["layer_names"]):
                    g = group[name]
                    names = _decode(g.attrs.get("weight_names", []))
                    if names:
                        out.append((name, [np.asarray(g[n]) for n in names]))
                return out
    except (OSError, KeyError) as exc:
        raise ThinsegError(
            f"{path}: unreadable weights file ({exc})"
        ) from None
    raise ThinsegError(f"{path}: HDF5 file holds no Keras weights")


_TF_ORDER = (
    "kernel",
    "bias",
    "gamma",
    "beta",
    "moving_mean",
    "moving_variance",
)


def read_tf_checkpoint(prefix: str) -> list[tuple[str, list[np.ndarray]]]:
    """Weights of a tf.keras TensorFlow checkpoint, by layer order."""
    tf = tensorflow()
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as exc:
        reason = str(exc).splitlines()[0][:200]
        raise ThinsegError(
            f"{prefix}: unreadable TensorFlow checkpoint ({reason})"
        ) from None
    pattern = re.compile(
        r"^layer_with_weights-(\d+)/(\w+)/\.ATTRIBUTES/VARIABLE_VALUE$"
    )
    layers: dict[int, dict[str, np.ndarray]] = {}
    for key in reader.get_variable_to_shape_map():
        m = pattern.match(key)
        if m:
            layers.setdefault(int(m.group(1)), {})[m.group(2)] = (
                reader.get_tensor(key)
            )
    if not layers:
        raise ThinsegError(f"{prefix}: TensorFlow checkpoint holds no layers")
    return [
        (
            f"layer_with_weights-{k}",
            [layers[k][n] for n in _TF_ORDER if n in layers[k]],
        )
        for k in sorted(layers)
    ]


def read_weights(path: str | Path) -> list[tuple[str, list[np.ndarray]]]:
    """Weights from any supported file (HDF5) or TF checkpoint prefix."""
    path = str(path)
    if os.path.isfile(path + ".index"):
        return read_tf_checkpoint(path)
    if not os.path.isfile(path):
        raise ThinsegError(f"{path}: no such weights file")
    import h5py

    if not h5py.is_hdf5(path):
        raise ThinsegError(
            f"{path}: not a weights file (neither HDF5 nor a TensorFlow "
            "checkpoint)"
        )
    return read_hdf5_weights(path)


def assign_weights(model, weights, source: str = "checkpoint") -> None:
    """Put ``weights`` into ``model`` by layer order, checking every shape.

    Raises a one-line error naming the first mismatching layer (another
    class count, input channels or architecture) or non-finite weights.
    """
    targets = weight_layers(model)
    if len(weights) != len(targets):
        raise ThinsegError(
            f"{source}: holds {len(weights)} layers with weights, the "
            f"VGG-UNet has {len(targets)}; another architecture?"
        )
    for k, (layer, (name, arrays)) in enumerate(
        zip(targets, weights, strict=True)
    ):
        expected = [tuple(w.shape) for w in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            hint = ""
            if (
                layer is targets[-1]
                and len(got) == 2
                and got[0][:3] == (expected[0][:3])
            ):
                hint = (
                    f" (trained for {got[0][-1]} classes, the model has "
                    f"{expected[0][-1]})"
                )
            raise ThinsegError(
                f"{source}: layer {k + 1} ({layer.name}; {name} in the file) "
                f"has shapes {got}, expected {expected}{hint}"
            )
        if not all(np.isfinite(a).all() for a in arrays):
            raise ThinsegError(
                f"{source}: layer {k + 1} ({layer.name}) has NaN or infinite "
                "weights"
            )
    for layer, (_, arrays) in zip(targets, weights, strict=True):
        layer.set_weights(arrays)


def load_weights(model, path: str | Path) -> None:
    """Load a weights file or TF checkpoint into ``model`` (checked).

    Keras 3 ``.weights.h5`` files go through Keras itself (they match
    layers by name); everything else by layer order, as Keras 2 did.
    """
    if str(path).endswith(".weights.h5"):
        try:
            model.load_weights(path)
        except Exception as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise ThinsegError(
                f"{path}: does not fit the VGG-UNet ({reason})"
            ) from None
        assign_weights(
            model,
            [(ly.name, ly.get_weights()) for ly in weight_layers(model)],
            str(path),
        )  # re-checks shapes and finiteness
        return
    assign_weights(model, read_weights(path), str(path))


# -- writing -----------------------------------------------------------------
def encode_hdf5_weights(model, dtype=None) -> bytes:
    """Keras 2 style HDF5 weights of ``model`` as bytes.

    ``dtype=np.float16`` halves the file (for shipping a model).
    """
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.3.1"
        f.attrs["layer_names"] = [ly.name.encode() for ly in model.layers]
        for layer in model.layers:
            g = f.create_group(layer.name)
            names = [
                f"{layer.name}/{_weight_name(w)}:0".encode()
                for w in layer.weights
            ]
            g.attrs["weight_names"] = names
            for name, w in zip(names, layer.get_weights(), strict=True):
                g.create_dataset(name.decode(), data=_narrow(w, dtype))
    return buf.getvalue()


def _narrow(array: np.ndarray, dtype) -> np.ndarray:
    """``array`` in ``dtype`` where that loses nothing but precision;
    arrays that would overflow (batch-norm variances beyond float16's
    65504) stay as they are."""
    if dtype is None:
        return array
    with np.errstate(over="ignore"):
        narrow = array.astype(dtype)
    return narrow if np.isfinite(narrow).all() else array


def _weight_name(variable) -> str:
    name = getattr(variable, "name", "w").split("/")[-1].split(":")[0]
    return name
