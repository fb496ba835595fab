import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.model.vgg_unet import (
    inference_function,
    preprocess,
    rebuild,
    vgg_unet,
)
from napari_thinseg.model.weights import weight_layers
from napari_thinseg.schemes import SEED, generic_scheme


def test_vgg_unet_matches_keras_segmentation_figures():
    model = vgg_unet(6)  # 416 x 608, keras-segmentation's defaults
    assert model.count_params() == 12_325_254
    assert model.output_shape == (None, 208 * 304, 6)
    names = [ly.name for ly in weight_layers(model)]
    assert names[:10] == [
        "block1_conv1",
        "block1_conv2",
        "block2_conv1",
        "block2_conv2",
        "block3_conv1",
        "block3_conv2",
        "block3_conv3",
        "block4_conv1",
        "block4_conv2",
        "block4_conv3",
    ]
    assert len(names) == 19  # 10 encoder convs, 4 x (conv, BN), 1 head


def test_small_model_outputs_softmax_at_half_resolution():
    model = vgg_unet(4, 64, 96)
    x = preprocess(np.zeros((64, 96, 3), np.uint8))[None]
    out = np.asarray(model.predict_on_batch(x))
    assert out.shape == (1, 32 * 48, 4)
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


def test_preprocess_is_sub_mean_rgb():
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[..., 0] = 200
    x = preprocess(rgb)
    assert x.dtype == np.float32
    np.testing.assert_allclose(
        x[0, 0], [200 - 123.68, -116.779, -103.939], rtol=1e-6
    )
    # gray and 16-bit become 8-bit RGB first
    g16 = np.full((2, 2), 65535, np.uint16)
    np.testing.assert_allclose(
        preprocess(g16)[0, 0],
        [255 - 123.68, 255 - 116.779, 255 - 103.939],
        rtol=1e-6,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_classes": 6, "input_height": 100}, "multiple of 32"),
        ({"n_classes": 6, "input_width": 8192}, "multiple of 32"),
        ({"n_classes": 6, "input_height": "416"}, "integer"),
        ({"n_classes": 1}, "2..256"),
        ({"n_classes": 6, "model_class": "pspnet"}, "unknown model_class"),
        ({"n_classes": 6, "preprocessing": "divide"}, "preprocessing"),
    ],
)
def test_config_validation(kwargs, message):
    with pytest.raises(ThinsegError, match=message):
        ModelConfig(**kwargs)


def test_config_schemes():
    assert ModelConfig(6).class_scheme == SEED
    assert ModelConfig(6).output_height == 208
    g = ModelConfig(4).class_scheme
    assert g.ids == [1, 2, 3] and g.names[0] == "class 1"
    assert generic_scheme(30).max_id == 29


def test_imagenet_offline_is_a_clear_message(monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(ThinsegError, match="offline"):
        vgg_unet(6, 64, 64, encoder_weights="imagenet")


def test_rebuilt_at_another_size_with_the_same_weights():
    """Fully convolutional but for the flattening: the weights of a
    32 x 32 model make the network at 64 x 96, and its inference function
    (preprocessing, network, resize to the tile in one graph) gives the
    model's own softmax, brought to full resolution."""
    import tensorflow as tf

    model = vgg_unet(4, 32, 32)
    twin = rebuild(model, ModelConfig(4, 32, 32), 64, 96, "float32")
    assert twin.input_shape == (None, 64, 96, 3)
    for a, b in zip(model.get_weights(), twin.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (2, 64, 96, 3), dtype=np.uint8)
    probs = inference_function(twin, 2)(tiles).numpy()
    assert probs.shape == (2, 64, 96, 4) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    x = np.stack([preprocess(t) for t in tiles])
    half = np.asarray(twin.predict_on_batch(x)).reshape(2, 32, 48, 4)
    expected = tf.image.resize(half, (64, 96), method="bilinear").numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
