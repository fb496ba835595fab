import numpy as np
import pytest
from skimage.morphology import erosion, footprint_rectangle, skeletonize

from napari_thinseg.dataset.folders import Pair
from napari_thinseg.dataset.synth import synthetic_sandstone, to_seed_labels
from napari_thinseg.errors import ThinsegError
from napari_thinseg.inference.metrics import (
    confusion_matrix,
    iou_from_confusion,
)
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED
from napari_thinseg.training.loop import TrainSettings, train

TINY = {"input_height": 32, "input_width": 32, "batch_size": 2}
#: tiny steps that move the weights far enough to compare, exactly
TINY_ADAM = {
    **TINY,
    "optimizer": "adam",
    "learning_rate": 1e-2,
    "precision": "float32",
}


def sandstones(n, size=256, first_seed=0):
    out = []
    for s in range(first_seed, first_seed + n):
        rgb, labels = synthetic_sandstone((size, size), seed=s)
        out.append(Pair(f"synth {s}", rgb, to_seed_labels(labels)))
    return out


def mean_iou_on_fresh_image(result, seed=99):
    rgb, truth = synthetic_sandstone((256, 256), seed=seed)
    truth = to_seed_labels(truth)
    pred = run(predict_image(result.model, result.config, rgb)).labels
    iou = iou_from_confusion(confusion_matrix(truth, pred, 6))
    return float(np.nanmean(iou[1:])), iou


def strokes(labels):
    """Thin lines through every region: what a few brush strokes give."""
    out = np.zeros_like(labels)
    for c in np.unique(labels):
        inner = erosion(labels == c, footprint_rectangle((5, 5)))
        out[skeletonize(inner)] = c
    return out


def test_learns_synthetic_sandstones():
    settings = TrainSettings(
        input_height=64,
        input_width=96,
        batch_size=4,
        epochs=1,
        steps_per_epoch=150,
        optimizer="adam",
        augment=True,
    )
    result = run(train(sandstones(6), SEED, settings))
    mean, iou = mean_iou_on_fresh_image(result)
    assert mean > 0.8, iou
    assert result.config.scheme == SEED.to_dict()
    assert result.config.trained_on["n_images"] == 6


def test_sparse_strokes_still_learn():
    pairs = [Pair(p.name, p.image, strokes(p.labels)) for p in sandstones(6)]
    labelled = np.mean([(p.labels > 0).mean() for p in pairs])
    assert labelled < 0.08  # mostly unlabelled
    settings = TrainSettings(
        input_height=64,
        input_width=96,
        batch_size=4,
        epochs=1,
        # 80 steps gave 0.51-0.76 depending on the seed: 120 clear 0.7
        steps_per_epoch=120,
        optimizer="adam",
        augment=True,
    )
    result = run(train(pairs, SEED, settings))
    mean, iou = mean_iou_on_fresh_image(result)
    assert mean > 0.6, iou


def test_checkpoints_stop_and_resume(tmp_path):
    prefix = tmp_path / "ck" / "vgg_unet_1"
    pairs = sandstones(2, size=64)
    settings = TrainSettings(epochs=3, steps_per_epoch=2, **TINY)
    batches = []

    def stop():
        return len(batches) >= 3  # in the middle of epoch 1

    gen = train(pairs, SEED, settings, checkpoints_path=prefix, stop=stop)
    while True:
        try:
            ev = next(gen)
            if not ev.epoch_end:
                batches.append(ev)
        except StopIteration as end:
            result = end.value
            break
    assert result.stopped and len(batches) == 3
    assert ck.list_checkpoints(prefix) == {0: f"{prefix}.0"}
    assert result.checkpoint == f"{prefix}.0"

    with pytest.raises(ThinsegError, match="already exist"):
        run(train(pairs, SEED, settings, checkpoints_path=prefix))
    resumed = run(
        train(pairs, SEED, settings, checkpoints_path=prefix, auto_resume=True)
    )
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    assert sorted(ck.list_checkpoints(prefix)) == [0, 1, 2]
    model, config, path = ck.load_model(prefix)
    assert path == f"{prefix}.2" and config.scheme == SEED.to_dict()

    once = TrainSettings(epochs=1, steps_per_epoch=1, **TINY)
    run(train(pairs, SEED, once, checkpoints_path=prefix, overwrite=True))
    assert sorted(ck.list_checkpoints(prefix)) == [0]  # no stale epoch 2

    bigger = TrainSettings(
        epochs=4, steps_per_epoch=1, input_height=64, input_width=64
    )
    with pytest.raises(ThinsegError, match="cannot resume"):
        run(
            train(
                pairs, SEED, bigger, checkpoints_path=prefix, auto_resume=True
            )
        )


def test_a_stop_before_the_first_epoch_leaves_no_config(tmp_path):
    """Issue 12: a run2_config.json was left with no weights."""
    prefix = tmp_path / "run2"
    settings = TrainSettings(epochs=2, steps_per_epoch=3, **TINY)
    batches = []
    result = run(
        train(
            sandstones(1, size=64),
            SEED,
            settings,
            checkpoints_path=prefix,
            stop=lambda: len(batches) >= 1,
        ),
        batches.append,
    )
    assert result.stopped and result.history == []
    assert not ck.config_path(prefix).exists()
    assert list(tmp_path.iterdir()) == []


def test_closing_the_generator_keeps_last_epoch(tmp_path):
    prefix = tmp_path / "p"
    settings = TrainSettings(epochs=2, steps_per_epoch=2, **TINY)
    gen = train(
        sandstones(1, size=48), SEED, settings, checkpoints_path=prefix
    )
    for ev in gen:
        if ev.epoch == 1:
            gen.close()  # what napari's worker.quit() does
            break
    assert sorted(ck.list_checkpoints(prefix)) == [0]


def test_validation_reports_per_class_iou():
    settings = TrainSettings(epochs=1, steps_per_epoch=1, **TINY)
    pairs = sandstones(2, size=64)
    events = []
    gen = train(pairs[:1], SEED, settings, validation=pairs[1:])
    result = run(gen, events.append)
    last = events[-1]
    assert last.epoch_end and len(last.val_iou) == 6
    assert 0 <= last.val_mean_iou <= 1
    assert result.history[0]["val_mean_iou"] == last.val_mean_iou


def test_fine_tune_from_other_classes_transfers():
    """A 4-class base and 6-class labels: no refusal (as there was), a
    6-class network with the base's body (tests/model/test_transfer.py
    has the details)."""
    from napari_thinseg.model.config import ModelConfig
    from napari_thinseg.model.vgg_unet import build

    config = ModelConfig(4, 32, 32)
    settings = TrainSettings(**TINY, epochs=1, steps_per_epoch=1)
    result = run(
        train(
            sandstones(1, 48),
            SEED,
            settings,
            model=build(config),
            config=config,
        )
    )
    assert result.config.n_classes == 6 and result.transfer is not None
    assert result.transfer.new == (1, 2, 3, 4, 5)


def test_frozen_blocks_keep_the_weights_training_starts_from():
    from napari_thinseg.model.config import ModelConfig
    from napari_thinseg.model.vgg_unet import build

    config = ModelConfig(6, 32, 32)
    base = build(config)
    before = {ly.name: ly.get_weights() for ly in base.layers if ly.weights}
    settings = TrainSettings(
        epochs=1, steps_per_epoch=2, frozen_blocks=2, **TINY_ADAM
    )
    result = run(
        train(sandstones(1, 48), SEED, settings, model=base, config=config)
    )
    assert result.model is base  # trained in place
    assert result.config.trained_on["frozen_blocks"] == 2
    unchanged = {
        name
        for name, was in before.items()
        if all(
            np.array_equal(a, b)
            for a, b in zip(
                was, result.model.get_layer(name).get_weights(), strict=True
            )
        )
    }
    assert unchanged == {f"block{b}_conv{k}" for b in (1, 2) for k in (1, 2)}
    # a later training of the same (shared) model without frozen blocks
    # trains every layer again
    settings = TrainSettings(
        epochs=1, steps_per_epoch=1, precision="float32", **TINY
    )
    run(train(sandstones(1, 48), SEED, settings, model=base, config=config))
    assert all(ly.trainable for ly in base.layers)


def _train_recording(gen, layer):
    """Run ``gen``; the layer's kernel after every batch, the moving
    average of them at every epoch's end, and the result."""
    raw, averages, average = [], [], None
    while True:
        try:
            event = next(gen)
        except StopIteration as end:
            return raw, averages, end.value
        kernel = layer().get_weights()[0].astype(np.float64)
        if event.epoch_end:
            averages.append(average)
            # the raw weights are back after validation and saving
            np.testing.assert_array_equal(kernel, raw[-1])
            continue
        raw.append(kernel)
        m = MOMENTUM
        average = kernel if average is None else m * average + (1 - m) * kernel


MOMENTUM = 0.5


@pytest.mark.parametrize("validate", [True, False])
def test_averaged_weights_are_validated_saved_and_returned(tmp_path, validate):
    """With ``average_weights`` m the result is the moving average of the
    weights after each step (a1 = w1, then m a + (1 - m) w): the best
    epoch's by validation, else the last one's; checkpoints hold the
    averages too, and training goes on from the raw weights."""
    from napari_thinseg.model.config import ModelConfig
    from napari_thinseg.model.vgg_unet import build

    config = ModelConfig(6, 32, 32)
    base = build(config)
    settings = TrainSettings(
        epochs=3,
        steps_per_epoch=2,
        average_weights=MOMENTUM,
        keep_best=validate,
        **TINY_ADAM,
    )
    prefix = tmp_path / "avg"
    pairs = sandstones(1, 48)
    raw, averages, result = _train_recording(
        train(
            pairs,
            SEED,
            settings,
            validation=pairs if validate else (),
            checkpoints_path=prefix,
            model=base,
            config=config,
        ),
        lambda: base.get_layer("block1_conv1"),
    )
    assert result.model is base and len(raw) == 6
    assert result.config.trained_on["average_weights"] == MOMENTUM
    assert not np.allclose(raw[-1], averages[-1])
    kept = result.best_epoch if validate else 2
    returned = base.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_allclose(returned, averages[kept], rtol=1e-4, atol=1e-6)
    saved, _, path = ck.load_model(prefix)
    assert path == f"{prefix}.{kept}"
    np.testing.assert_array_equal(
        saved.get_layer("block1_conv1").get_weights()[0], returned
    )


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_weight_averaging_needs_a_momentum_below_one(momentum):
    with pytest.raises(ThinsegError, match="weight averaging takes"):
        TrainSettings(average_weights=momentum)


def test_frozen_blocks_need_weights_to_keep():
    with pytest.raises(ThinsegError, match="frozen blocks must be 0 to 4"):
        TrainSettings(frozen_blocks=5)
    settings = TrainSettings(frozen_blocks=1, **TINY)
    with pytest.raises(ThinsegError, match="frozen encoder blocks keep"):
        run(train(sandstones(1, 48), SEED, settings))


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros((40, 40), np.uint8), "nothing to learn"),
        (np.full((40, 40), 7, np.uint8), ">= n_classes"),
        (np.ones((40, 41), np.uint8), "differ in size"),
        (np.full((40, 40), -1), "negative"),
    ],
)
def test_bad_training_data(labels, message):
    image = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ThinsegError, match=message):
        run(train([Pair("x", image, labels)], SEED, TrainSettings(**TINY)))


def test_bad_settings():
    with pytest.raises(ThinsegError, match="optimizer"):
        TrainSettings(optimizer="lbfgs")
    with pytest.raises(ThinsegError, match="epochs"):
        TrainSettings(epochs=0)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_precision_is_honoured_and_checkpoints_stay_float32(
    tmp_path, precision
):
    from napari_thinseg.model.vgg_unet import compute_dtype
    from napari_thinseg.model.weights import read_hdf5_weights

    settings = TrainSettings(
        epochs=1, steps_per_epoch=2, precision=precision, **TINY
    )
    prefix = tmp_path / "p"
    result = run(
        train(sandstones(1, 64), SEED, settings, checkpoints_path=prefix)
    )
    assert compute_dtype(result.model) == precision
    assert result.model.get_layer("head_softmax").compute_dtype == "float32"
    assert result.config.trained_on["precision"] == precision
    assert np.isfinite(result.history[0]["loss"])
    stored = read_hdf5_weights(result.checkpoint)
    assert {a.dtype for _, arrays in stored for a in arrays} == {
        np.dtype(np.float32)
    }


def test_fine_tuning_in_another_precision_keeps_the_weights():
    from napari_thinseg.model.config import ModelConfig
    from napari_thinseg.model.vgg_unet import build, compute_dtype

    config = ModelConfig(6, 32, 32)
    base = build(config)
    before = [np.asarray(w) for w in base.trainable_weights]
    settings = TrainSettings(
        epochs=1,
        steps_per_epoch=1,
        precision="bfloat16",
        learning_rate=1e-12,  # a step that moves nothing measurable
        optimizer="sgd",
        **TINY,
    )
    result = run(
        train(sandstones(1, 48), SEED, settings, model=base, config=config)
    )
    assert result.model is not base and compute_dtype(base) == "float32"
    assert compute_dtype(result.model) == "bfloat16"
    # (batch-norm statistics move with any step; trained weights do not)
    after = [np.asarray(w) for w in result.model.trainable_weights]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
