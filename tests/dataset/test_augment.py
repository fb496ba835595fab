"""Training crops and augmentation."""

import numpy as np
import pytest

from napari_thinseg.dataset.augment import CropSampler, validation_crops
from napari_thinseg.dataset.folders import Pair
from napari_thinseg.errors import ThinsegError
from napari_thinseg.training.loop import TrainSettings


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


def test_colour_casts_keep_blue_epoxy_blue_and_labels_aligned():
    """Colour augmentation changes how the rock looks, never where the
    classes are: blue epoxy stays blue (hue within the epoxy window's
    range), quartz stays pale, labels are untouched."""
    from skimage.color import rgb2hsv

    from napari_thinseg.dataset.augment import colour_cast

    rng = np.random.default_rng(0)
    epoxy = np.full((8, 8, 3), (45, 95, 205), np.float32)
    quartz = np.full((8, 8, 3), (225, 220, 210), np.float32)
    hues, changed = [], 0
    for _ in range(200):
        out = colour_cast(epoxy, rng)
        assert out.shape == epoxy.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 255
        h, s, _ = rgb2hsv(out[4:5, 4:5] / 255)[0, 0]
        hues.append(h)
        assert s > 0.3  # still saturated
        assert out[..., 2].mean() > out[..., 0].mean() + 60  # blue wins
        changed += not np.array_equal(out, epoxy)
        pale = colour_cast(quartz, rng)
        assert pale.mean() > 170
    assert changed == 200
    assert min(hues) > 0.55 and max(hues) < 0.72  # 198..259 degrees
    assert np.ptp(hues) > 0.02  # the hue does move


def test_colour_augmentation_in_batches_is_seeded():
    from napari_thinseg.dataset.augment import colour_matrix

    np.testing.assert_allclose(colour_matrix(0, 0, 1, 0), np.eye(3), atol=1e-9)
    rng = np.random.default_rng(4)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    pair = Pair("a", image, np.ones((64, 64), np.uint8))
    batches = []
    for colour in (False, True, True):
        settings = TrainSettings(
            input_height=32,
            input_width=32,
            batch_size=2,
            seed=1,
            colour_augment=colour,
        )
        batches.append(CropSampler([pair], settings, True).batch())
    plain, cast, again = batches
    np.testing.assert_array_equal(cast[0], again[0])  # same seed, same casts
    np.testing.assert_array_equal(cast[1], plain[1])  # labels untouched
    assert not np.array_equal(cast[0], plain[0])


def test_cast_copies_for_robustness_checks():
    from napari_thinseg.dataset.augment import cast_copy

    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(cast_copy(image, 0.0, 1.0), image)
    warm = cast_copy(image, 0.12, 1.0).astype(float)
    assert warm[..., 0].mean() > image[..., 0].mean()  # more red
    assert warm[..., 2].mean() < image[..., 2].mean()  # less blue
    dark = cast_copy(image, 0.0, 1.25)
    assert dark.dtype == np.uint8 and dark.mean() < image.mean()


def test_batches_are_the_pixels_minus_the_mean_unstretched():
    # a low-contrast photo (values 100..120): a training batch must hold
    # exactly what prediction feeds the network (pixel - ImageNet mean),
    # not the crop's own range stretched onto 0..255
    from napari_thinseg.model.vgg_unet import preprocess

    rng = np.random.default_rng(0)
    image = rng.integers(100, 121, (32, 32, 3)).astype(np.uint8)
    pair = Pair("flat", image, np.ones((32, 32), np.uint8))
    settings = TrainSettings(input_height=32, input_width=32, batch_size=1)
    x, _ = CropSampler([pair], settings, True).batch()
    np.testing.assert_array_equal(x[0], preprocess(image))
    assert x.min() > 100 - 124 and x.max() < 121 - 103


def test_stacked_views_are_augmented_alike():
    # plane + crossed polars side by side: a flip, turn or jitter moves
    # both views and the labels together, and a colour cast changes both
    # views alike (but for sensor noise, drawn for each photo)
    rng = np.random.default_rng(1)
    ppl = rng.integers(0, 256, (48, 48, 3)).astype(np.uint8)
    stack = np.concatenate([ppl, ppl], axis=-1)
    labels = rng.integers(1, 4, (48, 48)).astype(np.uint8)
    settings = TrainSettings(
        input_height=32,
        input_width=32,
        batch_size=4,
        augment=True,
    )
    pairs = [Pair("s", stack, labels)]
    x, y = CropSampler(pairs, settings, True).batch()
    assert x.shape == (4, 32, 32, 6) and y.shape == (4, 16 * 16)
    np.testing.assert_array_equal(x[..., :3], x[..., 3:])
    settings.colour_augment = True
    cast, cast_y = CropSampler(pairs, settings, True).batch()
    np.testing.assert_array_equal(cast_y, y)
    assert np.abs(cast - x).mean() > 3  # cast...
    assert np.abs(cast[..., :3] - cast[..., 3:]).mean() < 2  # ...alike
