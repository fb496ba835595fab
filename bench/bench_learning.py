"""Learning curves: held-out mean IoU against process CPU seconds of
training, on expert-labelled thin sections, in one run.

Data (``../shared/data``, :mod:`_learning_data`):

- polarised-sandstones: 16 fields, plane (PPL) and crossed (XPL) polars,
  labels 1..5 (:data:`POLARISED_CLASSES`), at every ``--scale``-th pixel
  (600 x 800 at the default 2); split by thin section (fields ``Na`` and
  ``Nb`` never on both sides), ``--test_sections`` sections held out. The
  data is GPL-3.0: benchmark only; no weights trained here are kept.
- sandstone-minerals: the 6 photos in the ``sandstone`` scheme, k-fold by
  image (``--folds``); the score is the mean IoU over pore / quartz /
  feldspar / rock fragment (as ``scripts/train_sandstone_model.py``
  measures), the confusion matrices of the held-out photos of every fold
  pooled.

Methods, each one curve per dataset, input and labels:

- the VGG-UNet (``train.train``) from random weights, or transferred from a
  shipped model (``--base_polarised``, default ``sandstone``;
  ``--base_minerals``, default ``default``: the shipped ``sandstone``
  model was trained on all six sandstone-minerals photos, so transferring
  it there would measure photos it has seen); train() moves the weights to
  the new classes itself; ``--inits frozen`` is the transfer with the
  encoder's first ``--frozen_blocks`` (4) VGG blocks kept fixed
  (``TrainSettings.frozen_blocks``); ``--average_weights 0.99`` scores
  the moving average of the weights instead of the last step's
  (``TrainSettings.average_weights``);
- input PPL, or PPL + XPL stacked (``np.concatenate([ppl, xpl], -1)``, 6
  channels; where this checkout cannot train or predict 6-channel input the
  bench says so and leaves those curves out);
- labels dense (every pixel of the training images) or 2 % brush strokes
  (``stroke_labels``; ``--stroke_fraction``); the held-out images are
  always scored against their dense labels;
- an ilastik-style baseline on the same labels: per-pixel
  ``skimage.feature.multiscale_basic_features`` (of PPL, and of XPL
  concatenated for PPL + XPL) and a scikit-learn
  ``RandomForestClassifier`` (``--rf_trees`` 100), fitted on growing
  numbers of sampled labelled pixels; its CPU is the features of the
  training images plus the fit.

How a curve is measured: one training per curve, evaluated from the
progress callback. ``train()`` is first run for no batch (``stop`` true at
once), which gives the network it would train, randomly initialised or
transferred; a second ``train()`` of that very network (same classes, size
and precision, so train() keeps the object) trains it in place, and the
callback, after the batch that passes each budget of ``--points``
(CPU-minutes, up to ``--minutes``), predicts the held-out images with it
(``predict.predict_image``). ``TrainEvent`` carries no model, and
separate trainings per budget would cost the sum of the budgets instead of
the largest; this way the evaluation's CPU time is measured and taken off
the training clock. The clock starts at building the network (the
transfer included, reading the base model's file not) and so counts the
first batch's tracing, as a user's training would. The learning rate is
constant (adam, ``--lr`` 5e-4): the recipe's cosine schedule depends on
the total number of steps, so the network at an intermediate budget would
be one that no run of that budget gives; with a constant rate every point
is what stopping training there gives. The rest is the recipe of
``scripts/train_sandstone_model.py`` (224 crops, batch 4, flips and
turns, colour casts, class-balanced loss, automatic precision).

CPU time is ``time.process_time()`` of this process (all its threads), not
wall time: the machine may be shared. Prints a table (method, CPU-minutes,
held-out mIoU, per-class IoU), the issue's targets as checks with the
measured values, and writes a plot (``--plot``) and the raw points as
JSON (``--json``). Not run by CI. Needs scikit-learn (``pip install
scikit-learn``) for the baseline (``--no-rf`` leaves it out). The whole
grid at 30 CPU-minutes a curve takes many CPU-hours; a reduced one:

    .venv/bin/python bench/bench_learning.py --minutes 4 \\
        --datasets polarised --inputs ppl --plot /tmp/curves.png \\
        --json /tmp/curves.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _learning_data import (
    MAIN_CLASSES,
    MINERALS,
    POLARISED,
    Field,
    image_folds,
    mineral_photos,
    polarised_fields,
    polarised_scheme,
    section_split,
    stroke_labels,
)

from napari_thinseg.inference.metrics import (
    confusion_matrix,
    iou_from_confusion,
)
from napari_thinseg.schemes import SANDSTONE, ClassScheme

POLARISED_SCHEME = polarised_scheme()

HERE = Path(__file__).resolve().parent
"""Classes 1..5 of polarised-sandstones, named as :data:`POLARISED_CLASSES`
(``quartz`` shares its name with the ``sandstone`` scheme, so a transfer
from the sandstone model keeps that output filter)."""
RF_SAMPLES = (1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 200_000)
NO_6_CHANNELS = "6-channel input not available in this checkout"


@dataclass
class Task:
    """A dataset with its folds: (training, held-out) fields each."""

    name: str
    scheme: ClassScheme
    folds: list[tuple[list[Field], list[Field]]]
    score_ids: tuple[int, ...]
    base: str
    note: str = ""


@dataclass
class Curve:
    """One learning curve: points of (training CPU seconds, pooled
    confusion matrix of the held-out images)."""

    dataset: str
    method: str  # "cnn" or "rf"
    init: str  # "random", "transfer" or "" (random forest)
    inputs: str  # "ppl" or "ppl+xpl"
    labels: str  # "dense" or "strokes"
    points: list[dict] = field(default_factory=list)
    error: str | None = None

    @property
    def label(self) -> str:
        what = "CNN " + self.init if self.method == "cnn" else "RF"
        what = what.replace("frozen", "transfer, frozen encoder")
        inputs = "PPL + XPL" if self.inputs == "ppl+xpl" else "PPL"
        return f"{what}, {inputs}, {self.labels}"


# -- data ----------------------------------------------------------------
def tasks(args) -> list[Task]:
    out = []
    if "polarised" in args.datasets:
        if not POLARISED.is_dir():
            sys.exit(f"needs the polarised sandstones in {POLARISED}")
        fields = polarised_fields(args.scale)
        train_f, test_f = section_split(
            fields, args.test_sections, args.split_seed
        )
        held = sorted({f.section for f in test_f}, key=_natural)
        h, w = fields[0].labels.shape
        out.append(
            Task(
                "polarised",
                POLARISED_SCHEME,
                [(train_f, test_f)],
                tuple(POLARISED_SCHEME.ids),
                args.base_polarised,
                f"polarised-sandstones: trained on {len(train_f)} fields, "
                f"held out sections {', '.join(held)} ({len(test_f)} "
                f"fields), {h} x {w}",
            )
        )
    if "minerals" in args.datasets:
        if not MINERALS.is_dir():
            sys.exit(f"needs the sandstone minerals in {MINERALS}")
        photos = mineral_photos()
        groups = image_folds(photos, args.folds)[: args.run_folds]
        names = {p.name for p in photos}
        folds = [
            ([p for p in photos if p.name not in {g.name for g in held}], held)
            for held in groups
        ]
        out.append(
            Task(
                "minerals",
                SANDSTONE,
                folds,
                tuple(SANDSTONE.id_of(c) for c in MAIN_CLASSES),
                args.base_minerals,
                f"sandstone-minerals: {len(folds)} of {args.folds} folds by "
                f"photo ({len(names)} photos), held-out photos pooled",
            )
        )
    return out


def _natural(text: str):
    return (0, int(text)) if text.isdigit() else (1, text)


def image_of(f: Field, inputs: str) -> np.ndarray:
    if inputs == "ppl":
        return f.ppl
    return np.concatenate([f.ppl, f.xpl], axis=-1)


_STROKES: dict[tuple[str, str, float], np.ndarray] = {}


def labels_of(f: Field, kind: str, fraction: float) -> np.ndarray:
    """Dense labels, or the strokes a user might brush (cached: the same
    strokes for every method)."""
    if kind == "dense":
        return f.labels
    key = (f.section, f.name, fraction)
    if key not in _STROKES:
        seed = sum(map(ord, f.name))
        _STROKES[key] = stroke_labels(f.labels, fraction, seed=seed)
    return _STROKES[key]


# -- scores --------------------------------------------------------------
def scores(cm: np.ndarray, scheme: ClassScheme, ids) -> tuple[float, dict]:
    """Mean IoU over ``ids`` present in the truth, and each one's IoU."""
    iou = iou_from_confusion(cm)
    present = [i for i in ids if cm[i].sum() > 0]
    per_class = {
        scheme[i].name: (None if np.isnan(iou[i]) else float(iou[i]))
        for i in ids
    }
    mean = float(np.nanmean(iou[present])) if present else float("nan")
    return mean, per_class


def add_cm(cm, truth, pred, n):
    keep = truth > 0
    cm += confusion_matrix(truth[keep], pred[keep], n)


# -- the VGG-UNet --------------------------------------------------------
class Clock:
    """Process CPU seconds since it was made, less those spent inside
    :meth:`excluded` blocks (the evaluations)."""

    def __init__(self):
        self.t0 = time.process_time()
        self.off = 0.0

    def __call__(self) -> float:
        return time.process_time() - self.t0 - self.off

    @contextmanager
    def excluded(self):
        c0 = time.process_time()
        try:
            yield
        finally:
            self.off += time.process_time() - c0


def settings_for(args, seed: int, frozen_blocks: int = 0):
    from napari_thinseg.training.loop import TrainSettings

    return TrainSettings(
        input_height=args.size,
        input_width=args.size,
        epochs=1,
        batch_size=args.batch,
        # one long epoch, stopped by the CPU budget (the rate is constant)
        steps_per_epoch=10**7,
        optimizer="adam",
        learning_rate=args.lr,
        augment=True,
        colour_augment=args.colour_augment,
        balance_classes=True,
        schedule="constant",
        seed=seed,
        frozen_blocks=frozen_blocks,
        average_weights=args.average_weights,
    )


def cnn_fold(curve, task, args, budgets, k, train_f, test_f) -> list[dict]:
    """One fold's points: the held-out confusion matrix after the batch
    that passes each budget (CPU seconds)."""
    from napari_thinseg.dataset.folders import Pair
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.model import checkpoints as ck
    from napari_thinseg.model.cache import inference_networks
    from napari_thinseg.progress import run
    from napari_thinseg.training.loop import train
    from napari_thinseg.training.recipe import averaged_weights

    n = task.scheme.n_classes
    pairs = [
        Pair(
            f.name,
            image_of(f, curve.inputs),
            labels_of(f, curve.labels, args.stroke_fraction),
        )
        for f in train_f
    ]
    frozen = args.frozen_blocks if curve.init == "frozen" else 0
    settings = settings_for(args, seed=args.seed + k, frozen_blocks=frozen)
    base = base_config = None
    if curve.init in ("transfer", "frozen"):
        # loaded afresh for every curve: a base of the same classes and
        # precision would be trained in place
        base, base_config, _ = ck.load_model(
            ck.shipped_model_prefix(task.base)
        )
    clock = Clock()
    # no batch: the network train() would train, new or transferred
    start = run(
        train(
            pairs,
            task.scheme,
            settings,
            model=base,
            config=base_config,
            stop=lambda: True,
        )
    )
    model, config = start.model, start.config
    channels = getattr(config, "input_channels", 3)
    if channels != pairs[0].image.shape[-1]:
        raise RuntimeError(
            f"train() built a network of {channels}-channel input for "
            f"{pairs[0].image.shape[-1]}-channel images"
        )
    points, pending = [], list(budgets)

    def on_event(event):
        passed = None
        while pending and clock() >= pending[0]:
            passed = pending.pop(0)
        if passed is None:
            return
        # with --average_weights, the averages: what stopping here gives
        with clock.excluded(), averaged_weights(model):
            cm = np.zeros((n, n), np.int64)
            for f in test_f:
                image = image_of(f, curve.inputs)
                pred = run(predict_image(model, config, image)).labels
                add_cm(cm, f.labels, pred, n)
        batches = 0 if event is None else event.step
        points.append(
            {"key": passed, "cpu_s": clock(), "cm": cm, "batches": batches}
        )
        mean, _ = scores(cm, task.scheme, task.score_ids)
        print(
            f"    fold {k + 1}: {clock() / 60:5.2f} CPU-min, held-out "
            f"mIoU {mean:.3f}",
            flush=True,
        )

    on_event(None)  # budget 0: the network before any batch
    result = run(
        train(
            pairs,
            task.scheme,
            settings,
            model=model,
            config=config,
            stop=lambda: not pending,
        ),
        on_event,
    )
    if result.model is not model:
        raise RuntimeError(
            "train() did not train the network it was given, so the "
            "points would be of another model"
        )
    # the prediction networks of this model are not needed again: their
    # memory goes to the next curve (the random forests are large)
    inference_networks.clear()
    return points


def cnn_curve(curve: Curve, task: Task, args, budgets: list[float]) -> None:
    """Fill ``curve`` with points at ``budgets`` (CPU seconds), the
    confusion matrices of all folds' held-out images pooled."""
    curve.points = pool(
        [
            cnn_fold(curve, task, args, budgets, k, train_f, test_f)
            for k, (train_f, test_f) in enumerate(task.folds)
        ]
    )


def pool(per_fold: list[list[dict]]) -> list[dict]:
    """The folds' points pooled by key (budget or sample size) that every
    fold reached: confusion matrices summed, CPU seconds averaged."""
    keys = set.intersection(*({p["key"] for p in f} for f in per_fold))
    out = []
    for key in sorted(keys):
        pts = [p for f in per_fold for p in f if p["key"] == key]
        out.append(
            {
                "key": key,
                "cpu_s": float(np.mean([p["cpu_s"] for p in pts])),
                "cm": sum(p["cm"] for p in pts),
                "batches": [p.get("batches") for p in pts],
            }
        )
    return out


def six_channel_problem(scheme: ClassScheme) -> str | None:
    """Why this checkout cannot train and predict a PPL + XPL network
    (None when it can): one tiny random network, no batch trained."""
    from napari_thinseg.dataset.folders import Pair
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.progress import run
    from napari_thinseg.training.loop import TrainSettings, train

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 6), dtype=np.uint8)
    labels = np.ones((64, 64), np.uint8)
    settings = TrainSettings(
        input_height=64, input_width=64, epochs=1, steps_per_epoch=1
    )
    try:
        result = run(train([Pair("probe", image, labels)], scheme, settings))
        config = result.config
        if getattr(config, "input_channels", 3) != 6:
            return "train() built a network of 3-channel input"
        run(predict_image(result.model, config, image))
    except Exception as exc:  # any refusal means: not there yet
        return f"{type(exc).__name__}: {exc}"
    return None


# -- the random-forest baseline ------------------------------------------
def features(f: Field, inputs: str) -> np.ndarray:
    """ilastik-style per-pixel features, (H, W, F) float32: intensity,
    edges and texture at sigmas 0.5..16 of every channel (of PPL, and of
    XPL concatenated)."""
    from skimage.feature import multiscale_basic_features

    images = [f.ppl] if inputs == "ppl" else [f.ppl, f.xpl]
    return np.concatenate(
        [
            multiscale_basic_features(im, channel_axis=-1).astype(np.float32)
            for im in images
        ],
        axis=-1,
    )


def rf_curve(curve: Curve, task: Task, args, budget: float) -> None:
    """Fit on growing samples of the labelled pixels until a fit's CPU
    time passes ``budget``; each point's CPU is the training images'
    features plus that fit."""
    from sklearn.ensemble import RandomForestClassifier

    n = task.scheme.n_classes
    per_fold = []
    for k, (train_f, test_f) in enumerate(task.folds):
        rng = np.random.default_rng(args.seed + k)
        t0 = time.process_time()
        labelled = [
            labels_of(f, curve.labels, args.stroke_fraction) for f in train_f
        ]
        total = sum(int((lab > 0).sum()) for lab in labelled)
        xs, ys = [], []
        for f, lab in zip(train_f, labelled, strict=True):
            where = np.flatnonzero(lab.ravel() > 0)
            # each image's share of the sample is its share of the labels
            take = min(
                len(where), round(args.rf_max_samples * len(where) / total)
            )
            pick = rng.choice(where, take, replace=False)
            feats = features(f, curve.inputs)
            xs.append(feats.reshape(-1, feats.shape[-1])[pick])
            ys.append(lab.ravel()[pick])
            del feats
        x, y = np.concatenate(xs), np.concatenate(ys)
        order = rng.permutation(len(y))
        x, y = x[order], y[order]
        feature_cpu = time.process_time() - t0
        sizes = [s for s in RF_SAMPLES if s < len(y)] + [len(y)]
        points = []
        for size in sizes:
            c0 = time.process_time()
            forest = RandomForestClassifier(
                args.rf_trees, n_jobs=-1, random_state=args.seed + k
            ).fit(x[:size], y[:size])
            cpu = feature_cpu + time.process_time() - c0
            cm = np.zeros((n, n), np.int64)
            for f in test_f:
                feats = features(f, curve.inputs)
                pred = forest.predict(feats.reshape(-1, feats.shape[-1]))
                add_cm(cm, f.labels, pred.reshape(f.labels.shape), n)
                del feats
            del forest
            points.append({"key": size, "cpu_s": cpu, "cm": cm})
            mean, _ = scores(cm, task.scheme, task.score_ids)
            print(
                f"    fold {k + 1}: {size} pixels, {cpu / 60:5.2f} CPU-min, "
                f"held-out mIoU {mean:.3f}",
                flush=True,
            )
            if cpu >= budget:
                break
        per_fold.append(points)
    curve.points = pool(per_fold)


# -- reports -------------------------------------------------------------
def finish(curve: Curve, task: Task) -> None:
    for p in curve.points:
        p["miou"], p["iou"] = scores(p["cm"], task.scheme, task.score_ids)


def print_table(task: Task, curves: list[Curve]) -> None:
    names = [task.scheme[i].name for i in task.score_ids]
    print(f"\n{task.note}")
    head = f"{'method':<32} {'CPU-min':>7} {'pixels':>7} {'mIoU':>6}"
    print(head + "".join(f" {n[:11]:>11}" for n in names))
    for c in curves:
        if c.error:
            print(f"{c.label:<32} {c.error}")
            continue
        for p in c.points:
            px = str(p["key"]) if c.method == "rf" else ""
            row = (
                f"{c.label:<32} {p['cpu_s'] / 60:7.2f} {px:>7} "
                f"{p['miou']:6.3f}"
            )
            print(row + "".join(f" {_num(p['iou'][n]):>11}" for n in names))


def _num(v) -> str:
    return "-" if v is None or np.isnan(v) else f"{v:.3f}"


def find(curves, **kw) -> Curve | None:
    for c in curves:
        if (
            not c.error
            and c.points
            and all(getattr(c, k) == v for k, v in kw.items())
        ):
            return c
    return None


def rf_at(rf: Curve, cpu: float) -> float | None:
    """The forest's mIoU with at most ``cpu`` seconds (None: no fit yet)."""
    done = [p for p in rf.points if p["cpu_s"] <= cpu]
    return done[-1]["miou"] if done else None


def checks(curves: list[Curve], task_names, six_problem) -> list[str]:
    """The issue's targets, with the measured values."""
    lines = []
    # 1. strokes: transfer beats the forest at equal CPU from 2 minutes on
    for ds, init in itertools.product(task_names, ("transfer", "frozen")):
        for inputs in ("ppl", "ppl+xpl"):
            cnn = find(
                curves,
                dataset=ds,
                method="cnn",
                init=init,
                inputs=inputs,
                labels="strokes",
            )
            rf = find(
                curves,
                dataset=ds,
                method="rf",
                inputs=inputs,
                labels="strokes",
            )
            if cnn is None or rf is None:
                continue
            late = [p for p in cnn.points if p["cpu_s"] >= 120]
            what = f"{ds}, {inputs.upper()}, {cnn.label.rsplit(', ', 2)[0]}"
            if not late:
                lines.append(
                    f"[not measured] strokes, transfer > RF from 2 CPU-min "
                    f"({what}): the curve stops at "
                    f"{cnn.points[-1]['cpu_s'] / 60:.1f} CPU-min"
                )
                continue
            pairs = [(p, rf_at(rf, p["cpu_s"])) for p in late]
            met = all(r is None or p["miou"] > r for p, r in pairs)
            detail = "; ".join(
                f"{p['cpu_s'] / 60:.1f} min: {p['miou']:.3f} vs "
                f"{'-' if r is None else f'{r:.3f}'}"
                for p, r in pairs
            )
            lines.append(
                f"[{'met' if met else 'NOT met'}] strokes, transfer > RF at "
                f"equal CPU from 2 CPU-min ({what}): {detail}"
            )
    # 2. dense minerals: mIoU (main classes) >= 0.65 within 30 CPU-minutes
    for init in ("transfer", "frozen", "random"):
        c = find(
            curves,
            dataset="minerals",
            method="cnn",
            init=init,
            inputs="ppl",
            labels="dense",
        )
        if c is None:
            continue
        within = [p for p in c.points if p["cpu_s"] <= 30 * 60 * 1.02]
        best = max(within, key=lambda p: p["miou"])
        reached = c.points[-1]["cpu_s"] / 60
        if best["miou"] >= 0.65:
            verdict = "met"
        elif reached < 29.5:
            verdict = "not decided"
        else:
            verdict = "NOT met"
        lines.append(
            f"[{verdict}] minerals, dense, CNN {init}: best mIoU (pore / "
            f"quartz / feldspar / rock fragment) within 30 CPU-min "
            f"{best['miou']:.3f} at {best['cpu_s'] / 60:.1f} min (>= 0.65; "
            f"ran to {reached:.1f} min)"
        )
    # 3. polarised: PPL + XPL >= PPL + 0.10; plagioclase IoU >= 0.4
    if "polarised" in task_names:
        if six_problem:
            lines.append(
                f"[not measured] polarised, PPL + XPL >= PPL + 0.10 mIoU "
                f"and plagioclase IoU >= 0.4: {NO_6_CHANNELS} "
                f"({six_problem})"
            )
        compared = False
        for init in ("transfer", "frozen", "random"):
            for labels in ("dense", "strokes"):
                kw = dict(
                    dataset="polarised", method="cnn", init=init, labels=labels
                )
                one = find(curves, inputs="ppl", **kw)
                two = find(curves, inputs="ppl+xpl", **kw)
                if one is None or two is None:
                    continue
                compared = True
                i = min(len(one.points), len(two.points)) - 1
                a, b = one.points[i], two.points[i]
                gain = b["miou"] - a["miou"]
                plag_a = a["iou"]["plagioclase"]
                plag_b = b["iou"]["plagioclase"]
                lines.append(
                    f"[{'met' if gain >= 0.10 else 'NOT met'}] polarised, "
                    f"CNN {init}, {labels}: PPL + XPL {b['miou']:.3f} vs "
                    f"PPL {a['miou']:.3f} at {b['cpu_s'] / 60:.1f} / "
                    f"{a['cpu_s'] / 60:.1f} CPU-min: {gain:+.3f} (>= +0.10)"
                )
                ok = plag_b is not None and plag_b >= 0.4
                lines.append(
                    f"[{'met' if ok else 'NOT met'}] polarised, CNN {init}, "
                    f"{labels}: plagioclase IoU with PPL + XPL "
                    f"{_num(plag_b)} (PPL alone {_num(plag_a)}; >= 0.4)"
                )
        for labels in ("dense", "strokes"):
            one = find(
                curves,
                dataset="polarised",
                method="rf",
                inputs="ppl",
                labels=labels,
            )
            two = find(
                curves,
                dataset="polarised",
                method="rf",
                inputs="ppl+xpl",
                labels=labels,
            )
            if one and two:
                a, b = one.points[-1], two.points[-1]
                lines.append(
                    f"[info] polarised, RF, {labels}: PPL + XPL "
                    f"{b['miou']:.3f} vs PPL {a['miou']:.3f}, plagioclase "
                    f"{_num(b['iou']['plagioclase'])} vs "
                    f"{_num(a['iou']['plagioclase'])}"
                )
        if not compared and not six_problem:
            lines.append(
                "[not measured] polarised, PPL + XPL vs PPL: run both "
                "--inputs ppl,ppl+xpl"
            )
    return lines


def plot(curves: list[Curve], task_list: list[Task], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({c.labels for c in curves})
    if not labels:
        return
    fig, axes = plt.subplots(
        len(task_list),
        len(labels),
        figsize=(5.5 * len(labels), 4 * len(task_list)),
        squeeze=False,
    )
    style = {
        "random": "tab:orange",
        "transfer": "tab:blue",
        "frozen": "tab:green",
        "": "black",
    }
    for row, task in zip(axes, task_list, strict=True):
        for ax, kind in zip(row, labels, strict=True):
            for c in curves:
                if c.dataset != task.name or c.labels != kind or not c.points:
                    continue
                ax.plot(
                    [p["cpu_s"] / 60 for p in c.points],
                    [p["miou"] for p in c.points],
                    marker="o" if c.method == "cnn" else "s",
                    linestyle="-" if c.inputs == "ppl" else "--",
                    color=style[c.init],
                    label=c.label.rsplit(",", 1)[0],
                )
            score = (
                "mIoU, 4 main classes" if task.name == "minerals" else "mIoU"
            )
            ax.set_title(f"{task.name}, {kind} labels", fontsize=10)
            ax.set_xlabel("training, process CPU-minutes")
            ax.set_ylabel(f"held-out {score}")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def to_json(curves, task_list, args, lines, six_problem) -> dict:
    return {
        "args": vars(args),
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "six_channel_problem": six_problem,
        "datasets": {t.name: t.note for t in task_list},
        "checks": lines,
        "curves": [
            {
                "dataset": c.dataset,
                "method": c.method,
                "init": c.init,
                "inputs": c.inputs,
                "labels": c.labels,
                "error": c.error,
                "points": [
                    {
                        "cpu_s": round(p["cpu_s"], 2),
                        "miou": p["miou"],
                        "iou": p["iou"],
                        **(
                            {"n_pixels": p["key"]}
                            if c.method == "rf"
                            else {
                                "budget_s": p["key"],
                                "batches_per_fold": p["batches"],
                            }
                        ),
                        "confusion_matrix": p["cm"].tolist(),
                    }
                    for p in c.points
                ],
            }
            for c in curves
        ],
    }


# -- main ----------------------------------------------------------------
def _list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--minutes",
        type=float,
        default=30,
        help="training CPU-minutes per curve (default 30)",
    )
    p.add_argument(
        "--points",
        default="0,0.5,1,2,4,8,15,30",
        help="CPU-minutes at which to evaluate (up to --minutes,"
        " which is always one)",
    )
    p.add_argument("--datasets", type=_list, default=["polarised", "minerals"])
    p.add_argument("--inits", type=_list, default=["random", "transfer"])
    p.add_argument("--inputs", type=_list, default=["ppl", "ppl+xpl"])
    p.add_argument("--labels", type=_list, default=["dense", "strokes"])
    p.add_argument(
        "--rf",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the random-forest baseline",
    )
    p.add_argument(
        "--cnn",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the VGG-UNet curves",
    )
    p.add_argument("--stroke_fraction", type=float, default=0.02)
    p.add_argument(
        "--scale",
        type=int,
        default=2,
        help="polarised fields at every SCALE-th pixel",
    )
    p.add_argument("--test_sections", type=int, default=3)
    p.add_argument("--split_seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument(
        "--run_folds",
        type=int,
        default=None,
        help="run only the first N folds (default all)",
    )
    p.add_argument(
        "--frozen_blocks",
        type=int,
        default=4,
        help="encoder blocks kept fixed by the 'frozen' init (default 4)",
    )
    p.add_argument("--base_polarised", default="sandstone")
    p.add_argument("--base_minerals", default="default")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--average_weights",
        type=float,
        default=0.0,
        help="the recipe's weight averaging momentum (0.99, say; 0: off)",
    )
    p.add_argument(
        "--colour_augment", action=argparse.BooleanOptionalAction, default=True
    )
    p.add_argument("--rf_trees", type=int, default=100)
    p.add_argument("--rf_max_samples", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", default=str(HERE / "learning_curves.png"))
    p.add_argument("--json", default=str(HERE / "learning_curves.json"))
    args = p.parse_args(argv)
    bad = [
        (name, v)
        for name, values, allowed in (
            ("--datasets", args.datasets, ("polarised", "minerals")),
            ("--inits", args.inits, ("random", "transfer", "frozen")),
            ("--inputs", args.inputs, ("ppl", "ppl+xpl")),
            ("--labels", args.labels, ("dense", "strokes")),
        )
        for v in values
        if v not in allowed
    ]
    if bad:
        p.error(f"unknown {bad[0][0]} value {bad[0][1]!r}")
    args.run_folds = args.run_folds or args.folds
    return args


def main(argv=None) -> None:
    args = parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.rf:
        try:
            import sklearn  # noqa: F401
        except ImportError:
            sys.exit(
                "the baseline needs scikit-learn (pip install "
                "scikit-learn), or give --no-rf"
            )
    grid = sorted(
        {float(t) for t in _list(args.points) if float(t) < args.minutes}
        | {args.minutes}
    )
    budgets = [60 * t for t in grid]
    task_list = tasks(args)
    print(
        f"{os.cpu_count()} CPU cores; CPU time is this process's; budgets "
        f"(CPU-min): {', '.join(f'{t:g}' for t in grid)}"
        + (
            f"; the networks' weights averaged (momentum "
            f"{args.average_weights:g})"
            if args.average_weights
            else ""
        ),
        flush=True,
    )
    six_problem = None
    if args.cnn and "ppl+xpl" in args.inputs:
        six_problem = six_channel_problem(task_list[0].scheme)
        if six_problem:
            print(
                f"{NO_6_CHANNELS}: {six_problem}; PPL + XPL networks are "
                "left out (the random forest still runs)",
                flush=True,
            )
    todo = [
        (task, curve)
        for task in task_list
        for inp in args.inputs
        if task.name == "polarised" or inp == "ppl"
        for kind in args.labels
        for curve in (
            [Curve(task.name, "cnn", i, inp, kind) for i in args.inits]
            if args.cnn
            else []
        )
        + ([Curve(task.name, "rf", "", inp, kind)] if args.rf else [])
    ]
    curves: list[Curve] = []
    try:
        for task, curve in todo:
            print(f"{task.name}: {curve.label}", flush=True)
            if (
                curve.method == "cnn"
                and curve.inputs == "ppl+xpl"
                and (six_problem)
            ):
                curve.error = NO_6_CHANNELS
            elif curve.method == "cnn":
                cnn_curve(curve, task, args, budgets)
            else:
                rf_curve(curve, task, args, budgets[-1])
            if not curve.error:
                finish(curve, task)
            curves.append(curve)
            # what is finished is kept, however the run ends
            write(curves, task_list, args, six_problem)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: {len(curves)} of {len(todo)} curves finished, "
            "reported below"
        )
    for task in task_list:
        print_table(task, [c for c in curves if c.dataset == task.name])
    print("\nchecks (the issue's targets):")
    for line in write(curves, task_list, args, six_problem):
        print("  " + line)
    print(f"wrote {args.plot} and {args.json}")


def write(curves, task_list, args, six_problem) -> list[str]:
    """Plot and JSON of the curves so far; returns the checks' lines."""
    lines = checks(curves, [t.name for t in task_list], six_problem)
    plot(curves, task_list, Path(args.plot))
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = to_json(curves, task_list, args, lines, six_problem)
    path.write_text(json.dumps(data, indent=1) + "\n")
    return lines


if __name__ == "__main__":
    main()
