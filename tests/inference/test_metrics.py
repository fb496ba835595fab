"""Confusion matrices and per-class IoU."""

import numpy as np

from napari_thinseg.inference.metrics import (
    confusion_matrix,
    iou_from_confusion,
)


def test_confusion_and_iou():
    t = np.array([1, 1, 2, 2, 0])
    p = np.array([1, 2, 2, 2, 0])
    cm = confusion_matrix(t, p, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 2]]
    np.testing.assert_allclose(iou_from_confusion(cm), [1, 0.5, 2 / 3])


def test_absent_classes_are_nan_and_out_of_range_ids_dropped():
    cm = confusion_matrix(np.array([1, 1, 7]), np.array([1, 1, 1]), 3)
    assert cm.sum() == 2
    iou = iou_from_confusion(cm)
    assert np.isnan(iou[0]) and np.isnan(iou[2]) and iou[1] == 1.0
