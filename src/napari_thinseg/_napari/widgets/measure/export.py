"""The "Export annotations" widget: layers to a keras-segmentation dataset.

A thin shell over
:func:`napari_thinseg.dataset.folders.export_dataset`, which runs in
a napari ``thread_worker`` (one progress step per pair) so the viewer
stays responsive. The core checks every pair and every target file before
it writes anything.
"""

from __future__ import annotations

from pathlib import Path

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ....dataset.folders import ExportResult, Pair, export_dataset
from ....errors import ThinsegError
from ....schemes import ClassScheme
from ... import workers
from ...notify import notify_error, notify_info, notify_warning, reports_errors
from ...pixel_scale import follow_file_pixel_sizes
from .._common import button, status_label, time_left_status
from ..pair_table import PairTable, dataset_scheme, layer_pairs


class ExportWidget(QWidget):
    """Export image layers and their labels as a training dataset.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Attributes
    ----------
    exported : Signal(object)
        Emitted with the :class:`~napari_thinseg.dataset.folders.ExportResult`.
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
        follow_file_pixel_sizes(napari_viewer)
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
        """``(image layer, ticked, labels layer or None, crossed-polars
        layer or None)`` per table row."""
        return self.table.rows()

    def set_row(
        self, image_name: str, checked=None, labels_name=None, xpl_name=None
    ):
        """Tick/untick an image and/or choose its labels (and crossed
        polars) layer by name."""
        self.table.set_row(image_name, checked, labels_name, xpl_name)

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
        scheme = dataset_scheme([lb for _, lb, _ in chosen])
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
