"""The Auto-label widget's hue / saturation view: where the image's
colours lie, and what the epoxy method takes for dye there: the cluster
it found in the photo (blue, with the clicked samples as crosses), or the
fixed window as a box."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from qtpy.QtWidgets import QSizePolicy

from ....autolabel.rule import EpoxyWindow
from ....imaging.convert import rgb8
from .._common import theme_colors

HSV_PIXELS = 250_000
"""At most this many pixels go into the view."""
BINS = (72, 32)
"""Hue (5 degrees a bin) and saturation bins."""
DYE_COLOUR = "#4aa8ff"
"""The colour the dye found and the window are drawn in."""
_DYE_MAP = LinearSegmentedColormap.from_list(
    "thinseg_dye", [(0.29, 0.66, 1.0, 0.0), (0.29, 0.66, 1.0, 0.9)]
)


class HueSaturationView:
    """A 2D histogram of hue (x, 0..1 of the circle) and saturation (y)
    of an RGB image, log-scaled, with what the epoxy method chose.

    Attributes
    ----------
    canvas : FigureCanvasQTAgg
    counts : ndarray or None
        The histogram drawn (hue bins x saturation bins).
    dye_counts : ndarray or None
        The histogram of the pixels found to be dye (None: a fixed
        window, or nothing found yet).
    title : str
        What the view says it shows.
    """

    def __init__(self, viewer):
        self.viewer = viewer
        self.counts: np.ndarray | None = None
        self.dye_counts: np.ndarray | None = None
        self.title = ""
        self._shown = None
        self._hsv = None
        self._step = 1
        self.figure = Figure(figsize=(3.5, 1.7), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(130)
        self.canvas.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred
        )
        self.canvas.setToolTip(
            "Hue and saturation of the image (brighter: more pixels). Blue:"
            " the dye found in the image, crosses: clicked samples; or the "
            "fixed window as a box. Dye left out: click on it"
        )
        self.ax = self.figure.add_subplot()
        self._overlay = []

    def show(self, image, window: EpoxyWindow | None, found=None, samples=()):
        """Draw ``image``'s colours (recomputed only for another image) and
        the fixed ``window``, or (``window`` None) the dye ``found``
        (``(mask, fit)``, None while unknown) and the sampled colours."""
        key = (id(image), getattr(image, "shape", None))
        if key != self._shown and not self._draw_image(image, key):
            return
        for artist in self._overlay:
            artist.remove()
        self._overlay = []
        if window is not None:
            self.dye_counts = None
            self._draw_box(window)
            self.title = "fixed window"
        else:
            self._draw_found(found, samples)
        fg = theme_colors(self.viewer)[1]
        self.ax.set_title(self.title, color=fg, fontsize=7)
        self.canvas.draw_idle()

    def draw_window(self, window: EpoxyWindow) -> None:
        """Draw (or move) the fixed window's box."""
        if self._shown is not None:
            self.show(self._image, window)

    def _draw_image(self, image, key) -> bool:
        from skimage.color import rgb2hsv

        rgb = np.asarray(image)
        if rgb.ndim != 3 or rgb.shape[-1] < 3:
            self.clear()
            return False
        step = max(1, int(np.ceil(np.sqrt(rgb[..., 0].size / HSV_PIXELS))))
        self._hsv = rgb2hsv(rgb8(rgb[::step, ::step]))
        self._step, self._image = step, image
        self.counts = self._histogram(self._hsv.reshape(-1, 3))
        self._shown = key
        bg, fg = theme_colors(self.viewer)
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
        return True

    @staticmethod
    def _histogram(hsv: np.ndarray) -> np.ndarray:
        counts, _, _ = np.histogram2d(
            hsv[:, 0], hsv[:, 1], bins=BINS, range=((0, 1), (0, 1))
        )
        return counts

    def _draw_box(self, window: EpoxyWindow) -> None:
        box = Rectangle(
            (window.hue_min, window.min_saturation),
            window.hue_max - window.hue_min,
            1 - window.min_saturation,
            fill=False,
            edgecolor=DYE_COLOUR,
            linewidth=1.5,
        )
        self.ax.add_patch(box)
        self._overlay.append(box)

    def _draw_found(self, found, samples) -> None:
        from skimage.color import rgb2hsv

        self.dye_counts = None
        if found is None:
            self.title = "finding the dye ..."
            return
        mask, fit = found
        step = self._step
        dye = np.asarray(mask)[::step, ::step]
        if dye.shape == self._hsv.shape[:2] and dye.any():
            self.dye_counts = self._histogram(self._hsv[dye])
            self._overlay.append(
                self.ax.imshow(
                    np.log1p(self.dye_counts.T),
                    origin="lower",
                    extent=(0, 1, 0, 1),
                    aspect="auto",
                    cmap=_DYE_MAP,
                )
            )
        share = 100 * float(np.mean(mask))
        self.title = (
            f"dye found: {share:.1f} % of pixels"
            if fit.found
            else "no blue dye found"
        )
        if len(samples):
            hsv = rgb2hsv(np.asarray(samples, float).reshape(-1, 1, 3))[:, 0]
            (marks,) = self.ax.plot(
                hsv[:, 0], hsv[:, 1], "x", color="white", markersize=6
            )
            self._overlay.append(marks)

    def clear(self) -> None:
        """Show nothing (a gray image has no hue)."""
        self.counts = self.dye_counts = self._shown = self._hsv = None
        self._overlay = []
        self.title = ""
        self.ax.clear()
        self.canvas.draw_idle()
