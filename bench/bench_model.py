"""How fast our VGG-UNet runs next to keras-segmentation's, on this machine.

Prints, measured in one run: numpy's float32 matrix product (SGEMM) and,
where the CPU has it, a bfloat16 matrix product (TensorFlow) as the
machine's attainable GFLOP/s; then, for keras-segmentation 0.3.0
(unmodified, on tf-keras, in its own process) and for each variant of ours
(Keras 3, each in its own process), the predict time per image (batch 1:
``predict_on_batch`` for keras-segmentation as its ``predict`` does, our
traced inference function for ours) and the train-step time
(``train_on_batch`` of a compiled model, adadelta as keras-segmentation
trains; categorical CE on one-hot labels there, sparse CE here), each with
its GFLOP/s, its share of SGEMM and its speed-up over keras-segmentation.

A variant of ours is a precision (float32, bfloat16, float16) with
optional ``+xla`` (XLA: ``jit_compile=True`` for both the train step and
the inference function) and ``+no-onednn`` (``TF_ENABLE_ONEDNN_OPTS=0``:
TensorFlow's own kernels instead of oneDNN's): the trials of which
settings to ship; ``+frozen2`` trains with the encoder's first 2 VGG
blocks frozen (``TrainSettings.frozen_blocks``; its train GFLOP/s still
counts 3 forward passes, so read its speed-up). A forward pass is 187.8
GFLOP at 416 x 608 (the convolutions, counted from the model and scaling
with the area); a train step is taken as 3 forward passes per image.
Every timing is warmed up at its exact batch shape first (Keras retraces
on a new shape). Not run by CI.

    .venv/bin/python bench/bench_model.py [--height 416] [--width 608]
        [--batch 2] [--repeat 3] [--classes 6]
        [--ours float32,bfloat16,bfloat16+xla,bfloat16+no-onednn]
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
SIDES = ("keras-segmentation",)
OURS = "float32,bfloat16,bfloat16+xla,bfloat16+no-onednn"
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


def bf16_matmul(n: int = 2048, repeat: int = 5) -> float | None:
    """GFLOP/s of an n^3 bfloat16 matrix product in TensorFlow (a
    subprocess would be cleaner; this one is cheap), None where the CPU
    has no native bfloat16."""
    from napari_thinseg.model.backend import BF16_CPU_FLAGS, cpu_flags

    if not BF16_CPU_FLAGS & cpu_flags():
        return None
    from napari_thinseg.model.backend import tensorflow

    tf = tensorflow()
    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((n, n), dtype=np.float32), tf.bfloat16)
    b = tf.constant(rng.random((n, n), dtype=np.float32), tf.bfloat16)
    product = tf.function(lambda: tf.matmul(a, b))
    best = min(timings(lambda: product().numpy(), repeat, warmup=1))
    return 2 * n**3 / best / 1e9


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


FROZEN = tuple(f"frozen{n}" for n in range(1, 5))


def parse_variant(text: str) -> tuple[str, bool, bool, int]:
    """``precision[+xla][+no-onednn][+frozenN]`` -> (precision, xla,
    onednn, frozen encoder blocks)."""
    precision, *options = text.split("+")
    unknown = set(options) - {"xla", "no-onednn", *FROZEN}
    if precision not in ("float32", "bfloat16", "float16") or unknown:
        raise argparse.ArgumentTypeError(f"unknown variant {text!r}")
    frozen = max(
        (FROZEN.index(o) + 1 for o in options if o in FROZEN), default=0
    )
    return precision, "xla" in options, "no-onednn" not in options, frozen


def build_ours(n_classes, height, width, variant):
    import keras
    import tensorflow as tf

    from napari_thinseg.model.backend import dtype_policy
    from napari_thinseg.model.vgg_unet import (
        freeze_encoder,
        inference_function,
        vgg_unet,
    )

    precision, xla, _, frozen = parse_variant(variant)
    with dtype_policy(precision):
        model = vgg_unet(n_classes, height, width)
    freeze_encoder(model, frozen)
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer="adadelta",
        jit_compile=xla,
    )
    forward = inference_function(model, 1, jit_compile=xla)
    return model, forward, tf.__version__, "Keras " + keras.__version__


def worker(args) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    h, w, c, b = args.height, args.width, args.classes, args.batch
    if args.worker == SIDES[0]:
        model, tf_version, keras_version = build_kseg(c, h, w)
    else:
        model, forward, tf_version, keras_version = build_ours(
            c, h, w, args.worker
        )
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
    if args.worker == SIDES[0]:
        predict = timings(lambda: model.predict_on_batch(x1), args.repeat)
    else:
        tiles = x1.clip(0, 255).astype(np.uint8)
        predict = timings(lambda: forward(tiles).numpy(), args.repeat)
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
    env = dict(os.environ)
    if side != SIDES[0] and not parse_variant(side)[2]:
        env["TF_ENABLE_ONEDNN_OPTS"] = "0"
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
    return worker_result(side, cmd, env=env)


def worker_result(side: str, cmd: list, **run_kwargs) -> dict:
    """Run a worker process; its one ``BENCH-RESULT`` JSON line, or exit
    with the end of its output."""
    proc = subprocess.run(cmd, capture_output=True, text=True, **run_kwargs)
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
    p.add_argument(
        "--ours",
        default=OURS,
        help=f"comma-separated variants of ours (default {OURS})",
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    for name in ("height", "width"):
        v = getattr(args, name)
        if v < 32 or v % 32:
            p.error(f"--{name} must be a multiple of 32, got {v}")
    variants = [v for v in args.ours.split(",") if v]
    for v in variants + ([args.worker] if args.worker else []):
        if v != SIDES[0]:
            try:
                parse_variant(v)
            except argparse.ArgumentTypeError as exc:
                p.error(str(exc))
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
    bf16 = bf16_matmul(n)
    if bf16 is not None:
        print(f"TensorFlow bfloat16 matmul {n}^3: {bf16:.1f} GFLOP/s")
    results = {}
    for side in SIDES + tuple(variants):
        r = results[side] = run_side(side, args)
        fwd = r["gflop"]
        pred_med = statistics.median(r["predict"])
        train_med = statistics.median(r["train"])
        pred_rate = fwd / pred_med
        train_rate = 3 * fwd * args.batch / train_med
        if side == SIDES[0]:
            head = f"{side}: {r['keras']}, TF {r['tensorflow']}"
        else:
            head = f"ours {side}: {r['keras']}, TF {r['tensorflow']}"
        print(f"{head}, {r['params']:,} params, forward {fwd:.1f} GFLOP")
        base = results[SIDES[0]]
        # a bfloat16 network is measured against the bfloat16 peak
        low = side != SIDES[0] and parse_variant(side)[0] == "bfloat16"
        peak, peak_name = (
            (bf16, "bf16 mm") if low and bf16 else (sgemm_gflops, "SGEMM")
        )
        for key, unit, rate in (
            ("predict", "s/image", pred_rate),
            ("train", "s/step ", train_rate),
        ):
            med = statistics.median(r[key])
            speedup = statistics.median(base[key]) / med
            print(
                f"    {key:<7} {med:7.3f} {unit} ({min(r[key]):.3f})  "
                f"{rate:6.1f} GFLOP/s {100 * rate / peak:5.1f} % "
                f"of {peak_name}  {speedup:4.2f}x keras-segmentation"
            )
    base = results[SIDES[0]]

    def speedup(variant, key):
        return statistics.median(base[key]) / statistics.median(
            results[variant][key]
        )

    print(
        "speed-up over keras-segmentation (its time / ours), "
        "predict / train: "
        + "; ".join(
            f"{v} {speedup(v, 'predict'):.2f} / {speedup(v, 'train'):.2f}"
            for v in variants
        )
    )
    _, again = sgemm(n)
    print(
        f"numpy SGEMM again after the models: {again:.1f} GFLOP/s "
        "(a big difference means a busy machine: rerun)"
    )
    print(f"(bench wall time {time.perf_counter() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
