"""The "Folders" widget: a whole folder auto-labelled or predicted from
napari, labels and stats.csv written, nothing replaced unasked."""

from __future__ import annotations

import csv

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_thinseg._napari.widgets.predict.folders import FoldersWidget
from napari_thinseg.autolabel.rule import autolabel
from napari_thinseg.dataset.synth import synthetic_sandstone

TIMEOUT_MS = 120_000


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(3):
        rgb, _ = synthetic_sandstone((64, 80), seed=k)
        iio.imwrite(folder / f"ts{k}.png", rgb)
    # one with its pixel size in the TIFF tags (4000 px/cm = 2.5 um/px)
    rgb, _ = synthetic_sandstone((64, 80), seed=9)
    tifffile.imwrite(
        folder / "cam.tif",
        rgb,
        photometric="rgb",
        resolution=(4000, 4000),
        resolutionunit="CENTIMETER",
    )
    return folder


def open_widget(viewer) -> FoldersWidget:
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Folders"
    )
    assert isinstance(widget, FoldersWidget)
    return widget


def run(qtbot, widget):
    got = {}
    widget.done.connect(lambda p: got.setdefault("stats", p))
    widget.failed.connect(lambda m: got.setdefault("failed", m))
    widget.run_button.click()
    if widget.worker is not None:
        qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)
    return got.get("stats"), got.get("failed")


def test_auto_label_a_folder(
    make_napari_viewer, qtbot, notes, photos, tmp_path
):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    out = tmp_path / "labels"
    widget.folder.setText(str(photos))
    widget.out_folder.setText(str(out))
    widget.set_action("epoxy")
    stats, failed = run(qtbot, widget)
    assert failed is None, failed
    assert stats == out / "stats.csv"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["cam.png", "stats.csv", "ts0.png", "ts1.png", "ts2.png"]
    rgb = iio.imread(photos / "ts1.png")
    assert np.array_equal(
        iio.imread(out / "ts1.png"), autolabel(rgb, method="epoxy")
    )
    rows = list(csv.DictReader(stats.open()))
    assert [r["name"] for r in rows] == [
        "cam.tif",
        "ts0.png",
        "ts1.png",
        "ts2.png",
    ]
    # the TIFF's pixel size reached the labels and the stats
    assert float(rows[0]["pixel_size_um"]) == pytest.approx(2.5)
    assert rows[1]["pixel_size_um"] == ""
    assert widget.table.rowCount() == 4
    assert widget.table.item(1, 0).text() == "ts0.png"
    porosity = float(rows[1]["porosity_fraction"]) * 100
    assert widget.table.item(1, 1).text() == f"{porosity:.2f}"
    assert "labelled 4 image(s)" in notes["info"][-1]
    assert widget.progress_bar.value() == widget.progress_bar.maximum()

    # again: refused before any work, nothing replaced
    before = (out / "ts0.png").read_bytes()
    stats, failed = run(qtbot, widget)
    assert stats is None and "exist" in notes["error"][-1]
    assert (out / "ts0.png").read_bytes() == before
    widget.overwrite.setChecked(True)
    stats, failed = run(qtbot, widget)
    assert failed is None and stats is not None

    # resume (thinseg predict --resume's rule): the files written whole
    # are kept, the missing one labelled, the stats cover all four
    widget.resume.setChecked(True)
    assert not widget.overwrite.isChecked()  # one or the other
    (out / "ts2.png").unlink()
    kept = {n: (out / n).stat().st_mtime_ns for n in ("ts0.png", "cam.png")}
    stats, failed = run(qtbot, widget)
    assert failed is None, failed
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept
    assert np.array_equal(
        iio.imread(out / "ts2.png"),
        autolabel(iio.imread(photos / "ts2.png"), method="epoxy"),
    )
    again = list(csv.DictReader(stats.open()))
    assert [r["porosity_fraction"] for r in again] == [
        r["porosity_fraction"] for r in rows
    ]
    assert widget.table.item(1, 0).toolTip() == "kept from a stopped run"
    # a torn label file is refused in one line, and kept
    (out / "ts0.png").write_bytes(b"\x89PNG torn")
    stats, failed = run(qtbot, widget)
    assert stats is None and "torn label file" in notes["error"][-1]
    assert "\n" not in notes["error"][-1]
    assert (out / "ts0.png").read_bytes() == b"\x89PNG torn"


def test_predict_a_folder_with_the_default_model(
    make_napari_viewer, qtbot, notes, photos, tmp_path, default_model
):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    widget.folder.setText(str(photos))
    widget.out_folder.setText(str(tmp_path / "pred"))
    widget.set_action("default")
    stats, failed = run(qtbot, widget)
    assert failed is None, failed
    labels = iio.imread(tmp_path / "pred" / "ts0.png")
    assert labels.shape == (64, 80) and set(np.unique(labels)) <= set(
        range(1, 6)
    )
    assert len(list(csv.DictReader(stats.open()))) == 4


def test_refusals_are_one_line(make_napari_viewer, notes, photos):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    widget.run_button.click()
    assert "choose the folder" in notes["error"][-1]
    widget.folder.setText(str(photos))
    widget.out_folder.setText(str(photos))
    widget.run_button.click()
    assert "another folder" in notes["error"][-1]
    widget.out_folder.setText(str(photos.parent / "out"))
    widget.set_action("trained")
    widget.run_button.click()
    assert "no model trained" in notes["error"][-1]
    assert widget.worker is None


def test_two_photos_of_one_stem_are_refused_before_any_work(
    make_napari_viewer, notes, photos, tmp_path
):
    # a.png and a.tif would both become a.png: the same rule as the CLI's
    rgb, _ = synthetic_sandstone((64, 80), seed=3)
    tifffile.imwrite(photos / "ts1.tif", rgb, photometric="rgb")
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    out = tmp_path / "labels"
    widget.folder.setText(str(photos))
    widget.out_folder.setText(str(out))
    widget.set_action("epoxy")
    widget.run_button.click()
    assert "ts1" in notes["error"][-1]
    assert "outputs would collide" in notes["error"][-1]
    assert widget.worker is None
    assert not out.exists() or not any(out.iterdir())
