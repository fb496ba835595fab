"""The "Measure" widget: modal analysis and porosity while you paint.

A thin shell over :func:`napari_thinseg.analysis.measure`. The dock follows
the chosen Labels layer: every brush stroke, fill or new data array starts
a new measurement after a short pause (:data:`DEBOUNCE_MS`). The counting
runs in a napari ``thread_worker`` on a copy of the labels, so big images
stay responsive; a result that a newer change has made stale is dropped.

What it shows: class fractions with a 95 % binomial interval (the one a
point count of the same number of points would have) and a 95 % block
bootstrap interval (the spatial correlation of a real thin section), the
porosity with both, areas in mm2 when the pixel size is known, grain and
pore size statistics (Folk & Ward), a bar chart in the scheme's colours and
a grain-size histogram. "Export CSV..." writes the current measurement.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.layers import Labels, Shapes
from napari.qt.threading import thread_worker
from qtpy.QtCore import Qt, Signal
from qtpy.QtGui import QColor, QFont
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...errors import OUT_OF_MEMORY, ThinsegError, is_out_of_memory
from ...measure.modal import Measurement, measure, write_csv
from ...schemes import ClassScheme
from ..layers import scheme_of
from ..notify import notify_error, notify_info, one_line, reports_errors
from ._common import (
    LayerCombo,
    button,
    disconnect_all,
    layer_array,
    single_shot_timer,
    status_label,
    theme_colors,
)

logger = logging.getLogger(__name__)

DEBOUNCE_MS = 400
"""Pause (ms) between the last change and the measurement it starts."""

SIZES_AUTO_PIXELS = 4_000_000
"""Grain and pore sizes are ticked by default up to this many pixels."""

WHOLE_IMAGE = "(whole image)"
"""Region combo entry: count every labelled pixel."""

NO_VALUE = "–"

CLASS, PERCENT, BINOMIAL, BOOTSTRAP, AREA = range(5)
HEADERS = ("class", "%", "95 % binomial", "95 % bootstrap", "area mm²")

SCALE_TIP = (
    "Take the pixel size from the Labels layer's scale: a scale other than "
    "1 is assumed to be micrometres per pixel (an anisotropic scale counts "
    "as the square root of the pixel area)"
)
POROSITY_ROW = "porosity"


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
class Failed:
    """What :func:`measure_job` returns instead of raising."""

    message: str


def measure_job(request: Request) -> Measurement | Failed:
    """:func:`~napari_thinseg.analysis.measure` for ``thread_worker``.

    Every error becomes a :class:`Failed` (a worker would show an
    unexpected one with a traceback on every brush stroke).
    """
    try:
        return measure(
            request.labels,
            request.scheme,
            mask=request.mask,
            pixel_size_um=request.pixel_size_um,
            points=request.points,
            sizes=request.sizes,
            name=request.name,
        )
    except ThinsegError as exc:
        return Failed(one_line(exc))
    except Exception as exc:  # never into the Qt event loop
        if is_out_of_memory(exc):
            return Failed(OUT_OF_MEMORY)
        logger.exception("napari-thinseg: measurement failed")
        return Failed(one_line(exc))


# -- layers to arrays ------------------------------------------------------
def scale_pixel_size(layer) -> float | None:
    """Micrometres per pixel from a layer's scale (last two axes), or
    ``None`` when the scale is 1 (napari's default: no unit known)."""
    sy, sx = (float(v) for v in np.asarray(layer.scale)[-2:])
    if sy == 1.0 and sx == 1.0:
        return None
    if sy <= 0 or sx <= 0:
        return None
    return math.sqrt(sy * sx)


def displayed_plane(layer, viewer) -> tuple[np.ndarray, tuple[int, ...]]:
    """The 2D plane of ``layer`` that the viewer shows, and its index.

    A 2D layer is its own plane (index ``()``); for a stack the leading
    indices come from the viewer's current point.
    """
    data = layer_array(layer)
    if data.ndim < 2:
        raise ThinsegError(f"{layer.name}: not an image ({data.ndim}D)")
    if data.ndim == 2:
        return data, ()
    point = np.asarray(layer.world_to_data(viewer.dims.point))
    index = tuple(
        int(np.clip(round(float(p)), 0, n - 1))
        for p, n in zip(point[:-2], data.shape[:-2], strict=True)
    )
    return data[index], index


def shapes_mask(shapes, labels, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a Shapes layer onto the pixel grid of a Labels layer.

    The last two coordinates of every vertex go through the two layers'
    scale and translate (rotation, shear and affine are not followed).
    A pixel is inside when napari's rasterisation puts its centre inside a
    shape; overlapping shapes are joined.
    """
    if len(shapes.data) == 0:
        raise ThinsegError(
            f"region {shapes.name!r} has no shapes: draw one, or choose "
            f"{WHOLE_IMAGE}"
        )
    s_scale = np.asarray(shapes.scale, float)[-2:]
    s_shift = np.asarray(shapes.translate, float)[-2:]
    l_scale = np.asarray(labels.scale, float)[-2:]
    l_shift = np.asarray(labels.translate, float)[-2:]
    vertices = [
        ((np.asarray(v, float)[:, -2:] * s_scale) + s_shift - l_shift)
        / l_scale
        for v in shapes.data
    ]
    flat = Shapes(vertices, shape_type=list(shapes.shape_type))
    masks = np.asarray(flat.to_masks(mask_shape=np.asarray(shape)))
    return masks.reshape(-1, *shape).any(axis=0)


def labels_mask(region, viewer, shape: tuple[int, int]) -> np.ndarray:
    """A Labels layer as a region: its nonzero pixels (shown plane)."""
    plane, _ = displayed_plane(region, viewer)
    if plane.shape != tuple(shape):
        raise ThinsegError(
            f"region {region.name!r} is {plane.shape[0]}x{plane.shape[1]} "
            f"pixels; the labels are {shape[0]}x{shape[1]}"
        )
    return np.asarray(plane) != 0


# -- text ------------------------------------------------------------------
def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def percent(value: float | None, digits: int = 2) -> str:
    """``0.125`` -> ``"12.50"``; ``None`` or NaN -> a dash."""
    return NO_VALUE if _missing(value) else f"{100 * value:.{digits}f}"


def interval_text(interval, digits: int = 2) -> str:
    """A 0..1 interval as ``"9.10–15.90"`` (percent); ``None`` or NaN ->
    a dash."""
    if interval is None or _missing(interval.low):
        return NO_VALUE
    return f"{percent(interval.low, digits)}–{percent(interval.high, digits)}"


def number(value, fmt: str = ".4g") -> str:
    """A number with ``fmt``; ``None`` (or NaN) -> a dash."""
    if _missing(value):
        return NO_VALUE
    try:
        return format(value, fmt)
    except (TypeError, ValueError):
        return str(value)


def methods(m: Measurement) -> str:
    """How the two porosity intervals of ``m`` were made."""
    boot = m.porosity_bootstrap
    return f"95 % intervals: {m.porosity_binomial.method}; " + (
        boot.method
        if boot is not None
        else "no block bootstrap (fewer than two blocks counted)"
    )


def median_text(sizes) -> str:
    """The median diameter of :class:`SizeStats`, in µm or else pixels."""
    if not _missing(sizes.median_diameter_um):
        return f"{sizes.median_diameter_um:.1f} µm"
    if not _missing(sizes.median_diameter_px):
        return f"{sizes.median_diameter_px:.1f} px"
    return NO_VALUE


class RegionCombo(LayerCombo):
    """Region choices: :data:`WHOLE_IMAGE`, then Shapes and Labels layers
    (except the Labels layer being measured)."""

    exclude = None

    def __init__(self, viewer, parent: QWidget = None):
        super().__init__(viewer, (Shapes, Labels), parent)

    def set_exclude(self, layer) -> None:
        """Leave ``layer`` out of the choices."""
        self.exclude = layer
        self.refresh()

    def layers(self) -> list:
        return [ly for ly in super().layers() if ly is not self.exclude]

    def refresh(self) -> None:
        previous = self._current
        layers = self.layers()
        self.blockSignals(True)
        try:
            self.clear()
            self.addItem(WHOLE_IMAGE, None)
            for layer in layers:
                kind = "shapes" if isinstance(layer, Shapes) else "mask"
                self.addItem(f"{layer.name} ({kind})", layer)
            index = next(
                (i + 1 for i, ly in enumerate(layers) if ly is previous), 0
            )
            self.setCurrentIndex(index)
        finally:
            self.blockSignals(False)
        self._on_index(self.currentIndex())


class MeasureWidget(QWidget):
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
        Emitted with each :class:`~napari_thinseg.analysis.Measurement`
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

        self.pixel_size = QDoubleSpinBox()
        self.pixel_size.setRange(0.0, 1e6)
        self.pixel_size.setDecimals(4)
        self.pixel_size.setSingleStep(0.1)
        self.pixel_size.setSuffix(" µm/px")
        self.pixel_size.setSpecialValueText("unknown")
        self.pixel_size.setToolTip(
            "Micrometres per pixel (areas in mm² and grain sizes in phi "
            "need it; 'unknown' gives pixels only)"
        )
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

        # porosity, highlighted
        self.porosity_box = QGroupBox("Visual porosity")
        porosity = QFormLayout(self.porosity_box)
        self.porosity_label = QLabel(NO_VALUE)
        font = QFont(self.porosity_label.font())
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.4)
        self.porosity_label.setFont(font)
        self.porosity_binomial_label = QLabel(NO_VALUE)
        self.porosity_bootstrap_label = QLabel(NO_VALUE)
        self.binomial_title = QLabel()
        self.binomial_title.setToolTip(
            "95 % binomial interval of a point count with this many points"
        )
        bootstrap_title = QLabel("block bootstrap")
        bootstrap_title.setToolTip(
            "95 % interval from resampling blocks of the image (keeps the "
            "spatial correlation of grains and pores)"
        )
        porosity.addRow("porosity %", self.porosity_label)
        porosity.addRow(self.binomial_title, self.porosity_binomial_label)
        porosity.addRow(bootstrap_title, self.porosity_bootstrap_label)

        self.table = QTableWidget(0, len(HEADERS))
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(
            QAbstractItemView.EditTrigger.NoEditTriggers
        )
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(CLASS, QHeaderView.ResizeMode.Stretch)
        for column in (PERCENT, BINOMIAL, BOOTSTRAP, AREA):
            header.setSectionResizeMode(
                column, QHeaderView.ResizeMode.ResizeToContents
            )
        self.table.setMinimumHeight(150)

        # sizes
        self.sizes_box = QGroupBox("Grains and pores")
        sizes = QFormLayout(self.sizes_box)
        self.size_labels: dict[str, QLabel] = {}
        phi_tip = (
            " (phi = -log2 of the diameter in mm; needs the pixel size and "
            "at least 5 grains)"
        )
        for key, text, tip in (
            (
                "grains",
                "grains",
                "Grains separated (touching grains split by a watershed); "
                "those on the edge of the counted area are truncated",
            ),
            ("mean", "mean size", "Folk & Ward graphic mean" + phi_tip),
            (
                "sorting",
                "sorting",
                "Folk & Ward inclusive graphic standard deviation and "
                "Folk's verbal class" + phi_tip,
            ),
            (
                "median",
                "median diameter",
                "Median equivalent circle diameter of the grains",
            ),
            ("pores", "pore bodies", "Separate pore bodies"),
            (
                "border",
                "pore border fraction",
                "Share of the pore area in pore bodies that touch the edge "
                "of the image or region: they are cut by the field of "
                "view, so a large share means pore sizes are "
                "underestimated",
            ),
        ):
            label = QLabel(NO_VALUE)
            label.setToolTip(tip)
            sizes.addRow(text, label)
            self.size_labels[key] = label

        self.figure = Figure(figsize=(3.5, 4.0), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(300)
        self.canvas.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding
        )
        self.bar_ax = self.figure.add_subplot(2, 1, 1)
        self.hist_ax = self.figure.add_subplot(2, 1, 2)

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

        self._update_titles()
        self.labels_combo.layer_changed.connect(self._labels_changed)
        self.region_combo.layer_changed.connect(self._region_changed)
        self.from_scale.toggled.connect(self._scale_toggled)
        self.pixel_size.valueChanged.connect(self.schedule)
        self.points.valueChanged.connect(self._update_titles)
        self.points.valueChanged.connect(self.schedule)
        self.sizes_check.toggled.connect(self.schedule)
        self._clear_results()

    def _connect_viewer(self) -> None:
        emitter = self.viewer.dims.events.current_step
        emitter.connect(self._on_step)
        self._viewer_connections.append((emitter, self._on_step))

    def _update_titles(self, *_) -> None:
        n = self.points.value()
        self.binomial_title.setText(f"point-count equivalent ({n} points)")
        headers = list(HEADERS)
        headers[BINOMIAL] = f"95 % point-count eq. ({n} pts)"
        headers[BOOTSTRAP] = "95 % block bootstrap"
        self.table.setHorizontalHeaderLabels(headers)

    # -- following layers -------------------------------------------------
    def _follow(self, layer, connections: list) -> None:
        disconnect_all(connections, [True])
        if layer is None:
            return
        names = ("paint", "data", "labels_update")
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
        plane, index = displayed_plane(layer, self.viewer)
        shape = tuple(plane.shape)
        region = self.region_combo.layer()
        mask = None
        name = layer.name
        if index:
            name += f" [{', '.join(str(i) for i in index)}]"
        if isinstance(region, Shapes):
            mask = shapes_mask(region, layer, shape)
        elif region is not None:
            mask = labels_mask(region, self.viewer, shape)
        if region is not None:
            name += f" in {region.name}"
        return Request(
            labels=np.array(plane, copy=True),
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
        worker = thread_worker(measure_job)(request)

        def returned(result):
            if alive[0]:
                self._returned(request, result)

        def errored(exc):  # measure_job returns its errors; just in case
            if alive[0]:
                self._show_failure(one_line(exc))

        def finished():
            if alive[0]:
                self._finished()

        worker.returned.connect(returned)
        worker.errored.connect(errored)
        worker.finished.connect(finished)
        self._worker = worker
        self.status_label.setText(f"measuring {request.name} …")
        worker.start()

    def _returned(self, request: Request, result) -> None:
        if request.serial != self._serial or self._pending:
            return  # something changed since: a newer result will come
        if isinstance(result, Failed):
            self._show_failure(result.message)
            return
        self._last_error = None
        self.show_measurement(result, request.scheme)

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
        self.table.setRowCount(0)
        self.porosity_label.setText(NO_VALUE)
        self.porosity_binomial_label.setText(NO_VALUE)
        self.porosity_bootstrap_label.setText(NO_VALUE)
        for label in self.size_labels.values():
            label.setText(NO_VALUE)
        self._draw(None, None)

    def show_measurement(self, m: Measurement, scheme: ClassScheme) -> None:
        """Fill the table, the porosity box, sizes and charts with ``m``."""
        self.measurement = m
        self.export_button.setEnabled(True)
        unit = (
            f"{m.pixel_size_um:g} µm/px"
            if m.pixel_size_um
            else "pixel size unknown"
        )
        self.status_label.setText(
            f"{m.name}: {m.counted_pixels:,} labelled pixels counted ({unit})"
        )
        self._fill_table(m, scheme)
        self.porosity_label.setText(percent(m.porosity))
        self.porosity_binomial_label.setText(
            interval_text(m.porosity_binomial)
        )
        self.porosity_bootstrap_label.setText(
            interval_text(m.porosity_bootstrap)
        )
        self.porosity_box.setToolTip(methods(m))
        self._fill_sizes(m)
        self._draw(m, scheme)
        self.measured.emit(m)

    def _fill_table(self, m: Measurement, scheme: ClassScheme) -> None:
        table = self.table
        table.setRowCount(0)
        table.setRowCount(len(m.classes) + 1)
        pore_ids = set(scheme.pore_ids)
        for row, cls in enumerate(m.classes):
            values = (
                str(cls.name),
                percent(cls.fraction),
                interval_text(cls.binomial),
                interval_text(cls.bootstrap),
                number(cls.area_mm2),
            )
            for column, text in enumerate(values):
                item = QTableWidgetItem(text)
                if column != CLASS:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight
                        | Qt.AlignmentFlag.AlignVCenter
                    )
                table.setItem(row, column, item)
            name_item = table.item(row, CLASS)
            with contextlib.suppress(KeyError):
                name_item.setData(
                    Qt.ItemDataRole.DecorationRole,
                    QColor(scheme[int(cls.id)].color),
                )
            if int(cls.id) in pore_ids:
                name_item.setToolTip("pore class (counts as porosity)")
        row = len(m.classes)
        values = (
            POROSITY_ROW,
            percent(m.porosity),
            interval_text(m.porosity_binomial),
            interval_text(m.porosity_bootstrap),
            self._porosity_area(m, pore_ids),
        )
        bold = QFont(table.font())
        bold.setBold(True)
        tip = f"visual porosity (the pore classes together); {methods(m)}"
        for column, text in enumerate(values):
            item = QTableWidgetItem(text)
            item.setFont(bold)
            item.setBackground(QColor(31, 95, 208, 90))
            if column != CLASS:
                item.setTextAlignment(
                    Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                )
            item.setToolTip(tip)
            table.setItem(row, column, item)

    @staticmethod
    def _porosity_area(m: Measurement, pore_ids: set) -> str:
        areas = [
            c.area_mm2
            for c in m.classes
            if int(c.id) in pore_ids and c.area_mm2 is not None
        ]
        return number(sum(areas)) if areas else NO_VALUE

    def _fill_sizes(self, m: Measurement) -> None:
        labels = self.size_labels
        grains, pores = m.grains, m.pores
        if grains is None:
            for key in ("grains", "mean", "sorting", "median"):
                labels[key].setText(NO_VALUE)
        else:
            labels["grains"].setText(
                f"{grains.count:,} ({grains.border_count:,} on the edge)"
            )
            labels["mean"].setText(
                NO_VALUE
                if _missing(grains.mean_phi)
                else f"{grains.mean_phi:.2f} φ"
            )
            labels["sorting"].setText(
                NO_VALUE
                if _missing(grains.sorting_phi)
                else f"{grains.sorting_phi:.2f} φ, "
                f"{grains.sorting_class or NO_VALUE}"
            )
            labels["median"].setText(median_text(grains))
        labels["pores"].setText(
            NO_VALUE
            if pores is None
            else f"{pores.count:,}, median {median_text(pores)}"
        )
        labels["border"].setText(
            NO_VALUE
            if _missing(m.pore_border_fraction)
            else f"{percent(m.pore_border_fraction, 1)} %"
        )

    # -- charts -----------------------------------------------------------
    def _colors(self) -> tuple[str, str]:
        return theme_colors(self.viewer)

    def _style(self, ax, bg: str, fg: str) -> None:
        ax.set_facecolor(bg)
        ax.tick_params(colors=fg, labelsize=7)
        ax.xaxis.label.set_color(fg)
        ax.yaxis.label.set_color(fg)
        ax.title.set_color(fg)
        for spine in ax.spines.values():
            spine.set_color(fg)

    def _draw(self, m: Measurement | None, scheme: ClassScheme | None):
        bg, fg = self._colors()
        self.figure.set_facecolor(bg)
        for ax in (self.bar_ax, self.hist_ax):
            ax.clear()
            self._style(ax, bg, fg)
        if m is not None:
            self._draw_bars(m, scheme, fg)
            self._draw_histogram(m, fg)
        self.canvas.draw_idle()

    def _draw_bars(self, m: Measurement, scheme: ClassScheme, fg: str):
        ax = self.bar_ax
        classes = list(m.classes)
        if not classes:
            return
        values = np.array([100 * c.fraction for c in classes], float)
        low, high = [], []
        for c, value in zip(classes, values, strict=True):
            interval = c.bootstrap if c.bootstrap is not None else c.binomial
            if interval is None:
                low.append(0.0)
                high.append(0.0)
            else:
                low.append(max(0.0, value - 100 * interval.low))
                high.append(max(0.0, 100 * interval.high - value))
        colors = []
        for c in classes:
            try:
                colors.append(scheme[int(c.id)].color)
            except KeyError:
                colors.append("#808080")
        x = np.arange(len(classes))
        ax.bar(
            x,
            values,
            color=colors,
            edgecolor=fg,
            linewidth=0.5,
            yerr=np.array([low, high]),
            ecolor=fg,
            capsize=2,
        )
        ax.set_xticks(x, [str(c.id) for c in classes])
        ax.set_ylabel("%", fontsize=8)
        with_boot = any(c.bootstrap is not None for c in classes)
        ax.set_title(
            "class fractions (95 % "
            + ("block bootstrap)" if with_boot else "binomial)"),
            fontsize=8,
        )

    def _draw_histogram(self, m: Measurement, fg: str) -> None:
        ax = self.hist_ax
        grains = m.grains
        if grains is None:
            ax.set_title("grain sizes: tick 'grain & pore sizes'", fontsize=8)
            return
        diameters_um = (
            None
            if grains.diameters_um is None
            else np.asarray(grains.diameters_um, float)
        )
        if diameters_um is not None and diameters_um.size:
            values = -np.log2(diameters_um[diameters_um > 0] / 1000.0)
            xlabel = "grain size (φ)"
        else:
            values = np.asarray(grains.diameters_px, float)
            xlabel = "grain diameter (px)"
        values = values[np.isfinite(values)]
        if values.size:
            ax.hist(values, bins="auto", color=fg, alpha=0.6)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(f"{grains.count:,} grains", fontsize=8)

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
