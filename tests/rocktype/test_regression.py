import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.rocktype import regression as rg


# -- cross-validation: honest numbers ----------------------------------------
def test_cv_beats_baseline_when_porosity_follows_a_feature():
    rng = np.random.default_rng(0)
    n = 30
    optical = rng.uniform(0.05, 0.30, n)
    porosity = 0.04 + 0.9 * optical + rng.normal(0, 0.01, n)
    x = np.column_stack([optical, rng.normal(size=(n, 3))])
    cv = rg.cross_validate_regression(x, porosity, "porosity")
    assert cv.cv == "leave-one-out" and cv.n == n
    # signal sd 0.9 * 0.072 = 0.065 against noise 0.01
    assert cv.rmse < 0.3 * cv.baseline_rmse
    # the baseline is the mean of all samples: RMSE = spread, R2 = 0
    assert cv.baseline_rmse == pytest.approx(porosity.std())
    assert cv.r2 > 0.9 and cv.baseline_r2 == pytest.approx(0.0)
    assert cv.beats_baseline
    assert "no better" not in cv.summary()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cv_no_better_than_baseline_on_pure_noise(seed):
    rng = np.random.default_rng(seed)
    n = 25
    cv = rg.cross_validate_regression(
        rng.normal(size=(n, 6)), rng.normal(size=n)
    )
    # pure noise beats the mean by chance now and then: over 200 seeds the
    # ratio was 0.94 at worst, 1.06 in the median
    assert cv.rmse > 0.85 * cv.baseline_rmse
    assert cv.r2 < 0.2


def test_kfold_is_seeded_and_covers_every_sample():
    folds, how = rg.cv_folds(250)
    assert how == "10-fold"
    assert sorted(np.concatenate(folds).tolist()) == list(range(250))
    again, _ = rg.cv_folds(250)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))
    with pytest.raises(ThinsegError, match="at least 3"):
        rg.cv_folds(2)


def test_classifier_cv_against_majority_baseline():
    rng = np.random.default_rng(3)
    centres = {"A": (0, 0), "B": (3, 0), "C": (0, 3)}
    labels = ["A"] * 10 + ["B"] * 8 + ["C"] * 6
    x = np.array([centres[c] for c in labels]) + rng.normal(0, 0.5, (24, 2))
    cv = rg.cross_validate_classifier(x, labels, "rock type")
    assert cv.accuracy >= 0.9 and cv.baseline_accuracy < 0.45
    noise = rg.cross_validate_classifier(
        rng.normal(size=(24, 2)), labels, "rock type"
    )
    assert noise.accuracy < cv.accuracy - 0.3
