"""Where to correct next: the least certain places of a prediction as a
Points layer to step through.

The Predict widget, with "where to correct next" on, writes
:func:`napari_thinseg.strokes.next_places.next_places` of each
prediction as the Points layer ``"<image> where to correct"`` just above
its class map: rings numbered worst first (bigger for the worse ones),
with ``rank``, ``score`` and predicted ``class`` as features, so
napari's status bar names them. Where the Train widget's quick preview
(``"<image> preview"``) is open, the places where it and the model
disagree count too. :class:`PlaceStepper` ("previous" / "next place",
or ``b`` / ``n`` on the Points layer) centres the camera on a place,
selects it and rings it in another colour, and leaves the active layer
alone, so the user can paint on the labels straight away.
"""

from __future__ import annotations

import numpy as np
from napari.layers import Labels, Points
from qtpy.QtWidgets import QHBoxLayout, QVBoxLayout, QWidget

from ....schemes import ClassScheme
from ....strokes.next_places import BRUSH, Place, next_places
from ...layers import PREVIEW_KEY
from .._common import button, layer_array, status_label
from ..predict.model_output import placement

PLACES_KEY = "thinseg_places"
"""``metadata`` key of the Points layers of places to correct."""
RING = (1.0, 0.85, 0.0, 1.0)  # amber: seen on class colours and on gray
CURRENT_RING = (0.0, 1.0, 1.0, 1.0)  # cyan: the place stepped to
NO_PLACES = "no places yet: predict with 'where to correct next' on"


def preview_of(viewer, image, shape) -> np.ndarray | None:
    """The quick preview's class map of ``image`` (the Train widget's
    ``"<image> preview"``), when one of ``shape`` is open."""
    name = f"{image.name} preview"
    for layer in viewer.layers:
        if (
            layer.name == name
            and isinstance(layer, Labels)
            and PREVIEW_KEY in layer.metadata
            and layer_array(layer).shape == tuple(shape)
        ):
            return layer_array(layer)
    return None


def class_name(scheme: ClassScheme, class_id: int) -> str:
    """The scheme's name of ``class_id`` ("unlabelled" for 0)."""
    try:
        return scheme[class_id].name
    except KeyError:
        return "unlabelled" if class_id == 0 else str(class_id)


def places_features(places: list[Place], scheme: ClassScheme) -> dict:
    """The Points layer's features: rank (1 is the worst), score, class."""
    return {
        "rank": np.arange(1, len(places) + 1),
        "score": np.round([p.score for p in places], 3),
        "class": [class_name(scheme, p.class_id) for p in places],
    }


def ring_sizes(n: int) -> np.ndarray:
    """Ring diameters in pixels, from 4 brushes (the worst) to 2."""
    return BRUSH * (4.0 - 2.0 * np.arange(n) / max(1, n - 1))


def write_places(viewer, image, labels_layer, prediction, scheme) -> Points:
    """Write the least certain places of ``prediction`` (its labels and
    confidence) as ``"<image> where to correct"``, just above
    ``labels_layer``; an existing such layer is updated in place.
    Returns the Points layer."""
    labels = np.asarray(prediction.labels)
    other = preview_of(viewer, image, labels.shape)
    places = next_places(prediction.confidence, labels, other)
    name = f"{image.name} where to correct"
    data = np.array([(p.y, p.x) for p in places], float).reshape(-1, 2)
    style = {
        "size": ring_sizes(len(places)),
        "features": places_features(places, scheme),
        "face_color": "transparent",
        "border_color": np.asarray(RING),
    }
    active = viewer.layers.selection.active
    found = [ly for ly in viewer.layers if ly.name == name]
    if found and isinstance(layer := found[0], Points):
        layer.selected_data = set()
        layer.data = data
        for attribute, value in {**placement(image), **style}.items():
            setattr(layer, attribute, value)
        layer.metadata = {**layer.metadata, PLACES_KEY: True}
        layer.refresh()
    else:
        layer = viewer.add_points(
            data,
            name=name,
            **placement(image),
            **style,
            border_width=0.12,
            text={
                "string": "{rank}",
                "color": RING,
                "size": 11,
                # beside the largest ring, off the pixels to look at
                "translation": np.array([-2.0, 2.0]) * BRUSH,
                "anchor": "lower_left",
            },
            metadata={PLACES_KEY: True},
        )
    layers = viewer.layers
    if labels_layer in layers:
        # near the class map it is about, above it so the rings show
        to = layers.index(labels_layer) + 1
        at = layers.index(layer)
        if at != to:
            layers.move(at, to if at > to else to - 1)
    layer.mode = "pan_zoom"  # a click on the canvas adds no place
    if active is not None and active in layers:
        # the user paints next, not on the places
        layers.selection.active = active
    return layer


def step_to(viewer, layer: Points, step: int) -> int | None:
    """Go ``step`` places on (``-1``: back) from the selected one in
    ``layer``: centre the camera on it (at least one screen pixel per
    image pixel), select it and ring it in cyan. Returns its index, or
    ``None`` when the layer holds no place."""
    n = len(layer.data)
    if n == 0:
        return None
    selected = sorted(layer.selected_data)
    if len(selected) == 1:
        index = (selected[0] + step) % n
    else:  # nothing (or several) selected: start at the worst
        index = 0 if step >= 0 else n - 1
    colors = np.tile(RING, (n, 1))
    colors[index] = CURRENT_RING
    layer.border_color = colors
    layer.selected_data = {index}
    camera = camera_of(viewer)
    camera.center = tuple(layer.data_to_world(layer.data[index]))
    pixel = float(np.min(np.abs(layer.scale[-2:])))
    if pixel > 0:  # close enough to paint there
        camera.zoom = max(camera.zoom, 1.0 / pixel)
    return index


def camera_of(viewer):
    """The viewer's camera (napari 0.9 moved it to ``viewer.scene``)."""
    return getattr(viewer, "scene", viewer).camera


def describe(layer: Points, index: int) -> str:
    """``"place 2 of 20: quartz, uncertainty 0.41"``."""
    features = layer.features
    text = f"place {index + 1} of {len(layer.data)}"
    if {"class", "score"} <= set(features.columns):
        row = features.iloc[index]
        text += f": {row['class']}, uncertainty {float(row['score']):.2f}"
    return text


class PlaceStepper(QWidget):
    """ "previous" / "next place" buttons and a line that names the place.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer.

    Attributes
    ----------
    layer : napari.layers.Points or None
        The places layer written last (:meth:`show_places`).
    """

    def __init__(self, viewer):
        super().__init__()
        self.viewer = viewer
        self.layer: Points | None = None
        self.previous_button = button(
            "◀ previous", lambda: self.step(-1), "The place before (b)"
        )
        self.next_button = button(
            "next place ▶",
            lambda: self.step(1),
            "Centre the view on the next least certain place (n)",
        )
        self.status_label = status_label()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.previous_button)
        row.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.status_label)

    def show_places(self, image, labels_layer, prediction, scheme) -> Points:
        """Write the places of ``prediction`` (:func:`write_places`) and
        make them the ones to step through."""
        self.layer = write_places(
            self.viewer, image, labels_layer, prediction, scheme
        )
        for key, step in (("n", 1), ("b", -1)):
            # while the places layer is the selected one
            self.layer.bind_key(
                key, lambda _layer, s=step: self.step(s), overwrite=True
            )
        n = len(self.layer.data)
        self.status_label.setText(
            f"{n} places to correct, worst first: next place ▶"
            if n
            else f"{image.name}: the model is sure everywhere"
        )
        return self.layer

    def places_layer(self) -> Points | None:
        """The layer to step through: the selected layer if it is one of
        places, else the one written last, else the topmost in the
        viewer; ``None`` when there is none."""
        layers = self.viewer.layers
        active = layers.selection.active
        if isinstance(active, Points) and PLACES_KEY in active.metadata:
            return active
        if self.layer is not None and self.layer in layers:
            return self.layer
        found = [
            ly
            for ly in layers
            if isinstance(ly, Points) and PLACES_KEY in ly.metadata
        ]
        return found[-1] if found else None

    def step(self, step: int) -> int | None:
        """Go ``step`` places on (``-1``: back); returns the index, or
        ``None`` (and says why on the status line) when there is no
        place to go to."""
        layer = self.places_layer()
        index = None if layer is None else step_to(self.viewer, layer, step)
        if index is None:
            self.status_label.setText(
                NO_PLACES if layer is None else f"{layer.name}: no places"
            )
            return None
        self.status_label.setText(describe(layer, index))
        return index
