"""The "Petrographic colours" widget: class schemes on Labels layers.

A thin shell over :mod:`napari_thinseg.schemes`,
:mod:`napari_thinseg.colorize` and :mod:`napari_thinseg._napari.layers`:
pick a scheme, edit it in a legend, colour the classes like the thin
section and save the coloured picture.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QColorDialog,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...colorize import match_colors, save_colored
from ...errors import ThinsegError
from ...schemes import BUILTIN_SCHEMES, SEED, ClassScheme, rgb_to_hex
from ..layers import apply_scheme, scheme_of
from ..notify import (
    notify_error,
    notify_info,
    notify_warning,
    reports_errors,
)
from ..pixel_scale import follow_file_pixel_sizes
from ._common import LayerCombo, button, layer_array

OWN = "layer's own"
"""Scheme combo entry: the scheme stored on the chosen Labels layer."""

SWATCH, ID, NAME = range(3)


def renamed_ids(old: ClassScheme, new: ClassScheme, labels) -> list[int]:
    """The ids present in ``labels`` that ``old`` and ``new`` name
    differently (or that ``new`` lacks)."""
    labels = np.asarray(labels)
    present = (
        np.flatnonzero(np.bincount(labels.ravel()))
        if labels.dtype == np.uint8
        else np.unique(labels)
    )
    return [
        int(i)
        for i in present
        if i in old.ids and _name_in(new, int(i)) != old[int(i)].name
    ]


def _name_in(scheme: ClassScheme, class_id: int) -> str:
    return scheme[class_id].name if class_id in scheme.ids else "(none)"


def new_class_color(class_id: int) -> str:
    """A distinct, deterministic ``#rrggbb`` colour for a new class."""
    hue = (class_id * 0.618033988749895) % 1.0
    rgb = colorsys.hsv_to_rgb(hue, 0.65, 0.9)
    return rgb_to_hex(v * 255 for v in rgb)


class ColorsWidget(QWidget):
    """Colour a Labels layer with a petrographic class scheme.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Notes
    -----
    The legend shows the working scheme: the one chosen in the scheme box,
    or the result of the latest edit. "Apply colours" puts it on the layer;
    renaming, recolouring, adding a class and matching the thin section
    put the edited scheme on the layer at once.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        follow_file_pixel_sizes(napari_viewer)
        self.scheme: ClassScheme = SEED

        self.labels_combo = LayerCombo(napari_viewer, Labels, self)
        self.scheme_combo = QComboBox()
        self.scheme_combo.addItem(OWN, None)
        for name, scheme in BUILTIN_SCHEMES.items():
            self.scheme_combo.addItem(name, scheme)
        self.load_button = button(
            "Load…", self.load_scheme, "Load a classes.json class scheme"
        )
        self.apply_button = button(
            "Apply colours",
            self.apply,
            "Give the Labels layer this scheme's colours and class names",
        )

        self.legend = QTableWidget(0, 3)
        self.legend.setHorizontalHeaderLabels(["colour", "id", "name"])
        self.legend.verticalHeader().setVisible(False)
        self.legend.setSelectionMode(
            QAbstractItemView.SelectionMode.NoSelection
        )
        header = self.legend.horizontalHeader()
        header.setSectionResizeMode(
            SWATCH, QHeaderView.ResizeMode.ResizeToContents
        )
        header.setSectionResizeMode(
            ID, QHeaderView.ResizeMode.ResizeToContents
        )
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Stretch)
        self.add_button = button(
            "Add class", self.add_class, "Add a class with the next free id"
        )
        self.save_scheme_button = button(
            "Save scheme…", self.save_scheme, "Save the scheme as JSON"
        )

        self.image_combo = LayerCombo(napari_viewer, Image, self)
        self.match_button = button(
            "Match the thin section",
            self.match,
            "Colour each class by the median colour of its pixels",
        )

        self.overwrite = QCheckBox("overwrite")
        self.overwrite.setToolTip("Replace an existing PNG file")
        self.save_png_button = button(
            "Save PNG…",
            self.save_png,
            "Write the labels in the scheme's colours as an RGB PNG",
        )

        self._build_layout()
        self.labels_combo.layer_changed.connect(self._choice_changed)
        self.scheme_combo.currentIndexChanged.connect(self._choice_changed)
        self.legend.itemChanged.connect(self._item_changed)
        self._choice_changed()

    def _build_layout(self) -> None:
        form = QFormLayout()
        form.addRow("labels", self.labels_combo)
        scheme_row = QHBoxLayout()
        scheme_row.addWidget(self.scheme_combo, 1)
        scheme_row.addWidget(self.load_button)
        form.addRow("scheme", scheme_row)

        legend_box = QGroupBox("Legend")
        legend_layout = QVBoxLayout(legend_box)
        legend_layout.addWidget(self.legend)
        edit_row = QHBoxLayout()
        edit_row.addWidget(self.add_button)
        edit_row.addWidget(self.save_scheme_button)
        legend_layout.addLayout(edit_row)

        match_box = QGroupBox("Match the thin section")
        match_form = QFormLayout(match_box)
        match_form.addRow("image", self.image_combo)
        match_form.addRow(self.match_button)

        png_row = QHBoxLayout()
        png_row.addWidget(self.save_png_button, 1)
        png_row.addWidget(self.overwrite)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.apply_button)
        layout.addWidget(legend_box, 1)
        layout.addWidget(match_box)
        layout.addLayout(png_row)

    # -- the working scheme ----------------------------------------------
    def labels_layer(self) -> Labels:
        """The chosen Labels layer; raises if there is none."""
        layer = self.labels_combo.layer()
        if layer is None:
            raise ThinsegError("no Labels layer: add or choose one first")
        return layer

    def chosen_scheme(self) -> ClassScheme:
        """The scheme selected in the scheme box."""
        scheme = self.scheme_combo.currentData()
        if scheme is not None:
            return scheme
        layer = self.labels_combo.layer()
        return SEED if layer is None else scheme_of(layer)

    def set_scheme(self, scheme: ClassScheme) -> None:
        """Make ``scheme`` the working scheme and show it in the legend."""
        self.scheme = scheme
        self._fill_legend()

    def _choice_changed(self, *_) -> None:
        self.set_scheme(self.chosen_scheme())

    def _edited(self, scheme: ClassScheme) -> None:
        """Show an edited scheme and put it on the layer, if one is chosen."""
        layer = self.labels_combo.layer()
        if layer is not None:
            apply_scheme(layer, scheme)
            self.scheme_combo.blockSignals(True)
            self.scheme_combo.setCurrentIndex(0)  # the layer's own now
            self.scheme_combo.blockSignals(False)
        self.set_scheme(scheme)

    # -- legend ----------------------------------------------------------
    def _legend_ids(self) -> list[int]:
        table = self.legend
        return [
            table.item(row, ID).data(Qt.ItemDataRole.UserRole)
            for row in range(table.rowCount())
        ]

    def _fill_legend(self) -> None:
        table = self.legend
        table.blockSignals(True)
        try:
            if self._legend_ids() == self.scheme.ids:
                # same classes: update in place (safe inside itemChanged)
                for row, cls in enumerate(self.scheme):
                    if table.item(row, NAME).text() != cls.name:
                        table.item(row, NAME).setText(cls.name)
                    swatch = table.cellWidget(row, SWATCH)
                    swatch.setStyleSheet(f"background-color: {cls.color};")
                    swatch.setToolTip(f"Recolour {cls.name}")
                return
            table.setRowCount(0)
            table.setRowCount(len(self.scheme))
            for row, cls in enumerate(self.scheme):
                swatch = QPushButton()
                swatch.setFixedSize(36, 20)
                swatch.setToolTip(f"Recolour {cls.name}")
                swatch.setStyleSheet(f"background-color: {cls.color};")
                swatch.clicked.connect(
                    lambda *_, i=cls.id: self.recolor_class(i)
                )
                table.setCellWidget(row, SWATCH, swatch)
                id_item = QTableWidgetItem(str(cls.id))
                id_item.setFlags(Qt.ItemFlag.ItemIsEnabled)
                id_item.setData(Qt.ItemDataRole.UserRole, cls.id)
                table.setItem(row, ID, id_item)
                name_item = QTableWidgetItem(cls.name)
                name_item.setData(Qt.ItemDataRole.UserRole, cls.id)
                name_item.setToolTip("Double-click to rename")
                table.setItem(row, NAME, name_item)
        finally:
            table.blockSignals(False)

    def _row_of(self, class_id: int) -> int:
        return self.scheme.ids.index(class_id)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != NAME:
            return
        class_id = item.data(Qt.ItemDataRole.UserRole)
        self.rename_class(class_id, item.text())
        # show what the scheme holds now (the old name if refused)
        self._fill_legend()

    @reports_errors
    def rename_class(self, class_id: int, name: str) -> None:
        """Rename class ``class_id`` and apply the scheme to the layer."""
        name = name.strip()
        old = self.scheme[class_id]
        if name == old.name:
            return
        if not name:
            raise ThinsegError(f"class {class_id} needs a name")
        if name in self.scheme.names:
            raise ThinsegError(f"another class is already called {name!r}")
        self._edited(self.scheme.with_class(class_id, name, old.color))

    @reports_errors
    def recolor_class(self, class_id: int) -> None:
        """Ask for a new colour of class ``class_id`` (QColorDialog)."""
        old = self.scheme[class_id]
        color = QColorDialog.getColor(
            QColor(old.color), self, f"Colour of {old.name}"
        )
        if not color.isValid():
            return
        self._edited(self.scheme.recolored({class_id: color.name()}))

    @reports_errors
    def add_class(self) -> None:
        """Add a class with the lowest free id, a new name and colour."""
        ids = set(self.scheme.ids)
        free = next((i for i in range(1, 256) if i not in ids), None)
        if free is None:
            raise ThinsegError("the scheme already has 255 classes")
        name, n = f"class {free}", 1
        while name in self.scheme.names:
            n += 1
            name = f"class {free} ({n})"
        self._edited(self.scheme.with_class(free, name, new_class_color(free)))

    @reports_errors
    def save_scheme(self) -> None:
        """Save the working scheme as JSON where the user chooses."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Save class scheme", "classes.json", "JSON (*.json)"
        )
        if not path:
            return
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".json")
        self.scheme.save(path)
        notify_info(f"class scheme saved to {path}")

    @reports_errors
    def load_scheme(self) -> None:
        """Load a ``classes.json`` and make it the chosen scheme."""
        path, _ = QFileDialog.getOpenFileName(
            self, "Load class scheme", "", "JSON (*.json);;All files (*)"
        )
        if not path:
            return
        scheme = ClassScheme.load(path)
        self.scheme_combo.addItem(f"{scheme.name} ({Path(path).name})", scheme)
        self.scheme_combo.setCurrentIndex(self.scheme_combo.count() - 1)

    # -- actions ---------------------------------------------------------
    @reports_errors
    def apply(self) -> None:
        """Give the Labels layer the working scheme (colours + features),
        warning when its ids mean other classes than the layer's scheme
        said (labels made with another scheme)."""
        layer = self.labels_layer()
        old = scheme_of(layer, default=None)
        if old is not None:
            changed = renamed_ids(old, self.scheme, layer_array(layer))
            if changed:
                cid = changed[0]
                more = f" (and {len(changed) - 1} more)" if changed[1:] else ""
                notify_warning(
                    f"{layer.name}: labels made with scheme '{old.name}'; "
                    f"in '{self.scheme.name}' class {cid} "
                    f"'{old[cid].name}' becomes "
                    f"'{_name_in(self.scheme, cid)}'{more}: measurements "
                    "now follow the new names"
                )
        apply_scheme(layer, self.scheme)

    @reports_errors
    def match(self) -> None:
        """Colour each class by its median colour in the chosen image."""
        labels = self.labels_layer()
        image = self.image_combo.layer()
        if image is None:
            raise ThinsegError("no Image layer: open the thin section first")
        scheme = match_colors(
            layer_array(labels), layer_array(image), self.scheme
        )
        self._edited(scheme)

    @reports_errors
    def save_png(self) -> None:
        """Write the labels in the working scheme's colours as a PNG."""
        layer = self.labels_layer()
        labels = layer_array(layer)
        if labels.ndim != 2:
            raise ThinsegError(
                f"{layer.name}: a PNG holds one 2D plane; these labels are "
                f"{labels.ndim}D"
            )
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save coloured labels",
            f"{layer.name}.png",
            "PNG (*.png)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if not path:
            return
        path = Path(path)
        if path.suffix.lower() != ".png":
            path = path.with_name(path.name + ".png")
        overwrite = self.overwrite.isChecked()
        if path.exists() and not overwrite:
            notify_error(
                f"{path}: already exists; tick 'overwrite' to replace it"
            )
            return
        save_colored(path, labels, self.scheme, overwrite=overwrite)
        notify_info(f"coloured labels saved to {path}")
