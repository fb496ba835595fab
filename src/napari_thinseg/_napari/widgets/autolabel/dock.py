"""Auto-label dock widget: a thin Qt shell around :mod:`....autolabel`.

The petrographer picks an image layer and a method, watches the gray-level
histogram with the thresholds drawn on it, and gets a live preview in the
Labels layer ``"<image> labels"``. The slow parts of the shown plane (the
smoothed gray level, the blue epoxy mask, multi-Otsu's thresholds) stay in
a :class:`...autolabel_preview.PreviewCache`, so moving a threshold only
re-bins pixels: no Gaussian runs while a slider moves.

The controls are :class:`.form.AutoLabelForm`'s, the histogram
:class:`.histogram.ThresholdHistogram`'s; this module reacts to
them: debounced previews, Apply, workers for large planes and whole
stacks, and the Labels layer written.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from napari.layers import Image, Labels

from ....autolabel.preview import PreviewCache
from ....autolabel.rule import AutoLabelParams, autolabel_stack, label_scheme
from ....errors import ThinsegError
from ... import workers
from ...layers import (
    apply_scheme,
    labels_kwargs,
    scheme_of,
    stamp,
    writable_labels,
)
from ...notify import notify_error, notify_info, scaling_note
from .._common import disconnect_all, single_shot_timer, time_left_status
from .epoxy import EpoxyClick
from .form import ALL_PLANES, AutoLabelForm

#: metadata key that marks a Labels layer written by this widget
STAMP_KEY = "thinseg_autolabel"
#: delay between the last change and the preview (ms)
DEBOUNCE_MS = 150
#: planes up to this many pixels are smoothed on the GUI thread
SYNC_PIXELS = 1_000_000


class AutoLabelWidget(EpoxyClick, AutoLabelForm):
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
    the viewer; "all planes" runs :func:`...autolabel.autolabel_stack` in a
    background thread with a progress bar.

    The smoothed gray, blue-dye mask and multi-Otsu thresholds of the shown
    plane are cached per (layer, data, plane, sigma[, epoxy window, class
    count]); a threshold change only re-bins. Planes over ``SYNC_PIXELS``
    pixels fill the cache in a background thread, and the preview or Apply
    that asked for it runs when it is done.
    """

    def __init__(self, napari_viewer):
        super().__init__(napari_viewer)
        self.cache = PreviewCache()
        self._connections: list[tuple[object, Callable]] = []
        self._data_emitter = None
        self._found: tuple[float, ...] | None = None
        self._last_error: str | None = None
        self._worker = None
        self._cache_worker = None
        self._pending: dict[Callable, None] = {}
        self._alive = [True]

        self._timer = single_shot_timer(self, DEBOUNCE_MS, self.refresh)

        self._connect_form()
        self._connect_viewer()
        self.destroyed.connect(
            lambda *_, c=self._connections, a=self._alive: disconnect_all(c, a)
        )
        self._on_image_changed()

    # -- construction ---------------------------------------------------------
    def _connect_form(self) -> None:
        self.image_combo.changed.connect(self._on_image_changed)
        self.method_combo.currentIndexChanged.connect(self._on_method)
        self.sigma_spin.valueChanged.connect(self._schedule)
        self.scope_combo.currentIndexChanged.connect(self._schedule)
        self.n_classes_spin.valueChanged.connect(self._schedule)
        for spin in self.epoxy_spins.values():
            spin.valueChanged.connect(self._schedule)
        self.thresholds_changed.connect(self._thresholds_changed)
        self.use_otsu_button.clicked.connect(self._use_otsu)
        self.pick_epoxy_button.clicked.connect(self.pick_epoxy)
        self.forget_samples_button.clicked.connect(self.forget_epoxy_samples)
        self.epoxy_auto_check.toggled.connect(self._schedule)
        self.preview_check.toggled.connect(self._on_preview_toggled)
        self.apply_button.clicked.connect(self.apply)
        self._on_method()

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
    def reset_choices(self, *_) -> None:
        """Refresh the image picker from the viewer's layers."""
        self.image_combo.reset_choices()

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

    def shown_thresholds(self) -> tuple[float, ...]:
        """Thresholds drawn on the histogram (multi-Otsu's when chosen)."""
        if self.method() == "multiotsu":
            return self._found or ()
        return self.thresholds()

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
            self.histogram.clear()
            self._set_status("add an image layer to label")
            return
        try:
            params = self.params()
            if not self._ensure_cached(layer, params, self.refresh):
                return
            self._update_histogram()
            self._update_otsu(params)
            self._show_colours()  # with the dye found, now cached
            if self.preview_check.isChecked():
                labels, plane = self._labels_from_cache(layer, params)
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
            notify_error("Auto-label: choose an image layer first")
            return None
        try:
            params = self.params()
            if self.is_stack(layer) and (
                self.scope_combo.currentText() == ALL_PLANES
            ):
                return self._apply_all(layer, params)
            if not self._ensure_cached(layer, params, self.apply):
                return self._cache_worker
            self._update_histogram()
            self._update_otsu(params)
            self._show_colours()
            labels, plane = self._labels_from_cache(layer, params)
            target = self._write(layer, labels, plane, params)
        except ThinsegError as exc:
            # once: the preview may have said it already
            self._report(exc, once=True)
            return None
        self._last_error = None
        scaling = scaling_note(layer.name, self._plane_image(layer))
        self._set_status(f"labels written to '{target.name}'{scaling}")
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

    def _source(self, layer: Image) -> tuple:
        """What names the shown plane in the cache."""
        return (id(layer), id(layer.data), self.current_plane(layer))

    def _ensure_cached(self, layer, params, then: Callable) -> bool:
        """Whether the cache holds all ``params`` need for the shown plane.

        What is missing is computed here for planes up to ``SYNC_PIXELS``
        pixels (raising ThinsegError), else in a worker thread; then this
        returns False and ``then()`` runs once the worker is done.
        """
        fill = self.cache.missing(self._source(layer), params)
        if fill is None:
            return True
        if self._cache_worker is not None:
            self._pending[then] = None
            return False
        image = self._plane_image(layer)
        if int(np.prod(image.shape[:2])) <= SYNC_PIXELS:
            try:
                fill.compute(image, layer.name, layer.rgb)
            finally:
                self.cache.store(fill)
            return True
        self._pending[then] = None
        alive = self._alive

        def refused(message: str) -> None:
            if alive[0]:
                self._pending.clear()  # the same request would fail again
                self._report(message, once=True)

        def errored(_exc) -> None:
            # napari's worker shows the traceback; retrying would loop
            if alive[0]:
                self._pending.clear()

        def finished() -> None:
            if alive[0]:
                self.cache.store(fill)  # also what came before an error
                self._on_cache_worker_done()

        self._cache_worker = workers.start(
            fill.compute,
            image,
            layer.name,
            layer.rgb,
            refused=refused,
            errored=errored,
            finished=finished,
        )
        self._set_status("smoothing the image ...")
        return False

    def _on_cache_worker_done(self) -> None:
        self._cache_worker = None
        pending, self._pending = list(self._pending), {}
        for callback in pending:
            callback()

    def _labels_from_cache(
        self, layer: Image, params: AutoLabelParams
    ) -> tuple[np.ndarray, int | None]:
        """What :func:`...autolabel.autolabel` gives, from the cache.

        Returns the labels of the shown plane and its index (None in 2D).
        """
        source = self._source(layer)
        return self.cache.labels(source, params), source[2]

    def _clear_cache(self) -> None:
        self.cache.clear()
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
        return writable_labels(
            self.viewer.layers,
            base,
            STAMP_KEY,
            shape,
            lambda k: f"{base} [{k}]",
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
                notify_info(
                    f"Auto-label: '{layer.name} labels' has edits or is not "
                    f"an auto-label layer; wrote to '{name}' instead"
                )
        else:
            target.data = data
            if scheme_of(target, None) != scheme:
                apply_scheme(target, scheme)
        target.metadata = {
            **target.metadata,
            STAMP_KEY: stamp(data, image=layer.name, method=params.method),
        }
        return target

    def _apply_all(self, layer: Image, params: AutoLabelParams):
        if self._worker is not None:
            raise ThinsegError("auto-label of all planes is already running")
        data = self._level0(layer)
        n = len(data)
        alive = self._alive

        def returned(labels) -> None:
            if not alive[0]:
                return
            if layer not in self.viewer.layers:
                notify_error(f"Auto-label: layer '{layer.name}' was removed")
                return
            target = self._write(layer, labels, None, params)
            self._set_status(f"{n} planes written to '{target.name}'")

        def refused(message: str) -> None:
            if alive[0]:
                self._report(message)

        def finished() -> None:
            if alive[0]:
                self._worker = None
                self.apply_button.setEnabled(True)

        self._worker = workers.start(
            autolabel_stack,
            data,
            params,
            layer.rgb,
            desc=f"Auto-label {layer.name}",
            total=n,
            yielded=time_left_status(self._set_status, "labelling plane"),
            returned=returned,
            refused=refused,
            finished=finished,
        )
        self.apply_button.setEnabled(False)
        self._set_status(f"labelling {n} planes ...")
        return self._worker

    # -- histogram ------------------------------------------------------------
    def _update_histogram(self) -> None:
        self.histogram.show(
            self.cache.gray,
            self.cache.gray_version,
            self.shown_thresholds(),
            draggable=self.method() != "multiotsu",
        )
        self._show_colours()

    def _draw_thresholds(self) -> None:
        self.histogram.draw_thresholds(
            self.shown_thresholds(), draggable=self.method() != "multiotsu"
        )

    # -- reactions ------------------------------------------------------------
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
        self._draw_thresholds()
        self._show_colours()
        self._schedule()

    def _thresholds_changed(self) -> None:
        if self.method() != "multiotsu":
            self._draw_thresholds()
            self._schedule()

    def _update_otsu(self, params: AutoLabelParams) -> None:
        if params.method != "multiotsu":
            return
        self._found = self.cache.otsu
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
    def _report(self, error: Exception | str, once: bool = False) -> None:
        """Notify ``error``; with ``once``, repeat no message twice in a
        row."""
        message = str(error)
        self._set_status(message, error=True)
        if once and message == self._last_error:
            return
        self._last_error = message
        notify_error(f"Auto-label: {message}")

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #e0403a;" if error else "")
