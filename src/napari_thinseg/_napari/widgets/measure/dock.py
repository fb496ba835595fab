"""The "Measure" widget: modal analysis and porosity while you paint.

A thin shell over :func:`napari_thinseg.measure.measure`. The dock follows
the chosen Labels layer: every brush stroke, fill or new data array starts
a new measurement after a short pause (:data:`DEBOUNCE_MS`). The counting
runs in a napari ``thread_worker`` (:func:`..workers.start`) on a copy of
the labels, so big images stay responsive; a result that a newer change
has made stale is dropped.

What it shows (:mod:`.results`): class fractions with a 95 %
binomial interval (the one a point count of the same number of points
would have) and a 95 % block bootstrap interval (the spatial correlation
of a real thin section), the porosity with both, areas in mm2 when the
pixel size is known, grain and pore size statistics (Folk & Ward), a bar
chart in the scheme's colours and a grain-size histogram. What it counts
(:mod:`.region`): the plane shown, inside an optional region.
"Export CSV..." writes the current measurement.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ....errors import ThinsegError
from ....measure import Measurement, measure, write_csv
from ....measure.modal import NothingLabelled
from ....measure.report import counted_text
from ....schemes import ClassScheme
from ... import workers
from ...layers import scheme_of
from ...notify import notify_error, notify_info, one_line, reports_errors
from ...pixel_scale import follow_file_pixel_sizes
from .._common import (
    LayerCombo,
    button,
    disconnect_all,
    layer_array,
    single_shot_timer,
    status_label,
)
from .region import (
    RegionCombo,
    measured_plane,
    pixel_size_box,
    scale_pixel_size,
)
from .results import MeasurementView

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 400
"""Pause (ms) between the last change and the measurement it starts."""

SIZES_AUTO_PIXELS = 4_000_000
"""Grain and pore sizes are ticked by default up to this many pixels."""

SCALE_TIP = (
    "Take the pixel size from the Labels layer's scale: a scale other than "
    "1 is assumed to be micrometres per pixel (an anisotropic scale counts "
    "as the square root of the pixel area)"
)


# -- work done off the GUI thread ----------------------------------------
@dataclass(frozen=True)
class Request:
    """Everything one measurement needs, copied on the GUI thread."""

    labels: np.ndarray
    scheme: ClassScheme
    mask: np.ndarray | None
    pixel_size_um: float | None
    points: int
    sizes: bool
    name: str
    serial: int = 0


@dataclass(frozen=True)
class Unlabelled:
    """A measurement's result when no pixel carries a class yet (an empty
    layer: normal, said on the status line only)."""

    message: str

    def __str__(self) -> str:
        return self.message


def unlabelled_quietly(job):
    """``job`` with :class:`~napari_thinseg.measure.modal.NothingLabelled`
    returned as :class:`Unlabelled`, not refused (an error)."""

    @functools.wraps(job)
    def quiet(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        except NothingLabelled as exc:
            return Unlabelled(str(exc))

    return quiet


def measure_job(request: Request) -> Measurement | Unlabelled:
    """:func:`~napari_thinseg.measure.measure` of a :class:`Request`, the
    job :func:`..workers.start` runs (its refusals come back as
    :class:`~..workers.Refused`; labels with no class yet as
    :class:`Unlabelled`)."""
    return unlabelled_quietly(measure)(
        request.labels,
        request.scheme,
        mask=request.mask,
        pixel_size_um=request.pixel_size_um,
        points=request.points,
        sizes=request.sizes,
        name=request.name,
    )


class MeasureWidget(MeasurementView, QWidget):
    """Modal analysis and visual porosity of a Labels layer.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Attributes
    ----------
    measurement : Measurement or None
        The measurement on show (what "Export CSV..." writes).
    measured : Signal(object)
        Emitted with each :class:`~napari_thinseg.measure.Measurement`
        shown.
    failed : Signal(str)
        Emitted with the one-line reason when a measurement fails.

    Notes
    -----
    A region restricts the counting: the pixels inside the shapes of a
    Shapes layer, or the nonzero pixels of another Labels layer. For a
    stack the plane shown in the viewer is measured.
    """

    measured = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        follow_file_pixel_sizes(napari_viewer)
        self.measurement: Measurement | None = None
        self._worker = None
        self._pending = False
        self._serial = 0  # bumped by every change; results must match it
        self._last_error: str | None = None
        self._alive = [True]
        self._layer_connections: list = []
        self._region_connections: list = []
        self._viewer_connections: list = []

        self._timer = single_shot_timer(self, DEBOUNCE_MS, self.refresh)

        self._build_ui()
        self._connect_viewer()
        connections = (
            self._layer_connections,
            self._region_connections,
            self._viewer_connections,
        )
        alive = self._alive
        self.destroyed.connect(
            lambda *_, c=connections, a=alive: [
                disconnect_all(x, a) for x in c
            ]
        )
        self._labels_changed(self.labels_combo.layer())

    # -- construction ----------------------------------------------------
    def _build_ui(self) -> None:
        self.labels_combo = LayerCombo(self.viewer, Labels, self)
        self.labels_combo.setToolTip("Labels layer to measure")
        self.region_combo = RegionCombo(self.viewer, self)
        self.region_combo.setToolTip(
            "Count only inside a region: the shapes of a Shapes layer, or "
            "the nonzero pixels of another Labels layer"
        )

        self.pixel_size = pixel_size_box()
        self.from_scale = QCheckBox("from layer scale")
        self.from_scale.setToolTip(SCALE_TIP)

        self.points = QSpinBox()
        self.points.setRange(1, 10_000_000)
        self.points.setValue(300)
        self.points.setToolTip(
            "The binomial interval is the one a point count of this many "
            "points would have (300 is the petrographer's usual count)"
        )
        self.sizes_check = QCheckBox("grain && pore sizes (slower)")
        self.sizes_check.setToolTip(
            "Separate grains and pores and give their sizes: Folk & Ward "
            f"mean and sorting (on by default up to "
            f"{SIZES_AUTO_PIXELS // 1_000_000} Mpx)"
        )
        self.measure_button = button(
            "Measure now", self.refresh, "Measure without waiting"
        )

        pixel_row = QHBoxLayout()
        pixel_row.addWidget(self.pixel_size, 1)
        pixel_row.addWidget(self.from_scale)
        form = QFormLayout()
        form.addRow("labels", self.labels_combo)
        form.addRow("region", self.region_combo)
        form.addRow("pixel size", pixel_row)
        form.addRow("equivalent points", self.points)
        form.addRow(self.sizes_check)

        self.status_label = status_label()

        self._build_view()

        self.overwrite = QCheckBox("overwrite")
        self.overwrite.setToolTip("Replace an existing CSV file")
        self.export_button = button(
            "Export CSV…",
            self.export_csv,
            "Write the measurement on show as one CSV row",
        )
        export_row = QHBoxLayout()
        export_row.addWidget(self.export_button, 1)
        export_row.addWidget(self.overwrite)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.measure_button)
        layout.addWidget(self.status_label)
        layout.addWidget(self.porosity_box)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.sizes_box)
        layout.addWidget(self.canvas, 1)
        layout.addLayout(export_row)

        self._set_point_titles(self.points.value())
        self.labels_combo.layer_changed.connect(self._labels_changed)
        self.region_combo.layer_changed.connect(self._region_changed)
        self.from_scale.toggled.connect(self._scale_toggled)
        self.pixel_size.valueChanged.connect(self.schedule)
        self.points.valueChanged.connect(self._set_point_titles)
        self.points.valueChanged.connect(self.schedule)
        self.sizes_check.toggled.connect(self.schedule)
        self._clear_results()

    def _connect_viewer(self) -> None:
        emitter = self.viewer.dims.events.current_step
        emitter.connect(self._on_step)
        self._viewer_connections.append((emitter, self._on_step))

    # -- following layers -------------------------------------------------
    def _follow(self, layer, connections: list) -> None:
        disconnect_all(connections, [True])
        if layer is None:
            return
        # features / colormap: another scheme or renamed classes
        # (napari has no metadata event; apply_scheme sets all three)
        names = ("paint", "data", "labels_update", "features", "colormap")
        for name in names:
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                emitter.connect(self._on_layer_event)
                connections.append((emitter, self._on_layer_event))
        for emitter in (layer.events.scale, layer.events.translate):
            emitter.connect(self._on_transform)
            connections.append((emitter, self._on_transform))

    def _labels_changed(self, layer) -> None:
        if not self._alive[0]:
            return
        self._follow(layer, self._layer_connections)
        self.region_combo.set_exclude(layer)
        if layer is not None:
            shape = layer_array(layer).shape
            pixels = int(np.prod(shape[-2:])) if len(shape) >= 2 else 0
            self.sizes_check.blockSignals(True)
            self.sizes_check.setChecked(pixels <= SIZES_AUTO_PIXELS)
            self.sizes_check.blockSignals(False)
        self._sync_scale(layer)
        self._clear_results()
        self.schedule()

    def _region_changed(self, layer) -> None:
        if not self._alive[0]:
            return
        self._follow(layer, self._region_connections)
        self.schedule()

    def _on_layer_event(self, event=None) -> None:
        if self._alive[0]:
            self.schedule()

    def _on_transform(self, event=None) -> None:
        if not self._alive[0]:
            return
        self._sync_scale(self.labels_combo.layer())
        self.schedule()

    def _on_step(self, event=None) -> None:
        if not self._alive[0]:
            return
        layer = self.labels_combo.layer()
        if layer is not None and layer.ndim > 2:
            self.schedule()

    # -- pixel size -------------------------------------------------------
    def _sync_scale(self, layer) -> None:
        """Offer the layer's scale as the pixel size when it is not 1."""
        size = None if layer is None else scale_pixel_size(layer)
        self.from_scale.blockSignals(True)
        self.from_scale.setEnabled(size is not None)
        if size is None:
            self.from_scale.setChecked(False)
            self.from_scale.setToolTip(
                f"{SCALE_TIP}. This layer's scale is 1: enter the pixel size"
            )
        else:
            self.from_scale.setChecked(True)
            self.from_scale.setToolTip(
                f"{SCALE_TIP}. This layer: {size:g} µm per pixel"
            )
        self.from_scale.blockSignals(False)
        self._scale_toggled(self.from_scale.isChecked(), schedule=False)

    def _scale_toggled(self, checked: bool, schedule: bool = True) -> None:
        layer = self.labels_combo.layer()
        size = None if layer is None else scale_pixel_size(layer)
        use_scale = bool(checked) and size is not None
        self.pixel_size.setEnabled(not use_scale)
        if use_scale:
            self.pixel_size.blockSignals(True)
            self.pixel_size.setValue(size)
            self.pixel_size.blockSignals(False)
        if schedule:
            self.schedule()

    def pixel_size_um(self) -> float | None:
        """The pixel size used (micrometres), or ``None`` if unknown."""
        layer = self.labels_combo.layer()
        if self.from_scale.isChecked() and layer is not None:
            size = scale_pixel_size(layer)
            if size is not None:
                return size
        value = float(self.pixel_size.value())
        return value if value > 0 else None

    # -- measuring --------------------------------------------------------
    def schedule(self, *_) -> None:
        """Measure after :data:`DEBOUNCE_MS` without further changes."""
        self._serial += 1
        self._timer.start()

    def is_busy(self) -> bool:
        """Whether a measurement is waiting or running."""
        return (
            self._timer.isActive() or self._worker is not None or self._pending
        )

    def request(self) -> Request | None:
        """The inputs of a measurement of the current choices (copied), or
        ``None`` without a Labels layer.

        Raises
        ------
        ThinsegError
            A region that does not fit the labels, an empty Shapes layer.
        """
        layer = self.labels_combo.layer()
        if layer is None:
            return None
        plane, mask, name = measured_plane(
            layer, self.region_combo.layer(), self.viewer
        )
        return Request(
            labels=plane,
            scheme=scheme_of(layer),
            mask=mask,
            pixel_size_um=self.pixel_size_um(),
            points=int(self.points.value()),
            sizes=self.sizes_check.isChecked(),
            name=name,
            serial=self._serial,
        )

    def refresh(self) -> None:
        """Start a measurement now (queued behind a running one)."""
        self._timer.stop()
        if not self._alive[0]:
            return
        if self._worker is not None:
            self._pending = True
            return
        self._pending = False
        try:
            request = self.request()
        except ThinsegError as exc:
            self._show_failure(one_line(exc))
            return
        except Exception as exc:  # a widget must never crash napari
            logger.exception("napari-thinseg: measurement set-up failed")
            self._show_failure(one_line(exc))
            return
        if request is None:
            self._clear_results()
            self.status_label.setText("add or choose a Labels layer")
            return
        self._start(request)

    def _start(self, request: Request) -> None:
        alive = self._alive

        def returned(result):
            if alive[0]:
                self._returned(request, result)

        def refused(message):
            if alive[0]:
                self._refused(request, message)

        def errored(exc):
            # napari's worker shows the traceback; the dock says why, once
            if alive[0]:
                self._refused(request, one_line(exc))

        def finished():
            if alive[0]:
                self._finished()

        self.status_label.setText(f"measuring {request.name} …")
        self._worker = workers.start(
            measure_job,
            request,
            returned=returned,
            refused=refused,
            errored=errored,
            finished=finished,
        )

    def _is_stale(self, request: Request) -> bool:
        """Whether something changed since ``request`` was made (a newer
        result will come)."""
        return request.serial != self._serial or self._pending

    def _returned(self, request: Request, result) -> None:
        if self._is_stale(request):
            return
        self._last_error = None
        if isinstance(result, Unlabelled):  # nothing painted yet
            self._clear_results()
            self.status_label.setText(
                f"nothing to measure yet: {result.message}; paint, "
                "auto-label or predict classes"
            )
            return
        self.show_measurement(result, request.scheme)

    def _refused(self, request: Request, message: str) -> None:
        if not self._is_stale(request):
            self._show_failure(message)

    def _finished(self) -> None:
        self._worker = None
        if self._pending:
            self.refresh()

    def _show_failure(self, message: str) -> None:
        """Clear the results and tell why (once per distinct reason)."""
        self._clear_results()
        self.status_label.setText(f"not measured: {message}")
        if message != self._last_error:
            notify_error(message)
        self._last_error = message
        self.failed.emit(message)

    # -- showing results --------------------------------------------------
    def _clear_results(self) -> None:
        self.measurement = None
        self.export_button.setEnabled(False)
        self._clear_view()

    def show_measurement(self, m: Measurement, scheme: ClassScheme) -> None:
        """Fill the table, the porosity box, sizes and charts with ``m``."""
        self.measurement = m
        self.export_button.setEnabled(True)
        self.status_label.setText(counted_text(m))
        self._show_view(m, scheme)
        self.measured.emit(m)

    # -- export -----------------------------------------------------------
    @reports_errors
    def export_csv(self) -> None:
        """Write the measurement on show as a CSV row (asks where)."""
        m = self.measurement
        if m is None:
            raise ThinsegError("nothing measured yet: choose a Labels layer")
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Export measurement",
            f"{m.name or 'measurement'}.csv",
            "CSV (*.csv)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return
        path = Path(path)
        if path.suffix.lower() != ".csv":
            path = path.with_name(path.name + ".csv")
        overwrite = self.overwrite.isChecked()
        if path.exists() and not overwrite:
            raise ThinsegError(
                f"{path}: already exists; tick 'overwrite' to replace it"
            )
        written = write_csv([m], path, overwrite=overwrite)
        notify_info(f"measurement written to {written}")
