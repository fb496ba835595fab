"""The "Thin sections" panel at 1920 x 1080: one dock, every step's
controls reachable by scrolling its tab, none beyond the screen."""

from __future__ import annotations

import os
from pathlib import Path

from qtpy.QtCore import QPoint, QRect
from qtpy.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QScrollArea,
    QSlider,
    QTableWidget,
)

from napari_thinseg._napari.widgets.panel import STEPS, ThinSectionsPanel
from napari_thinseg.dataset.synth import synthetic_sandstone

SCREEN = (1920, 1080)
CONTROLS = (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QSlider,
    QTableWidget,
)
SHOTS = os.environ.get("THINSEG_SCREENSHOTS")
"""A folder: the test also saves the panel's screenshots there (the
README's come from it)."""


def scroll_areas(widget) -> list[QScrollArea]:
    """The scroll areas ``widget`` lies in, innermost first."""
    out, parent = [], widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            out.append(parent)
        parent = parent.parentWidget()
    return out


def controls(step):
    """The controls a user can reach in a step (shown ones)."""
    found = []
    for kind in CONTROLS:
        found += [w for w in step.findChildren(kind) if w.isVisibleTo(step)]
    return found


def open_panel(make_napari_viewer):
    """A shown viewer at 1920 x 1080 with the panel docked (a function,
    not a fixture: a fixture's value would outlive napari's leak check)."""
    viewer = make_napari_viewer(show=True)
    image, labels = synthetic_sandstone((120, 160), seed=0)
    viewer.add_image(image, name="ts", rgb=True)
    viewer.add_labels(labels, name="ts labels")
    window = viewer.window._qt_window
    window.resize(*SCREEN)
    dock, panel = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Thin sections"
    )
    QApplication.processEvents()
    return viewer, window, dock, panel


def test_every_control_of_every_step_is_reachable_at_1080p(
    make_napari_viewer,
):
    viewer, window, dock, panel = open_panel(make_napari_viewer)
    assert isinstance(panel, ThinSectionsPanel)
    assert list(panel.steps) == [title for title, _ in STEPS]
    # nothing makes the window taller than the screen
    assert window.minimumSizeHint().height() <= SCREEN[1]
    assert window.height() == SCREEN[1]
    window_rect = QRect(window.mapToGlobal(QPoint(0, 0)), window.size())
    # every tab in sight, no scroll arrows
    bar = panel.tabBar()
    for index in range(bar.count()):
        assert bar.rect().contains(bar.tabRect(index)), bar.tabText(index)
    for index, title in enumerate(panel.steps):
        panel.setCurrentIndex(index)
        QApplication.processEvents()
        area = panel.currentWidget()
        step = panel.steps[title]
        viewport = area.viewport()
        shown = controls(step)
        assert len(shown) >= 3, title
        for control in shown:
            what = f"{title}: {type(control).__name__} {control.objectName()}"
            # scrolled into view by every scroll area it lies in (the
            # tab's, and a step's own such as Train's settings), innermost
            # first; then it is in sight in each of them
            areas = scroll_areas(control)
            for inner in areas:
                inner.ensureWidgetVisible(control, 0, 0)
                QApplication.processEvents()
            for inner in areas:
                port = inner.viewport()
                place = control.mapTo(port, QPoint(0, 0))
                seen = QRect(place, control.size()).intersected(port.rect())
                assert not seen.isEmpty(), what
                # never sideways: nothing is wider than its scroll area
                assert inner.horizontalScrollBar().maximum() == 0, what
            if isinstance(control, QTableWidget) and control.rowCount():
                # nor a table's columns (Measure's scrolled sideways)
                assert control.horizontalScrollBar().maximum() == 0, what
            top_left = control.mapTo(viewport, QPoint(0, 0))
            # and on the 1080 p window
            corner = viewport.mapToGlobal(top_left)
            assert window_rect.contains(corner), what
            # never sideways: the control fits the tab's width
            assert top_left.x() + min(control.width(), 40) <= (
                viewport.width() + 1
            ), what
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            for inner in [area, *step.findChildren(QScrollArea)]:
                inner.verticalScrollBar().setValue(0)
            QApplication.processEvents()
            window.grab().save(str(Path(SHOTS) / f"panel_{title}.png"))


def test_the_session_button_is_not_clipped_at_1080p(make_napari_viewer):
    """Issue 26: the Session button's menu arrow lay over its final "n",
    at the panel's edge."""
    viewer, window, dock, panel = open_panel(make_napari_viewer)
    tool = panel.cornerWidget()
    assert tool.text() == "Session"
    text = tool.fontMetrics().horizontalAdvance(tool.text())
    # the text, and the arrow's room after it
    assert tool.width() >= text + 16
    assert tool.width() >= tool.sizeHint().width()
    right = tool.mapTo(panel, QPoint(tool.width(), 0)).x()
    assert right <= panel.width()
    # beside the tabs, not over them
    bar = panel.tabBar()
    tabs_right = bar.mapTo(panel, QPoint(bar.width(), 0)).x()
    assert tool.mapTo(panel, QPoint(0, 0)).x() >= tabs_right
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        window.grab().save(str(Path(SHOTS) / "panel_session.png"))


def test_each_widget_still_docks_alone(make_napari_viewer):
    viewer = make_napari_viewer()
    for name in ("Auto-label", "Train", "Predict", "Measure"):
        _, widget = viewer.window.add_plugin_dock_widget(
            "napari-thinseg", name
        )
        assert not isinstance(widget, ThinSectionsPanel)


def test_closing_the_panel_stops_its_jobs(make_napari_viewer):
    viewer, _, dock, panel = open_panel(make_napari_viewer)
    stopped = []
    train = panel.steps["Train"]
    train.worker = object()  # as if training
    train.stop = lambda: stopped.append("train")
    viewer.window.remove_dock_widget(dock)
    assert stopped == ["train"]
    train.worker = None
    del train.stop
