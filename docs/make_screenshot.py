"""Make the README's screenshots of the real viewer with the plugin.

``docs/screenshot.png``: auto-label, colours and export on the seed thin
section. ``docs/screenshot_predict.png``: the default model's prediction,
the Predict and Train widgets. ``docs/screenshot_measure.png``: the Measure
dock on blue-epoxy auto-labels. Run under a (virtual)
screen::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python \\
        docs/make_screenshot.py
"""

import time
from pathlib import Path

import imageio.v3 as iio
import napari
import numpy as np
from qtpy.QtWidgets import QApplication

HERE = Path(__file__).parent


def settle(seconds=0.5):
    end = time.time() + seconds
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def shoot(viewer, name):
    settle()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    iio.imwrite(HERE / name, np.asarray(shot))
    print(f"wrote {HERE / name} ({shot.shape[1]}x{shot.shape[0]})")


def labelling(viewer):
    viewer.open_sample("napari-thinseg", "seed")
    viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Petrographic colours"
    )
    viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Export annotations", tabify=True
    )
    _, auto = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Auto-label", tabify=True
    )
    # blue-epoxy aware labels, shown half transparent over the rock
    auto.method_combo.setCurrentIndex(auto.method_combo.findData("epoxy"))
    auto.apply()
    viewer.layers["sandstone (seed) labels"].opacity = 0.6
    shoot(viewer, "screenshot.png")


def prediction(viewer):
    viewer.open_sample("napari-thinseg", "seed")
    viewer.layers["sandstone (seed) annotation"].visible = False
    viewer.window.add_plugin_dock_widget("napari-thinseg", "Train")
    _, predict = viewer.window.add_plugin_dock_widget(
        "napari-thinseg", "Predict", tabify=True
    )
    predict.set_model("default")
    predict.confidence.setChecked(True)
    predict.predict()
    deadline = time.time() + 600
    while predict.worker is not None and time.time() < deadline:
        settle(0.2)
    viewer.layers["sandstone (seed) confidence"].visible = False
    viewer.layers["sandstone (seed) prediction"].opacity = 0.7
    shoot(viewer, "screenshot_predict.png")


def measuring(viewer):
    from napari_thinseg import SEED, autolabel
    from napari_thinseg._napari.layers import labels_layer_data

    viewer.open_sample("napari-thinseg", "seed")
    image = viewer.layers["sandstone (seed)"]
    viewer.layers.remove("sandstone (seed) annotation")
    labels = autolabel(image.data, method="epoxy")
    data, kwargs, _ = labels_layer_data(labels, SEED, "sandstone labels")
    viewer.add_labels(data, opacity=0.55, **kwargs)
    _, dock = viewer.window.add_plugin_dock_widget("napari-thinseg", "Measure")
    dock.refresh()
    deadline = time.time() + 120
    while dock.is_busy() and time.time() < deadline:
        settle(0.2)
    shoot(viewer, "screenshot_measure.png")


def main():
    for make in (labelling, prediction, measuring):
        viewer = napari.Viewer(title="napari-thinseg")
        viewer.window.resize(1500, 950)
        make(viewer)
        viewer.close()


if __name__ == "__main__":
    main()
