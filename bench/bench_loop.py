"""The correction loop with a simulated petrographer: mean IoU round after
round of brush strokes where the prediction is wrong, and the CPU seconds
each round costs.

On each *corrected* photo the simulated user brushes ``--k`` (15) strokes,
disks of ``--radius`` (6) pixels, one in each of the largest regions where
the row's current prediction disagrees with the expert labels (the
region's deepest point; again in the largest ones when there are fewer
regions than strokes), each with the true class, clipped to that class's
pixels and never over an earlier stroke. Strokes accumulate: each round's
labels are all strokes so far. Then the row learns from them, predicts,
and the user paints again against that prediction (``--rounds``, 3).
Interactive-segmentation papers measure a loop this way (IoU per click).

Rows (each paints against its own current prediction; round 1 against the
start model's, which every row starts from):

- ``start model``: the start model alone (round 0; a constant);
- ``preview``: :func:`napari_thinseg.strokes.preview.quick_preview`, the
  forest on the start model's features the Train widget shows first
  (``--preview_kw KEY=VALUE ...``: more of its keyword arguments);
- ``fine-tune``: :func:`napari_thinseg.strokes.finetune.finetune` of the
  current model (round 1 the start model, later rounds the previous
  round's result, as a user would) with the default budget
  (``DEFAULT_MINUTES``; ``--minutes``; a budget of wall time, so its
  CPU seconds go with the cores free), then ``predict.predict_image``;
  its verdict (fine-tuned or start model kept) is printed; ``--recipe
  KEY=VALUE ...`` changes ``finetune.RECIPE``'s fields (``distill=5``);
- ``forest``: the ilastik-style forest of ``bench_feedback.py``
  (``multiscale_basic_features`` sigma 1..16 and a 100-tree random forest
  on at most ``--samples`` stroked pixels a class), the loop ilastik and
  convpaint users run.

Data (``../shared/data``; benchmark only, polarised-sandstones is
GPL-3.0; no model trained here is kept outside ``--work``):

- ``minerals``: the 6 sandstone-minerals photos in 3 groups (every third
  photo). Fold k's start model is trained on group k (2 photos) and 2
  synthetic sandstones from the shipped default model with the recipe of
  ``scripts/train_sandstone_model.py`` (224 crops, batch 4, adam 5e-4
  with warm-up and cosine decay over ``--start_epochs`` of 40 steps,
  flips, turns and colour casts, class-balanced loss, the best epoch on 2
  synthetic validation sandstones), stopped at ``--start_minutes`` (6)
  CPU-minutes; group k+1 is corrected, group k+2 unseen (``--run_folds``
  of the 3 rotations run, 1 by default). mIoU over pore, quartz, feldspar
  and rock fragment (``MAIN_CLASSES``).
- ``polarised-ppl`` / ``polarised-xpl``: the 16 fields at 600 x 800
  (``polarised_fields(scale=2)``), ``section_split``'s held-out sections
  (3a 3b 5a 5b 6a 6b); the start model is trained densely on the
  training sections' fields (PPL; or PPL + XPL stacked as 6 channels,
  ``stack_views``) in the polarised scheme from the shipped sandstone
  model (classes moved by name inside train), same recipe without
  validation, same budget; corrected: the first field of the first two
  held-out sections (3a, 5a), unseen: the other four. mIoU over the
  classes present.

Start models are cached under ``--work`` (``/tmp/thinseg-loop``) and
reused (``--start_only`` trains them and stops). CPU is
``time.process_time()`` of this process, all threads (the machine may be
shared): ``to preview`` the preview's fit and prediction of the corrected
photos; ``to model`` the fine-tune call (reading files not counted), or
the forest's features (first round; cached after), fit and prediction of
the corrected photos. Scores pool the folds' confusion matrices. Prints
a table per dataset (row x round: corrected mIoU, unseen mIoU, CPU-s to
preview, CPU-s to model, verdict) and the issue's targets with pass /
fail; writes JSON (``--out``) and a plot (``--plot``, mIoU against round,
corrected and unseen panels). Not run by CI; needs scikit-learn and
matplotlib; a round costs the fine-tune's budget plus a few CPU-minutes
of predictions::

    .venv/bin/python bench/bench_loop.py --start_only  # cache the models
    .venv/bin/python bench/bench_loop.py  # minerals, polarised-ppl, -xpl
    # a quick check of the plumbing
    .venv/bin/python bench/bench_loop.py --k 3 --rounds 1 --minutes 0.2 \\
        --datasets minerals --plot /tmp/loop.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from _learning_data import (
    MAIN_CLASSES,
    MINERALS,
    POLARISED,
    image_folds,
    mineral_photos,
    polarised_fields,
    polarised_scheme,
    section_split,
)

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("minerals", "polarised-ppl", "polarised-xpl")
ROWS = ("preview", "fine-tune", "forest")
START = "start model"
TARGET_GAIN = 0.15
"""Corrected photos: mIoU up by this over the start model by round 3."""
TARGET_UNSEEN_DROP = 0.01
"""Unseen photos: never more than this below the start model."""
TARGET_PREVIEW_S = 30.0
TARGET_MODEL_S = 180.0


# -- data ----------------------------------------------------------------
@dataclass
class Case:
    """One fold of one dataset: what the start model trains on, the photos
    the user corrects and the unseen ones (``Pair.labels``: the expert's
    dense labels), and the classes the mean IoU averages (None: those
    present in the truth)."""

    dataset: str
    fold: int
    scheme: object
    start_pairs: list
    validation: list
    corrected: list
    unseen: list
    ids: list[int] | None
    base: str  # the shipped model the start model is trained from
    start_summary: dict | None = None  # its done.json


def cases(dataset: str, args) -> list[Case]:
    from napari_thinseg.dataset.folders import Pair
    from napari_thinseg.imaging.convert import stack_views
    from napari_thinseg.schemes import SANDSTONE

    if dataset == "minerals":
        if not MINERALS.is_dir():
            sys.exit(f"needs the sandstone minerals in {MINERALS}")
        sys.path.insert(0, str(ROOT / "scripts"))
        from train_sandstone_model import synthetic_pairs

        groups = [
            [Pair(f.name, f.ppl, f.labels) for f in g]
            for g in image_folds(mineral_photos(), 3)
        ]
        synthetic = synthetic_pairs(range(200, 202))
        validation = synthetic_pairs(range(950, 952))
        ids = [SANDSTONE.id_of(c) for c in MAIN_CLASSES]
        return [
            Case(
                dataset,
                k,
                SANDSTONE,
                groups[k] + synthetic,
                validation,
                groups[(k + 1) % 3],
                groups[(k + 2) % 3],
                ids,
                "default",
            )
            for k in (args.folds or range(args.run_folds))
        ]
    if not POLARISED.is_dir():
        sys.exit(f"needs the polarised sandstones in {POLARISED}")
    xpl = dataset == "polarised-xpl"

    def pair(f):
        image = stack_views(f.ppl, f.xpl) if xpl else f.ppl
        return Pair(f.name, image, f.labels)

    training, held = section_split(polarised_fields(scale=2))
    firsts = {}
    for f in held:
        firsts.setdefault(f.section, f)
    corrected = list(firsts.values())[:2]
    return [
        Case(
            dataset,
            0,
            polarised_scheme(),
            [pair(f) for f in training],
            [],
            [pair(f) for f in corrected],
            [
                pair(f)
                for f in held
                if f.name not in {c.name for c in corrected}
            ],
            None,
            "sandstone",
        )
    ]


# -- the start model -----------------------------------------------------
def start_model(case: Case, args):
    """``(model, config)`` of the case's start model: trained once and
    cached under ``--work`` (a ``done.json`` beside it marks it whole)."""
    from napari_thinseg.model import checkpoints as ck

    folder = Path(args.work) / f"{case.dataset}-f{case.fold}"
    prefix = folder / "start"
    done = folder / "done.json"
    if not done.is_file():
        train_start(case, args, folder, prefix)
    summary = json.loads(done.read_text())
    asked = (args.start_minutes, args.start_epochs)
    if (summary["start_minutes"], summary["start_epochs"]) != asked:
        print(
            f"  note: the cached start model in {folder} had "
            f"--start_minutes {summary['start_minutes']} --start_epochs "
            f"{summary['start_epochs']} (remove the folder to retrain)",
            flush=True,
        )
    case.start_summary = summary
    model, config, _ = ck.load_model(prefix)
    return model, config


def train_start(case: Case, args, folder: Path, prefix: Path) -> None:
    import shutil

    from napari_thinseg.model import checkpoints as ck
    from napari_thinseg.progress import run
    from napari_thinseg.training.loop import TrainSettings, train

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    print(
        f"{case.dataset} fold {case.fold}: training the start model on "
        f"{len(case.start_pairs)} images from the shipped {case.base} "
        f"model, {args.start_minutes:g} CPU-minutes",
        flush=True,
    )
    base, base_config, _ = ck.load_model(ck.shipped_model_prefix(case.base))
    settings = TrainSettings(
        input_height=224,
        input_width=224,
        epochs=args.start_epochs,
        batch_size=4,
        steps_per_epoch=40,
        optimizer="adam",
        learning_rate=5e-4,
        augment=True,
        colour_augment=True,
        balance_classes=True,
        schedule="cosine",
        seed=case.fold,
    )
    t0 = time.process_time()
    deadline = t0 + args.start_minutes * 60
    events = []

    def report(ev):
        events.append(ev)
        if ev.epoch_end:
            val = (
                ""
                if ev.val_mean_iou is None
                else f", validation mIoU {ev.val_mean_iou:.3f}"
            )
            print(
                f"  epoch {ev.epoch}: loss {ev.loss:.3f}{val} "
                f"({(time.process_time() - t0) / 60:.1f} CPU-min)",
                flush=True,
            )

    result = run(
        train(
            case.start_pairs,
            case.scheme,
            settings,
            validation=case.validation,
            checkpoints_path=prefix,
            model=base,
            config=base_config,
            stop=lambda: time.process_time() > deadline,
        ),
        report,
    )
    if not ck.list_checkpoints(prefix):
        # stopped inside the first epoch: keep what it learnt
        ck.write_config(prefix, result.config)
        ck.save_checkpoint(prefix, 0, result.model)
    summary = {
        "dataset": case.dataset,
        "fold": case.fold,
        "trained_on": [p.name for p in case.start_pairs],
        "base": case.base,
        "steps": events[-1].step if events else 0,
        "best_epoch": result.best_epoch,
        "cpu_minutes": round((time.process_time() - t0) / 60, 2),
        "start_minutes": args.start_minutes,
        "start_epochs": args.start_epochs,
    }
    (folder / "done.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(
        f"  start model: {summary['steps']} batches, "
        f"{summary['cpu_minutes']} CPU-min -> {prefix}",
        flush=True,
    )


# -- the simulated petrographer -----------------------------------------
def disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return r[:, None] ** 2 + r[None, :] ** 2 <= radius**2


def paint(
    truth: np.ndarray,
    pred: np.ndarray,
    strokes: np.ndarray,
    k: int,
    radius: int,
) -> np.ndarray:
    """``strokes`` and ``k`` new ones: disks of ``radius`` at the deepest
    points of the largest regions (of one true class each) where ``pred``
    disagrees with ``truth``, the largest first, one a region and then
    round again; each disk takes its region's true class, clipped to that
    class's pixels and to the unpainted ones."""
    from scipy import ndimage as ndi

    out = strokes.copy()
    h, w = truth.shape
    brush = disk(radius)
    # room between strokes of one round, so that they spread
    keep_off = disk(2 * radius)
    free = (truth > 0) & (pred != truth) & (out == 0)
    placed = 0
    while placed < k and free.any():
        regions = []  # (area, class, centre)
        for c in np.unique(truth[free]).tolist():
            mask = free & (truth == c)
            lab, n = ndi.label(mask)
            if not n:
                continue
            index = np.arange(1, n + 1)
            areas = ndi.sum_labels(mask, lab, index)
            # the image's border counts as the region's edge
            depth = ndi.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
            centres = ndi.maximum_position(depth, lab, index)
            regions += [
                (float(a), c, ctr)
                for a, ctr in zip(areas, centres, strict=True)
            ]
        regions.sort(key=lambda r: -r[0])
        for _, c, (y, x) in regions[: k - placed]:
            y0, y1 = max(0, y - radius), min(h, y + radius + 1)
            x0, x1 = max(0, x - radius), min(w, x + radius + 1)
            b = brush[
                y0 - y + radius : y1 - y + radius,
                x0 - x + radius : x1 - x + radius,
            ]
            cell = out[y0:y1, x0:x1]
            cell[b & (truth[y0:y1, x0:x1] == c) & (cell == 0)] = c
            r2 = 2 * radius
            y0, y1 = max(0, y - r2), min(h, y + r2 + 1)
            x0, x1 = max(0, x - r2), min(w, x + r2 + 1)
            free[y0:y1, x0:x1] &= ~keep_off[
                y0 - y + r2 : y1 - y + r2, x0 - x + r2 : x1 - x + r2
            ]
            placed += 1
        free &= out == 0
    return out


# -- scores --------------------------------------------------------------
def confusion(truths, preds, n: int) -> np.ndarray:
    from napari_thinseg.inference.metrics import confusion_matrix

    cm = np.zeros((n, n), np.int64)
    for t, p in zip(truths, preds, strict=True):
        keep = t > 0
        cm += confusion_matrix(t[keep], p[keep], n)
    return cm


def mean_iou(cm: np.ndarray, ids) -> float:
    from napari_thinseg.inference.metrics import iou_from_confusion

    iou = iou_from_confusion(cm)
    if ids is None:
        ids = range(1, len(cm))
    present = [i for i in ids if cm[i].sum() > 0]
    return float(np.nanmean(iou[present])) if present else float("nan")


# -- the rows ------------------------------------------------------------
@dataclass
class Step:
    """What one round of a row gave: the predictions of the corrected and
    unseen photos, the CPU seconds to the preview and to the model, and
    what the row says of itself."""

    corrected: list
    unseen: list
    preview_s: float | None = None
    model_s: float | None = None
    predict_s: float | None = None
    verdict: str = ""


def cpu(fn, *a, **kw):
    t0 = time.process_time()
    out = fn(*a, **kw)
    return out, time.process_time() - t0


def model_predictions(model, config, pairs) -> list:
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.progress import run

    return [run(predict_image(model, config, p.image)).labels for p in pairs]


class PreviewRow:
    """The quick preview of the start model's features on the strokes."""

    name = "preview"

    def __init__(self, case: Case, start, args):
        self.case, (self.model, self.config), self.args = case, start, args

    def step(self, pairs) -> Step:
        from napari_thinseg.progress import run
        from napari_thinseg.strokes.encoder_classifier import (
            predict_encoder_classifier,
        )
        from napari_thinseg.strokes.preview import quick_preview

        preview, seconds = cpu(
            run,
            quick_preview(
                self.model,
                self.config,
                pairs,
                n_classes=self.case.scheme.n_classes,
                max_images=len(pairs),
                scheme=self.case.scheme,  # the model's view too
                **self.args.preview_kw,
            ),
        )
        unseen = [
            run(predict_encoder_classifier(preview.classifier, p.image)).labels
            for p in self.case.unseen
        ]
        return Step(
            [p.labels for p in preview.predictions],
            unseen,
            preview_s=seconds,
        )


class FinetuneRow:
    """The fine-tune of the current model on the strokes so far."""

    name = "fine-tune"

    def __init__(self, case: Case, start, args):
        self.case, self.args = case, args
        # a copy of its own: the fine-tune may train the model in place
        self.model, self.config, _ = self.load()

    def load(self):
        from napari_thinseg.model import checkpoints as ck

        work = Path(self.args.work)
        prefix = work / f"{self.case.dataset}-f{self.case.fold}" / "start"
        return ck.load_model(prefix)

    def replay(self) -> list:
        """The start model's first ``--replay`` training photos, nothing
        painted: the fine-tune keeps its view of them (distillation)."""
        from napari_thinseg.dataset.folders import Pair
        from napari_thinseg.dataset.synth import synthetic_sandstone

        photos = [
            (p.name, p.image)
            for p in self.case.start_pairs[: self.args.replay]
        ]
        for k in range(self.args.replay_synthetic):
            seed = 9000 + k  # none the start model saw
            image, _ = synthetic_sandstone((480, 512), seed=seed)
            photos.append((f"synthetic {seed}", image))
        return [
            Pair(name, image, np.zeros(image.shape[:2], np.uint8))
            for name, image in photos
        ]

    def step(self, pairs) -> Step:
        from napari_thinseg.progress import run
        from napari_thinseg.strokes import finetune as ft

        minutes = self.args.minutes
        if minutes is None:
            minutes = ft.DEFAULT_MINUTES

        recipe = replace(ft.RECIPE, **(self.args.recipe or {}))

        def tune():
            settings = None
            if self.args.recipe or self.args.steps:
                # another recipe than the shipped one, same budget path
                settings = ft.finetune_settings(
                    [p.labels.shape for p in pairs], minutes, recipe
                )
            if self.args.steps:
                # a fixed number of steps instead of the wall-time budget
                # (recipes compared on a shared machine)
                per = settings.steps_per_epoch
                settings.epochs = -(-self.args.steps // per)
                settings.minutes = None
            return run(
                ft.finetune(
                    pairs + self.replay(),
                    self.case.scheme,
                    self.model,
                    self.config,
                    minutes=minutes,
                    settings=settings,
                    recipe=recipe,
                )
            )

        if self.args.from_start:
            # every round from the start model, on all strokes so far
            self.model, self.config, _ = self.load()
        result, seconds = cpu(tune)
        if result.model is not None:  # None: nothing was trained
            self.model, self.config = result.model, result.config
        corrected, predict_s = cpu(
            model_predictions, self.model, self.config, pairs
        )
        unseen = model_predictions(self.model, self.config, self.case.unseen)
        return Step(
            corrected,
            unseen,
            model_s=seconds,
            predict_s=predict_s,
            verdict=result.describe(),
        )


class ForestRow:
    """ilastik's loop: filter features, a random forest on the strokes."""

    name = "forest"

    def __init__(self, case: Case, start, args):
        self.case, self.args = case, args
        self.features: dict[str, np.ndarray] = {}

    def features_of(self, pair) -> np.ndarray:
        from bench_feedback import ilastik_features

        if pair.name not in self.features:
            self.features[pair.name] = ilastik_features(pair.image)
        return self.features[pair.name]

    def predict(self, forest, pair) -> np.ndarray:
        feats = self.features_of(pair)
        pred = forest.predict(feats.reshape(-1, feats.shape[-1]))
        return pred.reshape(pair.image.shape[:2]).astype(np.uint8)

    def fit(self, pairs):
        from sklearn.ensemble import RandomForestClassifier

        from napari_thinseg.strokes.encoder_classifier import sample_strokes

        labels = [p.labels for p in pairs]
        picked = sample_strokes(labels, self.args.samples)
        x, y = [], []
        for k, p in enumerate(pairs):
            flat = np.concatenate([picked[c][k] for c in picked])
            if len(flat):
                feats = self.features_of(p)
                x.append(feats.reshape(-1, feats.shape[-1])[flat])
                y.append(labels[k].ravel()[flat])
        forest = RandomForestClassifier(
            self.args.trees, n_jobs=-1, random_state=0
        )
        forest.fit(np.concatenate(x), np.concatenate(y))
        return forest, [self.predict(forest, p) for p in pairs]

    def step(self, pairs) -> Step:
        (forest, corrected), seconds = cpu(self.fit, pairs)
        unseen = [self.predict(forest, p) for p in self.case.unseen]
        return Step(corrected, unseen, model_s=seconds)


ROW_CLASSES = {"preview": PreviewRow, "fine-tune": FinetuneRow}
ROW_CLASSES["forest"] = ForestRow


# -- one case ------------------------------------------------------------
def run_case(case: Case, args) -> dict:
    """``{row: [round 0, 1, ...]}`` of dicts: the confusion matrices of the
    corrected and unseen photos, CPU seconds, verdict, painted share."""
    from napari_thinseg.dataset.folders import Pair

    start = start_model(case, args)
    n = case.scheme.n_classes
    truth_c = [p.labels for p in case.corrected]
    truth_u = [p.labels for p in case.unseen]
    first_c, predict_s = cpu(model_predictions, *start, case.corrected)
    first_u = model_predictions(*start, case.unseen)
    round0 = {
        "cm_corrected": confusion(truth_c, first_c, n),
        "cm_unseen": confusion(truth_u, first_u, n),
        "preview_s": None,
        "model_s": None,
        "predict_s": predict_s,
        "verdict": "",
        "painted": 0.0,
    }
    out = {START: [round0]}
    print(
        f"{case.dataset} fold {case.fold}: corrected "
        f"{[p.name for p in case.corrected]}, unseen "
        f"{[p.name for p in case.unseen]}; start model "
        f"{mean_iou(round0['cm_corrected'], case.ids):.3f} / "
        f"{mean_iou(round0['cm_unseen'], case.ids):.3f}",
        flush=True,
    )
    for name in args.rows:
        row = ROW_CLASSES[name](case, start, args)
        strokes = [np.zeros_like(t) for t in truth_c]
        preds = first_c
        out[name] = [dict(round0)]
        for r in range(1, args.rounds + 1):
            strokes = [
                paint(t, p, s, args.k, args.radius)
                for t, p, s in zip(truth_c, preds, strokes, strict=True)
            ]
            pairs = [
                Pair(p.name, p.image, s)
                for p, s in zip(case.corrected, strokes, strict=True)
            ]
            step = row.step(pairs)
            preds = step.corrected
            rec = {
                "cm_corrected": confusion(truth_c, step.corrected, n),
                "cm_unseen": confusion(truth_u, step.unseen, n),
                "preview_s": step.preview_s,
                "model_s": step.model_s,
                "predict_s": step.predict_s,
                "verdict": step.verdict,
                "painted": float(np.mean([(s > 0).mean() for s in strokes])),
            }
            out[name].append(rec)
            cost = ", ".join(
                f"{k} {rec[k]:.1f} CPU-s"
                for k in ("preview_s", "model_s")
                if rec[k] is not None
            )
            print(
                f"  {name} round {r}: corrected "
                f"{mean_iou(rec['cm_corrected'], case.ids):.3f}, unseen "
                f"{mean_iou(rec['cm_unseen'], case.ids):.3f}; {cost}"
                f"{'; ' + step.verdict if step.verdict else ''}",
                flush=True,
            )
    return out


def pooled(per_fold: list[dict], ids) -> dict:
    """The folds' rounds in one: confusion matrices summed, CPU the mean
    and the largest, verdicts listed."""
    table = {}
    for name in per_fold[0]:
        rounds = []
        for r in range(len(per_fold[0][name])):
            recs = [f[name][r] for f in per_fold]
            cm_c = sum(x["cm_corrected"] for x in recs)
            cm_u = sum(x["cm_unseen"] for x in recs)
            rec = {
                "round": r,
                "corrected_miou": mean_iou(cm_c, ids),
                "unseen_miou": mean_iou(cm_u, ids),
                "painted": float(np.mean([x["painted"] for x in recs])),
                "verdicts": [x["verdict"] for x in recs if x["verdict"]],
            }
            for key in ("preview_s", "model_s", "predict_s"):
                vals = [x[key] for x in recs if x[key] is not None]
                rec[key] = float(np.mean(vals)) if vals else None
                rec[key + "_max"] = float(max(vals)) if vals else None
            rounds.append(rec)
        table[name] = rounds
    return table


# -- report --------------------------------------------------------------
def _s(v) -> str:
    return "-" if v is None else f"{v:.1f}"


def print_table(dataset: str, table: dict, n_folds: int) -> None:
    print(
        f"\n{dataset}: {n_folds} fold(s); mIoU corrected / unseen, CPU-s "
        "(mean of the folds)"
    )
    print(
        f"{'row':12s} {'round':>5s} {'painted':>8s} {'corr':>6s} "
        f"{'unseen':>6s} {'preview':>8s} {'model':>7s}  verdict"
    )
    for name, rounds in table.items():
        shown = rounds[:1] if name == START else rounds[1:]
        for rec in shown:
            print(
                f"{name:12s} {rec['round']:5d} {rec['painted']:8.2%} "
                f"{rec['corrected_miou']:6.3f} {rec['unseen_miou']:6.3f} "
                f"{_s(rec['preview_s']):>8s} {_s(rec['model_s']):>7s}  "
                f"{' | '.join(rec['verdicts'])}",
                flush=True,
            )


def checks(dataset: str, table: dict, rounds: int) -> list[dict]:
    """The issue's targets, each with its measured values and a verdict
    (None: not measured in this run)."""
    out = []

    def add(what, ok, measured):
        out.append(
            {
                "dataset": dataset,
                "target": what,
                "pass": None if ok is None else bool(ok),
                "measured": measured,
            }
        )

    start = table[START][0]
    ft = table.get("fine-tune")
    if ft:
        corr = [r["corrected_miou"] for r in ft]
        unseen = [r["unseen_miou"] for r in ft[1:]]
        at = min(3, rounds)
        gain = corr[at] - corr[0]
        add(
            f"fine-tune: corrected mIoU up >= {TARGET_GAIN} over the start "
            "model after 3 rounds",
            gain >= TARGET_GAIN if rounds >= 3 else None,
            f"{corr[0]:.3f} -> {corr[at]:.3f} at round {at} ({gain:+.3f})",
        )
        add(
            "fine-tune: corrected mIoU higher every round",
            all(b > a for a, b in zip(corr, corr[1:], strict=False)),
            " -> ".join(f"{v:.3f}" for v in corr),
        )
        worst = min(unseen)
        add(
            f"fine-tune: unseen mIoU never more than {TARGET_UNSEEN_DROP} "
            "below the start model",
            worst >= start["unseen_miou"] - TARGET_UNSEEN_DROP,
            f"start {start['unseen_miou']:.3f}, lowest {worst:.3f}",
        )
        worst_s = max(r["model_s_max"] for r in ft[1:])
        add(
            f"fine-tune: a trained model within {TARGET_MODEL_S:.0f} CPU-s "
            "every round",
            worst_s <= TARGET_MODEL_S,
            f"at most {worst_s:.1f} CPU-s",
        )
    pv = table.get("preview")
    if pv:
        worst_s = max(r["preview_s_max"] for r in pv[1:])
        add(
            f"preview within {TARGET_PREVIEW_S:.0f} CPU-s every round",
            worst_s <= TARGET_PREVIEW_S,
            f"at most {worst_s:.1f} CPU-s",
        )
    fo = table.get("forest")
    if ft and fo:
        pairs = [
            (a["corrected_miou"], b["corrected_miou"])
            for a, b in zip(ft[1:], fo[1:], strict=True)
        ]
        add(
            "fine-tune above the forest's loop (corrected) every round",
            all(a > b for a, b in pairs),
            ", ".join(f"{a:.3f} vs {b:.3f}" for a, b in pairs),
        )
    return out


def plot(tables: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(tables), 2, figsize=(10, 3.6 * len(tables)), squeeze=False
    )
    colours = {
        START: "black",
        "preview": "tab:green",
        "fine-tune": "tab:blue",
        "forest": "tab:orange",
    }
    for (dataset, table), row in zip(tables.items(), axes, strict=True):
        score = "mIoU, 4 main classes" if dataset == "minerals" else "mIoU"
        for ax, key, title in (
            (row[0], "corrected_miou", "corrected photos"),
            (row[1], "unseen_miou", "unseen photos"),
        ):
            n_rounds = max(len(r) for r in table.values())
            for name, rounds in table.items():
                if name == START:
                    ax.axhline(
                        rounds[0][key],
                        color="black",
                        linestyle=":",
                        label=START,
                    )
                    continue
                ax.plot(
                    [r["round"] for r in rounds],
                    [r[key] for r in rounds],
                    marker="o",
                    color=colours.get(name),
                    label=name,
                )
            ax.set_xticks(range(n_rounds))
            ax.set_title(f"{dataset}: {title}", fontsize=10)
            ax.set_xlabel("round of strokes (0: the start model)")
            ax.set_ylabel(score)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def recipe_item(ap, text: str):
    """``"distill=5"`` -> ``("distill", 5.0)``, typed as the field."""
    from dataclasses import fields

    from napari_thinseg.strokes.finetune import Recipe

    key, _, value = text.partition("=")
    types = {f.name: type(getattr(Recipe(), f.name)) for f in fields(Recipe)}
    if key not in types or not value:
        ap.error(
            f"--recipe {text!r}: give KEY=VALUE, KEY one of "
            + ", ".join(types)
        )
    kind = types[key]
    if kind is bool:
        return key, value.lower() in ("1", "true", "yes")
    return key, kind(value)


def literal_item(ap, text: str):
    """``"key=True"`` -> ``("key", True)``."""
    import ast

    key, _, value = text.partition("=")
    try:
        return key, ast.literal_eval(value)
    except (SyntaxError, ValueError):
        ap.error(f"{text!r}: give KEY=VALUE, VALUE a Python literal")


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--rows", nargs="+", default=list(ROWS))
    ap.add_argument("--k", type=int, default=15, help="strokes a photo")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--radius", type=int, default=6, help="brush, pixels")
    ap.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="the fine-tune's budget (default: finetune.DEFAULT_MINUTES)",
    )
    ap.add_argument(
        "--steps",
        type=int,
        default=None,
        help="train this many steps instead of the budget (to compare "
        "recipes on a shared machine)",
    )
    ap.add_argument(
        "--recipe",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="the fine-tune's recipe changed (finetune.Recipe's fields: "
        "learning_rate=3e-5 distill=5 ...); default the shipped RECIPE",
    )
    ap.add_argument(
        "--from_start",
        action="store_true",
        help="every round fine-tunes the start model on all strokes so "
        "far (instead of the last round's model)",
    )
    ap.add_argument(
        "--replay",
        type=int,
        default=0,
        help="the fine-tune also sees this many of the start model's "
        "training photos, unpainted (it keeps its view of them)",
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="JSON",
        help="no run: the table, targets and plot of earlier runs' JSON "
        "files side by side (rows run apart)",
    )
    ap.add_argument(
        "--replay_synthetic",
        type=int,
        default=0,
        help="the fine-tune also sees this many synthetic sandstones, "
        "unpainted",
    )
    ap.add_argument(
        "--preview_kw",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="more keyword arguments of quick_preview (Python literals)",
    )
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--run_folds", type=int, default=1)
    ap.add_argument(
        "--folds",
        type=int,
        nargs="+",
        choices=(0, 1, 2),
        default=None,
        help="these sandstone-minerals folds (default: the first --run_folds)",
    )
    ap.add_argument("--start_minutes", type=float, default=6.0)
    ap.add_argument("--start_epochs", type=int, default=6)
    ap.add_argument("--start_only", action="store_true")
    ap.add_argument("--work", default="/tmp/thinseg-loop")
    ap.add_argument("--out", default=None, help="JSON (<work>/loop.json)")
    ap.add_argument("--plot", default=str(ROOT / "docs" / "loop.png"))
    args = ap.parse_args(argv)
    for d in args.datasets:
        if d not in DATASETS:
            ap.error(f"unknown dataset {d!r} (use {', '.join(DATASETS)})")
    for r in args.rows:
        if r not in ROWS:
            ap.error(f"unknown row {r!r} (use {', '.join(ROWS)})")
    args.recipe = dict(recipe_item(ap, kv) for kv in args.recipe)
    args.preview_kw = dict(literal_item(ap, kv) for kv in args.preview_kw)
    if not 1 <= args.run_folds <= 3:
        ap.error("--run_folds: 1 to 3")
    return args


def ids_of(dataset: str):
    """The classes a dataset's mean IoU is over (None: all present)."""
    from napari_thinseg.schemes import SANDSTONE

    if dataset == "minerals":
        return [SANDSTONE.id_of(c) for c in MAIN_CLASSES]
    return None


def merge(paths) -> dict:
    """``{dataset: (per_fold, ids, start_models)}`` of earlier runs'
    JSON files: their rows side by side, their folds one after another
    (rows and folds run apart, one table)."""
    by_fold: dict = {}
    for path in paths:
        saved = json.loads(Path(path).read_text())
        for dataset, folds in saved["folds"].items():
            starts = saved["start_models"][dataset]
            for start, fold in zip(starts, folds, strict=True):
                rows, _ = by_fold.setdefault(dataset, {}).setdefault(
                    start["fold"], ({}, start)
                )
                for name, rounds in fold.items():
                    rows.setdefault(
                        name,
                        [
                            {
                                k: np.array(v) if k.startswith("cm_") else v
                                for k, v in rec.items()
                            }
                            for rec in rounds
                        ],
                    )
    return {
        dataset: (
            [folds[k][0] for k in sorted(folds)],
            ids_of(dataset),
            [folds[k][1] for k in sorted(folds)],
        )
        for dataset, folds in by_fold.items()
    }


def main(argv=None) -> None:
    args = parse(argv)
    if args.start_only:
        for dataset in args.datasets:
            for case in cases(dataset, args):
                start_model(case, args)
        return
    tables, all_checks, folds, starts = {}, [], {}, {}
    merged = merge(args.merge) if args.merge else None
    for dataset in merged or args.datasets:
        if merged:
            per_fold, ids, starts[dataset] = merged[dataset]
        else:
            its = cases(dataset, args)
            per_fold = [run_case(c, args) for c in its]
            starts[dataset] = [c.start_summary for c in its]
            ids = its[0].ids
        tables[dataset] = pooled(per_fold, ids)
        folds[dataset] = [
            {
                name: [
                    {
                        k: (v.tolist() if isinstance(v, np.ndarray) else v)
                        for k, v in rec.items()
                    }
                    for rec in rounds
                ]
                for name, rounds in fold.items()
            }
            for fold in per_fold
        ]
        print_table(dataset, tables[dataset], len(per_fold))
        all_checks += checks(dataset, tables[dataset], args.rounds)
    print("\ntargets")
    for c in all_checks:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[c["pass"]]
        print(f"  {verdict} {c['dataset']}: {c['target']}: {c['measured']}")
    out = Path(args.out or Path(args.work) / "loop.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "args": vars(args),
                "tables": tables,
                "checks": all_checks,
                "start_models": starts,
                "ids": {d: ids_of(d) for d in tables},
                "folds": folds,
            },
            indent=1,
        )
        + "\n"
    )
    plot(tables, Path(args.plot))
    print(f"wrote {out} and {args.plot}")


if __name__ == "__main__":
    main()
