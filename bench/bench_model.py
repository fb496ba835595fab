"""How fast our VGG-UNet runs next to keras-segmentation's, on this machine.

Prints, measured in one run: numpy's float32 matrix product (SGEMM) as the
machine's attainable GFLOP/s; then, for keras-segmentation 0.3.0 (unmodified,
on tf-keras, in its own process) and for ours (Keras 3, in its own process),
the predict time per image (``predict_on_batch``, batch 1, as
keras-segmentation's ``predict`` does) and the train-step time
(``train_on_batch`` of a compiled model, adadelta as keras-segmentation
trains; categorical CE on one-hot labels there, sparse CE here), each with
its GFLOP/s and its share of SGEMM. A forward pass is 187.8 GFLOP at
416 x 608 (the convolutions, counted from the model and scaling with the
area); a train step is taken as 3 forward passes per image. Every timing
is warmed up at its exact batch shape first (Keras retraces on a new
shape). Not run by CI.

    .venv/bin/python bench/bench_model.py [--height 416] [--width 608]
        [--batch 2] [--repeat 3] [--classes 6]
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ORACLE = Path(__file__).parents[1] / "tests" / "oracle" / "kseg_oracle.py"
SIDES = ("keras-segmentation", "ours")
RESULT = "BENCH-RESULT "


# -- measuring ---------------------------------------------------------------
def timings(fn, repeat: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def sgemm(n: int = 2048, repeat: int = 5) -> tuple[float, float]:
    """Best seconds and GFLOP/s of an n^3 float32 matrix product."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    best = min(timings(lambda: a @ b, repeat, warmup=1))
    return best, 2 * n**3 / best / 1e9


def conv_gflop(model) -> float:
    """Forward GFLOP of the convolutions (2 per multiply-add)."""
    total = 0
    for layer in model.layers:
        if type(layer).__name__ == "Conv2D":
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            total += 2 * h * w * kh * kw * c_in * c_out
    return total / 1e9


# -- the workers (one process per side) --------------------------------------
def build_kseg(n_classes, height, width):
    import functools

    spec = importlib.util.spec_from_file_location("kseg_oracle", ORACLE)
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    oracle.alias_keras()  # keras -> tf_keras, in this process only
    import tensorflow as tf
    from keras_segmentation.models.unet import _unet
    from keras_segmentation.models.vgg16 import get_vgg_encoder

    model = _unet(
        n_classes,
        functools.partial(get_vgg_encoder, pretrained=None),
        input_height=height,
        input_width=width,
    )
    model.compile(loss="categorical_crossentropy", optimizer="adadelta")
    tf_keras = sys.modules["keras"]
    return model, tf.__version__, f"tf-keras {tf_keras.__version__}"


def build_ours(n_classes, height, width):
    import keras
    import tensorflow as tf

    from napari_thinseg.model.vgg_unet import vgg_unet

    model = vgg_unet(n_classes, height, width)
    model.compile(loss="sparse_categorical_crossentropy", optimizer="adadelta")
    return model, tf.__version__, "Keras " + keras.__version__


def worker(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    h, w, c, b = args.height, args.width, args.classes, args.batch
    build = build_kseg if args.worker == SIDES[0] else build_ours
    model, tf_version, keras_version = build(c, h, w)
    rng = np.random.default_rng(0)
    x = (rng.random((b, h, w, 3), dtype=np.float32) * 255 - 120).astype(
        np.float32
    )
    labels = rng.integers(0, c, (b, (h // 2) * (w // 2)))
    if args.worker == SIDES[0]:
        y = np.eye(c, dtype=np.float32)[labels]  # keras-seg's one-hot
    else:
        y = labels.astype(np.int32)
    x1 = x[:1]
    predict = timings(lambda: model.predict_on_batch(x1), args.repeat)
    train = timings(lambda: model.train_on_batch(x, y), args.repeat)
    print(
        RESULT
        + json.dumps(
            {
                "tensorflow": tf_version,
                "keras": keras_version,
                "params": int(model.count_params()),
                "gflop": conv_gflop(model),
                "predict": predict,
                "train": train,
            }
        ),
        flush=True,
    )


# -- the report --------------------------------------------------------------
def run_side(side: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        side,
        "--height",
        str(args.height),
        "--width",
        str(args.width),
        "--batch",
        str(args.batch),
        "--repeat",
        str(args.repeat),
        "--classes",
        str(args.classes),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT) :])
    sys.exit(
        f"{side} failed (exit {proc.returncode}):\n"
        f"{(proc.stdout + proc.stderr)[-3000:]}"
    )


def blas_name() -> str:
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:
        return "unknown BLAS"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--height", type=int, default=416)
    p.add_argument("--width", type=int, default=608)
    p.add_argument(
        "--batch",
        type=int,
        default=2,
        help="train-step batch (predict runs batch 1)",
    )
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--classes", type=int, default=6)
    p.add_argument("--sgemm-n", type=int, default=2048)
    p.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("height", "width"):
        v = getattr(args, name)
        if v < 32 or v % 32:
            p.error(f"--{name} must be a multiple of 32, got {v}")
    if args.worker:
        worker(args)
        return

    t_start = time.perf_counter()
    n = args.sgemm_n
    cpu = platform.processor() or platform.machine()
    print(
        f"machine: {os.cpu_count()} CPU cores, {cpu}; "
        f"numpy {np.__version__} ({blas_name()})"
    )
    best, sgemm_gflops = sgemm(n)
    print(
        f"numpy SGEMM {n}^3 float32: best {best * 1e3:.1f} ms = "
        f"{sgemm_gflops:.1f} GFLOP/s"
    )
    try:
        load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"load average before: {load}")
    except OSError:
        pass
    print(
        f"VGG-UNet {args.classes} classes at {args.height} x "
        f"{args.width}; predict batch 1, train batch {args.batch}, "
        f"median (best) of {args.repeat} after warm-up"
    )
    results = {}
    for side in SIDES:
        r = results[side] = run_side(side, args)
        fwd = r["gflop"]
        pred_med = statistics.median(r["predict"])
        train_med = statistics.median(r["train"])
        pred_rate = fwd / pred_med
        train_rate = 3 * fwd * args.batch / train_med
        print(
            f"{side:>18}: {r['keras']}, TF {r['tensorflow']}, "
            f"{r['params']:,} params, forward {fwd:.1f} GFLOP"
        )
        print(
            f"{'':>18}  predict {pred_med:7.3f} s/image "
            f"({min(r['predict']):.3f})  {pred_rate:6.1f} GFLOP/s "
            f"{100 * pred_rate / sgemm_gflops:5.1f} % of SGEMM"
        )
        print(
            f"{'':>18}  train   {train_med:7.3f} s/step  "
            f"({min(r['train']):.3f})  {train_rate:6.1f} GFLOP/s "
            f"{100 * train_rate / sgemm_gflops:5.1f} % of SGEMM "
            f"({train_med / args.batch:.3f} s/image)"
        )
    k, o = (results[s] for s in SIDES)
    ratio = {
        key: statistics.median(o[key]) / statistics.median(k[key])
        for key in ("predict", "train")
    }
    print(
        f"ours / keras-segmentation time: predict {ratio['predict']:.2f}, "
        f"train {ratio['train']:.2f}"
    )
    _, again = sgemm(n)
    print(
        f"numpy SGEMM again after the models: {again:.1f} GFLOP/s "
        "(a big difference means a busy machine: rerun)"
    )
    print(f"(bench wall time {time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
