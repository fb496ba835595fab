"""Porosity of the shipped models on colour-cast photos, in one run.

For each shipped model and the photos of its own scheme (``../shared``):
the default model on the 8 seed thin sections (against their blue-epoxy
auto-labels, what it was trained to reproduce) and the sandstone model on
the 6 sandstone-minerals photos (against the expert labels), the
porosity (pore share of the labelled pixels) predicted on each photo and
on colour-cast copies of it: white balance warmer and cooler (red and
blue gains +-12 %, about +-1500 K) and gamma 0.8 and 1.25
(``augment.cast_copy``). Prints the error in porosity units (percentage
points) per cast, the largest, and how many photos stay within 3 units.
The photos were in the models' training sets (there are no others of
these schemes here): held-out numbers are in the model card's k-fold.
Not run by CI; a few minutes on 2 CPU cores.

    .venv/bin/python bench/bench_colour_casts.py
    # a candidate before it is shipped: --default PREFIX / --sandstone PREFIX
    .venv/bin/python bench/bench_colour_casts.py --default /tmp/o/P
"""

import argparse
import os
import sys
from pathlib import Path

from napari_thinseg.autolabel.rule import autolabel
from napari_thinseg.dataset.augment import cast_copy
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.files import read_annotation, read_image
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.model import checkpoints as ck
from napari_thinseg.progress import run

SHARED = Path(__file__).parents[2] / "shared" / "data"
CASTS = {
    "plain": (0.0, 1.0),
    "warmer": (0.12, 1.0),
    "cooler": (-0.12, 1.0),
    "gamma 0.8": (0.0, 0.8),
    "gamma 1.25": (0.0, 1.25),
}


def seed_photos():
    for path in sorted((SHARED / "seed-thin-sections" / "images").glob("*")):
        image = read_image(path)[..., :3]
        yield path.stem, image, autolabel(image, method="epoxy")


def mineral_photos():
    folder = SHARED / "sandstone-minerals"
    for path in sorted((folder / "images").glob("*.png")):
        labels = read_annotation(folder / "annotations" / path.name)
        yield path.stem, read_image(path)[..., :3], labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--default", help="checkpoint prefix instead of shipped")
    ap.add_argument("--sandstone", help="checkpoint prefix instead of shipped")
    ap.add_argument("--only", choices=("default", "sandstone"))
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not SHARED.is_dir():
        sys.exit(f"needs the photos in {SHARED}")
    for name, photos in (
        ("default", seed_photos),
        ("sandstone", mineral_photos),
    ):
        if args.only not in (None, name):
            continue
        try:
            prefix = getattr(args, name) or ck.shipped_model_prefix(name)
        except ThinsegError as exc:  # not installed: say so, go on
            print(f"{name}: {exc}")
            continue
        model, config, weights = ck.load_model(prefix)
        pore = config.class_scheme.pore_id
        print(f"{name} model ({Path(weights).name}), porosity error in units:")
        print("photo    labels  " + "  ".join(f"{c:>10}" for c in CASTS))
        worst, within = 0.0, 0
        for stem, image, labels in photos():
            labelled = labels > 0
            truth = 100 * float((labels[labelled] == pore).mean())
            errors = []
            for temperature, gamma in CASTS.values():
                copy = cast_copy(image, temperature, gamma)
                pred = run(predict_image(model, config, copy)).labels
                phi = 100 * float((pred[labelled] == pore).mean())
                errors.append(phi - truth)
            worst = max(worst, max(abs(e) for e in errors))
            within += all(abs(e) <= 3 for e in errors)
            print(
                f"{stem:<8} {truth:6.1f}  "
                + "  ".join(f"{e:+10.1f}" for e in errors)
            )
        n = len(list(photos()))
        print(
            f"{name}: largest error {worst:.1f} units; {within} of {n} "
            "photos within 3 units under every cast\n"
        )


if __name__ == "__main__":
    main()
