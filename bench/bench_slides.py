"""Whole slides: throughput on 1 and 2 dask workers, time and peak
memory against the slide's size, and what interruptions cost (a run
killed half-way and resumed; a dask worker killed mid-run), in one run.

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
  flat memory;
- ``--faults SIDE``: an uninterrupted run (when it had half of its tiles
  and when it ended: the remaining half's time), a run killed with
  SIGKILL once its ``.partial`` counts half of the tiles done, and the
  same command again, which resumes (target: the remaining half's time
  plus under 10 s); then ``--workers 2`` clean, and with one worker
  process killed (SIGKILL) half-way: the time it costs, the labels
  compared with the clean run's.

Not run by CI; on 2 CPU cores the 5k / 10k / 20k / 30k sizes take about
an hour (the network runs at about 0.5 MPix/s here).

    .venv/bin/python bench/bench_slides.py [--throughput 4000]
        [--sizes 5000 10000 20000 30000] [--faults 3000]
        [--folder /tmp/slides]
"""

import argparse
import json
import os
import signal
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


def watched_predict(slide: Path, out: Path, kill=None, *extra) -> dict:
    """One ``thinseg predict`` into ``out``, its ``.partial`` record
    watched: seconds to half of the tiles and to the end; ``kill(proc)``
    is called at half-way (True: the run was killed, and not waited
    for)."""
    exe = Path(sys.executable).with_name("thinseg")
    cmd = [str(exe), "predict", "--input_path", str(slide)]
    cmd += ["--output_path", str(out), *extra]
    record = out.with_name(out.name + ".partial") / "thinseg_run.json"
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    found = {"half": None}
    while proc.poll() is None:
        if found["half"] is None and record.exists():
            with suppress_torn():
                done = json.loads(record.read_text())
                n = done["run"]["tiles"][3]
                if len(done["done"]) - kept(done, found) >= n / 2:
                    found["half"] = time.perf_counter() - start
                    if kill is not None and kill(proc):
                        proc.wait()
                        found["killed"] = len(done["done"])
                        found["tiles"] = n
                        return found
        time.sleep(0.02)
    found["seconds"] = time.perf_counter() - start
    found["stdout"] = proc.stdout.read()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    return found


def kept(record: dict, found: dict) -> int:
    """Tiles the run started with (from its first look at the record)."""
    found.setdefault("kept", len(record["done"]))
    return found["kept"]


class suppress_torn:
    """Reading the record while it is replaced: try again."""

    def __enter__(self):
        return self

    def __exit__(self, kind, *_):
        return kind is not None and issubclass(kind, (OSError, ValueError))


def kill_process(proc) -> bool:
    proc.send_signal(signal.SIGKILL)
    return True


def kill_a_worker(proc) -> bool:
    """SIGKILL one dask worker process of the run (a child of the CLI
    that is not multiprocessing's resource tracker)."""
    import psutil

    workers = [
        c
        for c in psutil.Process(proc.pid).children(recursive=True)
        if "resource_tracker" not in " ".join(c.cmdline())
    ]
    biggest = max(workers, key=lambda c: c.memory_info().rss)
    biggest.send_signal(signal.SIGKILL)
    return False


def same_labels(a: Path, b: Path) -> bool:
    from napari_thinseg.imaging.pyramid import open_levels

    return all(
        (x[:] == y[:]).all()
        for x, y in zip(open_levels(a), open_levels(b), strict=True)
    )


def faults(folder: Path, side: int) -> None:
    import shutil

    slide = write_slide(folder / f"slide_{side}.tif", side)
    mpix = side * side / 1e6
    whole = watched_predict(slide, folder / "whole.ome.zarr")
    remaining = whole["seconds"] - whole["half"]
    out = folder / "resumed.ome.zarr"
    killed = watched_predict(slide, out, kill_process)
    resumed = watched_predict(slide, out)
    same = same_labels(out, folder / "whole.ome.zarr")
    print(
        f"\nkilled half-way and resumed, {side} x {side} slide "
        f"({mpix:.0f} MPix, {killed['tiles']} tiles), one process"
    )
    print("| run | seconds |")
    print("|---|---|")
    print(f"| uninterrupted | {whole['seconds']:.1f} |")
    print(f"| its first half (to half of the tiles) | {whole['half']:.1f} |")
    print(f"| its remaining half | {remaining:.1f} |")
    print(
        f"| killed (SIGKILL) with {killed['killed']} of {killed['tiles']} "
        f"tiles done, after | {killed['half']:.1f} |"
    )
    print(f"| resumed (the same command again) | {resumed['seconds']:.1f} |")
    print(
        f"| resumed - remaining half (target < 10) | "
        f"{resumed['seconds'] - remaining:.1f} |"
    )
    print(f"labels identical to the uninterrupted run's: {same}")
    clean = watched_predict(
        slide, folder / "clean.ome.zarr", None, "--workers", "2"
    )
    lost = watched_predict(
        slide, folder / "lost.ome.zarr", kill_a_worker, "--workers", "2"
    )
    same = same_labels(folder / "clean.ome.zarr", folder / "lost.ome.zarr")
    said = "worker(s) lost" in lost["stdout"]
    print(f"\na dask worker killed half-way, {side} x {side} slide")
    print("| run (--workers 2) | seconds | vs clean |")
    print("|---|---|---|")
    print(f"| clean | {clean['seconds']:.1f} | 1.00x |")
    print(
        f"| one worker killed (SIGKILL) at half-way | "
        f"{lost['seconds']:.1f} | {lost['seconds'] / clean['seconds']:.2f}x |"
    )
    print(f"labels identical: {same}; the loss said: {said}")
    for name in ("whole", "resumed", "clean", "lost"):
        shutil.rmtree(folder / f"{name}.ome.zarr", ignore_errors=True)


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
    parser.add_argument("--faults", type=int, default=3000)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.folder) as tmp:
        folder = Path(tmp)
        if args.faults:
            faults(folder, args.faults)
        if args.throughput:
            throughput(folder, args.throughput)
        if args.sizes:
            sizes(folder, args.sizes)


if __name__ == "__main__":
    main()
