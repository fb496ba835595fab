"""What the Predict widget runs in its worker: the model to use, the
progress items it yields and the job itself (no Qt here)."""

from __future__ import annotations

from dataclasses import dataclass

from ...inference.predict import Prediction, predict_image
from ...model.cache import ModelFile, loaded_models
from ...progress import ItemProgress, Progress, relay
from ._common import import_tensorflow

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
    from ...errors import ThinsegError
    from ...model.cache import trained_models

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
    from ...model.cache import describe

    file = describe(prefix)
    cached = loaded_models.get(file.key)
    model, config = (None, file.config) if cached is None else cached
    return ModelSource(file.name, model, config, file)


@dataclass(frozen=True)
class Done:
    """Image ``index`` is predicted."""

    index: int
    prediction: Prediction
    config: object


def predict_job(
    source: ModelSource, images, mode, confidence, precision, tta=False
):
    """Generator for the worker: load the model (once per checkpoint, kept
    in :data:`loaded_models`), then predict every image in ``precision``
    (with test-time augmentation when ``tta``).

    Yields :class:`ItemProgress` per tile (or batch of tiles) and :class:`Done`
    per image.
    """
    n = len(images)
    import_tensorflow()
    model, config = source.model, source.config
    if model is None:
        yield ItemProgress(0, n, Progress(0, 1, f"loading {source.name}"))
        model, config = loaded_models.load(source.file)
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
        yield Done(index, result, config)
    return n
