"""The Auto-label widget's hue / saturation view: where the image's
colours lie, with the epoxy window drawn over them, so that pale or dark
dye that the window misses shows as a cloud outside the box."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from qtpy.QtWidgets import QSizePolicy

from ...autolabel import EpoxyWindow
from ...imaging.convert import rgb8
from ._common import theme_colors

HSV_PIXELS = 250_000
"""At most this many pixels go into the view."""
BINS = (72, 32)
"""Hue (5 degrees a bin) and saturation bins."""


class HueSaturationView:
    """A 2D histogram of hue (x, 0..1 of the circle) and saturation (y)
    of an RGB image, log-scaled, with the epoxy window as a box.

    Attributes
    ----------
    canvas : FigureCanvasQTAgg
    counts : ndarray or None
        The histogram drawn (hue bins x saturation bins).
    """

    def __init__(self, viewer):
        self.viewer = viewer
        self.counts: np.ndarray | None = None
        self._shown = None
        self.figure = Figure(figsize=(3.5, 1.5), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(120)
        self.canvas.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
        )
        self.canvas.setToolTip(
            "Hue and saturation of the image (brighter: more pixels); the "
            "box is the epoxy window. Dye outside it is missed: widen the "
            "window or click the epoxy"
        )
        self.ax = self.figure.add_subplot()
        self._box = None

    def show(self, image, window: EpoxyWindow) -> None:
        """Draw ``image``'s colours (recomputed only for another image)."""
        from skimage.color import rgb2hsv

        key = (id(image), getattr(image, "shape", None))
        if key != self._shown:
            rgb = np.asarray(image)
            if rgb.ndim != 3 or rgb.shape[-1] < 3:
                self.clear()
                return
            step = max(1, int(np.ceil(np.sqrt(rgb[..., 0].size / HSV_PIXELS))))
            hsv = rgb2hsv(rgb8(rgb[::step, ::step]))
            self.counts, _, _ = np.histogram2d(
                hsv[..., 0].ravel(),
                hsv[..., 1].ravel(),
                bins=BINS,
                range=((0, 1), (0, 1)),
            )
            self._shown = key
            fg, bg = theme_colors(self.viewer)
            self.ax.clear()
            self.ax.set_facecolor(bg)
            self.figure.set_facecolor(bg)
            self.ax.imshow(
                np.log1p(self.counts.T),
                origin="lower",
                extent=(0, 1, 0, 1),
                aspect="auto",
                cmap="gray",
            )
            self.ax.set_xlabel("hue", color=fg, fontsize=7)
            self.ax.set_ylabel("saturation", color=fg, fontsize=7)
            self.ax.tick_params(colors=fg, labelsize=6)
            self._box = None
        self.draw_window(window)

    def draw_window(self, window: EpoxyWindow) -> None:
        """Draw (or move) the epoxy window's box."""
        if self._shown is None:
            return
        if self._box is not None:
            self._box.remove()
        self._box = Rectangle(
            (window.hue_min, window.min_saturation),
            window.hue_max - window.hue_min,
            1 - window.min_saturation,
            fill=False,
            edgecolor="#4aa8ff",
            linewidth=1.5,
        )
        self.ax.add_patch(self._box)
        self.canvas.draw_idle()

    def clear(self) -> None:
        """Show nothing (a gray image has no hue)."""
        self.counts, self._shown, self._box = None, None, None
        self.ax.clear()
        self.canvas.draw_idle()
