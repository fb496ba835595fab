"""The VGG-UNet, layer for layer keras-segmentation 0.3.0's ``vgg_unet``.

Built with Keras 3's functional API: the VGG16 encoder up to
``block4_pool`` (keras-segmentation builds block 5 too, but nothing uses it,
so its model does not contain it), then the UNet decoder of
``keras_segmentation.models.unet._unet``; the output is the class
probabilities at half the input resolution, flattened to
``(batch, output_height * output_width, n_classes)`` as keras-segmentation
has it. 12,325,254 parameters for 6 classes at 416 x 608.

The network sees RGB minus the ImageNet means (keras-segmentation's
"sub_mean" preprocessing). TensorFlow / Keras are imported inside the
functions, so importing this module is cheap.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import asdict, dataclass, field

import numpy as np

from .classes import SEED, ClassScheme
from .errors import ThinsegError

# before TensorFlow is first imported: the TF backend, and no C++ log spam
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MODEL_CLASS = "vgg_unet"
IMAGENET_MEAN_RGB = (123.68, 116.779, 103.939)
VGG16_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
MAX_INPUT_SIDE = 4096


_TF_LOCK = threading.Lock()


def tensorflow():
    """Import TensorFlow once, safely next to napari, quietly; return it.

    Three traps, all met in practice:

    * TensorFlow's native code writes log lines (oneDNN, CUDA probing) to
      file descriptor 2 before any Python setting applies; they would bury
      the CLI's one-line messages, so stderr is closed while it starts.
    * TensorFlow carries its own copy of LLVM; Mesa's OpenGL drivers
      (napari's canvas under llvmpipe, radeonsi...) load the system one.
      A TensorFlow loaded after the canvas binds to Mesa's copy and crashes
      during import: ``RTLD_DEEPBIND`` makes its libraries use their own
      symbols first (process-wide while the import runs, then restored).
    * pybind11 remembers the thread state of the thread that first imports
      it; a napari ``thread_worker`` runs on a pooled thread whose state is
      dropped when the worker ends, and the next worker there would crash.
      So the import runs in a short-lived thread of its own.

    Raises
    ------
    ThinsegError
        TensorFlow is not installed or failed to load.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    outcome: dict = {}
    done = threading.Event()

    def load():
        flags = sys.getdlopenflags()
        deepbind = getattr(os, "RTLD_DEEPBIND", 0)  # glibc only
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            sys.setdlopenflags(flags | deepbind)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here
            outcome["tf"] = tf
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sys.setdlopenflags(flags)
            done.set()

    with _TF_LOCK:
        if "tensorflow" not in sys.modules:
            thread = threading.Thread(
                target=load, name="thinseg-import-tensorflow", daemon=True
            )
            thread.start()
            try:
                done.wait()
            except KeyboardInterrupt:
                # stderr is closed until the import ends: wait for it to
                # come back so that "interrupted" can be read
                done.wait()
                raise
            error = outcome.get("error")
            if isinstance(error, ImportError):
                raise ThinsegError(
                    f"TensorFlow could not be loaded ({error}); training and "
                    "prediction need the 'tensorflow' package"
                ) from None
            if error is not None:
                raise error
    return sys.modules["tensorflow"]


@dataclass
class ModelConfig:
    """What keras-segmentation writes to ``<checkpoints>_config.json``, and
    ours besides (class scheme, preprocessing, version, training data)."""

    n_classes: int
    input_height: int = 416
    input_width: int = 608
    model_class: str = MODEL_CLASS
    scheme: dict | None = None
    preprocessing: str = "sub_mean"
    version: str = ""
    trained_on: dict = field(default_factory=dict)

    def __post_init__(self):
        check_input_size(self.input_height, self.input_width)
        if not isinstance(self.n_classes, int) or not (
            2 <= self.n_classes <= 256
        ):
            raise ThinsegError(
                f"n_classes must be an integer in 2..256, got "
                f"{self.n_classes!r}"
            )
        if self.model_class != MODEL_CLASS:
            raise ThinsegError(
                f"unknown model_class {self.model_class!r} (this plugin "
                f"builds {MODEL_CLASS!r})"
            )
        if self.preprocessing != "sub_mean":
            raise ThinsegError(
                f"unknown preprocessing {self.preprocessing!r} (only "
                "'sub_mean' is supported)"
            )
        if not self.version:
            from . import __version__

            self.version = __version__

    @property
    def output_height(self) -> int:
        return self.input_height // 2

    @property
    def output_width(self) -> int:
        return self.input_width // 2

    @property
    def class_scheme(self) -> ClassScheme:
        """The scheme stored with the model; the seed scheme (or generic
        class names) when the checkpoint came without one."""
        if self.scheme:
            return ClassScheme.from_dict(self.scheme)
        if self.n_classes == SEED.n_classes:
            return SEED
        return generic_scheme(self.n_classes)

    def to_json_dict(self) -> dict:
        data = asdict(self)
        return {
            "model_class": data.pop("model_class"),
            "n_classes": data.pop("n_classes"),
            "input_height": data.pop("input_height"),
            "input_width": data.pop("input_width"),
            "output_height": self.output_height,
            "output_width": self.output_width,
            **data,
        }


def generic_scheme(n_classes: int) -> ClassScheme:
    """Classes 1..n-1 named "class k", coloured along a ramp."""
    import matplotlib

    from .classes import PetroClass, rgb_to_hex

    cmap = matplotlib.colormaps["tab20"]
    return ClassScheme(
        f"{n_classes} classes",
        tuple(
            PetroClass(
                k,
                f"class {k}",
                rgb_to_hex(np.array(cmap(k % 20)[:3]) * 255),
            )
            for k in range(1, n_classes)
        ),
    )


def check_input_size(height, width) -> None:
    """VGG pools four times and the decoder needs even sizes: multiples of
    32, as keras-segmentation asserts."""
    for name, v in (("input_height", height), ("input_width", width)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ThinsegError(f"{name} must be an integer, got {v!r}")
        if v < 32 or v % 32 or v > MAX_INPUT_SIDE:
            raise ThinsegError(
                f"{name} must be a multiple of 32 in 32..{MAX_INPUT_SIDE}, "
                f"got {v}"
            )


def vgg_unet(
    n_classes: int,
    input_height: int = 416,
    input_width: int = 608,
    encoder_weights: str | None = None,
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
    """
    ModelConfig(n_classes, input_height, input_width)  # validates
    tensorflow()
    import keras
    from keras import layers

    img_input = keras.Input((input_height, input_width, 3), name="input_1")
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
    o = layers.Conv2D(n_classes, 3, padding="same", name="head_conv")(o)
    o = layers.Reshape((-1, n_classes), name="head_flatten")(o)
    o = layers.Activation("softmax", name="head_softmax")(o)
    model = keras.Model(img_input, o, name=MODEL_CLASS)
    if encoder_weights == "imagenet":
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
    )


def encoder_layers(model) -> list:
    return [ly for ly in model.layers if ly.name.startswith("block")]


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
    from .checkpoints import read_hdf5_weights

    by_name = dict(read_hdf5_weights(path))
    for layer in encoder_layers(model):
        if layer.weights and layer.name in by_name:
            layer.set_weights(by_name[layer.name])


def weight_layers(model) -> list:
    """Layers that carry weights, in model order (what checkpoints hold)."""
    return [ly for ly in model.layers if ly.weights]


def preprocess(image: np.ndarray) -> np.ndarray:
    """RGB (uint8 or any image) -> float32 network input, "sub_mean"."""
    from .colormap import rgb8

    rgb = rgb8(image).astype(np.float32)
    return rgb - np.asarray(IMAGENET_MEAN_RGB, np.float32)
