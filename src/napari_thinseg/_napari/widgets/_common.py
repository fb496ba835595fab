"""Helpers shared by the widgets: layer combos, layer arrays, small Qt
parts (buttons, status lines, timers), progress bars.

Nothing here touches private napari attributes; layer lists are followed
through ``viewer.layers.events`` and each layer's ``events.name``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import numpy as np
from qtpy.QtCore import QEvent, QTimer, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QLabel,
    QProgressBar,
    QPushButton,
    QWidget,
)

from ...errors import ThinsegError
from ...progress import Progress, TimeLeft, time_left_text
from ..notify import notify_info

logger = logging.getLogger(__name__)


def button(
    text: str, action: Callable[[], object], tip: str = ""
) -> QPushButton:
    """A push button that calls ``action()`` (without Qt's ``checked``)."""
    btn = QPushButton(text)
    if tip:
        btn.setToolTip(tip)
    btn.clicked.connect(lambda *_: action())
    return btn


class StatusLabel(QLabel):
    """A word-wrapped status line that keeps the height of all its lines.

    A box layout short of room squeezes a wrapped label below the height
    its text needs (a dock shared with another showed the Train tab's
    last line, the result, cut in half); holding the minimum height at
    the text's height for the current width makes the other widgets give
    way instead.
    """

    def __init__(self, text: str = ""):
        super().__init__(text)
        self.setWordWrap(True)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self._hold_height()

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        self._hold_height()

    def _hold_height(self) -> None:
        needed = self.heightForWidth(max(self.width(), 1))
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)


def status_label() -> QLabel:
    """An empty, word-wrapped label for a widget's status line."""
    return StatusLabel("")


def idle_progress_bar() -> QProgressBar:
    """A progress bar at rest (0 of 1)."""
    bar = QProgressBar()
    bar.setRange(0, 1)
    bar.setValue(0)
    return bar


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
        # AttributeError: an emitter torn down with its viewer, when a
        # closed dock's widget is collected after the viewer closed
        with contextlib.suppress(
            AttributeError, RuntimeError, TypeError, ValueError
        ):
            emitter.disconnect(callback)
    connections.clear()


def layer_array(layer) -> np.ndarray:
    """A layer's data as a numpy array (full resolution if multiscale)."""
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return np.asarray(data)


def plane_shape(layer) -> tuple[int, ...]:
    """The (rows, cols) of a 2D image or labels layer; ``()`` otherwise
    (read from the data's shape: a lazy whole slide is not loaded)."""
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    shape = tuple(np.shape(data))
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


LAYER_CHOICE = "thinseg_layer_choice"
"""Qt property of a combo box (other than :class:`LayerCombo`) that
chooses a layer: sessions do not save it."""


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
    none : str, optional
        Offer "no layer" first, with this text (then it is the default).

    Attributes
    ----------
    layer_changed : Signal(object)
        Emitted with the chosen layer (or ``None``) when the choice changes.
    """

    layer_changed = Signal(object)

    def __init__(
        self,
        viewer,
        layer_type: type,
        parent: QWidget = None,
        none: str | None = None,
    ):
        super().__init__(parent)
        self.viewer = viewer
        self.layer_type = layer_type
        self._none = none
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
            if self._none is not None:
                self.addItem(self._none, None)
                layers = [None, *layers]
            for layer in layers[self._none is not None :]:
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


def time_left_status(
    set_status: Callable[[str], None], unit: str, clock=None
) -> Callable[[object], None]:
    """A worker's ``yielded`` callback that puts ``"<unit> 3 of 10 (about
    20 s left)"`` on a status line for each :class:`Progress` event (the
    rate counted from the first event on; ``clock`` for tests)."""
    time_left = TimeLeft() if clock is None else TimeLeft(clock)

    def show(event) -> None:
        if isinstance(event, Progress):
            left = time_left_text(time_left.update(event.step, event.total))
            set_status(
                f"{unit} {event.step} of {event.total}"
                + (f" ({left})" if left else "")
            )

    return show


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


def import_tensorflow():
    """TensorFlow, imported the safe way (see
    :func:`napari_thinseg.model.backend.tensorflow`);
    call it in a worker before any model code."""
    from ...model.backend import tensorflow

    return tensorflow()


def taken_out_of_dock(widget, event) -> bool:
    """Whether ``event`` tells that ``widget`` lost its parent: closing a
    napari dock (its x) takes the widget out with ``setParent(None)``, and
    nothing else tells it; a running job must stop then, not run on
    unseen."""
    return event.type() == QEvent.Type.ParentChange and widget.parent() is None


class StopsWithDock:
    """Stop for a widget that runs one worker at a time (``worker``,
    ``stop_button``, ``_set_status``): ``stop()`` quits the worker at its
    next step; closing the widget's dock stops it too and tells the user
    ``closed_message``. Put it before ``QWidget`` in the bases."""

    closed_message = ""

    def stop(self) -> None:
        """Stop at the job's next step (what it finished is kept)."""
        if self.worker is not None:
            self.worker.quit()
            self.stop_button.setEnabled(False)
            self._set_status("stopping…")

    def event(self, event) -> bool:
        if taken_out_of_dock(self, event) and self.worker is not None:
            self.stop()
            if self.closed_message:
                notify_info(self.closed_message)
        return super().event(event)


def end_run(widget, start_button, succeeded: bool) -> None:
    """A widget's run is over: no worker, Start again, Stop off, the
    progress bar full (done) or empty."""
    widget.worker = None
    start_button.setEnabled(True)
    widget.stop_button.setEnabled(False)
    widget.progress_bar.setRange(0, 1)
    widget.progress_bar.setValue(1 if succeeded else 0)


def results_table(headers, min_height: int = 160):
    """A read-only table of ``headers`` whose columns share the width (no
    sideways scrolling)."""
    from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget

    table = QTableWidget(0, len(headers))
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(
        QHeaderView.ResizeMode.Stretch
    )
    table.setMinimumHeight(min_height)
    return table
