"""The "Whole slide" widget on a real viewer: a small pyramidal OME-TIFF
opened lazily, predicted tile by tile into an OME-Zarr, stopped, measured,
and the OME-Zarr read back."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from napari.layers import Image, Labels
from qtpy.QtWidgets import QPlainTextEdit

from napari_thinseg._napari.layers import PREDICTION_KEY, scheme_of
from napari_thinseg._napari.reader import napari_get_reader
from napari_thinseg._napari.widgets.predict.dock import MODEL_DEFAULT
from napari_thinseg._napari.widgets.predict.slide import (
    SLIDE_KEY,
    SlideWidget,
    chosen_slide,
    default_output,
    slide_levels,
)
from napari_thinseg.imaging.lazy import open_lazy
from napari_thinseg.inference.slides import TileProgress, predict_slide
from napari_thinseg.progress import run

SHAPE = (1024, 1024)  # the labels pyramid has 2 levels
UM = 2.5
TILE = 256
TIMEOUT_MS = 120_000
SEED_PHOTOS = Path(__file__).parents[4] / "shared/data/seed-thin-sections"

# each test starts and ends with an empty model registry
pytestmark = pytest.mark.usefixtures("no_trained_models")


def photo(shape=SHAPE) -> np.ndarray:
    """A ``shape`` RGB thin section: a seed photo tiled, else synthetic."""
    found = sorted((SEED_PHOTOS / "images").glob("*.png"))
    if found:
        import imageio.v3 as iio

        rgb = iio.imread(found[0])[..., :3]
        reps = (-(-shape[0] // rgb.shape[0]), -(-shape[1] // rgb.shape[1]), 1)
        return np.ascontiguousarray(np.tile(rgb, reps)[: shape[0], : shape[1]])
    from napari_thinseg.dataset.synth import synthetic_sandstone

    return synthetic_sandstone(shape, seed=3)[0]


def write_slide(folder: Path, shape=SHAPE) -> Path:
    """A tiled OME-TIFF pyramid (full size, 1/2, 1/4 as SubIFDs) with its
    pixel size."""
    rgb = photo(shape)
    path = folder / "scan.ome.tif"
    options = {"tile": (TILE, TILE), "photometric": "rgb"}
    options["compression"] = "zlib"
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(
            rgb,
            subifds=2,
            resolution=(1e4 / UM, 1e4 / UM),
            resolutionunit="CENTIMETER",
            metadata={"axes": "YXS", "PhysicalSizeX": UM, "PhysicalSizeY": UM},
            **options,
        )
        for step in (2, 4):
            tif.write(rgb[::step, ::step], subfiletype=1, **options)
    return path


def open_widget(viewer) -> SlideWidget:
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Whole slide"
    )
    assert isinstance(widget, SlideWidget)
    return widget


def start(widget, out: Path):
    """Predict the open slide with the default model into ``out`` (tile
    256, float32); returns the worker, or None when refused."""
    widget.set_model(MODEL_DEFAULT)
    widget.precision.setCurrentIndex(widget.precision.findData("float32"))
    widget.tile.setValue(TILE)
    widget.output.setText(str(out))
    widget.predict_button.click()
    return widget.worker


def wait(qtbot, widget) -> None:
    qtbot.waitUntil(lambda: widget.worker is None, timeout=TIMEOUT_MS)


def test_single_level_files_get_strided_levels():
    levels = slide_levels([da.zeros((2100, 1100, 3), np.uint8)])
    assert [lv.shape for lv in levels] == [(2100, 1100, 3), (1050, 550, 3)]
    assert len(slide_levels([da.zeros((600, 800), np.uint8)])) == 1
    assert default_output("/d/scan.ome.tif") == Path("/d/scan_labels.ome.zarr")
    assert chosen_slide("/d/s.ome.zarr/.zattrs") == Path("/d/s.ome.zarr")
    assert chosen_slide("/d/s.tif") == Path("/d/s.tif")


def test_opening_a_slide_shows_its_pyramid(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    path = write_slide(tmp_path)
    widget.path.setText(str(path))
    layer = widget.open_slide()
    assert isinstance(layer, Image) and layer.multiscale and layer.rgb
    assert [tuple(lv.shape) for lv in layer.data] == [
        (1024, 1024, 3),
        (512, 512, 3),
        (256, 256, 3),
    ]
    assert tuple(layer.scale) == (UM, UM)
    assert layer.metadata[SLIDE_KEY] == str(path)
    assert widget.output.text() == str(tmp_path / "scan_labels.ome.zarr")
    assert (
        "1,024 x 1,024 px, 3 level(s), 2.5 µm/px" in widget.slide_label.text()
    )


def test_predict_fills_a_pyramid_then_measure_and_read_it(
    make_napari_viewer, qtbot, notes, tmp_path, default_model
):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    path = write_slide(tmp_path)
    widget.open_slide(path)
    out = tmp_path / "scan_labels.ome.zarr"
    worker = start(widget, out)
    assert worker is not None, notes["error"]
    # the layer is there before the first tile, showing the zarr store
    layer = viewer.layers["scan prediction"]
    assert isinstance(layer, Labels) and layer.multiscale
    assert isinstance(layer.data[0], zarr.Array)
    events, refreshed = [], []
    worker.yielded.connect(events.append)
    layer.events.reload.connect(lambda e: refreshed.append(1))
    layer.events.set_data.connect(lambda e: refreshed.append(1))
    wait(qtbot, widget)
    assert notes["error"] == [] and notes["warning"] == []
    tiles = [e for e in events if isinstance(e, TileProgress)]
    assert tiles[-1].step == tiles[-1].total > 4
    assert len(refreshed) >= tiles[-1].total  # redrawn tile by tile
    assert widget.progress_bar.value() == widget.progress_bar.maximum()
    assert out.is_dir() and not Path(f"{out}.partial").exists()
    assert f"{tiles[-1].total} tiles" in widget.status_label.text()
    assert str(out) in widget.status_label.text()
    # the same labels as predict_slide on the file, in memory
    model, config = default_model
    expected = np.zeros(SHAPE, np.uint8)
    run(
        predict_slide(
            model, config, open_lazy(path), expected, TILE, "float32"
        )
    )
    assert layer.multiscale and len(layer.data) == 2
    assert Path(str(layer.data[0].store_path.store.root)) == out
    assert np.array_equal(np.asarray(layer.data[0]), expected)
    assert np.array_equal(np.asarray(layer.data[1]), expected[::2, ::2])
    assert tuple(layer.scale) == (UM, UM)
    assert scheme_of(layer) == config.class_scheme
    assert layer.metadata[PREDICTION_KEY]["output"] == str(out)

    # again: refused before any work, the output kept
    errors = len(notes["error"])
    assert start(widget, out) is None
    assert len(notes["error"]) == errors + 1
    assert "already exists" in notes["error"][-1]
    assert "\n" not in notes["error"][-1]
    assert not Path(f"{out}.partial").exists()

    # measure the prediction (multiscale) at full resolution
    assert widget.labels_combo.layer().name == layer.name
    got = []
    widget.measured.connect(got.append)
    widget.measure_button.click()
    qtbot.waitUntil(lambda: widget.measure_worker is None, timeout=30_000)
    assert got and got[0].counted_pixels == SHAPE[0] * SHAPE[1]
    text = widget.report.toPlainText()
    assert any(line.split()[:1] == ["porosity"] for line in text.split("\n"))
    assert "mm2 at 2.5 um/px" in text

    # the reader opens the OME-Zarr as a multiscale Labels layer
    assert napari_get_reader(str(out)) is not None
    viewer.layers.clear()
    viewer.open(str(out), plugin="napari-thinseg")
    (read,) = viewer.layers
    assert isinstance(read, Labels) and read.multiscale
    assert read.name == "scan_labels"
    assert tuple(read.scale) == (UM, UM)
    assert np.array_equal(np.asarray(read.data[0]), expected)
    assert scheme_of(read) == config.class_scheme
    first = config.class_scheme.classes[0]
    color = read.colormap.map(np.array([first.id]))[0][:3]
    assert np.allclose(color, np.array(first.rgb) / 255, atol=1e-3)


def test_stop_keeps_the_tiles_done(
    make_napari_viewer, qtbot, notes, tmp_path, default_model
):
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    widget.open_slide(write_slide(tmp_path))
    out = tmp_path / "stopped.ome.zarr"
    worker = start(widget, out)
    assert worker is not None, notes["error"]
    worker.yielded.connect(
        lambda e: isinstance(e, TileProgress) and e.step >= 1 and widget.stop()
    )
    stopped = []
    widget.failed.connect(stopped.append)
    wait(qtbot, widget)
    assert stopped and "stopped after" in stopped[0]
    partial = Path(f"{out}.partial")
    assert partial.is_dir() and not out.exists()
    assert str(partial) in widget.status_label.text()
    layer = viewer.layers["scan prediction"]
    labels = np.asarray(layer.data[0])
    done = labels > 0
    assert 0 < done.mean() < 0.9  # some tiles filled, not all
    assert widget.predict_button.isEnabled()

    # Predict again resumes: the tiles done are kept, the rest predicted
    worker = start(widget, out)
    assert worker is not None, notes["error"]
    events = []
    worker.yielded.connect(events.append)
    wait(qtbot, widget)
    kept = [e for e in events if isinstance(e, TileProgress)][0].kept
    assert kept >= 1
    assert any(f"{kept} of" in m and "tiles kept" in m for m in notes["info"])
    assert f"({kept} kept)" in widget.status_label.text()
    assert out.is_dir() and not partial.exists()
    final = np.asarray(viewer.layers["scan prediction"].data[0])
    assert (final > 0).all()
    assert np.array_equal(final[done], labels[done])


def test_a_bigtiff_output_and_the_outputs_refused(
    make_napari_viewer, qtbot, notes, tmp_path, default_model
):
    """The CLI's whole-slide outputs (imaging.pyramid.check_slide_output):
    a pyramidal BigTIFF written from the working OME-Zarr, shown from the
    finished file; other names and the slide itself refused in one line."""
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    path = write_slide(tmp_path, (512, 512))  # 4 tiles, one level
    widget.open_slide(path)
    for bad, words in (
        (tmp_path / "labels.png", "OME-Zarr folder (.zarr) or a pyramidal"),
        (path, "that is the slide itself"),
    ):
        assert start(widget, bad) is None
        assert words in notes["error"][-1] and "\n" not in notes["error"][-1]
    out = tmp_path / "scan_labels.tif"
    assert start(widget, out) is not None, notes["error"]
    assert Path(f"{out}.zarr.partial").is_dir()  # written tile by tile
    wait(qtbot, widget)
    assert notes["error"][2:] == [] and str(out) in widget.status_label.text()
    assert out.is_file() and not list(tmp_path.glob("*.partial"))
    tiff = open_lazy(out)
    assert tiff.pixel_size_um == pytest.approx(UM) and len(tiff.levels) == 1
    layer = viewer.layers["scan prediction"]
    shown = layer.data[0] if layer.multiscale else layer.data
    assert np.array_equal(np.asarray(shown), np.asarray(tiff.data))
    assert (np.asarray(tiff.data) > 0).all()


def test_closing_the_dock_stops_the_prediction(
    make_napari_viewer, qtbot, notes, tmp_path, default_model
):
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Whole slide"
    )
    widget.open_slide(write_slide(tmp_path))
    assert start(widget, tmp_path / "closed.ome.zarr") is not None
    viewer.window.remove_dock_widget(dock)
    wait(qtbot, widget)
    assert any("prediction stops" in m for m in notes["info"])
    assert not (tmp_path / "closed.ome.zarr").exists()


def test_the_reader_opens_an_ome_zarr_image(make_napari_viewer, tmp_path):
    folder = tmp_path / "img.ome.zarr"
    root = zarr.open_group(str(folder), mode="w", zarr_format=2)
    rgb = photo()[:64, :96]
    root.create_array("0", data=rgb, chunks=(32, 32, 3))
    root.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
                {"name": "c", "type": "channel"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [
                        {"type": "scale", "scale": [1.5, 1.5, 1.0]}
                    ],
                }
            ],
        }
    ]
    viewer = make_napari_viewer()
    viewer.open(str(folder), plugin="napari-thinseg")
    (layer,) = viewer.layers
    assert isinstance(layer, Image) and layer.multiscale and layer.rgb
    assert tuple(layer.scale) == (1.5, 1.5)
    assert np.array_equal(np.asarray(layer.data[0]), rgb)


def test_measure_text_wraps_and_an_empty_layer_is_no_error(
    make_napari_viewer, qtbot, notes
):
    """Issue 26: the Measure text needs no sideways scrolling, and an
    empty labels layer (a prediction before its first tile) is measured
    as "nothing yet", not an error."""
    from napari_thinseg._napari.layers import labels_kwargs
    from napari_thinseg.schemes import SEED

    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    levels = [np.zeros((64, 64), np.uint8), np.zeros((32, 32), np.uint8)]
    viewer.add_labels(
        levels, name="scan prediction", multiscale=True, **labels_kwargs(SEED)
    )
    widget.measure_button.click()
    qtbot.waitUntil(lambda: widget.measure_worker is None, timeout=30_000)
    assert "nothing to measure yet" in widget.report.toPlainText()
    assert notes["error"] == []

    labels = np.repeat(np.arange(1, 6, dtype=np.uint8), 13)[:64]
    viewer.layers.clear()
    viewer.add_labels(
        [np.tile(labels, (64, 1)), np.tile(labels[::2], (32, 1))],
        name="scan prediction",
        multiscale=True,
        **labels_kwargs(SEED),
    )
    widget.measure_button.click()
    qtbot.waitUntil(lambda: widget.measure_worker is None, timeout=30_000)
    text = widget.report.toPlainText()
    assert "porosity" in text
    # the table is narrow; the prose lines wrap at the dock's width
    mode = widget.report.lineWrapMode()
    assert mode == QPlainTextEdit.LineWrapMode.WidgetWidth
    table = [ln for ln in text.split("\n") if ";" not in ln]
    assert max(len(ln) for ln in table) <= 48, text
