"""Helpers shared by the widgets: layer combos, layer arrays, notifications.

Nothing here touches private napari attributes; layer lists are followed
through ``viewer.layers.events`` and each layer's ``events.name``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from ...errors import ThinsegError

logger = logging.getLogger(__name__)


def notify_error(message: str) -> None:
    """Show ``message`` (first line only) as a napari error notification."""
    show_error(str(message).strip().splitlines()[0] if message else "error")


def notify_info(message: str) -> None:
    """Show ``message`` as a napari info notification."""
    show_info(str(message))


def notify_warning(message: str) -> None:
    """Show ``message`` as a napari warning notification."""
    show_warning(str(message))


def one_line(exc: BaseException) -> str:
    """A one-line description of ``exc`` for a notification."""
    if isinstance(exc, ThinsegError):
        text = str(exc)
    else:
        text = (
            f"{type(exc).__name__}: {exc}"
            if str(exc)
            else (type(exc).__name__)
        )
    return text.strip().splitlines()[0] if text.strip() else "error"


def reports_errors(method: Callable) -> Callable:
    """Decorate a widget action so that errors become notifications.

    A :class:`ThinsegError` is shown as its one-line message; anything else
    is logged with its traceback and shown as one line, never raised into
    the Qt event loop.
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except ThinsegError as exc:
            notify_error(one_line(exc))
        except Exception as exc:  # a widget must never crash napari
            logger.exception("napari-thinseg: %s failed", method.__name__)
            notify_error(one_line(exc))
        return None

    return wrapper


def button(
    text: str, action: Callable[[], object], tip: str = ""
) -> QPushButton:
    """A push button that calls ``action()`` (without Qt's ``checked``)."""
    btn = QPushButton(text)
    if tip:
        btn.setToolTip(tip)
    btn.clicked.connect(lambda *_: action())
    return btn


def status_label() -> QLabel:
    """An empty, word-wrapped label for a widget's status line."""
    label = QLabel("")
    label.setWordWrap(True)
    return label


def idle_progress_bar() -> QProgressBar:
    """A progress bar at rest (0 of 1)."""
    bar = QProgressBar()
    bar.setRange(0, 1)
    bar.setValue(0)
    return bar


def report_failure(
    widget, message: str, notify: Callable[[str], None] | None = None
) -> None:
    """Tell that a widget's run failed: ``notify(message)`` (if given),
    the message in its ``status_label``, and its ``failed`` signal."""
    if notify is not None:
        notify(message)
    widget.status_label.setText(message)
    widget.failed.emit(message)


def single_shot_timer(
    parent: QWidget, interval_ms: int, callback: Callable[[], object]
) -> QTimer:
    """A single-shot :class:`QTimer` of ``parent`` that calls
    ``callback()`` ``interval_ms`` after each ``start()`` (a debounce)."""
    timer = QTimer(parent)
    timer.setSingleShot(True)
    timer.setInterval(interval_ms)
    timer.timeout.connect(callback)
    return timer


def theme_colors(viewer) -> tuple[str, str]:
    """The (background, text) colours of the viewer's napari theme, as hex;
    matplotlib's white and black for an unknown theme."""
    from napari.utils.theme import get_theme

    try:
        theme = get_theme(viewer.theme)
        return theme.background.as_hex(), theme.text.as_hex()
    except Exception:  # an unknown theme: matplotlib's colours
        return "white", "black"


def disconnect_all(connections: list, alive: list) -> None:
    """Disconnect the ``(emitter, callback)`` pairs of a widget that goes
    away, and mark it dead (``alive[0] = False``)."""
    alive[0] = False
    for emitter, callback in connections:
        with contextlib.suppress(RuntimeError, TypeError, ValueError):
            emitter.disconnect(callback)
    connections.clear()


def layer_array(layer) -> np.ndarray:
    """A layer's data as a numpy array (full resolution if multiscale)."""
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return np.asarray(data)


def plane_shape(layer) -> tuple[int, ...]:
    """The (rows, cols) of a 2D image or labels layer; ``()`` otherwise."""
    shape = tuple(layer_array(layer).shape)
    if getattr(layer, "rgb", False):
        shape = shape[:-1]
    return shape if len(shape) == 2 else ()


class LayerWatcher:
    """Call ``callback()`` whenever layers are added, removed, moved or
    renamed.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layer list to follow.
    callback : callable
        Called without arguments. A bound method is held weakly by napari's
        event emitters, so the watcher does not keep its widget alive.
    """

    def __init__(self, viewer, callback: Callable[[], None]):
        self.viewer = viewer
        self._callback = callback
        events = viewer.layers.events
        for emitter in (
            events.inserted,
            events.removed,
            events.moved,
            events.reordered,
        ):
            emitter.connect(self._changed)
        self._connect_names()

    def _connect_names(self) -> None:
        # EventEmitter.connect ignores callbacks that are already connected
        for layer in self.viewer.layers:
            layer.events.name.connect(self._changed)

    def _changed(self, event=None) -> None:
        self._connect_names()
        self._callback()


class LayerCombo(QComboBox):
    """A combo box of the viewer's layers of one type, kept up to date.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layers to list.
    layer_type : type
        ``napari.layers.Labels``, ``napari.layers.Image``, ...
    parent : QWidget, optional
        Qt parent.

    Attributes
    ----------
    layer_changed : Signal(object)
        Emitted with the chosen layer (or ``None``) when the choice changes.
    """

    layer_changed = Signal(object)

    def __init__(self, viewer, layer_type: type, parent: QWidget = None):
        super().__init__(parent)
        self.viewer = viewer
        self.layer_type = layer_type
        self._current = None
        self.currentIndexChanged.connect(self._on_index)
        self._watcher = LayerWatcher(viewer, self.refresh)
        self.refresh()

    def layers(self) -> list:
        """The viewer's layers of this combo's type, in list order."""
        return [
            ly for ly in self.viewer.layers if isinstance(ly, self.layer_type)
        ]

    def layer(self):
        """The chosen layer, or ``None``."""
        return self._current

    def set_layer(self, layer) -> None:
        """Choose ``layer`` (it must be one of :meth:`layers`)."""
        for i in range(self.count()):
            if self.itemData(i) is layer:
                self.setCurrentIndex(i)
                return
        raise ThinsegError(f"{getattr(layer, 'name', layer)}: not listed")

    def refresh(self) -> None:
        """Re-list the layers, keeping the chosen one when it remains."""
        previous = self._current
        layers = self.layers()
        self.blockSignals(True)
        try:
            self.clear()
            for layer in layers:
                self.addItem(layer.name, layer)
            index = next(
                (i for i, ly in enumerate(layers) if ly is previous), 0
            )
            self.setCurrentIndex(index if layers else -1)
        finally:
            self.blockSignals(False)
        self._on_index(self.currentIndex())

    def _on_index(self, index: int) -> None:
        layer = self.itemData(index) if index >= 0 else None
        if layer is not self._current:
            self._current = layer
            self.layer_changed.emit(layer)


# -- long-running work --------------------------------------------------
CONFIDENCE_KEY = "thinseg_confidence"
"""``metadata`` key of the confidence Image layers the Predict widget
writes (they are not images to train on or predict)."""


def sync_progress(pbar, step: int, total: int, desc: str = "") -> None:
    """Move a napari ``progress`` bar (a worker's ``pbar``) to ``step`` of
    ``total``; ``desc`` replaces its description when it changed."""
    if pbar is None:
        return
    if total > 0 and pbar.total != total:
        pbar.total = total
    if step > pbar.n:
        pbar.update(step - pbar.n)
    if desc and desc != getattr(pbar, "desc", None):
        pbar.set_description(desc)


# -- models trained in this session -------------------------------------
@dataclass
class TrainedModel:
    """A model the Train widget trained in this Python session.

    Attributes
    ----------
    model : keras.Model
        The trained network, in memory.
    config : napari_thinseg.model.ModelConfig
        Its config (sizes, class scheme).
    name : str
        What the Predict widget shows, e.g. ``"P (epoch 3)"``.
    checkpoint : str or None
        The last checkpoint written for it, if any.
    """

    model: object
    config: object
    name: str
    checkpoint: str | None = None


class TrainedModels:
    """The models trained in this session, shared by Train and Predict.

    A module-level registry (:data:`trained_models`) rather than a per
    viewer one: a model does not belong to a viewer, and a Predict widget
    of any window can use it. Only the latest ``keep`` models are held (a
    VGG-UNet with its optimizer state is a few hundred MB).

    Listeners are called without arguments after every change, on the GUI
    thread; bound methods are held weakly so that widgets can go away.
    """

    def __init__(self, keep: int = 1):
        self.keep = keep
        self._items: list[TrainedModel] = []
        self._listeners: list = []

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[TrainedModel]:
        """The held models, oldest first."""
        return list(self._items)

    def latest(self) -> TrainedModel | None:
        """The most recently trained model, or ``None``."""
        return self._items[-1] if self._items else None

    def add(self, item: TrainedModel) -> None:
        """Hold ``item`` as the latest model (dropping the oldest)."""
        self._items.append(item)
        del self._items[: max(0, len(self._items) - self.keep)]
        self._notify()

    def clear(self) -> None:
        """Forget every model."""
        self._items.clear()
        self._notify()

    def connect(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every change."""
        ref = (
            weakref.WeakMethod(callback)
            if hasattr(callback, "__self__")
            else (lambda cb=callback: cb)
        )
        self._listeners.append(ref)

    def disconnect(self, callback: Callable[[], None]) -> None:
        """Stop calling ``callback``."""
        self._listeners = [
            ref for ref in self._listeners if ref() not in (None, callback)
        ]

    def _notify(self) -> None:
        alive = []
        for ref in self._listeners:
            callback = ref()
            if callback is None:
                continue
            try:
                callback()
            except RuntimeError:  # its Qt widget was deleted
                continue
            alive.append(ref)
        self._listeners = alive


trained_models = TrainedModels()
"""Models trained in this session (see :class:`TrainedModels`)."""


def import_tensorflow():
    """TensorFlow, imported the safe way (see :func:`..model.tensorflow`);
    call it in a worker before any model code."""
    from ...model.backend import tensorflow

    return tensorflow()
