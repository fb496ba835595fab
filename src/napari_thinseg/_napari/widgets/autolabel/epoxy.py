"""The Auto-label widget's "Click the epoxy": the colour around a clicked
pixel is a sample of the dye that refines the dye found in the image
(:func:`~napari_thinseg.autolabel.epoxy.fit_epoxy`); several clicks add up."""

from __future__ import annotations

import contextlib

import numpy as np

from ....autolabel.epoxy import fit_epoxy, sample_colour
from ....errors import ThinsegError


class EpoxyClick:
    """Mixed into :class:`~.autolabel.AutoLabelWidget` (its form, cache,
    shown plane, status and error report)."""

    def pick_epoxy(self) -> None:
        """Wait for a click on the image; its colour becomes a sample of
        the dye (:meth:`sample_epoxy`)."""
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

    def sample_epoxy(self, layer, yx, radius: int = 2) -> tuple | None:
        """Add the colour around pixel ``yx`` of the shown plane of
        ``layer`` (a square of ``2 radius + 1`` pixels) to the samples of
        the dye, and find the dye with them; returns the samples (None
        when the click is refused)."""
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
            samples = (*self.epoxy_samples, sample_colour(patch))
            # refuses a colour that is no blue dye after white balance
            fit = fit_epoxy(plane, self.sigma_spin.value(), samples)
        except ThinsegError as exc:
            self._report(exc)
            return None
        self.epoxy_samples = samples
        self.forget_samples_button.setEnabled(True)
        self.epoxy_auto_check.setChecked(True)
        self.method_combo.setCurrentIndex(self.method_combo.findData("epoxy"))
        self._schedule()
        self._set_status(
            f"epoxy from {len(samples)} click(s): {fit.describe()}"
        )
        return samples

    def forget_epoxy_samples(self) -> None:
        """Drop the clicked samples: the dye is found unaided again."""
        self.epoxy_samples = ()
        self.forget_samples_button.setEnabled(False)
        self._schedule()
        self._set_status("clicks forgotten: the dye is found unaided")

    def _epoxy_found(self):
        """``(mask, fit)`` of the dye the cache holds for the shown plane
        and settings (None until it is computed)."""
        layer = self.image_layer
        if layer is None:
            return None
        try:
            params = self.params()
            source = self._source(layer)
        except ThinsegError:
            return None
        if not self.cache.has_blue(source, params) or self.cache.fit is None:
            return None
        return self.cache.blue, self.cache.fit
