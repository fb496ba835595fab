"""Train the default model shipped in ``weights/`` (anyone can rerun this).

Data: the eight seed thin sections (../shared/data/seed-thin-sections, MIT)
labelled by the auto-label's blue-epoxy method, plus synthetic sandstones
(their exact labels mapped to the seed's five classes). Two seed images and
four synthetic ones are held out and measured at the end.

    python scripts/train_default_model.py --minutes 75 --work /tmp/default

``--fine_tune`` starts from the shipped default model instead of random
weights (with ``--colour_augment``: the same model made robust to other
microscopes' colour casts); ``--cpu_budget`` counts the minutes in
process CPU time rather than wall time (steady on a shared machine).

Writes weights/thinseg_default_config.json, weights/thinseg_default.<epoch>
(float16) and the model card weights/README.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from napari_thinseg.autolabel.rule import autolabel
from napari_thinseg.dataset.folders import Pair
from napari_thinseg.dataset.synth import synthetic_sandstone, to_seed_labels
from napari_thinseg.imaging.files import read_image
from napari_thinseg.inference.predict import evaluate
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED
from napari_thinseg.training.loop import TrainSettings, train

ROOT = Path(__file__).resolve().parents[1]
SEED_DATA = ROOT.parent / "shared" / "data" / "seed-thin-sections"
HELD_OUT_SEED = ("3", "11")  # one with blue epoxy, one without


def seed_pairs():
    train_pairs, test_pairs = [], []
    for path in sorted((SEED_DATA / "images").glob("*.png")):
        image = read_image(path)[..., :3]
        pair = Pair(
            f"seed {path.stem}", image, autolabel(image, method="epoxy")
        )
        (test_pairs if path.stem in HELD_OUT_SEED else train_pairs).append(
            pair
        )
    return train_pairs, test_pairs


def synthetic_pairs(seeds, size=(512, 512)):
    out = []
    for s in seeds:
        rgb, labels = synthetic_sandstone(size, seed=s)
        out.append(Pair(f"synthetic {s}", rgb, to_seed_labels(labels)))
    return out


def write_metrics(out: Path, seed_test, synth_test) -> None:
    """Evaluate the model as shipped (float16) on the held-out images."""
    model, config, _ = ck.load_model(out / "thinseg_default")
    metrics = {}
    for name, test in (
        ("seed (held out, epoxy auto-labels)", seed_test),
        ("synthetic (held out, exact labels)", synth_test),
    ):
        res = run(
            evaluate(
                model, config, [(p.name, p.image, p.labels) for p in test]
            )
        )
        metrics[name] = res["full_resolution"]
        shown = {
            k: v
            for k, v in res["full_resolution"].items()
            if k != "confusion_matrix"
        }
        print(name, json.dumps(shown))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=75)
    ap.add_argument("--work", default="/tmp/thinseg-default")
    ap.add_argument("--height", type=int, default=128)
    ap.add_argument("--width", type=int, default=192)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--max_epochs", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "weights"))
    ap.add_argument("--fine_tune", action="store_true")
    ap.add_argument("--colour_augment", action="store_true")
    ap.add_argument("--learning_rate", type=float, default=None)
    ap.add_argument("--cpu_budget", action="store_true")
    args = ap.parse_args()

    seed_train, seed_test = seed_pairs()
    synth_train = synthetic_pairs(range(100, 124))
    synth_test = synthetic_pairs(range(900, 904))
    pairs = seed_train + synth_train
    settings = TrainSettings(
        input_height=args.height,
        input_width=args.width,
        epochs=args.max_epochs,
        batch_size=args.batch,
        steps_per_epoch=args.steps,
        optimizer="adam",
        learning_rate=args.learning_rate,
        augment=True,
        colour_augment=args.colour_augment,
    )
    base = dict(model=None, config=None)
    if args.fine_tune:
        model, config, _ = ck.load_model(ck.default_model_prefix())
        base = dict(model=model, config=config)
    prefix = Path(args.work) / "thinseg_default"
    if Path(args.work).exists():
        shutil.rmtree(args.work)
    clock = time.process_time if args.cpu_budget else time.time
    deadline = clock() + args.minutes * 60
    started = time.time()
    gen = train(
        pairs,
        SEED,
        settings,
        validation=synth_test[:2],
        checkpoints_path=prefix,
        stop=lambda: clock() > deadline,
        **base,
    )
    while True:
        try:
            ev = next(gen)
        except StopIteration:
            break
        if ev.epoch_end:
            print(
                f"epoch {ev.epoch}: loss {ev.loss:.4f} val mIoU "
                f"{ev.val_mean_iou:.3f} ({(time.time() - started) / 60:.1f}"
                " min)",
                flush=True,
            )
    wall = (time.time() - started) / 60
    model, config, weights = ck.load_model(prefix)
    epoch = int(weights.rsplit(".", 1)[1])

    out = Path(args.out)
    out.mkdir(exist_ok=True)
    for old in out.glob("thinseg_default*"):
        old.unlink()
    config.trained_on.update(
        images=[p.name for p in pairs],
        n_images=len(pairs),
        epochs=epoch + 1,
        wall_minutes=round(wall, 1),
        fine_tuned_from_default=args.fine_tune,
        machine=f"{platform.machine()}, {platform.processor() or 'CPU'}",
    )
    ck.write_config(out / "thinseg_default", config)
    path = out / f"thinseg_default.{epoch}"
    path.write_bytes(ck.encode_hdf5_weights(model, np.float16))
    write_metrics(out, seed_test, synth_test)
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB), "
        f"{epoch + 1} epochs in {wall:.1f} min"
    )


if __name__ == "__main__":
    main()
