"""Auto-label dock widget: a thin Qt shell around :mod:`..autolabel`.

The petrographer picks an image layer and a method, watches the gray-level
histogram with the thresholds drawn on it, and gets a live preview in the
Labels layer ``"<image> labels"``. The smoothed gray level (and the blue
epoxy mask) of the shown plane is cached, so moving a threshold only
re-bins pixels: no Gaussian runs while a slider moves.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

import numpy as np
from magicgui.widgets import ComboBox
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.layers import Image, Labels
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...autolabel import (
    DEFAULT_THRESHOLDS,
    AutoLabelParams,
    EpoxyWindow,
    autolabel_stack,
    check_thresholds,
    epoxy_mask,
    label_scheme,
    labels_from_gray,
    multiotsu_thresholds,
    smoothed_gray,
)
from ...errors import ThinsegError
from ...imaging.files import check_image
from ..layers import apply_scheme, labels_kwargs, scheme_of
from ._common import (
    disconnect_all,
    single_shot_timer,
    status_label,
    theme_colors,
)

#: metadata key that marks a Labels layer written by this widget
STAMP_KEY = "thinseg_autolabel"
#: delay between the last change and the preview (ms)
DEBOUNCE_MS = 150
#: planes up to this many pixels are smoothed on the GUI thread
SYNC_PIXELS = 1_000_000
#: at most this many pixels go into the histogram
HIST_PIXELS = 1_000_000
#: threshold resolution of the spin boxes and the gap kept between them
T_STEP = 0.001
SLIDER_MAX = 1000
METHOD_TEXT = {
    "gray": "gray thresholds",
    "multiotsu": "multi-Otsu",
    "epoxy": "blue epoxy + gray",
}
CURRENT_PLANE, ALL_PLANES = "current plane", "all planes"
EPOXY_FIELDS = {
    "hue_min": "hue from",
    "hue_max": "hue to",
    "min_saturation": "min saturation",
    "min_value": "min value",
}


def _checksum(data) -> int:
    """CRC32 of an array's bytes (tells whether a layer was edited)."""
    return zlib.crc32(np.ascontiguousarray(data).view(np.uint8).ravel())


def _subsample(values: np.ndarray, n_max: int = HIST_PIXELS):
    """A strided view of ``values`` with at most about ``n_max`` pixels."""
    if values.size <= n_max:
        return values
    step = int(np.ceil(np.sqrt(values.size / n_max)))
    return values[::step, ::step]


def _fill_cache(
    out: dict, image, name, rgb, sigma, gray, window, n_classes
) -> None:
    """Put into ``out`` what the widget's cache lacks for one plane.

    ``gray`` is the cached smoothed gray (None: compute it); ``window`` /
    ``n_classes`` (None: not needed) ask for the blue-dye mask and the
    multi-Otsu thresholds. What was computed before an error stays in
    ``out``. Runs in a worker thread for large planes.
    """
    image = np.asarray(image)
    if gray is None:
        check_image(image, name)
        gray = out["gray"] = smoothed_gray(image, sigma, rgb=rgb)
    if window is not None:
        if not rgb:
            raise ThinsegError(
                f"{name}: the blue-epoxy method needs a colour (RGB) image; "
                "use gray thresholds or multi-Otsu"
            )
        out["blue"] = epoxy_mask(image, sigma, window)
    if n_classes is not None:
        out["otsu"] = multiotsu_thresholds(gray, n_classes)


def _fill_cache_job(*args) -> tuple[dict, ThinsegError | None]:
    """:func:`_fill_cache` for ``thread_worker``: errors become results."""
    out: dict = {}
    try:
        _fill_cache(out, *args)
    except ThinsegError as exc:
        return out, exc
    return out, None


def _stack_job(data, params, rgb):
    """Generator for ``thread_worker``: a ThinsegError becomes the result."""
    try:
        return (yield from autolabel_stack(data, params, rgb))
    except ThinsegError as exc:
        return exc


class AutoLabelWidget(QWidget):
    """Auto-label thin-section images by gray level, multi-Otsu or blue dye.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose image layers are labelled.

    Notes
    -----
    Results go to the Labels layer ``"<image> labels"``. The widget
    overwrites that layer only while it still holds exactly what the widget
    last wrote there (a checksum in ``metadata["thinseg_autolabel"]``).
    Once you paint on it, or when a layer of that name came from elsewhere,
    the widget leaves it alone and writes to ``"<image> labels [2]"`` (the
    first free or still untouched name) instead, and says so. Replacing
    layer data is not undoable in napari, so this is how edits survive.

    For a 3D stack, preview and "current plane" label the plane shown in
    the viewer; "all planes" runs :func:`..autolabel.autolabel_stack` in a
    background thread with a progress bar.

    The smoothed gray, blue-dye mask and multi-Otsu thresholds of the shown
    plane are cached per (layer, data, plane, sigma[, epoxy window, class
    count]); a threshold change only re-bins. Planes over ``SYNC_PIXELS``
    pixels fill the cache in a background thread, and the preview or Apply
    that asked for it runs when it is done.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self._connections: list[tuple[object, Callable]] = []
        self._data_emitter = None
        self._gray_key = self._gray = None
        self._blue_key = self._blue = None
        self._otsu_key = self._otsu = None
        self._hist_key = None
        self._found: tuple[float, ...] | None = None
        self._last_error: str | None = None
        self._drag: int | None = None
        self._worker = None
        self._cache_worker = None
        self._pending: dict[Callable, None] = {}
        self._alive = [True]
        self.threshold_lines: list = []
        self._bands: list = []

        self._timer = single_shot_timer(self, DEBOUNCE_MS, self.refresh)

        self._build_ui()
        self._connect_viewer()
        self.destroyed.connect(
            lambda *_, c=self._connections, a=self._alive: disconnect_all(c, a)
        )
        self._on_image_changed()

    # -- construction ---------------------------------------------------------
    def _build_ui(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)

        self.image_combo = ComboBox(choices=self._image_choices)
        self.image_combo.native.setToolTip("Image layer to label")
        form.addRow("image", self.image_combo.native)

        self.method_combo = QComboBox()
        for key, text in METHOD_TEXT.items():
            self.method_combo.addItem(text, key)
        self.method_combo.setToolTip(
            "gray: fixed gray thresholds (the seed rule); multi-Otsu: "
            "thresholds found from the histogram; blue epoxy: pore class "
            "where the colour is blue dye"
        )
        form.addRow("method", self.method_combo)

        self.sigma_spin = QDoubleSpinBox()
        self.sigma_spin.setRange(0.0, 100.0)
        self.sigma_spin.setDecimals(2)
        self.sigma_spin.setSingleStep(0.5)
        self.sigma_spin.setValue(AutoLabelParams().sigma)
        self.sigma_spin.setToolTip("Gaussian smoothing in pixels (0 = none)")
        form.addRow("sigma", self.sigma_spin)

        self.scope_combo = QComboBox()
        self.scope_combo.addItems([CURRENT_PLANE, ALL_PLANES])
        self.scope_label = QLabel("planes")
        form.addRow(self.scope_label, self.scope_combo)

        # gray thresholds: spin box + slider per threshold
        self.threshold_box = QGroupBox("gray thresholds")
        grid = QGridLayout(self.threshold_box)
        self.threshold_spins: list[QDoubleSpinBox] = []
        self.threshold_sliders: list[QSlider] = []
        for i, value in enumerate(DEFAULT_THRESHOLDS):
            spin = QDoubleSpinBox()
            spin.setDecimals(3)
            spin.setSingleStep(0.005)
            spin.setRange(T_STEP, 1 - T_STEP)
            spin.setValue(value)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(1, SLIDER_MAX - 1)
            slider.setValue(round(value * SLIDER_MAX))
            spin.valueChanged.connect(lambda _v, i=i: self._on_spin(i))
            slider.valueChanged.connect(lambda v, i=i: self._on_slider(i, v))
            grid.addWidget(QLabel(f"t{i + 1}"), i, 0)
            grid.addWidget(slider, i, 1)
            grid.addWidget(spin, i, 2)
            self.threshold_spins.append(spin)
            self.threshold_sliders.append(slider)
        self._update_ranges()
        layout.addWidget(self.threshold_box)

        # multi-Otsu
        self.otsu_box = QGroupBox("multi-Otsu")
        otsu = QFormLayout(self.otsu_box)
        self.n_classes_spin = QSpinBox()
        self.n_classes_spin.setRange(2, 8)
        self.n_classes_spin.setValue(AutoLabelParams().n_classes)
        otsu.addRow("classes", self.n_classes_spin)
        self.otsu_label = QLabel("-")
        self.otsu_label.setWordWrap(True)
        otsu.addRow("found", self.otsu_label)
        self.use_otsu_button = QPushButton("use as gray thresholds")
        self.use_otsu_button.setToolTip(
            "Copy the four thresholds found (5 classes) to the gray method "
            "to fine-tune them by hand"
        )
        self.use_otsu_button.setEnabled(False)
        otsu.addRow(self.use_otsu_button)
        layout.addWidget(self.otsu_box)

        # blue-dye window
        self.epoxy_box = QGroupBox("blue-dye epoxy (HSV, 0..1)")
        epoxy = QFormLayout(self.epoxy_box)
        self.epoxy_spins: dict[str, QDoubleSpinBox] = {}
        for name, text in EPOXY_FIELDS.items():
            spin = QDoubleSpinBox()
            spin.setRange(0.0, 1.0)
            spin.setDecimals(3)
            spin.setSingleStep(0.01)
            spin.setValue(getattr(EpoxyWindow(), name))
            if name.startswith("hue"):
                spin.setToolTip("hue as a fraction of 360 degrees")
            epoxy.addRow(text, spin)
            self.epoxy_spins[name] = spin
        layout.addWidget(self.epoxy_box)

        # histogram
        self.figure = Figure(figsize=(3.5, 1.5), layout="constrained")
        self.hist_canvas = FigureCanvasQTAgg(self.figure)
        self.hist_canvas.setMinimumHeight(130)
        self.hist_canvas.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed
        )
        self.hist_canvas.setToolTip(
            "Gray-level histogram of the smoothed image; drag a threshold "
            "line to move it"
        )
        self.ax = self.figure.add_subplot()
        self._style_axes()
        layout.addWidget(self.hist_canvas)
        self.hist_canvas.mpl_connect("button_press_event", self._on_press)
        self.hist_canvas.mpl_connect("motion_notify_event", self._on_motion)
        self.hist_canvas.mpl_connect("button_release_event", self._on_release)

        row = QHBoxLayout()
        self.preview_check = QCheckBox("live preview")
        self.preview_check.setToolTip(
            "Update the labels layer as you change the settings"
        )
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Write the labels into '<image> labels'")
        row.addWidget(self.preview_check)
        row.addStretch()
        row.addWidget(self.apply_button)
        layout.addLayout(row)
        self.status_label = status_label()
        layout.addWidget(self.status_label)
        layout.addStretch()

        self.image_combo.changed.connect(self._on_image_changed)
        self.method_combo.currentIndexChanged.connect(self._on_method)
        self.sigma_spin.valueChanged.connect(self._schedule)
        self.scope_combo.currentIndexChanged.connect(self._schedule)
        self.n_classes_spin.valueChanged.connect(self._schedule)
        for spin in self.epoxy_spins.values():
            spin.valueChanged.connect(self._schedule)
        self.use_otsu_button.clicked.connect(self._use_otsu)
        self.preview_check.toggled.connect(self._on_preview_toggled)
        self.apply_button.clicked.connect(self.apply)
        self._on_method()

    def _style_axes(self) -> None:
        bg, fg = theme_colors(self.viewer)
        self.figure.set_facecolor(bg)
        self.ax.set_facecolor(bg)
        self.ax.tick_params(colors=fg, labelsize=7, left=False)
        self.ax.set_yticks([])
        for spine in self.ax.spines.values():
            spine.set_color(fg)
        self._hist_color = fg
        self.ax.set_xlim(0, 1)

    def _connect_viewer(self) -> None:
        events = self.viewer.layers.events
        for emitter, callback in (
            (events.inserted, self.reset_choices),
            (events.removed, self.reset_choices),
            (events.reordered, self.reset_choices),
            (events.renamed, self.reset_choices),
            (self.viewer.dims.events.current_step, self._on_dims),
        ):
            emitter.connect(callback)
            self._connections.append((emitter, callback))

    # -- public API -----------------------------------------------------------
    @property
    def image_layer(self) -> Image | None:
        """The image layer chosen in the picker (None if there is none)."""
        return self.image_combo.value

    def reset_choices(self, *_) -> None:
        """Refresh the image picker from the viewer's layers."""
        self.image_combo.reset_choices()

    def method(self) -> str:
        """The chosen method key: ``gray``, ``multiotsu`` or ``epoxy``."""
        return self.method_combo.currentData()

    def thresholds(self) -> tuple[float, ...]:
        """The four gray thresholds as shown."""
        return tuple(spin.value() for spin in self.threshold_spins)

    def set_thresholds(self, values: Sequence[float]) -> None:
        """Show ``values`` (four increasing numbers in (0, 1)).

        Raises
        ------
        ThinsegError
            If the values are not four strictly increasing thresholds at
            the widget's 0.001 resolution.
        """
        values = check_thresholds(values)
        rounded = tuple(
            min(max(round(v, 3), T_STEP), 1 - T_STEP) for v in values
        )
        if len(rounded) != len(self.threshold_spins):
            raise ThinsegError(
                f"the widget takes {len(self.threshold_spins)} gray "
                f"thresholds, got {len(rounded)}"
            )
        check_thresholds(rounded)
        pairs = zip(rounded, rounded[1:], strict=False)
        if any(b - a < T_STEP / 2 for a, b in pairs):
            raise ThinsegError(f"thresholds too close: {values}")
        for spin, slider, value in zip(
            self.threshold_spins,
            self.threshold_sliders,
            rounded,
            strict=True,
        ):
            spin.blockSignals(True)
            spin.setRange(T_STEP, 1 - T_STEP)
            spin.setValue(value)
            spin.blockSignals(False)
            slider.blockSignals(True)
            slider.setValue(round(value * SLIDER_MAX))
            slider.blockSignals(False)
        self._update_ranges()
        self._thresholds_changed()

    def params(self) -> AutoLabelParams:
        """The settings as :class:`AutoLabelParams` (may raise ThinsegError).

        The epoxy window is read only for the epoxy method.
        """
        method = self.method()
        window = EpoxyWindow()
        if method == "epoxy":
            window = EpoxyWindow(
                **{k: s.value() for k, s in self.epoxy_spins.items()}
            )
        return AutoLabelParams(
            method=method,
            thresholds=self.thresholds(),
            sigma=self.sigma_spin.value(),
            n_classes=self.n_classes_spin.value(),
            epoxy=window,
        )

    def is_stack(self, layer: Image | None = None) -> bool:
        """Whether ``layer`` (default: the chosen one) is a 3D stack."""
        layer = self.image_layer if layer is None else layer
        return layer is not None and layer.ndim == 3

    def current_plane(self, layer: Image | None = None) -> int | None:
        """Index of the stack plane the viewer shows (None for 2D)."""
        layer = self.image_layer if layer is None else layer
        if not self.is_stack(layer):
            return None
        z = layer.world_to_data(self.viewer.dims.point)[0]
        n = len(self._level0(layer))
        return int(np.clip(np.round(z), 0, n - 1))

    def found_thresholds(self) -> tuple[float, ...] | None:
        """The multi-Otsu thresholds of the shown plane (after refresh)."""
        return self._found

    def refresh(self) -> None:
        """Recompute histogram, multi-Otsu and (if enabled) the preview.

        Errors are reported once (notification and status line) and do not
        interrupt later refreshes. On a plane larger than ``SYNC_PIXELS``
        a cache miss starts a background computation and the refresh runs
        again when it is done.
        """
        self._timer.stop()
        layer = self.image_layer
        if layer is None:
            self._clear_histogram()
            self._set_status("add an image layer to label")
            return
        try:
            params = self.params()
            if not self._ensure_cached(layer, params, self.refresh):
                return
            self._update_histogram(self._gray)
            self._update_otsu(params)
            if self.preview_check.isChecked():
                labels, plane = self._labels_from_cache(params)
                target = self._write(layer, labels, plane, params)
                where = "" if plane is None else f", plane {plane + 1}"
                self._set_status(f"preview in '{target.name}'{where}")
            else:
                self._set_status("")
        except ThinsegError as exc:
            self._report(exc, once=True)
            return
        self._last_error = None

    def apply(self):
        """Auto-label with the current settings into ``"<image> labels"``.

        Returns
        -------
        worker or None
            The running ``thread_worker`` for "all planes" on a stack, or
            the one filling the cache of a large plane (the labels are
            written when it is done).
        """
        self._timer.stop()
        layer = self.image_layer
        if layer is None:
            show_error("Auto-label: choose an image layer first")
            return None
        try:
            params = self.params()
            if self.is_stack(layer) and (
                self.scope_combo.currentText() == ALL_PLANES
            ):
                return self._apply_all(layer, params)
            if not self._ensure_cached(layer, params, self.apply):
                return self._cache_worker
            self._update_histogram(self._gray)
            self._update_otsu(params)
            labels, plane = self._labels_from_cache(params)
            target = self._write(layer, labels, plane, params)
        except ThinsegError as exc:
            self._report(exc)
            return None
        self._last_error = None
        self._set_status(f"labels written to '{target.name}'")
        return None

    # -- computing (cached) ---------------------------------------------------
    @staticmethod
    def _level0(layer: Image):
        return layer.data[0] if layer.multiscale else layer.data

    def _plane_image(self, layer: Image):
        """The shown 2D plane of ``layer`` (lazy arrays stay lazy)."""
        data = self._level0(layer)
        if layer.ndim == 2:
            return data
        if layer.ndim == 3:
            return data[self.current_plane(layer)]
        raise ThinsegError(
            f"{layer.name}: auto-label takes 2D images or 3D stacks, got a "
            f"{layer.ndim}D layer"
        )

    def _keys(self, layer: Image, params: AutoLabelParams) -> tuple:
        """Cache keys of gray level, blue mask and multi-Otsu thresholds."""
        plane = (id(layer), id(layer.data), self.current_plane(layer))
        gray = (*plane, float(params.sigma))
        blue = (*gray, params.epoxy) if params.method == "epoxy" else None
        otsu = (
            (gray, params.n_classes) if params.method == "multiotsu" else None
        )
        return gray, blue, otsu

    def _ensure_cached(self, layer, params, then: Callable) -> bool:
        """Whether the cache holds all ``params`` need for the shown plane.

        What is missing is computed here for planes up to ``SYNC_PIXELS``
        pixels (raising ThinsegError), else in a ``thread_worker``; then
        this returns False and ``then()`` runs once the worker is done.
        """
        keys = gray_key, blue_key, otsu_key = self._keys(layer, params)
        need_gray = gray_key != self._gray_key
        window = (
            params.epoxy if blue_key not in (None, self._blue_key) else None
        )
        n_classes = (
            params.n_classes
            if otsu_key not in (None, self._otsu_key)
            else None
        )
        if not need_gray and window is None and n_classes is None:
            return True
        if self._cache_worker is not None:
            self._pending[then] = None
            return False
        image = self._plane_image(layer)
        args = (
            image,
            layer.name,
            layer.rgb,
            float(params.sigma),
            None if need_gray else self._gray,
            window,
            n_classes,
        )
        if int(np.prod(image.shape[:2])) <= SYNC_PIXELS:
            out: dict = {}
            try:
                _fill_cache(out, *args)
            finally:
                self._store(keys, out)
            return True
        self._pending[then] = None
        alive = self._alive
        worker = thread_worker(_fill_cache_job)(*args)

        def returned(result):
            if alive[0]:
                self._on_cache_filled(keys, result)

        def finished():
            if alive[0]:
                self._on_cache_worker_done()

        worker.returned.connect(returned)
        worker.finished.connect(finished)
        self._cache_worker = worker
        self._set_status("smoothing the image ...")
        worker.start()
        return False

    def _store(self, keys: tuple, result: dict) -> None:
        gray_key, blue_key, otsu_key = keys
        if "gray" in result:
            self._gray_key, self._gray = gray_key, result["gray"]
        if "blue" in result:
            self._blue_key, self._blue = blue_key, result["blue"]
        if "otsu" in result:
            self._otsu_key, self._otsu = otsu_key, result["otsu"]

    def _on_cache_filled(self, keys: tuple, result: tuple) -> None:
        out, error = result
        self._store(keys, out)
        if error is not None:
            self._pending.clear()  # the same request would fail again
            self._report(error, once=True)

    def _on_cache_worker_done(self) -> None:
        self._cache_worker = None
        pending, self._pending = list(self._pending), {}
        for callback in pending:
            callback()

    def _labels_from_cache(self, params) -> tuple[np.ndarray, int | None]:
        """What :func:`..autolabel.autolabel` gives, from the cache.

        Returns the labels of the shown plane and its index (None in 2D).
        """
        thresholds = self._otsu if params.method == "multiotsu" else None
        labels = labels_from_gray(self._gray, params, thresholds, self._blue)
        return labels, self._gray_key[2]

    def _clear_cache(self) -> None:
        self._gray_key = self._gray = None
        self._blue_key = self._blue = None
        self._otsu_key = self._otsu = None
        self._hist_key = None
        self._found = None

    # -- writing --------------------------------------------------------------
    def _labels_shape(self, layer: Image) -> tuple[int, ...]:
        shape = self._level0(layer).shape
        return tuple(shape[:-1] if layer.rgb else shape)

    def _target(self, layer: Image, shape) -> tuple[Labels | None, str]:
        """The layer to write (None: create one) and its name.

        The first ``"<image> labels[ [k]]"`` that holds exactly what this
        widget last wrote; else the first free name.
        """
        base = f"{layer.name} labels"
        k = 1
        while True:
            name = base if k == 1 else f"{base} [{k}]"
            if name not in self.viewer.layers:
                return None, name
            found = self.viewer.layers[name]
            if self._is_untouched(found, shape):
                return found, name
            k += 1

    @staticmethod
    def _is_untouched(layer, shape) -> bool:
        if not isinstance(layer, Labels) or layer.multiscale:
            return False
        stamp = layer.metadata.get(STAMP_KEY)
        data = layer.data
        return (
            isinstance(stamp, dict)
            and isinstance(data, np.ndarray)
            and data.shape == tuple(shape)
            and data.dtype == np.uint8
            and stamp.get("checksum") == _checksum(data)
        )

    def _write(self, layer, labels, plane, params) -> Labels:
        """Put ``labels`` (one plane when ``plane`` is set) in the target."""
        shape = self._labels_shape(layer)
        scheme = label_scheme(params)
        target, name = self._target(layer, shape)
        if plane is None:
            data = labels
        else:
            data = (
                target.data
                if target is not None
                else np.zeros(shape, np.uint8)
            )
            data[plane] = labels
        if target is None:
            target = self.viewer.add_labels(
                data,
                name=name,
                scale=layer.scale,
                translate=layer.translate,
                **labels_kwargs(scheme),
            )
            if name != f"{layer.name} labels":
                show_info(
                    f"Auto-label: '{layer.name} labels' has edits or is not "
                    f"an auto-label layer; wrote to '{name}' instead"
                )
        else:
            target.data = data
            if scheme_of(target, None) != scheme:
                apply_scheme(target, scheme)
        target.metadata = {
            **target.metadata,
            STAMP_KEY: {
                "image": layer.name,
                "method": params.method,
                "checksum": _checksum(data),
            },
        }
        return target

    def _apply_all(self, layer: Image, params: AutoLabelParams):
        if self._worker is not None:
            raise ThinsegError("auto-label of all planes is already running")
        data = self._level0(layer)
        n = len(data)
        worker = thread_worker(
            _stack_job,
            progress={"total": n, "desc": f"Auto-label {layer.name}"},
        )(data, params, layer.rgb)

        alive = self._alive

        def done(result):
            if not alive[0]:
                return
            if isinstance(result, ThinsegError):
                self._report(result)
                return
            if layer not in self.viewer.layers:
                show_error(f"Auto-label: layer '{layer.name}' was removed")
                return
            target = self._write(layer, result, None, params)
            self._set_status(f"{n} planes written to '{target.name}'")

        def finished():
            if alive[0]:
                self._worker = None
                self.apply_button.setEnabled(True)

        worker.returned.connect(done)
        worker.finished.connect(finished)
        self._worker = worker
        self.apply_button.setEnabled(False)
        self._set_status(f"labelling {n} planes ...")
        worker.start()
        return worker

    # -- histogram ------------------------------------------------------------
    def _update_histogram(self, gray: np.ndarray) -> None:
        if self._hist_key == self._gray_key and self._hist_key is not None:
            return
        self._hist_key = self._gray_key
        counts, edges = np.histogram(
            _subsample(gray), bins=256, range=(0.0, 1.0)
        )
        self.ax.clear()
        self._style_axes()
        self.ax.stairs(
            counts, edges, fill=True, color=self._hist_color, alpha=0.6
        )
        self.ax.set_ylim(0, max(1, counts.max()) * 1.05)
        self.threshold_lines, self._bands = [], []
        self._draw_thresholds()

    def _clear_histogram(self) -> None:
        self._hist_key = None
        self.ax.clear()
        self._style_axes()
        self.threshold_lines, self._bands = [], []
        self.hist_canvas.draw_idle()

    def shown_thresholds(self) -> tuple[float, ...]:
        """Thresholds drawn on the histogram (multi-Otsu's when chosen)."""
        if self.method() == "multiotsu":
            return self._found or ()
        return self.thresholds()

    def _draw_thresholds(self) -> None:
        for artist in (*self.threshold_lines, *self._bands):
            artist.remove()
        thresholds = self.shown_thresholds()
        try:
            scheme = label_scheme(
                AutoLabelParams(
                    method="gray",
                    thresholds=thresholds or DEFAULT_THRESHOLDS,
                )
            )
        except ThinsegError:
            scheme = None
        edges = (0.0, *thresholds, 1.0)
        self._bands = []
        if scheme is not None and len(scheme) == len(edges) - 1:
            self._bands = [
                self.ax.axvspan(lo, hi, color=c.color, alpha=0.3, lw=0)
                for lo, hi, c in zip(edges, edges[1:], scheme, strict=False)
            ]
        dashed = self.method() == "multiotsu"
        self.threshold_lines = [
            self.ax.axvline(
                t, color="#e0403a", lw=1.5, ls="--" if dashed else "-"
            )
            for t in thresholds
        ]
        self.hist_canvas.draw_idle()

    def _on_press(self, event) -> None:
        if (
            event.button != 1
            or event.inaxes is not self.ax
            or self.method() == "multiotsu"
            or not self.threshold_lines
        ):
            return
        xs = [
            self.ax.transData.transform((t, 0))[0] for t in self.thresholds()
        ]
        dist = [abs(x - event.x) for x in xs]
        best = int(np.argmin(dist))
        if dist[best] <= 8:
            self._drag = best

    def _on_motion(self, event) -> None:
        if self._drag is None or event.xdata is None:
            return
        self.threshold_spins[self._drag].setValue(float(event.xdata))

    def _on_release(self, event) -> None:
        self._drag = None

    # -- reactions ------------------------------------------------------------
    def _image_choices(self, _widget=None) -> list[tuple[str, Image]]:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Image)
        ]

    def _on_image_changed(self, *_) -> None:
        if self._data_emitter is not None:
            self._data_emitter.disconnect(self._on_data)
            self._connections.remove((self._data_emitter, self._on_data))
            self._data_emitter = None
        self._clear_cache()
        layer = self.image_layer
        if layer is not None:
            layer.events.data.connect(self._on_data)
            self._data_emitter = layer.events.data
            self._connections.append((self._data_emitter, self._on_data))
        stack = self.is_stack(layer)
        self.scope_combo.setVisible(stack)
        self.scope_label.setVisible(stack)
        self._schedule()

    def _on_data(self, *_) -> None:
        self._clear_cache()
        self._schedule()

    def _on_dims(self, *_) -> None:
        if self.is_stack():
            self._schedule()

    def _on_method(self, *_) -> None:
        method = self.method()
        self.threshold_box.setVisible(method != "multiotsu")
        self.otsu_box.setVisible(method == "multiotsu")
        self.epoxy_box.setVisible(method == "epoxy")
        self._draw_thresholds()
        self._schedule()

    def _on_spin(self, i: int) -> None:
        spin, slider = self.threshold_spins[i], self.threshold_sliders[i]
        slider.blockSignals(True)
        slider.setValue(round(spin.value() * SLIDER_MAX))
        slider.blockSignals(False)
        self._update_ranges()
        self._thresholds_changed()

    def _on_slider(self, i: int, position: int) -> None:
        spin, slider = self.threshold_spins[i], self.threshold_sliders[i]
        spin.setValue(position / SLIDER_MAX)  # clamps between neighbours
        if slider.value() != round(spin.value() * SLIDER_MAX):
            slider.blockSignals(True)
            slider.setValue(round(spin.value() * SLIDER_MAX))
            slider.blockSignals(False)

    def _update_ranges(self) -> None:
        """Keep thresholds strictly increasing: each between neighbours."""
        values = self.thresholds()
        n = len(values)
        for i, spin in enumerate(self.threshold_spins):
            lo = values[i - 1] + T_STEP if i > 0 else T_STEP
            hi = values[i + 1] - T_STEP if i < n - 1 else 1 - T_STEP
            spin.blockSignals(True)
            spin.setRange(round(lo, 3), round(hi, 3))
            spin.blockSignals(False)

    def _thresholds_changed(self) -> None:
        if self.method() != "multiotsu":
            self._draw_thresholds()
            self._schedule()

    def _update_otsu(self, params: AutoLabelParams) -> None:
        if params.method != "multiotsu":
            return
        self._found = self._otsu
        self.otsu_label.setText("  ".join(f"{t:.3f}" for t in self._found))
        self.use_otsu_button.setEnabled(
            len(self._found) == len(self.threshold_spins)
        )
        self._draw_thresholds()

    def _use_otsu(self) -> None:
        if not self._found:
            return
        try:
            self.set_thresholds(self._found)
        except ThinsegError as exc:
            self._report(exc)
            return
        self.method_combo.setCurrentIndex(self.method_combo.findData("gray"))

    def _on_preview_toggled(self, checked: bool) -> None:
        if checked:
            self._last_error = None
            self._schedule()

    def _schedule(self, *_) -> None:
        """Refresh after the debounce delay (restarts on every change)."""
        self._timer.start()

    # -- messages -------------------------------------------------------------
    def _report(self, exc: Exception, once: bool = False) -> None:
        """Notify ``exc``; with ``once``, repeat no message twice in a row."""
        message = str(exc)
        self._set_status(message, error=True)
        if once and message == self._last_error:
            return
        self._last_error = message
        show_error(f"Auto-label: {message}")

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #e0403a;" if error else "")
