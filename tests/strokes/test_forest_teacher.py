import numpy as np
import pytest

from napari_thinseg.strokes.forest_teacher import (
    forest_probabilities,
    mix_soft_targets,
)


def drive(gen):
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


def two_mineral_photo(seed=0):
    """Left half bluish (pore), right half pale (quartz), with noise."""
    rng = np.random.default_rng(seed)
    image = np.empty((64, 96, 3), np.float32)
    image[:, :48] = (60, 90, 200)
    image[:, 48:] = (210, 205, 190)
    image += rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def strokes():
    labels = np.zeros((64, 96), np.uint8)
    labels[10:14, 5:20] = 1
    labels[50:54, 70:90] = 2
    return labels


def test_forest_follows_strokes_where_nothing_is_painted():
    image = two_mineral_photo()
    (probs,) = drive(forest_probabilities([image], [strokes()], 4))
    assert probs.shape == (64, 96, 4) and probs.dtype == np.float16
    assert np.allclose(probs.sum(-1), 1, atol=1e-2)
    assert probs[..., [0, 3]].max() == 0  # unpainted and unpainted class
    pred = probs.argmax(-1)
    truth = np.where(np.arange(96) < 48, 1, 2)[None].repeat(64, 0)
    assert (pred == truth).mean() > 0.95


def test_one_class_painted_gives_no_forest():
    labels = strokes()
    labels[labels == 2] = 1
    assert (
        drive(forest_probabilities([two_mineral_photo()], [labels], 3)) is None
    )


def test_mix_soft_targets():
    start = np.zeros((2, 2, 3), np.float16)
    start[..., 1] = 1
    forest = np.zeros((2, 2, 3), np.float16)
    forest[..., 2] = 1
    mixed = mix_soft_targets(start, forest, 0.25)
    assert mixed.dtype == np.float16
    assert mixed[0, 0].tolist() == pytest.approx([0, 0.75, 0.25])
    assert mix_soft_targets(start, None, 0.5) is start
    assert mix_soft_targets(start, forest, 0) is start
    # a start model sharing no class keeps strokes alone, as before
    assert mix_soft_targets(None, forest, 0.5) is None


def test_an_unsure_forest_leaves_the_start_models_view():
    start = np.zeros((1, 2, 3), np.float16)
    start[..., 1] = 1
    forest = np.array([[[0, 0.1, 0.9], [0, 0.4, 0.6]]], np.float16)
    mixed = mix_soft_targets(start, forest, 0.5, min_confidence=0.7)
    # sure (0.9): half and half; unsure (0.6): the start model's alone
    assert mixed[0, 0].tolist() == pytest.approx([0, 0.55, 0.45], abs=1e-3)
    assert mixed[0, 1].tolist() == [0, 1, 0]
    # no threshold: every pixel mixed
    plain = mix_soft_targets(start, forest, 0.5)
    assert plain[0, 1].tolist() == pytest.approx([0, 0.7, 0.3], abs=1e-3)
