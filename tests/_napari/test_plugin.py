"""The manifest's reader, writer and samples, in a real viewer."""

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from napari.layers import Image, Labels
from napari.utils.colormaps import DirectLabelColormap

from napari_thinseg._napari.reader import napari_get_reader
from napari_thinseg.dataset.folders import Pair, export_dataset
from napari_thinseg.progress import run
from napari_thinseg.schemes import SANDSTONE, SEED


def test_manifest_validates():
    npe2 = Path(sys.executable).with_name("npe2")
    proc = subprocess.run(
        [str(npe2), "validate", "napari-thinseg"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_packaged_manifest_is_the_root_one():
    """The root napari.yaml is the source; the package carries a real copy
    (a symlink breaks on Windows checkouts and some zip installs)."""
    root = Path(__file__).parents[2]
    packaged = root / "src" / "napari_thinseg" / "napari.yaml"
    assert not packaged.is_symlink()
    assert packaged.read_bytes() == (root / "napari.yaml").read_bytes()


def test_manifest_python_names_resolve():
    """Every command of the manifest names an importable callable."""
    import importlib

    import yaml

    root = Path(__file__).parents[2]
    manifest = yaml.safe_load((root / "napari.yaml").read_text())
    commands = manifest["contributions"]["commands"]
    assert len(commands) == 14
    for command in commands:
        module, _, name = command["python_name"].partition(":")
        assert callable(getattr(importlib.import_module(module), name))


def test_manifest_contributions():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-thinseg")
    contrib = manifest.contributions
    assert {w.display_name for w in contrib.widgets} == {
        "Thin sections",
        "Point count",
        "Folders",
        "Whole slide",
        "Auto-label",
        "Petrographic colours",
        "Export annotations",
        "Train",
        "Predict",
        "Measure",
    }
    assert {s.display_name for s in contrib.sample_data} == {
        "Synthetic sandstone",
        "Sandstone (seed)",
    }
    assert contrib.readers and contrib.writers


def _dataset(root):
    rng = np.random.default_rng(3)
    pairs = [
        Pair(
            n,
            rng.integers(0, 256, (10, 12, 3), dtype=np.uint8),
            rng.integers(0, 11, (10, 12), dtype=np.uint8),
        )
        for n in ("p", "q")
    ]
    run(export_dataset(pairs, root, SANDSTONE, test_fraction=0.5))
    return pairs


def test_reader_claims_only_dataset_folders(tmp_path):
    assert napari_get_reader(str(tmp_path)) is None
    iio.imwrite(tmp_path / "x.png", np.zeros((4, 4), np.uint8))
    assert napari_get_reader(str(tmp_path / "x.png")) is None
    _dataset(tmp_path / "ds")
    assert napari_get_reader(str(tmp_path / "ds")) is not None


def test_napari_offers_the_reader_for_datasets_only(
    make_napari_viewer, tmp_path
):
    """Issue 12: with ``filename_patterns: ["*"]`` napari asked "Choose
    reader" on every image, with this plugin pre-selected, which then
    refused the file."""
    from napari.plugins._npe2 import get_readers

    viewer = make_napari_viewer()  # first: it sets up napari's plugins
    _dataset(tmp_path / "ds")
    tif = tmp_path / "657_image.tif"
    iio.imwrite(tif, np.zeros((8, 8, 3), np.uint8))

    def offered(path):
        return set(get_readers(path))

    assert "napari-thinseg" not in offered(str(tif))
    assert "napari-thinseg" not in offered(str(tmp_path / "x.png"))
    assert "napari-thinseg" in offered(str(tmp_path / "ds"))
    assert "napari-thinseg" in offered(str(tmp_path / "ds" / "classes.json"))
    viewer.open(str(tif), plugin=None)  # napari's reader, no question
    assert [ly.name for ly in viewer.layers] == ["657_image"]
    # napari's own reader takes folders too: the GUI asks which (its
    # dialog is what the API's MultipleReaderError stands for);
    # classes.json is offered beside napari's reader
    from napari.errors import MultipleReaderError

    with pytest.raises(MultipleReaderError, match="napari-thinseg"):
        viewer.open(str(tmp_path / "ds"), plugin=None)
    for path in (tmp_path / "ds", tmp_path / "ds" / "classes.json"):
        viewer.layers.clear()
        viewer.open(str(path), plugin="napari-thinseg")
        kinds = sorted(type(ly).__name__ for ly in viewer.layers)
        assert kinds == ["Image", "Image", "Labels", "Labels"], path


def test_open_dataset_folder_in_viewer(make_napari_viewer, tmp_path):
    pairs = _dataset(tmp_path)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path), plugin="napari-thinseg")
    labels = [ly for ly in viewer.layers if isinstance(ly, Labels)]
    images = [ly for ly in viewer.layers if isinstance(ly, Image)]
    assert len(images) == 2 and len(labels) == 2
    by_stem = {p.name: p for p in pairs}
    for layer in labels:
        stem = layer.name.split(" ")[0]
        assert np.array_equal(layer.data, by_stem[stem].labels)
        assert isinstance(layer.colormap, DirectLabelColormap)
        assert layer.features["name"].tolist()[1] == "pore"
        np.testing.assert_allclose(
            layer.colormap.map(np.array([1]))[0][:3],
            np.array(SANDSTONE[1].rgb) / 255,
        )


def test_writer_saves_annotation_png(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    data = np.zeros((6, 7), np.uint8)
    data[2:4, 3:5] = 3
    layer = viewer.add_labels(data, name="mine")
    path = tmp_path / "mine.png"
    written = layer.save(str(path), plugin="napari-thinseg")
    assert written == [str(path)]
    back = iio.imread(path)
    assert back.dtype == np.uint8 and np.array_equal(back, data)


def test_writer_refuses_over_255(tmp_path):
    from napari_thinseg._napari.writer import write_labels
    from napari_thinseg.errors import ThinsegError

    with pytest.raises(ThinsegError, match="> 255"):
        write_labels(str(tmp_path / "x.png"), np.full((3, 3), 300), {})
    assert not (tmp_path / "x.png").exists()


def test_samples(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-thinseg", "synthetic")
    image, truth = viewer.layers
    assert image.rgb and image.data.shape == (512, 512, 3)
    assert truth.data.shape == (512, 512)
    assert set(np.unique(truth.data)) <= set(SANDSTONE.ids)
    assert truth.features["name"].tolist()[1] == "pore"
    viewer.layers.clear()
    viewer.open_sample("napari-thinseg", "seed")
    image, labels = viewer.layers
    assert image.data.shape == (552, 685, 3)
    assert labels.features["name"].tolist()[3] == SEED[3].name


def test_reader_names_a_broken_file(tmp_path):
    """A truncated image in a dataset folder: one line naming it."""
    from napari_thinseg._napari.reader import read_dataset_layers
    from napari_thinseg.dataset.folders import images_dir
    from napari_thinseg.errors import ThinsegError

    _dataset(tmp_path)
    victim = sorted(images_dir(tmp_path).iterdir())[0]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])
    with pytest.raises(ThinsegError) as info:
        read_dataset_layers(str(tmp_path))
    message = str(info.value)
    assert str(victim) in message and "not a readable image" in message
    assert "\n" not in message
