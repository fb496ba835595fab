"""The quick preview: the encoder classifier fitted on the training pairs,
predicting them and the held-out ones, for RGB and for plane + crossed
polars with an RGB model."""

from __future__ import annotations

import numpy as np
import pytest

from napari_thinseg.dataset.folders import Pair
from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.convert import stack_views
from napari_thinseg.progress import run
from napari_thinseg.strokes.preview import quick_preview, widened_features

pytest.importorskip("sklearn", reason="the forest needs scikit-learn")

FAST = {"samples_per_class": 300, "n_trees": 20, "precision": "float32"}


def strokes(labels, every=4):
    out = np.zeros_like(labels)
    out[::every, ::every] = labels[::every, ::every]
    return out


@pytest.fixture(scope="module")
def sections():
    return [synthetic_sandstone((96, 128), seed=s) for s in (1, 2, 3)]


def test_the_preview_predicts_training_then_judged_images(
    default_model, sections
):
    (a, la), (b, lb), (c, lc) = sections
    pairs = [Pair("a", a, strokes(la)), Pair("b", b, strokes(lb))]
    judged = [Pair("b", b, lb), Pair("c", c, lc)]
    events = []
    preview = run(
        quick_preview(*default_model, pairs, judged, n_classes=12, **FAST),
        events.append,
    )
    # training images first, each once, then the held-out one
    assert preview.names == ["a", "b", "c"]
    assert len(preview.predictions) == 3
    assert events and all(e.message.startswith("preview") for e in events)
    assert events[-1].step == events[-1].total
    held = preview.predictions[2]
    assert held.labels.shape == lc.shape
    # the held-out section was never stroked: measured 0.83
    assert (held.labels == lc).mean() > 0.6
    assert held.probabilities.shape == (*lc.shape, 12)
    # which model predicted, in the prediction and the one-line summary
    assert "encoder classifier" in preview.source
    assert "'seed' VGG-UNet" in preview.source
    assert held.source.startswith("encoder classifier on the 'seed'")
    assert preview.source in preview.describe()
    assert "3 image(s)" in preview.describe()
    assert preview.cpu_seconds > 0


def test_at_most_max_images(default_model, sections):
    pairs = [
        Pair(str(k), im, strokes(lb)) for k, (im, lb) in enumerate(sections)
    ]
    preview = run(quick_preview(*default_model, pairs, max_images=2, **FAST))
    assert preview.names == ["0", "1"]


def test_stop_returns_none(default_model, sections):
    (a, la), _, _ = sections
    calls = []

    def stop():
        calls.append(1)
        return len(calls) > 2

    out = run(
        quick_preview(
            *default_model, [Pair("a", a, strokes(la))], stop=stop, **FAST
        )
    )
    assert out is None and len(calls) == 3


def test_plane_and_crossed_polars_with_an_rgb_model(default_model, sections):
    model, config = default_model
    (a, la), (b, _), _ = sections
    stacked = stack_views(a, b[..., ::-1])
    features = widened_features(model, config, 6, "float32")
    assert features.channels == 6
    first = features.model.get_layer("block1_conv1").get_weights()[0]
    rgb = model.get_layer("block1_conv1").get_weights()[0]
    # the RGB filters once per view, halved (as training's transfer does)
    np.testing.assert_allclose(first[:, :, :3], rgb / 2, rtol=1e-6)
    np.testing.assert_allclose(first[:, :, 3:], rgb / 2, rtol=1e-6)
    preview = run(
        quick_preview(model, config, [Pair("a", stacked, strokes(la))], **FAST)
    )
    assert preview.predictions[0].labels.shape == la.shape
    assert (preview.predictions[0].labels == la).mean() > 0.6


def test_one_class_of_strokes_is_refused(default_model, sections):
    (a, la), _, _ = sections
    one = np.where(la == la.max(), la, 0)
    with pytest.raises(ThinsegError, match="one class"):
        run(quick_preview(*default_model, [Pair("a", a, one)], **FAST))


def test_the_preview_builds_on_the_model(default_model, sections):
    """Labels in the model's own scheme: the forest learns the model's
    prediction too, and says so."""
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.schemes import SEED

    model, config = default_model
    (a, _), _, (c, _) = sections
    strokes = np.zeros(a.shape[:2], np.uint8)
    strokes[10:18, 4:36], strokes[60:68, 4:36] = 1, 2
    pairs, judged = [Pair("a", a, strokes)], [Pair("c", c, strokes)]
    preview = run(
        quick_preview(model, config, pairs, judged, scheme=SEED, **FAST)
    )
    assert preview.model_prior
    assert preview.source.startswith("encoder classifier (5 classes, 4 ")
    assert "+ the prediction of the 'seed' VGG-UNet" in preview.describe()
    on_a, on_c = (p.labels for p in preview.predictions)
    assert (on_a == strokes)[strokes > 0].mean() > 0.95
    own = run(predict_image(model, config, c, precision="float32")).labels
    # never stroked, so mostly the model's; the strokes' corrections
    # carry over in part: measured 0.75 (the strokes-only forest: 0.10)
    assert (on_c == own).mean() > 0.6


def test_no_shared_class_or_no_prior_is_strokes_only(default_model, sections):
    from napari_thinseg.schemes import SEED, ClassScheme, PetroClass

    (a, la), _, _ = sections
    pairs = [Pair("a", a, strokes(la))]
    other = ClassScheme("other", (PetroClass(1, "glauconite", "#2e8b57"),))
    for kw in ({"scheme": other}, {"scheme": SEED, "model_prior": False}):
        preview = run(quick_preview(*default_model, pairs, **kw, **FAST))
        assert not preview.model_prior
        assert preview.source == preview.classifier.describe()
        assert "prediction of" not in preview.describe()


def test_the_preview_is_judged_on_held_out_strokes(default_model, sections):
    """Whole strokes are kept out of the forest; the preview and the
    model are scored on them, and the summary says how they did."""
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.schemes import SEED

    model, config = default_model
    (a, _), _, _ = sections
    own = run(predict_image(model, config, a, precision="float32")).labels
    lines = np.zeros(a.shape[:2], np.uint8)
    for k in range(5):  # five short strokes that say what the model says
        lines[8 + 18 * k : 12 + 18 * k, 10:40] = 1
    strokes = np.where(lines > 0, own, 0).astype(np.uint8)
    preview = run(
        quick_preview(
            model, config, [Pair("a", a, strokes)], scheme=SEED, **FAST
        )
    )
    verdict = preview.verdict
    assert verdict is not None and verdict.start is not None
    # the strokes say what the model says: it agrees everywhere on them
    assert verdict.start.score == 1.0
    assert verdict.trained.score > 0.8  # the preview follows the model
    assert "; held-out strokes: the model 100 %, the preview " in (
        preview.describe()
    )
    # too few strokes to hold any out: no verdict, nothing said
    one = np.zeros_like(lines)
    one[8:12, 10:40], one[40:44, 10:40] = 1, 2  # a stroke a class
    few = run(quick_preview(model, config, [Pair("a", a, one)], **FAST))
    assert few.verdict is None and "held-out" not in few.describe()
