"""Train the `sandstone` mineral model shipped in ``weights/`` (anyone can
rerun this), and measure it honestly first.

Data: the six photos of ../shared/data/sandstone-minerals (Apache-2.0,
Saxena et al. 2021; expert labels, their classes 1-9 are the `sandstone`
scheme's, their 10 "hydrocarbon" and 11 "other" become 10 "other") plus
synthetic sandstones with exact labels. Training starts from the shipped
default model (its encoder and decoder; the output layer is new), with
the recipe: class-balanced loss, colour augmentation for other
microscopes, flips and turns, adam with warm-up and cosine decay; each run
has a budget of process CPU time.

1. k-fold by image: for each fold, train on the other photos (and the
   synthetic ones) and measure the held-out photos: per-class IoU, mean
   IoU over pore / quartz / feldspar / rock fragment and over every class
   present, porosity error, and the porosity error on colour-cast copies
   of the held-out photos (colour temperature +-1500 K equivalent, gamma
   0.8 and 1.25).
2. The shipped model: the same recipe on all six photos.

    python scripts/train_sandstone_model.py --work /tmp/sandstone
    # or the folds alone, then the final model with their figures
    python scripts/train_sandstone_model.py --folds_only ... --work /tmp/f
    python scripts/train_sandstone_model.py ... --work /tmp/final \\
        --folds_from /tmp/f/sandstone_folds.json

Writes weights/thinseg_sandstone_config.json, weights/thinseg_sandstone.<epoch>
(float16) and weights/sandstone_metrics.json (the model card in
weights/README.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from napari_thinseg.dataset.augment import cast_copy
from napari_thinseg.dataset.folders import Pair
from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.imaging.files import read_annotation, read_image
from napari_thinseg.inference.metrics import (
    confusion_matrix,
    iou_from_confusion,
)
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.progress import run
from napari_thinseg.schemes import SANDSTONE
from napari_thinseg.training.loop import TrainSettings, train

ROOT = Path(__file__).resolve().parents[1]
MINERALS = ROOT.parent / "shared" / "data" / "sandstone-minerals"
NAME = "thinseg_sandstone"
MAIN_CLASSES = ("pore", "quartz", "feldspar", "rock fragment")
OTHER = SANDSTONE.id_of("other")
CASTS = {
    "warmer (red +12 %, blue -12 %)": dict(temperature=0.12, gamma=1.0),
    "cooler (red -12 %, blue +12 %)": dict(temperature=-0.12, gamma=1.0),
    "gamma 0.8": dict(temperature=0.0, gamma=0.8),
    "gamma 1.25": dict(temperature=0.0, gamma=1.25),
}


def mineral_pairs() -> list[Pair]:
    out = []
    for path in sorted((MINERALS / "images").glob("*.png")):
        labels = read_annotation(MINERALS / "annotations" / path.name)
        labels = np.where(labels > OTHER, OTHER, labels).astype(np.uint8)
        out.append(Pair(path.stem, read_image(path)[..., :3], labels))
    return out


def synthetic_pairs(seeds, size=(480, 512)) -> list[Pair]:
    return [
        Pair(f"synthetic {s}", *synthetic_sandstone(size, seed=s))
        for s in seeds
    ]


def measure(model, config, pairs) -> dict:
    n = config.n_classes
    cm = np.zeros((n, n), np.int64)
    porosity = []
    for p in pairs:
        pred = run(predict_image(model, config, p.image)).labels
        cm += confusion_matrix(p.labels[p.labels > 0], pred[p.labels > 0], n)
        truth_phi = float((p.labels == 1).mean())
        row = {"image": p.name, "porosity_labels": truth_phi}
        row["porosity_predicted"] = float((pred == 1).mean())
        for name, kw in CASTS.items():
            cast_pred = run(
                predict_image(model, config, cast_copy(p.image, **kw))
            ).labels
            row[name] = float((cast_pred == 1).mean())
        porosity.append(row)
    iou = iou_from_confusion(cm)
    present = cm.sum(1) > 0
    main = [SANDSTONE.id_of(c) for c in MAIN_CLASSES]
    errors = [
        abs(r[k] - r["porosity_labels"]) * 100
        for r in porosity
        for k in ["porosity_predicted", *CASTS]
    ]
    return {
        "iou": {
            SANDSTONE[i].name: (None if np.isnan(iou[i]) else float(iou[i]))
            for i in range(1, n)
            if present[i]
        },
        "mean_iou_main": float(np.nanmean(iou[main])),
        "mean_iou_present": float(np.nanmean(iou[present])),
        "pixel_accuracy": float(np.trace(cm) / max(1, cm.sum())),
        "porosity": porosity,
        "max_porosity_error_units": float(max(errors)),
        "confusion_matrix": cm.tolist(),
    }


def fit(pairs, validation, args, prefix: Path, seed: int):
    """Train from the default model within ``minutes`` of CPU time."""
    base, base_config, _ = ck.load_model(ck.default_model_prefix())
    settings = TrainSettings(
        input_height=args.size,
        input_width=args.size,
        epochs=args.epochs,
        batch_size=args.batch,
        steps_per_epoch=args.steps,
        optimizer="adam",
        learning_rate=args.learning_rate,
        augment=True,
        colour_augment=True,
        balance_classes=True,
        schedule="cosine",
        seed=seed,
        frozen_blocks=args.frozen_blocks,
        average_weights=args.average_weights,
    )
    budget = time.process_time() + args.minutes * 60
    started = time.time(), time.process_time()

    def report(ev):
        if ev.epoch_end:
            print(
                f"  epoch {ev.epoch}: loss {ev.loss:.3f} val mIoU "
                f"{ev.val_mean_iou:.3f}{' best' if ev.best else ''} "
                f"({(time.process_time() - started[1]) / 60:.1f} CPU-min)",
                flush=True,
            )

    result = run(
        train(
            pairs,
            SANDSTONE,
            settings,
            validation=validation,
            checkpoints_path=prefix,
            model=base,
            config=base_config,
            stop=lambda: time.process_time() > budget,
        ),
        report,
    )
    result.config.trained_on.update(
        wall_minutes=round((time.time() - started[0]) / 60, 1),
        cpu_minutes=round((time.process_time() - started[1]) / 60, 1),
    )
    return result


FOLD_RECIPE = (
    *("size", "batch", "steps", "epochs", "learning_rate", "synthetic"),
    *("folds", "fold_minutes", "frozen_blocks", "average_weights"),
)
"""What an earlier k-fold run must share with this one to stand for it."""
RECIPE_ADDED = {"frozen_blocks": 0, "average_weights": 0.0}
"""Keys added since, with the value the runs before them had."""


def earlier_folds(args) -> dict:
    """The report of an earlier ``--folds_only`` run, if its recipe is
    this run's (fold budget and epochs included)."""
    report = json.loads(Path(args.folds_from).read_text())
    earlier = report["recipe"]
    differ = [
        k
        for k in FOLD_RECIPE
        if earlier.get(k, RECIPE_ADDED.get(k)) != getattr(args, k)
    ]
    if differ:
        raise SystemExit(
            f"{args.folds_from}: another recipe ({', '.join(differ)} "
            "differ); rerun the folds"
        )
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fold_minutes", type=float, default=30)
    ap.add_argument("--final_minutes", type=float, default=30)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--final_epochs", type=int, default=15)
    ap.add_argument("--learning_rate", type=float, default=5e-4)
    ap.add_argument(
        "--frozen_blocks",
        type=int,
        default=0,
        help="the encoder's first N VGG blocks keep the default model's "
        "weights",
    )
    ap.add_argument(
        "--average_weights",
        type=float,
        default=0.0,
        help="weight averaging momentum (0.99, say; 0: off)",
    )
    ap.add_argument(
        "--synthetic",
        type=int,
        default=2,
        help="synthetic sandstones trained beside the photos (crops are "
        "drawn by labelled pixels, so 12 beside 4 photos are 3 in 4 crops)",
    )
    ap.add_argument("--work", default="/tmp/thinseg-sandstone")
    ap.add_argument("--out", default=str(ROOT / "weights"))
    ap.add_argument(
        "--folds_only",
        action="store_true",
        help="measure the k folds only: no final model, weights/ untouched",
    )
    ap.add_argument(
        "--folds_from",
        help="the sandstone_folds.json of an earlier --folds_only run of "
        "the same recipe: its k-fold figures go into the model card, and "
        "only the final model is trained",
    )
    args = ap.parse_args()
    earlier = earlier_folds(args) if args.folds_from else None
    work = Path(args.work)
    if earlier and work.resolve() in Path(args.folds_from).resolve().parents:
        raise SystemExit(
            f"{args.folds_from} lies in --work {work}, which "
            "this run empties: give another --work"
        )
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)

    photos = mineral_pairs()
    synthetic = synthetic_pairs(range(200, 200 + args.synthetic))
    validation = synthetic_pairs(range(950, 952))
    folds = [photos[k :: args.folds] for k in range(args.folds)]
    report = {"folds": [], "recipe": vars(args)}
    if earlier:
        report, folds = earlier, []
    for k, held in enumerate(folds):
        names = {p.name for p in held}
        rest = [p for p in photos if p.name not in names]
        print(f"fold {k + 1}/{args.folds}: held out {sorted(names)}")
        args.minutes = args.fold_minutes
        result = fit(rest + synthetic, validation, args, work / f"f{k}", k)
        scores = measure(result.model, result.config, held)
        scores.update(
            held_out=sorted(names),
            best_epoch=result.best_epoch,
            cpu_minutes=result.config.trained_on["cpu_minutes"],
        )
        report["folds"].append(scores)
        print(
            f"  held-out mIoU (pore/quartz/feldspar/rock fragment) "
            f"{scores['mean_iou_main']:.3f}, IoU {scores['iou']}, "
            f"porosity error up to {scores['max_porosity_error_units']:.1f}",
            flush=True,
        )
    main_ious = [f["mean_iou_main"] for f in report["folds"]]
    report["k_fold_mean_iou_main"] = float(np.mean(main_ious))
    print(f"k-fold mean IoU (main classes): {np.mean(main_ious):.3f}")
    report["recipe"] = vars(args)
    if args.folds_only:
        (work / "sandstone_folds.json").write_text(
            json.dumps(report, indent=1) + "\n"
        )
        print(f"wrote {work / 'sandstone_folds.json'}")
        return

    print("final model on all six photos")
    args.minutes, args.epochs = args.final_minutes, args.final_epochs
    result = fit(photos + synthetic, validation, args, work / "final", 99)
    out = Path(args.out)
    for old in out.glob(f"{NAME}*"):
        old.unlink()
    config = result.config
    config.trained_on.update(
        images=[p.name for p in photos + synthetic],
        n_images=len(photos) + len(synthetic),
        data="sandstone-minerals (Apache-2.0, Saxena et al. 2021) + "
        "synthetic sandstones",
        machine=f"{platform.machine()}, {platform.processor() or 'CPU'}",
    )
    epoch = result.best_epoch if result.best_epoch is not None else 0
    ck.write_config(out / NAME, config)
    path = out / f"{NAME}.{epoch}"
    path.write_bytes(ck.encode_hdf5_weights(result.model, np.float16))
    report["final"] = {
        "best_epoch": result.best_epoch,
        "cpu_minutes": config.trained_on["cpu_minutes"],
        "wall_minutes": config.trained_on["wall_minutes"],
        "file_mb": round(path.stat().st_size / 1e6, 1),
    }
    (out / "sandstone_metrics.json").write_text(
        json.dumps(report, indent=1) + "\n"
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
