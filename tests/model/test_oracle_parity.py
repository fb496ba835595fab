"""Parity with keras-segmentation 0.3.0, the reference implementation.

Unmodified keras-segmentation runs on tf-keras in a subprocess (the
oracle, ``tests/oracle/kseg_oracle.py``) so that its ``keras`` alias never
meets our Keras 3. Everything is tiny (64 x 96 input, two synthetic thin
sections, one epoch of two steps) and the oracle's training run is shared
by the whole module.
"""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

if any(
    importlib.util.find_spec(name) is None
    for name in ("keras_segmentation", "tf_keras", "tensorflow")
):
    pytest.skip(
        "the keras-segmentation oracle (keras_segmentation, tf_keras) is "
        "not installed",
        allow_module_level=True,
    )

from napari_thinseg.errors import ThinsegError  # noqa: E402
from napari_thinseg.imaging.files import read_annotation, read_image  # noqa: E402
from napari_thinseg.imaging.resize import resize_bilinear
from napari_thinseg.inference.predict import (
    evaluate,
    predict_image,
    predict_resize_output,
)
from napari_thinseg.model import checkpoints as ck  # noqa: E402
from napari_thinseg.model import weights as wt  # noqa: E402
from napari_thinseg.model.vgg_unet import vgg_unet
from napari_thinseg.model.weights import weight_layers  # noqa: E402
from napari_thinseg.progress import run  # noqa: E402

ORACLE = Path(__file__).parents[1] / "oracle" / "kseg_oracle.py"
N_CLASSES = 6
H, W = 64, 96
ISSUE_PARAMS = 12_325_254  # 6 classes at 416 x 608, as the issue states
MAX_DIFF = 0.001  # fraction of pixels allowed to differ (measured: 0.0)


# -- helpers -----------------------------------------------------------------
def start_oracle(job: dict, path: Path) -> subprocess.Popen:
    path.write_text(json.dumps(job))
    return subprocess.Popen(
        [sys.executable, str(ORACLE), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_oracle(proc: subprocess.Popen) -> None:
    try:
        out, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the keras-segmentation oracle timed out")
    assert proc.returncode == 0, out[-4000:]


def thinseg(*args) -> None:
    exe = Path(sys.executable).with_name("thinseg")
    cmd = (
        [str(exe)]
        if exe.exists()
        else [
            sys.executable,
            "-m",
            "napari_thinseg",
        ]
    )
    proc = subprocess.run(
        [*cmd, *map(str, args)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def ours_class_map(model, config, path) -> np.ndarray:
    """Our class map at the model's output size (keras-segmentation's
    ``predict``)."""
    return predict_resize_output(model, config, read_image(path)).argmax(-1)


def differing(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.mean(a != b))


def one_line_error(excinfo) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    return msg


# -- fixtures ----------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("kseg_parity")
    ds = root / "dataset"
    thinseg(
        "synth", "--out", ds, "-n", 2, "--size", f"{H}x{W}", "--scheme", "seed"
    )
    images = ds / "images_prepped_train"
    annotations = ds / "annotations_prepped_train"
    names = sorted(p.stem for p in images.glob("*.png"))
    assert len(names) == 2
    # an image of another size, so that both sides resize it to the input
    from napari_thinseg.dataset.synth import synthetic_sandstone
    from napari_thinseg.imaging.files import write_png

    odd = write_png(
        root / "odd" / "odd.png", synthetic_sandstone((90, 140), seed=7)[0]
    )
    return {
        "root": root,
        "images": images,
        "annotations": annotations,
        "predict": [images / f"{names[0]}.png", odd],
    }


@pytest.fixture(scope="module")
def oracle(data):
    """One keras-segmentation training run (6 classes, 64 x 96) and, at
    the same time, a 4-class model at 416 x 608 saved in both formats."""
    root = data["root"] / "oracle"
    root.mkdir()
    (root / "ck").mkdir()
    (root / "ck4").mkdir()
    preds = [root / f"pred_{k}.npy" for k in range(len(data["predict"]))]
    job6 = {
        "n_classes": N_CLASSES,
        "input_height": H,
        "input_width": W,
        "summary": str(root / "summary6.json"),
        "train": {
            "train_images": str(data["images"]) + "/",
            "train_annotations": str(data["annotations"]) + "/",
            "checkpoints_path": str(root / "ck" / "kseg"),
            "epochs": 1,
            "steps_per_epoch": 2,
            "batch_size": 2,
        },
        "save_h5": str(root / "x.h5"),
        "predict": [
            {"inp": str(inp), "out": str(out)}
            for inp, out in zip(data["predict"], preds, strict=True)
        ],
        "evaluate": {
            "images": str(data["images"]) + "/",
            "annotations": str(data["annotations"]) + "/",
            "out": str(root / "eval.json"),
        },
    }
    job4 = {
        "n_classes": 4,
        "input_height": 416,
        "input_width": 608,
        "summary": str(root / "summary4.json"),
        "save_tf": str(root / "ck4" / "kseg4.0"),
        "save_h5": str(root / "x4.h5"),
    }
    procs = [
        start_oracle(job6, root / "job6.json"),
        start_oracle(job4, root / "job4.json"),
    ]
    for proc in procs:
        finish_oracle(proc)
    return {
        "root": root,
        "prefix": root / "ck" / "kseg",
        "h5": root / "x.h5",
        "tf4": root / "ck4" / "kseg4.0",
        "h5_4": root / "x4.h5",
        "summary6": json.loads((root / "summary6.json").read_text()),
        "summary4": json.loads((root / "summary4.json").read_text()),
        "eval": json.loads((root / "eval.json").read_text()),
        "preds": [np.load(p) for p in preds],
    }


@pytest.fixture(scope="module")
def loaded(oracle):
    """keras-segmentation's TF checkpoint, loaded by us."""
    return ck.load_model(oracle["prefix"])


# -- architecture ------------------------------------------------------------
def _layers(model):
    return [
        {"name": ly.name, "shapes": [list(w.shape) for w in ly.weights]}
        for ly in weight_layers(model)
    ]


def _assert_same_layers(ours, theirs):
    assert [ly["shapes"] for ly in ours] == [ly["shapes"] for ly in theirs]
    # the encoder keeps VGG16's names on both sides
    assert [ly["name"] for ly in ours if ly["name"].startswith("block")] == [
        ly["name"] for ly in theirs if ly["name"].startswith("block")
    ]


def test_layers_and_parameters_match_oracle_6_classes(oracle):
    theirs = oracle["summary6"]
    model = vgg_unet(N_CLASSES, H, W)
    assert model.count_params() == theirs["params"] == ISSUE_PARAMS
    assert list(model.output_shape) == theirs["output_shape"]
    assert theirs["output_shape"] == [None, (H // 2) * (W // 2), N_CLASSES]
    assert len(theirs["layers"]) == 19  # 10 VGG convs, 4 x (conv, BN), out
    _assert_same_layers(_layers(model), theirs["layers"])
    assert theirs["layers"][-1]["shapes"] == [[3, 3, 64, 6], [6]]


def test_issue_figure_at_416x608(oracle):
    """12,325,254 parameters for 6 classes at 416 x 608 (the network is
    fully convolutional, so the count does not depend on the input size);
    and a 4-class model at 416 x 608 equals the oracle's."""
    model6 = vgg_unet(N_CLASSES, 416, 608)
    assert model6.count_params() == ISSUE_PARAMS
    assert model6.output_shape == (None, 208 * 304, N_CLASSES)
    _assert_same_layers(_layers(model6), oracle["summary6"]["layers"])

    theirs = oracle["summary4"]
    model4 = vgg_unet(4, 416, 608)
    assert model4.count_params() == theirs["params"]
    assert theirs["params"] == ISSUE_PARAMS - 2 * (3 * 3 * 64 + 1)
    assert list(model4.output_shape) == theirs["output_shape"]
    _assert_same_layers(_layers(model4), theirs["layers"])


# -- keras-segmentation -> ours ----------------------------------------------
def test_kseg_tf_checkpoint_loads_into_ours(oracle, loaded, data):
    model, config, path = loaded
    # keras-segmentation's P.0.index / P.0.data-* and its own config
    assert Path(path) == oracle["prefix"].with_name("kseg.0")
    assert Path(path + ".index").is_file()
    assert (config.n_classes, config.input_height, config.input_width) == (
        N_CLASSES,
        H,
        W,
    )
    theirs = oracle["preds"][0]
    ours = ours_class_map(model, config, data["predict"][0])
    assert ours.shape == theirs.shape == (H // 2, W // 2)
    assert differing(ours, theirs) <= MAX_DIFF
    assert len(np.unique(theirs)) >= 3  # a trained map, not a constant one


def test_resized_image_class_map_matches_kseg(oracle, loaded, data):
    """An image that is not the input size is resized by both sides."""
    model, config, _ = loaded
    ours = ours_class_map(model, config, data["predict"][1])
    assert differing(ours, oracle["preds"][1]) <= MAX_DIFF


def test_input_resize_within_one_grey_level_of_opencv(data):
    cv2 = pytest.importorskip("cv2")
    image = read_image(data["predict"][1])  # 90 x 140
    for h, w in ((H, W), (416, 608)):
        ours = resize_bilinear(image, h, w).astype(int)
        theirs = cv2.resize(image, (w, h)).astype(int)  # kseg's resize
        assert np.abs(ours - theirs).max() <= 1


def test_input_resize_is_opencv_exact(data):
    """Downscaling, keras-segmentation's usual case, is bit-exact."""
    cv2 = pytest.importorskip("cv2")
    image = read_image(data["predict"][1])
    for h, w in ((H, W), (32, 64), (45, 70)):  # 45 x 70: exact halving
        assert np.array_equal(
            resize_bilinear(image, h, w), cv2.resize(image, (w, h))
        )


def test_resize_prediction_is_kseg_map_at_image_size(oracle, loaded, data):
    model, config, _ = loaded
    image = read_image(data["predict"][0])
    labels = run(predict_image(model, config, image, mode="resize")).labels
    assert labels.shape == image.shape[:2] == (H, W)
    # each output pixel covers 2 x 2 image pixels
    expected = np.repeat(np.repeat(oracle["preds"][0], 2, 0), 2, 1)
    assert differing(labels, expected) <= MAX_DIFF


def test_kseg_evaluate_numbers_match(oracle, loaded, data):
    model, config, _ = loaded
    pairs = [
        (p.stem, read_image(p), read_annotation(data["annotations"] / p.name))
        for p in sorted(data["images"].glob("*.png"))
    ]
    ours = run(evaluate(model, config, pairs, mode="resize"))
    theirs = oracle["eval"]
    for key in ("frequency_weighted_IU", "mean_IU"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-9), key
    assert np.allclose(
        ours["class_wise_IU"], theirs["class_wise_IU"], rtol=0, atol=1e-9
    )
    assert len(ours["class_wise_IU"]) == N_CLASSES
    assert theirs["frequency_weighted_IU"] > 0


def test_legacy_keras2_hdf5_without_extension_loads_into_ours(
    oracle, data, tmp_path
):
    """tf-keras ``save_weights("x.h5")``, renamed to ``P.<epoch>`` as
    standalone Keras <= 2.3 wrote it."""
    import h5py

    with h5py.File(oracle["h5"], "r") as f:
        assert "layer_names" in f.attrs  # the Keras 2 layout
    prefix = tmp_path / "legacy"
    shutil.copy(
        oracle["prefix"].with_name("kseg_config.json"), f"{prefix}_config.json"
    )
    shutil.copy(oracle["h5"], f"{prefix}.3")
    model, config, path = ck.load_model(prefix)
    assert path == f"{prefix}.3"
    ours = ours_class_map(model, config, data["predict"][0])
    assert differing(ours, oracle["preds"][0]) <= MAX_DIFF


# -- ours -> keras-segmentation ----------------------------------------------
@pytest.fixture(scope="module")
def ours_saved(oracle, loaded, data):
    """Our checkpoints P.2, P.9 (keras-segmentation's weights) and P.10
    (its weights with another classifier), read back by the oracle."""
    model, config, _ = loaded
    root = data["root"] / "ours"
    prefix = root / "thinseg"
    ck.write_config(prefix, config)
    ck.save_checkpoint(prefix, 2, model)
    ck.save_checkpoint(prefix, 9, model)
    # P.10: same network, classifier weights perturbed, so that loading
    # any other epoch gives another class map
    other = vgg_unet(N_CLASSES, H, W)
    other.set_weights(model.get_weights())
    last = weight_layers(other)[-1]
    kernel, bias = last.get_weights()
    rng = np.random.default_rng(0)
    kernel = kernel + rng.normal(0, 2 * kernel.std(), kernel.shape)
    last.set_weights([kernel.astype(np.float32), bias])
    ck.save_checkpoint(prefix, 10, other)

    job = {
        "n_classes": N_CLASSES,
        "input_height": H,
        "input_width": W,
        "find_latest": {
            "checkpoints_path": str(prefix),
            "out": str(root / "latest.json"),
            "load": True,
        },
        "predict": {
            "inp": str(data["predict"][0]),
            "out": str(root / "pred.npy"),
        },
    }
    finish_oracle(start_oracle(job, root / "job.json"))
    return {
        "prefix": prefix,
        "model": other,
        "config": config,
        "latest": json.loads((root / "latest.json").read_text())["latest"],
        "pred": np.load(root / "pred.npy"),
    }


def test_kseg_finds_our_latest_epoch(ours_saved, oracle):
    prefix = ours_saved["prefix"]
    # our config holds keras-segmentation's keys with its values
    kseg = json.loads(
        oracle["prefix"].with_name("kseg_config.json").read_text()
    )
    ours = json.loads(ck.config_path(prefix).read_text())
    assert {k: ours[k] for k in kseg} == kseg
    assert ours_saved["latest"] == f"{prefix}.10"  # numerically, not "9"
    assert ck.find_latest_checkpoint(prefix) == f"{prefix}.10"
    assert sorted(ck.list_checkpoints(prefix)) == [2, 9, 10]


def test_our_checkpoint_loads_in_kseg_same_class_map(ours_saved, oracle, data):
    model, config, path = ck.load_model(ours_saved["prefix"])
    assert path == f"{ours_saved['prefix']}.10"
    inp = data["predict"][0]
    theirs = ours_saved["pred"]
    ours = ours_class_map(model, config, inp)
    direct = ours_class_map(ours_saved["model"], config, inp)
    assert np.array_equal(ours, direct)  # our round trip is lossless
    assert differing(ours, theirs) <= MAX_DIFF
    # the oracle read epoch 10, not keras-segmentation's own weights
    assert differing(theirs, oracle["preds"][0]) > 0.05


# -- another class count -----------------------------------------------------
def test_other_class_count_fails_with_one_line_error(oracle, loaded, tmp_path):
    model, _, _ = loaded
    last = weight_layers(model)[-1].name
    before = model.get_weights()
    # a 4-class TF checkpoint under a 6-class config
    prefix = tmp_path / "mixed"
    shutil.copy(
        oracle["prefix"].with_name("kseg_config.json"), f"{prefix}_config.json"
    )
    for f in oracle["tf4"].parent.glob("kseg4.0.*"):
        shutil.copy(f, tmp_path / f.name.replace("kseg4", "mixed"))
    with pytest.raises(ThinsegError) as excinfo:
        ck.load_model(prefix)
    msg = one_line_error(excinfo)
    # the model load_model builds: its classifier's name (auto-numbered
    # names differ between models, fixed ones do not)
    m = re.search(
        r"layer 19 \((\w+); layer_with_weights-18 in the file\)", msg
    )
    assert m, msg
    assert re.sub(r"_\d+$", "", m.group(1)) == re.sub(r"_\d+$", "", last)
    assert "trained for 4 classes, the model has 6" in msg
    assert "mixed.0" in msg

    # and the legacy HDF5 layout, renamed P.<epoch>
    legacy = tmp_path / "legacy4.1"
    shutil.copy(oracle["h5_4"], legacy)
    with pytest.raises(ThinsegError) as excinfo:
        wt.load_weights(model, legacy)
    msg = one_line_error(excinfo)
    assert f"layer 19 ({last};" in msg
    assert "trained for 4 classes, the model has 6" in msg
    assert "(3, 3, 64, 4)" in msg and "(3, 3, 64, 6)" in msg

    # every layer is checked before any is set: nothing was half-loaded
    after = model.get_weights()
    assert all(
        np.array_equal(a, b) for a, b in zip(before, after, strict=True)
    )


def test_our_4_class_model_rejects_6_class_kseg_checkpoint(oracle):
    with pytest.raises(ThinsegError) as excinfo:
        wt.load_weights(vgg_unet(4, H, W), str(oracle["prefix"]) + ".0")
    msg = one_line_error(excinfo)
    assert "trained for 6 classes, the model has 4" in msg
    assert "layer_with_weights-18 in the file" in msg
