"""Plane + crossed polars as one model input (6 channels): conversion,
the network, transfer from an RGB model, datasets, training and
prediction, on small synthetic fields."""

import json

import numpy as np
import pytest

from napari_thinseg.dataset.folders import (
    Pair,
    export_dataset,
    pairs_from_folders,
    read_dataset,
    xpl_dir,
)
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.convert import (
    describe_views,
    n_views,
    stack_views,
    views8,
)
from napari_thinseg.imaging.files import write_png
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED
from napari_thinseg.training.loop import TrainSettings, train


def field(shape=(64, 80), seed=0):
    """PPL, XPL and labels of a synthetic field where only crossed polars
    tell classes 2 and 3 apart (they look alike in plane light)."""
    rng = np.random.default_rng(seed)
    labels = np.ones(shape, np.uint8)
    labels[:, shape[1] // 3 :] = 2
    labels[:, 2 * shape[1] // 3 :] = 3
    ppl = np.where(labels[..., None] == 1, 60, 170).astype(np.uint8)
    ppl = np.repeat(ppl, 3, -1) + rng.integers(0, 8, (*shape, 3), np.uint8)
    xpl = np.where(labels[..., None] == 3, 220, 30).astype(np.uint8)
    xpl = np.repeat(xpl, 3, -1)
    return ppl, xpl, labels


def test_views_are_stacked_and_recognised():
    ppl, xpl, _ = field()
    stack = stack_views(ppl, xpl)
    assert stack.shape == (64, 80, 6) and stack.dtype == np.uint8
    np.testing.assert_array_equal(stack[..., 3:], xpl)
    assert (n_views(stack), n_views(ppl), n_views(ppl[..., 0])) == (2, 1, 1)
    assert n_views(np.zeros((5, 5, 4))) == 1  # RGBA is one photo
    assert views8(stack) is stack
    floats = views8(stack.astype(np.float32) / 255)
    np.testing.assert_array_equal(floats, stack)
    assert describe_views(stack).startswith("plane + crossed polars")
    assert describe_views(3) == "an RGB photo"
    with pytest.raises(ThinsegError, match="same field.*64x80 and 64x81"):
        stack_views(ppl, np.zeros((64, 81, 3), np.uint8))


def test_six_channel_config_and_network():
    config = ModelConfig(4, 64, 64, 6)
    assert config.n_views == 2
    assert config.to_json_dict()["input_channels"] == 6
    # an RGB config stays keras-segmentation's, key for key
    assert "input_channels" not in ModelConfig(4, 64, 64).to_json_dict()
    with pytest.raises(ThinsegError, match="input_channels"):
        ModelConfig(4, 64, 64, 4)
    back = ModelConfig.from_json_dict(
        json.loads(json.dumps(config.to_json_dict()))
    )
    assert back.input_channels == 6


@pytest.fixture(scope="module")
def trained_views(tmp_path_factory):
    """A 6-channel model transferred from a 3-channel one, 2 epochs."""
    from napari_thinseg.model.vgg_unet import vgg_unet

    ppl, xpl, labels = field()
    rgb = vgg_unet(SEED.n_classes, 64, 64)
    rgb_config = ModelConfig(SEED.n_classes, 64, 64, scheme=SEED.to_dict())
    prefix = tmp_path_factory.mktemp("views") / "m"
    settings = TrainSettings(
        input_height=64,
        input_width=64,
        epochs=1,
        steps_per_epoch=3,
        batch_size=2,
        optimizer="adam",
    )
    result = run(
        train(
            [Pair("f", stack_views(ppl, xpl), labels)],
            SEED,
            settings,
            checkpoints_path=prefix,
            model=rgb,
            config=rgb_config,
        )
    )
    return rgb, result, prefix


def test_rgb_model_transfers_to_six_channels(trained_views):
    rgb, result, _ = trained_views
    assert result.model.input_shape == (None, 64, 64, 6)
    assert result.transfer.channels == (3, 6)
    assert "input widened from 3 to 6" in result.transfer.describe(SEED)
    assert result.config.trained_on["transfer"]["from_channels"] == 3
    # the RGB filters once per view, halved: an XPL equal to the PPL sees
    # what the RGB model saw (checked on the untrained transfer)
    from napari_thinseg.model.transfer import transfer_weights
    from napari_thinseg.model.vgg_unet import vgg_unet

    six = vgg_unet(SEED.n_classes, 64, 64, None, 6)
    transfer_weights(rgb, SEED, six, SEED)
    k3, b3 = rgb.get_layer("block1_conv1").get_weights()
    k6, b6 = six.get_layer("block1_conv1").get_weights()
    np.testing.assert_allclose(k6[:, :, :3], k3 / 2)
    np.testing.assert_allclose(k6[:, :, 3:], k3 / 2)
    np.testing.assert_array_equal(b6, b3)
    image = np.random.default_rng(2).integers(0, 256, (1, 64, 64, 3))
    x3 = image.astype(np.float32) - 120
    x6 = np.concatenate([x3, x3], -1)
    np.testing.assert_allclose(
        six.predict_on_batch(x6), rgb.predict_on_batch(x3), atol=1e-4
    )


def test_six_channel_checkpoint_and_prediction(trained_views):
    _, result, prefix = trained_views
    model, config, _ = ck.load_model(prefix)
    assert config.input_channels == 6
    ppl, xpl, _ = field((70, 90), seed=3)
    stack = stack_views(ppl, xpl)
    a = run(predict_image(model, config, stack)).labels
    b = run(predict_image(result.model, result.config, stack)).labels
    assert a.shape == (70, 90)
    np.testing.assert_array_equal(a, b)
    assert run(
        predict_image(model, config, stack, mode="resize")
    ).labels.shape == (70, 90)
    with pytest.raises(ThinsegError, match="give the crossed-polarised"):
        run(predict_image(model, config, ppl))


def test_rgb_model_refuses_a_stack_in_plain_words():
    from napari_thinseg.model.vgg_unet import vgg_unet

    config = ModelConfig(SEED.n_classes, 64, 64)
    model = vgg_unet(SEED.n_classes, 64, 64)
    ppl, xpl, _ = field()
    with pytest.raises(ThinsegError, match="plane-polarised image alone"):
        run(predict_image(model, config, stack_views(ppl, xpl)))


def test_training_refuses_mixed_inputs():
    ppl, xpl, labels = field()
    pairs = [Pair("a", stack_views(ppl, xpl), labels), Pair("b", ppl, labels)]
    with pytest.raises(ThinsegError, match="b: an RGB photo, but a: plane"):
        run(train(pairs, SEED, TrainSettings(64, 64, 1, 1, 1)))


def test_dataset_folders_with_crossed_polars(tmp_path):
    ppl, xpl, labels = field()
    pairs = [
        Pair(f"field {k}", stack_views(ppl, xpl), labels) for k in range(3)
    ]
    run(export_dataset(pairs, tmp_path, SEED, test_fraction=0.34))
    assert xpl_dir(tmp_path / "images_prepped_train").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "annotations_prepped_test",
        "annotations_prepped_train",
        "classes.json",
        "images_prepped_test",
        "images_prepped_train",
        "images_xpl_prepped_test",
        "images_xpl_prepped_train",
    ]
    samples, _ = read_dataset(tmp_path)
    assert all(s.xpl_path is not None for s in samples)
    back = pairs_from_folders(
        tmp_path / "images_prepped_train",
        tmp_path / "annotations_prepped_train",
        tmp_path / "images_xpl_prepped_train",
    )
    assert len(back) == 2
    np.testing.assert_array_equal(back[0].image, pairs[0].image)
    # a photo without its twin, or a twin of another size: refused
    twins = tmp_path / "images_xpl_prepped_train"
    first = sorted(twins.iterdir())[0]
    write_png(first, np.zeros((10, 10, 3), np.uint8), overwrite=True)
    with pytest.raises(ThinsegError, match="same field"):
        pairs_from_folders(
            tmp_path / "images_prepped_train",
            tmp_path / "annotations_prepped_train",
            twins,
        )
    first.unlink()
    with pytest.raises(ThinsegError, match="no crossed-polarised image"):
        pairs_from_folders(
            tmp_path / "images_prepped_train",
            tmp_path / "annotations_prepped_train",
            twins,
        )
