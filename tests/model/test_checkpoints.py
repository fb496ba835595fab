import json
import os

import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.model import weights as wt
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.model.vgg_unet import build, preprocess

H, W = 32, 64


@pytest.fixture(scope="module")
def model():
    m = build(ModelConfig(6, H, W))
    # non-trivial BN statistics, so a lost weight would show
    for ly in m.layers:
        if ly.name.startswith("batch_normalization"):
            g, b, mean, var = ly.get_weights()
            ly.set_weights([g * 1.5, b + 0.1, mean + 0.2, var * 2])
    return m


def predict(m):
    rng = np.random.default_rng(0)
    x = preprocess(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))[None]
    return np.asarray(m.predict_on_batch(x))


def test_round_trip_and_latest(tmp_path, model):
    prefix = tmp_path / "run" / "vgg_unet_1"
    config = ModelConfig(6, H, W, trained_on={"n_images": 3})
    ck.write_config(prefix, config)
    for epoch in (0, 1, 10):
        ck.save_checkpoint(prefix, epoch, model)
    data = json.loads(ck.config_path(prefix).read_text())
    assert {
        k: data[k]
        for k in (
            "model_class",
            "n_classes",
            "input_height",
            "input_width",
            "output_height",
            "output_width",
        )
    } == {
        "model_class": "vgg_unet",
        "n_classes": 6,
        "input_height": H,
        "input_width": W,
        "output_height": H // 2,
        "output_width": W // 2,
    }
    assert ck.find_latest_checkpoint(prefix) == f"{prefix}.10"
    loaded, cfg, path = ck.load_model(prefix)
    assert path == f"{prefix}.10" and cfg.trained_on == {"n_images": 3}
    np.testing.assert_allclose(predict(loaded), predict(model), atol=1e-6)
    # by folder, by config file, and a given epoch
    assert ck.load_model(tmp_path / "run")[2] == f"{prefix}.10"
    assert ck.load_model(ck.config_path(prefix), epoch=1)[2] == f"{prefix}.1"


def test_finder_follows_keras_segmentation(tmp_path):
    prefix = str(tmp_path / "p")
    for name in (
        "p.2",
        "p.11.index",
        "p.11.data-00000-of-00001",
        "p.x",
        "p_config.json",
        ".p.12.abc.part",
        "p.3.weights.h5",
    ):
        (tmp_path / name).write_bytes(b"x")
    assert ck.list_checkpoints(prefix) == {
        2: f"{prefix}.2",
        11: f"{prefix}.11",
    }
    assert ck.find_latest_checkpoint(prefix) == f"{prefix}.11"
    assert ck.find_latest_checkpoint(tmp_path / "none") is None


def test_remove_checkpoints_for_overwrite(tmp_path):
    prefix = tmp_path / "p"
    for name in (
        "p.0",
        "p.7",
        "p.9.index",
        "p.9.data-00000-of-00001",
        "p_config.json",
        "other.3",
    ):
        (tmp_path / name).write_bytes(b"x")
    ck.remove_checkpoints(prefix)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other.3",
        "p_config.json",
    ]


def test_crash_during_save_keeps_previous_latest(tmp_path, model, monkeypatch):
    prefix = tmp_path / "p"
    ck.write_config(prefix, ModelConfig(6, H, W))
    ck.save_checkpoint(prefix, 0, model)

    def killed(src, dst):
        raise KeyboardInterrupt  # the process dies before the rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(prefix, 1, model)
    monkeypatch.undo()
    assert ck.find_latest_checkpoint(prefix) == f"{prefix}.0"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "p.0",
        "p_config.json",
    ]
    ck.load_model(prefix)  # still loadable


def test_keras3_weights_file_and_float16(tmp_path, model):
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    fresh = build(ModelConfig(6, H, W))
    wt.load_weights(fresh, path)
    np.testing.assert_allclose(predict(fresh), predict(model), atol=1e-6)
    half = tmp_path / "half.3"
    half.write_bytes(wt.encode_hdf5_weights(model, np.float16))
    assert half.stat().st_size < 0.6 * len(wt.encode_hdf5_weights(model))
    wt.load_weights(fresh, half)
    np.testing.assert_allclose(predict(fresh), predict(model), atol=2e-2)


def test_wrong_class_count_names_the_layer(tmp_path, model):
    other = build(ModelConfig(4, H, W))
    path = tmp_path / "four.0"
    path.write_bytes(wt.encode_hdf5_weights(other))
    with pytest.raises(ThinsegError) as info:
        wt.load_weights(model, path)
    msg = str(info.value)
    assert "layer 19 (head_conv" in msg and "trained for 4 classes" in msg
    assert "\n" not in msg


def test_other_architecture_and_nan(tmp_path, model):
    import h5py

    small = tmp_path / "small.0"
    with h5py.File(small, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0"]
        g.create_dataset("dense/kernel:0", data=np.zeros((3, 3)))
    with pytest.raises(ThinsegError, match="another architecture"):
        wt.load_weights(model, small)
    nan = build(ModelConfig(6, H, W))
    k, b = nan.layers[1].get_weights()
    nan.layers[1].set_weights([k * np.nan, b])
    path = tmp_path / "nan.0"
    path.write_bytes(wt.encode_hdf5_weights(nan))
    with pytest.raises(ThinsegError, match="NaN"):
        wt.load_weights(model, path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "not a weights file"),
        (b"not hdf5 at all", "not a weights file"),
    ],
)
def test_bad_weights_files(tmp_path, model, content, message):
    path = tmp_path / "p.0"
    path.write_bytes(content)
    with pytest.raises(ThinsegError, match=message):
        wt.load_weights(model, path)


def test_truncated_weights_file(tmp_path, model):
    data = wt.encode_hdf5_weights(model)
    path = tmp_path / "p.0"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ThinsegError, match="p.0"):
        wt.load_weights(model, path)


@pytest.mark.parametrize(
    "config, message",
    [
        ("{", "not a readable JSON"),
        ("[]", "JSON object"),
        ('{"model_class": "vgg_unet"}', "lacks"),
        (
            '{"model_class": "vgg_unet", "n_classes": "six", '
            '"input_height": 64, "input_width": 64}',
            "n_classes",
        ),
        (
            '{"model_class": "vgg_unet", "n_classes": 6, '
            '"input_height": 100000, "input_width": 64}',
            "input_height: 100000 is greater than the maximum of 4096",
        ),
        (
            '{"model_class": "vgg_unet", "n_classes": 6, '
            '"input_height": 100, "input_width": 64}',
            "input_height: 100 is not a multiple of 32",
        ),
        (
            '{"model_class": "vgg_unet", "n_classes": true, '
            '"input_height": 64, "input_width": 64}',
            "n_classes: True is not of type 'integer'",
        ),
        (
            '{"model_class": "fcn_8", "n_classes": 6, '
            '"input_height": 64, "input_width": 64}',
            "unknown model_class",
        ),
        (
            '{"model_class": "vgg_unet", "n_classes": 6, "input_height": 64, '
            '"input_width": 64, "output_height": 64}',
            "output_height",
        ),
        (
            '{"model_class": "vgg_unet", "n_classes": 6, "input_height": 64, '
            '"input_width": 64, "scheme": {"classes": 3}}',
            "class scheme",
        ),
    ],
)
def test_bad_configs(tmp_path, config, message):
    (tmp_path / "p_config.json").write_text(config)
    with pytest.raises(ThinsegError, match=message):
        ck.read_config(tmp_path / "p")


def test_missing_things(tmp_path):
    with pytest.raises(ThinsegError, match="no such checkpoint config"):
        ck.load_model(tmp_path / "p")
    ck.write_config(tmp_path / "p", ModelConfig(6, H, W))
    with pytest.raises(ThinsegError, match="no weights"):
        ck.load_model(tmp_path / "p")
    with pytest.raises(ThinsegError, match="holds no"):
        ck.resolve_prefix(tmp_path / "p_config.json").parent.joinpath(
            "x"
        ).mkdir() or ck.resolve_prefix(tmp_path / "x")


def test_float16_keeps_arrays_that_would_overflow(tmp_path, model):
    big = build(ModelConfig(6, H, W))
    bn = big.get_layer("decoder1_bn")
    g, b, mean, var = bn.get_weights()
    bn.set_weights([g, b, mean, var + 1e6])  # beyond float16's 65504
    path = tmp_path / "big.0"
    path.write_bytes(wt.encode_hdf5_weights(big, np.float16))
    fresh = build(ModelConfig(6, H, W))
    wt.load_weights(fresh, path)  # no infinities
    np.testing.assert_allclose(
        fresh.get_layer("decoder1_bn").get_weights()[3], var + 1e6
    )


# -- the one rule for checkpoints that exist ---------------------------------
def _existing(folder, epochs=(0, 1), config=None):
    prefix = folder / "P"
    ck.write_config(prefix, config or ModelConfig(6, 64, 64))
    for epoch in epochs:
        (folder / f"P.{epoch}").write_bytes(b"")
    return prefix


def test_plan_for_a_new_prefix_or_none(tmp_path):
    config = ModelConfig(6, 64, 64)
    assert ck.plan_checkpoints(None, config) == ck.CheckpointPlan(None)
    plan = ck.plan_checkpoints(tmp_path / "new", config)
    assert (plan.start_epoch, plan.resume_from, plan.replace) == (
        0,
        None,
        False,
    )


def test_existing_checkpoints_are_refused_in_the_callers_words(tmp_path):
    prefix = _existing(tmp_path)
    config = ModelConfig(6, 64, 64)
    with pytest.raises(ThinsegError, match=r"already exist \(pick one\)"):
        ck.plan_checkpoints(prefix, config, choices="pick one")
    # a config alone counts as existing checkpoints
    only_config = _existing(tmp_path / "c", epochs=())
    with pytest.raises(ThinsegError, match="already exist"):
        ck.plan_checkpoints(only_config, config, auto_resume=True)


def test_resume_and_overwrite(tmp_path):
    prefix = _existing(tmp_path, epochs=(0, 1, 4))
    config = ModelConfig(6, 64, 64)
    plan = ck.plan_checkpoints(prefix, config, auto_resume=True)
    assert plan.start_epoch == 5 and plan.resume_from.endswith("P.4")
    assert not plan.replace
    plan = ck.plan_checkpoints(prefix, config, overwrite=True)
    assert plan.start_epoch == 0 and plan.replace
    with pytest.raises(ThinsegError, match="cannot resume with 7 at 64x64"):
        ck.plan_checkpoints(prefix, ModelConfig(7, 64, 64), auto_resume=True)


def test_mixed_precision_models_save_float32_checkpoints(tmp_path, model):
    """A model computing in bfloat16 keeps float32 variables: its
    checkpoint is the float32 keras-segmentation layout, and loads into a
    float32 model with the very same weights."""
    from napari_thinseg.model.vgg_unet import compute_dtype, rebuild

    config = ModelConfig(6, H, W)
    mixed = rebuild(model, config, H, W, "bfloat16")
    assert compute_dtype(mixed) == "bfloat16"
    prefix = tmp_path / "mixed"
    ck.write_config(prefix, config)
    path = ck.save_checkpoint(prefix, 0, mixed)
    stored = wt.read_hdf5_weights(path)
    assert [name for name, _ in stored] == [
        ly.name for ly in wt.weight_layers(model)
    ]
    assert {a.dtype for _, arrays in stored for a in arrays} == {
        np.dtype(np.float32)
    }
    loaded, _, _ = ck.load_model(prefix)
    assert compute_dtype(loaded) == "float32"
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_shipped_model_of_a_scheme_is_found_by_its_class_names():
    # the Train tab starts from it; the preview takes its features
    from napari_thinseg.schemes import SANDSTONE, SEED, ClassScheme, PetroClass
    from napari_thinseg.strokes.preview import features_model_prefix

    assert ck.shipped_model_of(SEED.names) == "default"
    assert ck.shipped_model_of(SANDSTONE.names) == "sandstone"
    other = ClassScheme(
        "two", (PetroClass(1, "a", "#ff0000"), PetroClass(2, "b", "#00ff00"))
    )
    assert ck.shipped_model_of(other.names) is None
    assert features_model_prefix(SEED) == ck.model_prefix("default")
    assert features_model_prefix(other) == ck.model_prefix("sandstone")
    assert ck.model_prefix("default") == ck.default_model_prefix()
