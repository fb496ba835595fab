"""The training recipe: class weights, weighted loss, schedule, best
epoch."""

from pathlib import Path

import numpy as np
import pytest

import napari_thinseg.training.loop as train_module
from napari_thinseg.dataset.folders import Pair
from napari_thinseg.errors import ThinsegError
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.model.weights import read_hdf5_weights
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED
from napari_thinseg.training.loop import TrainSettings, train
from napari_thinseg.training.recipe import (
    CAP,
    FINAL_SHARE,
    BestEpoch,
    class_weights,
    learning_rate,
    loss_function,
)


def random_pair(shape, seed: int) -> Pair:
    """Random photo and seed-scheme labels 1..5 (nothing unlabelled)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    return Pair("a", image, rng.integers(1, 6, shape).astype(np.uint8))


def labels_with(counts: dict[int, int]) -> np.ndarray:
    return np.concatenate(
        [np.full(n, c, np.uint8) for c, n in counts.items()]
    ).reshape(1, -1)


def test_class_weights_as_documented():
    # shares .7 / .2 / .1 of the labelled pixels; median .2; class 0 and
    # absent class 4 weigh nothing
    labels = labels_with({0: 50, 1: 700, 2: 200, 3: 100})
    w = class_weights([labels], 5)
    raw = np.sqrt([0, 0.2 / 0.7, 1.0, 2.0, 0])
    share = np.array([0, 0.7, 0.2, 0.1, 0])
    np.testing.assert_allclose(w, raw / (share * raw).sum(), rtol=1e-6)
    np.testing.assert_allclose((share * w).sum(), 1.0, rtol=1e-6)
    assert w.dtype == np.float32
    # without ignore_zero, class 0 is a class like the others
    assert class_weights([labels], 5, ignore_zero=False)[0] > 0


def test_class_weights_are_capped_and_split_over_images():
    rare = labels_with({1: 5000, 2: 4000, 3: 1})
    w = class_weights([rare[:, :4500], rare[:, 4500:]], 4)
    # median share is class 2's: the rare class at CAP times its weight
    assert w[3] / w[2] == pytest.approx(CAP)
    with pytest.raises(ThinsegError, match="no labelled pixels"):
        class_weights([np.zeros((4, 4), np.uint8)], 3)


def test_weighted_loss_is_the_weighted_mean_over_labelled_pixels():
    rng = np.random.default_rng(0)
    probs = rng.random((2, 6, 3)).astype(np.float32)
    probs /= probs.sum(-1, keepdims=True)
    y = np.array([[0, 1, 2, 2, 1, 0], [1, 1, 1, 2, 0, 0]], np.int32)
    weights = np.array([0.0, 0.5, 2.0], np.float32)
    got = np.asarray(loss_function(True, weights)(y, probs))
    ce = -np.log(np.take_along_axis(probs, y[..., None], -1)[..., 0])
    mask = y > 0
    expected = (ce * weights[y] * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # unweighted: the plain masked mean
    plain = np.asarray(loss_function(True)(y, probs))
    np.testing.assert_allclose(
        plain, (ce * mask).sum(1) / mask.sum(1), rtol=1e-5
    )


def test_cosine_schedule_warms_up_then_decays():
    schedule = learning_rate("adam", 0.002, "cosine", total_steps=200)
    at = {s: float(schedule(s)) for s in (0, 5, 10, 105, 200)}
    assert at[0] == 0.0
    assert at[5] == pytest.approx(0.001)  # half way up the warm-up
    assert at[10] == pytest.approx(0.002)  # the peak after 5 %
    assert 0.0009 < at[105] < 0.0011  # half way down
    assert at[200] == pytest.approx(0.002 * FINAL_SHARE)
    assert learning_rate("adadelta", None) == 1.0
    with pytest.raises(ThinsegError, match="unknown schedule"):
        learning_rate("adam", None, "step")
    with pytest.raises(ThinsegError, match="schedule"):
        TrainSettings(schedule="linear")
    with pytest.raises(ThinsegError, match="patience"):
        TrainSettings(patience=0)


def test_best_epoch_and_patience():
    best = BestEpoch(patience=2)
    assert best.update(0, None) is False  # no score yet
    assert best.update(1, 0.5) and best.epoch == 1
    assert not best.update(2, 0.4) and not best.stop
    assert not best.update(3, 0.5) and best.stop  # equal is not better
    assert not BestEpoch().stop


def test_training_keeps_the_best_epoch(tmp_path, monkeypatch):
    """Validation mean IoU 0.5, 0.7, 0.6, 0.65: only epochs 0 and 1 are
    saved, the result holds epoch 1's weights, and patience 2 stops
    after epoch 3."""
    scores = iter([0.5, 0.7, 0.6, 0.65, 0.9])
    saved_weights = {}

    def scripted(model, config, x_val, y_val, batch_size):
        score = next(scores)
        saved_weights[len(saved_weights)] = [
            w.copy() for w in model.get_weights()
        ]
        return (None, score), score

    monkeypatch.setattr(train_module, "_validate", scripted)
    pair = random_pair((48, 48), 2)
    settings = TrainSettings(
        input_height=32,
        input_width=32,
        epochs=6,
        steps_per_epoch=1,
        batch_size=1,
        optimizer="adam",
        precision="float32",
        patience=2,
        balance_classes=True,
        schedule="cosine",
    )
    prefix = tmp_path / "m"
    events = []
    result = run(
        train(
            [pair], SEED, settings, validation=[pair], checkpoints_path=prefix
        ),
        events.append,
    )
    ends = [e for e in events if getattr(e, "epoch_end", False)]
    assert [e.best for e in ends] == [True, True, False, False]
    assert [e.checkpoint is not None for e in ends] == [1, 1, 0, 0]
    assert len(result.history) == 4 and result.best_epoch == 1
    assert result.checkpoint == str(prefix) + ".1"
    assert ck.find_latest_checkpoint(prefix) == str(prefix) + ".1"
    for got, want in zip(
        result.model.get_weights(), saved_weights[1], strict=True
    ):
        np.testing.assert_array_equal(got, want)
    on_disk = [
        a
        for _, arrays in read_hdf5_weights(prefix.with_suffix(".1"))
        for a in arrays
    ]
    assert len(on_disk) == len(saved_weights[1])
    assert result.config.trained_on["schedule"] == "cosine"
    assert len(result.config.trained_on["class_weights"]) == 6


def test_proposal_fits_the_budget():
    from napari_thinseg.training.recipe import propose, seconds_per_step

    # 100 GFLOP/s: a 4 x 224 x 224 bfloat16 step is estimated at
    # 2.226 MFLOP x 200704 px / 175 GFLOP/s + 0.05 s = 2.60 s
    step = seconds_per_step(224, 224, 4, "bfloat16", 100.0)
    assert step == pytest.approx(2.226e6 * 200704 / 175e9 + 0.05)
    p = propose([(480, 512), (600, 800)], 5, "bfloat16", 100.0)
    assert (p.input_height, p.input_width, p.batch_size) == (224, 224, 4)
    steps = p.steps_per_epoch * p.epochs
    # epochs of about 25 s: a checkpoint (a model to keep) that often
    assert p.steps_per_epoch == 10 and 20 < 10 * step < 30
    assert steps == 110
    assert steps * step <= 300 < (steps + 10) * step
    assert p.seconds == pytest.approx(steps * step)
    assert p.describe() == "110 steps of 4 crops 224x224, about 5 min"
    # small images: smaller crops; a tiny budget: one step
    small = propose([(150, 300)], 0.01, "float32", 100.0)
    assert (small.input_height, small.epochs) == (128, 1)
    assert small.steps_per_epoch == 1
    assert propose([(40, 40)], 1, "float32", 100.0).input_height == 64
    with pytest.raises(ThinsegError, match="positive"):
        propose([(480, 512)], 0, "float32", 100.0)


def test_frozen_blocks_shorten_the_estimated_step():
    """Frozen blocks are passed forward but not back: the whole encoder
    frozen (3/4 of the forward pass) leaves 1 + 2 x 1/4 of 3 passes."""
    from napari_thinseg.training.recipe import propose, seconds_per_step

    full = seconds_per_step(224, 224, 4, "bfloat16", 100.0) - 0.05
    frozen = [
        seconds_per_step(224, 224, 4, "bfloat16", 100.0, n) - 0.05
        for n in range(5)
    ]
    assert frozen[0] == pytest.approx(full)
    assert frozen[4] == pytest.approx(full * 1.5 / 3)
    assert frozen == sorted(frozen, reverse=True)
    p = propose([(480, 512)], 5, "bfloat16", 100.0, frozen_blocks=4)
    q = propose([(480, 512)], 5, "bfloat16", 100.0)
    assert p.steps_per_epoch * p.epochs > 1.8 * q.steps_per_epoch * q.epochs


def test_time_budget_stops_training(monkeypatch, tmp_path):
    """``minutes`` stops after the batch in progress once spent; the
    epoch it cuts short is kept (saved, in the history), so a budget
    always leaves a model, and the events count down to it."""
    from types import SimpleNamespace

    clock = [0.0]
    fake = SimpleNamespace(monotonic=lambda: clock[0])
    monkeypatch.setattr(train_module, "time", fake)
    pair = random_pair((40, 40), 3)
    settings = TrainSettings(
        input_height=32,
        input_width=32,
        epochs=3,
        steps_per_epoch=4,
        batch_size=1,
        precision="float32",
        minutes=1.0,
    )
    steps = []

    def each_batch_takes_25_s(event):
        steps.append(event)
        clock[0] += 25.0

    prefix = tmp_path / "budget"
    result = run(
        train([pair], SEED, settings, checkpoints_path=prefix),
        each_batch_takes_25_s,
    )
    batches = [ev for ev in steps if not ev.epoch_end]
    assert result.stopped and result.budget_ended
    assert len(batches) == 3  # 0, 25, 50 s: the 4th is late
    assert [ev.budget_left for ev in batches] == [60.0, 35.0, 10.0]
    assert result.history == [
        {
            "epoch": 0,
            "loss": pytest.approx(result.history[0]["loss"]),
            "steps": 3,
        }
    ]
    assert steps[-1].epoch_end and "time budget" in steps[-1].message
    assert result.checkpoint == str(prefix) + ".0"
    assert Path(result.checkpoint).exists()
    with pytest.raises(ThinsegError, match="time budget"):
        TrainSettings(minutes=0)
