"""The results half of the Measure dock: the visual porosity box, the
table of class fractions, the grain and pore sizes and the charts (class
fractions in the scheme's colours, a grain-size histogram).

Every number shown is written by :mod:`napari_thinseg.measure.report`,
the module that also writes the CLI's text.
"""

from __future__ import annotations

import contextlib

import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor, QFont
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
)

from ....measure import Measurement, report
from ....measure.report import NO_VALUE
from ....schemes import ClassScheme
from .._common import theme_colors

CLASS, PERCENT, BINOMIAL, BOOTSTRAP, AREA = range(5)
HEADERS = ("class", "%", "95 % binomial", "95 % bootstrap", "area mm²")
POROSITY_ROW = "porosity"


class MeasurementView:
    """The parts of the Measure dock that show a measurement; mixed into
    :class:`~.measure.MeasureWidget`, which lays them out.

    Attributes
    ----------
    porosity_box : QGroupBox
        The visual porosity and its two intervals.
    table : QTableWidget
        One row per class, then the porosity row.
    size_labels : dict of str to QLabel
        The grain and pore lines, by
        :data:`~napari_thinseg.measure.report.SIZE_KEYS`.
    figure, canvas, bar_ax, hist_ax
        The charts.
    """

    def _build_view(self) -> None:
        """Make the parts (the dock's ``viewer`` gives the theme)."""
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

        # sizes (keys of report.SIZE_KEYS)
        self.sizes_box = QGroupBox("Grains and pores")
        sizes = QFormLayout(self.sizes_box)
        self.size_labels: dict[str, QLabel] = {}
        phi_tip = (
            " (phi = -log2 of the diameter in mm; at least 5 grains; "
            "without a pixel size, from the diameters in pixels)"
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
            label.setWordWrap(True)  # long notes wrap: no sideways scroll
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

    def _set_point_titles(self, points: int, *_) -> None:
        """Name the binomial interval by its equivalent point count."""
        self.binomial_title.setText(
            f"point-count equivalent ({points} points)"
        )
        # short headers, the long names as their tips: the table fits
        # the dock's width (it scrolled sideways)
        headers = list(HEADERS)
        headers[BINOMIAL] = f"95 % {points} pts"
        headers[BOOTSTRAP] = "95 % blocks"
        self.table.setHorizontalHeaderLabels(headers)
        for column, tip in (
            (BINOMIAL, f"95 % binomial interval of a {points}-point count"),
            (BOOTSTRAP, "95 % block-bootstrap interval of the image"),
        ):
            self.table.horizontalHeaderItem(column).setToolTip(tip)

    # -- showing results --------------------------------------------------
    def _clear_view(self) -> None:
        self.table.setRowCount(0)
        self.porosity_label.setText(NO_VALUE)
        self.porosity_binomial_label.setText(NO_VALUE)
        self.porosity_bootstrap_label.setText(NO_VALUE)
        for label in self.size_labels.values():
            label.setText(NO_VALUE)
        self._draw(None, None)

    def _show_view(self, m: Measurement, scheme: ClassScheme) -> None:
        self._fill_table(m, scheme)
        self.porosity_label.setText(report.percent(m.porosity))
        self.porosity_binomial_label.setText(
            report.interval_text(m.porosity_binomial)
        )
        self.porosity_bootstrap_label.setText(
            report.interval_text(m.porosity_bootstrap)
        )
        self.porosity_box.setToolTip(report.methods(m))
        for key, text in report.size_texts(m).items():
            self.size_labels[key].setText(text)
        self._draw(m, scheme)

    def _fill_table(self, m: Measurement, scheme: ClassScheme) -> None:
        table = self.table
        table.setRowCount(0)
        table.setRowCount(len(m.classes) + 1)
        pore_ids = set(scheme.pore_ids)
        for row, cls in enumerate(m.classes):
            values = (
                str(cls.name),
                report.percent(cls.fraction),
                report.interval_text(cls.binomial),
                report.interval_text(cls.bootstrap),
                report.number(cls.area_mm2),
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
            report.percent(m.porosity),
            report.interval_text(m.porosity_binomial),
            report.interval_text(m.porosity_bootstrap),
            self._porosity_area(m, pore_ids),
        )
        bold = QFont(table.font())
        bold.setBold(True)
        tip = (
            f"visual porosity (the pore classes together); {report.methods(m)}"
        )
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
        return report.number(sum(areas)) if areas else NO_VALUE

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
