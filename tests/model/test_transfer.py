"""Transfer to another class scheme: more, fewer and renamed classes."""

import numpy as np
import pytest

from napari_thinseg.dataset.folders import Pair
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.model.transfer import (
    HEAD,
    class_mapping,
    is_identity,
    transfer_weights,
)
from napari_thinseg.model.vgg_unet import vgg_unet
from napari_thinseg.model.weights import weight_layers
from napari_thinseg.progress import run
from napari_thinseg.schemes import SANDSTONE, SEED, ClassScheme, PetroClass
from napari_thinseg.training.loop import TrainSettings, train

MINERALS = ClassScheme(
    "minerals",
    (
        PetroClass(1, "pore", "#1f5fd0"),
        PetroClass(2, "Quartz", "#f3efe4"),  # case differs: the same class
        PetroClass(3, "plagioclase", "#e2c39b"),  # new
        PetroClass(4, "feldspar", "#d0b080"),  # id 3 in SANDSTONE
    ),
)


def test_mapping_is_by_name_with_unlabelled_kept():
    mapping = class_mapping(SANDSTONE, 11, MINERALS, 5)
    assert mapping == {0: 0, 1: 1, 2: 2, 4: 3}
    # classes beyond a model's output count are not in it
    assert class_mapping(SANDSTONE, 3, MINERALS, 5) == {0: 0, 1: 1, 2: 2}
    assert class_mapping(SEED, 6, SANDSTONE, 11) == {0: 0}
    assert is_identity(class_mapping(SEED, 6, SEED, 6), 6, 6)
    assert not is_identity(class_mapping(SANDSTONE, 11, MINERALS, 5), 11, 5)
    renamed = SEED.with_class(2, "siderite", "#aa7744")
    mapping = class_mapping(SEED, 6, renamed, 6)
    assert 2 not in mapping and mapping[3] == 3
    assert not is_identity(mapping, 6, 6)


def _head(model):
    return model.get_layer(HEAD).get_weights()


@pytest.mark.parametrize(
    ("target", "n_target", "kept"),
    [
        # a class added: the 11 others keep theirs
        (
            SANDSTONE.with_class(11, "glauconite", "#3a7d44"),
            12,
            {i: i for i in range(11)},
        ),
        (MINERALS, 5, {0: 0, 1: 1, 2: 2, 4: 3}),  # fewer, some moved
        (SANDSTONE.with_class(2, "quartz overgrowth", "#cfe0e6"), 11, None),
    ],
)
def test_body_copied_and_shared_classes_keep_their_outputs(
    target, n_target, kept
):
    source = vgg_unet(11, 64, 64)
    rng = np.random.default_rng(0)
    for layer in weight_layers(source):
        layer.set_weights(
            [rng.normal(size=w.shape).astype("float32") for w in layer.weights]
        )
    fresh = vgg_unet(n_target, 64, 64)
    fresh_kernel, fresh_bias = _head(fresh)
    done = transfer_weights(source, SANDSTONE, fresh, target)
    if kept is None:  # renamed class 2: everything else is kept
        kept = {i: i for i in range(11) if i != 2}
    assert done.kept == kept
    assert done.new == tuple(i for i in range(n_target) if i not in kept)
    for a, b in zip(weight_layers(source), weight_layers(fresh), strict=True):
        if a.name != HEAD:
            for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
                np.testing.assert_array_equal(x, y)
    src_kernel, src_bias = _head(source)
    kernel, bias = _head(fresh)
    for t in range(n_target):
        if t in kept:
            np.testing.assert_array_equal(
                kernel[..., t], src_kernel[..., kept[t]]
            )
            assert bias[t] == src_bias[kept[t]]
        else:  # the fresh initialisation, untouched
            np.testing.assert_array_equal(kernel[..., t], fresh_kernel[..., t])
            assert bias[t] == fresh_bias[t]
    line = done.describe(target)
    assert line.startswith("kept the output weights of ")
    if n_target == 5:
        assert line == (
            "kept the output weights of pore, Quartz, feldspar; "
            "new: plagioclase"
        )


def test_train_from_a_model_of_other_classes(tmp_path):
    """The base model's classes and the labels' differ: train() makes a
    network of the labels' scheme from the base (no refusal), trained on
    crops of the settings' size, and says what it kept."""
    base = vgg_unet(SEED.n_classes, 32, 64)
    config = ModelConfig(SEED.n_classes, 32, 64, scheme=SEED.to_dict())
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 80, 3), dtype=np.uint8)
    labels = rng.integers(0, 5, (48, 80)).astype(np.uint8)
    scheme = MINERALS
    settings = TrainSettings(
        input_height=64,
        input_width=64,
        epochs=1,
        steps_per_epoch=1,
        batch_size=1,
        precision="float32",
    )
    result = run(
        train(
            [Pair("a", image, labels)],
            scheme,
            settings,
            model=base,
            config=config,
            checkpoints_path=tmp_path / "m",
        )
    )
    assert result.config.n_classes == 5
    assert (result.config.input_height, result.config.input_width) == (64, 64)
    assert result.model.input_shape[1:3] == (64, 64)
    assert result.model.output_shape[-1] == 5
    assert result.transfer is not None and result.transfer.kept == {0: 0}
    assert result.config.trained_on["transfer"]["from_classes"] == 6
    assert result.config.class_scheme == scheme
    # the same classes: fine-tuned as it is, no transfer
    again = run(
        train(
            [Pair("a", image, labels)],
            scheme,
            settings,
            model=result.model,
            config=result.config,
        )
    )
    assert again.transfer is None and again.model is result.model
