"""The "Measure" widget on a real napari viewer."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from qtpy.QtWidgets import QFileDialog

from napari_thinseg._napari.layers import labels_kwargs
from napari_thinseg._napari.widgets.measure import dock as measure_module
from napari_thinseg._napari.widgets.measure.dock import (
    DEBOUNCE_MS,
    SIZES_AUTO_PIXELS,
    MeasureWidget,
    measure_job,
)
from napari_thinseg._napari.widgets.measure.results import (
    AREA,
    BINOMIAL,
    BOOTSTRAP,
    CLASS,
    PERCENT,
    POROSITY_ROW,
)
from napari_thinseg.measure import format_measurement, report
from napari_thinseg.measure.report import NO_VALUE
from napari_thinseg.schemes import SEED

WAIT_MS = 15_000


def rock() -> np.ndarray:
    """40 x 40 seed labels, no unlabelled pixel: rows 0-19 opaque (1,
    50 %), rows 20-29 blue epoxy (3, the pore class, 25 %), rows 30-39
    quartz (5, 25 %)."""
    labels = np.empty((40, 40), np.uint8)
    labels[:20] = 1
    labels[20:30] = 3
    labels[30:] = 5
    return labels


@pytest.fixture
def fast(monkeypatch):
    """A short debounce for tests that are not about the debounce."""
    monkeypatch.setattr(measure_module, "DEBOUNCE_MS", 40)


def open_widget(viewer) -> MeasureWidget:
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Measure"
    )
    assert isinstance(widget, MeasureWidget)
    return widget


def add_rock(viewer, data=None, **kwargs):
    data = rock() if data is None else data
    return viewer.add_labels(
        data, name="rock labels", **labels_kwargs(SEED), **kwargs
    )


def rows(widget) -> dict[str, list[str]]:
    """The table's text, by class name."""
    table = widget.table
    return {
        table.item(r, CLASS).text(): [
            table.item(r, c).text() for c in range(table.columnCount())
        ]
        for r in range(table.rowCount())
    }


def shown(widget, name: str, column: int = PERCENT) -> str | None:
    row = rows(widget).get(name)
    return None if row is None else row[column]


def settle(qtbot, widget) -> None:
    """Wait until no measurement is waiting or running."""
    qtbot.waitUntil(lambda: not widget.is_busy(), timeout=WAIT_MS)


def expect_percent(qtbot, widget, expected: dict[str, str]) -> None:
    """Wait for the table to show ``{class name: percent text}``; a class
    of 0 % may also be left out."""

    def ok():
        table = rows(widget)
        for name, text in expected.items():
            got = table.get(name, [None, "0.00"])[PERCENT]
            if got != text:
                return False
        return True

    qtbot.waitUntil(ok, timeout=WAIT_MS)
    settle(qtbot, widget)
    assert ok(), rows(widget)


def test_manifest_dock_shows_exact_fractions(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    layer = add_rock(viewer)
    widget = open_widget(viewer)
    assert widget.labels_combo.layer() is layer
    assert widget.region_combo.currentText() == "(whole image)"
    assert widget.points.value() == 300
    assert widget.sizes_check.isChecked()  # small image
    assert not widget.from_scale.isEnabled()  # scale 1: no unit known
    assert widget.pixel_size_um() is None
    expect_percent(
        qtbot,
        widget,
        {
            SEED[1].name: "50.00",
            SEED[2].name: "0.00",
            SEED[3].name: "25.00",
            SEED[4].name: "0.00",
            SEED[5].name: "25.00",
            POROSITY_ROW: "25.00",
        },
    )
    m = widget.measurement
    assert m.counted_pixels == 1600
    assert widget.porosity_label.text() == "25.00"
    porosity = rows(widget)[POROSITY_ROW]
    low, high = (float(v) for v in porosity[BINOMIAL].split("–"))
    assert low < 25 < high
    assert porosity[BINOMIAL] == widget.porosity_binomial_label.text()
    assert porosity[BOOTSTRAP] == widget.porosity_bootstrap_label.text()
    assert porosity[AREA] == NO_VALUE  # no pixel size
    assert "300 points" in widget.binomial_title.text()
    assert "300" in widget.table.horizontalHeaderItem(BINOMIAL).text()
    # sizes were asked for: three bands, one grain class each
    assert widget.size_labels["grains"].text() != NO_VALUE
    assert widget.size_labels["pores"].text() != NO_VALUE
    assert len(widget.bar_ax.patches) == len(m.classes)
    assert widget.export_button.isEnabled()

    # big images start without the (slow) sizes
    side = int(np.ceil(np.sqrt(SIZES_AUTO_PIXELS))) + 1
    big = viewer.add_labels(np.ones((side, side), np.uint8), name="big")
    widget.labels_combo.set_layer(big)
    assert not widget.sizes_check.isChecked()
    widget.labels_combo.set_layer(layer)
    assert widget.sizes_check.isChecked()
    viewer.layers.remove(big)
    settle(qtbot, widget)
    assert widget.measurement.name == "rock labels"
    assert notes["error"] == []


def test_painting_updates_after_debounce(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    layer = add_rock(viewer)
    widget = MeasureWidget(viewer)
    qtbot.addWidget(widget)
    widget.sizes_check.setChecked(False)
    expect_percent(qtbot, widget, {POROSITY_ROW: "25.00"})

    # a brush-like edit: napari's own history-writing setitem (paint event)
    rr, cc = np.mgrid[30:40, 0:40]
    layer.data_setitem((rr.ravel(), cc.ravel()), 3)
    assert widget._timer.isActive()  # debounced, not measured at once
    assert widget._timer.interval() == DEBOUNCE_MS
    expect_percent(
        qtbot, widget, {POROSITY_ROW: "50.00", SEED[5].name: "0.00"}
    )

    # a brush dab on the shown plane
    layer.brush_size = 1
    layer.paint((0, 0), 5, refresh=True)
    expect_percent(qtbot, widget, {SEED[5].name: f"{100 / 1600:.2f}"})

    # a new data array (events.data)
    layer.data = np.full((40, 40), 2, np.uint8)
    expect_percent(qtbot, widget, {SEED[2].name: "100.00"})

    # a result made stale by a later change is dropped
    before = widget.measurement
    old = widget.request()
    result = measure_job(old)
    layer.data = np.full((40, 40), 3, np.uint8)  # a change: schedules
    widget._returned(old, result)  # the old result arrives late
    assert widget.measurement is before  # dropped, not shown
    expect_percent(qtbot, widget, {POROSITY_ROW: "100.00"})

    # a change while a measurement runs queues one more, not a second thread
    widget.refresh()
    running = widget._worker
    assert running is not None
    layer.data = rock()
    widget.refresh()
    assert widget._worker is running and widget._pending
    expect_percent(qtbot, widget, {POROSITY_ROW: "25.00"})
    assert notes["error"] == []


def test_shapes_region_restricts_counting(
    make_napari_viewer, qtbot, notes, fast
):
    viewer = make_napari_viewer()
    add_rock(viewer)
    widget = MeasureWidget(viewer)
    qtbot.addWidget(widget)
    widget.sizes_check.setChecked(False)
    # napari puts rows 15..34, columns 0..19 (400 pixel centres) inside
    shapes = viewer.add_shapes(
        [np.array([[15, 0], [34, 19]])], shape_type="rectangle", name="area"
    )
    widget.region_combo.set_layer(shapes)
    expect_percent(
        qtbot,
        widget,
        {SEED[1].name: "25.00", SEED[3].name: "50.00", SEED[5].name: "25.00"},
    )
    assert widget.measurement.counted_pixels == 400
    assert "area" in widget.measurement.name

    # moving the region re-measures: rows 0..19 are all opaque
    shapes.data = [np.array([[0, 0], [19, 9]])]
    expect_percent(qtbot, widget, {SEED[1].name: "100.00"})
    assert widget.measurement.counted_pixels == 200

    # a Labels layer as the region: its nonzero pixels
    mask = np.zeros((40, 40), np.uint8)
    mask[25:35, :] = 1  # 10 rows: half pore, half quartz
    region = viewer.add_labels(mask, name="mask")
    widget.region_combo.set_layer(region)
    expect_percent(
        qtbot, widget, {SEED[3].name: "50.00", SEED[5].name: "50.00"}
    )
    # the measured layer is never offered as its own region
    names = [
        widget.region_combo.itemText(i)
        for i in range(widget.region_combo.count())
    ]
    assert not any(n.startswith("rock labels") for n in names)
    assert notes["error"] == []


def test_pixel_size_from_scale_gives_mm2(make_napari_viewer, qtbot, fast):
    viewer = make_napari_viewer()
    add_rock(viewer, scale=(2.0, 2.0))  # 2 um per pixel: 4 um2 per pixel
    widget = MeasureWidget(viewer)
    qtbot.addWidget(widget)
    widget.sizes_check.setChecked(False)
    assert widget.from_scale.isEnabled() and widget.from_scale.isChecked()
    assert not widget.pixel_size.isEnabled()
    assert widget.pixel_size.value() == pytest.approx(2.0)
    assert "micrometres" in widget.from_scale.toolTip()
    expect_percent(qtbot, widget, {POROSITY_ROW: "25.00"})
    # 800 opaque pixels * 4 um2 = 3200 um2 = 0.0032 mm2
    assert float(shown(widget, SEED[1].name, AREA)) == pytest.approx(0.0032)
    assert float(shown(widget, POROSITY_ROW, AREA)) == pytest.approx(0.0016)
    assert widget.measurement.pixel_size_um == pytest.approx(2.0)

    # an entered pixel size replaces the scale
    widget.from_scale.setChecked(False)
    widget.pixel_size.setValue(10.0)  # 100 um2 per pixel
    qtbot.waitUntil(
        lambda: (
            widget.measurement is not None
            and widget.measurement.pixel_size_um == pytest.approx(10.0)
        ),
        timeout=WAIT_MS,
    )
    settle(qtbot, widget)
    assert float(shown(widget, SEED[1].name, AREA)) == pytest.approx(0.08)


def test_export_csv_and_refuse_overwrite(
    make_napari_viewer, qtbot, notes, monkeypatch, tmp_path, fast
):
    viewer = make_napari_viewer()
    layer = add_rock(viewer)
    widget = MeasureWidget(viewer)
    qtbot.addWidget(widget)
    widget.sizes_check.setChecked(False)
    path = tmp_path / "modal.csv"
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), "")
    )
    expect_percent(qtbot, widget, {POROSITY_ROW: "25.00"})
    widget.export_button.click()
    assert path.exists()
    assert any(str(path) in n for n in notes["info"])
    with path.open(newline="", encoding="utf-8") as f:
        read = list(csv.DictReader(f))
    assert len(read) == 1
    expected = widget.measurement.to_row()
    assert list(read[0]) == list(expected)
    for key, value in expected.items():
        if value is None or (isinstance(value, float) and value != value):
            assert read[0][key] == ""
        elif isinstance(value, float):
            assert float(read[0][key]) == pytest.approx(value, rel=1e-9)
        elif isinstance(value, int):
            assert int(float(read[0][key])) == value
        elif isinstance(value, str):
            assert read[0][key] == value
    assert read[0]["name"] == "rock labels"
    assert float(read[0]["porosity_fraction"]) == 0.25

    # a second export refuses the existing file ...
    before = path.read_bytes()
    layer.data = np.full((40, 40), 3, np.uint8)
    expect_percent(qtbot, widget, {POROSITY_ROW: "100.00"})
    widget.export_csv()
    assert path.read_bytes() == before
    assert any("overwrite" in n for n in notes["error"])
    # ... unless asked to replace it
    widget.overwrite.setChecked(True)
    widget.export_csv()
    with path.open(newline="", encoding="utf-8") as f:
        read = list(csv.DictReader(f))
    assert len(read) == 1
    assert float(read[0]["porosity_fraction"]) == 1.0


def test_errors_are_notifications(
    make_napari_viewer, qtbot, notes, monkeypatch, fast
):
    viewer = make_napari_viewer()
    widget = MeasureWidget(viewer)
    qtbot.addWidget(widget)
    # nothing to measure or export: a message, no crash
    widget.refresh()
    assert "Labels layer" in widget.status_label.text()
    widget.export_csv()
    assert notes["error"][-1].startswith("nothing measured")

    add_rock(viewer)
    widget.sizes_check.setChecked(False)
    settle(qtbot, widget)
    assert widget.measurement is not None

    # an empty Shapes layer as the region
    shapes = viewer.add_shapes(name="empty")
    widget.region_combo.set_layer(shapes)
    qtbot.waitUntil(lambda: len(notes["error"]) == 2, timeout=WAIT_MS)
    assert "no shapes" in notes["error"][-1]
    assert widget.measurement is None
    assert not widget.export_button.isEnabled()
    # the same problem is told once, not at every change
    widget.points.setValue(400)
    settle(qtbot, widget)
    assert len(notes["error"]) == 2

    # a mask of another size
    other = viewer.add_labels(np.ones((5, 5), np.uint8), name="small")
    widget.region_combo.set_layer(other)
    qtbot.waitUntil(lambda: len(notes["error"]) == 3, timeout=WAIT_MS)
    assert "5x5" in notes["error"][-1]

    # back to the whole image: measured again
    widget.region_combo.set_layer(None)
    settle(qtbot, widget)
    assert widget.measurement is not None

    # an unexpected error inside the worker: one line, no crash
    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(measure_module, "measure", boom)
    widget.refresh()
    qtbot.waitUntil(
        lambda: "disk on fire" in notes["error"][-1], timeout=WAIT_MS
    )
    settle(qtbot, widget)
    assert widget.measurement is None
    assert "disk on fire" in widget.status_label.text()


def test_dock_and_cli_text_come_from_the_report(
    make_napari_viewer, qtbot, notes, monkeypatch, fast
):
    """The dock and ``thinseg stats`` write a measurement's numbers with
    the same functions of measure.report: the same porosity text, and
    the same interval function (in the dock's and the CLI's typography)."""
    viewer = make_napari_viewer()
    add_rock(viewer)
    widget = MeasureWidget(viewer)
    qtbot.addWidget(widget)
    widget.sizes_check.setChecked(False)
    expect_percent(qtbot, widget, {POROSITY_ROW: "25.00"})
    m = widget.measurement
    cli = format_measurement(m).splitlines()
    porosity_line = next(ln for ln in cli if ln.startswith("  porosity "))
    assert widget.porosity_label.text() == report.percent(m.porosity)
    assert porosity_line.split()[1] == widget.porosity_label.text()
    assert widget.porosity_binomial_label.text() == report.interval_text(
        m.porosity_binomial
    )
    plain = report.interval_text(m.porosity_binomial, 1, report.PLAIN)
    assert porosity_line.split()[2] == plain

    # both call the one report function, each for the porosity interval
    seen = []
    interval_text = report.interval_text

    def spy(interval, *args, **kwargs):
        seen.append(interval)
        return interval_text(interval, *args, **kwargs)

    monkeypatch.setattr(report, "interval_text", spy)
    widget.show_measurement(m, SEED)
    assert m.porosity_binomial in seen
    seen.clear()
    format_measurement(m)
    assert m.porosity_binomial in seen
    assert notes["error"] == []


def test_measure_follows_another_scheme_and_warns(
    make_napari_viewer, qtbot, notes, fast
):
    """Issue 12: after another scheme was applied the dock kept 25 %
    porosity (class 3 was no longer the pore class) until "Measure now"."""
    from napari_thinseg.schemes import SANDSTONE

    viewer = make_napari_viewer()
    layer = add_rock(viewer)
    widget = open_widget(viewer)
    widget.sizes_check.setChecked(False)
    expect_percent(qtbot, widget, {POROSITY_ROW: "25.00"})
    _, colours = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Petrographic colours"
    )
    colours.labels_combo.set_layer(layer)
    colours.scheme_combo.setCurrentText("sandstone")
    colours.apply_button.click()
    # the sandstone scheme's pore is id 1: the rows 0-19, 50 %
    expect_percent(qtbot, widget, {POROSITY_ROW: "50.00", "pore": "50.00"})
    assert SANDSTONE[1].name == "pore"
    warning = notes["warning"][-1]
    assert warning.startswith("rock labels: labels made with scheme 'seed'")
    assert "class 1 'black (opaque) grains' becomes 'pore'" in warning
    assert "(and 2 more)" in warning
    # renaming a class in the legend is followed too
    colours.rename_class(1, "epoxy")
    qtbot.waitUntil(lambda: "epoxy" in rows(widget), timeout=WAIT_MS)
    assert notes["error"] == []


def test_pixel_size_from_the_file_sets_the_scale(
    make_napari_viewer, qtbot, notes, fast, tmp_path
):
    """Issue 12: a TIFF's resolution tags become the layer scale, so the
    auto-label and its measurement come in micrometres without typing."""
    import tifffile

    from napari_thinseg.dataset.synth import synthetic_sandstone

    rgb, _ = synthetic_sandstone((60, 80), seed=1)
    path = tmp_path / "cam.tif"
    tifffile.imwrite(
        path,
        rgb,
        photometric="rgb",
        resolution=(4000, 4000),
        resolutionunit="CENTIMETER",
    )
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, rgb, photometric="rgb")
    viewer = make_napari_viewer()
    widget = open_widget(viewer)  # any dock follows the files
    widget.sizes_check.setChecked(False)
    (image,) = viewer.open(str(path), plugin=None)
    assert tuple(image.scale) == pytest.approx((2.5, 2.5))
    assert "cam: 2.5 µm per pixel, from the file" in notes["info"][-1]
    (bare,) = viewer.open(str(plain), plugin=None)
    assert tuple(bare.scale) == (1.0, 1.0)  # records none: left alone
    _, auto = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Auto-label"
    )
    auto.image_combo.value = image
    auto.apply()
    labels = viewer.layers["cam labels"]
    assert tuple(labels.scale) == pytest.approx((2.5, 2.5))
    widget.labels_combo.set_layer(labels)
    qtbot.waitUntil(
        lambda: (
            widget.measurement is not None
            and widget.measurement.pixel_size_um == pytest.approx(2.5)
        ),
        timeout=WAIT_MS,
    )
    # a scale the user set is kept
    image.scale = (3.0, 3.0)
    viewer.layers.remove(image)
    viewer.add_layer(image)
    assert tuple(image.scale) == (3.0, 3.0)


def test_an_empty_layer_is_no_error(make_napari_viewer, qtbot, notes, fast):
    """Issue 26: a new empty Labels layer, Apply colours on it, and a
    whole slide's prediction layer before its first tile (all zeros) are
    normal: a status line, no error notification."""
    viewer = make_napari_viewer()
    widget = open_widget(viewer)
    empty = viewer.add_labels(np.zeros((40, 40), np.uint8), name="new")
    assert widget.labels_combo.layer() is empty
    settle(qtbot, widget)
    assert "nothing to measure yet" in widget.status_label.text()
    assert widget.measurement is None
    _, colors = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Petrographic colours"
    )
    colors.labels_combo.set_layer(empty)
    colors.apply_button.click()
    settle(qtbot, widget)
    assert "nothing to measure yet" in widget.status_label.text()
    # a whole slide's prediction layer as it starts: a zero pyramid
    levels = [np.zeros((64, 64), np.uint8), np.zeros((32, 32), np.uint8)]
    slide = viewer.add_labels(levels, name="scan prediction", multiscale=True)
    widget.labels_combo.set_layer(slide)
    settle(qtbot, widget)
    assert "nothing to measure yet" in widget.status_label.text()
    assert notes["error"] == [] and notes["warning"] == []
    # painting measures at once, and a real problem is still an error
    widget.labels_combo.set_layer(empty)
    empty.data = rock()
    expect_percent(qtbot, widget, {POROSITY_ROW: "25.00"})
    widget.region_combo.set_layer(viewer.add_shapes(name="no shapes"))
    qtbot.waitUntil(lambda: len(notes["error"]) == 1, timeout=WAIT_MS)
    assert "no shapes" in notes["error"][0]
