"""A prediction from the user's strokes within about a CPU minute, while
the fine-tune that follows takes its minutes.

On 2 % strokes, a random forest on the shipped encoder's features
(:mod:`.encoder_classifier`) reached a held-out mean IoU of 0.37 in about
43 CPU-seconds a field, where 60-120 CPU-seconds of fine-tuning reached
0.11-0.14 (``bench/bench_feedback.py``, README). So the Train widget shows
that forest's prediction first, then fine-tunes: :func:`quick_preview`
fits the forest on the training pairs and predicts the images the user
is judging, and its :class:`QuickPreview` says which model it came from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from .encoder_classifier import (
    ClassifierPrediction,
    EncoderClassifier,
    FeatureNetwork,
    fit_encoder_classifier,
    model_source,
    predict_encoder_classifier,
)
from .errors import ThinsegError
from .imaging.convert import describe_views, n_views
from .model.config import ModelConfig
from .progress import Progress

PREVIEW_IMAGES = 4
"""Images predicted at most (the training pairs' first, then held-out
ones): each costs about half a CPU minute for a 1200 x 1600 field."""


@dataclass
class QuickPreview:
    """The forest's predictions of ``names`` (the pairs' names, in
    order), what predicted them and what it cost."""

    names: list[str]
    predictions: list[ClassifierPrediction] = field(repr=False)
    classifier: EncoderClassifier = field(repr=False)
    cpu_seconds: float = 0.0

    @property
    def source(self) -> str:
        """What predicted: ``"encoder classifier (...) on <model>"``."""
        return self.classifier.describe()

    def describe(self) -> str:
        """One line for the status: what, of which images, in how long."""
        return (
            f"preview of {len(self.names)} image(s) from the "
            f"{self.source}, {self.cpu_seconds:.0f} CPU-s"
        )


def widened_features(
    model, config: ModelConfig, channels: int, precision: str = "auto"
) -> FeatureNetwork:
    """A :class:`FeatureNetwork` of ``model`` taking ``channels`` input
    channels: the model itself when it takes them, else (an RGB model for
    plane + crossed polars) a copy whose first convolution is widened as
    training's transfer widens it (:mod:`.model.transfer`)."""
    if config.input_channels == channels:
        return FeatureNetwork(model, config, precision=precision)
    if channels % config.input_channels:
        raise ThinsegError(
            f"the model takes {describe_views(config.input_channels)}; "
            f"these images are {describe_views(channels)}"
        )
    from .model.transfer import transfer_weights
    from .model.vgg_unet import build

    wide = ModelConfig(
        config.n_classes,
        config.input_height,
        config.input_width,
        channels,
        scheme=config.scheme,
        trained_on=dict(config.trained_on),
    )
    network = build(wide, None)
    scheme = config.class_scheme
    transfer_weights(model, scheme, network, scheme)
    return FeatureNetwork(network, wide, precision=precision)


def quick_preview(
    model,
    config: ModelConfig,
    pairs: Sequence,
    judged: Sequence = (),
    n_classes: int | None = None,
    max_images: int = PREVIEW_IMAGES,
    samples_per_class: int = 2000,
    n_trees: int = 100,
    precision: str = "auto",
    stop: Callable[[], bool] | None = None,
) -> Generator[Progress, None, QuickPreview | None]:
    """Fit an encoder classifier on ``pairs``' labels and predict their
    images and then ``judged``'s (both :class:`~.dataset.Pair`), at most
    ``max_images`` of them.

    ``model``, ``config``: the network whose features are used (a shipped
    model or the one training starts from; RGB models serve plane +
    crossed polars too). ``n_classes``: the scheme's class count (the
    probabilities' length). ``samples_per_class``, ``n_trees``: the
    forest's (:func:`~.encoder_classifier.fit_encoder_classifier`; its
    defaults are the measured ones). Returns None when ``stop()`` turned
    true.

    Raises
    ------
    ThinsegError
        Labels of fewer than two classes, or images the model cannot take.
    """
    started = time.process_time()
    if not pairs:
        raise ThinsegError("no images to learn from")
    features = widened_features(
        model, config, n_views(pairs[0].image) * 3, precision
    )
    seen, images = set(), []
    for pair in [*pairs, *judged]:
        if pair.name not in seen and len(images) < max_images:
            seen.add(pair.name)
            images.append(pair)
    try:
        classifier = yield from _relayed(
            fit_encoder_classifier(
                None,
                config,
                pairs,
                samples_per_class=samples_per_class,
                n_trees=n_trees,
                n_classes=n_classes,
                source=model_source(config),
                features=features,
            ),
            stop,
            lambda p: Progress(p.step, p.total, f"preview: {p.message}"),
        )
        predictions = []
        for k, pair in enumerate(images):
            predictions.append(
                (
                    yield from _relayed(
                        predict_encoder_classifier(classifier, pair.image),
                        stop,
                        lambda p, k=k, name=pair.name: Progress(
                            k * p.total + p.step,
                            len(images) * p.total,
                            f"preview of {name}",
                        ),
                    )
                )
            )
    except _Stopped:
        return None
    return QuickPreview(
        [p.name for p in images],
        predictions,
        classifier,
        time.process_time() - started,
    )


class _Stopped(Exception):
    """``stop()`` turned true."""


def _relayed(job, stop, renamed):
    """Run generator ``job``, yielding its progress through ``renamed``;
    its return value, or :class:`_Stopped` once ``stop()`` is true."""
    while True:
        try:
            progress = next(job)
        except StopIteration as done:
            return done.value
        if stop is not None and stop():
            job.close()
            raise _Stopped
        yield renamed(progress)
