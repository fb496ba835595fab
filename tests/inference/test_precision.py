"""Mixed precision: chosen from the hardware, honoured when asked, never
leaked into later builds, and bfloat16 class maps of the shipped default
model agree with float32 on real thin sections."""

from pathlib import Path

import numpy as np
import pytest

from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.files import read_image
from napari_thinseg.inference.metrics import (
    confusion_matrix,
    iou_from_confusion,
)
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.model import backend, cache
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.model.vgg_unet import compute_dtype, rebuild, vgg_unet
from napari_thinseg.progress import run
from napari_thinseg.training.loop import TrainSettings

ROOT = Path(__file__).parents[2]
SEED_DATA = ROOT.parent / "shared/data/seed-thin-sections"
PACKAGED = ROOT / "src/napari_thinseg/data/seed/sandstone_2.png"
SHARED_PHOTOS = ("1", "2", "3", "5", "6", "7", "10", "11")


# -- choosing ----------------------------------------------------------------
def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC\n"
        "flags\t\t: fpu sse2 avx512f avx512_bf16\n\nprocessor\t: 1\n"
    )
    assert backend.cpu_flags(str(info)) == {
        "fpu",
        "sse2",
        "avx512f",
        "avx512_bf16",
    }
    assert backend.cpu_flags(str(tmp_path / "none")) == frozenset()


@pytest.mark.parametrize(
    "flags, gpu, expected",
    [
        ({"avx2", "avx512_bf16"}, False, "bfloat16"),
        ({"avx2", "amx_bf16", "amx_tile"}, False, "bfloat16"),
        ({"avx2", "avx512f"}, False, "float32"),
        (set(), False, "float32"),
        ({"avx512_bf16"}, True, "float16"),
    ],
)
def test_auto_follows_the_hardware(monkeypatch, flags, gpu, expected):
    monkeypatch.setattr(backend, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(backend, "has_gpu", lambda: gpu)
    assert backend.resolve_precision("auto") == expected
    assert backend.resolve_precision("float32") == "float32"


def test_auto_picks_bfloat16_on_this_cpu():
    if not backend.cpu_flags() & backend.BF16_CPU_FLAGS or backend.has_gpu():
        pytest.skip("this machine has no native bfloat16 CPU (or a GPU)")
    assert backend.resolve_precision() == "bfloat16"


def test_unknown_precision_is_one_line():
    config = ModelConfig(4, 32, 32)
    image = np.zeros((8, 8, 3), np.uint8)
    for call in (
        lambda: backend.resolve_precision("half"),
        lambda: TrainSettings(precision="half"),
        lambda: run(predict_image(None, config, image, precision="half")),
    ):
        with pytest.raises(ThinsegError, match="unknown precision 'half'"):
            call()


# -- honoured, and not leaked -------------------------------------------------
@pytest.fixture(scope="module")
def small():
    """A random VGG-UNet at a 32 x 32 training size."""
    import keras

    keras.utils.set_random_seed(1)
    return vgg_unet(4, 32, 32), ModelConfig(4, 32, 32)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_the_asked_precision_is_the_built_one(small, monkeypatch, precision):
    model, config = small
    built = []

    def recording_rebuild(*args):
        built.append(rebuild(*args))
        return built[-1]

    monkeypatch.setattr(cache, "rebuild", recording_rebuild)
    cache.inference_networks.clear()
    image, _ = synthetic_sandstone((70, 90), seed=2)
    pred = run(predict_image(model, config, image, precision=precision))
    assert pred.labels.shape == (70, 90)
    (net,) = built
    assert net.input_shape == (None, 96, 96, 3)  # fitted to the image
    assert compute_dtype(net) == precision
    # softmax (and logits, and the first convolution) in float32 always
    for name in ("block1_conv1", "head_conv", "head_softmax"):
        assert net.get_layer(name).compute_dtype == "float32"
    assert all(w.dtype == "float32" for w in net.weights)
    assert net.output.dtype == "float32"


def test_no_policy_leaks_into_later_builds(small):
    import keras

    model, config = small
    twin = rebuild(model, config, 64, 64, "bfloat16")
    assert compute_dtype(twin) == "bfloat16"
    assert keras.config.dtype_policy().name == "float32"
    assert compute_dtype(vgg_unet(4, 32, 32)) == "float32"
    with pytest.raises(RuntimeError), backend.dtype_policy("float16"):
        raise RuntimeError("a failed build")
    assert keras.config.dtype_policy().name == "float32"


def test_resize_mode_stays_float32_for_a_bfloat16_model(small):
    model, config = small
    mixed = rebuild(model, config, 32, 32, "bfloat16")
    image, _ = synthetic_sandstone((50, 70), seed=4)
    got = run(predict_image(mixed, config, image, mode="resize"))
    want = run(predict_image(model, config, image, mode="resize"))
    np.testing.assert_array_equal(got.labels, want.labels)


# -- bfloat16 against float32 on real thin sections ---------------------------
@pytest.fixture(scope="module")
def default_model():
    model, config, _ = ck.load_model(ck.default_model_prefix())
    return model, config


def photos():
    out = [
        pytest.param(
            PACKAGED,
            PACKAGED.with_name("sandstone_2_annotation.png"),
            id="bundled sandstone_2",
        )
    ]
    for stem in SHARED_PHOTOS:
        out.append(
            pytest.param(
                SEED_DATA / "images" / f"{stem}.png",
                SEED_DATA / "annotations" / f"{stem}.png",
                id=f"seed {stem}",
            )
        )
    return out


def mean_iou(truth, pred, n):
    cm = confusion_matrix(truth.ravel(), pred.ravel(), n)
    return float(np.nanmean(iou_from_confusion(cm)[cm.sum(1) > 0]))


@pytest.mark.parametrize("image_path, annotation_path", photos())
def test_bfloat16_agrees_with_float32(
    default_model, image_path, annotation_path
):
    if not image_path.is_file():
        pytest.skip(f"{image_path} is absent (../shared not checked out)")
    model, config = default_model
    image = read_image(image_path)[..., :3]
    f32 = run(predict_image(model, config, image, precision="float32"))
    bf16 = run(predict_image(model, config, image, precision="bfloat16"))
    f32, bf16 = f32.labels, bf16.labels
    n = config.n_classes
    assert (bf16 == f32).mean() >= 0.995
    # mean IoU of the bfloat16 map, the float32 map taken as the truth
    assert 1.0 - mean_iou(f32, bf16, n) < 0.01
    # and against the published annotations, both ways about the same
    truth = read_image(annotation_path)
    assert abs(mean_iou(truth, bf16, n) - mean_iou(truth, f32, n)) < 0.01
