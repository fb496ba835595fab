"""ilastik-style filter features added to the encoder classifier's.

:func:`skimage.feature.multiscale_basic_features` (Gaussian intensity,
Sobel edges and Hessian eigenvalues, ``sigma_min`` .. ``sigma_max``, of
each colour channel: 60 features for RGB at sigma 1 .. 16) are computed
once per image, on the whole image, in float32, and sampled bilinearly
where the encoder classifier (:mod:`.encoder_classifier`) takes its
features: the stroked pixels when it learns, its grid points (every
``stride`` pixels, centred in each cell: the mean of a 2 x 2 cell at
stride 2) when it predicts. A random forest does not care how features
are scaled, so none is rescaled. :class:`FilterFeatures` keeps the
features of the last image only (a 1200 x 1600 RGB image: 0.46 GB) and
drops them when that image is freed.
"""

from __future__ import annotations

import weakref
from collections.abc import Generator, Sequence

import numpy as np

from ..errors import ThinsegError
from ..model.config import ModelConfig
from ..progress import Progress
from .encoder_classifier import (
    FEATURE_LAYERS,
    EncoderClassifier,
    fit_encoder_classifier,
    points_features,
)

SIGMA_MIN = 1
SIGMA_MAX = 16
"""The filters' scales (as ``bench/bench_feedback.py``'s ``ilastik``)."""


def filter_features(
    image: np.ndarray,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
) -> np.ndarray:
    """Filter features ``(H, W, f)`` float32 of an ``(H, W, channels)``
    image (uint8 scaled to 0..1 first, as scikit-image does)."""
    try:
        from skimage.feature import multiscale_basic_features
    except ImportError:
        raise ThinsegError(
            "filter features need scikit-image (pip install scikit-image)"
        ) from None
    image = np.asarray(image)
    return multiscale_basic_features(
        image,
        channel_axis=-1 if image.ndim == 3 else None,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
    ).astype(np.float32, copy=False)


class FilterFeatures:
    """The ``extra`` features of an encoder classifier: called with
    ``(image8, ys, xs)`` (image pixel coordinates, float allowed), the
    filter features ``(n, f)`` of ``image8`` there, interpolated
    bilinearly. The last image's features are cached (by identity) until
    that image is freed or another comes."""

    def __init__(
        self, sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX
    ):
        self.sigma_min, self.sigma_max = sigma_min, sigma_max
        self._image: weakref.ref | None = None
        self._features: np.ndarray | None = None

    def features_of(self, image8: np.ndarray) -> np.ndarray:
        """The filter features ``(H, W, f)`` of ``image8``, cached."""
        if self._image is None or self._image() is not image8:
            self.clear()  # at most one image's features at a time
            self._features = filter_features(
                image8, self.sigma_min, self.sigma_max
            )
            self._image = weakref.ref(image8, self._freed)
        return self._features

    def _freed(self, ref) -> None:
        if ref is self._image:
            self.clear()

    def clear(self) -> None:
        """Drop the cached features."""
        self._image, self._features = None, None

    def __call__(self, image8: np.ndarray, ys, xs) -> np.ndarray:
        feats = self.features_of(image8)
        ys = np.asarray(ys, np.float64)
        xs = np.asarray(xs, np.float64)
        return points_features([feats], feats.shape[0], ys, xs)

    def __getstate__(self):
        return {"sigma_min": self.sigma_min, "sigma_max": self.sigma_max}

    def __setstate__(self, state):
        self.__init__(state["sigma_min"], state["sigma_max"])


def fit_filter_encoder_classifier(
    model,
    config: ModelConfig,
    pairs: Sequence,
    layers: Sequence[str] = FEATURE_LAYERS,
    sigma_min: float = SIGMA_MIN,
    sigma_max: float = SIGMA_MAX,
    **kw,
) -> Generator[Progress, None, EncoderClassifier]:
    """:func:`~.encoder_classifier.fit_encoder_classifier` on the
    encoder's features and the filter features of each stroked pixel;
    ``kw`` are its other parameters.
    :func:`~.encoder_classifier.predict_encoder_classifier` predicts with
    the result as with any encoder classifier."""
    extra = FilterFeatures(sigma_min, sigma_max)
    clf = yield from fit_encoder_classifier(
        model, config, pairs, layers=layers, extra=extra, **kw
    )
    extra.clear()
    return clf
