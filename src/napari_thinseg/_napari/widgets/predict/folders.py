"""The "Folders" widget: auto-label or predict a whole folder of photos.

Every image of the chosen folder is auto-labelled (with the method chosen
here) or predicted (with the shipped default or sandstone model, or the
model just trained), its labels written to the output folder as
``<stem>.png`` (with the photo's pixel size), measured, and the
measurements written as ``stats.csv``, as ``thinseg autolabel`` /
``predict`` and ``stats`` do. Progress, time left and Stop as in the other
widgets; the table fills in file by file (porosity, grains). Nothing is
replaced unless *overwrite* is ticked; *resume* keeps the label files a
stopped run wrote whole (a torn one is refused) and labels the rest, as
``thinseg predict --resume``. The job is :mod:`.folders_job`.
"""

from __future__ import annotations

import math

from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ....autolabel.rule import AutoLabelParams
from ....errors import ThinsegError
from ....model.checkpoints import model_prefix
from ....progress import ItemDone, TimeLeft, item_steps, time_left_text
from ... import workers
from ...notify import (
    notify_error,
    notify_info,
    notify_warning,
    one_line,
    report_failure,
    reports_errors,
)
from ...pixel_scale import follow_file_pixel_sizes
from .._common import (
    StopsWithDock,
    button,
    end_run,
    idle_progress_bar,
    results_table,
    status_label,
    sync_progress,
)
from .folders_job import LabelledFile, folders_job, plan_outputs
from .job import ModelSource, file_source, trained_source

ACTIONS = {
    "gray": "auto-label: gray levels (the seed rule)",
    "epoxy": "auto-label: blue epoxy + gray",
    "multiotsu": "auto-label: multi-Otsu",
    "default": "predict: default model",
    "sandstone": "predict: sandstone model (minerals)",
    "trained": "predict: model just trained",
}
HEADERS = ("image", "porosity %", "grains", "labels")


class FoldersWidget(StopsWithDock, QWidget):
    """Auto-label or predict every image of a folder.

    Attributes
    ----------
    done : Signal(object)
        Emitted with the stats CSV's path when a run finishes.
    failed : Signal(str)
        Emitted with a one-line reason when a run is refused, fails or is
        stopped.
    worker : GeneratorWorker or None
    results : list of LabelledFile
        The current (or last) run's files.
    """

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        follow_file_pixel_sizes(napari_viewer)
        self.worker = None
        self.results: list[LabelledFile] = []

        self.folder = QLineEdit()
        self.folder.setPlaceholderText("folder of photos")
        self.out_folder = QLineEdit()
        self.out_folder.setPlaceholderText("folder for labels + stats.csv")
        self.action = QComboBox()
        for key, text in ACTIONS.items():
            self.action.addItem(text, key)
        self.overwrite = QCheckBox("overwrite existing files")
        self.resume = QCheckBox("resume: keep the label files written")
        self.resume.setToolTip(
            "Keep the label files a stopped run wrote whole and label the "
            "rest (a torn file is refused); stats.csv covers them all"
        )
        # one or the other, as thinseg predict's --resume / --overwrite
        self.overwrite.toggled.connect(
            lambda on: on and self.resume.setChecked(False)
        )
        self.resume.toggled.connect(
            lambda on: on and self.overwrite.setChecked(False)
        )
        self.run_button = button("Run", self.run, "Label the whole folder")
        self.stop_button = button("Stop", self.stop, "Stop after this image")
        self.stop_button.setEnabled(False)
        self.progress_bar = idle_progress_bar()
        self.status_label = status_label()
        self.table = results_table(HEADERS)

        form = QFormLayout()
        for label, edit, title in (
            ("photos", self.folder, "Folder of photos"),
            ("output", self.out_folder, "Folder for the labels"),
        ):
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(
                button("Browse…", lambda e=edit, t=title: self._browse(e, t))
            )
            form.addRow(label, row)
        form.addRow("what", self.action)
        form.addRow(self.overwrite)
        form.addRow(self.resume)
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.table, 1)

    def _browse(self, edit: QLineEdit, title: str) -> None:
        path = QFileDialog.getExistingDirectory(self, title, edit.text())
        if path:
            edit.setText(path)

    def set_action(self, key: str) -> None:
        """Choose what to do (a key of :data:`ACTIONS`)."""
        self.action.setCurrentIndex(self.action.findData(key))

    def _source(self, key: str) -> ModelSource:
        if key == "trained":
            return trained_source("predict with a shipped model")
        try:
            return file_source(model_prefix(key))
        except ThinsegError:
            raise ThinsegError(f"the {key} model is not installed") from None

    # -- running -------------------------------------------------------------
    @reports_errors
    def run(self):
        """Start the folder's run in a worker thread; returns it."""
        if self.worker is not None:
            raise ThinsegError("a folder is already being labelled")
        folder, out = (
            self.folder.text().strip(),
            self.out_folder.text().strip(),
        )
        if not folder or not out:
            raise ThinsegError(
                "choose the folder of photos and an output folder"
            )
        overwrite, resume = self.overwrite.isChecked(), self.resume.isChecked()
        files, _, kept = plan_outputs(folder, out, overwrite, resume)
        key = self.action.currentData()
        kwargs = {"overwrite": overwrite, "resume": resume}
        if key in ("gray", "epoxy", "multiotsu"):
            kwargs["params"] = AutoLabelParams(method=key)
        else:
            kwargs["source"] = self._source(key)
        self.results = []
        self.table.setRowCount(0)
        self._time_left = TimeLeft()
        kept_words = f" ({len(kept)} kept)" if kept else ""
        self._set_status(f"{len(files)} image(s) to label{kept_words}…")
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)
        self.worker = workers.start(
            folders_job,
            folder,
            out,
            desc=f"Labelling {len(files)} image(s)",
            yielded=self._on_yielded,
            returned=self._on_returned,
            refused=lambda m: report_failure(self, m, notify_error),
            errored=lambda e: report_failure(self, one_line(e)),
            aborted=self._on_aborted,
            finished=self._on_finished,
            **kwargs,
        )
        return self.worker

    def _on_yielded(self, item) -> None:
        step, total = item_steps(item)
        if isinstance(item, ItemDone):
            self.results.append(item.result)
            self._add_row(item.result)
            message = f"{item.result.source.name} written"
        else:
            message = f"{item.index + 1} of {item.n}: {item.progress.message}"
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(step)
        left = time_left_text(self._time_left.update(step, total))
        self._set_status(message + (f" ({left})" if left else ""))
        sync_progress(getattr(self.worker, "pbar", None), step, total, message)

    def _add_row(self, item: LabelledFile) -> None:
        m = item.measurement
        porosity = (
            "–" if not math.isfinite(m.porosity) else f"{100 * m.porosity:.2f}"
        )
        grains = "–" if m.grains is None else f"{m.grains.count:,}"
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, text in enumerate(
            (item.source.name, porosity, grains, item.output.name)
        ):
            cell = QTableWidgetItem(text)
            if item.note:
                cell.setToolTip(item.note)
            self.table.setItem(row, col, cell)

    def _on_returned(self, stats) -> None:
        message = (
            f"labelled {len(self.results)} image(s) into "
            f"{self.out_folder.text().strip()}; measurements in {stats.name}"
        )
        notify_info(message)
        self._set_status(message)
        self.done.emit(stats)

    def _on_aborted(self) -> None:
        message = f"stopped after {len(self.results)} image(s) (kept)"
        report_failure(self, message, notify_warning)

    def _on_finished(self) -> None:
        end_run(self, self.run_button, bool(self.results))

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)
