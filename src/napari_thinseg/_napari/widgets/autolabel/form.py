"""The Auto-label widget's form: its controls, what they say, and the gray
thresholds kept strictly increasing between their spin boxes and sliders.

:class:`AutoLabelForm` builds and reads the controls; what happens when
they change (previews, Apply) is :class:`.autolabel.AutoLabelWidget`'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from magicgui.widgets import ComboBox
from napari.layers import Image
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ....autolabel.rule import (
    DEFAULT_THRESHOLDS,
    AutoLabelParams,
    EpoxyWindow,
    check_thresholds,
)
from ....errors import ThinsegError
from ...pixel_scale import follow_file_pixel_sizes
from .._common import LAYER_CHOICE, status_label
from .histogram import ThresholdHistogram
from .hsv import HueSaturationView

#: threshold resolution of the spin boxes and the gap kept between them
T_STEP = 0.001
SLIDER_MAX = 1000
METHOD_TEXT = {
    "gray": "gray thresholds",
    "multiotsu": "multi-Otsu",
    "epoxy": "blue epoxy + gray",
}
CURRENT_PLANE, ALL_PLANES = "current plane", "all planes"
EPOXY_FIELDS = {
    "hue_min": "hue from",
    "hue_max": "hue to",
    "min_saturation": "min saturation",
    "min_value": "min value",
}


class AutoLabelForm(QWidget):
    """The controls of the Auto-label widget, read as
    :class:`AutoLabelParams`.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        Whose image layers the picker lists.

    Attributes
    ----------
    thresholds_changed : Signal()
        A gray threshold changed (by spin box, slider, mouse or
        :meth:`set_thresholds`).
    """

    thresholds_changed = Signal()

    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        follow_file_pixel_sizes(napari_viewer)
        self._build_form()

    def _build_form(self) -> None:
        layout = QVBoxLayout(self)
        form = QFormLayout()
        layout.addLayout(form)

        self.image_combo = ComboBox(choices=self._image_choices)
        self.image_combo.native.setProperty(LAYER_CHOICE, True)
        self.image_combo.native.setToolTip("Image layer to label")
        form.addRow("image", self.image_combo.native)

        self.method_combo = QComboBox()
        for key, text in METHOD_TEXT.items():
            self.method_combo.addItem(text, key)
        self.method_combo.setToolTip(
            "gray: fixed gray thresholds (the seed rule); multi-Otsu: "
            "thresholds found from the histogram; blue epoxy: pore class "
            "where the colour is blue dye"
        )
        form.addRow("method", self.method_combo)

        self.sigma_spin = QDoubleSpinBox()
        self.sigma_spin.setRange(0.0, 100.0)
        self.sigma_spin.setDecimals(2)
        self.sigma_spin.setSingleStep(0.5)
        self.sigma_spin.setValue(AutoLabelParams().sigma)
        self.sigma_spin.setToolTip("Gaussian smoothing in pixels (0 = none)")
        form.addRow("sigma", self.sigma_spin)

        self.scope_combo = QComboBox()
        self.scope_combo.addItems([CURRENT_PLANE, ALL_PLANES])
        self.scope_label = QLabel("planes")
        form.addRow(self.scope_label, self.scope_combo)

        layout.addWidget(self._build_thresholds())
        layout.addWidget(self._build_otsu())
        layout.addWidget(self._build_epoxy())

        self.histogram = ThresholdHistogram(self.viewer, self._drag_threshold)
        self.hist_canvas = self.histogram.canvas
        self.ax = self.histogram.ax
        layout.addWidget(self.hist_canvas)

        row = QHBoxLayout()
        self.preview_check = QCheckBox("live preview")
        self.preview_check.setToolTip(
            "Update the labels layer as you change the settings"
        )
        self.apply_button = QPushButton("Apply")
        self.apply_button.setToolTip("Write the labels into '<image> labels'")
        row.addWidget(self.preview_check)
        row.addStretch()
        row.addWidget(self.apply_button)
        layout.addLayout(row)
        self.status_label = status_label()
        layout.addWidget(self.status_label)
        layout.addStretch()

        self.method_combo.currentIndexChanged.connect(self._show_method_boxes)
        self._show_method_boxes()

    def _build_thresholds(self) -> QGroupBox:
        """Gray thresholds: a slider and a spin box per threshold."""
        self.threshold_box = QGroupBox("gray thresholds")
        grid = QGridLayout(self.threshold_box)
        self.threshold_spins: list[QDoubleSpinBox] = []
        self.threshold_sliders: list[QSlider] = []
        for i, value in enumerate(DEFAULT_THRESHOLDS):
            spin = QDoubleSpinBox()
            spin.setDecimals(3)
            spin.setSingleStep(0.005)
            spin.setRange(T_STEP, 1 - T_STEP)
            spin.setValue(value)
            slider = QSlider(Qt.Orientation.Horizontal)
            slider.setRange(1, SLIDER_MAX - 1)
            slider.setValue(round(value * SLIDER_MAX))
            spin.valueChanged.connect(lambda _v, i=i: self._on_spin(i))
            slider.valueChanged.connect(lambda v, i=i: self._on_slider(i, v))
            grid.addWidget(QLabel(f"t{i + 1}"), i, 0)
            grid.addWidget(slider, i, 1)
            grid.addWidget(spin, i, 2)
            self.threshold_spins.append(spin)
            self.threshold_sliders.append(slider)
        self._update_ranges()
        return self.threshold_box

    def _build_otsu(self) -> QGroupBox:
        self.otsu_box = QGroupBox("multi-Otsu")
        otsu = QFormLayout(self.otsu_box)
        self.n_classes_spin = QSpinBox()
        self.n_classes_spin.setRange(2, 8)
        self.n_classes_spin.setValue(AutoLabelParams().n_classes)
        otsu.addRow("classes", self.n_classes_spin)
        self.otsu_label = QLabel("-")
        self.otsu_label.setWordWrap(True)
        otsu.addRow("found", self.otsu_label)
        self.use_otsu_button = QPushButton("use as gray thresholds")
        self.use_otsu_button.setToolTip(
            "Copy the four thresholds found (5 classes) to the gray method "
            "to fine-tune them by hand"
        )
        self.use_otsu_button.setEnabled(False)
        otsu.addRow(self.use_otsu_button)
        return self.otsu_box

    def _build_epoxy(self) -> QGroupBox:
        """The blue-dye epoxy: found in the image, or a fixed window."""
        self.epoxy_box = QGroupBox("blue-dye epoxy")
        epoxy = QFormLayout(self.epoxy_box)
        #: colours (RGB in [0, 1]) of the clicked dye
        self.epoxy_samples: tuple = ()
        self.epoxy_auto_check = QCheckBox("find the dye in the image")
        self.epoxy_auto_check.setChecked(True)
        self.epoxy_auto_check.setToolTip(
            "Find the one bluish population of the photo after white "
            "balance (clicks refine it); off: the fixed HSV window below"
        )
        epoxy.addRow(self.epoxy_auto_check)
        self.epoxy_spins: dict[str, QDoubleSpinBox] = {}
        for name, text in EPOXY_FIELDS.items():
            spin = QDoubleSpinBox()
            spin.setRange(0.0, 1.0)
            spin.setDecimals(3)
            spin.setSingleStep(0.01)
            spin.setValue(getattr(EpoxyWindow(), name))
            if name.startswith("hue"):
                spin.setToolTip("hue as a fraction of 360 degrees")
            epoxy.addRow(text, spin)
            self.epoxy_spins[name] = spin
        self.pick_epoxy_button = QPushButton("Click the epoxy…")
        self.pick_epoxy_button.setToolTip(
            "Then click on a pore's dyed epoxy in the image: its colour is "
            "a sample that refines the dye found (click again for more)"
        )
        self.forget_samples_button = QPushButton("forget clicks")
        self.forget_samples_button.setToolTip("Drop the clicked samples")
        self.forget_samples_button.setEnabled(False)
        row = QHBoxLayout()
        row.addWidget(self.pick_epoxy_button)
        row.addWidget(self.forget_samples_button)
        epoxy.addRow(row)
        self.hsv_view = HueSaturationView(self.viewer)
        epoxy.addRow(self.hsv_view.canvas)
        for spin in self.epoxy_spins.values():
            spin.valueChanged.connect(self._show_colours)
        self.epoxy_auto_check.toggled.connect(self._on_epoxy_auto)
        self._on_epoxy_auto()
        return self.epoxy_box

    def _on_epoxy_auto(self, *_) -> None:
        auto = self.epoxy_auto_check.isChecked()
        for spin in self.epoxy_spins.values():
            spin.setEnabled(not auto)
        self._show_colours()

    def _epoxy_found(self):
        """``(mask, fit)`` of the dye found in the shown plane (None: not
        known yet); the widget's cache knows it."""
        return None

    def _show_colours(self, *_) -> None:
        """The hue / saturation view of the shown plane, with the window."""
        layer = self.image_layer
        if layer is None or self.method() != "epoxy":
            return
        try:
            params = self.params()
        except ThinsegError:
            return  # an empty window: its spins say so
        found = None if params.epoxy is not None else self._epoxy_found()
        self.hsv_view.show(
            self._plane_image(layer), params.epoxy, found, params.epoxy_samples
        )

    def _image_choices(self, _widget=None) -> list[tuple[str, Image]]:
        return [
            (layer.name, layer)
            for layer in self.viewer.layers
            if isinstance(layer, Image)
        ]

    # -- reading -----------------------------------------------------------
    @property
    def image_layer(self) -> Image | None:
        """The image layer chosen in the picker (None if there is none)."""
        return self.image_combo.value

    @property
    def threshold_lines(self) -> list:
        """The threshold lines drawn on the histogram."""
        return self.histogram.lines

    def method(self) -> str:
        """The chosen method key: ``gray``, ``multiotsu`` or ``epoxy``."""
        return self.method_combo.currentData()

    def thresholds(self) -> tuple[float, ...]:
        """The four gray thresholds as shown."""
        return tuple(spin.value() for spin in self.threshold_spins)

    def params(self) -> AutoLabelParams:
        """The settings as :class:`AutoLabelParams` (may raise ThinsegError).

        The epoxy window is read only for the epoxy method, and only when
        the dye is not found in the image (which the clicks refine).
        """
        method = self.method()
        window, samples = None, ()
        if method == "epoxy" and not self.epoxy_auto_check.isChecked():
            window = EpoxyWindow(
                **{k: s.value() for k, s in self.epoxy_spins.items()}
            )
        elif method == "epoxy":
            samples = self.epoxy_samples
        return AutoLabelParams(
            method=method,
            thresholds=self.thresholds(),
            sigma=self.sigma_spin.value(),
            n_classes=self.n_classes_spin.value(),
            epoxy=window,
            epoxy_samples=samples,
        )

    # -- the thresholds ------------------------------------------------------
    def set_thresholds(self, values: Sequence[float]) -> None:
        """Show ``values`` (four increasing numbers in (0, 1)).

        Raises
        ------
        ThinsegError
            If the values are not four strictly increasing thresholds at
            the widget's 0.001 resolution.
        """
        values = check_thresholds(values)
        rounded = tuple(
            min(max(round(v, 3), T_STEP), 1 - T_STEP) for v in values
        )
        if len(rounded) != len(self.threshold_spins):
            raise ThinsegError(
                f"the widget takes {len(self.threshold_spins)} gray "
                f"thresholds, got {len(rounded)}"
            )
        check_thresholds(rounded)
        pairs = zip(rounded, rounded[1:], strict=False)
        if any(b - a < T_STEP / 2 for a, b in pairs):
            raise ThinsegError(f"thresholds too close: {values}")
        for spin, slider, value in zip(
            self.threshold_spins,
            self.threshold_sliders,
            rounded,
            strict=True,
        ):
            spin.blockSignals(True)
            spin.setRange(T_STEP, 1 - T_STEP)
            spin.setValue(value)
            spin.blockSignals(False)
            slider.blockSignals(True)
            slider.setValue(round(value * SLIDER_MAX))
            slider.blockSignals(False)
        self._update_ranges()
        self.thresholds_changed.emit()

    def _drag_threshold(self, i: int, x: float) -> None:
        self.threshold_spins[i].setValue(x)  # clamps between neighbours

    def _on_spin(self, i: int) -> None:
        spin, slider = self.threshold_spins[i], self.threshold_sliders[i]
        slider.blockSignals(True)
        slider.setValue(round(spin.value() * SLIDER_MAX))
        slider.blockSignals(False)
        self._update_ranges()
        self.thresholds_changed.emit()

    def _on_slider(self, i: int, position: int) -> None:
        spin, slider = self.threshold_spins[i], self.threshold_sliders[i]
        spin.setValue(position / SLIDER_MAX)  # clamps between neighbours
        if slider.value() != round(spin.value() * SLIDER_MAX):
            slider.blockSignals(True)
            slider.setValue(round(spin.value() * SLIDER_MAX))
            slider.blockSignals(False)

    def _update_ranges(self) -> None:
        """Keep thresholds strictly increasing: each between neighbours."""
        values = self.thresholds()
        n = len(values)
        for i, spin in enumerate(self.threshold_spins):
            lo = values[i - 1] + T_STEP if i > 0 else T_STEP
            hi = values[i + 1] - T_STEP if i < n - 1 else 1 - T_STEP
            spin.blockSignals(True)
            spin.setRange(round(lo, 3), round(hi, 3))
            spin.blockSignals(False)

    def _show_method_boxes(self, *_) -> None:
        """Show the settings of the chosen method only."""
        method = self.method()
        self.threshold_box.setVisible(method != "multiotsu")
        self.otsu_box.setVisible(method == "multiotsu")
        self.epoxy_box.setVisible(method == "epoxy")
