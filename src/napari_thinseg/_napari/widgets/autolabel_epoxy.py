"""The Auto-label widget's "Click the epoxy": the colour around a clicked
pixel sets the epoxy window (:func:`~napari_thinseg.autolabel.
epoxy_window_from_sample`), for pale or dark dye the default misses."""

from __future__ import annotations

import contextlib

import numpy as np

from ...autolabel import EpoxyWindow, epoxy_window_from_sample
from ...errors import ThinsegError


class EpoxyClick:
    """Mixed into :class:`~.autolabel.AutoLabelWidget` (its form, shown
    plane, status and error report)."""

    def pick_epoxy(self) -> None:
        """Wait for a click on the image; its colour sets the epoxy
        window (:meth:`sample_epoxy`)."""
        layer = self.image_layer
        if layer is None:
            self._report("choose an image layer first")
            return

        def on_click(clicked, event):
            if event.type != "mouse_press":
                return
            with contextlib.suppress(ValueError):
                layer.mouse_drag_callbacks.remove(on_click)
            yx = clicked.world_to_data(event.position)[-2:]
            self.sample_epoxy(clicked, yx)

        layer.mouse_drag_callbacks.append(on_click)
        self._set_status(
            f"click on the dyed epoxy of a pore in '{layer.name}'"
        )

    def sample_epoxy(self, layer, yx, radius: int = 2) -> EpoxyWindow | None:
        """Set the epoxy window from the colour around pixel ``yx`` of the
        shown plane of ``layer`` (a square of ``2 radius + 1`` pixels)."""
        try:
            plane = np.asarray(self._plane_image(layer))
            if plane.ndim != 3:
                raise ThinsegError(
                    f"{layer.name}: a gray image has no epoxy colour; use "
                    "gray thresholds"
                )
            y, x = (int(round(v)) for v in yx)
            if not (0 <= y < plane.shape[0] and 0 <= x < plane.shape[1]):
                raise ThinsegError("the click is outside the image")
            patch = plane[
                max(0, y - radius) : y + radius + 1,
                max(0, x - radius) : x + radius + 1,
            ]
            window = epoxy_window_from_sample(patch)
        except ThinsegError as exc:
            self._report(exc)
            return None
        for name, spin in self.epoxy_spins.items():
            spin.setValue(getattr(window, name))
        self.method_combo.setCurrentIndex(self.method_combo.findData("epoxy"))
        w = window
        self._set_status(
            f"epoxy window from the clicked colour: hue {w.hue_min:.2f}-"
            f"{w.hue_max:.2f}, saturation >= {w.min_saturation:.2f}, value >="
            f" {w.min_value:.2f}"
        )
        return window
