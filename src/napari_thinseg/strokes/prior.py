"""A quick preview that corrects the start model instead of replacing it.

The encoder classifier (:mod:`..encoder_classifier`) learns from the
stroked pixels only, so it forgets what the model knew where nothing is
painted. Here its features also carry the model's class probabilities
(:class:`PriorFeatures`: the softmax of ``head_conv``, at half
resolution, interpolated as the other maps are), mapped onto the labels'
scheme by class name (a class the model does not know has none), and
the forest learns, beside the strokes, a seeded sample of unpainted
pixels labelled with the model's most probable shared class
(:func:`fit_prior_classifier`; Learning without Forgetting's targets, as
hard labels). Its prediction then agrees with the model where nothing
is painted and follows the strokes where something is. A model that
shares no class with the labels' scheme gives the strokes-only
classifier.
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Sequence

import numpy as np

from ..errors import ThinsegError
from ..model.config import ModelConfig
from ..progress import Progress
from ..schemes import ClassScheme
from .encoder_classifier import (
    FEATURE_LAYERS,
    EncoderClassifier,
    FeatureNetwork,
    check_pairs,
    feature_tiles,
    fit_encoder_classifier,
    grid_features,
    sample_strokes,
)
from .soft_targets import shared_classes

PRIOR_LAYER = "head_conv"
"""The model's logits (half resolution), whose softmax is the prior."""

PRIOR_SHARE = 1.0
"""Unpainted pixels learnt from, as a share of the stroked ones. On the
six sandstone-minerals photos (1.2 % strokes, shipped sandstone model)
0.5 and 1 scored alike (mean IoU 0.566 and 0.563, the model alone
0.550); 1 agrees more with the model where nothing is painted (93-97 %
of the pixels, 0.5: 90-97 %); 2 and 4 were no better and cost 15 and
27 CPU-s to learn and predict a photo (1: 7-10)."""

PRIOR_GAP = 0
"""Unpainted pixels closer than this to a stroke are not drawn (8 was
no better on three of the photos: -0.004 to +0.003 mean IoU)."""


class PriorFeatures:
    """A :class:`~..encoder_classifier.FeatureNetwork`'s maps and, last,
    the model's class probabilities over the shared classes.

    The probabilities map ``(h / 2, w / 2, len(label_ids))`` is the
    softmax of the model's ``head_conv``, its shared classes' share
    renormalised to sum to 1; column ``k`` is labels' class
    ``label_ids[k]``. The maps of the last tile are kept (until
    :meth:`forget`), so the model's prediction, the strokes' features
    and the prediction of a one-tile image cost one forward pass.
    Stands in for a FeatureNetwork where the classifier takes one.
    """

    def __init__(
        self,
        model,
        config: ModelConfig,
        scheme: ClassScheme,
        layers: Sequence[str] = FEATURE_LAYERS,
        precision: str = "auto",
    ):
        shared = shared_classes(config, scheme)
        if not shared:
            raise ThinsegError(
                f"the model's classes ({config.class_scheme.name!r}) share "
                f"no name with the {scheme.name!r} scheme"
            )
        self.network = FeatureNetwork(
            model, config, (*layers, PRIOR_LAYER), precision
        )
        self.model, self.config = model, config
        self.layers = tuple(layers)
        self.precision = self.network.precision
        self.channels = self.network.channels
        self.scheme = scheme
        self.label_ids = np.array(list(shared), np.uint8)
        self.model_ids = np.array(list(shared.values()), np.intp)
        self._last: tuple = (None, None)

    def image8(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """See :meth:`FeatureNetwork.image8`."""
        return self.network.image8(image, name)

    def forget(self) -> None:
        """Drop the kept maps (about 0.2 GB for a 640 x 640 tile)."""
        self._last = (None, None)

    def _raw(self, tile: np.ndarray) -> list[np.ndarray]:
        """The network's maps of ``tile``, the logits last (cached)."""
        digest = hashlib.blake2b(tile.tobytes(), digest_size=16).digest()
        key = (tile.shape, digest)
        if self._last[0] != key:
            self._last = (key, self.network.maps(tile))
        return self._last[1]

    def prior(self, tile: np.ndarray) -> np.ndarray:
        """The model's probabilities of the shared classes (renormalised)
        on ``tile``, at half resolution."""
        logits = self._raw(tile)[-1][..., self.model_ids]
        p = np.exp(logits - logits.max(-1, keepdims=True))
        return p / p.sum(-1, keepdims=True)

    def maps(self, tile: np.ndarray) -> list[np.ndarray]:
        """The feature maps of ``tile``, the prior last."""
        return [*self._raw(tile)[:-1], self.prior(tile)]

    def model_labels(
        self, image8: np.ndarray
    ) -> Generator[Progress, None, np.ndarray]:
        """The labels' id of the model's most probable shared class at
        each pixel of ``image8`` (uint8), tile by tile."""
        height, width = image8.shape[:2]
        out = np.zeros((height, width), np.uint8)
        tiles = feature_tiles(height, width)
        for k, tile in enumerate(tiles):
            p = self.prior(tile.pixels(image8))
            ys = np.arange(tile.top, tile.bottom)
            xs = np.arange(tile.left, tile.right)
            best = grid_features([p], tile.shape[0], ys, xs).argmax(-1)
            y, x = tile.y + tile.top, tile.x + tile.left
            out[y : y + len(ys), x : x + len(xs)] = self.label_ids[best]
            yield Progress(k + 1, len(tiles), "the model's prediction")
        return out


def with_prior(
    features: FeatureNetwork, scheme: ClassScheme | None
) -> PriorFeatures | FeatureNetwork:
    """``features`` with the model's prediction added when its model
    shares classes with ``scheme``; else ``features`` itself."""
    if scheme is None or not shared_classes(features.config, scheme):
        return features
    return PriorFeatures(
        features.model,
        features.config,
        scheme,
        features.layers,
        features.precision,
    )


def unpainted(labels: np.ndarray, gap: int) -> np.ndarray:
    """Pixels no stroke covers, at least ``gap`` pixels from one."""
    if gap <= 0:
        return labels == 0
    from scipy import ndimage as ndi

    return ndi.distance_transform_edt(labels == 0) >= gap


def fit_prior_classifier(
    features: PriorFeatures | FeatureNetwork,
    pairs: Sequence,
    samples_per_class: int = 2000,
    prior_share: float = PRIOR_SHARE,
    prior_gap: int = PRIOR_GAP,
    seed: int = 0,
    **fit,
) -> Generator[Progress, None, EncoderClassifier]:
    """An encoder classifier that learns the strokes and, where nothing
    is painted, the model's own prediction.

    Parameters
    ----------
    features
        :class:`PriorFeatures` (:func:`with_prior`); a plain
        :class:`~..encoder_classifier.FeatureNetwork` learns the strokes
        only.
    pairs
        ``(image, strokes)`` tuples or :class:`~..dataset.Pair`, strokes
        in the ``features.scheme``'s class ids (0 unlabelled).
    samples_per_class, seed
        Stroked pixels per class learnt from (at most), and the seed of
        every draw.
    prior_share
        Unpainted pixels learnt from, over all images, as a share of the
        stroked pixels drawn; each labelled with the model's most
        probable shared class, drawn uniformly with ``seed``.
    prior_gap
        Unpainted pixels nearer a stroke than this are not drawn.
    **fit
        Passed to
        :func:`~..encoder_classifier.fit_encoder_classifier`
        (``n_trees``, ``n_classes``, ``source``, ``extra``, ...).

    Raises
    ------
    ThinsegError
        As ``fit_encoder_classifier`` does: strokes of fewer than two
        classes, or images and strokes that do not fit.
    """
    checked = check_pairs(pairs, features)
    images = [image8 for _, image8, _ in checked]
    labels = [lab for _, _, lab in checked]
    picked = sample_strokes(labels, samples_per_class, seed)
    taught = [np.zeros_like(lab) for lab in labels]
    for c, parts in picked.items():
        for out, flat in zip(taught, parts, strict=True):
            out.flat[flat] = c
    n_prior = round(prior_share * sum(int((t > 0).sum()) for t in taught))
    if isinstance(features, PriorFeatures) and len(picked) > 1 and n_prior:
        n_prior = yield from _add_prior(
            features, images, labels, taught, n_prior, prior_gap, seed
        )
    else:
        n_prior = 0
    return (
        yield from fit_encoder_classifier(
            None,
            features.config,
            list(zip(images, taught, strict=True)),
            samples_per_class=samples_per_class + n_prior,
            seed=seed,
            features=features,
            **fit,
        )
    )


def _add_prior(features, images, labels, taught, n_prior, gap, seed):
    """Label ``n_prior`` unpainted pixels of ``images`` (drawn uniformly
    over all, with ``seed + 1``) in ``taught`` with the model's most
    probable shared class; the number labelled."""
    free = [unpainted(lab, gap).astype(np.uint8) for lab in labels]
    drawn = sample_strokes(free, n_prior, seed + 1).get(1, [])
    for image8, out, flat in zip(images, taught, drawn, strict=False):
        if len(flat):
            model = yield from features.model_labels(image8)
            out.flat[flat] = model.flat[flat]
    return sum(len(flat) for flat in drawn)
