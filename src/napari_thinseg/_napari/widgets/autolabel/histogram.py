"""The Auto-label widget's histogram: the gray levels of the shown plane,
the thresholds drawn on them over the colours of the classes they make,
and the lines dragged with the mouse to move a threshold."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QSizePolicy

from ....autolabel.rule import (
    DEFAULT_THRESHOLDS,
    AutoLabelParams,
    label_scheme,
)
from ....errors import ThinsegError
from .._common import theme_colors

#: at most this many pixels go into the histogram
HIST_PIXELS = 1_000_000
#: a press this close to a line (screen pixels) grabs it
GRAB_PIXELS = 8


def _subsample(values: np.ndarray, n_max: int = HIST_PIXELS):
    """A strided view of ``values`` with at most about ``n_max`` pixels."""
    if values.size <= n_max:
        return values
    step = int(np.ceil(np.sqrt(values.size / n_max)))
    return values[::step, ::step]


class ThresholdHistogram:
    """A matplotlib gray-level histogram with draggable threshold lines.

    Parameters
    ----------
    viewer : napari.Viewer
        Whose theme gives the colours.
    moved : callable
        ``moved(i, x)`` while threshold ``i``'s line is dragged to ``x``.

    Attributes
    ----------
    canvas : FigureCanvasQTAgg
        The Qt widget to put in a layout.
    ax : matplotlib.axes.Axes
        The histogram's axes (gray level 0..1 along x).
    lines : list
        The threshold lines drawn, in threshold order.
    """

    def __init__(self, viewer, moved: Callable[[int, float], None]):
        self.viewer = viewer
        self._moved = moved
        self.lines: list = []
        self._bands: list = []
        self._thresholds: tuple[float, ...] = ()
        self._draggable = False
        self._drag: int | None = None
        self._version = None

        self.figure = Figure(figsize=(3.5, 1.5), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(130)
        self.canvas.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed
        )
        self.canvas.setToolTip(
            "Gray-level histogram of the smoothed image; drag a threshold "
            "line to move it"
        )
        self.ax = self.figure.add_subplot()
        self._style_axes()
        self.canvas.mpl_connect("button_press_event", self._on_press)
        self.canvas.mpl_connect("motion_notify_event", self._on_motion)
        self.canvas.mpl_connect("button_release_event", self._on_release)

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

    def show(
        self,
        gray: np.ndarray,
        version,
        thresholds: Sequence[float],
        draggable: bool,
    ) -> None:
        """Draw the histogram of ``gray`` with ``thresholds`` on it.

        Nothing happens while ``version`` (what changes with the gray, see
        :attr:`..autolabel_preview.PreviewCache.gray_version`) is the one
        drawn last.
        """
        if self._version == version and version is not None:
            return
        self._version = version
        counts, edges = np.histogram(
            _subsample(gray), bins=256, range=(0.0, 1.0)
        )
        self.ax.clear()
        self._style_axes()
        self.ax.stairs(
            counts, edges, fill=True, color=self._hist_color, alpha=0.6
        )
        self.ax.set_ylim(0, max(1, counts.max()) * 1.05)
        self.lines, self._bands = [], []
        self.draw_thresholds(thresholds, draggable)

    def clear(self) -> None:
        """Empty axes (no image to show)."""
        self._version = None
        self.ax.clear()
        self._style_axes()
        self.lines, self._bands = [], []
        self.canvas.draw_idle()

    def draw_thresholds(
        self, thresholds: Sequence[float], draggable: bool
    ) -> None:
        """Draw ``thresholds`` as lines over the colours of the classes
        between them: solid lines the mouse can drag, or dashed ones (the
        thresholds multi-Otsu found) it cannot."""
        for artist in (*self.lines, *self._bands):
            artist.remove()
        thresholds = tuple(thresholds)
        self._thresholds, self._draggable = thresholds, draggable
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
        self.lines = [
            self.ax.axvline(
                t, color="#e0403a", lw=1.5, ls="-" if draggable else "--"
            )
            for t in thresholds
        ]
        self.canvas.draw_idle()

    # -- dragging --------------------------------------------------------
    def _on_press(self, event) -> None:
        if (
            event.button != 1
            or event.inaxes is not self.ax
            or not self._draggable
            or not self.lines
        ):
            return
        xs = [self.ax.transData.transform((t, 0))[0] for t in self._thresholds]
        dist = [abs(x - event.x) for x in xs]
        best = int(np.argmin(dist))
        if dist[best] <= GRAB_PIXELS:
            self._drag = best

    def _on_motion(self, event) -> None:
        if self._drag is None or event.xdata is None:
            return
        self._moved(self._drag, float(event.xdata))

    def _on_release(self, event) -> None:
        self._drag = None
