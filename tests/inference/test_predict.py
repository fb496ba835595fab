import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.inference.predict import evaluate, predict_image
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.progress import run


class RedModel:
    """Stands in for the network: class 2 where red > 128, else class 1,
    at half resolution, as softmax-like probabilities."""

    def __init__(self, config):
        self.c = config
        self.calls = []

    def predict_on_batch(self, x):
        self.calls.append(x.shape)
        assert x.shape[1:] == (self.c.input_height, self.c.input_width, 3)
        red = x[:, ::2, ::2, 0] + 123.68
        probs = np.full((*red.shape, self.c.n_classes), 0.02, np.float32)
        probs[..., 1] = np.where(red > 128, 0.1, 0.8)
        probs[..., 2] = np.where(red > 128, 0.8, 0.1)
        probs /= probs.sum(-1, keepdims=True)
        return probs.reshape(len(x), -1, self.c.n_classes)


def half_red(h, w, edge):
    image = np.zeros((h, w, 3), np.uint8)
    image[:, :edge, 0] = 200
    image[:, edge:, 0] = 50
    return image


def test_tiles_are_seamless_at_full_size():
    config = ModelConfig(4, 32, 64)
    model = RedModel(config)
    image = half_red(150, 230, 101)  # not a multiple of any tile size
    gen = predict_image(model, config, image, batch_size=3)
    events = []
    pred = run(gen, events.append)
    assert events[-1].step == events[-1].total == len(events)
    assert sum(s[0] for s in model.calls) > 12  # many overlapping tiles
    assert pred.labels.shape == (150, 230) and pred.labels.dtype == np.uint8
    expected = np.where(np.arange(230) < 101, 2, 1)
    wrong = pred.labels != expected[None, :]
    # only the columns at the colour edge may differ (half-res output)
    assert not wrong[:, :99].any() and not wrong[:, 103:].any()


def test_small_image_is_padded_not_stretched():
    config = ModelConfig(4, 64, 64)
    model = RedModel(config)
    pred = run(predict_image(model, config, half_red(20, 30, 10)))
    assert pred.labels.shape == (20, 30)
    assert (pred.labels[:, :8] == 2).all() and (pred.labels[:, 12:] == 1).all()


def test_resize_mode_like_keras_segmentation():
    config = ModelConfig(4, 32, 32)
    pred = run(
        predict_image(
            RedModel(config),
            config,
            half_red(64, 96, 48),
            mode="resize",
            confidence=True,
        )
    )
    assert pred.labels.shape == (64, 96)
    assert (pred.labels[:, :40] == 2).all() and (
        pred.labels[:, 56:] == 1
    ).all()
    assert pred.confidence.shape == (64, 96)
    assert 0 < pred.confidence.min() <= pred.confidence.max() < 1


def test_confidence_is_one_minus_normalised_entropy():
    config = ModelConfig(4, 32, 32)
    pred = run(
        predict_image(
            RedModel(config), config, half_red(32, 32, 16), confidence=True
        )
    )
    p = np.array([0.02, 0.1, 0.8, 0.02]) / 0.94
    expected = 1 + (p * np.log(p)).sum() / np.log(4)
    np.testing.assert_allclose(pred.confidence[:, :12], expected, rtol=1e-4)


def test_ignore_zero_models_never_predict_zero():
    config = ModelConfig(4, 32, 32, trained_on={"ignore_zero": True})

    class ZeroModel(RedModel):
        def predict_on_batch(self, x):
            out = super().predict_on_batch(x)
            out[..., 0] = 5.0
            return out

    pred = run(predict_image(ZeroModel(config), config, half_red(32, 32, 16)))
    assert pred.labels.min() >= 1


def test_bad_requests():
    config = ModelConfig(4, 32, 32)
    model = RedModel(config)
    with pytest.raises(ThinsegError, match="unknown mode"):
        run(predict_image(model, config, half_red(8, 8, 4), mode="squash"))
    with pytest.raises(ThinsegError, match="stack"):
        run(predict_image(model, config, np.zeros((5, 8, 8), np.uint8)))
    with pytest.raises(ThinsegError, match="1x1"):
        run(predict_image(model, config, np.zeros((1, 1, 3), np.uint8)))


def test_evaluate_numbers_by_hand():
    config = ModelConfig(6, 32, 32)
    image = np.zeros((64, 64, 3), np.uint8)
    image[..., 0] = 200  # predicted class 2 everywhere
    truth = np.ones((64, 64), np.uint8)
    truth[:, :32] = 2
    result = run(evaluate(RedModel(config), config, [("a", image, truth)]))
    assert result["class_wise_IU"] == pytest.approx([0, 0, 0.5, 0, 0, 0])
    assert result["mean_IU"] == pytest.approx(0.5 / 6)
    assert result["frequency_weighted_IU"] == pytest.approx(0.25)
    full = result["full_resolution"]
    assert full["pixel_accuracy"] == pytest.approx(0.5)
    assert full["class_wise_IoU"][2] == pytest.approx(0.5)
    assert full["class_wise_IoU"][3] is None
    assert full["mean_IoU_present"] == pytest.approx(0.25)
    assert full["confusion_matrix"][1][2] == 64 * 32


# -- large tiles with a real (small, random) VGG-UNet -------------------------
@pytest.fixture(scope="module")
def small():
    """A random VGG-UNet at a 32 x 32 training size, and a thin section."""
    import keras

    from napari_thinseg.dataset.synth import synthetic_sandstone
    from napari_thinseg.model.vgg_unet import vgg_unet

    keras.utils.set_random_seed(0)
    image, _ = synthetic_sandstone((192, 256), seed=3)
    return vgg_unet(4, 32, 32), ModelConfig(4, 32, 32), image


def predict32(model, config, image, **kwargs):
    return run(
        predict_image(
            model,
            config,
            image,
            confidence=True,
            precision="float32",
            **kwargs,
        )
    )


INTERIOR = np.s_[32:-32, 32:-32]


def test_large_tiles_agree_with_training_size_tiles(small):
    """The training-size tiling (32 x 32 tiles, 25 % overlap, blended)
    against one large tile: the same classes in the interior but where
    32-pixel tiles lack the context a large tile has."""
    model, config, image = small
    classic = predict32(model, config, image, tile=32)
    large = predict32(model, config, image)
    agree = classic.labels[INTERIOR] == large.labels[INTERIOR]
    assert agree.mean() > 0.95
    assert set(np.unique(large.labels)) == set(np.unique(classic.labels))


def test_margin_tiles_equal_the_network_on_the_whole_image(small):
    """Tiles of 128 pixels with their margins give what one tile over the
    whole image gives: classes and probabilities."""
    model, config, image = small
    whole = predict32(model, config, image)  # one 192 x 256 tile
    events = []
    tiled = run(
        predict_image(
            model,
            config,
            image,
            confidence=True,
            precision="float32",
            tile=128,
        ),
        events.append,
    )
    assert events[0].step == 0 and "128x128 tiles" in events[0].message
    assert events[-1].step == events[-1].total == 2 * 3  # 2 x 3 tiles
    agree = tiled.labels[INTERIOR] == whole.labels[INTERIOR]
    assert agree.mean() > 0.995
    diff = np.abs(tiled.confidence - whole.confidence)[INTERIOR]
    assert diff.mean() < 0.005


def test_tile_option_is_checked(small):
    model, config, image = small
    for bad in (100, 0, (64,), (64, 8192), "big"):
        with pytest.raises(ThinsegError, match="multiple of 32"):
            run(predict_image(model, config, image, tile=bad))
    # stand-ins (and tf.keras models) run at their input size only
    stand_in = RedModel(config)
    with pytest.raises(ThinsegError, match="cannot be rebuilt"):
        run(predict_image(stand_in, config, image, tile=64))
    run(predict_image(stand_in, config, image, tile=32))


def test_networks_are_built_once_and_follow_the_weights(small, monkeypatch):
    from napari_thinseg.model import cache

    model, config, image = small
    built = []

    def counting_rebuild(*args):
        built.append(args[2:])
        return cache_rebuild(*args)

    cache_rebuild = cache.rebuild
    monkeypatch.setattr(cache, "rebuild", counting_rebuild)
    cache.inference_networks.clear()
    first = predict32(model, config, image, tile=64)
    again = predict32(model, config, image, tile=64)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert built == [(64, 64, "float32")]
    # weights changed in place (as training does): caught up, not rebuilt
    weights = model.get_weights()
    try:
        head = [w.copy() for w in weights]
        head[-1][:] = [0.0, 0.0, 0.0, 50.0]  # head bias: class 3 wins
        model.set_weights(head)
        changed = predict32(model, config, image, tile=64)
    finally:
        model.set_weights(weights)
    assert (changed.labels == 3).all()
    assert len(built) == 1
    np.testing.assert_array_equal(
        predict32(model, config, image, tile=64).labels, first.labels
    )


def test_test_time_augmentation(small):
    """The augmented prediction is the mean of the 8 flipped and turned
    predictions: on an input that they all leave unchanged it is itself
    unchanged by them (the plain one need not be: padding at the edges
    breaks the symmetry); it stays close to the plain one."""
    model, config, image = small
    flat = np.full((96, 96, 3), 140, np.uint8)
    tta = predict32(model, config, flat, tile=96, tta=True)
    for view in (
        np.rot90(tta.confidence),
        tta.confidence[::-1],
        tta.confidence[:, ::-1],
    ):
        np.testing.assert_allclose(view, tta.confidence, atol=1e-5)
    plain = predict32(model, config, image)
    tta = predict32(model, config, image, tta=True)
    agree = (tta.labels == plain.labels).mean()
    assert agree > 0.5, agree
    assert not np.array_equal(tta.confidence, plain.confidence)
    with pytest.raises(ThinsegError, match="tile mode"):
        predict32(model, config, image, mode="resize", tta=True)
    with pytest.raises(ThinsegError, match="fitted tiles"):
        predict32(model, config, image, tile=32, tta=True)
