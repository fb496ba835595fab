"""Feedback from a few brush strokes: held-out mean IoU against process
CPU seconds, for the ways a prediction can follow a click on Train.

From 2 % brush strokes (:func:`_learning_data.stroke_labels`) on the
training images of a split, each method learns the classes, then predicts
the held-out images, scored against their dense expert labels
(unlabelled pixels left out). Methods:

- ``enc <model>``: the encoder classifier
  (:mod:`napari_thinseg.strokes.encoder_classifier`: a random forest of
  ``--trees`` trees on the VGG-UNet's features at the stroked pixels, at
  most ``--samples`` a class), on the features of the shipped
  ``sandstone`` and ``default`` models; ``enc+rgb sandstone`` adds the
  pixels' own colour (the network's input) to the features; by
  ``--methods`` also ``encdec`` (the decoder's layers and the model's
  logits added) and ``enc123`` (block 4 left out);
- ``enc+filt sandstone`` (``--methods encfilt``): the encoder classifier
  on the sandstone model's features and the ``ilastik`` row's filter
  features of the same pixels (:mod:`napari_thinseg.strokes.filter_features`:
  computed on each whole image, sampled at the stroked pixels and, to
  predict, at the forest's grid points every 2 pixels);
- ``fine-tune <s> s``: the shipped sandstone model trained on the strokes
  (``train.train`` as ``scripts/train_sandstone_model.py`` calls it: 224
  crops, batch 4, adam 5e-4 constant, augmentation, class-balanced loss,
  automatic precision), stopped when the process has spent ``s`` CPU
  seconds in it (``--budgets``, default 60 and 120), then
  ``predict.predict_image`` (tile mode);
- ``ilastik``: ``skimage.feature.multiscale_basic_features`` (intensity,
  edges, texture, sigma 1..16) of every pixel and a scikit-learn
  ``RandomForestClassifier`` (100 trees) on the same sampled pixels.

Data (``../shared/data``; benchmark only, polarised-sandstones is
GPL-3.0):

- ``minerals``: the 6 sandstone-minerals photos (480 x 512), k-fold by
  photo (``--folds`` 3; ``--run_folds`` of them run, 1 by default). The
  shipped sandstone model was trained on all six photos, so the rows on
  its features or weights are optimistic there; ``enc default`` is not.
- ``polarised``: the 16 plane-polarised (PPL) fields at half resolution
  (600 x 800), 3 thin sections held out (``section_split``).

Columns: ``fit s``, CPU seconds to learn (features of the strokes and
the forest, or the training; reading the model's file not counted; the
mean of the folds); ``pred s``, CPU seconds to predict one held-out
image; ``same``, the mean IoU on the pixels that no stroke covers of the
first ``--same_images`` (4) stroked images (what a user judges after
clicking Train; 0 skips it); ``mIoU``, the held-out images' mean IoU
over the classes present in their truth (for minerals ``same4`` and
``mIoU4`` too, over pore, quartz, feldspar and rock fragment, as the
model card scores); then the held-out IoU of each class. CPU is
``time.process_time()`` of this process, all its threads: the machine may
be shared. Not run by CI; needs scikit-learn; about 10 CPU-minutes a
dataset on 2 cores::

    .venv/bin/python bench/bench_feedback.py --datasets minerals
    .venv/bin/python bench/bench_feedback.py --datasets polarised
"""

from __future__ import annotations

import argparse
import sys
import time

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
    stroke_labels,
)

from napari_thinseg.inference.metrics import (
    confusion_matrix,
    iou_from_confusion,
)
from napari_thinseg.schemes import SANDSTONE
from napari_thinseg.strokes.encoder_classifier import FEATURE_LAYERS

POLARISED_SCHEME = polarised_scheme()

ENC_DEC = (
    "block1_conv2",
    "block2_conv2",
    "block3_conv3",
    "block4_conv3",
    "decoder1_bn",
    "decoder2_bn",
    "decoder3_bn",
    "decoder4_bn",
    "head_conv",
)


def splits(name: str, args):
    """``(scheme, [(training fields, held-out fields)])`` of a dataset."""
    if name == "minerals":
        if not MINERALS.is_dir():
            sys.exit(f"needs the sandstone minerals in {MINERALS}")
        photos = mineral_photos()
        groups = image_folds(photos, args.folds)[: args.run_folds]
        return SANDSTONE, [
            ([p for p in photos if p not in held], held) for held in groups
        ]
    if not POLARISED.is_dir():
        sys.exit(f"needs the polarised sandstones in {POLARISED}")
    return POLARISED_SCHEME, [section_split(polarised_fields(scale=2))]


def strokes_of(field, fraction):
    return stroke_labels(
        field.labels, fraction, seed=sum(map(ord, field.name))
    )


class Row:
    """One method's pooled confusion matrix and CPU seconds."""

    def __init__(self, name: str, n: int):
        self.name, self.n = name, n
        self.cm = np.zeros((n, n), np.int64)  # held-out images
        self.cm_same = np.zeros((n, n), np.int64)  # the stroked ones
        self.fit_s: list[float] = []
        self.predict_s: list[float] = []

    def score(self, predict, train_f, test_f, strokes, same: int):
        """Score ``predict`` (image -> labels) on the held-out images
        (timed) and on the first ``same`` stroked images' pixels that no
        stroke covers."""
        for f in test_f:
            t0 = time.process_time()
            pred = predict(f.ppl)
            self.predict_s.append(time.process_time() - t0)
            self._add(self.cm, f.labels, pred)
        for f in train_f[:same]:
            truth = np.where(strokes[f.name] > 0, 0, f.labels)
            self._add(self.cm_same, truth, predict(f.ppl))

    def _add(self, cm, truth, pred):
        keep = truth > 0
        cm += confusion_matrix(truth[keep], pred[keep], self.n)


def cpu(fn, *args, **kw):
    t0 = time.process_time()
    out = fn(*args, **kw)
    return out, time.process_time() - t0


def mean_iou(cm, ids):
    iou = iou_from_confusion(cm)
    present = [i for i in ids if cm[i].sum() > 0]
    return float(np.nanmean(iou[present])) if present else float("nan")


# -- methods -----------------------------------------------------------------
def encoder_rows(models, train_f, test_f, strokes, args, rows, n):
    from napari_thinseg.progress import run
    from napari_thinseg.strokes import encoder_classifier as ec
    from napari_thinseg.strokes.filter_features import (
        fit_filter_encoder_classifier,
    )

    for label, (model, config), layers in models:
        row = rows.setdefault(label, Row(label, n))
        pairs = [(f.ppl, strokes[f.name]) for f in train_f]
        fit = ec.fit_encoder_classifier
        if label.startswith("enc+filt"):
            fit = fit_filter_encoder_classifier
        clf, fit_s = cpu(
            run,
            fit(
                model,
                config,
                pairs,
                layers=layers,
                samples_per_class=args.samples,
                n_trees=args.trees,
                n_classes=n,
                balance_classes=args.balance,
            ),
        )
        row.fit_s.append(fit_s)
        row.score(
            lambda im, c=clf: run(ec.predict_encoder_classifier(c, im)).labels,
            train_f,
            test_f,
            strokes,
            args.same_images,
        )
        print(f"  {label}: fit {fit_s:.1f} CPU s", flush=True)


def finetune_rows(scheme, train_f, test_f, strokes, args, rows, n):
    from napari_thinseg.dataset.folders import Pair
    from napari_thinseg.inference.predict import predict_image
    from napari_thinseg.model import checkpoints as ck
    from napari_thinseg.progress import run
    from napari_thinseg.training.loop import TrainSettings, train

    pairs = [Pair(f.name, f.ppl, strokes[f.name]) for f in train_f]
    for budget in args.budgets:
        label = f"fine-tune {budget:g} s"
        row = rows.setdefault(label, Row(label, n))
        settings = TrainSettings(
            input_height=224,
            input_width=224,
            epochs=1,
            batch_size=4,
            steps_per_epoch=10**7,  # stopped by the CPU budget
            optimizer="adam",
            learning_rate=5e-4,
            augment=True,
            colour_augment=True,
            balance_classes=True,
            schedule="constant",
            seed=0,
        )
        # a fresh copy each time (train() may fine-tune it in place)
        base = ck.load_model(ck.shipped_model_prefix("sandstone"))
        events = []
        started = time.process_time()
        deadline = started + budget
        result = run(
            train(
                pairs,
                scheme,
                settings,
                model=base[0],
                config=base[1],
                stop=lambda d=deadline: time.process_time() > d,
            ),
            events.append,
        )
        row.fit_s.append(time.process_time() - started)
        steps = events[-1].step if events else 0
        row.score(
            lambda im, r=result: (
                run(predict_image(r.model, r.config, im)).labels
            ),
            train_f,
            test_f,
            strokes,
            args.same_images,
        )
        print(f"  {label}: {steps} batches", flush=True)


def ilastik_features(image):
    from skimage.feature import multiscale_basic_features

    return multiscale_basic_features(
        image, channel_axis=-1, sigma_min=1, sigma_max=16
    ).astype(np.float32)


def ilastik_row(train_f, test_f, strokes, args, rows, n):
    from sklearn.ensemble import RandomForestClassifier

    from napari_thinseg.strokes.encoder_classifier import sample_strokes

    row = rows.setdefault("ilastik", Row("ilastik", n))
    t0 = time.process_time()
    labels = [strokes[f.name] for f in train_f]
    picked = sample_strokes(labels, args.samples)
    x, y = [], []
    for k, f in enumerate(train_f):
        flat = np.concatenate([picked[c][k] for c in picked])
        if len(flat):
            feats = ilastik_features(f.ppl)
            x.append(feats.reshape(-1, feats.shape[-1])[flat])
            y.append(labels[k].ravel()[flat])
    forest = RandomForestClassifier(
        args.trees,
        n_jobs=-1,
        random_state=0,
        class_weight="balanced" if args.balance else None,
    ).fit(np.concatenate(x), np.concatenate(y))
    row.fit_s.append(time.process_time() - t0)

    def predict(image):
        feats = ilastik_features(image)
        pred = forest.predict(feats.reshape(-1, feats.shape[-1]))
        return pred.reshape(image.shape[:2])

    row.score(predict, train_f, test_f, strokes, args.same_images)
    print(f"  ilastik: fit {row.fit_s[-1]:.1f} CPU s", flush=True)


# -- the table ---------------------------------------------------------------
def print_table(title, scheme, rows, main_ids=None):
    ids = [c.id for c in scheme]
    short = [scheme[i].name[:9] for i in ids]
    head = f"{'method':20s} {'fit s':>7s} {'pred s':>7s} {'same':>6s}"
    if main_ids:
        head += f" {'same4':>6s}"
    head += f" {'mIoU':>6s}" + (f" {'mIoU4':>6s}" if main_ids else "")
    print(f"\n{title}\n{head} " + " ".join(f"{s:>9s}" for s in short))
    for row in rows.values():
        iou = iou_from_confusion(row.cm)
        line = (
            f"{row.name:20s} {np.mean(row.fit_s):7.1f} "
            f"{np.mean(row.predict_s):7.1f} "
            f"{mean_iou(row.cm_same, ids):6.3f}"
        )
        if main_ids:
            line += f" {mean_iou(row.cm_same, main_ids):6.3f}"
        line += f" {mean_iou(row.cm, ids):6.3f}"
        if main_ids:
            line += f" {mean_iou(row.cm, main_ids):6.3f}"
        cells = ["-" if row.cm[i].sum() == 0 else f"{iou[i]:.3f}" for i in ids]
        print(line + " " + " ".join(f"{c:>9s}" for c in cells), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="minerals,polarised")
    ap.add_argument("--methods", default="enc,encrgb,finetune,ilastik")
    ap.add_argument("--fraction", type=float, default=0.02)
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--balance", action="store_true")
    ap.add_argument("--same_images", type=int, default=4)
    ap.add_argument("--budgets", type=float, nargs="+", default=[60, 120])
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--run_folds", type=int, default=1)
    args = ap.parse_args(argv)
    methods = args.methods.split(",")

    from napari_thinseg.model import checkpoints as ck

    sandstone = ck.load_model(ck.shipped_model_prefix("sandstone"))[:2]
    default = ck.load_model(ck.shipped_model_prefix("default"))[:2]
    models = []
    if "enc" in methods:
        models += [("enc sandstone", sandstone, None)]
        models += [("enc default", default, None)]
    if "encdec" in methods:
        models += [("enc+dec sandstone", sandstone, ENC_DEC)]
    if "encrgb" in methods:
        rgb = ("input_1", *FEATURE_LAYERS)
        models += [("enc+rgb sandstone", sandstone, rgb)]
    if "encfilt" in methods:
        models += [("enc+filt sandstone", sandstone, None)]
    if "enc123" in methods:
        models += [("enc123 sandstone", sandstone, FEATURE_LAYERS[:3])]
    models = [(lbl, m, layers or FEATURE_LAYERS) for lbl, m, layers in models]
    for name in args.datasets.split(","):
        scheme, folds = splits(name, args)
        n = scheme.n_classes
        rows: dict[str, Row] = {}
        for k, (train_f, test_f) in enumerate(folds):
            print(
                f"{name} fold {k + 1}/{len(folds)}: "
                f"{len(train_f)} training, {len(test_f)} held out",
                flush=True,
            )
            strokes = {f.name: strokes_of(f, args.fraction) for f in train_f}
            encoder_rows(models, train_f, test_f, strokes, args, rows, n)
            if "ilastik" in methods:
                ilastik_row(train_f, test_f, strokes, args, rows, n)
            if "finetune" in methods:
                finetune_rows(scheme, train_f, test_f, strokes, args, rows, n)
        main_ids = (
            [SANDSTONE.id_of(c) for c in MAIN_CLASSES]
            if name == "minerals"
            else None
        )
        labelled = np.mean([(s > 0).mean() for s in strokes.values()])
        print_table(
            f"{name}: {len(folds)} fold(s), strokes on {labelled:.1%} of "
            f"the training pixels; CPU s (fit: all training images)",
            scheme,
            rows,
            main_ids,
        )


if __name__ == "__main__":
    main()
