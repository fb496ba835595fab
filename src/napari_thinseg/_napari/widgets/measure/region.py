"""What the Measure dock counts: the plane of a Labels layer the viewer
shows, the region to count in (the shapes of a Shapes layer or the nonzero
pixels of another Labels layer) and the pixel size: a layer's scale, or
the entry for it.
"""

from __future__ import annotations

import math

import numpy as np
from napari.layers import Labels, Shapes
from qtpy.QtWidgets import QDoubleSpinBox, QWidget

from ....errors import ThinsegError
from .._common import LayerCombo, layer_array

WHOLE_IMAGE = "(whole image)"
"""Region combo entry: count every labelled pixel."""


def scale_pixel_size(layer) -> float | None:
    """Micrometres per pixel from a layer's scale (last two axes), or
    ``None`` when the scale is 1 (napari's default: no unit known)."""
    sy, sx = (float(v) for v in np.asarray(layer.scale)[-2:])
    if sy == 1.0 and sx == 1.0:
        return None
    if sy <= 0 or sx <= 0:
        return None
    return math.sqrt(sy * sx)


def pixel_size_box() -> QDoubleSpinBox:
    """The pixel size entry: micrometres per pixel, 0 shown as
    'unknown'."""
    box = QDoubleSpinBox()
    box.setRange(0.0, 1e6)
    box.setDecimals(4)
    box.setSingleStep(0.1)
    box.setSuffix(" µm/px")
    box.setSpecialValueText("unknown")
    box.setToolTip(
        "Micrometres per pixel (areas in mm² and grain sizes in phi "
        "need it; 'unknown' gives pixels only)"
    )
    return box


def displayed_plane(layer, viewer) -> tuple[np.ndarray, tuple[int, ...]]:
    """The 2D plane of ``layer`` that the viewer shows, and its index.

    A 2D layer is its own plane (index ``()``); for a stack the leading
    indices come from the viewer's current point.
    """
    data = layer_array(layer)
    if data.ndim < 2:
        raise ThinsegError(f"{layer.name}: not an image ({data.ndim}D)")
    if data.ndim == 2:
        return data, ()
    point = np.asarray(layer.world_to_data(viewer.dims.point))
    index = tuple(
        int(np.clip(round(float(p)), 0, n - 1))
        for p, n in zip(point[:-2], data.shape[:-2], strict=True)
    )
    return data[index], index


def shapes_mask(shapes, labels, shape: tuple[int, int]) -> np.ndarray:
    """Rasterise a Shapes layer onto the pixel grid of a Labels layer.

    The last two coordinates of every vertex go through the two layers'
    scale and translate (rotation, shear and affine are not followed).
    A pixel is inside when napari's rasterisation puts its centre inside a
    shape; overlapping shapes are joined.
    """
    if len(shapes.data) == 0:
        raise ThinsegError(
            f"region {shapes.name!r} has no shapes: draw one, or choose "
            f"{WHOLE_IMAGE}"
        )
    s_scale = np.asarray(shapes.scale, float)[-2:]
    s_shift = np.asarray(shapes.translate, float)[-2:]
    l_scale = np.asarray(labels.scale, float)[-2:]
    l_shift = np.asarray(labels.translate, float)[-2:]
    vertices = [
        ((np.asarray(v, float)[:, -2:] * s_scale) + s_shift - l_shift)
        / l_scale
        for v in shapes.data
    ]
    flat = Shapes(vertices, shape_type=list(shapes.shape_type))
    masks = np.asarray(flat.to_masks(mask_shape=np.asarray(shape)))
    return masks.reshape(-1, *shape).any(axis=0)


def labels_mask(region, viewer, shape: tuple[int, int]) -> np.ndarray:
    """A Labels layer as a region: its nonzero pixels (shown plane)."""
    plane, _ = displayed_plane(region, viewer)
    if plane.shape != tuple(shape):
        raise ThinsegError(
            f"region {region.name!r} is {plane.shape[0]}x{plane.shape[1]} "
            f"pixels; the labels are {shape[0]}x{shape[1]}"
        )
    return np.asarray(plane) != 0


def measured_plane(
    layer, region, viewer
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The plane of ``layer`` to measure (a copy), the mask of ``region``
    on it (None for the whole image) and the name of the measurement:
    the layer's, with the plane index of a stack and the region's name.

    Raises
    ------
    ThinsegError
        A region that does not fit the labels, an empty Shapes layer.
    """
    plane, index = displayed_plane(layer, viewer)
    shape = tuple(plane.shape)
    mask = None
    name = layer.name
    if index:
        name += f" [{', '.join(str(i) for i in index)}]"
    if isinstance(region, Shapes):
        mask = shapes_mask(region, layer, shape)
    elif region is not None:
        mask = labels_mask(region, viewer, shape)
    if region is not None:
        name += f" in {region.name}"
    return np.array(plane, copy=True), mask, name


class RegionCombo(LayerCombo):
    """Region choices: :data:`WHOLE_IMAGE`, then Shapes and Labels layers
    (except the Labels layer being measured)."""

    exclude = None

    def __init__(self, viewer, parent: QWidget = None):
        super().__init__(viewer, (Shapes, Labels), parent)

    def set_exclude(self, layer) -> None:
        """Leave ``layer`` out of the choices."""
        self.exclude = layer
        self.refresh()

    def layers(self) -> list:
        return [ly for ly in super().layers() if ly is not self.exclude]

    def refresh(self) -> None:
        previous = self._current
        layers = self.layers()
        self.blockSignals(True)
        try:
            self.clear()
            self.addItem(WHOLE_IMAGE, None)
            for layer in layers:
                kind = "shapes" if isinstance(layer, Shapes) else "mask"
                self.addItem(f"{layer.name} ({kind})", layer)
            index = next(
                (i + 1 for i, ly in enumerate(layers) if ly is previous), 0
            )
            self.setCurrentIndex(index)
        finally:
            self.blockSignals(False)
        self._on_index(self.currentIndex())
