"""Segmentation metrics: confusion matrices and per-class IoU."""

from __future__ import annotations

import numpy as np


def confusion_matrix(
    truth: np.ndarray, pred: np.ndarray, n_classes: int
) -> np.ndarray:
    """``cm[t, p]`` pixel counts (labels >= n_classes are dropped)."""
    t = truth.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    keep = (t < n_classes) & (p < n_classes)
    return np.bincount(
        t[keep] * n_classes + p[keep], minlength=n_classes * n_classes
    ).reshape(n_classes, n_classes)


def iou_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU; NaN for classes absent from truth and prediction."""
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)
