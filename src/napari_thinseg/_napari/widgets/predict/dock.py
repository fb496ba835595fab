"""The "Predict" widget: class maps of open images with a VGG-UNet.

A thin shell over
:func:`napari_thinseg.inference.predict.predict_image`, a generator that
yields progress per tile. Model loading and prediction run in one
napari ``thread_worker`` (:mod:`.job`; TensorFlow is first imported
there), with a progress bar and a Stop that takes effect within one tile.
For a plane + crossed polars model the image is stacked with its
crossed-polarised twin layer (found by name, or chosen).

The model is a shipped one, the model just trained in the Train widget
(:data:`napari_thinseg.model.cache.trained_models`), or a checkpoint,
kept loaded by :data:`napari_thinseg.model.cache.loaded_models` per prefix
and latest weights file, so predicting again does not rebuild the
network, and a checkpoint that gained an epoch is loaded afresh.

Results go to the Labels layer ``"<image> prediction"`` (uint8, the
image's size, scale and translate, the model scheme's colours and class
names). That layer is updated in place while it still holds what this
widget wrote there (a checksum in ``metadata["thinseg_prediction"]``);
once the user painted on it, a new layer ``"<image> prediction 2"`` (3,
...) is made instead, so corrections are never lost. The optional
``"<image> confidence"`` Image layer (0..1, ``gray``: dark is where the
network is unsure) is always updated in place. With "where to correct
next" on, the least certain places go to the Points layer ``"<image>
where to correct"``, to step through (:mod:`..correct.next_places`).
"""

from __future__ import annotations

from napari.layers import Image, Labels
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QVBoxLayout,
    QWidget,
)

from ....errors import ThinsegError
from ....imaging.files import check_image
from ....inference.predict import MODES, Prediction
from ....progress import ItemDone, TimeLeft, item_steps, time_left_text
from ... import workers
from ...layers import PREDICTION_KEY
from ...notify import (
    notify_error,
    notify_info,
    notify_warning,
    one_line,
    report_failure,
    reports_errors,
    scaling_note,
)
from ...pixel_scale import follow_file_pixel_sizes
from .._common import (
    CONFIDENCE_KEY,
    LayerCombo,
    LayerWatcher,
    StopsWithDock,
    button,
    end_run,
    idle_progress_bar,
    layer_array,
    plane_shape,
    status_label,
    sync_progress,
)
from ..correct.next_places import PlaceStepper
from ..pair_table import (
    chosen_twin,
    crossed_polars_combo,
    crossed_polars_pairs,
    layer_input,
    tell_file_pairs,
)
from .job import (
    PRECISION_TEXT,
    ItemProgress,
    ModelSource,
    predict_job,
)
from .model_choice import (
    MODEL_CHECKPOINT,
    MODEL_DEFAULT,
    MODEL_SANDSTONE,
    MODEL_TRAINED,
    ModelChoice,
)
from .model_output import write_confidence, write_labels

__all__ = [
    "MODEL_CHECKPOINT",
    "MODEL_DEFAULT",
    "MODEL_SANDSTONE",
    "MODEL_TRAINED",
    "ModelSource",
    "PredictWidget",
    "ItemProgress",
    "predict_job",
]

MODE_TEXT = {
    "tile": "tile (native resolution)",
    "resize": "resize (keras-segmentation)",
}
STAMP_KEY = PREDICTION_KEY  # of the layers this widget writes
OUT_OF_MEMORY_PREDICT = (
    "out of memory: use resize mode or a model with a smaller input size "
    "(or close other programs using the GPU)"
)


class PredictWidget(ModelChoice, StopsWithDock, QWidget):
    """Predict the classes of image layers with a VGG-UNet.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer (injected by napari).

    Attributes
    ----------
    predicted : Signal(object)
        Emitted with the list of prediction Labels layers of a finished
        run.
    failed : Signal(str)
        Emitted with a one-line reason when a run is refused, fails or is
        stopped.
    worker : GeneratorWorker or None
        The running prediction, if any.
    """

    closed_message = "Predict closed: the prediction stops"

    predicted = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        follow_file_pixel_sizes(napari_viewer)
        self.worker = None
        self._targets: list[Image] = []
        self._written: list[Labels] = []
        self._source: ModelSource | None = None
        self._wants = (False, False)  # (confidence layer, places) of a run

        self.image_combo = LayerCombo(napari_viewer, Image)
        self.xpl_combo = crossed_polars_combo(napari_viewer, self.image_combo)
        self.pairs_label = status_label()
        self.pairs_label.setToolTip(
            "Plane + crossed polars pairs found by name ('<image> XPL') or "
            "by the files' folders and names (ppl/7a.jpg + xpl/7a.jpg)"
        )
        self.all_images = QCheckBox("all open images")
        self._build_model_choice()
        self.mode = QComboBox()
        for key in MODES:
            self.mode.addItem(MODE_TEXT.get(key, key), key)
        self.mode.setToolTip(
            "tile: the image at its own resolution, in large tiles; "
            "resize: the whole image squeezed to the model input"
        )
        self.precision = QComboBox()
        for key, text in PRECISION_TEXT.items():
            self.precision.addItem(text, key)
        self.precision.setToolTip(
            "What the network computes in (tile mode): bfloat16 is about "
            "twice as fast on CPUs that have it and agrees with float32 "
            "on over 99.5 % of the pixels"
        )
        self.confidence = QCheckBox("confidence layer (dark = unsure)")
        self.places = QCheckBox("where to correct next (least certain)")
        self.places.setToolTip(
            "After the prediction, mark the places where the model is least "
            "sure (or disagrees with the quick preview) as numbered rings, "
            "worst first, to step through"
        )
        self.stepper = PlaceStepper(napari_viewer)
        self.tta = QCheckBox("test-time augmentation (8x slower)")
        self.tta.setToolTip(
            "Average the predictions of the 8 flips and quarter turns of "
            "every tile (tile mode): steadier class maps"
        )
        self.predict_button = button(
            "Predict", self.predict, "Predict the chosen image(s)"
        )
        self.stop_button = button(
            "Stop", self.stop, "Stop after the current batch of tiles"
        )
        self.stop_button.setEnabled(False)
        self.progress_bar = idle_progress_bar()
        self.status_label = status_label()

        checkpoint_row = QHBoxLayout()
        checkpoint_row.addWidget(self.checkpoint, 1)
        checkpoint_row.addWidget(self.browse_button)
        run_row = QHBoxLayout()
        run_row.addWidget(self.predict_button)
        run_row.addWidget(self.stop_button)
        form = QFormLayout()
        form.addRow("image", self.image_combo)
        form.addRow("crossed polars", self.xpl_combo)
        form.addRow(self.pairs_label)
        form.addRow(self.all_images)
        form.addRow("model", self.model_choice)
        form.addRow("checkpoint", checkpoint_row)
        form.addRow(self.model_label)
        form.addRow("mode", self.mode)
        form.addRow("precision", self.precision)
        form.addRow(self.confidence)
        form.addRow(self.places)
        form.addRow(self.tta)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.stepper)
        layout.addStretch(1)

        self.all_images.toggled.connect(
            lambda on: (
                self.image_combo.setEnabled(not on)
                or self.xpl_combo.setEnabled(not on)
            )
        )
        self.image_combo.layer_changed.connect(
            lambda *_: self._match_twin(another_image=True)
        )
        self._twin_watcher = LayerWatcher(napari_viewer, self._match_twin)
        self._match_twin()
        tell_file_pairs(napari_viewer)
        # test-time augmentation is for tile mode only
        self.mode.currentIndexChanged.connect(
            lambda *_: self.tta.setEnabled(self.mode.currentData() == "tile")
        )
        self._follow_model_choice()

    # -- settings ----------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        """Choose ``"tile"`` or ``"resize"``."""
        self.mode.setCurrentIndex(self.mode.findData(mode))

    def set_precision(self, precision: str) -> None:
        """Choose ``"auto"``, ``"float32"`` or ``"bfloat16"``."""
        self.precision.setCurrentIndex(self.precision.findData(precision))

    # -- running -------------------------------------------------------------
    def targets(self) -> list[Image]:
        """The image layers to predict.

        Raises
        ------
        ThinsegError
            No image, or one that is not a 2D (RGB or gray) image.
        """
        if self.all_images.isChecked():
            images = [
                ly
                for ly in self.viewer.layers
                if isinstance(ly, Image) and CONFIDENCE_KEY not in ly.metadata
            ]
            skipped = [ly.name for ly in images if not plane_shape(ly)]
            if skipped:
                notify_warning(f"not 2D images, skipped: {', '.join(skipped)}")
            images = [ly for ly in images if plane_shape(ly)]
            twins = {id(x) for _, x, _ in crossed_polars_pairs(images)}
            images = [ly for ly in images if id(ly) not in twins]
        else:
            layer = self.image_combo.layer()
            images = [] if layer is None else [layer]
        if not images:
            raise ThinsegError("no image layer to predict: open an image")
        for layer in images:
            if not plane_shape(layer):
                raise ThinsegError(
                    f"{layer.name}: prediction needs a 2D image (gray or "
                    "RGB), not a stack"
                )
        return images

    def _match_twin(self, another_image: bool = False) -> None:
        """Choose the image's crossed-polarised twin (by name or file):
        for another image always, when layers change if one is found;
        and say which pairs there are."""
        if another_image:  # the twins on offer are another image's
            self.xpl_combo.refresh()
        image = self.image_combo.layer()
        pairs = crossed_polars_pairs(self.xpl_combo.every_image())
        twin = next((x for p, x, _ in pairs if p is image), None)
        if not any(ly is twin for ly in self.xpl_combo.layers()):
            twin = None  # another size: not on offer
        if twin is not None or another_image:
            self.xpl_combo.set_layer(twin)
        texts = [text for _, _, text in pairs]
        self.pairs_label.setText(
            "crossed polars found: " + "; ".join(texts) if texts else ""
        )
        self.pairs_label.setVisible(bool(texts))

    @reports_errors
    def predict(self):
        """Predict the chosen image(s) in a worker thread; returns it."""
        if self.worker is not None:
            raise ThinsegError("a prediction is already running")
        images = self.targets()
        source = self.model_source()
        self._targets = images
        self._written, self._returned = [], False
        self._source = source
        self._wants = (self.confidence.isChecked(), self.places.isChecked())
        arrays = []
        for layer in images:
            check_image(layer_array(layer), layer.name)  # before any work
            by_name = self.all_images.isChecked()
            twin = chosen_twin(layer, self.xpl_combo, by_name)
            arrays.append(layer_input(layer, twin))
            scaling_note(layer.name, arrays[-1])
        self.predict_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)
        self._time_left = TimeLeft()
        self._set_status(
            "loading the model…" if source.model is None else "predicting…"
        )
        self.worker = workers.start(
            predict_job,
            source,
            arrays,
            self.mode.currentData(),
            any(self._wants),  # the places are found from the confidence
            self.precision.currentData(),
            self.tta.isChecked(),
            desc=f"Predicting with {source.name}",
            out_of_memory=OUT_OF_MEMORY_PREDICT,
            yielded=self._on_yielded,
            returned=self._on_returned,
            refused=self._on_refused,
            errored=self._on_errored,
            aborted=self._on_aborted,
            finished=self._on_finished,
        )
        return self.worker

    def _on_yielded(self, item) -> None:
        if isinstance(item, ItemDone):
            made = item.result
            self._write(
                self._targets[item.index], made.prediction, made.config
            )
            return
        if self._returned:  # a late progress event: keep the summary
            return
        p = item.progress
        done, total = item_steps(item)
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)
        left = time_left_text(self._time_left.update(done, total))
        message = f"{self._targets[item.index].name}: {p.message}"
        self._set_status(message + (f" ({left})" if left else ""))
        # last: napari's progress bar may process the events queued behind
        # this one (the result's summary among them)
        sync_progress(getattr(self.worker, "pbar", None), done, total, message)

    def _on_refused(self, message: str) -> None:
        report_failure(self, message, notify_error)

    def _on_returned(self, value) -> None:
        self._returned = True
        names = ", ".join(f"'{ly.name}'" for ly in self._written)
        message = f"predicted {names}" if names else "nothing predicted"
        if names and self._source is not None:
            # which model it came from (also in each layer's metadata)
            message += f" with {self._source.name}"
        notify_info(message)
        self._set_status(message)
        self.predicted.emit(list(self._written))

    def _on_errored(self, exc) -> None:
        # napari's worker already shows unexpected errors with a traceback
        report_failure(self, one_line(exc))

    def _on_aborted(self) -> None:
        message = "prediction stopped"
        if self._written:
            message += f" after {len(self._written)} image(s)"
        report_failure(self, message, notify_warning)

    def _on_finished(self) -> None:
        end_run(self, self.predict_button, bool(self._written))

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    # -- writing layers ------------------------------------------------------
    def _write(self, image: Image, prediction: Prediction, config) -> None:
        if image not in self.viewer.layers:
            notify_warning(f"{image.name}: layer was removed; not predicted")
            return
        wants_confidence, wants_places = self._wants
        if wants_confidence and prediction.confidence is not None:
            write_confidence(self.viewer, image, prediction.confidence)
        layer = write_labels(
            self.viewer,
            image,
            prediction.labels,
            config.class_scheme,
            "prediction",
            STAMP_KEY,
            model=self._source.name if self._source else "",
            mode=self.mode.currentData(),
        )
        self._written.append(layer)
        if wants_places and prediction.confidence is not None:
            try:
                self.stepper.show_places(
                    image, layer, prediction, config.class_scheme
                )
            except ThinsegError as exc:  # the class map is written anyway
                notify_warning(f"{image.name}: no places to correct: {exc}")
