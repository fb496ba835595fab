"""The "Export annotations" widget on a real napari viewer."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
from qtpy.QtWidgets import QFileDialog

from napari_thinseg._napari.layers import (
    PREDICTION_KEY,
    PREVIEW_KEY,
    labels_kwargs,
)
from napari_thinseg._napari.widgets.measure.export import ExportWidget
from napari_thinseg.dataset.folders import (
    annotations_dir,
    images_dir,
    safe_stem,
    split_names,
)
from napari_thinseg.schemes import SANDSTONE, SEED, ClassScheme

SHAPE = (8, 10)


def make_pair(seed: int, shape=SHAPE, n_classes: int = 10):
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    labels = rng.integers(0, n_classes + 1, shape, dtype=np.uint8)
    return image, labels


def add_pair(viewer, name, seed, suffix="labels", scheme=SANDSTONE, **kw):
    image, labels = make_pair(seed, **kw)
    im = viewer.add_image(image, name=name, rgb=True)
    lb = viewer.add_labels(
        labels, name=f"{name} {suffix}", **labels_kwargs(scheme)
    )
    return im, lb


def open_widget(viewer) -> ExportWidget:
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Export annotations"
    )
    assert isinstance(widget, ExportWidget)
    return widget


def row_map(widget) -> dict:
    return {
        im.name: (ok, None if lb is None else lb.name)
        for im, ok, lb, _ in widget.rows()
    }


def run_export(qtbot, widget):
    """Click Export and wait for the worker; returns (result, failure)."""
    got = {}
    widget.exported.connect(lambda r: got.setdefault("result", r))
    widget.failed.connect(lambda m: got.setdefault("failed", m))
    widget.export_button.click()
    assert widget.worker is not None  # it runs in a thread_worker
    assert not widget.export_button.isEnabled()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=10000)
    assert widget.export_button.isEnabled()
    return got.get("result"), got.get("failed")


def files_under(root: Path) -> dict[Path, bytes]:
    if not root.exists():
        return {}
    return {
        p.relative_to(root): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_export_from_manifest_writes_dataset(
    make_napari_viewer, qtbot, notes, tmp_path
):
    viewer = make_napari_viewer()
    a_img, a_lab = add_pair(viewer, "a", 0)
    b_img, b_lab = add_pair(viewer, "b", 1, suffix="annotation")
    widget = open_widget(viewer)
    assert row_map(widget) == {
        "a": (True, "a labels"),
        "b": (True, "b annotation"),
    }
    root = tmp_path / "dataset"
    widget.folder.setText(str(root))

    result, failed = run_export(qtbot, widget)
    assert failed is None and notes["error"] == []
    assert sorted(result.train) == ["a", "b"] and result.test == []
    for img, lab in ((a_img, a_lab), (b_img, b_lab)):
        name = f"{img.name}.png"
        np.testing.assert_array_equal(
            iio.imread(images_dir(root) / name), img.data
        )
        ann = iio.imread(annotations_dir(root) / name)
        assert ann.dtype == np.uint8
        np.testing.assert_array_equal(ann, lab.data)
    assert ClassScheme.load(root / "classes.json") == SANDSTONE
    assert not images_dir(root, "test").exists()
    assert len(notes["info"]) == 1
    assert "2 train and 0 test" in notes["info"][0]
    assert str(root) in notes["info"][0]
    assert widget.status_label.text() == notes["info"][0]


def test_export_holds_out_a_deterministic_test_split(
    make_napari_viewer, qtbot, notes, tmp_path, monkeypatch
):
    viewer = make_napari_viewer()
    names = ["s1", "s2", "s3", "s4"]
    layers = {n: add_pair(viewer, n, k) for k, n in enumerate(names)}
    widget = ExportWidget(viewer)
    viewer.window.add_dock_widget(widget)
    monkeypatch.setattr(
        QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path)
    )
    widget.browse_button.click()
    assert widget.folder.text() == str(tmp_path)
    widget.test_fraction.setValue(0.5)
    widget.seed.setValue(3)

    result, failed = run_export(qtbot, widget)
    assert failed is None
    expected_test = split_names(names, 0.5, 3)
    assert set(result.test) == expected_test and len(expected_test) == 2
    assert set(result.train) == set(names) - expected_test
    for name, (img, lab) in layers.items():
        split = "test" if name in expected_test else "train"
        np.testing.assert_array_equal(
            iio.imread(images_dir(tmp_path, split) / f"{name}.png"), img.data
        )
        np.testing.assert_array_equal(
            iio.imread(annotations_dir(tmp_path, split) / f"{name}.png"),
            lab.data,
        )
    assert "2 train and 2 test" in notes["info"][-1]


def test_table_follows_layers_and_keeps_choices(make_napari_viewer, notes):
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0)
    widget = open_widget(viewer)
    assert row_map(widget) == {"a": (True, "a labels")}

    # an image with no matching labels yet: listed, unticked
    c_img = viewer.add_image(make_pair(2)[0][..., 0], name="c")
    assert row_map(widget)["c"] == (False, None)
    # its "<name> truth" layer arrives: matched and ticked
    viewer.add_labels(make_pair(2)[1], name="c truth")
    assert row_map(widget)["c"] == (True, "c truth")

    # the user's choice survives later refreshes
    widget.set_row("c", checked=False, labels_name="a labels")
    viewer.add_labels(np.zeros((3, 3), np.uint8), name="small")
    assert row_map(widget)["c"] == (False, "a labels")

    # removals and renames show up; a removed choice is matched afresh
    viewer.layers.remove("a labels")
    assert row_map(widget)["c"] == (True, "c truth")
    assert row_map(widget)["a"] == (False, None)
    c_img.name = "c2"
    assert row_map(widget) == {"a": (False, None), "c2": (True, "c truth")}
    # no name match: a labels layer of the same 2D shape, once no other
    # image claims it by name
    viewer.layers.remove("c2")
    assert row_map(widget) == {"a": (True, "c truth")}
    assert notes["error"] == []


def test_predictions_are_never_taken_for_labels(make_napari_viewer, notes):
    """Issue 12: after "predict all", rows were ticked with predictions."""
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0)
    viewer.add_image(make_pair(1)[0], name="b")
    for name, key in (
        ("a prediction", PREDICTION_KEY),
        ("b preview", PREVIEW_KEY),
    ):
        viewer.add_labels(make_pair(1)[1], name=name, metadata={key: {}})
    widget = open_widget(viewer)
    assert row_map(widget) == {"a": (True, "a labels"), "b": (False, None)}
    # a removed labels layer is not replaced by a prediction either
    viewer.layers.remove("a labels")
    assert row_map(widget) == {"a": (False, None), "b": (False, None)}
    # by hand, a prediction can still be chosen
    widget.set_row("b", checked=True, labels_name="a prediction")
    assert row_map(widget)["b"] == (True, "a prediction")
    assert notes["error"] == []


def test_refuses_mismatched_shapes_and_writes_nothing(
    make_napari_viewer, qtbot, notes, tmp_path
):
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0)
    add_pair(viewer, "b", 1, shape=(6, 10))
    widget = open_widget(viewer)
    widget.set_row("a", labels_name="b labels")
    widget.set_row("b", checked=False)
    root = tmp_path / "out"
    widget.folder.setText(str(root))

    result, failed = run_export(qtbot, widget)
    assert result is None
    assert "8x10" in failed and "6x10" in failed
    assert notes["error"] == [failed]
    assert not root.exists()


def test_refuses_existing_files_without_overwrite(
    make_napari_viewer, qtbot, notes, tmp_path
):
    viewer = make_napari_viewer()
    _, lab = add_pair(viewer, "a", 0)
    widget = open_widget(viewer)
    widget.folder.setText(str(tmp_path))
    assert run_export(qtbot, widget)[1] is None
    before = files_under(tmp_path)

    lab.data = np.ones(SHAPE, np.uint8)
    result, failed = run_export(qtbot, widget)
    assert result is None and "already exists" in failed
    assert notes["error"] == [failed]
    assert files_under(tmp_path) == before

    widget.overwrite.setChecked(True)
    result, failed = run_export(qtbot, widget)
    assert failed is None
    np.testing.assert_array_equal(
        iio.imread(annotations_dir(tmp_path) / "a.png"), lab.data
    )


def test_unwritable_folder_is_one_line(
    make_napari_viewer, qtbot, notes, tmp_path
):
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0)
    widget = open_widget(viewer)
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    widget.folder.setText(str(blocker / "dataset"))
    result, failed = run_export(qtbot, widget)
    assert result is None and "cannot create folder" in failed
    assert "\n" not in failed
    assert blocker.read_text() == "not a folder"


def test_refusals_before_the_worker(make_napari_viewer, notes, tmp_path):
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0, scheme=SANDSTONE)
    add_pair(viewer, "b", 1, scheme=SEED, n_classes=5)
    widget = open_widget(viewer)

    widget.export_button.click()  # no folder
    assert "folder" in notes["error"][-1]

    widget.folder.setText(str(tmp_path / "out"))
    widget.export_button.click()  # two schemes
    assert "different class schemes" in notes["error"][-1]
    assert "'a labels'" in notes["error"][-1]

    widget.set_row("a", checked=False)
    widget.set_row("b", checked=False)
    widget.export_button.click()
    assert "nothing to export" in notes["error"][-1]

    widget.set_row("a", checked=True, labels_name="(none)")
    widget.export_button.click()
    assert "a: choose its labels layer" in notes["error"][-1]
    assert widget.worker is None
    assert not (tmp_path / "out").exists()
    assert len(notes["error"]) == 4


def test_layers_without_scheme_follow_the_others(
    make_napari_viewer, qtbot, notes, tmp_path
):
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0, scheme=SANDSTONE)
    image, labels = make_pair(1)
    viewer.add_image(image, name="b/c: odd", rgb=True)
    viewer.add_labels(labels, name="b/c: odd labels")  # no scheme
    widget = open_widget(viewer)
    widget.folder.setText(str(tmp_path))
    result, failed = run_export(qtbot, widget)
    assert failed is None
    stem = safe_stem("b/c: odd")
    assert stem in result.train
    np.testing.assert_array_equal(
        iio.imread(annotations_dir(tmp_path) / f"{stem}.png"), labels
    )
    assert ClassScheme.load(tmp_path / "classes.json") == SANDSTONE


def test_disk_full_leaves_no_half_dataset(
    make_napari_viewer, qtbot, notes, tmp_path, monkeypatch
):
    import errno

    from napari.utils import progress

    from napari_thinseg.imaging import atomic as tio

    real = tio._write_file
    calls = []

    def full_disk(fd, data):
        calls.append(1)
        if len(calls) == 3:
            import os

            os.close(fd)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(tio, "_write_file", full_disk)
    viewer = make_napari_viewer()
    add_pair(viewer, "a", 0)
    add_pair(viewer, "b", 1)
    widget = open_widget(viewer)
    root = tmp_path / "out"
    widget.folder.setText(str(root))
    result, failed = run_export(qtbot, widget)
    assert result is None
    assert "No space left on device" in failed and "\n" not in failed
    assert notes["error"] == [failed]
    assert not root.exists()
    assert not list(progress._all_instances)
    assert len(viewer.layers) == 4  # the viewer is untouched and usable
