"""The "Thin sections" panel: every step of the plugin in one dock.

The six docks side by side were taller than any screen (the Measure dock
alone wanted 980 px). The panel holds them, the folders and the point
count, one tab each, in the order of the work (auto-label, colours,
export, train, predict, folders, measure, point count); each tab scrolls
vertically when the window is short, so every control is reachable on a
1080p screen, and never sideways. Each widget also stays a dock of its
own (the manifest lists them all).
"""

from __future__ import annotations

from qtpy.QtCore import QSize, Qt
from qtpy.QtWidgets import QFrame, QScrollArea, QTabWidget

from ._common import taken_out_of_dock
from .autolabel import AutoLabelWidget
from .batch import BatchWidget
from .colors import ColorsWidget
from .export import ExportWidget
from .measure import MeasureWidget
from .point_count import PointCountWidget
from .predict import PredictWidget
from .train import TrainWidget

STEPS = (
    ("Auto-label", AutoLabelWidget),
    ("Colours", ColorsWidget),
    ("Export", ExportWidget),
    ("Train", TrainWidget),
    ("Predict", PredictWidget),
    ("Folders", BatchWidget),
    ("Measure", MeasureWidget),
    ("Point count", PointCountWidget),
)
"""The tabs, in the order of the work."""

PANEL_WIDTH = 540
"""The panel's preferred width in pixels (its minimum is the widest
step's)."""


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
        # as wide as the widest step, with room for the tab's scroll bar
        bar = area.verticalScrollBar().sizeHint().width()
        widest = max(w.minimumSizeHint().width() for w in self.steps.values())
        self.setMinimumWidth(widest + bar + 4)

    def sizeHint(self) -> QSize:
        width = max(PANEL_WIDTH, self.minimumWidth())
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
