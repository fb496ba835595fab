"""Make docs/screenshot.png: the real viewer with the plugin's widgets.

Run under a (virtual) screen::

    xvfb-run -a .venv/bin/python docs/make_screenshot.py
"""

from pathlib import Path

import imageio.v3 as iio
import napari
import numpy as np
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).with_name("screenshot.png")


def main():
    viewer = napari.Viewer(title="napari-thinseg")
    viewer.window.resize(1500, 950)
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
    for _ in range(50):
        QApplication.processEvents()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    iio.imwrite(OUT, np.asarray(shot))
    print(f"wrote {OUT} ({shot.shape[1]}x{shot.shape[0]})")
    viewer.close()


if __name__ == "__main__":
    main()
