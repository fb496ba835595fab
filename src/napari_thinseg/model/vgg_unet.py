"""The VGG-UNet, layer for layer keras-segmentation 0.3.0's ``vgg_unet``.

Built with Keras 3's functional API: the VGG16 encoder up to
``block4_pool`` (keras-segmentation builds block 5 too, but nothing uses it,
so its model does not contain it), then the UNet decoder of
``keras_segmentation.models.unet._unet``; the output is the class
probabilities at half the input resolution, flattened to
``(batch, output_height * output_width, n_classes)`` as keras-segmentation
has it. 12,325,254 parameters for 6 classes at 416 x 608.

The network sees RGB minus the ImageNet means (keras-segmentation's
"sub_mean" preprocessing); a plane + crossed polars model sees both
photos side by side (6 channels, the means subtracted from each), which
changes only the first convolution. It is fully convolutional but for the final
flattening, so :func:`rebuild` makes it at any other input size (and
precision) with the same weights, and :func:`inference_function` wraps
such a copy for tiled prediction. TensorFlow / Keras are imported inside
the functions, so importing this module is cheap.
"""

from __future__ import annotations

import numpy as np

from ..errors import ThinsegError
from ..imaging.convert import views8
from .backend import dtype_policy, tensorflow
from .config import MODEL_CLASS, ModelConfig
from .weights import assign_weights, read_hdf5_weights, weight_layers

IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
VGG16_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)


def vgg_unet(
    n_classes: int,
    input_height: int = 416,
    input_width: int = 608,
    encoder_weights: str | None = None,
    input_channels: int = 3,
):
    """Build the VGG-UNet.

    Parameters
    ----------
    n_classes : int
        Output classes, 0 (unlabelled) included, as keras-segmentation counts.
    input_height, input_width : int
        Multiples of 32.
    encoder_weights : {None, "imagenet"}
        Random encoder, or ImageNet VGG16 (downloads once; needs internet).
    input_channels : int
        3 (an RGB photo), or 6 (plane + crossed polars side by side); only
        the first convolution's kernel depends on it.
    """
    # validates
    ModelConfig(n_classes, input_height, input_width, input_channels)
    tensorflow()
    import keras
    from keras import layers

    img_input = keras.Input(
        (input_height, input_width, input_channels), name="input_1"
    )
    x = img_input
    skips = []
    for block, (filters, n_conv) in enumerate(
        [(64, 2), (128, 2), (256, 3), (512, 3)], start=1
    ):
        for k in range(1, n_conv + 1):
            x = layers.Conv2D(
                filters,
                3,
                activation="relu",
                padding="same",
                name=f"block{block}_conv{k}",
                # the first convolution sees the image itself: in 16 bits
                # its mean-subtracted pixels lose up to half a gray level
                # (bfloat16 agreed with float32 on 99.87 % of the pixels,
                # 99.97 % with this layer in float32, 0.5 % of the work)
                dtype="float32" if block == k == 1 else None,
            )(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
        skips.append(x)
    f1, f2, f3, f4 = skips

    # the decoder of keras_segmentation.models.unet._unet; stable names
    # (keras-segmentation's are Keras' counters) let Keras 3 weight files,
    # which match layers by name, load in any session
    o = f4
    for k, (filters, skip) in enumerate(
        ((512, f3), (256, f2), (128, f1), (64, None)), start=1
    ):
        o = layers.ZeroPadding2D(1, name=f"decoder{k}_pad")(o)
        o = layers.Conv2D(
            filters, 3, padding="valid", name=f"decoder{k}_conv"
        )(o)
        o = layers.BatchNormalization(name=f"decoder{k}_bn")(o)
        if skip is not None:
            o = layers.UpSampling2D(2, name=f"decoder{k}_up")(o)
            o = layers.Concatenate(axis=-1, name=f"decoder{k}_concat")(
                [o, skip]
            )
    # logits and softmax in float32 under a mixed precision policy too:
    # the class map is an argmax over probabilities that can be close, and
    # this head is a tiny share of the work
    o = layers.Conv2D(
        n_classes, 3, padding="same", name="head_conv", dtype="float32"
    )(o)
    o = layers.Reshape(
        (-1, n_classes),
        name="head_flatten",
        dtype="float32",
    )(o)
    o = layers.Activation("softmax", name="head_softmax", dtype="float32")(o)
    model = keras.Model(img_input, o, name=MODEL_CLASS)
    if encoder_weights == "imagenet":
        if input_channels != 3:
            raise ThinsegError(
                "ImageNet VGG16 takes RGB photos: start a plane + crossed "
                "polars model from random or from a shipped model"
            )
        load_imagenet_encoder(model)
    elif encoder_weights is not None:
        raise ThinsegError(
            f"encoder_weights must be None or 'imagenet', got "
            f"{encoder_weights!r}"
        )
    return model


def build(config: ModelConfig, encoder_weights: str | None = None):
    """The model a config describes."""
    return vgg_unet(
        config.n_classes,
        config.input_height,
        config.input_width,
        encoder_weights,
        config.input_channels,
    )


def compute_dtype(model) -> str:
    """The dtype the network's body computes in (``"float32"``,
    ``"bfloat16"`` or ``"float16"``); its variables are float32 always."""
    return model.get_layer("block1_conv2").compute_dtype


def rebuild(model, config: ModelConfig, height, width, precision):
    """The VGG-UNet of ``config`` built at ``height`` x ``width`` in
    ``precision`` (a resolved one, see
    :func:`~.backend.resolve_precision`), holding ``model``'s weights."""
    with dtype_policy(precision):
        twin = vgg_unet(
            config.n_classes, height, width, None, config.input_channels
        )
    copy_weights(model, twin)
    return twin


def copy_weights(source, target) -> None:
    """Put ``source``'s weights into ``target`` (the same network at any
    size or precision), every shape checked."""
    assign_weights(
        target,
        [(ly.name, ly.get_weights()) for ly in weight_layers(source)],
    )


def inference_function(model, batch: int, jit_compile: bool = False):
    """``model``'s class probabilities as one ``tf.function`` of a fixed
    batch shape (traced once): uint8 tiles ``(batch, h, w, channels)`` in,
    float32 softmax ``(batch, h, w, n_classes)`` out, brought from the
    network's half resolution to the tiles' by bilinear interpolation.
    Preprocessing and resizing run in the graph, next to the network;
    ``jit_compile`` compiles it with XLA."""
    tf = tensorflow()
    _, height, width, channels = model.input_shape
    n_classes = model.output_shape[-1]
    mean = tf.constant(input_mean(channels), tf.float32)

    @tf.function(
        input_signature=[
            tf.TensorSpec((batch, height, width, channels), tf.uint8)
        ],
        jit_compile=jit_compile,
    )
    def probabilities(tiles):
        out = model(tf.cast(tiles, tf.float32) - mean, training=False)
        out = tf.reshape(out, (batch, height // 2, width // 2, n_classes))
        return tf.image.resize(out, (height, width), method="bilinear")

    return probabilities


ENCODER_BLOCKS = 4


def encoder_layers(model, blocks: int = ENCODER_BLOCKS) -> list:
    """The layers of the encoder's first ``blocks`` VGG blocks."""
    return [
        ly
        for ly in model.layers
        if ly.name.startswith("block") and int(ly.name[5]) <= blocks
    ]


def freeze_encoder(model, blocks: int, norms: bool = False) -> None:
    """Keep the first ``blocks`` VGG blocks as they are in training, and
    with ``norms`` the decoder's batch normalisations (which then
    normalise with their learned statistics, as at prediction, instead
    of each small batch's).

    Every other layer is made trainable, so a model trained before with
    other frozen blocks (a shared, cached one) is set as asked. The model
    must be compiled afterwards for it to count.
    """
    tensorflow()
    import keras

    frozen = {id(ly) for ly in encoder_layers(model, blocks)}
    for layer in model.layers:
        norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = id(layer) not in frozen and not (norms and norm)


def load_imagenet_encoder(model) -> None:
    """Copy ImageNet VGG16 weights into the encoder (block1..block4)."""
    tensorflow()
    import keras

    try:
        path = keras.utils.get_file(
            VGG16_NOTOP_URL.rsplit("/", 1)[-1],
            VGG16_NOTOP_URL,
            cache_subdir="models",
        )
    except Exception as exc:  # no network, proxy, HTTP error...
        raise ThinsegError(
            "cannot download the ImageNet VGG16 weights "
            f"({type(exc).__name__}); you seem to be offline: train with a "
            "random encoder or from the default model instead"
        ) from None
    by_name = dict(read_hdf5_weights(path))
    for layer in encoder_layers(model):
        if layer.weights and layer.name in by_name:
            layer.set_weights(by_name[layer.name])


def input_mean(channels: int = 3) -> np.ndarray:
    """What "sub_mean" subtracts: the ImageNet RGB means, once per view."""
    return np.tile(np.asarray(IMAGENET_MEAN_RGB, np.float32), channels // 3)


def preprocess(image: np.ndarray) -> np.ndarray:
    """An image (RGB, or a stack of views; uint8 or any dtype) -> float32
    network input, "sub_mean"."""
    views = views8(image).astype(np.float32)
    return views - input_mean(views.shape[-1])
