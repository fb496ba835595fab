"""Held-out strokes: whole strokes kept out, scored, a verdict."""

import numpy as np
import pytest

from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED
from napari_thinseg.strokes.held_out import (
    Agreement,
    Verdict,
    agreement,
    split_strokes,
    strokes_of,
)


def _square(labels, y, x, cls, side=4):
    labels[y : y + side, x : x + side] = cls


def _layout():
    """Two images: class 1 has 5 strokes, class 2 two, class 3 one."""
    a, b = np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.uint8)
    for k in range(3):
        _square(a, 2, 2 + 10 * k, 1)
    for k in range(2):
        _square(b, 30, 2 + 10 * k, 1)
    _square(a, 20, 2, 2)
    _square(b, 20, 20, 2)
    _square(b, 2, 30, 3)
    return [a, b]


def test_strokes_are_connected_regions_of_one_class():
    labels = np.zeros((10, 10), np.uint8)
    labels[0, 0] = labels[1, 1] = 1  # diagonal neighbours: one stroke
    labels[5:7, 5:7] = 1
    labels[0, 8] = 2
    strokes = strokes_of(labels)
    assert [(c, len(flat)) for c, flat in strokes] == [(1, 2), (1, 4), (2, 1)]


def test_whole_strokes_are_held_out_per_class_with_more_than_one():
    labels = _layout()
    train, held = split_strokes(labels, seed=3)
    for lab, t, h in zip(labels, train, held, strict=True):
        # every painted pixel is on exactly one side
        assert np.array_equal(np.where(h > 0, h, t), lab)
        assert not (t.astype(bool) & h.astype(bool)).any()
    held_strokes = [s for h in held for s in strokes_of(h)]
    # class 1: 5 strokes, one (20 %) held; class 2: one of two; class 3:
    # its only stroke trains
    assert sorted(c for c, _ in held_strokes) == [1, 2]
    assert all(len(flat) == 16 for _, flat in held_strokes)  # whole
    assert not any((h == 3).any() for h in held)
    # the same seed, the same split
    again = split_strokes(labels, seed=3)[1]
    assert all(np.array_equal(x, y) for x, y in zip(held, again, strict=True))


def test_a_single_stroke_per_class_holds_nothing_out():
    lab = np.zeros((20, 20), np.uint8)
    _square(lab, 2, 2, 1)
    _square(lab, 10, 10, 2)
    train, held = split_strokes([lab])
    assert np.array_equal(train[0], lab) and not held[0].any()


def test_agreement_is_the_class_averaged_share(default_model):
    model, config = default_model
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
    from napari_thinseg.inference.predict import predict_image

    pred = run(predict_image(model, config, image)).labels
    held = np.zeros_like(pred)
    held[:8] = pred[:8]  # agrees everywhere painted
    wrong = pred[40:48] % 5 + 1  # never the predicted class
    held[40:48] = wrong
    result = run(agreement(model, config, [image], [held], SEED, 6))
    n_right = {c: int((pred[:8] == c).sum()) for c in np.unique(pred[:8])}
    n_wrong = {c: int((wrong == c).sum()) for c in np.unique(wrong)}
    expect = {}
    for c in set(n_right) | set(n_wrong):
        total = n_right.get(c, 0) + n_wrong.get(c, 0)
        expect[c] = n_right.get(c, 0) / total
    assert result.per_class == pytest.approx(expect)
    assert result.score == pytest.approx(np.mean(list(expect.values())))
    assert result.pixels == 16 * 64
    empty = np.zeros_like(held)
    assert run(agreement(model, config, [image], [empty], SEED, 6)) is None


def test_the_verdict_keeps_the_better_model_and_says_so():
    low, high = Agreement(0.61, {1: 0.61}, 10), Agreement(0.78, {1: 0.78}, 10)
    better = Verdict(low, high)
    assert not better.kept_start
    assert better.describe() == (
        "held-out strokes: 61 % -> 78 % agree; kept the fine-tuned model"
    )
    worse = Verdict(high, low)
    assert worse.kept_start
    assert worse.describe().endswith(
        "78 % -> 61 % agree; kept the start model"
    )
    assert worse.to_dict()["kept"] == "start"
    assert not Verdict(low, low).kept_start  # a tie: the fine-tuned one
    unjudged = Verdict(None, None)
    assert not unjudged.kept_start and "unjudged" in unjudged.describe()
