import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from napari_thinseg.autolabel.rule import autolabel
from napari_thinseg.colorize import colorize, match_colors
from napari_thinseg.schemes import SANDSTONE, SEED

PACKAGED = (
    Path(__file__).parents[2] / "src/napari_thinseg/data/seed/sandstone_2.png"
)


def thinseg(*args, cwd=None):
    """Run the installed command as a user would."""
    exe = Path(sys.executable).with_name("thinseg")
    cmd = (
        [str(exe)]
        if exe.exists()
        else [sys.executable, "-m", "napari_thinseg"]
    )
    return subprocess.run(
        [*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


def assert_bad_input(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "in put"  # a space in the path
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        iio.imwrite(
            folder / f"{name}.png",
            rng.integers(0, 256, (20, 30, 3), dtype=np.uint8),
        )
    return folder


def test_autolabel_folder(images, tmp_path):
    out = tmp_path / "out"
    proc = thinseg("autolabel", images, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "labelled 2 image(s)" in proc.stdout
    for name in ("a", "b"):
        labels = iio.imread(out / f"{name}.png")
        assert labels.dtype == np.uint8
        assert np.array_equal(
            labels, autolabel(iio.imread(images / f"{name}.png"))
        )


def test_twelve_bit_tiffs_are_scaled_and_said_so(tmp_path):
    """Issue 12: 0-4080 in a uint16 TIFF gave 100 % class 1, silently."""
    import tifffile

    gray8 = iio.imread(PACKAGED)[..., :3].mean(-1).astype(np.uint8)
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "cam.tif", gray8.astype(np.uint16) * 16)
    out = tmp_path / "out"
    proc = thinseg("autolabel", folder, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert (
        "note: cam.tif: 12-bit data in a 16-bit image: 0..4095 scaled to "
        "0..255" in proc.stdout
    )
    labels = iio.imread(out / "cam.png")
    assert (labels == autolabel(gray8)).mean() > 0.97
    # 8-bit files say nothing
    proc = thinseg("autolabel", PACKAGED, "--out", tmp_path / "o8")
    assert proc.returncode == 0 and "note:" not in proc.stdout


def test_pixel_size_travels_from_the_photo_to_stats(tmp_path):
    """Issue 12: pixel size from the file, no typing: a TIFF at
    2.5 um/px, auto-labelled, measured in micrometres and mm2."""
    import tifffile

    folder = tmp_path / "in"
    folder.mkdir()
    rgb = iio.imread(PACKAGED)[..., :3]
    tifffile.imwrite(
        folder / "cam.tif",
        rgb,
        photometric="rgb",
        resolution=(4000, 4000),
        resolutionunit="CENTIMETER",
    )
    out = tmp_path / "labels"
    assert thinseg("autolabel", folder, "--out", out).returncode == 0
    proc = thinseg("stats", out)
    assert proc.returncode == 0, proc.stderr
    h, w = rgb.shape[:2]
    assert f"({h * w * 2.5**2 / 1e6:.4g} mm2 at 2.5 um/px)" in proc.stdout
    assert "phi" in proc.stdout
    # given, the flag wins
    proc = thinseg("stats", out, "--pixel_size_um", "5")
    assert "at 5 um/px" in proc.stdout


def test_autolabel_real_thin_section_equals_seed_rule(tmp_path):
    from skimage.color import rgb2gray
    from skimage.filters import gaussian

    proc = thinseg("autolabel", PACKAGED, "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr
    labels = iio.imread(tmp_path / "sandstone_2.png")
    rgb = iio.imread(PACKAGED)[..., :3] / 255.0
    smooth = gaussian(rgb2gray(rgb), sigma=1.0)
    ref = 1 + sum(
        (smooth > t).astype(np.uint8) for t in (0.25, 0.4, 0.6, 0.75)
    )
    assert (labels == ref).mean() >= 0.999


def test_autolabel_options(images, tmp_path):
    proc = thinseg(
        "autolabel",
        images / "a.png",
        "--out",
        tmp_path,
        "--method",
        "multiotsu",
        "--classes",
        "3",
        "--sigma",
        "0",
    )
    assert proc.returncode == 0, proc.stderr
    assert set(np.unique(iio.imread(tmp_path / "a.png"))) <= {1, 2, 3}
    proc = thinseg(
        "autolabel",
        images / "b.png",
        "--out",
        tmp_path,
        "--thresholds",
        "0.5",
        "--method",
        "epoxy",
    )
    assert proc.returncode == 0, proc.stderr
    assert set(np.unique(iio.imread(tmp_path / "b.png"))) <= {1, 2, 3}


def test_autolabel_refuses_existing_output(images, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"keep me")
    proc = thinseg("autolabel", images, "--out", out)
    assert_bad_input(proc, "a.png", "already exists")
    assert (out / "a.png").read_bytes() == b"keep me"
    assert not (out / "b.png").exists()  # checked before any work
    proc = thinseg("autolabel", images, "--out", out, "--overwrite")
    assert proc.returncode == 0
    assert iio.imread(out / "a.png").ndim == 2


def test_two_photos_of_one_stem_are_refused_before_any_work(images, tmp_path):
    # the Folders tab refuses the same (_napari/predict/test_widget_folders)
    iio.imwrite(images / "a.tif", np.zeros((20, 30, 3), np.uint8))
    out = tmp_path / "out"
    proc = thinseg("autolabel", images, "--out", out)
    assert_bad_input(proc, "a.", "outputs would collide")
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    "setup, words",
    [
        (
            lambda d: (d / "x.png").write_text("not an image"),
            ["x.png", "not a readable image"],
        ),
        (
            lambda d: iio.imwrite(d / "x.png", np.zeros((1, 1, 3), np.uint8)),
            ["x.png", "1x1"],
        ),
        (lambda d: (d / "x.png").write_bytes(b""), ["x.png", "empty"]),
    ],
)
def test_autolabel_bad_files(tmp_path, setup, words):
    setup(tmp_path)
    proc = thinseg("autolabel", tmp_path / "x.png", "--out", tmp_path / "o")
    assert_bad_input(proc, *words)


def test_bad_arguments_are_one_line(images, tmp_path):
    assert_bad_input(
        thinseg(
            "autolabel", images, "--out", tmp_path, "--thresholds", "0.6,0.4"
        ),
        "increase",
    )
    assert_bad_input(
        thinseg("autolabel", tmp_path / "missing.png", "--out", tmp_path),
        "no such file",
    )
    assert_bad_input(
        thinseg("autolabel", images, "--out", "/proc/thinseg-out"),
        "cannot create folder",
    )
    assert_bad_input(thinseg("frobnicate"), "invalid choice")
    assert_bad_input(
        thinseg("synth", "--out", tmp_path, "--size", "big"), "HxW"
    )


def test_colorize_with_and_without_image(images, tmp_path):
    labels_dir = tmp_path / "labels"
    assert thinseg("autolabel", images, "--out", labels_dir).returncode == 0
    plain = thinseg("colorize", labels_dir, "--out", tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    labels = iio.imread(labels_dir / "a.png")
    assert np.array_equal(
        iio.imread(tmp_path / "plain/a.png"), colorize(labels, SEED)
    )
    matched = thinseg(
        "colorize", labels_dir, "--out", tmp_path / "m", "--image", images
    )
    assert matched.returncode == 0, matched.stderr
    scheme = match_colors(labels, iio.imread(images / "a.png"), SEED)
    assert np.array_equal(
        iio.imread(tmp_path / "m/a.png"), colorize(labels, scheme)
    )


def test_colorize_bad_partner(images, tmp_path):
    labels_dir = tmp_path / "labels"
    thinseg("autolabel", images / "a.png", "--out", labels_dir)
    iio.imwrite(tmp_path / "a.png", np.zeros((5, 5, 3), np.uint8))
    proc = thinseg(
        "colorize",
        labels_dir / "a.png",
        "--out",
        tmp_path / "o",
        "--image",
        tmp_path / "a.png",
    )
    assert_bad_input(proc, "a.png", "differ in size")
    proc = thinseg(
        "colorize",
        labels_dir / "a.png",
        "--out",
        tmp_path / "o",
        "--image",
        tmp_path / "labels",
    )
    assert proc.returncode == 0  # a folder: matched by name


def test_synth_writes_a_dataset(tmp_path):
    from napari_thinseg.schemes import ClassScheme

    proc = thinseg(
        "synth",
        "--out",
        tmp_path,
        "-n",
        "3",
        "--size",
        "64x96",
        "--seed",
        "5",
        "--test-fraction",
        "0.34",
    )
    assert proc.returncode == 0, proc.stderr
    train = sorted((tmp_path / "images_prepped_train").iterdir())
    test = sorted((tmp_path / "annotations_prepped_test").iterdir())
    assert len(train) == 2 and len(test) == 1
    img = iio.imread(train[0])
    assert img.shape == (64, 96, 3)
    ann = iio.imread(tmp_path / "annotations_prepped_train" / train[0].name)
    assert set(np.unique(ann)) <= set(SANDSTONE.ids)
    assert ClassScheme.load(tmp_path / "classes.json") == SANDSTONE
    again = thinseg(
        "synth",
        "--out",
        tmp_path,
        "-n",
        "3",
        "--size",
        "64x96",
        "--seed",
        "5",
        "--test-fraction",
        "0.34",
    )
    assert_bad_input(again, "already exists")


def test_autolabel_stack_tiff_labels_every_plane(tmp_path):
    import tifffile

    stack = np.stack([np.full((8, 9), v, np.uint8) for v in (10, 120, 250)])
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    proc = thinseg(
        "autolabel", tmp_path / "stack.tif", "--out", tmp_path / "o"
    )
    assert proc.returncode == 0, proc.stderr
    labels = tifffile.imread(tmp_path / "o" / "stack.tif")
    assert labels.shape == (3, 8, 9)
    assert [int(p[0, 0]) for p in labels] == [1, 3, 5]
