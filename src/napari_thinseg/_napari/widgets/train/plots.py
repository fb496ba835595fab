"""The Train widget's live view: batch and epoch loss, validation IoU per
class over the epochs, and the last epoch's IoU table. A plot with nothing
to show yet says so (no axes of -0.04 to 0.04)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from matplotlib.ticker import AutoLocator, NullLocator
from qtpy.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ....schemes import ClassScheme
from ....training.loop import TrainEvent, TrainResult
from .._common import single_shot_timer, theme_colors

#: the plots are redrawn at most this often while training (ms)
PLOT_INTERVAL_MS = 250

NO_LOSS = "no data yet: the loss of each batch, once training runs"
NO_IOU = "no data yet: the validation IoU, after each validated epoch"


class TrainingPlots(QWidget):
    """Loss and validation-IoU plots of a training run, and the per-class
    IoU table of its last validated epoch.

    Feed it every :class:`~napari_thinseg.training.loop.TrainEvent` with
    :meth:`add`; batch losses are redrawn at most every
    :data:`PLOT_INTERVAL_MS`, epochs at once.
    """

    def __init__(self, viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = viewer
        self._loss = ([], [])
        self._epoch_loss = ([], [])
        self._iou: list[tuple] = []  # (epoch, per-class IoU, mean)
        self._class_lines: dict[int, object] = {}

        self.figure = Figure(figsize=(3.5, 3.2), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.canvas.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding
        )
        self.loss_ax, self.iou_ax = self.figure.subplots(2, 1)
        (self.loss_line,) = self.loss_ax.plot([], [], lw=0.8, label="batch")
        (self.epoch_loss_line,) = self.loss_ax.plot(
            [], [], "o-", ms=3, lw=1.2, label="epoch mean"
        )
        (self.iou_line,) = self.iou_ax.plot(
            [], [], "o-", ms=3, lw=2.0, label="mean"
        )
        _, fg = theme_colors(viewer)
        self.empty_texts = {
            ax: ax.text(
                0.5,
                0.5,
                text,
                transform=ax.transAxes,
                ha="center",
                va="center",
                wrap=True,
                color=fg,
                fontsize=8,
            )
            for ax, text in ((self.loss_ax, NO_LOSS), (self.iou_ax, NO_IOU))
        }
        self._style_axes()
        self._show_empty(self.loss_ax, True)
        self._show_empty(self.iou_ax, True)
        self._plot_timer = single_shot_timer(
            self, PLOT_INTERVAL_MS, self.redraw
        )

        self.iou_table = QTableWidget(0, 3)
        self.iou_table.setHorizontalHeaderLabels(["id", "class", "IoU"])
        self.iou_table.verticalHeader().setVisible(False)
        self.iou_table.setEditTriggers(
            QAbstractItemView.EditTrigger.NoEditTriggers
        )
        self.iou_table.horizontalHeader().setSectionResizeMode(
            1, QHeaderView.ResizeMode.Stretch
        )
        self.iou_table.setMinimumHeight(80)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(QLabel("validation IoU of the last epoch"))
        layout.addWidget(self.iou_table)

    def _style_axes(self) -> None:
        bg, fg = theme_colors(self.viewer)
        self.figure.set_facecolor(bg)
        for ax, ylabel in ((self.loss_ax, "loss"), (self.iou_ax, "val IoU")):
            ax.set_facecolor(bg)
            ax.tick_params(colors=fg, labelsize=7)
            ax.set_ylabel(ylabel, color=fg, fontsize=8)
            for spine in ax.spines.values():
                spine.set_color(fg)
        self.loss_ax.set_xlabel("batch", color=fg, fontsize=8)
        self.iou_ax.set_xlabel("epoch", color=fg, fontsize=8)
        self.iou_ax.set_ylim(0, 1)
        self.iou_line.set_color(fg)

    def _show_empty(self, ax, empty: bool) -> None:
        """An axis with nothing to plot: its "no data yet" note, no ticks
        (else the note hidden and ticks back)."""
        self.empty_texts[ax].set_visible(empty)
        locator = NullLocator if empty else AutoLocator
        ax.xaxis.set_major_locator(locator())
        ax.yaxis.set_major_locator(locator())
        if empty:
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)

    def is_empty(self, ax) -> bool:
        """Whether ``ax`` (``loss_ax``, ``iou_ax``) shows "no data yet"."""
        return self.empty_texts[ax].get_visible()

    def reset(self, scheme: ClassScheme, validation: bool) -> None:
        """Empty plots for a new run (a line per class when validating)."""
        self._loss = ([], [])
        self._epoch_loss = ([], [])
        self._iou = []
        for line in self._class_lines.values():
            line.remove()
        self._class_lines = {}
        if validation:
            for cls in scheme:
                (line,) = self.iou_ax.plot(
                    [], [], lw=0.8, color=cls.color, label=cls.name
                )
                self._class_lines[cls.id] = line
        self.iou_table.setRowCount(0)
        self.redraw()

    def add(self, event: TrainEvent) -> None:
        """Take one training event: a batch loss, or an epoch's mean loss
        and validation IoU."""
        if event.epoch_end:
            self._epoch_loss[0].append(event.step)
            self._epoch_loss[1].append(event.loss)
            if event.val_iou is not None:
                self._iou.append(
                    (event.epoch + 1, event.val_iou, event.val_mean_iou)
                )
            self.redraw()
        else:
            self._loss[0].append(event.step)
            self._loss[1].append(event.loss)
            if not self._plot_timer.isActive():
                self._plot_timer.start()

    def stop_timer(self) -> None:
        self._plot_timer.stop()

    def loss_points(self) -> list[tuple[int, float]]:
        """``(step, batch loss)`` of the current (or last) run."""
        return list(zip(*self._loss, strict=True))

    def redraw(self) -> None:
        """Put the collected losses and IoUs into the plots."""
        self.loss_line.set_data(*self._loss)
        self.epoch_loss_line.set_data(*self._epoch_loss)
        epochs = [e for e, _, _ in self._iou]
        means = [np.nan if m is None else m for _, _, m in self._iou]
        self.iou_line.set_data(epochs, means)
        for class_id, line in self._class_lines.items():
            line.set_data(
                epochs,
                [
                    np.nan
                    if class_id >= len(iou) or iou[class_id] is None
                    else iou[class_id]
                    for _, iou, _ in self._iou
                ],
            )
        losses = [*self._loss[1], *self._epoch_loss[1]]
        has_loss = bool(np.isfinite(np.asarray(losses, float)).any())
        self._show_empty(self.loss_ax, not has_loss)
        if has_loss:
            self.loss_ax.set_autoscale_on(True)  # off since the empty view
            self.loss_ax.relim()
            self.loss_ax.autoscale_view()
        self._show_empty(self.iou_ax, not epochs)
        if epochs:
            self.iou_ax.relim()
            self.iou_ax.set_ylim(0, 1)
            self.iou_ax.set_xlim(0.5, max(epochs) + 0.5)
        self.canvas.draw_idle()

    def fill_iou_table(
        self, result: TrainResult, scheme: ClassScheme | None
    ) -> None:
        """The per-class IoU of the last validated epoch of ``result``."""
        record = next(
            (r for r in reversed(result.history) if "val_iou" in r), None
        )
        self.iou_table.setRowCount(0)
        if record is None or scheme is None:
            return
        iou = record["val_iou"]
        rows = [
            (
                str(cls.id),
                cls.name,
                iou[cls.id] if cls.id < len(iou) else None,
            )
            for cls in scheme
        ]
        rows.append(("", "mean (classes present)", record["val_mean_iou"]))
        self.iou_table.setRowCount(len(rows))
        for row, (cid, name, value) in enumerate(rows):
            text = (
                "—"
                if value is None or not np.isfinite(value)
                else f"{value:.3f}"
            )
            for col, cell in enumerate((cid, name, text)):
                self.iou_table.setItem(row, col, QTableWidgetItem(cell))

    def iou_rows(self) -> list[tuple[str, str, str]]:
        """The per-class IoU table as text: ``(id, class, IoU)`` rows."""
        return [
            tuple(
                self.iou_table.item(r, c).text()
                for c in range(self.iou_table.columnCount())
            )
            for r in range(self.iou_table.rowCount())
        ]
