"""The "Point count" widget: a petrographer's modal analysis in napari.

*Make grid* puts a grid of points (about N, or every so many pixels,
shifted by a seeded random offset) over the chosen labels (or a model's
prediction) as a Points layer ``"<labels> point count"``, each point
coloured by the class under it. The user then confirms or changes points
with one key per class while the Points layer is selected: ``1`` .. ``9``
give the scheme's 1st .. 9th class to the selected points (or to the
current one) and move on to the next unconfirmed point; ``n`` skips to
the next one. Confirmed points get a white border. The table shows each class's
count, percentage and 95 % binomial (Wilson) interval beside its area
fraction in the labels. *Export CSV* writes the points (to reopen and
go on) and the summary; *Open CSV* reopens a count. A thin shell over
:mod:`napari_thinseg.measure.point_count`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from napari.layers import Labels
from qtpy.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QSpinBox,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ....errors import ThinsegError
from ....measure.point_count import (
    PointCount,
    read_points_csv,
    write_points_csv,
    write_summary_csv,
)
from ...layers import scheme_of
from ...notify import notify_info, reports_errors
from ...pixel_scale import follow_file_pixel_sizes
from .._common import (
    LayerCombo,
    button,
    layer_array,
    results_table,
    status_label,
)

COUNT_KEY = "thinseg_point_count"
"""Metadata key of the Points layers this widget makes."""
HEADERS = ("class", "points", "%", "95 % interval", "area %")
POINT_SIZE = 12
CONFIRMED_BORDER = (1.0, 1.0, 1.0, 1.0)
OPEN_BORDER = (0.0, 0.0, 0.0, 1.0)


def summary_path(points_path: Path) -> Path:
    """Where the summary of a points CSV goes: ``<stem>_summary.csv``."""
    return points_path.with_name(f"{points_path.stem}_summary.csv")


class PointCountWidget(QWidget):
    """Point counting over a Labels layer.

    Attributes
    ----------
    count : PointCount or None
        The count in progress.
    points_layer : napari.layers.Points or None
        Its Points layer.
    current : int
        The point the keys act on when none is selected.
    """

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        follow_file_pixel_sizes(napari_viewer)
        self.count: PointCount | None = None
        self.points_layer = None
        self.current = 0
        self._labels = None

        self.labels_combo = LayerCombo(napari_viewer, Labels)
        self.n_points = QSpinBox()
        self.n_points.setRange(10, 100_000)
        self.n_points.setValue(300)
        self.n_points.setToolTip("About this many points over the labels")
        self.spacing = QSpinBox()
        self.spacing.setRange(0, 100_000)
        self.spacing.setSpecialValueText("from the number of points")
        self.spacing.setToolTip("Grid spacing in pixels (0: from the count)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seed of the grid's random offset")
        self.grid_button = button("Make grid", self.make_grid, "New count")
        self.export_button = button(
            "Export CSV…", self.export_dialog, "Save the points and summary"
        )
        self.open_button = button(
            "Open CSV…", self.open_dialog, "Reopen a points CSV"
        )
        self.table = results_table(HEADERS)
        self.status_label = status_label()

        form = QFormLayout()
        form.addRow("labels", self.labels_combo)
        form.addRow("points", self.n_points)
        form.addRow("spacing (px)", self.spacing)
        form.addRow("seed", self.seed)
        files = QHBoxLayout()
        files.addWidget(self.export_button)
        files.addWidget(self.open_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.grid_button)
        layout.addWidget(self.table, 1)
        layout.addLayout(files)
        layout.addWidget(self.status_label)
        self._set_status(
            "make a grid, then press 1-9 on the Points layer to confirm or "
            "change each point (n: next)"
        )

    # -- the count ------------------------------------------------------------
    def _chosen_labels(self):
        layer = self.labels_combo.layer()
        if layer is None:
            raise ThinsegError("no Labels layer: auto-label or predict first")
        data = layer_array(layer)
        if data.ndim != 2:
            raise ThinsegError(f"{layer.name}: point counting needs 2D labels")
        return layer, data

    @reports_errors
    def make_grid(self) -> None:
        """A new grid over the chosen labels, pre-assigned from them."""
        layer, data = self._chosen_labels()
        spacing = self.spacing.value() or None
        count = PointCount.from_labels(
            data,
            scheme_of(layer),
            n_points=None if spacing else self.n_points.value(),
            spacing=spacing,
            seed=self.seed.value(),
        )
        self._show(count, layer)
        self._set_status(
            f"{len(count.points)} points on '{layer.name}', pre-assigned "
            "from it: confirm or change each with 1-9"
        )

    def _show(self, count: PointCount, labels_layer) -> None:
        self.count, self._labels, self.current = count, labels_layer, 0
        name = f"{labels_layer.name} point count"
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        self.points_layer = self.viewer.add_points(
            count.points,
            name=name,
            size=POINT_SIZE,
            scale=tuple(labels_layer.scale)[-2:],
            translate=tuple(labels_layer.translate)[-2:],
            metadata={COUNT_KEY: True},
        )
        for k, cls in enumerate(count.scheme.classes[:9]):
            self.points_layer.bind_key(
                str(k + 1),
                lambda _layer, cid=cls.id: self.assign(cid),
                overwrite=True,
            )
        self.points_layer.bind_key(
            "n", lambda _layer: self.go_to_next(), overwrite=True
        )
        self._recolour()
        self._fill_table()

    def _targets(self) -> list[int]:
        selected = sorted(self.points_layer.selected_data)
        return selected or [self.current]

    @reports_errors
    def assign(self, class_id: int) -> None:
        """The key for ``class_id``: the selected (or current) points get
        it, confirmed; then on to the next unconfirmed point."""
        if self.count is None:
            raise ThinsegError("make a grid first")
        targets = self._targets()
        self.count.set_class(targets, class_id)
        self._recolour()
        self._fill_table()
        self.go_to_next(after=max(targets))

    def go_to_next(self, after: int | None = None) -> int | None:
        """Select the next unconfirmed point and centre the view on it."""
        if self.count is None:
            return None
        nxt = self.count.next_unconfirmed(
            self.current if after is None else after
        )
        if nxt is None:
            self._set_status("every point confirmed: export the count")
            self.points_layer.selected_data = set()
            return None
        self.current = nxt
        self.points_layer.selected_data = {nxt}
        world = self.points_layer.data_to_world(self.count.points[nxt])
        # napari 0.9 moved the camera to viewer.scene
        scene = getattr(self.viewer, "scene", self.viewer)
        scene.camera.center = tuple(world)
        done = int(self.count.confirmed.sum())
        self._set_status(
            f"point {nxt + 1}: {done} of {len(self.count.points)} confirmed"
        )
        return nxt

    def _recolour(self) -> None:
        scheme, count = self.count.scheme, self.count
        colours = {c.id: c.rgb for c in scheme.classes}
        face = np.array(
            [
                (*(v / 255 for v in colours.get(int(c), (0, 0, 0))), 1.0)
                for c in count.class_ids
            ]
        ).reshape(-1, 4)
        border = np.where(
            count.confirmed[:, None], CONFIRMED_BORDER, OPEN_BORDER
        )
        self.points_layer.face_color = face
        self.points_layer.border_color = border
        # the calls travel with the layer (sessions save its features)
        self.points_layer.features = {
            "class_id": count.class_ids.astype(int),
            "confirmed": count.confirmed.astype(int),
        }

    def _fill_table(self) -> None:
        labels = None if self._labels is None else layer_array(self._labels)
        rows = self.count.summary(labels)
        self.table.setRowCount(len(rows))
        for r, c in enumerate(rows):
            cells = (
                c.name,
                str(c.points),
                _pct(c.fraction),
                f"{_pct(c.low)}–{_pct(c.high)}",
                _pct(c.area_fraction),
            )
            for col, text in enumerate(cells):
                self.table.setItem(r, col, QTableWidgetItem(text))

    # -- files ------------------------------------------------------------
    def _sync_positions(self) -> None:
        # points the user moved count where they are now
        data = np.asarray(self.points_layer.data)[:, -2:]
        if data.shape == self.count.points.shape:
            self.count.points = data

    @reports_errors
    def export(self, path, overwrite: bool = False) -> tuple[Path, Path]:
        """Write the points CSV ``path`` and its summary beside it."""
        if self.count is None:
            raise ThinsegError("nothing to export: make a grid first")
        path = Path(path)
        self._sync_positions()
        labels = None if self._labels is None else layer_array(self._labels)
        summary = summary_path(path)
        # refuse before writing either
        from ....imaging.atomic import refuse_existing

        refuse_existing([path, summary], overwrite)
        write_points_csv(self.count, path, overwrite=True)
        write_summary_csv(self.count, summary, labels, overwrite=True)
        message = f"point count saved to {path} and {summary.name}"
        notify_info(message)
        self._set_status(message)
        return path, summary

    @reports_errors
    def open_csv(self, path) -> None:
        """Reopen a points CSV over the chosen labels, to go on."""
        layer, _ = self._chosen_labels()
        count = read_points_csv(path, scheme_of(layer))
        self._show(count, layer)
        self.go_to_next(after=-1)
        self._set_status(
            f"reopened {Path(path).name}: {int(count.confirmed.sum())} of "
            f"{len(count.points)} confirmed"
        )

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the point count", "", "CSV (*.csv)"
        )
        if path:  # the dialog asked before replacing a file
            self.export(path, overwrite=True)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a point count", "", "CSV (*.csv)"
        )
        if path:
            self.open_csv(path)

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)


def _pct(value) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{100 * value:.1f}"
