"""Whole slides: throughput on 1 and 2 dask workers, and time and peak
memory against the slide's size, in one run.

Slides are tiled JPEG TIFFs (as slide scanners write them) made of the
packaged seed thin section, flipped and turned tile by tile, written
without ever holding the slide in memory. Each measurement is
``thinseg predict --input_path slide.tif --output_path labels.ome.zarr``
(the shipped default model, automatic precision, a labels pyramid
written tile by tile) in a fresh process:

- throughput (MPix/s of slide) of one process, a LocalCluster of one
  worker with the machine's threads, and of two workers sharing them
  (``--workers 1`` / ``--workers 2``), on the same slide, in turns;
- seconds and peak resident memory (of the process, from ``wait4``)
  for square slides of the given sides, one process each: linear time,
  flat memory.

Not run by CI; on 2 CPU cores the 5k / 10k / 20k / 30k sizes take about
an hour (the network runs at about 0.5 MPix/s here).

    .venv/bin/python bench/bench_slides.py [--throughput 4000]
        [--sizes 5000 10000 20000 30000] [--folder /tmp/slides]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from napari_thinseg.imaging.files import read_image

SAMPLE = (
    Path(__file__).parents[1] / "src/napari_thinseg/data/seed/sandstone_2.png"
)
TILE = 512


def write_slide(path: Path, side: int) -> Path:
    """A ``side`` x ``side`` RGB slide, tile by tile (bounded memory)."""
    photo = read_image(SAMPLE)[..., :3][:TILE, :TILE]
    variants = [
        np.ascontiguousarray(np.rot90(p, k))
        for p in (photo, photo[::-1])
        for k in range(4)
    ]
    n = (-(-side // TILE)) ** 2
    tifffile.imwrite(
        path,
        (variants[(k * 7) % len(variants)] for k in range(n)),
        shape=(side, side, 3),
        dtype=np.uint8,
        tile=(TILE, TILE),
        photometric="rgb",
        compression="jpeg",
        compressionargs={"level": 90},
        bigtiff=True,
    )
    return path


def thinseg_predict(slide: Path, out: Path, *extra) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``thinseg predict``."""
    exe = Path(sys.executable).with_name("thinseg")
    cmd = [str(exe), "predict", "--input_path", str(slide)]
    cmd += ["--output_path", str(out), "--overwrite", *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return seconds, usage.ru_maxrss / 1024


def throughput(folder: Path, side: int) -> None:
    slide = write_slide(folder / f"slide_{side}.tif", side)
    mpix = side * side / 1e6
    runs = {
        "one process": (),
        "LocalCluster, 1 worker": ("--workers", "1"),
        "LocalCluster, 2 workers": ("--workers", "2"),
    }
    best: dict[str, float] = {}
    for _ in range(2):  # in turns, best of two
        for name, extra in runs.items():
            seconds, _ = thinseg_predict(slide, folder / "t.ome.zarr", *extra)
            best[name] = min(best.get(name, np.inf), seconds)
    base = best["LocalCluster, 1 worker"]
    print(
        f"\nthroughput, {side} x {side} slide ({mpix:.0f} MPix), "
        f"{os.cpu_count()} cores"
    )
    print("| run | seconds | MPix/s | vs 1 worker |")
    print("|---|---|---|---|")
    for name, seconds in best.items():
        print(
            f"| {name} | {seconds:.1f} | {mpix / seconds:.3f} | "
            f"{base / seconds:.2f}x |"
        )


def sizes(folder: Path, sides: list[int]) -> None:
    print("\ntime and peak memory against the slide's size (one process)")
    print("| slide | MPix | file MB | seconds | s per MPix | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for side in sides:
        slide = write_slide(folder / f"slide_{side}.tif", side)
        seconds, peak = thinseg_predict(slide, folder / "s.ome.zarr")
        mpix = side * side / 1e6
        mb = slide.stat().st_size / 1e6
        print(
            f"| {side} x {side} | {mpix:.0f} | {mb:.0f} | {seconds:.0f} | "
            f"{seconds / mpix:.2f} | {peak:.0f} |",
            flush=True,
        )
        slide.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--throughput", type=int, default=4000)
    parser.add_argument(
        "--sizes", type=int, nargs="*", default=[5000, 10000, 20000, 30000]
    )
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        if args.throughput:
            throughput(folder, args.throughput)
        if args.sizes:
            sizes(folder, args.sizes)


if __name__ == "__main__":
    main()
