"""A prediction from the user's strokes within about a CPU minute, while
the fine-tune that follows takes its minutes.

On 2 % strokes, a random forest on the shipped encoder's features
(:mod:`.encoder_classifier`) reached a held-out mean IoU of 0.37 in about
43 CPU-seconds a field, where 60-120 CPU-seconds of fine-tuning reached
0.11-0.14 (``bench/bench_feedback.py``, ``docs/benchmarks.md``). So the
Train widget shows that forest's prediction first, then fine-tunes:
:func:`quick_preview` fits the forest on the training pairs and predicts
the images the user is judging, and its :class:`QuickPreview` says which
model it came from.

Learnt from the strokes alone, the forest forgets what the model knew
(worse than the model itself where nothing is painted). When the model
shares classes with the labels' scheme, the forest also sees the model's
class probabilities and learns its prediction on unpainted pixels
(:mod:`~napari_thinseg.strokes.prior`): the preview corrects the model where
strokes
are and agrees with it elsewhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from ..imaging.convert import describe_views, n_views
from ..model.config import ModelConfig
from ..progress import Progress, Stopped, relay
from ..schemes import ClassScheme
from .encoder_classifier import (
    ClassifierPrediction,
    EncoderClassifier,
    FeatureNetwork,
    fit_encoder_classifier,
    model_source,
    predict_encoder_classifier,
)
from .held_out import Verdict, score, split_strokes
from .prior import PriorFeatures, fit_prior_classifier, with_prior

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
    verdict: Verdict | None = None
    """The model (start) and the preview (trained) on held-out strokes;
    None when nothing was held out."""

    @property
    def model_prior(self) -> bool:
        """Whether the forest learnt the model's prediction too."""
        return isinstance(self.classifier.features, PriorFeatures)

    @property
    def source(self) -> str:
        """What predicted: ``"encoder classifier (...) on <model>"``, or
        ``"encoder classifier (...) + the prediction of <model>"``."""
        c = self.classifier
        if not self.model_prior:
            return c.describe()
        return (
            f"encoder classifier ({len(c.classes)} classes, "
            f"{len(c.features.layers)} layers) + the prediction of "
            f"{c.source}"
        )

    def describe(self) -> str:
        """One line for the status: what, of which images, in how long."""
        line = (
            f"preview of {len(self.names)} image(s) from the "
            f"{self.source}, {self.cpu_seconds:.0f} CPU-s"
        )
        return line + self.judged()

    def judged(self) -> str:
        """``"; held-out strokes: the model 40 %, the preview 70 %
        agree"`` (empty when nothing was held out)."""
        v = self.verdict
        if v is None or v.trained is None:
            return ""
        model = (
            ""
            if v.start is None
            else f"the model {100 * v.start.score:.0f} %, "
        )
        preview = f"the preview {100 * v.trained.score:.0f} %"
        return f"; held-out strokes: {model}{preview} agree"


def widened_features(
    model, config: ModelConfig, channels: int, precision: str = "auto"
) -> FeatureNetwork:
    """A :class:`FeatureNetwork` of ``model`` taking ``channels`` input
    channels: the model itself when it takes them, else (an RGB model for
    plane + crossed polars) a copy whose first convolution is widened as
    training's transfer widens it (:mod:`~napari_thinseg.model.transfer`)."""
    if config.input_channels == channels:
        return FeatureNetwork(model, config, precision=precision)
    if channels % config.input_channels:
        raise ThinsegError(
            f"the model takes {describe_views(config.input_channels)}; "
            f"these images are {describe_views(channels)}"
        )
    from ..model.transfer import transfer_weights
    from ..model.vgg_unet import build

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


def features_model_prefix(scheme: ClassScheme | None) -> Path:
    """The model whose features a preview uses when training starts from
    no model: the shipped model of ``scheme``'s classes, else the
    shipped sandstone model (its encoder serves any scheme)."""
    from ..model import checkpoints as ck

    names = () if scheme is None else scheme.names
    return ck.model_prefix(ck.shipped_model_of(names) or "sandstone")


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
    scheme: ClassScheme | None = None,
    model_prior: bool = True,
) -> Generator[Progress, None, QuickPreview | None]:
    """Fit an encoder classifier on ``pairs``' labels and predict their
    images and then ``judged``'s (both
    :class:`~napari_thinseg.dataset.folders.Pair`), at most
    ``max_images`` of them.

    ``model``, ``config``: the network whose features are used (a shipped
    model or the one training starts from; RGB models serve plane +
    crossed polars too). ``n_classes``: the scheme's class count (the
    probabilities' length). ``samples_per_class``, ``n_trees``: the
    forest's (:func:`~.encoder_classifier.fit_encoder_classifier`; its
    defaults are the measured ones). ``scheme``: the labels' class
    scheme; with ``model_prior``, where the model names some of its
    classes, the forest also learns the model's class probabilities and
    its prediction on unpainted pixels
    (:func:`~napari_thinseg.strokes.prior.fit_prior_classifier`), else (no
    scheme, no
    shared class) the strokes only. Returns None when ``stop()`` turned
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
    if model_prior:
        features = with_prior(features, scheme)
    # strokes held out of the forest judge it (and the model) afterwards
    learned, held = split_strokes([np.asarray(p.labels) for p in pairs])
    pairs = [
        replace(p, labels=lab) for p, lab in zip(pairs, learned, strict=True)
    ]
    seen, images = set(), []
    for pair in [*pairs, *judged]:
        if pair.name not in seen and len(images) < max_images:
            seen.add(pair.name)
            images.append(pair)
    try:
        classifier = yield from relay(
            _fit(
                features, config, pairs, samples_per_class, n_trees, n_classes
            ),
            lambda p: Progress(p.step, p.total, f"preview: {p.message}"),
            stop,
        )
        predictions = []
        for k, pair in enumerate(images):
            predictions.append(
                (
                    yield from relay(
                        predict_encoder_classifier(classifier, pair.image),
                        lambda p, k=k, name=pair.name: Progress(
                            k * p.total + p.step,
                            len(images) * p.total,
                            f"preview of {name}",
                        ),
                        stop,
                    )
                )
            )
        verdict = yield from _judge(features, pairs, held, predictions)
    except Stopped:
        return None
    finally:
        if isinstance(features, PriorFeatures):
            features.forget()
    return QuickPreview(
        [p.name for p in images],
        predictions,
        classifier,
        time.process_time() - started,
        verdict,
    )


def _judge(features, pairs, held, predictions):
    """The preview's (and, where it names the labels' classes, the
    model's) :class:`~napari_thinseg.strokes.held_out.Verdict` on the held-out
    strokes
    of the pairs it predicted; None when none were held out."""
    judged = [
        (pair, lab, pred)
        for pair, lab, pred in zip(pairs, held, predictions, strict=False)
        if lab.any()
    ]
    if not judged:
        return None
    preview = score(
        [pred.labels for _, _, pred in judged], [lab for _, lab, _ in judged]
    )
    model = None
    if isinstance(features, PriorFeatures):
        said = []
        for pair, _, _ in judged:
            image8 = features.image8(pair.image, pair.where)
            said.append((yield from features.model_labels(image8)))
        model = score(said, [lab for _, lab, _ in judged])
    return Verdict(model, preview)


def _fit(features, config, pairs, samples_per_class, n_trees, n_classes):
    """The forest of the preview: with the model's prediction when
    ``features`` carry it
    (:class:`~napari_thinseg.strokes.prior.PriorFeatures`)."""
    kw = {
        "samples_per_class": samples_per_class,
        "n_trees": n_trees,
        "n_classes": n_classes,
        "source": model_source(config),
    }
    if isinstance(features, PriorFeatures):
        return fit_prior_classifier(features, pairs, **kw)
    return fit_encoder_classifier(None, config, pairs, features=features, **kw)
