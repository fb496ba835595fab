"""The "Export annotations" widget: layers to a keras-segmentation dataset.

A thin shell over :func:`napari_thinseg.dataset.export_dataset`, which runs
in a napari ``thread_worker`` (one progress step per pair) so the viewer
stays responsive. The core checks every pair and every target file before
it writes anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from napari.layers import Image, Labels
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ...dataset import ExportResult, Pair, export_dataset
from ...errors import ThinsegError
from ...schemes import SEED, ClassScheme
from .. import workers
from ..layers import scheme_of
from ..notify import notify_error, notify_info, notify_warning, reports_errors
from ._common import (
    LayerWatcher,
    button,
    layer_array,
    plane_shape,
    status_label,
    time_left_status,
)

IMAGE, LABELS = range(2)
NAME_SUFFIXES = ("labels", "annotation", "truth")
"""``"<image> <suffix>"`` names a Labels layer as the image's labels."""


def match_labels(image, labels_layers: Sequence, taken: Sequence = ()):
    """The Labels layer that most likely annotates ``image``.

    First ``"<image> labels"``, ``"<image> annotation"``, ``"<image> truth"``
    (case-insensitive), else the first layer of the same 2D shape that is
    not in ``taken`` (layers that other images claim by name).

    Returns
    -------
    napari.layers.Labels or None
    """
    by_name = {ly.name.lower(): ly for ly in labels_layers}
    for suffix in NAME_SUFFIXES:
        layer = by_name.get(f"{image.name} {suffix}".lower())
        if layer is not None:
            return layer
    shape = plane_shape(image)
    if not shape:
        return None
    taken_ids = {id(ly) for ly in taken}
    for layer in labels_layers:
        if id(layer) not in taken_ids and plane_shape(layer) == shape:
            return layer
    return None


def dataset_scheme(labels_layers: Sequence) -> ClassScheme:
    """The one class scheme of the chosen labels layers.

    Layers without a scheme of their own follow the others; the seed scheme
    is used when none has one.

    Raises
    ------
    ThinsegError
        Two layers carry different classes.
    """
    found = [
        (ly, s)
        for ly in labels_layers
        if (s := scheme_of(ly, default=None)) is not None
    ]
    if not found:
        return SEED
    first_layer, first = found[0]
    for layer, scheme in found[1:]:
        if scheme.classes != first.classes:
            raise ThinsegError(
                f"labels layers {first_layer.name!r} and {layer.name!r} have "
                "different class schemes; give them one scheme first "
                "(Petrographic colours)"
            )
    return first


class PairTable(QTableWidget):
    """Image layers with a tick box and a labels-layer choice each.

    Labels are matched with :func:`match_labels` (by name, else by shape);
    ticks and choices survive layer changes. Shared by the Export and
    Train widgets.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layers to list.
    parent : QWidget, optional
        Qt parent.
    include : callable, optional
        ``include(image_layer)`` is false for Image layers not to list.
    keep_ticks : bool
        Whether a row whose labels choice is matched again keeps its tick
        (else it is ticked when a labels layer is found).
    purpose : str
        What the pairs are for, in the "nothing to …" message.

    Attributes
    ----------
    changed : Signal()
        Emitted when a tick or a labels choice changes.
    """

    changed = Signal()

    def __init__(
        self,
        viewer,
        parent: QWidget = None,
        *,
        include: Callable[[object], bool] | None = None,
        keep_ticks: bool = True,
        purpose: str = "train on",
    ):
        super().__init__(0, 2, parent)
        self.viewer = viewer
        self._include = include
        self._keep_ticks = keep_ticks
        self._purpose = purpose
        self._rows: list[tuple] = []
        self.setHorizontalHeaderLabels(["image", "labels"])
        self.verticalHeader().setVisible(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.horizontalHeader()
        header.setSectionResizeMode(IMAGE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(LABELS, QHeaderView.ResizeMode.Stretch)
        self.itemChanged.connect(lambda *_: self.changed.emit())
        self._watcher = LayerWatcher(viewer, self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Re-list the image layers, keeping the user's ticks and choices."""
        memory = {
            id(image): (
                item.checkState() == Qt.CheckState.Checked,
                combo.currentData(),
            )
            for image, item, combo in self._rows
        }
        images = [
            ly
            for ly in self.viewer.layers
            if isinstance(ly, Image)
            and (self._include is None or self._include(ly))
        ]
        labels = [ly for ly in self.viewer.layers if isinstance(ly, Labels)]
        alive = {id(ly) for ly in labels}
        plan = []
        for image in images:
            checked, chosen = memory.get(id(image), (None, None))
            if chosen is not None and id(chosen) not in alive:
                chosen = None
            plan.append([image, checked, chosen])
        # layers that images claim by name, or that rows already hold, are
        # not offered to other images by shape
        taken = [match_labels(im, labels, labels) for im in images]
        taken += [chosen for _, _, chosen in plan]
        for entry in plan:
            if entry[2] is None:
                entry[2] = match_labels(entry[0], labels, taken)
                taken.append(entry[2])
                if not self._keep_ticks:
                    entry[1] = None
            if entry[1] is None:  # a new row: ticked when it has labels
                entry[1] = entry[2] is not None
        self.blockSignals(True)
        try:
            self.setRowCount(0)
            self.setRowCount(len(images))
            self._rows = []
            for row, (image, checked, chosen) in enumerate(plan):
                item = QTableWidgetItem(image.name)
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                )
                item.setCheckState(_check_state(checked))
                combo = QComboBox()
                combo.addItem("(none)", None)
                for layer in labels:
                    combo.addItem(layer.name, layer)
                if chosen is not None:
                    combo.setCurrentIndex(1 + labels.index(chosen))
                combo.currentIndexChanged.connect(
                    lambda *_: self.changed.emit()
                )
                self.setItem(row, IMAGE, item)
                self.setCellWidget(row, LABELS, combo)
                self._rows.append((image, item, combo))
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def rows(self) -> list[tuple]:
        """``(image layer, ticked, labels layer or None)`` per row."""
        return [
            (
                image,
                item.checkState() == Qt.CheckState.Checked,
                combo.currentData(),
            )
            for image, item, combo in self._rows
        ]

    def set_row(self, image_name: str, checked=None, labels_name=None):
        """Tick/untick an image and/or choose its labels layer by name."""
        for image, item, combo in self._rows:
            if image.name != image_name:
                continue
            if checked is not None:
                item.setCheckState(_check_state(checked))
            if labels_name is not None:
                index = combo.findText(labels_name)
                if index < 0:
                    raise ThinsegError(f"{labels_name}: no such labels layer")
                combo.setCurrentIndex(index)
            return
        raise ThinsegError(f"{image_name}: no such image layer")

    def chosen(self) -> list[tuple]:
        """The ticked ``(image, labels)`` layers.

        Raises
        ------
        ThinsegError
            Nothing ticked, or a ticked image without labels.
        """
        chosen = [(im, lb) for im, ok, lb in self.rows() if ok]
        if not chosen:
            raise ThinsegError(
                f"nothing to {self._purpose}: tick an image that has a "
                "labels layer"
            )
        for image, labels in chosen:
            if labels is None:
                raise ThinsegError(f"{image.name}: choose its labels layer")
        return chosen


def layer_pairs(chosen: Sequence[tuple]) -> list[Pair]:
    """:class:`Pair` copies of ``(image layer, labels layer)`` tuples."""
    return [
        Pair(
            image.name,
            layer_array(image).copy(),
            layer_array(labels).copy(),
            f"layer {labels.name!r}",
        )
        for image, labels in chosen
    ]


def _check_state(checked: bool):
    return Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked


class ExportWidget(QWidget):
    """Export image layers and their labels as a training dataset.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Attributes
    ----------
    exported : Signal(object)
        Emitted with the :class:`~napari_thinseg.dataset.ExportResult`.
    failed : Signal(str)
        Emitted with the one-line reason when an export is refused.
    worker : GeneratorWorker or None
        The running export, if any.
    """

    exported = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.table = PairTable(
            napari_viewer, keep_ticks=False, purpose="export"
        )

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("output folder")
        self.browse_button = button(
            "Browse…", self.browse, "Choose the output folder"
        )
        self.test_fraction = QDoubleSpinBox()
        self.test_fraction.setRange(0.0, 0.9)
        self.test_fraction.setSingleStep(0.05)
        self.test_fraction.setDecimals(2)
        self.test_fraction.setToolTip(
            "Share of the pairs held out for testing (0 = none)"
        )
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seed of the train/test draw")
        self.overwrite = QCheckBox("overwrite existing files")
        self.export_button = button(
            "Export", self.export, "Write the keras-segmentation dataset"
        )
        self.status_label = status_label()

        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("folder", folder_row)
        form.addRow("test fraction", self.test_fraction)
        form.addRow("seed", self.seed)
        form.addRow(self.overwrite)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(form)
        layout.addWidget(self.export_button)
        layout.addWidget(self.status_label)

    # -- the table -------------------------------------------------------
    def refresh(self) -> None:
        """Re-list the image layers, keeping the user's ticks and choices."""
        self.table.refresh()

    def rows(self) -> list[tuple]:
        """``(image layer, ticked, labels layer or None)`` per table row."""
        return self.table.rows()

    def set_row(self, image_name: str, checked=None, labels_name=None):
        """Tick/untick an image and/or choose its labels layer by name."""
        self.table.set_row(image_name, checked, labels_name)

    # -- actions ---------------------------------------------------------
    @reports_errors
    def browse(self) -> None:
        """Choose the output folder with a dialog."""
        path = QFileDialog.getExistingDirectory(
            self, "Export annotations to", self.folder.text()
        )
        if path:
            self.folder.setText(path)

    def pairs(self) -> tuple[list[Pair], ClassScheme]:
        """The ticked (image, labels) pairs and their class scheme.

        Raises
        ------
        ThinsegError
            Nothing ticked, an image without labels, mixed schemes.
        """
        chosen = self.table.chosen()
        scheme = dataset_scheme([lb for _, lb in chosen])
        pairs = layer_pairs(chosen)
        return pairs, scheme

    @reports_errors
    def export(self) -> None:
        """Start the export in a worker thread."""
        if self.worker is not None:
            raise ThinsegError("an export is already running")
        root = self.folder.text().strip()
        if not root:
            raise ThinsegError("choose an output folder first")
        pairs, scheme = self.pairs()
        self.export_button.setEnabled(False)
        self.worker = workers.start(
            export_dataset,
            pairs,
            Path(root).expanduser(),
            scheme,
            float(self.test_fraction.value()),
            int(self.seed.value()),
            self.overwrite.isChecked(),
            desc="Exporting annotations",
            total=len(pairs),
            yielded=time_left_status(self.status_label.setText, "pair"),
            returned=self._returned,
            refused=self._refused,
            errored=self._errored,
            aborted=self._aborted,
            finished=self._finished,
        )

    def _refused(self, message: str) -> None:
        notify_error(message)
        self.status_label.setText(message)
        self.failed.emit(message)

    def _returned(self, result: ExportResult) -> None:
        message = (
            f"exported {len(result.train)} train and {len(result.test)} "
            f"test pairs to {result.root}"
        )
        notify_info(message)
        self.status_label.setText(message)
        self.exported.emit(result)

    def _errored(self, exc) -> None:
        # napari's worker already shows unexpected errors with a traceback
        message = f"{type(exc).__name__}: {exc}"
        self.status_label.setText(message)
        self.failed.emit(message)

    def _aborted(self) -> None:
        message = "export cancelled: the folder may hold part of the pairs"
        notify_warning(message)
        self.status_label.setText(message)
        self.failed.emit(message)

    def _finished(self) -> None:
        self.worker = None
        self.export_button.setEnabled(True)
