"""The Auto-label dock widget in a real napari viewer."""

from __future__ import annotations

import os

import numpy as np
import pytest
from matplotlib.backend_bases import MouseEvent
from napari.utils.colormaps import DirectLabelColormap

from napari_thinseg._napari.widgets.autolabel import dock as widget_module
from napari_thinseg._napari.widgets.autolabel.dock import (
    STAMP_KEY,
    AutoLabelWidget,
)
from napari_thinseg._napari.widgets.autolabel.form import (
    ALL_PLANES,
    CURRENT_PLANE,
)
from napari_thinseg.autolabel import preview as autolabel_preview
from napari_thinseg.autolabel.rule import (
    AutoLabelParams,
    autolabel,
    autolabel_stack,
    multiotsu_thresholds,
    smoothed_gray,
)
from napari_thinseg.errors import ThinsegError
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED


def thin_section(seed: int = 0, shape=(64, 80)) -> np.ndarray:
    """A uint8 RGB image: a dark-to-bright ramp, noise, a blue-dye pore."""
    rng = np.random.default_rng(seed)
    h, w = shape
    ramp = np.tile(np.linspace(0.05, 0.95, w), (h, 1))
    rgb = np.stack([ramp, ramp * 0.95, ramp * 0.85], axis=-1)
    rgb += rng.normal(0, 0.03, rgb.shape)
    rgb[10:26, 8:30] = (0.12, 0.3, 0.8)  # blue epoxy
    rgb[40:55, 50:70] = (0.55, 0.35, 0.2)  # brown grain, as bright
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


@pytest.fixture
def errors(notes):
    """Error notifications the widget shows."""
    return notes["error"]


def _dock(viewer, qtbot) -> AutoLabelWidget:
    widget = AutoLabelWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Auto-label")
    return widget


def test_manifest_widget_apply_equals_core(make_napari_viewer):
    viewer = make_napari_viewer()
    image = thin_section()
    viewer.add_image(image, name="ts", rgb=True)
    _dw, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Auto-label"
    )
    assert isinstance(widget, AutoLabelWidget)
    assert widget.image_layer is viewer.layers["ts"]
    assert widget.params() == AutoLabelParams()
    assert widget.scope_combo.isHidden()  # 2D: no plane choice
    assert widget.otsu_box.isHidden() and widget.epoxy_box.isHidden()

    widget.apply()
    layer = viewer.layers["ts labels"]
    assert layer.data.dtype == np.uint8
    np.testing.assert_array_equal(layer.data, autolabel(image))
    assert set(np.unique(layer.data)) == {1, 2, 3, 4, 5}
    assert isinstance(layer.colormap, DirectLabelColormap)
    np.testing.assert_allclose(
        layer.colormap.map(np.array([3]))[0][:3],
        np.array(SEED[3].rgb) / 255,
    )
    assert list(layer.features["name"]) == ["unlabelled", *SEED.names]
    assert layer.metadata[STAMP_KEY]["method"] == "gray"

    # other settings: still exactly the core's answer, in the same layer
    widget.sigma_spin.setValue(2.0)
    widget.set_thresholds((0.2, 0.35, 0.5, 0.8))
    widget.apply()
    assert [lyr.name for lyr in viewer.layers] == ["ts", "ts labels"]
    expected = autolabel(
        image, AutoLabelParams(thresholds=(0.2, 0.35, 0.5, 0.8), sigma=2.0)
    )
    np.testing.assert_array_equal(layer.data, expected)


def test_twelve_bit_data_is_scaled_and_said_so(make_napari_viewer, notes):
    """Issue 12: 0-4080 in a uint16 image gave 100 % class 1, silently."""
    viewer = make_napari_viewer()
    image = thin_section()
    viewer.add_image(image.astype(np.uint16) * 16, name="cam", rgb=True)
    _, widget = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Auto-label"
    )
    widget.apply()
    labels = viewer.layers["cam labels"].data
    assert (labels == autolabel(image)).mean() > 0.97
    said = "12-bit data in a 16-bit image: 0..4095 scaled to 0..255"
    assert said in widget.status_label.text()
    assert notes["info"][-1] == f"cam: {said}"


def test_preview_updates_after_debounce(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = thin_section(1)
    viewer.add_image(image, name="ts")
    widget = _dock(viewer, qtbot)
    widget.preview_check.setChecked(True)
    qtbot.waitUntil(lambda: "ts labels" in viewer.layers, timeout=2000)
    layer = viewer.layers["ts labels"]
    np.testing.assert_array_equal(layer.data, autolabel(image))

    widget.threshold_spins[1].setValue(0.5)
    widget.threshold_spins[2].setValue(0.7)
    assert widget._timer.isActive()  # debounced, not yet recomputed
    np.testing.assert_array_equal(layer.data, autolabel(image))
    new = AutoLabelParams(thresholds=(0.25, 0.5, 0.7, 0.75))
    expected = autolabel(image, new)
    qtbot.waitUntil(lambda: np.array_equal(layer.data, expected), timeout=2000)
    assert widget.params() == new
    assert len(viewer.layers) == 2


def test_threshold_change_reuses_cached_gray(
    make_napari_viewer, qtbot, monkeypatch
):
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[1])
        return smoothed_gray(*args, **kwargs)

    monkeypatch.setattr(autolabel_preview, "smoothed_gray", counting)
    viewer = make_napari_viewer()
    viewer.add_image(thin_section(2), name="ts")
    widget = _dock(viewer, qtbot)
    widget.preview_check.setChecked(True)
    widget.refresh()
    for value in (0.3, 0.32, 0.35):
        widget.threshold_spins[0].setValue(value)
        widget.refresh()
    assert calls == [1.0]
    widget.sigma_spin.setValue(1.5)
    widget.refresh()
    assert calls == [1.0, 1.5]


def test_histogram_lines_follow_thresholds(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    viewer.add_image(thin_section(), name="ts")
    widget = _dock(viewer, qtbot)
    widget.refresh()

    def line_x():
        return [line.get_xdata()[0] for line in widget.threshold_lines]

    assert line_x() == pytest.approx([0.25, 0.4, 0.6, 0.75])
    widget.threshold_spins[3].setValue(0.9)
    assert line_x() == pytest.approx([0.25, 0.4, 0.6, 0.9])
    widget.threshold_sliders[0].setValue(100)
    assert line_x() == pytest.approx([0.1, 0.4, 0.6, 0.9])

    # drag the line at 0.6 to 0.5 with the mouse
    canvas = widget.hist_canvas
    canvas.draw()
    to_px = widget.ax.transData.transform
    y = to_px((0, 0))[1] + 5
    for name, x in (
        ("button_press_event", to_px((0.6, 0))[0]),
        ("motion_notify_event", to_px((0.5, 0))[0]),
        ("button_release_event", to_px((0.5, 0))[0]),
    ):
        event = MouseEvent(name, canvas, x, y, button=1)
        canvas.callbacks.process(name, event)
    assert widget.thresholds()[2] == pytest.approx(0.5, abs=0.005)
    assert line_x()[2] == pytest.approx(widget.thresholds()[2])


def test_thresholds_stay_strictly_increasing(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = _dock(viewer, qtbot)
    widget.threshold_spins[1].setValue(0.9)  # above t3 = 0.6
    assert widget.thresholds() == pytest.approx((0.25, 0.599, 0.6, 0.75))
    widget.threshold_sliders[0].setValue(990)
    t = widget.thresholds()
    assert all(b > a for a, b in zip(t, t[1:], strict=False))
    assert widget.threshold_sliders[0].value() == round(t[0] * 1000)
    with pytest.raises(ThinsegError):
        widget.set_thresholds((0.5, 0.4, 0.6, 0.7))
    with pytest.raises(ThinsegError):
        widget.set_thresholds((0.2, 0.4, 0.6))
    widget.set_thresholds((0.1, 0.2, 0.3, 0.4))
    assert widget.thresholds() == (0.1, 0.2, 0.3, 0.4)


def test_epoxy_on_gray_image_is_an_error(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    gray = thin_section()[..., 0]
    viewer.add_image(gray, name="gray")
    widget = _dock(viewer, qtbot)
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("epoxy"))
    assert not widget.epoxy_box.isHidden()
    widget.apply()
    assert len(errors) == 1 and "colour" in errors[0]
    assert "gray labels" not in viewer.layers
    assert "colour" in widget.status_label.text()

    # preview reports the same problem once, not at every change
    widget.preview_check.setChecked(True)
    widget.refresh()
    widget.threshold_spins[0].setValue(0.3)
    widget.refresh()
    assert len(errors) == 2
    assert "gray labels" not in viewer.layers

    # and Apply after the preview said it: still once (issue 12: twice)
    widget.apply()
    assert len(errors) == 2 and "colour" in widget.status_label.text()

    # gray thresholds on the same image work
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("gray"))
    widget.refresh()
    np.testing.assert_array_equal(
        viewer.layers["gray labels"].data,
        autolabel(gray, thresholds=(0.3, 0.4, 0.6, 0.75)),
    )


def test_epoxy_on_rgb_image(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    image = thin_section(3)
    viewer.add_image(image, name="ts")
    widget = _dock(viewer, qtbot)
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("epoxy"))
    widget.apply()
    labels = viewer.layers["ts labels"].data
    np.testing.assert_array_equal(labels, autolabel(image, method="epoxy"))
    assert (labels[12:24, 10:28] == SEED.pore_id).all()
    assert not (labels[42:53, 52:68] == SEED.pore_id).any()
    assert errors == []

    # an empty hue window is the user's mistake, told in one line
    widget.epoxy_auto_check.setChecked(False)
    widget.epoxy_spins["hue_min"].setValue(0.8)
    widget.apply()
    assert len(errors) == 1 and "hue window" in errors[0]


def test_pale_dye_is_found_and_clicks_refine_it(
    make_napari_viewer, qtbot, errors
):
    """Issues 12 and 26: pale epoxy was missed by the fixed window (0.4 %
    pore where ~10 % is); the dye is now found in the image unaided, the
    hue / saturation view shows the cluster chosen, and clicks are samples
    that refine it."""
    from types import SimpleNamespace

    viewer = make_napari_viewer()
    image = thin_section(5)
    pore = np.s_[10:26, 8:30]
    image[pore] = (150, 185, 205)  # pale, washed-out blue dye
    layer = viewer.add_image(image, name="pale")
    widget = _dock(viewer, qtbot)
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("epoxy"))
    assert widget.epoxy_auto_check.isChecked()  # found, by default
    assert not widget.epoxy_spins["hue_min"].isEnabled()
    widget.apply()
    labels = viewer.layers["pale labels"].data
    assert (labels[pore] == SEED.pore_id).mean() > 0.95
    assert not (labels[42:53, 52:68] == SEED.pore_id).any()  # brown grain
    np.testing.assert_array_equal(labels, autolabel(image, method="epoxy"))

    # the view shows the cluster it chose: the pale dye's colours
    view = widget.hsv_view
    assert view.counts is not None and view.counts.sum() == image[..., 0].size
    assert view.dye_counts is not None
    assert view.dye_counts.sum() == (labels == SEED.pore_id).sum()
    pale_hue = int(0.55 * view.counts.shape[0])  # the dye's ~200 degrees
    assert view.dye_counts[pale_hue - 3 : pale_hue + 3].sum() >= 16 * 22
    assert view.title.startswith("dye found: ")

    # the old fixed window is still there, and misses it
    widget.epoxy_auto_check.setChecked(False)
    assert widget.epoxy_spins["hue_min"].isEnabled()
    widget.apply()
    before = viewer.layers["pale labels"].data
    assert not (before[pore] == SEED.pore_id).any()
    assert view.dye_counts is None and view.title == "fixed window"
    box = view._overlay[0]
    assert box.get_x() == pytest.approx(widget.epoxy_spins["hue_min"].value())
    widget.epoxy_spins["hue_min"].setValue(0.3)
    assert view._overlay[0].get_x() == pytest.approx(0.3)
    widget.epoxy_spins["hue_min"].setValue(0.45)

    # a click is a sample: back to the found dye, refined by it
    widget.pick_epoxy_button.click()
    assert "click on the dyed epoxy" in widget.status_label.text()
    (callback,) = layer.mouse_drag_callbacks[-1:]
    # a press in world coordinates on the pore, as napari delivers it
    callback(layer, SimpleNamespace(type="mouse_press", position=(18.0, 19.0)))
    assert callback not in layer.mouse_drag_callbacks  # one click only
    assert widget.epoxy_auto_check.isChecked()
    assert len(widget.epoxy_samples) == 1
    assert "epoxy from 1 click(s)" in widget.status_label.text()
    widget.apply()
    labels = viewer.layers["pale labels"].data
    assert (labels[pore] == SEED.pore_id).mean() > 0.95
    assert not (labels[42:53, 52:68] == SEED.pore_id).any()
    assert len(view._overlay) == 2  # the dye found, and the cross
    assert errors == []
    # a click on a grain is refused in one line, the samples kept
    assert widget.sample_epoxy(layer, (48, 60)) is None
    assert "not blue dye" in errors[-1]
    assert len(widget.epoxy_samples) == 1
    widget.forget_samples_button.click()
    assert widget.epoxy_samples == () and widget.params().epoxy_samples == ()


def test_hsv_view_screenshot(make_napari_viewer, qtbot, tmp_path):
    """The hue / saturation view on a sandstone photo, saved for a look."""
    from pathlib import Path

    photo = Path(__file__).parents[4] / (
        "shared/data/sandstone-minerals/images/113.png"
    )
    if not photo.exists():
        pytest.skip("the shared sandstone-minerals photos are absent")
    import imageio.v3 as iio

    viewer = make_napari_viewer()
    viewer.add_image(iio.imread(photo)[..., :3], name="113")
    widget = _dock(viewer, qtbot)
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("epoxy"))
    widget.apply()
    assert widget.hsv_view.dye_counts is not None
    canvas = widget.hsv_view.canvas
    canvas.resize(420, 200)
    canvas.draw()
    out = Path(os.environ.get("THINSEG_SHOTS", tmp_path)) / "hsv_view.png"
    assert canvas.grab().save(str(out))


def test_multiotsu_shows_found_thresholds(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    image = thin_section(4)
    viewer.add_image(image, name="ts")
    widget = _dock(viewer, qtbot)
    widget.method_combo.setCurrentIndex(
        widget.method_combo.findData("multiotsu")
    )
    assert widget.threshold_box.isHidden()
    assert not widget.otsu_box.isHidden()
    widget.n_classes_spin.setValue(4)
    qtbot.waitUntil(
        lambda: widget.found_thresholds() is not None, timeout=3000
    )
    found = multiotsu_thresholds(smoothed_gray(image, 1.0), 4)
    assert widget.found_thresholds() == found
    assert widget.otsu_label.text() == "  ".join(f"{t:.3f}" for t in found)
    xs = [line.get_xdata()[0] for line in widget.threshold_lines]
    assert xs == pytest.approx(found)
    assert not widget.use_otsu_button.isEnabled()  # 3 values, not 4

    widget.apply()
    np.testing.assert_array_equal(
        viewer.layers["ts labels"].data,
        autolabel(image, method="multiotsu", n_classes=4),
    )
    names = list(viewer.layers["ts labels"].features["name"])
    assert names == ["unlabelled"] + [f"gray level {k}" for k in (1, 2, 3, 4)]

    widget.n_classes_spin.setValue(5)
    widget.refresh()
    assert widget.use_otsu_button.isEnabled()
    widget.use_otsu_button.click()
    assert widget.method() == "gray"
    five = multiotsu_thresholds(smoothed_gray(image, 1.0), 5)
    assert widget.thresholds() == pytest.approx(five, abs=5e-4)


def test_user_edits_are_never_overwritten(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    image = thin_section(5)
    viewer.add_image(image, name="ts")
    widget = _dock(viewer, qtbot)
    widget.apply()
    first = viewer.layers["ts labels"]
    first.data[0:4, 0:4] = 9  # the user paints
    first.refresh()
    painted = first.data.copy()

    widget.set_thresholds((0.2, 0.3, 0.5, 0.7))
    widget.apply()
    np.testing.assert_array_equal(first.data, painted)
    second = viewer.layers["ts labels [2]"]
    assert len(notes["info"]) == 1 and "'ts labels [2]'" in notes["info"][0]
    np.testing.assert_array_equal(
        second.data, autolabel(image, thresholds=(0.2, 0.3, 0.5, 0.7))
    )
    # the untouched new layer is the target from now on
    widget.set_thresholds((0.25, 0.4, 0.6, 0.75))
    widget.apply()
    assert len(viewer.layers) == 3
    np.testing.assert_array_equal(second.data, autolabel(image))


def test_stack_current_plane_and_all_planes(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    stack = np.stack([thin_section(s, (40, 48)) for s in range(4)])
    stack[1] = stack[1] // 2  # a darker plane
    viewer.add_image(stack, name="st", rgb=True)
    widget = _dock(viewer, qtbot)
    assert widget.is_stack()
    assert not widget.scope_combo.isHidden()

    viewer.dims.set_current_step(0, 1)
    assert widget.current_plane() == 1
    widget.scope_combo.setCurrentText(CURRENT_PLANE)
    assert widget.apply() is None
    layer = viewer.layers["st labels"]
    assert layer.data.shape == (4, 40, 48)
    np.testing.assert_array_equal(layer.data[1], autolabel(stack[1]))
    assert not layer.data[[0, 2, 3]].any()

    widget.scope_combo.setCurrentText(ALL_PLANES)
    statuses = []
    shown = widget._set_status
    widget._set_status = lambda text, error=False: (
        statuses.append(text),
        shown(text, error),
    )
    worker = widget.apply()
    assert worker is not None
    qtbot.waitUntil(lambda: widget._worker is None, timeout=10000)
    # each plane on the status line (with the time left once known)
    for k in range(1, 5):
        assert any(s.startswith(f"labelling plane {k} of 4") for s in statuses)
    assert statuses[-1] == "4 planes written to 'st labels'"
    expected = run(autolabel_stack(stack))
    np.testing.assert_array_equal(layer.data, expected)
    assert widget.apply_button.isEnabled()
    assert len(viewer.layers) == 2


def test_all_planes_error_is_told(make_napari_viewer, qtbot, errors):
    viewer = make_napari_viewer()
    stack = np.stack([thin_section(s, (40, 48))[..., 0] for s in range(3)])
    viewer.add_image(stack, name="st")
    widget = _dock(viewer, qtbot)
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("epoxy"))
    widget.scope_combo.setCurrentText(ALL_PLANES)
    assert widget.apply() is not None
    qtbot.waitUntil(lambda: widget._worker is None, timeout=10000)
    assert len(errors) == 1 and "colour" in errors[0]
    assert "colour" in widget.status_label.text()
    assert "st labels" not in viewer.layers
    assert widget.apply_button.isEnabled()


def test_picker_follows_viewer_layers(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = _dock(viewer, qtbot)
    assert widget.image_layer is None
    widget.apply()  # nothing to do, no crash
    a = viewer.add_image(thin_section(), name="a")
    viewer.add_labels(np.zeros((64, 80), np.uint8), name="not an image")
    b = viewer.add_image(thin_section(1), name="b")
    assert list(widget.image_combo.choices) == [a, b]
    widget.image_combo.value = b
    viewer.layers.remove(a)
    assert list(widget.image_combo.choices) == [b]
    assert widget.image_layer is b


def test_large_planes_are_smoothed_in_a_thread(
    make_napari_viewer, qtbot, monkeypatch, errors
):
    monkeypatch.setattr(widget_module, "SYNC_PIXELS", 0)  # all "large"
    viewer = make_napari_viewer()
    image = thin_section(6)
    viewer.add_image(image, name="ts")
    widget = _dock(viewer, qtbot)
    widget.preview_check.setChecked(True)
    widget.refresh()
    assert widget._cache_worker is not None  # the GUI thread did not wait
    widget.refresh()  # queued behind the running worker, not a second one
    qtbot.waitUntil(lambda: "ts labels" in viewer.layers, timeout=5000)
    layer = viewer.layers["ts labels"]
    np.testing.assert_array_equal(layer.data, autolabel(image))

    # a threshold change needs no worker: the cached gray is re-binned
    widget.threshold_spins[0].setValue(0.3)
    widget.refresh()
    assert widget._cache_worker is None
    np.testing.assert_array_equal(
        layer.data, autolabel(image, thresholds=(0.3, 0.4, 0.6, 0.75))
    )

    # Apply with a new sigma waits for the worker, then writes
    widget.sigma_spin.setValue(2.0)
    assert widget.apply() is not None
    params = widget.params()
    qtbot.waitUntil(lambda: widget._cache_worker is None, timeout=5000)
    np.testing.assert_array_equal(layer.data, autolabel(image, params))

    # an error in the worker is told once and not retried forever
    gray = viewer.add_image(image[..., 1], name="gray")
    widget.image_combo.value = gray
    widget.method_combo.setCurrentIndex(widget.method_combo.findData("epoxy"))
    widget.refresh()
    qtbot.waitUntil(lambda: widget._cache_worker is None, timeout=5000)
    assert len(errors) == 1 and "colour" in errors[0]
    assert widget.cache.gray is not None  # the histogram still has its data
    assert "gray labels" not in viewer.layers
