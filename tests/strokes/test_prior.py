"""The start model's prediction as the encoder classifier's prior: the
forest follows the strokes where they are and the model elsewhere, on a
synthetic section with the shipped default ('seed') model."""

from __future__ import annotations

import numpy as np
import pytest

from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.errors import ThinsegError
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED, ClassScheme, PetroClass
from napari_thinseg.strokes import encoder_classifier as ec
from napari_thinseg.strokes.prior import (
    PriorFeatures,
    fit_prior_classifier,
    shared_classes,
    unpainted,
    with_prior,
)

pytest.importorskip("sklearn", reason="the forest needs scikit-learn")

FAST = {"samples_per_class": 300, "n_trees": 20}
AWAY = np.s_[:, 64:]  # never stroked, 28 columns from the strokes


@pytest.fixture(scope="module")
def section():
    return synthetic_sandstone((96, 128), seed=3)[0]


@pytest.fixture(scope="module")
def own(default_model, section):
    """The model's own prediction of the section."""
    model, config = default_model
    return run(predict_image(model, config, section, precision="float32"))


@pytest.fixture
def prior(default_model):
    return PriorFeatures(*default_model, SEED, precision="float32")


def two_strokes(shape, top=1, bottom=2):
    """Two thick strokes in the left quarter: ``top`` and ``bottom``."""
    out = np.zeros(shape, np.uint8)
    out[10:18, 4:36] = top
    out[60:68, 4:36] = bottom
    return out


def counted(prior):
    """Count the forward passes of ``prior``'s network."""
    calls = []
    maps = prior.network.maps
    prior.network.maps = lambda tile: calls.append(1) or maps(tile)
    return calls


def test_classes_are_shared_by_name(default_model):
    _, config = default_model
    quartz = SEED.id_of("bright quartz grains")
    mine = ClassScheme(
        "mine",
        (
            PetroClass(1, "Bright  Quartz grains", "#ffffff"),
            PetroClass(2, "glauconite", "#00ff00"),
        ),
    )
    assert shared_classes(config, mine) == {1: quartz}
    assert shared_classes(config, SEED) == {i: i for i in SEED.ids}
    other = ClassScheme("other", (PetroClass(1, "glauconite", "#00ff00"),))
    assert shared_classes(config, other) == {}
    features = ec.FeatureNetwork(*default_model)
    assert with_prior(features, other) is features
    assert with_prior(features, None) is features
    assert isinstance(with_prior(features, mine), PriorFeatures)
    with pytest.raises(ThinsegError, match="share no name"):
        PriorFeatures(*default_model, other)


def test_the_prior_is_the_models_prediction(prior, section, own):
    maps = prior.maps(section)
    assert len(maps) == len(ec.FEATURE_LAYERS) + 1
    p = maps[-1]
    assert p.shape == (48, 64, len(SEED))  # half resolution, shared ids
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    labels = run(prior.model_labels(section))
    # measured: every pixel as predict_image labels it
    assert (labels == own.labels).mean() > 0.99


def test_the_prior_of_a_tiled_image(default_model, prior, monkeypatch):
    model, config = default_model
    large = synthetic_sandstone((160, 224), seed=3)[0]
    own = run(predict_image(model, config, large, precision="float32"))
    monkeypatch.setattr(ec, "FEATURE_TILE_PIXELS", 128 * 160)
    assert len(ec.feature_tiles(*large.shape[:2])) > 2
    labels = run(prior.model_labels(large))
    assert (labels == own.labels).mean() > 0.97


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_strokes_are_followed_and_the_model_elsewhere(
    default_model, prior, section, own, seed
):
    """Strokes of classes the model does not see there, on the left
    quarter only."""
    strokes = two_strokes(section.shape[:2])
    assert not (own.labels[strokes > 0] == strokes[strokes > 0]).any()
    calls = counted(prior)
    clf = run(
        fit_prior_classifier(prior, [(section, strokes)], seed=seed, **FAST)
    )
    pred = run(ec.predict_encoder_classifier(clf, section)).labels
    # one forward pass for the model's prediction, the strokes' features
    # and the prediction of this one-tile image
    assert len(calls) == 1
    assert (pred == strokes)[strokes > 0].mean() > 0.95  # measured 1.0
    # where nothing is painted the forest learnt the model's prediction
    # on as many pixels as strokes (512 of 12288): 0.944-0.959 of the
    # pixels agree (measured, seeds 0-2), the strokes-only forest's
    # 0.077-0.090; 0.9 leaves room for other CPUs' rounding
    agree = (pred[AWAY] == own.labels[AWAY]).mean()
    assert agree > 0.9, agree
    plain = run(
        ec.fit_encoder_classifier(
            None,
            None,
            [(section, strokes)],
            features=ec.FeatureNetwork(*default_model, precision="float32"),
            seed=seed,
            **FAST,
        )
    )
    old = run(ec.predict_encoder_classifier(plain, section)).labels
    assert (old[AWAY] == own.labels[AWAY]).mean() < 0.3


def test_samples_strokes_and_the_model(prior, section, own):
    strokes = two_strokes(section.shape[:2])
    clf = run(fit_prior_classifier(prior, [(section, strokes)], **FAST))
    # all 2 x 256 stroked pixels, and 512 unpainted ones
    assert sum(clf.samples.values()) == 1024
    assert set(clf.classes) == set(SEED.ids)
    half = run(
        fit_prior_classifier(
            prior, [(section, strokes)], prior_share=0.5, **FAST
        )
    )
    assert sum(half.samples.values()) == 768
    none = run(
        fit_prior_classifier(
            prior, [(section, strokes)], prior_share=0, **FAST
        )
    )
    assert none.samples == {1: 256, 2: 256}
    again = run(fit_prior_classifier(prior, [(section, strokes)], **FAST))
    small = section[:32, :64]
    a, b = (
        run(ec.predict_encoder_classifier(k, small)).probabilities
        for k in (clf, again)
    )
    assert np.array_equal(a, b)  # seeded


def test_a_class_the_model_does_not_know(default_model, section, own):
    """Glauconite (id 6) is not the model's: no prior of its own, learnt
    from its strokes alone."""
    scheme = SEED.with_class(6, "glauconite", "#2e8b57")
    prior = PriorFeatures(*default_model, scheme, precision="float32")
    assert prior.label_ids.tolist() == SEED.ids
    strokes = two_strokes(section.shape[:2], top=6)
    clf = run(fit_prior_classifier(prior, [(section, strokes)], **FAST))
    pred = run(ec.predict_encoder_classifier(clf, section))
    # measured 1.0 and 0.96
    assert (pred.labels == strokes)[strokes > 0].mean() > 0.95
    assert (pred.labels[AWAY] == own.labels[AWAY]).mean() > 0.9
    assert clf.samples[6] == 256  # strokes only
    assert pred.probabilities.shape[-1] == 7


def test_one_stroked_class_is_still_refused(prior, section):
    strokes = two_strokes(section.shape[:2], bottom=1)
    with pytest.raises(ThinsegError, match="one class"):
        run(fit_prior_classifier(prior, [(section, strokes)], **FAST))


def test_unpainted_pixels_away_from_strokes():
    labels = np.zeros((20, 20), np.uint8)
    labels[10, 10] = 4
    assert unpainted(labels, 0).sum() == 399
    near = ~unpainted(labels, 3)
    # nearer than 3 pixels to the stroke (Euclidean): 25 pixels
    assert near.sum() == 25 and near[10, 12] and near[12, 12]
    assert not near[10, 13] and not near[12, 13]
