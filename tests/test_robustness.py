"""Every bad input and fault of docs/robustness.md, through the CLI.

Each case runs ``thinseg`` in-process (``cli.main``) and checks the exit
status, that stderr is one line naming the file and the problem, and that
no file the user had was changed. Predictions use the shipped default model.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tracemalloc

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_thinseg.cli import main
from napari_thinseg.dataset.folders import Pair, export_dataset
from napari_thinseg.dataset.synth import synthetic_sandstone, to_seed_labels
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging import atomic
from napari_thinseg.imaging import files as tio
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.model import keras_archive as ka
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.model.vgg_unet import build
from napari_thinseg.progress import run

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (40, 60, 3), dtype=np.uint8)


def cli(capsys, *args):
    """Run ``thinseg`` in-process: (exit status, stdout, stderr)."""
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(result, *words, status=2):
    code, _, err = result
    assert code == status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- images ------------------------------------------------------------------
def _write_case(path, case):
    """Write the image of ``case`` to ``path``; return the RGB it should
    read as (None where the case is refused)."""
    if case == "rgba":
        iio.imwrite(path, np.dstack([RGB, np.full(RGB.shape[:2], 255, "u1")]))
    elif case == "rgb16":
        # Pillow cannot write 16-bit RGB PNGs; OpenCV (a test dependency) can
        cv2 = pytest.importorskip("cv2")
        cv2.imwrite(str(path), (RGB.astype(np.uint16) * 257)[..., ::-1])
    elif case == "gray16":
        iio.imwrite(path, RGB[..., 0].astype(np.uint16) * 257)
    elif case == "grayfloat":
        tifffile.imwrite(path, RGB[..., 0].astype(np.float32) / 255)
    elif case == "1x1":
        iio.imwrite(path, RGB[:1, :1])
    elif case == "3x3":
        iio.imwrite(path, RGB[:3, :3])
    elif case == "small":
        iio.imwrite(path, RGB[:10, :12])
    elif case == "four_channel_tiff":
        tifffile.imwrite(
            path,
            RNG.integers(0, 256, (40, 60, 4), dtype=np.uint8),
            photometric="minisblack",
            planarconfig="contig",
        )
    elif case == "rgb_planar_tiff":
        tifffile.imwrite(
            path,
            np.moveaxis(RGB, -1, 0),
            photometric="rgb",
            planarconfig="separate",
        )
    elif case == "truncated":
        iio.imwrite(path, RGB)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "jpeg_as_png":
        path.write_bytes(iio.imwrite("<bytes>", RGB, extension=".jpg"))
    elif case == "zero_bytes":
        path.write_bytes(b"")
    else:  # pragma: no cover
        raise AssertionError(case)


IMAGE_CASES = {
    # case: (file name, refused with these words, or None)
    "rgba": ("a.png", None),
    "rgb16": ("a.png", None),
    "gray16": ("a.png", None),
    "grayfloat": ("a.tif", None),
    "1x1": ("a.png", ("a.png", "1x1 pixels, too small")),
    "3x3": ("a.png", None),
    "small": ("a.png", None),
    "four_channel_tiff": ("a.tif", ("a.tif", "4-channel TIFF", "save it")),
    "rgb_planar_tiff": ("a.tif", None),
    "truncated": ("a.png", ("a.png", "not a readable image")),
    "jpeg_as_png": ("a.png", None),
    "zero_bytes": ("a.png", ("a.png", "empty file (0 bytes)")),
}


@pytest.mark.parametrize("command", ["autolabel", "predict"])
@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
def test_image_cases(tmp_path, capsys, case, command):
    name, refused = IMAGE_CASES[case]
    src = tmp_path / "in dir é" / name
    src.parent.mkdir()
    _write_case(src, case)
    before = snapshot(tmp_path)
    out = tmp_path / "out"
    if command == "autolabel":
        args = ("autolabel", src, "--out", out)
    else:
        args = ("predict", "--input_path", src, "--output_path", f"{out}/")
    result = cli(capsys, *args)
    if refused:
        assert_refused(result, *refused)
        assert snapshot(tmp_path) == before  # nothing written or changed
        return
    assert result[0] == 0, result[2]
    labels = iio.imread(out / "a.png")
    expected_shape = tio.read_image(src).shape[:2]
    assert labels.dtype == np.uint8 and labels.shape == expected_shape
    assert labels.max() <= 5
    if case in ("rgba", "rgb16", "rgb_planar_tiff") and command == "autolabel":
        # the same pixels as the 8-bit RGB they were made from
        plain = tmp_path / "plain.png"
        iio.imwrite(plain, RGB)
        assert cli(capsys, "autolabel", plain, "--out", tmp_path / "p")[0] == 0
        np.testing.assert_array_equal(
            labels, iio.imread(tmp_path / "p/plain.png")
        )


def test_20000_square_png_and_compressed_tiffs_read(tmp_path):
    """A whole-slide 20000 x 20000 scan is read (Pillow's own bomb limit
    would refuse it); LZW and Deflate TIFFs decode (imagecodecs)."""
    big = np.zeros((20000, 20000), np.uint8)
    big[::1000, ::1000] = 200
    iio.imwrite(tmp_path / "scan.png", big)
    del big
    data = tio.read_image(tmp_path / "scan.png")
    assert data.shape == (20000, 20000) and data[1000, 2000] == 200
    del data
    for compression in ("lzw", "zlib"):
        path = tmp_path / f"{compression}.tif"
        tifffile.imwrite(path, RGB, compression=compression)
        np.testing.assert_array_equal(tio.read_image(path), RGB)


def test_sixteen_bit_and_float_images_keep_their_scale():
    """16-bit values scale by 65535, float [0, 1] as is: a mid-gray stays
    mid-gray whatever the file's depth."""
    from napari_thinseg.imaging.convert import rgb8

    gray = np.full((4, 4), 128, np.uint8)
    assert rgb8(gray.astype(np.uint16) * 257).max() == 128
    assert rgb8(gray.astype(np.float32) / 255).max() == 128
    # floats beyond [0, 1] are stretched over their range
    assert rgb8(np.array([[0.0, 1000.0]]))[0, 1, 0] == 255


def test_stack_is_labelled_and_predicted_plane_by_plane(tmp_path, capsys):
    stack = np.stack([np.full((40, 60), v, np.uint8) for v in (10, 120, 250)])
    src = tmp_path / "stack.tif"
    tifffile.imwrite(src, stack, photometric="minisblack")
    assert cli(capsys, "autolabel", src, "--out", tmp_path / "a")[0] == 0
    labels = tifffile.imread(tmp_path / "a/stack.tif")
    assert [int(p[0, 0]) for p in labels] == [1, 3, 5]
    code, out, err = cli(
        capsys,
        "predict",
        "--input_path",
        src,
        "--output_path",
        f"{tmp_path}/p/",
    )
    assert code == 0, err
    assert "stack.tif" in out
    predicted = tifffile.imread(tmp_path / "p/stack.tif")
    assert predicted.shape == (3, 40, 60) and predicted.dtype == np.uint8


def test_folder_without_images_and_missing_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty/notes.txt").write_text("x")
    assert_refused(
        cli(capsys, "autolabel", tmp_path / "empty", "--out", tmp_path / "o"),
        "empty",
        "folder holds no images",
    )
    assert_refused(
        cli(
            capsys,
            "predict",
            "--input_path",
            tmp_path / "nothing",
            "--output_path",
            tmp_path / "o",
        ),
        "nothing",
        "no such file or folder",
    )
    assert not (tmp_path / "o").exists()


def test_non_ascii_and_space_paths_round_trip(tmp_path, capsys):
    folder = tmp_path / "lame mince ü" / "échantillon 1"
    folder.mkdir(parents=True)
    iio.imwrite(folder / "grès 2.png", RGB)
    out = tmp_path / "sortie é"
    code, _, err = cli(
        capsys, "predict", "--input_path", folder, "--output_path", out
    )
    assert code == 0, err
    assert [p.name for p in out.iterdir()] == ["grès 2.png"]
    assert cli(capsys, "stats", out / "grès 2.png")[0] == 0


class _ConstantModel:
    """Stands in for a VGG-UNet: the same softmax everywhere (class 2)."""

    def __init__(self, config):
        self.config = config
        self.calls = 0

    def predict_on_batch(self, batch):
        self.calls += 1
        c = self.config
        out = np.zeros(
            (len(batch), c.output_height * c.output_width, c.n_classes),
            np.float32,
        )
        out[..., 2] = 1.0
        return out


def test_20000_square_prediction_stays_in_bounded_memory():
    """Tiles are blended one row of tiles at a time: beyond the class map
    itself (400 MB) the working memory is a strip as high as a tile and a
    batch, not the 6.4 GB of float probabilities (and weights) a
    whole-image buffer would take for 3 classes."""
    config = ModelConfig(n_classes=3, input_height=1024, input_width=1024)
    model = _ConstantModel(config)
    # a read-only view: the input costs no memory of its own
    image = np.broadcast_to(np.uint8(90), (20000, 20000))
    tracemalloc.start()
    try:
        result = run(predict_image(model, config, image, batch_size=8))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.labels.shape == (20000, 20000)
    assert result.labels[::997, ::997].min() == 2
    assert result.labels[::997, ::997].max() == 2
    labels_bytes = 20000 * 20000
    strip_bytes = 1024 * 20000 * (3 + 1) * 4  # probabilities + weights
    assert peak < labels_bytes + 2 * strip_bytes + 300e6, peak / 1e6
    assert peak < 1.5e9  # vs 6.4e9 for whole-image probabilities
    n = len(range(0, 20000 - 1024, 768)) + 1  # tile starts per side: 26
    assert model.calls == n * -(-n // 8)  # batches of 8 along each row


def test_tiling_in_strips_matches_one_buffer():
    """The strip-wise blend gives the same classes as blending into one
    whole-image buffer (reference computed here the simple way)."""
    from napari_thinseg.inference import tiling
    from napari_thinseg.model.backend import tensorflow
    from napari_thinseg.model.vgg_unet import preprocess

    config = ModelConfig(n_classes=4, input_height=32, input_width=32)

    class Model:
        def predict_on_batch(self, batch):
            # a smooth function of the tile content: neighbours disagree
            m = batch.mean(axis=(1, 2, 3))[:, None, None]
            k = np.arange(4)[None, None, :]
            logits = np.cos(m / 20.0 + k) * np.ones((1, 256, 1))
            e = np.exp(logits)
            return (e / e.sum(-1, keepdims=True)).astype(np.float32)

    image = RNG.integers(0, 256, (90, 75, 3), dtype=np.uint8)
    got = run(predict_image(Model(), config, image, overlap=0.5))
    tf = tensorflow()
    rows = tiling.tile_starts(90, 32, 16)
    cols = tiling.tile_starts(75, 32, 16)
    acc = np.zeros((90, 75, 4), np.float32)
    wsum = np.zeros((90, 75, 1), np.float32)
    window = tiling.blend_weight(32, 32)[..., None]
    for y in rows:
        for x in cols:
            tile = preprocess(image[y : y + 32, x : x + 32])[None]
            out = Model().predict_on_batch(tile).reshape(1, 16, 16, 4)
            full = tf.image.resize(out, (32, 32), method="bilinear").numpy()
            acc[y : y + 32, x : x + 32] += full[0] * window
            wsum[y : y + 32, x : x + 32] += window
    np.testing.assert_array_equal(got.labels, (acc / wsum).argmax(-1))


# -- labels ------------------------------------------------------------------
@pytest.fixture
def pair_folders(tmp_path):
    """An image folder and an annotation folder with one good pair."""
    image, labels = synthetic_sandstone((64, 96), seed=3)
    (tmp_path / "img").mkdir()
    (tmp_path / "ann").mkdir()
    iio.imwrite(tmp_path / "img/a.png", image)
    iio.imwrite(tmp_path / "ann/a.png", to_seed_labels(labels))
    return tmp_path


def _train_args(root, *extra):
    return (
        "train",
        "--train_images",
        root / "img",
        "--train_annotations",
        root / "ann",
        "--checkpoints_path",
        root / "ck" / "m",
        "--input_height",
        "32",
        "--input_width",
        "32",
        "--epochs",
        "1",
        "--steps_per_epoch",
        "1",
        "--batch_size",
        "1",
        *extra,
    )


@pytest.mark.parametrize(
    "case, words",
    [
        ("too_large", ("ann/a.png", "label 9 >= n_classes 6")),
        ("negative", ("ann/a.tif", "negative label -1")),
        ("float", ("ann/a.tif", "labels must be integers, got float32")),
        ("all_zero", ("all 0 (unlabelled)", "nothing to learn")),
        ("shape", ("ann/a.png", "image 64x96 and labels 30x96 differ")),
        ("orphan_label", ("ann/b.png", "annotation without an image")),
        ("orphan_image", ("img/b.png", "no annotation of that name")),
    ],
)
def test_label_cases_refuse_training(pair_folders, capsys, case, words):
    root = pair_folders
    ann = root / "ann/a.png"
    labels = iio.imread(ann)
    if case == "too_large":
        iio.imwrite(ann, np.full_like(labels, 9))
    elif case == "negative":
        ann.unlink()
        tifffile.imwrite(root / "ann/a.tif", np.full(labels.shape, -1, "i2"))
    elif case == "float":
        ann.unlink()
        tifffile.imwrite(root / "ann/a.tif", np.full(labels.shape, 1.5, "f4"))
    elif case == "all_zero":
        iio.imwrite(ann, np.zeros_like(labels))
    elif case == "shape":
        iio.imwrite(ann, labels[:30])
    elif case == "orphan_label":
        shutil.copy(ann, root / "ann/b.png")
    elif case == "orphan_image":
        shutil.copy(root / "img/a.png", root / "img/b.png")
    before = snapshot(root)
    assert_refused(cli(capsys, *_train_args(root)), *words)
    assert snapshot(root) == before
    assert not (root / "ck").exists()
    if case != "all_zero":  # verify_dataset says the same, before training
        result = cli(
            capsys,
            "verify_dataset",
            "--images_path",
            root / "img",
            "--segs_path",
            root / "ann",
            "--n_classes",
            "6",
        )
        assert_refused(result, *words)


# -- models ------------------------------------------------------------------
CFG = ModelConfig(n_classes=3, input_height=32, input_width=32)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A checkpoint folder with a good 32x32, 3-class model ``good``."""
    folder = tmp_path_factory.mktemp("models")
    model = build(CFG)
    ck.write_config(folder / "good", CFG)
    ck.save_checkpoint(folder / "good", 1, model)
    return folder, model


def _copy_model(folder, dst, name):
    shutil.copy(folder / "good_config.json", dst / f"{name}_config.json")
    shutil.copy(folder / "good.1", dst / f"{name}.1")
    return dst / name


def _predict(capsys, tmp_path, model_path):
    image = tmp_path / "i.png"
    if not image.exists():
        iio.imwrite(image, RGB)
    return cli(
        capsys,
        "predict",
        "--checkpoints_path",
        model_path,
        "--input_path",
        image,
        "--output_path",
        tmp_path / f"predicted by {model_path.name}.png",
    )


def _edit_config(prefix, **changes):
    path = ck.config_path(prefix)
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    "case, words",
    [
        ("no_config", ("m_config.json", "no such checkpoint config")),
        ("wrong_type", ("m_config.json", "n_classes: 'three' is not of type")),
        (
            "absurd_size",
            ("input_height: 1000000 is greater than the maximum",),
        ),
        ("unknown_class", ("unknown model_class 'resnet50_unet'",)),
        ("truncated", ("m.1", "unreadable weights file")),
        ("zero_weights", ("m.1", "not a weights file")),
        ("class_count", ("m.1", "trained for 4 classes, the model has 3")),
        ("architecture", ("m.1", "another architecture")),
        ("nan", ("m.1", "NaN or infinite weights")),
        ("no_weights", ("no weights",)),
    ],
)
def test_model_cases(tiny, tmp_path, capsys, case, words):
    folder, model = tiny
    prefix = _copy_model(folder, tmp_path, "m")
    weights = tmp_path / "m.1"
    if case == "no_config":
        ck.config_path(prefix).unlink()
    elif case == "wrong_type":
        _edit_config(prefix, n_classes="three")
    elif case == "absurd_size":
        _edit_config(prefix, input_height=10**6)
    elif case == "unknown_class":
        _edit_config(prefix, model_class="resnet50_unet")
    elif case == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif case == "zero_weights":
        weights.write_bytes(b"")
    elif case == "class_count":
        other = build(ModelConfig(4, 32, 32))
        ck.save_checkpoint(prefix, 1, other)
    elif case == "architecture":
        import keras

        x = keras.Input((32, 32, 3))
        other = keras.Model(x, keras.layers.Conv2D(3, 3, padding="same")(x))
        ck.save_checkpoint(prefix, 1, other)
    elif case == "nan":
        broken = build(CFG)
        w = broken.get_weights()
        w[4][...] = np.nan
        broken.set_weights(w)
        ck.save_checkpoint(prefix, 1, broken)
    elif case == "no_weights":
        weights.unlink()
    iio.imwrite(tmp_path / "i.png", RGB)
    before = snapshot(tmp_path)
    assert_refused(_predict(capsys, tmp_path, prefix), *words)
    assert snapshot(tmp_path) == before


def test_nan_output_at_first_predict_is_refused():
    class Overflowing(_ConstantModel):
        def predict_on_batch(self, batch):
            return super().predict_on_batch(batch) * np.nan

    with pytest.raises(ThinsegError, match="NaN or infinite class prob"):
        run(predict_image(Overflowing(CFG), CFG, RGB))


def _lambda_archive(path):
    import keras

    x = keras.Input((32, 32, 3))
    y = keras.layers.Lambda(lambda t: t * 2.0)(x)
    keras.Model(x, keras.layers.Conv2D(3, 1)(y)).save(path)


def test_keras_archive_with_lambda_is_refused(tmp_path, capsys, monkeypatch):
    path = tmp_path / "shared by e-mail.keras"
    _lambda_archive(path)
    assert_refused(
        _predict(capsys, tmp_path, path),
        "shared by e-mail.keras",
        "holds a Lambda layer",
        "refused",
    )
    # without our own check Keras's safe_mode still refuses to run it
    monkeypatch.setattr(ka, "UNSAFE_LAYERS", set())
    monkeypatch.setattr(ka, "read_keras_config", lambda p: CFG)
    with pytest.raises(ThinsegError, match="cannot be loaded safely"):
        ka.load_keras_file(path)


def test_keras_archive_loads_into_our_architecture(tiny, tmp_path, capsys):
    _, model = tiny
    path = tmp_path / "m.keras"
    model.save(path)
    loaded, config, _ = ck.load_model(path)
    assert config.n_classes == 3 and config.input_height == 32
    assert loaded is not model
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert _predict(capsys, tmp_path, path)[0] == 0
    (tmp_path / "junk.keras").write_bytes(b"not a zip")
    assert_refused(
        _predict(capsys, tmp_path, tmp_path / "junk.keras"),
        "junk.keras",
        "not a readable .keras archive",
    )


# -- faults ------------------------------------------------------------------
def _pairs(n=3):
    out = []
    for k in range(n):
        image, labels = synthetic_sandstone((64, 96), seed=k)
        out.append(Pair(f"s{k}", image, to_seed_labels(labels)))
    return out


def test_disk_full_while_exporting_leaves_no_dataset(tmp_path, monkeypatch):
    calls = []
    real = atomic._write_file

    def full_disk(fd, data):
        calls.append(1)
        if len(calls) == 4:  # the second pair's annotation
            os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(atomic, "_write_file", full_disk)
    with pytest.raises(ThinsegError, match="No space left on device"):
        run(export_dataset(_pairs(), tmp_path / "ds"))
    assert not (tmp_path / "ds").exists()  # not even empty folders
    # into an existing dataset: the old files are kept as they were
    monkeypatch.setattr(atomic, "_write_file", real)
    run(export_dataset(_pairs(1), tmp_path / "ds"))
    before = snapshot(tmp_path / "ds")
    calls.clear()
    monkeypatch.setattr(atomic, "_write_file", full_disk)
    with pytest.raises(ThinsegError, match="No space"):
        run(export_dataset(_pairs(), tmp_path / "ds", overwrite=True))
    assert snapshot(tmp_path / "ds") == before
    assert not [p for p in (tmp_path / "ds").rglob(".*.part")]


def test_stop_during_export_leaves_no_dataset(tmp_path):
    gen = export_dataset(_pairs(), tmp_path / "ds")
    next(gen)
    next(gen)
    gen.close()  # the Stop button
    assert not (tmp_path / "ds").exists()


def test_export_into_read_only_folder(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: refuse as the kernel would

        def denied(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    try:
        result = cli(
            capsys,
            "synth",
            "--out",
            folder / "ds",
            "-n",
            "2",
            "--size",
            "64x96",
        )
        assert_refused(result, "ro", "Permission denied")
        with pytest.raises(ThinsegError, match="Permission denied"):
            atomic.atomic_write_text(folder / "x.csv", "a,b\n")
    finally:
        folder.chmod(0o755)
    assert list(folder.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path, capsys):
    src = tmp_path / "a.png"
    iio.imwrite(src, RGB)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"precious")
    for args in (
        ("autolabel", src, "--out", out),
        ("predict", "--input_path", src, "--output_path", out),
        ("colorize", out / "a.png", "--out", out),
    ):
        assert_refused(cli(capsys, *args), "already exists", "overwrite")
        assert (out / "a.png").read_bytes() == b"precious"
    assert cli(capsys, "autolabel", src, "--out", out, "--overwrite")[0] == 0
    assert iio.imread(out / "a.png").shape == (40, 60)


def test_out_of_memory_becomes_advice(pair_folders, capsys, monkeypatch):
    from napari_thinseg.training import loop as train_module

    class ResourceExhaustedError(Exception):
        """Named as TensorFlow's, raised where a too-large batch fails."""

    real_build = train_module.build

    def build_oom(*args, **kwargs):
        model = real_build(*args, **kwargs)

        def oom(*a, **k):
            raise ResourceExhaustedError("OOM when allocating tensor")

        model.train_on_batch = oom
        return model

    monkeypatch.setattr(train_module, "build", build_oom)
    result = cli(capsys, *_train_args(pair_folders, "--batch_size", "64"))
    assert_refused(result, "out of memory", "lower the batch size")


def test_internal_fault_exit_1_and_debug(tmp_path, capsys, monkeypatch):
    import importlib

    autolabel_module = importlib.import_module("napari_thinseg.autolabel.rule")

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(autolabel_module, "autolabel", bug)
    src = tmp_path / "a.png"
    iio.imwrite(src, RGB)
    result = cli(capsys, "autolabel", src, "--out", tmp_path / "o")
    assert_refused(result, "internal error", "a bug", "--debug", status=1)
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "autolabel", str(src), "--out", str(tmp_path / "o")])


def test_the_table_names_only_tests_that_exist():
    """docs/robustness.md: at least 30 cases, each naming tests that are
    in the suite."""
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).parents[1]
    text = (root / "docs/robustness.md").read_text(encoding="utf-8")
    rows = [ln for ln in text.splitlines() if re.match(r"\| \d+ \|", ln)]
    assert len(rows) >= 30
    names = {}
    for path in (root / "tests").rglob("test_*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names[path.name] = {
            n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
        }
    for row in rows:
        cell = row.split("|")[4]
        refs = re.findall(r"`([^`]+)`", cell)
        assert refs, row
        module = previous = None
        for ref in refs:
            if "::" in ref:
                # "`::name`" keeps the module of the reference before it
                module, ref = ref.split("::")
                module = module or previous
            previous = module
            assert module in names, (module, row)
            func = ref.lstrip(":").split("[")[0]
            assert func in names[module], (module, func)
