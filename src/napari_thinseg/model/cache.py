"""Models kept in memory between runs, safe to share between threads.

Two registries, both module-level (a model belongs to no viewer: a Predict
widget of any window can use it):

- :data:`loaded_models`: checkpoints already loaded, by a key that changes
  when the weights file does (a retrained checkpoint is never served
  stale), the least recently used dropped beyond ``keep``;
- :data:`trained_models`: models trained in this session, the latest
  ``keep`` held (a VGG-UNet with its optimizer state is a few hundred MB).

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

from ..errors import ThinsegError
from .checkpoints import (
    config_path,
    find_latest_checkpoint,
    load_model,
    read_config,
    resolve_prefix,
)
from .config import ModelConfig
from .keras_archive import read_keras_config


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


class LoadedModels:
    """Checkpoints loaded already, least recently used dropped first."""

    def __init__(self, keep: int = 2):
        self.keep = keep
        self._items: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.RLock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: tuple) -> tuple | None:
        """``(model, config)`` of a loaded checkpoint, or None."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple, model, config: ModelConfig) -> None:
        with self._lock:
            self._items[key] = (model, config)
            self._items.move_to_end(key)
            while len(self._items) > self.keep:
                self._items.popitem(last=False)

    def load(self, file: ModelFile) -> tuple:
        """``(model, config)`` of ``file``: from memory when its weights
        have not changed, else loaded (and kept)."""
        cached = self.get(file.key)
        if cached is not None:
            return cached
        model, config, _ = load_model(file.prefix)
        self.put(file.key, model, config)
        return model, config

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


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


loaded_models = LoadedModels()
"""Checkpoints loaded in this session (see :class:`LoadedModels`)."""

trained_models = TrainedModels()
"""Models trained in this session (see :class:`TrainedModels`)."""
