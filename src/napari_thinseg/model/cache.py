"""Models kept in memory between runs, safe to share between threads.

Three registries, all module-level (a model belongs to no viewer: a Predict
widget of any window can use it):

- :data:`loaded_models`: checkpoints already loaded, by a key that changes
  when the weights file does (a retrained checkpoint is never served
  stale), the least recently used dropped beyond ``keep``;
- :data:`trained_models`: models trained in this session, the latest
  ``keep`` held (a VGG-UNet with its optimizer state is a few hundred MB);
- :data:`inference_networks`: models rebuilt for prediction at a tile size
  and precision, with their traced ``tf.function``, per (model, tile size,
  precision, batch), kept in step with the model's weights.

Workers load and add while the GUI reads; every access holds the
registry's lock, and listeners are called outside it.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from .backend import tensorflow
from .checkpoints import (
    config_path,
    find_latest_checkpoint,
    load_model,
    read_config,
    resolve_prefix,
)
from .config import ModelConfig
from .keras_archive import read_keras_config
from .vgg_unet import (
    compute_dtype,
    copy_weights,
    inference_function,
    rebuild,
)


# -- checkpoints loaded -------------------------------------------------------
@dataclass(frozen=True)
class ModelFile:
    """A checkpoint on disk, described without loading it.

    ``key`` (resolved prefix, weights path, weights mtime) names its cache
    entry: a new epoch or a rewritten file gives a new key.
    """

    prefix: Path
    config: ModelConfig
    weights: str
    key: tuple

    @property
    def name(self) -> str:
        return self.prefix.name


def checkpoint_prefix(path: str | Path) -> Path:
    """A checkpoints prefix (or ``.keras`` file) from what a user typed,
    refusing one without a config."""
    path = Path(path).expanduser()
    if str(path).endswith(".keras"):
        return path
    prefix = resolve_prefix(path)
    if not config_path(prefix).is_file():
        raise ThinsegError(f"{config_path(prefix)}: no such file")
    return prefix


def describe(prefix: str | Path) -> ModelFile:
    """Config and latest weights of a checkpoint (or ``.keras`` file),
    read without building the model or running anything in the file."""
    prefix = Path(prefix)
    if prefix.suffix == ".keras":
        config = read_keras_config(prefix)
        weights: str | None = str(prefix)
    else:
        config = read_config(prefix)
        weights = find_latest_checkpoint(prefix)
    if weights is None:
        raise ThinsegError(f"{prefix}: no weights ({prefix}.<epoch>)")
    index = Path(f"{weights}.index")
    stamp = (index if index.is_file() else Path(weights)).stat()
    key = (str(prefix.resolve()), weights, stamp.st_mtime_ns)
    return ModelFile(prefix, config, weights, key)


class LeastRecentlyUsed:
    """A thread-safe mapping that drops its least recently used items
    beyond ``keep`` (the skeleton of the caches below)."""

    def __init__(self, keep: int):
        self.keep = keep
        self._items: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _get(self, key: tuple):
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def _put(self, key: tuple, item: tuple) -> None:
        with self._lock:
            self._items[key] = item
            self._items.move_to_end(key)
            while len(self._items) > self.keep:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class LoadedModels(LeastRecentlyUsed):
    """Checkpoints loaded already, least recently used dropped first."""

    def __init__(self, keep: int = 2):
        super().__init__(keep)

    def get(self, key: tuple) -> tuple | None:
        """``(model, config)`` of a loaded checkpoint, or None."""
        return self._get(key)

    def put(self, key: tuple, model, config: ModelConfig) -> None:
        self._put(key, (model, config))

    def load(self, file: ModelFile) -> tuple:
        """``(model, config)`` of ``file``: from memory when its weights
        have not changed, else loaded (and kept)."""
        cached = self.get(file.key)
        if cached is not None:
            return cached
        model, config, _ = load_model(file.prefix)
        self.put(file.key, model, config)
        return model, config


# -- models trained in this session -------------------------------------------
@dataclass
class TrainedModel:
    """A model trained in this Python session.

    Attributes
    ----------
    model : keras.Model
        The trained network, in memory.
    config : ModelConfig
        Its config (sizes, class scheme).
    name : str
        What the Predict widget shows, e.g. ``"P (epoch 3)"``.
    checkpoint : str or None
        The last checkpoint written for it, if any.
    """

    model: object
    config: ModelConfig
    name: str
    checkpoint: str | None = None


class TrainedModels:
    """The models trained in this session, shared by Train and Predict.

    Only the latest ``keep`` models are held. Listeners are called without
    arguments after every change (by the thread that made it); bound
    methods are held weakly so that widgets can go away, and a listener
    whose Qt object was deleted (``RuntimeError``) is dropped.
    """

    def __init__(self, keep: int = 1):
        self.keep = keep
        self._items: list[TrainedModel] = []
        self._listeners: list = []
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def items(self) -> list[TrainedModel]:
        """The held models, oldest first."""
        with self._lock:
            return list(self._items)

    def latest(self) -> TrainedModel | None:
        """The most recently trained model, or ``None``."""
        with self._lock:
            return self._items[-1] if self._items else None

    def add(self, item: TrainedModel) -> None:
        """Hold ``item`` as the latest model (dropping the oldest)."""
        with self._lock:
            self._items.append(item)
            del self._items[: max(0, len(self._items) - self.keep)]
        self._notify()

    def clear(self) -> None:
        """Forget every model."""
        with self._lock:
            self._items.clear()
        self._notify()

    def connect(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change."""
        ref = (
            weakref.WeakMethod(callback)
            if hasattr(callback, "__self__")
            else (lambda cb=callback: cb)
        )
        with self._lock:
            self._listeners.append(ref)

    def disconnect(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``."""
        with self._lock:
            self._listeners = [
                ref for ref in self._listeners if ref() not in (None, callback)
            ]

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        dead = []
        for ref in listeners:
            callback = ref()
            if callback is None:
                dead.append(ref)
                continue
            try:
                callback()
            except RuntimeError:  # its Qt widget was deleted
                dead.append(ref)
        if dead:
            with self._lock:
                self._listeners = [r for r in self._listeners if r not in dead]


# -- networks rebuilt for prediction -----------------------------------------
@dataclass
class InferenceNetwork:
    """A trained model rebuilt for prediction.

    Attributes
    ----------
    model : keras.Model
        The VGG-UNet at ``tile_shape`` in ``precision`` (the trained model
        itself where that is what it already is).
    probabilities : tf.function
        uint8 tiles ``(batch, h, w, 3)`` -> float32 softmax at the tiles'
        resolution (:func:`~.vgg_unet.inference_function`).
    """

    model: object
    probabilities: Callable
    tile_shape: tuple[int, int]
    precision: str
    batch: int


def weights_fingerprint(model) -> bytes:
    """A cheap digest of ``model``'s weights (each variable's sum and a
    strided sample, some ms for the VGG-UNet): a training step or
    ``set_weights`` changes it."""
    tf = tensorflow()
    parts = []
    for v in model.weights:
        flat = tf.reshape(v.value, [-1])
        step = max(1, int(flat.shape[0]) // 64)
        parts.append(np.asarray(flat[::step], np.float32).tobytes())
        parts.append(np.float64(tf.reduce_sum(flat)).tobytes())
    return b"".join(parts)


class InferenceNetworks(LeastRecentlyUsed):
    """Trained models rebuilt at tile size and precision, least recently
    used dropped beyond ``keep``.

    A network is built once per (model, tile shape, precision, batch) and
    traced once (one fixed batch shape); when the trained model's weights
    changed since (trained further, ``set_weights``), they are copied
    over, which neither rebuilds nor retraces.
    """

    def __init__(self, keep: int = 4):
        super().__init__(keep)

    def get(
        self,
        model,
        config: ModelConfig,
        tile_shape: tuple[int, int],
        precision: str,
        batch: int = 1,
    ) -> InferenceNetwork:
        """``model`` as an :class:`InferenceNetwork` at ``tile_shape`` in
        ``precision`` (resolved), from memory where possible."""
        tile_shape = (int(tile_shape[0]), int(tile_shape[1]))
        key = (id(model), tile_shape, precision, int(batch))
        with self._lock:
            item = self._get(key)
            if item is not None and item[0]() is model:
                network, fingerprint = item[1], item[2]
            else:  # new, or its id now names another model
                net = self._network_model(model, config, tile_shape, precision)
                network = InferenceNetwork(
                    net,
                    inference_function(net, int(batch)),
                    tile_shape,
                    precision,
                    int(batch),
                )
                fingerprint = None
            if network.model is not model:  # a copy: keep it in step
                now = weights_fingerprint(model)
                if fingerprint is not None and now != fingerprint:
                    copy_weights(model, network.model)
                fingerprint = now
            self._put(key, (weakref.ref(model), network, fingerprint))
            return network

    @staticmethod
    def _network_model(model, config, tile_shape, precision):
        same_size = tile_shape == (config.input_height, config.input_width)
        if same_size and compute_dtype(model) == precision:
            return model  # already what is asked for: shares its weights
        return rebuild(model, config, *tile_shape, precision)


loaded_models = LoadedModels()
"""Checkpoints loaded in this session (see :class:`LoadedModels`)."""

trained_models = TrainedModels()
"""Models trained in this session (see :class:`TrainedModels`)."""

inference_networks = InferenceNetworks()
"""Models rebuilt for prediction (see :class:`InferenceNetworks`)."""
