"""Training crops and augmentation."""

import numpy as np
import pytest

from napari_thinseg.augment import CropSampler, validation_crops
from napari_thinseg.dataset import Pair
from napari_thinseg.errors import ThinsegError
from napari_thinseg.train import TrainSettings


def test_augmentation_keeps_image_and_labels_aligned():
    # the image encodes its own labels: any misalignment shows
    labels = np.ones((50, 70), np.uint8)
    labels[:, 35:] = 4
    labels[20:30] = 2
    labels[5:8, 5:60] = 3
    palette = np.array(
        [[0, 0, 0], [250, 0, 0], [0, 250, 0], [0, 0, 250], [250, 250, 0]],
        np.uint8,
    )
    pair = Pair("a", palette[labels], labels)
    settings = TrainSettings(
        input_height=32, input_width=64, augment=True, seed=3
    )
    sampler = CropSampler([pair], settings, ignore_zero=False)
    for _ in range(40):
        img, lab = sampler.crop()
        assert img.shape == (32, 64, 3) and lab.shape == (32, 64)
        recovered = (
            np.abs(img[..., None, :].astype(int) - palette[None, None])
            .sum(-1)
            .argmin(-1)
        )
        truth = lab > 0  # 0 = padding beyond the image: not ground truth
        agree = (recovered[truth] == lab[truth]).mean()
        assert agree > 0.95  # only resampled edges may blur


def test_crops_come_from_labelled_images_only():
    labelled = Pair(
        "a", np.full((40, 40, 3), 200, np.uint8), np.ones((40, 40), np.uint8)
    )
    empty = Pair(
        "b", np.zeros((40, 40, 3), np.uint8), np.zeros((40, 40), np.uint8)
    )
    settings = TrainSettings(input_height=32, input_width=32, seed=0)
    sampler = CropSampler([labelled, empty], settings, ignore_zero=True)
    assert sampler.weights.tolist() == [1.0, 0.0]
    for _ in range(10):
        img, _ = sampler.crop()
        assert (img == 200).all()
    with pytest.raises(ThinsegError, match="all 0"):
        CropSampler([empty], settings, ignore_zero=True)


def test_validation_crops_are_a_grid_and_capped():
    pair = Pair(
        "a", np.zeros((64, 96, 3), np.uint8), np.ones((64, 96), np.uint8)
    )
    x, y = validation_crops([pair], 32, 32, limit=100)
    assert x.shape == (6, 32, 32, 3) and y.shape == (6, 32, 32)
    x, _ = validation_crops([pair], 32, 32, limit=4)
    assert len(x) == 4
