"""What the Predict widget runs in its worker: the model to use, the
progress items it yields and the job itself (no Qt here)."""

from __future__ import annotations

from dataclasses import dataclass

from ....inference.predict import Prediction, predict_image
from ....model.cache import ModelFile, loaded_models
from ....progress import ItemDone, ItemProgress, Progress, relay
from .._common import import_tensorflow

PRECISION_TEXT = {
    "auto": "auto (bfloat16 where the CPU has it)",
    "float32": "float32",
    "bfloat16": "bfloat16",
}
"""The precision choices of the Predict and Train widgets."""


@dataclass
class ModelSource:
    """Where the model comes from: in memory already, or a checkpoint
    ``file`` to load (or take from :data:`loaded_models`)."""

    name: str
    model: object = None
    config: object = None
    file: ModelFile | None = None


def trained_source(elsewhere: str = "choose a checkpoint") -> ModelSource:
    """The model trained last in this session (refused when none is)."""
    from ....errors import ThinsegError
    from ....model.cache import trained_models

    item = trained_models.latest()
    if item is None:
        raise ThinsegError(
            "no model trained yet in this session: train one in the Train "
            f"widget, or {elsewhere}"
        )
    return ModelSource(item.name, item.model, item.config)


def file_source(prefix) -> ModelSource:
    """A checkpoint's model: loaded already (:data:`loaded_models`) or to
    load."""
    from ....model.cache import describe

    file = describe(prefix)
    cached = loaded_models.get(file.key)
    model, config = (None, file.config) if cached is None else cached
    return ModelSource(file.name, model, config, file)


@dataclass(frozen=True)
class Predicted:
    """What an image's :class:`~napari_thinseg.progress.ItemDone` holds:
    its prediction and the config of the model that made it."""

    prediction: Prediction
    config: object


def load_source(source: ModelSource):
    """``(model, config)`` of ``source``: in memory already, or its
    checkpoint loaded once (kept in :data:`loaded_models`); TensorFlow is
    imported first. Yields a :class:`Progress` while loading."""
    import_tensorflow()
    if source.model is not None:
        return source.model, source.config
    yield Progress(0, 1, f"loading {source.name}…")
    return loaded_models.load(source.file)


def load_first(source: ModelSource, n: int):
    """:func:`load_source` in a job over ``n`` items (its progress as
    item 0's)."""
    return relay(load_source(source), lambda p: ItemProgress(0, n, p))


def predict_job(
    source: ModelSource, images, mode, confidence, precision, tta=False
):
    """Generator for the worker: load the model (once per checkpoint, kept
    in :data:`loaded_models`), then predict every image in ``precision``
    (with test-time augmentation when ``tta``).

    Yields :class:`ItemProgress` per tile (or batch of tiles) and an
    :class:`~napari_thinseg.progress.ItemDone` of :class:`Predicted` per
    image.
    """
    n = len(images)
    model, config = yield from load_first(source, n)
    for index, image in enumerate(images):
        gen = predict_image(
            model,
            config,
            image,
            mode=mode,
            confidence=confidence,
            precision=precision,
            tta=tta,
        )
        result = yield from relay(
            gen, lambda p, k=index: ItemProgress(k, n, p)
        )
        yield ItemDone(index, n, Predicted(result, config))
    return n
