"""The "Whole slide" widget: scans too large to load, predicted and
measured tile by tile.

A slide (TIFF / OME-TIFF / BigTIFF or OME-Zarr) is opened lazily as a
multiscale Image layer: the file's pyramid, or coarser levels made by
striding a file of one level, so that napari shows a 30,000 x 30,000
scan without reading it whole.

Predict runs :func:`~napari_thinseg.inference.slides.predict_slide` in a
napari ``thread_worker`` into a ``LabelsPyramid`` (OME-Zarr, by default
``<slide>_labels.ome.zarr`` beside the slide, or a pyramidal BigTIFF
named ``.tif``: the CLI's outputs), shown from the start as the Labels
layer ``"<slide> prediction"`` (the pyramid's zarr arrays), refreshed
after every tile. Stop (or closing the dock) ends the run at
the next tile; what was done stays in ``<output>.partial``, and Predict
again with the same model, tile and precision resumes from it (a
notification says how many tiles were kept; "overwrite" starts over). The
model is chosen as in the Predict widget (its methods serve here too).

Measure counts a Labels layer (multiscale or not) at full resolution,
block by block (:func:`~napari_thinseg.measure.modal.measure_lazy`).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
from napari.layers import Labels
from qtpy.QtCore import Signal
from qtpy.QtGui import QFontDatabase
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ....errors import ThinsegError
from ....imaging.lazy import (
    TIFF_SUFFIXES,
    ZARR_METADATA,
    ZARR_SUFFIXES,
    open_lazy,
)
from ....imaging.pyramid import (
    MIN_LEVEL_SIDE,
    LabelsPyramid,
    check_slide_output,
)
from ....inference.predict import check_model_input, check_tile
from ....inference.slides import TileProgress, predict_slide
from ....inference.tiling import GRID
from ....measure.modal import measure_lazy
from ....measure.report import format_measurement
from ....model.config import MAX_INPUT_SIDE
from ... import workers
from ...layers import (
    PREDICTION_KEY,
    SLIDE_KEY,
    labels_kwargs,
    layer_levels,
    scheme_of,
)
from ...notify import (
    notify_error,
    notify_info,
    notify_warning,
    one_line,
    report_failure,
    reports_errors,
)
from ...pixel_scale import PIXEL_SIZE_KEY, follow_file_pixel_sizes
from .._common import (
    LayerCombo,
    StopsWithDock,
    button,
    end_run,
    idle_progress_bar,
    status_label,
    sync_progress,
    time_left_status,
)
from ..measure.dock import Unlabelled, unlabelled_quietly
from ..measure.region import scale_pixel_size
from .job import PRECISION_TEXT, ModelSource, load_source
from .model_choice import ModelChoice

OUT_OF_MEMORY_SLIDE = "out of memory: choose a smaller tile"


# -- slides --------------------------------------------------------------
slide_measure_job = unlabelled_quietly(measure_lazy)
"""A whole slide's measurement; no class yet is no error."""


def slide_levels(levels, min_side: int = MIN_LEVEL_SIDE) -> list:
    """The pyramid napari shows: the file's levels, or for a file of one
    level, that level and every 2nd, 4th... pixel of it while the
    shorter side stays at least ``min_side`` (lazy: nothing is read)."""
    levels = list(levels)
    if len(levels) > 1:
        return levels
    base, step = levels[0], 2
    while min(base.shape[:2]) // step >= min_side:
        levels.append(base[::step, ::step])
        step *= 2
    return levels


def slide_stem(path) -> str:
    """A slide's name without its suffixes (``a.ome.tif`` -> ``a``)."""
    name = Path(path).name
    for suffix in (*ZARR_SUFFIXES, *TIFF_SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name[:-4] if name.lower().endswith(".ome") else name


def default_output(path) -> Path:
    """``<slide stem>_labels.ome.zarr`` beside the slide."""
    path = Path(path)
    return path.parent / f"{slide_stem(path)}_labels.ome.zarr"


def chosen_slide(chosen) -> Path:
    """The slide a file dialog's choice names: the file, or the ``.zarr``
    folder a chosen file lies in (its ``.zattrs`` or ``zarr.json``)."""
    path = Path(chosen)
    for folder in (path, *path.parents):
        if folder.suffix.lower() in ZARR_SUFFIXES:
            return folder
    return path.parent if path.name in ZARR_METADATA else path


def choice(items: dict) -> QComboBox:
    """A combo box of ``{key: text}`` (the key as each item's data)."""
    combo = QComboBox()
    for key, text in items.items():
        combo.addItem(text, key)
    return combo


def slide_job(source: ModelSource, slide, out, tile, precision, tta):
    """Generator for the worker: load the model (once per checkpoint, kept
    in :data:`loaded_models`), then predict ``slide`` into ``out`` tile
    by tile; yields :class:`TileProgress` and returns the
    :class:`~napari_thinseg.inference.slides.SlidePrediction`."""
    model, config = yield from load_source(source)
    return (
        yield from predict_slide(
            model, config, slide, out, tile=tile, precision=precision, tta=tta
        )
    )


class SlideWidget(ModelChoice, StopsWithDock, QWidget):
    """Open, predict and measure whole slides, tile by tile.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Attributes
    ----------
    opened, predicted, measured : Signal(object)
        Emitted with the slide's Image layer once open, the prediction's
        Labels layer when a run finishes, a Measure's ``Measurement``.
    failed : Signal(str)
        Emitted with a one-line reason when a run fails or is stopped.
    worker, measure_worker : Worker or None
        The running prediction and measurement, if any.
    slide : LazyImage or None
        The slide opened last.
    """

    closed_message = "Whole slide closed: the prediction stops"

    opened = Signal(object)
    predicted = Signal(object)
    measured = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        follow_file_pixel_sizes(napari_viewer)
        self.worker = None
        self.measure_worker = None
        self.slide = None
        self.image_layer = None
        self._run: dict = {}

        self.path = QLineEdit()
        self.path.setPlaceholderText("TIFF / OME-TIFF file or .zarr folder")
        self.path.returnPressed.connect(lambda: self.open_slide())
        self.open_button = button(
            "Open…", self.browse_slide, "Open a whole-slide scan lazily"
        )
        self.slide_label = status_label()
        self._build_model_choice()
        self.precision = choice(PRECISION_TEXT)
        self.tta = QCheckBox("test-time augmentation (8x slower)")
        self.tile = QSpinBox()
        self.tile.setRange(0, MAX_INPUT_SIDE)
        self.tile.setSingleStep(GRID)
        self.tile.setSpecialValueText("automatic")
        self.tile.setSuffix(" px")
        self.tile.setToolTip(f"Tile side, a multiple of {GRID}")
        self.output = QLineEdit()
        self.output.setPlaceholderText(
            "<slide>_labels.ome.zarr (or a .tif BigTIFF)"
        )
        self.overwrite = QCheckBox("overwrite an existing output")
        self.predict_button = button(
            "Predict", self.predict, "Predict the slide tile by tile"
        )
        self.stop_button = button(
            "Stop", self.stop, "Stop after the current tile (kept)"
        )
        self.stop_button.setEnabled(False)
        self.progress_bar = idle_progress_bar()
        self.status_label = status_label()
        self.labels_combo = LayerCombo(napari_viewer, Labels)
        self.measure_button = button(
            "Measure", self.measure, "Porosity and class fractions"
        )
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        # narrow text, long lines wrapped: no sideways scrolling
        self.report.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.report.setFont(
            QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        )
        self.report.setMinimumHeight(140)

        self._layout()
        self._follow_model_choice()

    def _layout(self) -> None:
        def row(*widgets) -> QHBoxLayout:
            box = QHBoxLayout()
            for k, widget in enumerate(widgets):
                box.addWidget(widget, 1 if k == 0 else 0)
            return box

        form = QFormLayout()
        form.addRow("slide", row(self.path, self.open_button))
        form.addRow(self.slide_label)
        form.addRow("model", self.model_choice)
        form.addRow("checkpoint", row(self.checkpoint, self.browse_button))
        form.addRow(self.model_label)
        form.addRow("precision", self.precision)
        form.addRow("tile", self.tile)
        form.addRow(self.tta)
        form.addRow("output", self.output)
        form.addRow(self.overwrite)
        measure = QFormLayout()
        measure.addRow("labels", row(self.labels_combo, self.measure_button))
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(row(self.predict_button, self.stop_button))
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(measure)
        layout.addWidget(self.report, 1)

    # -- opening -------------------------------------------------------------
    @reports_errors
    def browse_slide(self) -> None:
        """Choose a slide with a file dialog and open it."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open a whole slide (OME-Zarr: choose its .zattrs or zarr.json)",
            self.path.text(),
            "Slides (*.tif *.tiff *.btf *.tf8 .zattrs .zgroup zarr.json);;"
            "All files (*)",
        )
        if path:
            self.open_slide(chosen_slide(path))

    @reports_errors
    def open_slide(self, path=None):
        """Open a slide (``path``, else the path field's) lazily as a
        multiscale Image layer; returns the layer."""
        text = str(self.path.text() if path is None else path).strip()
        if not text:
            raise ThinsegError("choose a slide: a TIFF or an OME-Zarr folder")
        if self.worker is not None:
            raise ThinsegError("a prediction is running: stop it first")
        slide = open_lazy(Path(text).expanduser())
        levels = slide_levels(slide.levels)
        um = slide.pixel_size_um
        kwargs = {"metadata": {SLIDE_KEY: str(slide.path)}}
        if um:
            kwargs["scale"] = (um, um)
            kwargs["metadata"][PIXEL_SIZE_KEY] = um
        if slide.dtype == np.uint8:  # napari need not read it for this
            kwargs["contrast_limits"] = (0, 255)
        layer = self.viewer.add_image(
            levels, multiscale=True, name=slide_stem(slide.path), **kwargs
        )
        self.slide, self.image_layer = slide, layer
        self.path.setText(str(slide.path))
        self.output.setText(str(default_output(slide.path)))
        h, w = slide.shape[:2]
        size = f", {um:g} µm/px" if um else ", pixel size unknown"
        self.slide_label.setText(
            f"{layer.name}: {h:,} x {w:,} px, {len(levels)} level(s){size}"
        )
        self.opened.emit(layer)
        return layer

    def _over_slide(self) -> dict:
        """``name``, ``scale`` and ``translate`` of a layer over the slide
        (its layer's, or from its file when that layer is gone)."""
        layer = self.image_layer
        if layer is not None and layer in self.viewer.layers:
            scale, at = tuple(layer.scale)[-2:], tuple(layer.translate)[-2:]
            return {"name": layer.name, "scale": scale, "translate": at}
        um = self.slide.pixel_size_um or 1.0
        name = slide_stem(self.slide.path)
        return {"name": name, "scale": (um, um), "translate": (0.0, 0.0)}

    # -- predicting ----------------------------------------------------------
    def output_path(self) -> Path:
        """The output: an OME-Zarr folder or a BigTIFF
        (:func:`~napari_thinseg.imaging.pyramid.check_slide_output`, the
        CLI's rule)."""
        return check_slide_output(self.output.text(), self.slide.path)

    @reports_errors
    def predict(self):
        """Predict the slide into its output in a worker; returns it."""
        if self.worker is not None:
            raise ThinsegError("a prediction is already running")
        if self.slide is None:
            raise ThinsegError("open a slide first")
        slide, out = self.slide, self.output_path()
        tile = self.tile.value() or None
        source = self.model_source()
        scheme = source.config.class_scheme
        data = slide.data
        # what the worker would refuse, before any file is made
        probe = np.zeros((2, 2, *data.shape[2:]), data.dtype)
        check_model_input(probe, source.config)
        check_tile(tile)
        pyramid = LabelsPyramid.create(
            out,
            slide.shape[:2],
            scheme,
            slide.pixel_size_um,
            overwrite=self.overwrite.isChecked(),
            source=str(slide.path),
        )
        layer = self._prediction_layer(pyramid, scheme, source.name)
        # by name: the viewer napari gives a dock wraps each layer anew
        combo = self.labels_combo
        combo.setCurrentIndex(max(0, combo.findText(layer.name)))
        self._run = {
            "pyramid": pyramid,
            "layer": layer,
            "done": 0,
            "total": None,
            "started": time.monotonic(),
            "finished": False,
            "time_left": time_left_status(self._set_status, "tile"),
        }
        self.predict_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)
        self._set_status(
            "loading the model…" if source.model is None else "predicting…"
        )
        self.worker = workers.start(
            slide_job,
            source,
            slide,
            pyramid,
            tile,
            self.precision.currentData(),
            self.tta.isChecked(),
            desc=f"Predicting {layer.name} with {source.name}",
            out_of_memory=OUT_OF_MEMORY_SLIDE,
            yielded=self._on_yielded,
            returned=self._on_returned,
            refused=lambda message: self._failed(message, notify_error),
            # napari's worker already shows unexpected errors in full
            errored=lambda exc: self._failed(one_line(exc)),
            aborted=self._on_aborted,
            finished=self._on_finished,
        )
        return self.worker

    def _prediction_layer(self, pyramid, scheme, model: str) -> Labels:
        """A new Labels layer showing ``pyramid``, in place of any that
        showed the same output (whose files are being replaced)."""
        out = str(pyramid.path)
        for layer in list(self.viewer.layers):
            found = layer.metadata.get(PREDICTION_KEY)
            if isinstance(found, dict) and found.get("output") == out:
                self.viewer.layers.remove(layer)
        kwargs = labels_kwargs(scheme)
        slide = str(self.slide.path)
        written = {"model": model, "output": out, "slide": slide}
        kwargs["metadata"] = {**kwargs["metadata"], PREDICTION_KEY: written}
        kwargs.update(self._over_slide())
        kwargs["name"] += " prediction"
        return self.viewer.add_labels(**layer_levels(pyramid.levels), **kwargs)

    def _on_yielded(self, event) -> None:
        run = self._run
        if run.get("finished"):  # a late progress event: keep the summary
            return
        if not isinstance(event, TileProgress):  # loading the model
            self._set_status(event.message)
            return
        first = run["total"] is None
        step, run["total"] = event.step, event.total
        if first and event.kept:  # resumed from a stopped run
            notify_info(
                f"resuming {run['pyramid'].store_path.name}: {event.kept} "
                f"of {event.total} tiles kept"
            )
        if step > 0:
            run["done"] = step
            run["layer"].refresh()  # the tile just written shows
        self.progress_bar.setRange(0, max(1, event.total))
        self.progress_bar.setValue(step)
        run["time_left"](event)  # "tile 3 of 20 (about 9 s left)"
        if first:
            self._set_status(f"{event.message}: building the network…")
        pbar = getattr(self.worker, "pbar", None)
        sync_progress(pbar, step, event.total, event.message)

    def _on_returned(self, result) -> None:
        run = self._run
        run["finished"] = True
        layer, pyramid = run["layer"], run["pyramid"]
        try:
            path = pyramid.finish()
        except OSError as exc:
            report_failure(self, f"{pyramid.path}: {exc}", notify_error)
            return
        layer.data = layer_levels(pyramid.levels)["data"]
        h, w = result.shape
        seconds = time.monotonic() - run["started"]
        kept = f" ({result.kept} kept)" if result.kept else ""
        message = (
            f"predicted {result.tiles} tiles{kept} of {h:,} x {w:,} px in "
            f"{seconds:.0f} s into {path}"
        )
        notify_info(message)
        self._set_status(message)
        self.predicted.emit(layer)

    def _failed(self, message: str, notify=None) -> None:
        """A run failed; before its first tile, a new run leaves nothing
        behind (neither its empty layer nor its ``.partial`` store); a
        resumed one keeps what it was given."""
        run = self._run
        if not run["done"] and not run["pyramid"].resumed:
            if run["layer"] in self.viewer.layers:
                self.viewer.layers.remove(run["layer"])
            shutil.rmtree(run["pyramid"].store_path, ignore_errors=True)
        report_failure(self, message, notify)

    def _on_aborted(self) -> None:
        run = self._run
        run["layer"].refresh()
        message = (
            f"stopped after {run['done']} of {run['total'] or '?'} tiles; "
            f"the tiles done are kept in {run['pyramid'].store_path} "
            "(Predict resumes)"
        )
        report_failure(self, message, notify_warning)

    def _on_finished(self) -> None:
        end_run(self, self.predict_button, self._run.get("finished", False))

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    # -- measuring -----------------------------------------------------------
    @reports_errors
    def measure(self):
        """Measure the chosen Labels layer at full resolution in a worker;
        returns it."""
        if self.measure_worker is not None:
            raise ThinsegError("a measurement is already running")
        layer = self.labels_combo.layer()
        if layer is None:
            raise ThinsegError("no labels layer to measure: predict first")
        data = layer.data[0] if layer.multiscale else layer.data
        self.measure_button.setEnabled(False)
        self.report.setPlainText(f"measuring {layer.name}…")
        self.measure_worker = workers.start(
            slide_measure_job,
            data,
            scheme_of(layer),
            scale_pixel_size(layer),
            name=layer.name,
            returned=self._on_measured,
            refused=self._measure_failed,
            errored=lambda exc: self._measure_failed(one_line(exc)),
            finished=self._on_measure_finished,
        )
        return self.measure_worker

    def _on_measured(self, measurement) -> None:
        if isinstance(measurement, Unlabelled):  # nothing predicted yet
            self.report.setPlainText(f"nothing to measure yet: {measurement}")
            return
        self.report.setPlainText(format_measurement(measurement, True))
        self.measured.emit(measurement)

    def _measure_failed(self, message: str) -> None:
        notify_error(message)
        self.report.setPlainText(message)

    def _on_measure_finished(self) -> None:
        self.measure_worker = None
        self.measure_button.setEnabled(True)
