"""The "Predict" widget: class maps of open images with a VGG-UNet.

A thin shell over :func:`napari_thinseg.predict.predict_image`, a generator
that yields progress per batch of tiles. Model loading and prediction run
in one napari ``thread_worker`` (TensorFlow is first imported there), with
a progress bar and a Stop that takes effect within one batch of tiles.

The model is the shipped default model, the model just trained in the
Train widget (:data:`._common.trained_models`), or a chosen checkpoint.
Loaded checkpoints are cached per prefix and latest weights file (path and
modification time), so predicting again does not rebuild the network, and
a checkpoint that gained an epoch is loaded afresh.

Results go to the Labels layer ``"<image> prediction"`` (uint8, the
image's size, scale and translate, the model scheme's colours and class
names). That layer is updated in place while it still holds what this
widget wrote there (a checksum in ``metadata["thinseg_prediction"]``);
once the user painted on it, a new layer ``"<image> prediction 2"`` (3,
...) is made instead, so corrections are never lost. The optional
``"<image> confidence"`` Image layer (0..1, ``magma``: dark is where the
network is unsure, where to correct next) is always updated in place.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels
from napari.qt.threading import thread_worker
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ...errors import ThinsegError, is_out_of_memory
from ...imaging.files import check_image
from ...model.cache import trained_models
from ...model.checkpoints import (
    config_path,
    default_model_prefix,
    find_latest_checkpoint,
    load_model,
    read_config,
    resolve_prefix,
)
from ...model.keras_archive import read_keras_config
from ...predict import MODES, Prediction, predict_image
from ...progress import Progress
from ..layers import apply_scheme, labels_kwargs
from ..notify import (
    notify_error,
    notify_info,
    notify_warning,
    one_line,
    report_failure,
    reports_errors,
)
from ..workers import Refused
from ._common import (
    CONFIDENCE_KEY,
    LayerCombo,
    button,
    idle_progress_bar,
    import_tensorflow,
    layer_array,
    plane_shape,
    status_label,
    sync_progress,
)

MODEL_DEFAULT, MODEL_TRAINED, MODEL_CHECKPOINT = (
    "default",
    "trained",
    "checkpoint",
)
MODEL_TEXT = {
    MODEL_DEFAULT: "default model",
    MODEL_TRAINED: "model just trained",
    MODEL_CHECKPOINT: "checkpoint…",
}
MODE_TEXT = {
    "tile": "tile (native resolution)",
    "resize": "resize (keras-segmentation)",
}
#: metadata key of the layers this widget writes
STAMP_KEY = "thinseg_prediction"
CONFIDENCE_COLORMAP = "magma"
#: loaded checkpoints kept in memory
CACHE_SIZE = 2
OUT_OF_MEMORY_PREDICT = (
    "out of memory: use resize mode or a model with a smaller input size "
    "(or close other programs using the GPU)"
)
#: progress units per image (tile batches are scaled to these)
UNITS = 1000


def checksum(data) -> int:
    """CRC32 of an array's bytes (tells whether a layer was edited)."""
    return zlib.crc32(np.ascontiguousarray(data).view(np.uint8).ravel())


@dataclass
class ModelSource:
    """Where the model comes from: loaded already, or a checkpoint.

    ``key`` (prefix, weights path, mtime) names a checkpoint's cache entry.
    """

    name: str
    model: object = None
    config: object = None
    prefix: Path | None = None
    key: tuple | None = None


@dataclass(frozen=True)
class Tick:
    """Progress of image ``index`` (of ``n_images``)."""

    index: int
    n_images: int
    progress: Progress


@dataclass(frozen=True)
class Done:
    """Image ``index`` is predicted."""

    index: int
    prediction: Prediction
    config: object


def predict_job(source: ModelSource, images, mode, confidence, cache):
    """Generator for ``thread_worker``: load the model (once per checkpoint,
    kept in ``cache``), then predict every image.

    Yields :class:`Tick` per batch of tiles and :class:`Done` per image;
    a :class:`ThinsegError` or an out-of-memory error is returned as a
    :class:`~.export.Refused`.
    """
    n = len(images)
    try:
        import_tensorflow()
        model, config = source.model, source.config
        if model is None:
            cached = cache.get(source.key)
            if cached is None:
                yield Tick(0, n, Progress(0, 1, f"loading {source.name}"))
                model, config, _ = load_model(source.prefix)
                cache[source.key] = (model, config)
                while len(cache) > CACHE_SIZE:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(source.key)
                model, config = cached
        for index, image in enumerate(images):
            gen = predict_image(
                model, config, image, mode=mode, confidence=confidence
            )
            while True:
                try:
                    progress = next(gen)
                except StopIteration as stop:
                    yield Done(index, stop.value, config)
                    break
                yield Tick(index, n, progress)
    except ThinsegError as exc:
        return Refused(str(exc))
    except Exception as exc:
        if is_out_of_memory(exc):
            return Refused(OUT_OF_MEMORY_PREDICT)
        raise
    return n


class PredictWidget(QWidget):
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
    cache : OrderedDict
        Loaded checkpoints, ``(prefix, weights, mtime) -> (model, config)``.
    """

    predicted = Signal(object)
    failed = Signal(str)

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.worker = None
        self.cache: OrderedDict = OrderedDict()
        self._targets: list[Image] = []
        self._written: list[Labels] = []
        self._source: ModelSource | None = None

        self.image_combo = LayerCombo(napari_viewer, Image)
        self.all_images = QCheckBox("all open images")
        self.model_choice = QComboBox()
        for key, text in MODEL_TEXT.items():
            self.model_choice.addItem(text, key)
        self.checkpoint = QLineEdit()
        self.checkpoint.setPlaceholderText("P_config.json or prefix P")
        self.browse_button = button(
            "Browse…", self.browse, "Choose a checkpoint config"
        )
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.mode = QComboBox()
        for key in MODES:
            self.mode.addItem(MODE_TEXT.get(key, key), key)
        self.mode.setToolTip(
            "tile: overlapping tiles at the image's own resolution; "
            "resize: the whole image squeezed to the model input"
        )
        self.confidence = QCheckBox("confidence layer (dark = unsure)")
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
        form.addRow(self.all_images)
        form.addRow("model", self.model_choice)
        form.addRow("checkpoint", checkpoint_row)
        form.addRow(self.model_label)
        form.addRow("mode", self.mode)
        form.addRow(self.confidence)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(run_row)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        self.all_images.toggled.connect(
            lambda on: self.image_combo.setEnabled(not on)
        )
        self.model_choice.currentIndexChanged.connect(self._on_model_changed)
        self.checkpoint.editingFinished.connect(self._on_model_changed)
        trained_models.connect(self._on_trained)
        self.model_choice.setCurrentIndex(
            self.model_choice.findData(self._initial_choice())
        )
        self._on_model_changed()

    # -- the model -----------------------------------------------------------
    @staticmethod
    def _initial_choice() -> str:
        try:
            default_model_prefix()
        except ThinsegError:
            return MODEL_TRAINED if len(trained_models) else MODEL_CHECKPOINT
        return MODEL_DEFAULT

    def model_kind(self) -> str:
        """``"default"``, ``"trained"`` or ``"checkpoint"``."""
        return self.model_choice.currentData()

    def set_model(self, kind: str, path: str | Path = "") -> None:
        """Choose the model (``path`` for a checkpoint)."""
        if path:
            self.checkpoint.setText(str(path))
        self.model_choice.setCurrentIndex(self.model_choice.findData(kind))
        self._on_model_changed()

    def set_mode(self, mode: str) -> None:
        """Choose ``"tile"`` or ``"resize"``."""
        self.mode.setCurrentIndex(self.mode.findData(mode))

    def _prefix(self) -> Path:
        kind = self.model_kind()
        if kind == MODEL_DEFAULT:
            try:
                return default_model_prefix()
            except ThinsegError:
                raise ThinsegError(
                    "the default model is not installed yet: choose a "
                    "checkpoint, or train a model in the Train widget"
                ) from None
        text = self.checkpoint.text().strip()
        if not text:
            raise ThinsegError("choose a checkpoint (P_config.json) first")
        if text.endswith(".keras"):
            return Path(text).expanduser()
        prefix = resolve_prefix(Path(text).expanduser())
        if not config_path(prefix).is_file():
            raise ThinsegError(f"{config_path(prefix)}: no such file")
        return prefix

    def model_source(self) -> ModelSource:
        """The chosen model, loaded (trained, cached) or to load.

        Raises
        ------
        ThinsegError
            No such model: default not installed, nothing trained yet, a
            checkpoint that does not exist.
        """
        if self.model_kind() == MODEL_TRAINED:
            item = trained_models.latest()
            if item is None:
                raise ThinsegError(
                    "no model trained yet in this session: train one in the "
                    "Train widget, or choose a checkpoint"
                )
            return ModelSource(item.name, item.model, item.config)
        prefix = self._prefix()
        if prefix.suffix == ".keras":
            # its config comes from the archive's JSON, nothing is run
            config = read_keras_config(prefix)
            weights = str(prefix)
        else:
            config = read_config(prefix)
            weights = find_latest_checkpoint(prefix)
        if weights is None:
            raise ThinsegError(f"{prefix}: no weights ({prefix}.<epoch>)")
        index = Path(f"{weights}.index")
        stamp = (index if index.is_file() else Path(weights)).stat()
        key = (str(Path(prefix).resolve()), weights, stamp.st_mtime_ns)
        cached = self.cache.get(key)
        return ModelSource(
            prefix.name,
            None if cached is None else cached[0],
            config if cached is None else cached[1],
            prefix,
            key,
        )

    def _on_model_changed(self, *_) -> None:
        kind = self.model_kind()
        self.checkpoint.setEnabled(kind == MODEL_CHECKPOINT)
        self.browse_button.setEnabled(kind == MODEL_CHECKPOINT)
        if kind == MODEL_CHECKPOINT and not self.checkpoint.text().strip():
            self.model_label.setText("choose a checkpoint config")
            return
        try:
            source = self.model_source()
        except ThinsegError as exc:
            self.model_label.setText(one_line(exc))
            return
        config = source.config
        self.model_label.setText(
            f"{source.name}: {config.n_classes} classes "
            f"('{config.class_scheme.name}'), input "
            f"{config.input_height}×{config.input_width}"
        )

    def _on_trained(self) -> None:
        if self.model_kind() == MODEL_TRAINED:
            self._on_model_changed()

    @reports_errors
    def browse(self) -> None:
        """Choose a checkpoint with a file dialog."""
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Predict with checkpoint",
            self.checkpoint.text(),
            "Checkpoint configs (*_config.json);;Keras models (*.keras);;"
            "All files (*)",
        )
        if path:
            self.set_model(MODEL_CHECKPOINT, path)

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

    @reports_errors
    def predict(self):
        """Predict the chosen image(s) in a worker thread; returns it."""
        if self.worker is not None:
            raise ThinsegError("a prediction is already running")
        images = self.targets()
        source = self.model_source()
        self._targets = images
        self._written = []
        self._source = source
        arrays = [layer_array(layer) for layer in images]
        for layer, array in zip(images, arrays, strict=True):
            check_image(array, layer.name)  # before any work, by name
        make = thread_worker(
            predict_job,
            progress={"desc": f"Predicting with {source.name}"},
            connect={
                "yielded": self._on_yielded,
                "returned": self._on_returned,
                "errored": self._on_errored,
                "aborted": self._on_aborted,
                "finished": self._on_finished,
            },
        )
        self.predict_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress_bar.setRange(0, 0)
        self._set_status(
            "loading the model…" if source.model is None else "predicting…"
        )
        self.worker = make(
            source,
            arrays,
            self.mode.currentData(),
            self.confidence.isChecked(),
            self.cache,
        )
        return self.worker

    def stop(self) -> None:
        """Stop after the current batch of tiles."""
        if self.worker is not None:
            self.worker.quit()
            self.stop_button.setEnabled(False)
            self._set_status("stopping…")

    def _on_yielded(self, item) -> None:
        if isinstance(item, Done):
            self._write(
                self._targets[item.index], item.prediction, item.config
            )
            return
        p = item.progress
        done = item.index * UNITS + (UNITS * p.step) // max(1, p.total)
        total = item.n_images * UNITS
        sync_progress(
            getattr(self.worker, "pbar", None),
            done,
            total,
            f"{self._targets[item.index].name}: {p.message}",
        )
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)
        self._set_status(f"{self._targets[item.index].name}: {p.message}")

    def _on_returned(self, value) -> None:
        if isinstance(value, Refused):
            report_failure(self, value.message, notify_error)
            return
        names = ", ".join(f"'{ly.name}'" for ly in self._written)
        message = f"predicted {names}" if names else "nothing predicted"
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
        self.worker = None
        self.predict_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if self._written else 0)

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    # -- writing layers ------------------------------------------------------
    def _labels_target(self, image: Image, shape) -> tuple[Labels | None, str]:
        """The prediction layer to update, or the name of a new one."""
        base = f"{image.name} prediction"
        names = {ly.name for ly in self.viewer.layers}
        for k in range(1, len(names) + 2):
            name = base if k == 1 else f"{base} {k}"
            if name not in names:
                return None, name
            layer = self.viewer.layers[name]
            if self._is_untouched(layer, shape):
                return layer, name
        return None, f"{base} {len(names) + 2}"  # not reached

    @staticmethod
    def _is_untouched(layer, shape) -> bool:
        stamp = (
            layer.metadata.get(STAMP_KEY)
            if isinstance(layer, Labels)
            else None
        )
        data = layer_array(layer)
        return (
            isinstance(stamp, dict)
            and data.shape == tuple(shape)
            and stamp.get("crc") == checksum(data)
        )

    def _write(self, image: Image, prediction: Prediction, config) -> None:
        if image not in self.viewer.layers:
            notify_warning(f"{image.name}: layer was removed; not predicted")
            return
        labels = np.ascontiguousarray(prediction.labels, dtype=np.uint8)
        scheme = config.class_scheme
        scale = tuple(image.scale)[-2:]
        translate = tuple(image.translate)[-2:]
        source = self._source.name if self._source else ""
        stamp = {
            "crc": checksum(labels),
            "model": source,
            "mode": self.mode.currentData(),
        }
        if prediction.confidence is not None:
            # first, so that the class map lies above it
            self._write_confidence(
                image, prediction.confidence, scale, translate
            )
        layer, name = self._labels_target(image, labels.shape)
        if layer is None:
            kwargs = labels_kwargs(scheme)
            kwargs["metadata"] = {**kwargs["metadata"], STAMP_KEY: stamp}
            layer = self.viewer.add_labels(
                labels, name=name, scale=scale, translate=translate, **kwargs
            )
        else:
            layer.data = labels
            layer.scale = scale
            layer.translate = translate
            apply_scheme(layer, scheme)
            layer.metadata = {**layer.metadata, STAMP_KEY: stamp}
        self._written.append(layer)

    def _write_confidence(self, image, confidence, scale, translate) -> None:
        name = f"{image.name} confidence"
        data = np.asarray(confidence, dtype=np.float32)
        if name in self.viewer.layers and isinstance(
            self.viewer.layers[name], Image
        ):
            layer = self.viewer.layers[name]
            layer.data = data
            layer.scale = scale
            layer.translate = translate
            layer.contrast_limits = (0.0, 1.0)
            return
        self.viewer.add_image(
            data,
            name=name,
            colormap=CONFIDENCE_COLORMAP,
            contrast_limits=(0.0, 1.0),
            opacity=0.7,
            scale=scale,
            translate=translate,
            metadata={CONFIDENCE_KEY: True},
        )
