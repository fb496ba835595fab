"""Small numpy models and honest cross-validation for few samples.

Ridge regression (penalty chosen by closed-form leave-one-out) and a
k-nearest-neighbour classifier on standardised features, and their
cross-validation, each score set against a naive baseline (the mean, the
majority class), because thin-section studies have few samples.
numpy only (no scikit-learn), no napari or Qt.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ThinsegError

# -- constants ---------------------------------------------------------------
RIDGE_ALPHAS = tuple(10.0**e for e in np.arange(-3, 5.5, 0.5))
KNN_K = 3
LOO_MAX_N = 100
"""Leave-one-out up to this many samples, else 10-fold."""


# -- models ------------------------------------------------------------------
def _scale(x: np.ndarray):
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0
    return mean, std


@dataclass
class Ridge:
    """Ridge regression on standardised features, its penalty chosen by
    leave-one-out on the training data (closed form, so nested inside an
    outer cross-validation at no cost)."""

    alphas: tuple[float, ...] = RIDGE_ALPHAS
    alpha: float = field(default=1.0, init=False)
    _mean: np.ndarray | None = field(default=None, init=False, repr=False)
    _std: np.ndarray | None = field(default=None, init=False, repr=False)
    _coef: np.ndarray | None = field(default=None, init=False, repr=False)
    _intercept: float = field(default=0.0, init=False, repr=False)

    def fit(self, x, y) -> Ridge:
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        self._mean, self._std = _scale(x)
        xs = (x - self._mean) / self._std
        yc = y - y.mean()
        u, s, vt = np.linalg.svd(xs, full_matrices=False)
        uy = u.T @ yc
        n = len(y)
        if n >= 3:
            press = []
            for a in self.alphas:
                d = s**2 / (s**2 + a)
                resid = yc - u @ (d * uy)
                # the intercept (mean) is refitted too: 1/n on the diagonal
                h = (u**2) @ d + 1.0 / n
                press.append(np.mean((resid / np.maximum(1 - h, 1e-9)) ** 2))
            self.alpha = float(self.alphas[int(np.argmin(press))])
        self._coef = vt.T @ (s / (s**2 + self.alpha) * uy)
        self._intercept = float(y.mean())
        return self

    def predict(self, x) -> np.ndarray:
        xs = (np.asarray(x, dtype=float) - self._mean) / self._std
        return self._intercept + xs @ self._coef


@dataclass
class NearestNeighbours:
    """k-nearest-neighbour vote on standardised features.

    A tie in votes goes to the tied class with the single nearest member;
    distances tie-break by training order (stable), so results are
    deterministic.
    """

    k: int = KNN_K
    _mean: np.ndarray | None = field(default=None, init=False, repr=False)
    _std: np.ndarray | None = field(default=None, init=False, repr=False)
    _x: np.ndarray | None = field(default=None, init=False, repr=False)
    _y: tuple[str, ...] = field(default=(), init=False, repr=False)

    def fit(self, x, y) -> NearestNeighbours:
        x = np.asarray(x, dtype=float)
        self._mean, self._std = _scale(x)
        self._x = (x - self._mean) / self._std
        self._y = tuple(y)
        return self

    def predict(self, x) -> tuple[str, ...]:
        xs = (np.asarray(x, dtype=float) - self._mean) / self._std
        out = []
        for row in xs:
            d = np.sqrt(((self._x - row) ** 2).sum(axis=1))
            order = np.argsort(d, kind="stable")[: min(self.k, len(d))]
            votes = Counter(self._y[i] for i in order)
            top = max(votes.values())
            tied = {c for c, v in votes.items() if v == top}
            out.append(next(self._y[i] for i in order if self._y[i] in tied))
        return tuple(out)


def no_information_rate(labels: Sequence[str]) -> float:
    """Share of the most common label (the majority-class accuracy)."""
    return max(Counter(labels).values()) / len(labels)


def cv_folds(
    n: int, n_folds: int | None = None, seed: int = 0
) -> tuple[list[np.ndarray], str]:
    """Test-index folds and their description.

    ``None``: leave-one-out up to :data:`LOO_MAX_N` samples (small sample
    counts are the norm; LOO wastes the fewest), else 10-fold; k-fold
    splits are shuffled with ``seed``.
    """
    if n < 3:
        raise ThinsegError(
            f"cross-validation needs at least 3 samples, got {n}"
        )
    if n_folds is None:
        n_folds = n if n <= LOO_MAX_N else 10
    n_folds = max(2, min(int(n_folds), n))
    if n_folds == n:
        return [np.array([i]) for i in range(n)], "leave-one-out"
    order = np.random.default_rng(seed).permutation(n)
    return list(np.array_split(order, n_folds)), f"{n_folds}-fold"


@dataclass(frozen=True)
class RegressionCV:
    """Out-of-fold predictions and scores of a model and of a baseline."""

    target: str
    predicted: np.ndarray
    baseline: np.ndarray
    rmse: float
    r2: float
    baseline_rmse: float
    baseline_r2: float
    n: int
    cv: str
    baseline_name: str = "mean-predictor baseline"

    @property
    def beats_baseline(self) -> bool:
        return self.rmse < self.baseline_rmse

    def summary(self) -> str:
        verdict = (
            "" if self.beats_baseline else " (no better than the baseline)"
        )
        return (
            f"{self.target}: CV RMSE {self.rmse:.4g} vs "
            f"{self.baseline_name} {self.baseline_rmse:.4g}; R2 "
            f"{self.r2:.3f} vs "
            f"{self.baseline_r2:.3f}{verdict}"
        )


@dataclass(frozen=True)
class ClassificationCV:
    """Out-of-fold predictions and accuracy of a classifier and of the
    majority class."""

    target: str
    predicted: tuple[str, ...]
    accuracy: float
    baseline_accuracy: float
    n: int
    n_classes: int
    cv: str

    @property
    def beats_baseline(self) -> bool:
        return self.accuracy > self.baseline_accuracy

    def summary(self) -> str:
        verdict = (
            "" if self.beats_baseline else " (no better than the baseline)"
        )
        return (
            f"{self.target} ({self.n_classes} classes): CV accuracy "
            f"{self.accuracy:.3f} vs majority-class baseline "
            f"{self.baseline_accuracy:.3f}{verdict}"
        )


def rmse_r2(y, pred) -> tuple[float, float]:
    """RMSE and R2 (1 - SSE / SST; NaN when ``y`` is constant)."""
    sse = float(np.sum((y - pred) ** 2))
    sst = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - sse / sst if sst > 0 else float("nan")
    return math.sqrt(sse / len(y)), r2


def cross_validate_regression(
    x, y, target: str = "y", n_folds=None, seed: int = 0
) -> RegressionCV:
    """Cross-validated :class:`Ridge` against predicting the mean.

    The baseline gets the benefit of the doubt: the mean of all ``y``,
    held-out samples included, so its RMSE is the spread of ``y`` and its
    R2 is 0; the model has to beat that with held-out predictions. R2 is
    1 - SSE / SST of the out-of-fold predictions, negative when the model
    does worse than the mean.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    folds, how = cv_folds(len(y), n_folds, seed)
    pred = np.empty_like(y)
    base = np.empty_like(y)
    for test in folds:
        train = np.setdiff1d(np.arange(len(y)), test)
        pred[test] = Ridge().fit(x[train], y[train]).predict(x[test])
    base[:] = y.mean()
    rmse, r2 = rmse_r2(y, pred)
    b_rmse, b_r2 = rmse_r2(y, base)
    return RegressionCV(
        target, pred, base, rmse, r2, b_rmse, b_r2, len(y), how
    )


def cross_validate_classifier(
    x, labels: Sequence[str], target="class", n_folds=None, seed: int = 0
) -> ClassificationCV:
    """Cross-validated :class:`NearestNeighbours` against the majority
    class.

    The baseline is the share of the most common class over all samples
    (the no-information rate). A majority vote of each training fold
    would be unfairly bad: with two balanced classes, leaving one sample
    out always leaves the other class ahead.
    """
    x = np.asarray(x, dtype=float)
    labels = tuple(str(v) for v in labels)
    folds, how = cv_folds(len(labels), n_folds, seed)
    pred: list[str | None] = [None] * len(labels)
    for test in folds:
        train = np.setdiff1d(np.arange(len(labels)), test)
        y_train = [labels[i] for i in train]
        got = NearestNeighbours().fit(x[train], y_train).predict(x[test])
        for i, g in zip(test, got, strict=True):
            pred[i] = g
    acc = float(np.mean([p == t for p, t in zip(pred, labels, strict=True)]))
    b_acc = no_information_rate(labels)
    return ClassificationCV(
        target, tuple(pred), acc, b_acc, len(labels), len(set(labels)), how
    )
