"""Held-out strokes: the judge of a fine-tune.

Nothing else tells a petrographer whether a round of training helped: the
strokes are the only truth there is. So some of them are kept out of
training (whole strokes, never pixels of one: neighbouring pixels of a
stroke would all but repeat the training data), the start model and the
fine-tuned one are scored on them, and the better one is the result.

A stroke is a connected region of one class (8-connected). Every class
with more than one stroke keeps :data:`HELD_OUT_SHARE` of them (at least
one) out of training; a class with one stroke trains on it. The score is
the share of held-out pixels a model classes as painted, averaged over
the classes (a common class's many pixels do not drown a rare one's).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np

from ..inference.predict import predict_image
from ..model.config import ModelConfig
from ..progress import Progress
from ..schemes import ClassScheme
from .soft_targets import labels_ids

HELD_OUT_SHARE = 0.2
"""Share of a class's strokes held out (at least one, never all)."""


def strokes_of(labels: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """``[(class id, flat pixel indices)]``: each stroke of ``labels``
    (0 unpainted), class by class, in raster order of their first
    pixel."""
    from scipy import ndimage as ndi

    out = []
    for c in np.unique(labels[labels > 0]).tolist():
        regions, n = ndi.label(labels == c, structure=np.ones((3, 3)))
        flat = regions.ravel()
        order = np.argsort(flat, kind="stable")
        bounds = np.searchsorted(flat[order], np.arange(1, n + 2))
        for k in range(n):
            out.append((int(c), order[bounds[k] : bounds[k + 1]]))
    return out


def split_strokes(
    labels: Sequence[np.ndarray], seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``(training labels, held-out labels)`` of each image: whole strokes
    held out, :data:`HELD_OUT_SHARE` of every class that has more than
    one (chosen with ``seed``); the held-out ones are 0 in the training
    labels and the rest 0 in the held-out ones."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[tuple[int, np.ndarray]]] = {}
    for k, lab in enumerate(labels):
        for c, flat in strokes_of(np.asarray(lab)):
            by_class.setdefault(c, []).append((k, flat))
    train = [np.array(lab, copy=True) for lab in labels]
    held = [np.zeros_like(lab) for lab in labels]
    for c, strokes in sorted(by_class.items()):
        if len(strokes) < 2:
            continue
        n = min(len(strokes) - 1, max(1, round(HELD_OUT_SHARE * len(strokes))))
        for i in rng.choice(len(strokes), n, replace=False):
            k, flat = strokes[i]
            held[k].ravel()[flat] = c
            train[k].ravel()[flat] = 0
    return train, held


@dataclass(frozen=True)
class Agreement:
    """How well a model agrees with held-out strokes: ``per_class``
    ``{class id: share of its held-out pixels classed so}`` and their
    mean, ``score``; ``pixels`` held out in all."""

    score: float
    per_class: dict[int, float]
    pixels: int


def score(
    predicted: Sequence[np.ndarray], held: Sequence[np.ndarray]
) -> Agreement | None:
    """:class:`Agreement` of class maps ``predicted`` (in the labels'
    ids; -1 where a model names no class of theirs) with the held-out
    strokes ``held``; None when nothing is held out."""
    hits: dict[int, int] = {}
    counts: dict[int, int] = {}
    for said, lab in zip(predicted, held, strict=True):
        painted = lab > 0
        truth, said = lab[painted], np.asarray(said)[painted]
        for c in np.unique(truth).tolist():
            mine = truth == c
            counts[c] = counts.get(c, 0) + int(mine.sum())
            hits[c] = hits.get(c, 0) + int((said[mine] == c).sum())
    if not counts:
        return None
    per_class = {c: hits[c] / counts[c] for c in sorted(counts)}
    mean = float(np.mean(list(per_class.values())))
    return Agreement(mean, per_class, sum(counts.values()))


def agreement(
    model,
    config: ModelConfig,
    images: Sequence[np.ndarray],
    held: Sequence[np.ndarray],
    scheme: ClassScheme,
    n_classes: int,
    precision: str = "auto",
) -> Generator[Progress, None, Agreement | None]:
    """Score ``model`` on the held-out strokes ``held`` of ``images`` (in
    the labels' ``scheme``; a model of another scheme is read through the
    classes both have by name). None when nothing is held out."""
    to_labels = labels_ids(config, scheme, n_classes)
    predicted, judged = [], []
    for image, lab in zip(images, held, strict=True):
        if lab.any():
            pred = yield from predict_image(
                model, config, image, precision=precision
            )
            predicted.append(to_labels[pred.labels])
            judged.append(lab)
    return score(predicted, judged)


@dataclass(frozen=True)
class Verdict:
    """Which model a fine-tune keeps, and why: the start model's and the
    fine-tuned one's :class:`Agreement` with the held-out strokes (None
    when nothing was held out: the fine-tuned one is kept unjudged)."""

    start: Agreement | None
    trained: Agreement | None

    @property
    def kept_start(self) -> bool:
        """Whether the start model scored better (ties go to the
        fine-tuned one, which also learned the other strokes)."""
        if self.start is None or self.trained is None:
            return False
        return self.trained.score < self.start.score

    @property
    def kept(self) -> str:
        return "the start model" if self.kept_start else "the fine-tuned model"

    def describe(self) -> str:
        """``"held-out strokes: 61 % -> 78 % agree; kept the fine-tuned
        model"``."""
        if self.start is None or self.trained is None:
            return (
                "no held-out strokes (paint two or more strokes of a class "
                "to judge): kept the fine-tuned model unjudged"
            )
        return (
            f"held-out strokes: {100 * self.start.score:.0f} % -> "
            f"{100 * self.trained.score:.0f} % agree; kept {self.kept}"
        )

    def to_dict(self) -> dict:
        """For the model's config (``trained_on["held_out"]``)."""

        def part(a: Agreement | None):
            if a is None:
                return None
            per = {str(c): round(v, 4) for c, v in a.per_class.items()}
            return {"score": round(a.score, 4), "per_class": per}

        return {
            "start": part(self.start),
            "trained": part(self.trained),
            "pixels": None if self.start is None else self.start.pixels,
            "kept": "start" if self.kept_start else "fine-tuned",
        }
