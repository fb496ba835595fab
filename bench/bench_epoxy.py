"""Blue-epoxy porosity against the expert's pores, old window vs found dye.

For each photo of ``../shared/data/sandstone-minerals`` (pore = id 1 in
its annotations), prints in one run, side by side: the pore share the
expert drew, what the old fixed HSV window of ``--method epoxy`` found
(``EpoxyWindow()``) and what the dye found in the photo gives (the new
default, unaided), each with its pore IoU against the expert, and whether
the target holds (within 3 porosity units and IoU >= 0.75). A markdown
table, as docs/epoxy.md shows it. Not run by CI; a few seconds.

    .venv/bin/python bench/bench_epoxy.py [DATA_DIR]
"""

import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from napari_thinseg.autolabel.epoxy import fit_epoxy
from napari_thinseg.autolabel.rule import EpoxyWindow, autolabel
from napari_thinseg.schemes import SEED

DATA = Path(__file__).parents[2] / "shared/data/sandstone-minerals"
TARGET_PU, TARGET_IOU = 3.0, 0.75


def pores(image, **kwargs) -> np.ndarray:
    return autolabel(image, method="epoxy", **kwargs) == SEED.pore_id


def iou(a, b) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def main(data: Path) -> int:
    names = sorted(p.stem for p in (data / "images").glob("*.png"))
    if not names:
        print(f"no photos in {data / 'images'}", file=sys.stderr)
        return 2
    print(
        "| photo | expert pore | old window: found | old IoU | found dye: "
        "found | new IoU | new - expert | target | dye chosen | seconds |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    met = 0
    for name in names:
        image = iio.imread(data / "images" / f"{name}.png")[..., :3]
        expert = iio.imread(data / "annotations" / f"{name}.png") == 1
        old = pores(image, epoxy=EpoxyWindow())
        start = time.perf_counter()
        new = pores(image)
        seconds = time.perf_counter() - start
        fit = fit_epoxy(image)
        diff = 100 * (new.mean() - expert.mean())
        ok = abs(diff) <= TARGET_PU and iou(new, expert) >= TARGET_IOU
        met += ok
        print(
            f"| {name} | {100 * expert.mean():.1f} % | "
            f"{100 * old.mean():.1f} % | {iou(old, expert):.2f} | "
            f"{100 * new.mean():.1f} % | {iou(new, expert):.2f} | "
            f"{diff:+.1f} | {'met' if ok else 'missed'} | "
            f"{fit.describe()} | {seconds:.2f} |"
        )
    print(f"\ntarget met on {met} of {len(names)} photos")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA))
