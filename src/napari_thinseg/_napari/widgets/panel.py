"""The "Thin sections" panel: every step of the plugin in one dock.

The six docks side by side were taller than any screen (the Measure dock
alone wanted 980 px). The panel holds them, the folders, the whole slides
and the point count, one tab each, in the order of the work (auto-label,
colours, export, train, predict, folders, whole slide, measure, point
count); each tab scrolls vertically when the window is short, so every
control is reachable on a 1080p screen, and never sideways. Each widget
also stays a dock of its own (the manifest lists them all).
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QLineEdit,
    QMenu,
    QScrollArea,
    QTableWidget,
    QTabWidget,
    QToolButton,
)

from ..notify import notify_info, reports_errors
from ..session import open_session, save_session, session_settings
from ._common import LAYER_CHOICE, LayerCombo, taken_out_of_dock
from .autolabel.dock import AutoLabelWidget
from .colors import ColorsWidget
from .measure.dock import MeasureWidget
from .measure.export import ExportWidget
from .measure.point_count import PointCountWidget
from .predict.dock import PredictWidget
from .predict.folders import FoldersWidget
from .predict.slide import SlideWidget
from .train.dock import TrainWidget

STEPS = (
    ("Auto-label", AutoLabelWidget),
    ("Colours", ColorsWidget),
    ("Export", ExportWidget),
    ("Train", TrainWidget),
    ("Predict", PredictWidget),
    ("Folders", FoldersWidget),
    ("Whole slide", SlideWidget),
    ("Measure", MeasureWidget),
    ("Points", PointCountWidget),
)
"""The tabs, in the order of the work."""

PANEL_WIDTH = 540
"""The panel's preferred width in pixels, at least (wider when its tabs
need it; its minimum is the widest step's)."""


class ThinSectionsPanel(QTabWidget):
    """All the plugin's steps as tabs of one dock.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Attributes
    ----------
    steps : dict of str to QWidget
        The step widgets by tab title ("Train" is the
        :class:`~.train.TrainWidget`...).
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.steps = {}
        for title, widget_class in STEPS:
            widget = widget_class(napari_viewer)
            area = QScrollArea()
            area.setWidgetResizable(True)
            area.setHorizontalScrollBarPolicy(
                Qt.ScrollBarPolicy.ScrollBarAlwaysOff
            )
            area.setFrameShape(QFrame.Shape.NoFrame)
            area.setWidget(widget)
            self.addTab(area, title)
            self.steps[title] = widget
        self.setDocumentMode(True)
        self.setCornerWidget(self._session_button())
        # as wide as the widest step, with room for the tab's scroll bar
        bar = area.verticalScrollBar().sizeHint().width()
        widest = max(w.minimumSizeHint().width() for w in self.steps.values())
        self.setMinimumWidth(widest + bar + 4)

    def _session_button(self) -> QToolButton:
        """ "Session": save the day's work as a folder, or open one."""
        menu = QMenu(self)
        menu.addAction("Save session…", self.save_session_dialog)
        menu.addAction("Open session…", self.open_session_dialog)
        tool = QToolButton()
        tool.setText("Session")
        tool.setToolTip(
            "Save the images, labels, points and the model trained last as "
            "a folder, or open one again"
        )
        tool.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        tool.setMenu(menu)
        # room for the menu's arrow after the text (napari's style sheet
        # gave none: the arrow lay over the final "n"), and a gap to the
        # panel's edge
        tool.setStyleSheet(
            "QToolButton { padding-left: 6px; padding-right: 18px; "
            "margin-right: 4px; }"
        )
        return tool

    @reports_errors
    def save_session(self, folder, overwrite: bool = False):
        """Save the viewer's work and the steps' settings as a session."""
        path = save_session(self.viewer, folder, overwrite, self.settings())
        notify_info(f"session saved to {path.parent}")
        return path

    @reports_errors
    def open_session(self, folder):
        """Open a session folder (layers, model and settings)."""
        layers = open_session(self.viewer, folder)
        self.apply_settings(session_settings(folder))
        notify_info(f"session {Path(folder).name}: {len(layers)} layer(s)")
        return layers

    def settings(self) -> dict:
        """Every step's settings: the value of each of its controls, in
        order (layer choices and table cells left out: they follow the
        layers)."""
        return {
            title: [[type(c).__name__, _value(c)] for c in _settings(step)]
            for title, step in self.steps.items()
        }

    def apply_settings(self, settings: dict) -> None:
        """Set the steps' controls from :meth:`settings` (a step whose
        controls changed since is skipped)."""
        for title, values in settings.items():
            step = self.steps.get(title)
            controls = [] if step is None else _settings(step)
            kinds = [type(c).__name__ for c in controls]
            if kinds != [kind for kind, _ in values]:
                continue
            for control, (_, value) in zip(controls, values, strict=True):
                _set_value(control, value)

    def save_session_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save session to")
        if folder:
            # a folder chosen on purpose: its old session is replaced
            self.save_session(folder, overwrite=True)

    def open_session_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open session")
        if folder:
            self.open_session(folder)

    def sizeHint(self) -> QSize:
        # wide enough for every tab beside the Session button, unscrolled
        tabs = self.tabBar().sizeHint().width()
        corner = self.cornerWidget().sizeHint().width()
        width = max(PANEL_WIDTH, self.minimumWidth(), tabs + corner + 4)
        return QSize(width, super().sizeHint().height())

    def show_step(self, title: str):
        """Bring the tab ``title`` to the front; returns its widget."""
        self.setCurrentIndex(list(self.steps).index(title))
        return self.steps[title]

    def stop_jobs(self) -> None:
        """Stop the running training and prediction, if any."""
        for widget in self.steps.values():
            if getattr(widget, "worker", None) is not None and hasattr(
                widget, "stop"
            ):
                widget.stop()

    def event(self, event) -> bool:
        # closing the dock takes the panel out, not the steps inside it
        if taken_out_of_dock(self, event):
            self.stop_jobs()
        return super().event(event)


def _is_layer_choice(control) -> bool:
    """A choice of layer (it follows the layers, not the session)."""
    return isinstance(control, LayerCombo) or bool(
        control.property(LAYER_CHOICE)
    )


def _settings(step) -> list:
    """The controls of a step that hold settings, in creation order."""
    out = [*step.findChildren(QAbstractSpinBox), *step.findChildren(QComboBox)]
    out += [b for b in step.findChildren(QAbstractButton) if b.isCheckable()]
    out += step.findChildren(QLineEdit)
    return [
        c
        for c in out
        if not _is_layer_choice(c)
        and not any(isinstance(a, QTableWidget) for a in _ancestors(c, step))
        and not (
            isinstance(c, QLineEdit) and isinstance(c.parent(), QComboBox)
        )
    ]


def _ancestors(widget, stop):
    parent = widget.parentWidget()
    while parent is not None and parent is not stop:
        yield parent
        parent = parent.parentWidget()


def _value(control):
    if isinstance(control, QComboBox):
        return control.currentIndex()
    if isinstance(control, QAbstractButton):
        return control.isChecked()
    if isinstance(control, QLineEdit):
        return control.text()
    return control.value()


def _set_value(control, value) -> None:
    if isinstance(control, QComboBox):
        if 0 <= int(value) < control.count():
            control.setCurrentIndex(int(value))
    elif isinstance(control, QAbstractButton):
        control.setChecked(bool(value))
    elif isinstance(control, QLineEdit):
        control.setText(str(value))
        control.editingFinished.emit()
    else:
        control.setValue(value)
