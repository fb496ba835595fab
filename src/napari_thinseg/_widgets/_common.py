"""Helpers shared by the widgets: layer combos, layer arrays, notifications.

Nothing here touches private napari attributes; layer lists are followed
through ``viewer.layers.events`` and each layer's ``events.name``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import numpy as np
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import Signal
from qtpy.QtWidgets import QComboBox, QPushButton, QWidget

from ..errors import ThinsegError

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
