"""Where to correct next in the Predict widget, on a real viewer (the tiny
model of ``test_widget_predict``)."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Points
from test_widget_predict import (
    add_image,
    open_widget,
    register,
    run_prediction,
    trained,  # noqa: F401 (a fixture)
)

from napari_thinseg._napari.layers import PREVIEW_KEY
from napari_thinseg._napari.widgets.correct.next_places import (
    NO_PLACES,
    PLACES_KEY,
    camera_of,
)
from napari_thinseg._napari.widgets.predict.dock import MODEL_TRAINED
from napari_thinseg.schemes import SEED

SHAPE = (128, 160)  # room for a few places five brushes apart

pytestmark = pytest.mark.usefixtures("no_trained_models")


def centre(viewer):
    return np.asarray(camera_of(viewer).center)[-2:]


def test_places_appear_after_a_prediction_and_can_be_stepped_through(
    make_napari_viewer,
    qtbot,
    notes,
    trained,  # noqa: F811
):
    viewer = make_napari_viewer()
    result, _ = trained()
    register(result)
    image = add_image(
        viewer, shape=SHAPE, scale=(2.0, 3.0), translate=(5.0, 7.0)
    )
    widget = open_widget(viewer)
    widget.set_model(MODEL_TRAINED)
    stepper = widget.stepper

    # nothing predicted yet: a line on the status, not an error
    assert stepper.step(1) is None
    stepper.next_button.click()
    assert stepper.status_label.text() == NO_PLACES
    assert notes["error"] == [] and notes["warning"] == []

    widget.places.setChecked(True)
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None and notes["error"] == []
    places = viewer.layers["ts where to correct"]
    assert isinstance(places, Points) and PLACES_KEY in places.metadata
    assert "ts confidence" not in viewer.layers  # not asked for
    n = len(places.data)
    assert 2 <= n <= 20
    # on the image, in its place, just above the class map
    assert (places.data >= 0).all() and (places.data < SHAPE).all()
    np.testing.assert_allclose(places.scale, image.scale)
    np.testing.assert_allclose(places.translate, image.translate)
    names = [ly.name for ly in viewer.layers]
    assert names.index("ts where to correct") == (
        names.index("ts prediction") + 1
    )
    # worst first, with the class the prediction gives each place
    features = places.features
    assert list(features["rank"]) == list(range(1, n + 1))
    scores = list(features["score"])
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
    labels = viewer.layers["ts prediction"].data
    assert list(features["class"]) == [
        SEED[int(labels[int(y), int(x)])].name for y, x in places.data
    ]
    assert places.size[0] > places.size[-1]  # the worst ring is biggest
    assert list(places.text.values) == [str(k) for k in range(1, n + 1)]
    assert str(n) in stepper.status_label.text()
    # the user paints next: the places did not take the active layer
    assert viewer.layers.selection.active is viewer.layers["ts prediction"]

    # next, next, back, back (wrapping to the last)
    expected = [0, 1, 0, n - 1]
    for step, index in zip([1, 1, -1, -1], expected, strict=True):
        assert stepper.step(step) == index
        assert places.selected_data == {index}
        np.testing.assert_allclose(
            centre(viewer), places.data_to_world(places.data[index])[-2:]
        )
        assert f"place {index + 1} of {n}: " in stepper.status_label.text()
    stepper.next_button.click()
    assert places.selected_data == {0}
    assert camera_of(viewer).zoom >= 1 / 2.0  # one screen pixel per pixel
    np.testing.assert_allclose(places.border_color[0], (0, 1, 1, 1))

    # the quick preview disagrees in one patch: the worst place is there
    preview = labels.copy()
    patch = (slice(90, 111), slice(20, 41))
    preview[patch] = preview[patch] % SEED.max_id + 1
    viewer.add_labels(preview, name="ts preview", metadata={PREVIEW_KEY: 1})
    layers, failed = run_prediction(qtbot, widget)
    assert failed is None
    assert viewer.layers["ts where to correct"] is places  # updated
    assert len([ly for ly in viewer.layers if isinstance(ly, Points)]) == 1
    y, x = places.data[0]
    assert 90 <= y <= 110 and 20 <= x <= 40
    assert places.selected_data == set()
    n = len(places.data)
    assert list(places.text.values) == [str(k) for k in range(1, n + 1)]
    assert list(places.features["rank"]) == list(range(1, n + 1))
    assert notes["error"] == [] and notes["warning"] == []
