"""Is the training step, not its input, the bottleneck? Measured in one run.

Prints, on the seed thin sections (``../shared``), at one input size and
batch:

- the input alone: seconds per batch of random crops with augmentation
  (``CropSampler.batch``: crop, flips, quarter turns, scale, colour
  jitter, preprocessing), process CPU and wall time;
- the step alone: ``train_on_batch`` in float32 and in the automatic
  precision;
- the whole loop, ``train()`` as the CLI and the Train widget run it, in
  the automatic precision, with the next batch prepared in a worker
  thread while the network trains (as shipped) and with the input inline
  between steps (as before): seconds per batch, and their ratio.

If the shipped loop's time per batch is the step's time, the input is
hidden behind the step. Every timing is warmed up first. Not run by CI;
takes a few minutes on 2 CPU cores.

    .venv/bin/python bench/bench_train.py [--height 416] [--width 608]
        [--batch 2] [--steps 6]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from bench_model import timings

import napari_thinseg.training.loop as train_module
from napari_thinseg.dataset.augment import CropSampler
from napari_thinseg.dataset.folders import check_pairs, pairs_from_folders
from napari_thinseg.model.backend import dtype_policy, resolve_precision
from napari_thinseg.model.config import ModelConfig
from napari_thinseg.model.vgg_unet import build
from napari_thinseg.schemes import SEED as SEED_SCHEME
from napari_thinseg.training.loop import TrainSettings, train
from napari_thinseg.training.recipe import loss_function, make_optimizer

SEED = Path(__file__).parents[2] / "shared" / "data" / "seed-thin-sections"


def seed_pairs():
    if not (SEED / "images").is_dir():
        sys.exit(f"needs the seed thin sections in {SEED}")
    pairs = pairs_from_folders(SEED / "images", SEED / "annotations")
    return check_pairs(pairs, SEED_SCHEME.n_classes)  # RGB, as train() has


def step_seconds(settings, precision, x, y, repeat):
    config = ModelConfig(
        SEED_SCHEME.n_classes, settings.input_height, settings.input_width
    )
    with dtype_policy(precision):
        model = build(config, None)
    model.compile(
        optimizer=make_optimizer("adadelta", None), loss=loss_function(True)
    )
    return timings(lambda: model.train_on_batch(x, y), repeat)


def loop_seconds(pairs, settings, inline: bool) -> float:
    """Seconds per batch of ``train()``, its first batch (tracing) left
    out."""
    saved = train_module.map_ahead
    if inline:
        train_module.map_ahead = lambda fn, items, depth=1: (
            fn(item) for item in items
        )
    try:
        stamps = []
        for _ in train(pairs, SEED_SCHEME, settings):
            stamps.append(time.perf_counter())
    finally:
        train_module.map_ahead = saved
    return statistics.median(np.diff(stamps[1:]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--height", type=int, default=416)
    p.add_argument("--width", type=int, default=608)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    pairs = seed_pairs()
    settings = TrainSettings(
        input_height=args.height,
        input_width=args.width,
        batch_size=args.batch,
        epochs=1,
        steps_per_epoch=args.steps + 2,
        augment=True,
    )
    print(
        f"{len(pairs)} images, crops {args.height} x {args.width}, batch "
        f"{args.batch}, augmentation on; {os.cpu_count()} CPU cores"
    )
    sampler = CropSampler(pairs, settings, True)
    sampler.batch()
    wall, cpu = [], []
    for _ in range(args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        x, y = sampler.batch()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    input_s = statistics.median(wall)
    print(
        f"input alone: {input_s:.3f} s/batch wall, "
        f"{statistics.median(cpu):.3f} s CPU"
    )
    auto = resolve_precision("auto")
    steps = {}
    for precision in dict.fromkeys(("float32", auto)):
        steps[precision] = statistics.median(
            step_seconds(settings, precision, x, y, args.steps)
        )
        print(f"step alone, {precision}: {steps[precision]:.3f} s/batch")
    inline = loop_seconds(pairs, settings, inline=True)
    ahead = loop_seconds(pairs, settings, inline=False)
    print(
        f"train() in {auto}: input inline {inline:.3f} s/batch, input in a "
        f"worker thread (shipped) {ahead:.3f} s/batch: "
        f"{inline / ahead:.2f}x"
    )
    print(
        f"shipped loop / step alone: {ahead / steps[auto]:.2f} (1.00 means "
        f"the input is hidden behind the step); input / step: "
        f"{input_s / steps[auto]:.2f}"
    )


if __name__ == "__main__":
    main()
