"""How fast tile-mode prediction runs, old tiling next to new, in one run.

Prints, measured side by side in one process on this machine, with the
shipped default model (VGG-UNet, 6 classes, trained at 128 x 192):

- numpy's float32 matrix product (SGEMM), the machine's attainable
  GFLOP/s;
- the bare float32 network at 416 x 608 (``predict_on_batch``, batch 1, as
  keras-segmentation's ``predict``);
- the old tiling (tiles of the training size, 25 % overlap, tent blend,
  ``predict_on_batch`` in float32: the code tile mode ran before) and the
  new one (large tiles fitted to the image with a margin, in float32 and
  in the automatic precision) on the seed sample and a 1000 x 1000 crop;
- the new tiling, automatic precision, on a 4000 x 4000 image made by
  mirroring the seed sample.

For each: seconds, image pixels per second, network work (tile pixels /
image pixels), network GFLOP/s (the convolutions of every tile pixel) and
its share of SGEMM. Every network is warmed up at its shapes first; old
and new run in turns, best of two (the 4000 x 4000 image once).
Not run by CI; takes a few minutes on 2 CPU cores.

    .venv/bin/python bench/bench_predict.py [--size 4000] [--crop 1000]
"""

import argparse
import os
import time

import numpy as np
from bench_model import conv_gflop, sgemm, timings

from napari_thinseg._napari.sample_data import SEED_SAMPLE
from napari_thinseg.imaging.files import read_image
from napari_thinseg.inference.predict import predict_image, tile_shape
from napari_thinseg.inference.tiling import (
    margin_for,
    predict_tiles,
    tile_pixels,
    tile_starts,
)
from napari_thinseg.model.backend import resolve_precision, tensorflow
from napari_thinseg.model.checkpoints import default_model_prefix, load_model
from napari_thinseg.model.vgg_unet import preprocess, vgg_unet
from napari_thinseg.progress import run


def best_of(fn, repeat: int) -> float:
    """Shortest of ``repeat`` runs, in seconds."""
    return min(timings(fn, repeat, warmup=0))


def old_tiling(model, config, image):
    """Tile mode as it was: training-size tiles, 25 % overlap, batches of
    4 through ``predict_on_batch`` in float32."""
    tf = tensorflow()
    th, tw = config.input_height, config.input_width

    def forward(tiles):
        batch = np.stack([preprocess(t) for t in tiles])
        out = np.asarray(model.predict_on_batch(batch))
        out = out.reshape(len(batch), th // 2, tw // 2, config.n_classes)
        return tf.image.resize(out, (th, tw), method="bilinear").numpy()

    return run(predict_tiles(forward, image, (th, tw), config.n_classes))


def old_work(config, image) -> float:
    h, w = image.shape[:2]
    th, tw = config.input_height, config.input_width
    rows = tile_starts(h, th, int(th * 0.75))
    cols = tile_starts(w, tw, int(tw * 0.75))
    return len(rows) * len(cols) * th * tw / (h * w)


def new_work(model, config, image) -> float:
    h, w = image.shape[:2]
    shape = tile_shape(model, config, h, w)
    return tile_pixels(h, w, shape, margin_for(shape)) / (h * w)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=4000)
    p.add_argument("--crop", type=int, default=1000)
    args = p.parse_args(argv)
    t_start = time.perf_counter()
    tf = tensorflow()
    auto = resolve_precision("auto")
    print(
        f"machine: {os.cpu_count()} CPU cores; TensorFlow {tf.__version__}; "
        f"automatic precision here: {auto}"
    )
    try:
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"load average before: {load}")
    except OSError:
        pass
    sgemm_runs = [sgemm()[1]]

    model, config, _ = load_model(default_model_prefix())
    bare = vgg_unet(config.n_classes, 416, 608)
    # the convolutions' FLOP per pixel the network sees
    flop_px = conv_gflop(bare) * 1e9 / (416 * 608)
    sample = read_image(SEED_SAMPLE)[..., :3]
    h, w = sample.shape[:2]
    big = np.pad(
        sample, ((0, args.size - h), (0, args.size - w), (0, 0)), "symmetric"
    )
    crop = np.ascontiguousarray(big[: args.crop, : args.crop])
    rows = []  # (what, image shape, seconds, network work)

    x = np.zeros((1, 416, 608, 3), np.float32)
    bare.predict_on_batch(x)
    bare.predict_on_batch(x)
    seconds = best_of(lambda: bare.predict_on_batch(x), 3)
    rows.append(("bare network, float32", x.shape[1:3], seconds, 1.0))

    def new(image, precision):
        return run(predict_image(model, config, image, precision=precision))

    # warm-up: the old tiling's batch shapes, each new network's trace
    old_tiling(model, config, crop[:300, :400])
    precisions = list(dict.fromkeys(("float32", auto)))
    for image, warm_precisions in (
        (sample, precisions),
        (crop, precisions),
        (big, [auto]),
    ):
        shape = tile_shape(model, config, *image.shape[:2])
        warm = np.ascontiguousarray(image[: shape[0], : shape[1]])
        for precision in warm_precisions:
            new(warm, precision)

    # old and new in turns, best of two: other load on the machine hits
    # both alike
    for name, image in (("seed sample", sample), (f"{args.crop} crop", crop)):
        times = {k: [] for k in ["old", *precisions]}
        for _ in range(2):
            times["old"].append(
                best_of(lambda im=image: old_tiling(model, config, im), 1)
            )
            for precision in precisions:
                times[precision].append(
                    best_of(lambda im=image, p=precision: new(im, p), 1)
                )
        shape = image.shape[:2]
        rows.append(
            (
                f"{name}: old tiling, float32",
                shape,
                min(times["old"]),
                old_work(config, image),
            )
        )
        work = new_work(model, config, image)
        for precision in precisions:
            rows.append(
                (
                    f"{name}: new tiling, {precision}",
                    shape,
                    min(times[precision]),
                    work,
                )
            )
    t_big = best_of(lambda: new(big, auto), 1)
    big_tile = tile_shape(model, config, *big.shape[:2])
    rows.append(
        (
            f"{args.size} x {args.size}: new tiling, {auto}",
            big.shape[:2],
            t_big,
            new_work(model, config, big),
        )
    )
    sgemm_runs.append(sgemm()[1])

    best = max(sgemm_runs)
    print(
        f"numpy SGEMM 2048^3 float32: {best:.1f} GFLOP/s (best of the "
        f"runs before and after: {' / '.join(f'{v:.1f}' for v in sgemm_runs)})"
    )
    print(
        f"VGG-UNet convolutions: {flop_px / 1e6:.3f} MFLOP per pixel "
        f"({flop_px * 416 * 608 / 1e9:.1f} GFLOP at 416 x 608)"
    )
    print(
        f"{'':<36} {'image':>13} {'seconds':>8} {'kpx/s':>7} {'work':>6} "
        f"{'GFLOP/s':>8} {'of SGEMM':>8}"
    )
    pxs = {}
    for name, (ih, iw), secs, work in rows:
        pxs[name] = ih * iw / secs
        gflops = ih * iw * work * flop_px / secs / 1e9
        print(
            f"{name:<36} {ih:>5} x {iw:<5} {secs:8.2f} "
            f"{pxs[name] / 1e3:7.1f} {work:5.2f}x {gflops:8.1f} "
            f"{100 * gflops / best:7.1f}%"
        )
    for name in ("seed sample", f"{args.crop} crop"):
        old = pxs[f"{name}: old tiling, float32"]
        for precision in precisions:
            ratio = pxs[f"{name}: new tiling, {precision}"] / old
            print(f"{name}: new tiling, {precision}: {ratio:.2f}x the old")
    ratio = pxs[rows[-1][0]] / pxs["bare network, float32"]
    print(
        f"{rows[-1][0]} (tiles {big_tile[0]} x {big_tile[1]}): "
        f"{ratio:.2f}x the bare float32 network's px/s"
    )
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
