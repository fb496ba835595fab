"""Fine-tune a model from brush strokes without losing what it knows.

A petrographer predicts, paints strokes where the prediction is wrong
(0 = unpainted) and trains. :func:`finetune` is that training:

1. a share of the strokes is held out (:mod:`.held_out`);
2. every unpainted pixel keeps the start model's class probabilities as
   its target (:mod:`.soft_targets`), weighted against the painted
   pixels' cross-entropy
   (:func:`~napari_thinseg.training.recipe.distillation_loss`),
   so strokes move the model where they are painted without dragging the
   rest; on the stroked photos, where an ilastik-style forest on the
   strokes is sure of a pixel (:mod:`.forest_teacher`), half of that
   pixel's target is the forest's;
3. crops favour the painted places; the recipe (:data:`RECIPE`: optimizer,
   learning rate, weight) is the one ``bench/bench_loop.py`` measured
   best; a time budget sizes the run in short epochs and always leaves a
   model (:func:`~napari_thinseg.training.recipe.propose`);
4. the start model and the fine-tuned one are scored on the held-out
   strokes, and the better one is the result (:class:`.held_out.Verdict`:
   "held-out strokes: 61 % -> 78 % agree; kept the fine-tuned model"),
   written into the model's config.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..dataset.folders import Pair
from ..errors import ThinsegError
from ..model import checkpoints as ck
from ..model.config import ModelConfig
from ..progress import Progress, as_message, relay
from ..schemes import ClassScheme
from ..training.loop import TrainResult, TrainSettings, train
from .forest_teacher import forest_probabilities, mix_soft_targets
from .held_out import Verdict, agreement, score, split_strokes
from .soft_targets import start_view

DEFAULT_MINUTES = 2.0
"""The budget of a fine-tune when none is given (the Train tab's)."""
STROKES_SHARE = 0.5
"""Labels that cover less than this share of their images are strokes
(a dense annotation is trained as it is)."""


@dataclass(frozen=True)
class Recipe:
    """How a fine-tune from strokes trains (see the module docstring):
    ``distill`` weighs the unpainted pixels' term against the strokes',
    ``stroke_crops`` is the share of crops centred on a stroke,
    ``start_share`` the share of the start model's weights blended into
    the fine-tuned ones after training (0: none; a weight-space ensemble
    that keeps more of what the model knew on photos nobody painted),
    ``replay`` the number of synthetic thin sections, nothing painted,
    on which the fine-tune keeps the start model's view (see
    :func:`replay_pairs`), ``forest_share`` the share of the strokes'
    forest's probabilities in the stroked photos' soft targets (see
    :mod:`.forest_teacher`; 0: the start model's alone) and
    ``forest_confidence`` the forest's top probability below which a
    pixel keeps the start model's view alone (0: the forest everywhere)."""

    optimizer: str = "adam"
    learning_rate: float = 1e-4
    distill: float = 10.0
    stroke_crops: float = 0.5
    augment: bool = True
    frozen_blocks: int = 0
    frozen_norms: bool = True
    start_share: float = 0.25
    replay: int = 2
    forest_share: float = 0.5
    forest_confidence: float = 0.8

    def __post_init__(self):
        names = (
            "start_share",
            "forest_share",
            "forest_confidence",
            "stroke_crops",
        )
        for name in names:
            if not 0 <= getattr(self, name) <= 1:
                raise ThinsegError(
                    f"{name} must be 0 to 1, got {getattr(self, name)}"
                )


RECIPE = Recipe()
"""The recipe ``bench/bench_loop.py`` measured best (docs/loop.md)."""
TRAINED_FIELDS = (
    "optimizer",
    "learning_rate",
    "distill",
    "stroke_crops",
    "augment",
    "frozen_blocks",
    "frozen_norms",
)
"""The recipe's fields that are training settings (``start_share`` and
``replay`` act around training)."""
REPLAY_SHAPE = (480, 512)
REPLAY_SEED = 9000


def replay_pairs(n: int, channels: int) -> list[Pair]:
    """``n`` synthetic sandstones (:func:`~napari_thinseg.dataset.synth.\
synthetic_sandstone`, fixed seeds), nothing painted: beside the strokes,
    the start model's view of them is kept, so the fine-tune drags less
    of what it knew on photos nobody painted. None for inputs other than
    one RGB view."""
    from ..dataset.synth import synthetic_sandstone

    if channels != 3:
        return []
    out = []
    for seed in range(REPLAY_SEED, REPLAY_SEED + n):
        image, _ = synthetic_sandstone(REPLAY_SHAPE, seed=seed)
        blank = np.zeros(REPLAY_SHAPE, np.uint8)
        out.append(Pair(f"synthetic {seed} (replay)", image, blank))
    return out


def are_strokes(labels: Sequence[np.ndarray]) -> bool:
    """Whether ``labels`` are brush strokes (less than
    :data:`STROKES_SHARE` of their pixels painted) rather than a dense
    annotation."""
    painted = sum(int(np.count_nonzero(lab)) for lab in labels)
    total = sum(lab.size for lab in labels)
    return total > 0 and painted < STROKES_SHARE * total


def wants_finetune(model, pairs: Sequence[Pair]) -> bool:
    """Whether training ``pairs`` is a fine-tune from strokes: it starts
    from a model and the labels are strokes (GUI and CLI alike)."""
    return model is not None and are_strokes([p.labels for p in pairs])


def finetune_settings(
    shapes: Sequence[tuple[int, int]],
    minutes: float = DEFAULT_MINUTES,
    recipe: Recipe = RECIPE,
    precision: str = "auto",
    **given,
) -> TrainSettings:
    """Training settings of a fine-tune from strokes: the sizes
    :func:`~napari_thinseg.training.recipe.propose` fits in ``minutes`` on this
    machine for images of ``shapes``, the recipe's optimizer and weights;
    ``given`` settings (a flag the user gave) win."""
    from ..model.backend import resolve_precision
    from ..training.recipe import propose, sgemm_gflops

    resolved = resolve_precision(precision)
    proposal = propose(
        shapes, minutes, resolved, sgemm_gflops(), recipe.frozen_blocks
    )
    fields = {
        "input_height": proposal.input_height,
        "input_width": proposal.input_width,
        "batch_size": proposal.batch_size,
        "steps_per_epoch": proposal.steps_per_epoch,
        "epochs": proposal.epochs,
        "minutes": minutes,
        "precision": precision,
        **{name: getattr(recipe, name) for name in TRAINED_FIELDS},
    }
    fields.update({k: v for k, v in given.items() if v is not None})
    return TrainSettings(**fields)


@dataclass
class FinetuneResult:
    """What a fine-tune keeps: ``model`` and ``config`` (the fine-tuned
    model, or the start model when it scored better on the held-out
    strokes; None when Stop came before anything was trained), the
    training's own result and the :class:`~.held_out.Verdict`."""

    model: object
    config: ModelConfig | None
    training: TrainResult
    verdict: Verdict | None = None
    checkpoint: str | None = None

    @property
    def stopped(self) -> bool:
        return self.training.stopped and not self.training.budget_ended

    def describe(self) -> str:
        """The verdict's line, or why there is none."""
        if self.verdict is None:
            return "stopped before anything was trained: no model kept"
        return self.verdict.describe()


def _start_view(image: np.ndarray, config: ModelConfig) -> np.ndarray:
    """``image`` as the start model takes it: plane polars alone for an
    RGB model fine-tuned on plane + crossed polars."""
    if image.shape[-1] > config.input_channels:
        return image[..., : config.input_channels]
    return image


def finetune(
    pairs: Sequence[Pair],
    scheme: ClassScheme,
    model,
    config: ModelConfig,
    minutes: float | None = DEFAULT_MINUTES,
    settings: TrainSettings | None = None,
    checkpoints_path: str | Path | None = None,
    overwrite: bool = False,
    n_classes: int | None = None,
    stop: Callable[[], bool] | None = None,
    seed: int = 0,
    judged: Sequence[np.ndarray] = (),
    validation: Sequence[Pair] = (),
    recipe: Recipe = RECIPE,
) -> Generator[Progress, None, FinetuneResult]:
    """Fine-tune ``model`` on the strokes of ``pairs``; see the module
    docstring.

    ``settings`` default to :func:`finetune_settings` for ``minutes``;
    ``checkpoints_path``, ``overwrite``, ``n_classes``, ``stop`` and
    ``validation`` are :func:`~napari_thinseg.training.loop.train`'s.
    ``judged``: per pair, more strokes to judge on and never train on (a
    check a petrographer painted, say; one per pair, or none);
    ``recipe`` gives the default settings and ``start_share``. Yields
    training's events (:class:`~napari_thinseg.training.loop.TrainEvent`) and
    the start model's and the judging's progress.
    """
    n_classes = n_classes or scheme.n_classes
    train_labels, held = split_strokes([p.labels for p in pairs], seed)
    for lab, more in zip(held, judged, strict=False):
        lab[lab == 0] = np.asarray(more)[lab == 0]
    channels = np.asarray(pairs[0].image).shape[-1]
    replayed = replay_pairs(recipe.replay, channels)
    views = yield from _start_views(
        model, config, [*pairs, *replayed], scheme, n_classes
    )
    soft = [view.soft for view in views]
    if recipe.forest_share > 0:
        soft = yield from _with_forest(
            soft, pairs, train_labels, n_classes, recipe, seed
        )
    if settings is None:
        shapes = [p.labels.shape for p in pairs]
        settings = finetune_settings(
            shapes, minutes or DEFAULT_MINUTES, recipe
        )
    training_pairs = [
        replace(p, labels=lab)
        for p, lab in zip(pairs, train_labels, strict=True)
    ] + replayed
    # training may change the start model in place (same crop size)
    start_weights = model.get_weights()
    result = yield from train(
        training_pairs,
        scheme,
        settings,
        validation=validation,
        checkpoints_path=checkpoints_path,
        model=model,
        config=config,
        overwrite=overwrite,
        n_classes=n_classes,
        stop=stop,
        soft_targets=soft if any(s is not None for s in soft) else None,
    )
    if not result.history:
        model.set_weights(start_weights)
        return FinetuneResult(None, None, result)
    _record_recipe(result, config, start_weights, recipe, replayed)
    verdict = yield from _judge(result, views, pairs, held, scheme, n_classes)
    if verdict.kept_start:
        model.set_weights(start_weights)  # trained in place, say
    return _keep(result, verdict, model, config, checkpoints_path)


def _start_views(model, config, pairs, scheme, n_classes):
    """The start model's :class:`~.soft_targets.StartView` of each pair."""
    views = []
    for pair in pairs:
        image = _start_view(np.asarray(pair.image), config)
        views.append(
            (
                yield from relay(
                    start_view(model, config, image, scheme, n_classes),
                    as_message(f"the start model's view of {pair.name}"),
                )
            )
        )
    return views


def _record_recipe(result, config, start_weights, recipe, replayed) -> None:
    """Apply the recipe's blend back to the start model's weights (where
    the network is the start model's) and record what acted around
    training in the config."""
    trained_on = result.config.trained_on
    same_network = result.transfer is None and _fits(config, result.config)
    if same_network and recipe.start_share:
        blend_weights(result.model, start_weights, recipe.start_share)
        trained_on["start_share"] = recipe.start_share
    if recipe.forest_share > 0:
        trained_on["forest_share"] = recipe.forest_share
        if recipe.forest_confidence > 0:
            trained_on["forest_confidence"] = recipe.forest_confidence
    if replayed:
        trained_on["replay"] = [p.name for p in replayed]


def _judge(result, views, pairs, held, scheme, n_classes):
    """The :class:`~.held_out.Verdict`: the start model (its class maps of
    ``views``) against the fine-tuned one on the held-out strokes."""
    before = score(
        [
            np.full(lab.shape, -1) if view.labels is None else view.labels
            for view, lab in zip(views[: len(pairs)], held, strict=True)
            if lab.any()
        ],
        [lab for lab in held if lab.any()],
    )
    after = yield from relay(
        agreement(
            result.model,
            result.config,
            [p.image for p in pairs],
            held,
            scheme,
            n_classes,
        ),
        as_message("judging the fine-tuned model on held-out strokes"),
    )
    return Verdict(before, after)


def _with_forest(soft, pairs, train_labels, n_classes, recipe, seed):
    """``soft`` with the strokes' forest mixed into the stroked photos'
    (the replayed ones keep the start model's view)."""
    forest = yield from forest_probabilities(
        [p.image for p in pairs], train_labels, n_classes, seed
    )
    if forest is None:
        return soft
    mixed = [
        mix_soft_targets(s, f, recipe.forest_share, recipe.forest_confidence)
        for s, f in zip(soft, forest, strict=False)
    ]
    return mixed + soft[len(forest) :]


def _fits(start_config: ModelConfig, config: ModelConfig) -> bool:
    """Whether the start model's weights fit the fine-tuned network (the
    same classes and input)."""
    return (
        start_config.n_classes == config.n_classes
        and start_config.input_channels == config.input_channels
    )


def blend_weights(model, start_weights: list, share: float) -> None:
    """Move ``model``'s weights ``share`` of the way back to
    ``start_weights`` (a list as ``get_weights`` gives; same network)."""
    model.set_weights(
        [
            share * np.asarray(s) + (1.0 - share) * np.asarray(w)
            for s, w in zip(start_weights, model.get_weights(), strict=True)
        ]
    )


def _keep(
    result: TrainResult,
    verdict: Verdict,
    start_model,
    start_config: ModelConfig,
    prefix,
) -> FinetuneResult:
    """The verdict applied: the better model in the result, and in the
    latest checkpoint (the fine-tuned model's final weights, or the start
    model's where they fit); the verdict in the config."""
    config = result.config
    config.trained_on["held_out"] = verdict.to_dict()
    kept = FinetuneResult(
        result.model, config, result, verdict, result.checkpoint
    )
    fits = _fits(start_config, config)
    if verdict.kept_start:
        kept.model = start_model
        if not fits:
            kept.config = start_config
    if prefix is not None and result.checkpoint is not None:
        if fits:
            epoch = int(Path(result.checkpoint).suffix[1:])
            ck.save_checkpoint(prefix, epoch, kept.model)
        ck.write_config(prefix, config)
    return kept
