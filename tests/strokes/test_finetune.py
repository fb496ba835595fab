"""The fine-tune from strokes: it keeps what the start model knows, the
guard keeps the better model, a budget always leaves one."""

from pathlib import Path

import numpy as np
import pytest

from napari_thinseg.dataset.folders import Pair
from napari_thinseg.imaging.files import read_image
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED, ClassScheme, PetroClass
from napari_thinseg.strokes.finetune import (
    RECIPE,
    Recipe,
    are_strokes,
    finetune,
    finetune_settings,
)
from napari_thinseg.strokes.soft_targets import soft_targets
from napari_thinseg.training.loop import TrainSettings

PHOTO = (
    Path(__file__).parents[2] / "src/napari_thinseg/data/seed/sandstone_2.png"
)


@pytest.fixture(scope="module")
def photo():
    """256 x 256 of the seed's sandstone photo (it ships as sample
    data)."""
    return np.ascontiguousarray(read_image(PHOTO)[:256, :256, :3])


@pytest.fixture(scope="module")
def start(default_model, photo):
    model, config = default_model
    return run(predict_image(model, config, photo)).labels


def _small(**given) -> TrainSettings:
    """The recipe's optimizer, rate and weights at test sizes: 20
    steps of 2 crops of 96 px."""
    sizes = dict(
        input_height=96,
        input_width=96,
        batch_size=2,
        steps_per_epoch=10,
        epochs=2,
        precision="float32",
    )
    return finetune_settings([(256, 256)], 1.0, **{**sizes, **given})


def _corner_strokes(start):
    """A wrong stroke in the top-left corner (opaque, 24 x 24, where the
    model sees other grains) and a right one elsewhere."""
    strokes = np.zeros_like(start)
    strokes[20:44, 20:44] = 1
    strokes[100:110, 150:160] = start[100:110, 150:160]
    far = np.ones(start.shape, bool)
    far[:76, :76] = False  # the stroke and 32 px around it
    return strokes, far


def test_strokes_and_dense_labels_are_told_apart():
    sparse = np.zeros((10, 10), np.uint8)
    sparse[:2] = 1
    assert are_strokes([sparse])
    assert not are_strokes([np.ones((10, 10), np.uint8)])


def test_soft_targets_follow_the_start_model_by_class_name(
    default_model, photo
):
    """Shared classes take the model's odds among them; a class the
    model does not know gets 0."""
    model, config = default_model
    image = photo[:64, :64]
    epoxy, quartz = SEED[3], SEED[5]
    scheme = ClassScheme(
        "mine",
        (
            PetroClass(1, quartz.name, quartz.color),
            PetroClass(2, "glauconite", "#3a7d44"),
            PetroClass(3, epoxy.name, epoxy.color),
        ),
    )
    soft = run(soft_targets(model, config, image, scheme, 4))
    assert soft.shape == (64, 64, 4) and soft.dtype == np.float16
    assert not soft[..., 0].any() and not soft[..., 2].any()
    from napari_thinseg.strokes.soft_targets import probability_map

    probs, labels = run(probability_map(model, config, image))
    probs = probs.astype(np.float32)
    # its class map is the prediction's (the start model runs once)
    own = run(predict_image(model, config, image)).labels
    assert np.array_equal(labels, own)
    shared = probs[..., 5] + probs[..., 3]
    expect = probs[..., 5] / shared
    assert np.allclose(soft[..., 1], expect, atol=2e-3)
    assert np.allclose(soft.sum(-1, dtype=np.float32), 1, atol=2e-3)
    other = ClassScheme("other", (PetroClass(1, "glauconite", "#3a7d44"),))
    assert run(soft_targets(model, config, image, other, 2)) is None


def test_strokes_on_one_region_leave_the_rest_as_the_start_model(
    default_model, photo, start
):
    """Away from the strokes (32 px and more), the fine-tuned model
    classes at least 95 % of the pixels as the start model did: about
    what two runs of the start model's own training disagree on along
    grain edges. Strokes alone (no distillation, the batch statistics
    of a few crops) move it further: the test can fail."""
    model, config = default_model
    strokes, far = _corner_strokes(start)
    pairs = [Pair("corner", photo, strokes)]

    def agree_far(settings, recipe=RECIPE):
        result = run(
            finetune(
                pairs, SEED, model, config, settings=settings, recipe=recipe
            )
        )
        pred = run(predict_image(result.training.model, result.config, photo))
        return float((pred.labels[far] == start[far]).mean())

    kept = agree_far(_small())
    # strokes alone: no distillation, no replay, no blend back
    alone = Recipe(distill=0.0, frozen_norms=False, start_share=0, replay=0)
    drifted = agree_far(_small(distill=0.0, frozen_norms=False), alone)
    assert kept >= 0.95
    assert drifted < kept - 0.03


def test_wrong_strokes_make_the_guard_keep_the_start_model(
    default_model, photo, start, tmp_path
):
    """One big wrong stroke trained hard (a high rate, strokes alone)
    wrecks the prediction; judged on check strokes that say what the
    start model says, the start model is kept, in memory and on disk."""
    model, config = default_model
    strokes = np.zeros_like(start)
    strokes[:128, :128] = 1  # "opaque" over a quarter of the photo
    check = np.zeros_like(start)
    for y, x in ((150, 150), (200, 40), (40, 200), (220, 220)):
        check[y : y + 12, x : x + 12] = start[y : y + 12, x : x + 12]
    settings = _small(learning_rate=1e-2, distill=0.0, frozen_norms=False)
    prefix = tmp_path / "wrong"
    result = run(
        finetune(
            [Pair("wrong", photo, strokes)],
            SEED,
            model,
            config,
            settings=settings,
            checkpoints_path=prefix,
            judged=[check],
        )
    )
    verdict = result.verdict
    assert verdict.start.score == 1.0
    assert verdict.trained.score < 0.9
    assert verdict.kept_start and result.model is model
    assert result.describe().endswith("kept the start model")
    # the checkpoint on disk is the kept model, its config says so
    loaded, loaded_config, _ = ck.load_model(prefix)
    again = run(predict_image(loaded, loaded_config, photo)).labels
    assert (again == start).mean() > 0.99
    assert loaded_config.trained_on["held_out"]["kept"] == "start"


def test_the_default_recipe_is_distillation_with_adam():
    settings = finetune_settings([(480, 512)], 2.0, precision="float32")
    assert settings.distill == RECIPE.distill > 0
    assert settings.optimizer == "adam"
    assert settings.learning_rate == RECIPE.learning_rate
    assert settings.stroke_crops == RECIPE.stroke_crops
    assert settings.minutes == 2.0
    # short epochs: a model to keep every 20-30 s
    assert settings.epochs > 1
    # a flag the user gave wins
    assert finetune_settings([(480, 512)], 2.0, optimizer="sgd").optimizer
    assert finetune_settings([(480, 512)], 2.0, batch_size=2).batch_size == 2


def _wrong_pairs(start):
    """A big wrong stroke and check strokes that say what the start model
    says (the guard's set-up above)."""
    strokes = np.zeros_like(start)
    strokes[:128, :128] = 1
    check = np.zeros_like(start)
    for y, x in ((150, 150), (200, 40), (40, 200), (220, 220)):
        check[y : y + 12, x : x + 12] = start[y : y + 12, x : x + 12]
    return strokes, check


def test_a_start_model_trained_in_place_gets_its_weights_back(
    default_model, photo, start
):
    """A start model built at the crop size trains in place; when the
    guard keeps it, it holds its own weights again, not the wrecked
    ones."""
    from napari_thinseg.model.vgg_unet import rebuild

    model, config = default_model
    small = rebuild(model, config, 96, 96, "float32")
    before = [w.copy() for w in small.get_weights()]
    strokes, check = _wrong_pairs(start)
    settings = _small(learning_rate=1e-2, distill=0.0, frozen_norms=False)
    result = run(
        finetune(
            [Pair("wrong", photo, strokes)],
            SEED,
            small,
            config,
            settings=settings,
            judged=[check],
        )
    )
    assert result.training.model is small  # it did train in place
    assert result.verdict.kept_start and result.model is small
    pairs = zip(before, small.get_weights(), strict=True)
    assert all(np.array_equal(a, b) for a, b in pairs)


def test_start_share_blends_the_weights_back_towards_the_start(
    default_model, photo, start
):
    """``start_share`` moves every weight that share of the way back to
    the start model's: 1 gives the start model's prediction exactly, and
    the config says so."""
    from dataclasses import replace

    from napari_thinseg.strokes.finetune import blend_weights

    model, config = default_model
    strokes, _ = _corner_strokes(start)
    result = run(
        finetune(
            [Pair("corner", photo, strokes)],
            SEED,
            model,
            config,
            settings=_small(),
            recipe=replace(RECIPE, start_share=1.0),
        )
    )
    assert result.config.trained_on["start_share"] == 1.0
    pred = run(predict_image(result.training.model, result.config, photo))
    assert np.array_equal(pred.labels, start)
    # halfway, weight for weight
    trained = result.training.model
    zero = [np.zeros_like(w) for w in trained.get_weights()]
    ones = [np.ones_like(w) for w in zero]
    trained.set_weights(ones)
    blend_weights(trained, zero, 0.25)
    assert all(np.allclose(w, 0.75) for w in trained.get_weights())


def test_replay_keeps_the_start_models_view_of_synthetic_sections(
    default_model, photo, start
):
    """``replay`` adds synthetic sandstones, nothing painted, to the
    training (their soft targets only); judged on the strokes alone;
    none for plane + crossed polars."""
    from dataclasses import replace

    from napari_thinseg.strokes.finetune import replay_pairs

    replayed = replay_pairs(2, 3)
    assert [p.image.shape for p in replayed] == [(480, 512, 3)] * 2
    assert not any(p.labels.any() for p in replayed)
    assert replay_pairs(2, 6) == []
    model, config = default_model
    strokes, _ = _corner_strokes(start)
    result = run(
        finetune(
            [Pair("corner", photo, strokes)],
            SEED,
            model,
            config,
            settings=_small(),
            recipe=replace(RECIPE, replay=1),
        )
    )
    trained_on = result.config.trained_on
    assert trained_on["replay"] == ["synthetic 9000 (replay)"]
    assert trained_on["images"] == ["corner", "synthetic 9000 (replay)"]
    assert result.verdict is not None
