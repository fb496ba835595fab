"""Filter features added to the encoder classifier's, on synthetic thin
sections with exact labels."""

from __future__ import annotations

import gc
import pickle

import numpy as np
import pytest

from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.errors import ThinsegError
from napari_thinseg.progress import run
from napari_thinseg.strokes import encoder_classifier as ec
from napari_thinseg.strokes import filter_features as ff

pytest.importorskip("sklearn", reason="the forest needs scikit-learn")
pytest.importorskip("skimage", reason="the filters need scikit-image")

FAST = {"samples_per_class": 300, "n_trees": 20}


@pytest.fixture(scope="module")
def features():
    """The shipped default model's features (skipped where it is not
    installed)."""
    from napari_thinseg.model import checkpoints

    try:
        prefix = checkpoints.shipped_model_prefix("default")
    except ThinsegError as exc:
        pytest.skip(str(exc))
    model, config, _ = checkpoints.load_model(prefix)
    return ec.FeatureNetwork(model, config, precision="float32")


def test_filters_are_sampled_bilinearly_and_cached():
    rgb, _ = synthetic_sandstone((40, 56), seed=1)
    extra = ff.FilterFeatures()
    full = ff.filter_features(rgb)
    assert full.shape == (40, 56, 60) and full.dtype == np.float32
    ys, xs = np.array([0, 7, 39]), np.array([0, 30, 55])
    np.testing.assert_allclose(extra(rgb, ys, xs), full[ys, xs], rtol=1e-6)
    assert extra.features_of(rgb) is extra.features_of(rgb)  # cached
    mid = extra(rgb, [2.5], [4.5])[0]
    np.testing.assert_allclose(mid, full[2:4, 4:6].mean((0, 1)), rtol=1e-5)
    del rgb
    gc.collect()
    assert extra._features is None  # dropped with its image
    again = pickle.loads(pickle.dumps(extra))
    assert (again.sigma_min, again.sigma_max) == (1, 16)


def test_encoder_and_filter_features_label_an_unstroked_part(features):
    rgb, labels = synthetic_sandstone((160, 224), seed=3)
    strokes = np.zeros_like(labels)
    strokes[::3, :100] = labels[::3, :100]
    clf = run(
        ff.fit_filter_encoder_classifier(
            None, None, [(rgb, strokes)], features=features, **FAST
        )
    )
    n_enc = 64 + 128 + 256 + 512
    assert clf.forest.n_features_in_ == n_enc + 60
    assert isinstance(clf.extra, ff.FilterFeatures)
    assert clf.extra._features is None  # not held after fitting
    for stride in (1, 2, 4):
        pred = run(ec.predict_encoder_classifier(clf, rgb, stride=stride))
        assert pred.labels.shape == labels.shape
        assert pred.probabilities.shape == (*labels.shape, clf.n_classes)
    pred = run(ec.predict_encoder_classifier(clf, rgb))
    held = np.s_[:, 120:]  # never stroked
    truth = labels[held]
    accuracy = float((pred.labels[held] == truth).mean())
    majority = np.bincount(truth.ravel()).max() / truth.size
    assert accuracy > majority + 0.2, (accuracy, majority)
