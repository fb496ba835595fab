"""Checkpoints in keras-segmentation's layout, read and written safely.

``P_config.json`` holds keras-segmentation's keys (model_class, n_classes,
input and output sizes) and ours (class scheme, preprocessing, version,
training data); each epoch's weights go next to it as ``P.<epoch>``, and the
latest is the largest epoch number, found as keras-segmentation finds it.

We write ``P.<epoch>`` as a Keras-2 style HDF5 weights file (the layout
standalone Keras <= 2.3, i.e. keras-segmentation 0.3.0, wrote there), which
tf.keras's ``load_weights`` also reads, so checkpoints move both ways. We
read that layout, TensorFlow checkpoints (``P.<epoch>.index`` +
``.data-*``, what tf.keras 2.4+ writes) and Keras 3 ``.weights.h5`` files.
Every write goes to a temporary file that is renamed into place, so a crash
never leaves a half-written file as the latest checkpoint. Writers hold a
shared lock on the folder while they write; the next write under a prefix
removes that prefix's temporary files when no writer holds the lock (their
writer was killed), so ``kill -9`` leaves no litter for long.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from .errors import ThinsegError
from .io import atomic_write_bytes, atomic_write_text, ensure_dir
from .model import (
    MAX_INPUT_SIDE,
    MODEL_CLASS,
    ModelConfig,
    build,
    tensorflow,
    weight_layers,
)

CONFIG_SUFFIX = "_config.json"


# -- config ------------------------------------------------------------------
def config_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}{CONFIG_SUFFIX}")


def write_config(prefix: str | Path, config: ModelConfig) -> Path:
    path = config_path(prefix)
    text = json.dumps(config.to_json_dict(), indent=2)
    with _writing(prefix):
        return atomic_write_text(path, text + "\n")


def _side_schema() -> dict:
    return {
        "type": "integer",
        "minimum": 32,
        "maximum": MAX_INPUT_SIDE,
        "multipleOf": 32,
    }


CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "napari-thinseg / keras-segmentation checkpoint config",
    "type": "object",
    "required": ["model_class", "n_classes", "input_height", "input_width"],
    "properties": {
        "model_class": {"type": "string", "enum": [MODEL_CLASS]},
        "n_classes": {"type": "integer", "minimum": 2, "maximum": 256},
        "input_height": _side_schema(),
        "input_width": _side_schema(),
        "output_height": {"type": "integer", "minimum": 1},
        "output_width": {"type": "integer", "minimum": 1},
        "scheme": {"type": ["object", "null"]},
        "preprocessing": {"type": "string", "enum": ["sub_mean"]},
        "version": {"type": "string", "maxLength": 100},
        "trained_on": {"type": "object"},
    },
}
"""What a ``P_config.json`` may hold; keys keras-segmentation or later
versions add are allowed and ignored."""


def check_config_schema(data, path: str | Path) -> None:
    """Refuse a config that does not match :data:`CONFIG_SCHEMA`, naming
    the first offending key."""
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(CONFIG_SCHEMA).iter_errors(data)
    )
    if error is None:
        return
    where = "/".join(str(k) for k in error.absolute_path)
    if not where and error.validator == "type":
        message = "config must be a JSON object"
    elif error.validator == "required":
        missing = sorted(set(CONFIG_SCHEMA["required"]) - set(data))
        message = f"config lacks {', '.join(missing)}"
    elif where == "model_class":
        message = (
            f"unknown model_class {error.instance!r} (this plugin builds "
            f"{MODEL_CLASS!r})"
        )
    else:
        message = f"{where}: {error.message[:200]}"
    raise ThinsegError(f"{path}: {message}")


def read_config(prefix: str | Path) -> ModelConfig:
    """Read and validate ``P_config.json`` before anything is built."""
    path = config_path(prefix)
    if not path.is_file():
        raise ThinsegError(f"{path}: no such checkpoint config")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ThinsegError(
            f"{path}: not a readable JSON config ({exc})"
        ) from None
    check_config_schema(data, path)
    kwargs = {
        k: v for k, v in data.items() if k in CONFIG_SCHEMA["properties"]
    }
    for key in ("output_height", "output_width"):
        kwargs.pop(key, None)
    try:
        config = ModelConfig(**kwargs)
        if config.scheme is not None:
            config.class_scheme  # noqa: B018  (validates the scheme)
    except (ThinsegError, TypeError) as exc:
        raise ThinsegError(f"{path}: {exc}") from None
    for key in ("output_height", "output_width"):
        if key in data and data[key] != getattr(config, key):
            raise ThinsegError(
                f"{path}: {key} {data[key]!r} does not match the input size "
                f"(expected {getattr(config, key)})"
            )
    return config


# -- finding epochs ----------------------------------------------------------
def list_checkpoints(prefix: str | Path) -> dict[int, str]:
    """``{epoch: weights path}`` of ``P.<epoch>`` files and TF checkpoints.

    keras-segmentation 0.3.0 globs ``P.*`` and keeps names whose rest is a
    number; we do the same and also take ``P.<epoch>.index`` (tf.keras).
    """
    prefix = str(prefix)
    found: dict[int, str] = {}
    for path in glob.glob(glob.escape(prefix) + ".*"):
        rest = path[len(prefix) :].strip(".")
        if rest.isdigit() and os.path.isfile(path):
            found[int(rest)] = path
        else:
            m = re.fullmatch(r"(\d+)\.index", rest)
            if m and int(m.group(1)) not in found:
                found[int(m.group(1))] = path[: -len(".index")]
    return found


def remove_checkpoints(prefix: str | Path) -> None:
    """Delete every epoch's weights under ``prefix`` (asked-for overwrite:
    a stale later epoch would otherwise still be "latest")."""
    for path in list_checkpoints(prefix).values():
        for f in glob.glob(glob.escape(path) + ".*") + [path]:
            if re.search(r"\.(\d+|index|data-\d+-of-\d+)$", f):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f)


def find_latest_checkpoint(prefix: str | Path) -> str | None:
    """The weights path of the largest epoch, or None."""
    found = list_checkpoints(prefix)
    return found[max(found)] if found else None


# -- reading weights ---------------------------------------------------------
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


# -- writing weights ---------------------------------------------------------
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


def save_checkpoint(prefix: str | Path, epoch: int, model, dtype=None) -> Path:
    """Write ``P.<epoch>`` atomically and return its path.

    Temporary files of ``P`` that killed writers left are removed first.
    """
    path = Path(f"{prefix}.{int(epoch)}")
    data = encode_hdf5_weights(model, dtype)
    with _writing(prefix):
        return atomic_write_bytes(path, data)


STALE_TEMP_SECONDS = 3600.0
"""Where folders cannot be locked (Windows, some network file systems),
temporary files this old count as left by a dead writer."""


def temp_file_pattern(prefix: str | Path) -> re.Pattern:
    """Names of the temporary files :func:`save_checkpoint` and
    :func:`write_config` make for ``prefix`` (``io.atomic_write_bytes``:
    ``.<name>.<8 mkstemp characters>.part``), and of nothing else: other
    prefixes' (``P2``, ``P.1``) and foreign files never match."""
    name = re.escape(Path(prefix).name)
    config = re.escape(CONFIG_SUFFIX)
    return re.compile(rf"\.{name}(?:\.\d+|{config})\.[a-z0-9_]{{8}}\.part")


def remove_stale_temp_files(
    prefix: str | Path, min_age: float = 0.0
) -> list[Path]:
    """Delete ``prefix``'s temporary files (at least ``min_age`` seconds
    old); return what was deleted. Only safe while no live writer of the
    folder can be mid-write: :func:`_writing` makes sure of that."""
    prefix = Path(prefix)
    pattern = temp_file_pattern(prefix)
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(prefix.parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if min_age and now - entry.stat().st_mtime < min_age:
                continue
            os.unlink(entry.path)
        except OSError:  # gone already, or not ours to delete
            continue
        removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def _writing(prefix: str | Path):
    """Write ``prefix``'s files under the folder's shared writers' lock.

    A process killed mid-write leaves its temporary file behind and, dying,
    drops its lock; so whoever gets the lock exclusively knows that every
    temporary file there is dead and removes ``prefix``'s. Then it writes
    holding the lock shared (writers wait only for a clean-up), and syncs
    the folder so the rename survives a power cut too.
    """
    folder = Path(prefix).parent
    ensure_dir(folder)
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):  # Windows: no folder locks
        remove_stale_temp_files(prefix, STALE_TEMP_SECONDS)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another writer is busy: its temporary file is alive
        except OSError:  # no flock here (NFS needs a writable file)
            remove_stale_temp_files(prefix, STALE_TEMP_SECONDS)
        else:
            remove_stale_temp_files(prefix)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)  # drops the lock


# -- models ------------------------------------------------------------------
DEFAULT_MODEL_NAME = "thinseg_default"


def default_model_prefix() -> Path:
    """Checkpoints prefix of the shipped default model.

    Wheels carry it inside the package (``napari_thinseg/weights``); a
    source checkout has it in the repository's ``weights/``.
    """
    here = Path(__file__).resolve().parent
    for folder in (here / "weights", here.parents[1] / "weights"):
        prefix = folder / DEFAULT_MODEL_NAME
        if config_path(prefix).is_file():
            return prefix
    raise ThinsegError(
        "the default model is not installed (weights/"
        f"{DEFAULT_MODEL_NAME}_config.json); give --checkpoints_path"
    )


def resolve_prefix(path: str | Path) -> Path:
    """A checkpoints prefix from a prefix, its config file, or a folder
    holding exactly one ``*_config.json``."""
    path = Path(path)
    if path.name.endswith(CONFIG_SUFFIX):
        return path.with_name(path.name[: -len(CONFIG_SUFFIX)])
    if path.is_dir():
        configs = sorted(path.glob(f"*{CONFIG_SUFFIX}"))
        if len(configs) == 1:
            return resolve_prefix(configs[0])
        if not configs:
            raise ThinsegError(f"{path}: folder holds no *{CONFIG_SUFFIX}")
        raise ThinsegError(
            f"{path}: folder holds {len(configs)} checkpoint configs; name one"
        )
    return path


def load_model(path: str | Path, epoch: int | None = None):
    """Build the model of a checkpoint and load its latest (or given) epoch.

    Returns
    -------
    model, config, weights_path
    """
    if str(path).endswith(".keras"):
        if epoch is not None:
            raise ThinsegError(f"{path}: a .keras file holds a single epoch")
        model, config = load_keras_file(path)
        return model, config, str(path)
    prefix = resolve_prefix(path)
    config = read_config(prefix)
    found = list_checkpoints(prefix)
    if not found:
        raise ThinsegError(f"{prefix}: no weights ({prefix}.<epoch>) found")
    if epoch is None:
        epoch = max(found)
    if epoch not in found:
        raise ThinsegError(f"{prefix}: no weights for epoch {epoch}")
    weights = read_weights(found[epoch])
    model = build(config)
    assign_weights(model, weights, found[epoch])
    return model, config, found[epoch]


# -- .keras archives ---------------------------------------------------------
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
    """The :class:`~.model.ModelConfig` of a ``.keras`` archive, from its
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
    if not (isinstance(shape, list) and len(shape) == 4 and shape[-1] == 3):
        raise ThinsegError(
            f"{path}: input shape {shape} is not an RGB image batch"
        )
    try:
        return ModelConfig(
            n_classes=filters, input_height=shape[1], input_width=shape[2]
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
