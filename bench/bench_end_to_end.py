"""Files in, label PNGs out: ``thinseg predict`` next to keras-segmentation
0.3.0's ``predict_multiple``, with the same checkpoint, in one run.

The shipped default model's weights are written as a checkpoint at
416 x 608 (the network is fully convolutional: the same weights at any
size), and the seed thin sections resized to 416 x 608 (RGB PNGs), so that
both sides do equal work: keras-segmentation resizes nothing and runs the
network once per image; ``thinseg predict`` (tile mode) fits one tile with
its margin to the image. Each side runs in its own process:

- keras-segmentation 0.3.0, unmodified, on tf-keras: its VGG-UNet built
  as its ``vgg_unet`` does (no ImageNet download), the checkpoint's
  weights loaded, then ``predict_multiple(inp_dir=..., out_dir=...)``
  (it reads with OpenCV and writes coloured PNGs);
- ours: ``thinseg predict --checkpoints_path P --input_path DIR
  --output_path OUT`` through the CLI's ``main`` (reads, predicts, writes
  class-id PNGs, in the automatic precision and in float32).

Each side first predicts a one-image folder (warm-up), then times a
one-image folder and the whole folder; the time per image is the
difference over the extra images, so loading the model and tracing the
network (once per command) do not count; that fixed cost is printed
apart. Labels are compared pixel by pixel (keras-segmentation's class map,
at half resolution, brought to the image by nearest neighbour as its own
PNGs are). Not run by CI; takes a few minutes on 2 CPU cores.

    .venv/bin/python bench/bench_end_to_end.py [--precision auto,float32]
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_model import RESULT, worker_result

SEED = Path(__file__).parents[2] / "shared" / "data" / "seed-thin-sections"
HEIGHT, WIDTH = 416, 608


# -- the workers (one process per side) --------------------------------------
def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def kseg_worker(job) -> dict:
    from bench_model import build_kseg

    from napari_thinseg.model.checkpoints import read_config

    config = read_config(job["prefix"])
    model, tf_version, keras_version = build_kseg(
        config.n_classes, HEIGHT, WIDTH
    )
    model.load_weights(job["weights"])
    from keras_segmentation.predict import predict_multiple

    def run(folder, out):
        Path(out).mkdir(parents=True, exist_ok=True)
        return predict_multiple(model, inp_dir=folder, out_dir=out)

    run(job["one"], job["out"] + "-warm")
    one = timed(lambda: run(job["one"], job["out"] + "-one"))
    maps = {}
    every = timed(lambda: maps.setdefault("prs", run(job["all"], job["out"])))
    np.save(job["out"] + ".npy", np.stack(maps["prs"]))
    return {"one": one, "all": every, "versions": keras_version}


def ours_worker(job) -> dict:
    import keras

    from napari_thinseg.cli import main

    def run(folder, out):
        code = main(
            [
                "predict",
                "--checkpoints_path",
                job["prefix"],
                "--input_path",
                folder,
                "--output_path",
                out,
                "--precision",
                job["precision"],
            ]
        )
        if code:
            raise SystemExit(f"thinseg predict failed with {code}")

    run(job["one"], job["out"] + "-warm")
    one = timed(lambda: run(job["one"], job["out"] + "-one"))
    every = timed(lambda: run(job["all"], job["out"]))
    return {"one": one, "all": every, "versions": f"Keras {keras.__version__}"}


def worker(side: str, job_path: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    job = json.loads(Path(job_path).read_text())
    if side == "keras-segmentation":
        import importlib.util

        oracle_path = Path(__file__).parents[1] / "tests" / "oracle"
        spec = importlib.util.spec_from_file_location(
            "kseg_oracle", oracle_path / "kseg_oracle.py"
        )
        oracle = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(oracle)
        oracle.alias_keras()
        result = kseg_worker(job)
    else:
        result = ours_worker(job)
    print(RESULT + json.dumps(result), flush=True)


# -- the set-up and the report -----------------------------------------------
def make_inputs(root: Path) -> tuple[Path, Path, list[str]]:
    from napari_thinseg.imaging.convert import rgb8
    from napari_thinseg.imaging.files import read_image, write_png
    from napari_thinseg.imaging.resize import resize_bilinear

    every, one = root / "images", root / "one"
    every.mkdir()
    one.mkdir()
    names = []
    for path in sorted((SEED / "images").glob("*.png")):
        image = resize_bilinear(rgb8(read_image(path))[..., :3], HEIGHT, WIDTH)
        write_png(every / path.name, image)
        names.append(path.name)
    write_png(one / names[0], read_image(every / names[0]))
    return every, one, names


def make_checkpoint(root: Path) -> tuple[str, str]:
    """The default model's weights as a 416 x 608 float32 checkpoint."""
    from dataclasses import replace

    from napari_thinseg.model import checkpoints as ck
    from napari_thinseg.model.vgg_unet import rebuild

    model, config, _ = ck.load_model(ck.default_model_prefix())
    config = replace(config, input_height=HEIGHT, input_width=WIDTH)
    twin = rebuild(model, config, HEIGHT, WIDTH, "float32")
    prefix = root / "checkpoint" / "default_416x608"
    prefix.parent.mkdir()
    ck.write_config(prefix, config)
    weights = ck.save_checkpoint(prefix, 0, twin)
    return str(prefix), str(weights)


def run_side(side: str, job: dict, job_path: Path) -> dict:
    job_path.write_text(json.dumps(job))
    cmd = [sys.executable, __file__, "--worker", side, str(job_path)]
    return worker_result(side, cmd, cwd=Path(__file__).parent)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--precision", default="auto,float32")
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    if not (SEED / "images").is_dir():
        sys.exit(f"needs the seed thin sections in {SEED}")
    from napari_thinseg.imaging.files import read_annotation
    from napari_thinseg.model.backend import resolve_precision

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        every, one, names = make_inputs(root)
        prefix, weights = make_checkpoint(root)
        n = len(names)
        print(
            f"{n} seed thin sections resized to {HEIGHT} x {WIDTH}; the "
            f"default model's weights as a {HEIGHT} x {WIDTH} checkpoint; "
            f"{os.cpu_count()} CPU cores"
        )
        base = {"prefix": prefix, "weights": weights}
        base.update(one=str(one), all=str(every))
        sides = [("keras-segmentation", None)] + [
            ("ours", v) for v in args.precision.split(",") if v
        ]
        results = {}
        for side, precision in sides:
            out = root / f"out-{side}-{precision}"
            job = dict(base, out=str(out), precision=precision)
            r = run_side(side, job, root / "job.json")
            r["per_image"] = (r["all"] - r["one"]) / (n - 1)
            r["fixed"] = r["one"] - r["per_image"]
            r["out"] = out
            key = (
                side
                if precision is None
                else (f"ours {resolve_precision(precision)}")
            )
            results[key] = r
        kseg = results.pop("keras-segmentation")
        kseg_maps = np.load(str(kseg["out"]) + ".npy")
        print(
            f"keras-segmentation predict_multiple ({kseg['versions']}): "
            f"{kseg['per_image']:.3f} s/image, "
            f"{1 / kseg['per_image']:.2f} images/s"
        )
        for key, r in results.items():
            agree = []
            for name, pr in zip(names, kseg_maps, strict=True):
                ours = read_annotation(r["out"] / name)
                theirs = np.repeat(np.repeat(pr, 2, 0), 2, 1)
                agree.append(float((ours == theirs).mean()))
            print(
                f"thinseg predict, {key} ({r['versions']}): "
                f"{r['per_image']:.3f} s/image, "
                f"{1 / r['per_image']:.2f} images/s = "
                f"{kseg['per_image'] / r['per_image']:.2f}x "
                f"keras-segmentation; once per command {r['fixed']:.1f} s "
                f"(load + trace); labels agree on "
                f"{100 * np.mean(agree):.1f} % of pixels "
                f"(lowest image {100 * min(agree):.1f} %)"
            )


if __name__ == "__main__":
    main()
