"""What the strokes alone say of the photos they were painted on.

ilastik's loop (filter features and a random forest on the stroked
pixels) follows a petrographer's strokes more closely than a network
that keeps its start model's view: on sandstone-minerals the forest led
the fine-tune on the corrected photos from the second round of strokes
on (0.527 against 0.418 mean IoU by round 3, ``bench/bench_loop.py``).
So the fine-tune mixes this forest's probabilities into the stroked
photos' soft targets (:func:`mix_soft_targets`, ``Recipe.forest_share``;
``thinseg train --forest_share``): the network learns what the forest
found there, and keeps the start model's view on the replayed photos.

Only where the forest is sure (its top probability 0.8 or more,
``Recipe.forest_confidence``): a forest that learnt a few classes from a
few strokes calls every other pixel one of them, and taught everywhere
it pulled the network towards the corrected photos' colours. Measured
on sandstone-minerals (3 folds, ``bench/bench_loop.py``, docs/loop.md),
a share of 0.5 over the sure pixels took the corrected photos from
+0.083 (no forest) to +0.158 mean IoU by round 3, the unseen ones
staying above the start model (lowest 0.338 against 0.314); the same
share everywhere gained as much on fold 0 (+0.186) but cost its unseen
photos 0.049. It is the default; ``forest_share=0`` (``thinseg train
--forest_share 0``) trains on the start model's view alone.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

import numpy as np

from ..progress import Progress
from .encoder_classifier import sample_strokes
from .filter_features import filter_features

SAMPLES_PER_CLASS = 2000
"""Stroked pixels a class the forest learns from (as the bench's)."""
TREES = 100
MIN_STROKED_CLASSES = 2
"""With fewer classes painted the forest has nothing to tell apart."""


def forest_probabilities(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    n_classes: int,
    seed: int = 0,
) -> Generator[Progress, None, list[np.ndarray] | None]:
    """Per image, the class probabilities ``(H, W, n_classes)`` (float16;
    0 for class 0 and for classes nobody painted) of a random forest on
    the filter features (:func:`~.filter_features.filter_features`) of
    the stroked pixels of ``labels`` (0 = unpainted); None when fewer
    than :data:`MIN_STROKED_CLASSES` classes are painted."""
    from sklearn.ensemble import RandomForestClassifier

    picked = sample_strokes(labels, SAMPLES_PER_CLASS, seed)
    if len(picked) < MIN_STROKED_CLASSES:
        return None
    total = len(images) * 2
    x, y, features = [], [], []
    for k, image in enumerate(images):
        feats = filter_features(np.asarray(image))
        feats = feats.reshape(-1, feats.shape[-1])
        flat = np.concatenate([picked[c][k] for c in picked])
        x.append(feats[flat])
        y.append(np.asarray(labels[k]).ravel()[flat])
        features.append(feats)
        yield Progress(k + 1, total, "the strokes' forest: features")
    forest = RandomForestClassifier(TREES, n_jobs=-1, random_state=seed)
    forest.fit(np.concatenate(x), np.concatenate(y))
    out = []
    for k, feats in enumerate(features):
        probs = np.zeros((len(feats), n_classes), np.float16)
        probs[:, forest.classes_] = forest.predict_proba(feats)
        out.append(probs.reshape(*np.shape(labels[k]), n_classes))
        features[k] = None  # 60 floats a pixel: free them as we go
        yield Progress(len(images) + k + 1, total, "the strokes' forest")
    return out


def mix_soft_targets(
    start: np.ndarray | None,
    forest: np.ndarray | None,
    share: float,
    min_confidence: float = 0.0,
) -> np.ndarray | None:
    """``share`` of the forest's probabilities and the rest of the start
    model's; the start model's alone where the forest has none or is
    less sure than ``min_confidence`` (its top probability), and none
    where the start model shares no class with the labels (strokes alone
    then, as before)."""
    if start is None or forest is None or share <= 0:
        return start
    forest = forest.astype(np.float32)
    weight = np.full(forest.shape[:-1] + (1,), share, np.float32)
    weight[forest.max(axis=-1, keepdims=True) < min_confidence] = 0.0
    mixed = weight * forest + (1.0 - weight) * start.astype(np.float32)
    return mixed.astype(np.float16)
