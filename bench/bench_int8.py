"""Would int8 inference beat bfloat16 here? A trial, in one run.

The VGG-UNet is converted to OpenVINO (``openvino.convert_model`` on a
``tf.function`` of any tile size, uint8 tiles in and probabilities at
the tile's resolution out, as the shipped inference function; Keras'
``UpSampling2D`` traced as a nearest-neighbour resize, which OpenVINO's
int8 convolutions can follow, where its repeat ops left the decoder's
convolutions in bfloat16) and quantized by NNCF (``nncf.quantize``,
post-training: activations asymmetric, ``QuantizationPreset.MIXED``,
since the decoder's batch normalisations give signed values; activation
ranges from quantiles, ``RangeEstimatorParametersSet.MEAN_QUANTILE``;
the first convolution, which sees the image, and the logits stay in
float; ``--int8`` variants keep more in float, the decoder's four
convolutions above all, which the sandstone model needs), calibrated
on ``--calibration`` crops (flipped and turned) of the photos each model
was trained on: the seed thin sections for the default model,
sandstone-minerals for the sandstone model.

Then, in one process:

- speed: a ``--side`` x ``--side`` image (the packaged seed photo, flipped
  and turned, tiled) through the product's tiling
  (:func:`~napari_thinseg.inference.tiling.predict_margin_tiles`, the tile
  shape fitted to the image) in TensorFlow float32, TensorFlow bfloat16,
  OpenVINO float32 (``--openvino_float``) and each OpenVINO int8 variant
  (``--int8``), interleaved ``--rounds`` times (best of each: the machine
  is shared); px/s, s per MPix, GFLOP/s of the network's convolutions,
  the speed-up over float32 and over bfloat16, beside the TensorFlow
  matrix-product rates in float32 and bfloat16 (the header says whether
  the CPU's bfloat16 is native, AVX512-BF16 / AMX, or emulated, where
  bfloat16 is slower than float32 and "x bfloat16" flatters int8);
- agreement of the class maps with TensorFlow float32's (same tiling) on
  the data sets (default model: the 8 seed thin sections, target >= 99 %
  of the pixels; sandstone model: sandstone-minerals, target >= 98 %),
  per photo and overall, bfloat16 beside each int8 variant; the verdict
  takes the lowest photo.

``--int8`` takes variants ``preset/float/hint``, comma-separated: NNCF's
preset (``mixed``: asymmetric activations; ``performance``: symmetric),
the convolutions left in float (``first+last``, ``first``, ``last``,
``decoder``, ``penultimate``, joined by ``+``, or ``none``), OpenVINO's
``INFERENCE_PRECISION_HINT`` for the rest (``f32``, ``bf16``, ``-`` its
default) and, optionally, the activation ranges (``quantile``, the
default, or ``minmax``); ``--threads`` sets
``INFERENCE_NUM_THREADS``; ``--calibration`` / ``--crop`` the crops.

int8 ships only if it is >= 1.6x bfloat16 with the agreement met. Needs
the optional packages (``pip install openvino nncf``); not run by CI.

    .venv/bin/python bench/bench_int8.py [--side 4000] [--rounds 2]
        [--calibration 64] [--crop 192] [--models default,sandstone]
        [--int8 mixed/first+last/-,...] [--openvino_float] [--threads N]
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
from bench_model import conv_gflop

ROOT = Path(__file__).parents[1]
SAMPLE = ROOT / "src/napari_thinseg/data/seed/sandstone_2.png"
DATA = Path(os.environ.get("THINSEG_DATA", "/work/shared/data"))
SETS = {  # model -> (photos it was trained on, target agreement)
    "default": (DATA / "seed-thin-sections" / "images", 0.99),
    "sandstone": (DATA / "sandstone-minerals" / "images", 0.98),
}


# -- OpenVINO and NNCF --------------------------------------------------------
def openvino_model(model, config):
    """``model`` as an OpenVINO model of any tile size: uint8 tiles
    ``(1, h, w, channels)`` in, probabilities ``(1, h, w, n)`` out."""
    import keras
    import openvino as ov

    from napari_thinseg.model.backend import tensorflow
    from napari_thinseg.model.vgg_unet import input_mean

    tf = tensorflow()

    class Up2(keras.layers.Layer):
        """``UpSampling2D(2)`` as a nearest-neighbour resize (the same
        values), which OpenVINO's low-precision passes see through."""

        def call(self, x):
            s = tf.shape(x)
            size = (2 * s[1], 2 * s[2])
            return tf.image.resize(x, size, method="nearest")

    def clone(layer):
        if isinstance(layer, keras.layers.UpSampling2D):
            return Up2(name=layer.name, dtype=layer.dtype_policy)
        return layer.__class__.from_config(layer.get_config())

    c, n = config.input_channels, config.n_classes
    anysize = keras.models.clone_model(
        model, input_tensors=keras.Input((None, None, c)), clone_function=clone
    )
    anysize.set_weights(model.get_weights())
    mean = tf.constant(input_mean(c), tf.float32)

    @tf.function(input_signature=[tf.TensorSpec((1, None, None, c), tf.uint8)])
    def probabilities(tiles):
        h, w = tf.shape(tiles)[1], tf.shape(tiles)[2]
        out = anysize(tf.cast(tiles, tf.float32) - mean, training=False)
        out = tf.reshape(out, (1, h // 2, w // 2, n))
        return tf.image.resize(out, (h, w), method="bilinear")

    converted = ov.convert_model(probabilities)
    return ov.Model([converted.output(0)], converted.get_parameters())


def calibration_crops(photos, n: int, side: int, seed: int = 0):
    """``n`` random ``side`` x ``side`` crops of ``photos``, flipped and
    turned in turn, as ``(1, side, side, 3)`` uint8 batches."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        p = photos[k % len(photos)]
        s = min(side, *p.shape[:2]) // 32 * 32
        y = rng.integers(0, p.shape[0] - s + 1)
        x = rng.integers(0, p.shape[1] - s + 1)
        crop = np.rot90(p[y : y + s, x : x + s], k % 4)
        crop = crop[::-1] if (k // 4) % 2 else crop
        out.append(np.ascontiguousarray(crop[None]))
    return out


PRESETS = ("mixed", "performance")
FLOAT_LAYERS = ("first", "last")  # the default
LAYER_CHOICES = ("first", "decoder", "penultimate", "last")
RANGES = ("quantile", "minmax")


def parse_variant(spec: str) -> dict:
    """``preset/float/hint/range`` (``mixed/first+last/f32/quantile``;
    later parts may be left out): NNCF's preset, the convolutions left in
    float (``first`` sees the image, ``decoder`` the decoder's four,
    ``penultimate`` the last of them, ``last`` gives the logits; ``none``),
    OpenVINO's inference precision hint for what is not int8 (``f32``,
    ``bf16``, or ``-`` for the device's default) and the activation
    ranges (``quantile``: NNCF's MEAN_QUANTILE; ``minmax``: MINMAX)."""
    parts = (spec.split("/") + ["", "", "", ""])[:4]
    preset = parts[0] or "mixed"
    floats = parts[1] or "first+last"
    hint = parts[2] or "-"
    ranges = parts[3] or "quantile"
    if ranges not in RANGES:
        raise SystemExit(f"{spec}: range must be one of {RANGES}")
    if preset not in PRESETS:
        raise SystemExit(f"{spec}: preset must be one of {PRESETS}")
    kept = () if floats == "none" else tuple(floats.split("+"))
    if set(kept) - set(LAYER_CHOICES):
        raise SystemExit(
            f"{spec}: float layers: {'+'.join(LAYER_CHOICES)} or none"
        )
    if hint not in ("f32", "bf16", "-"):
        raise SystemExit(f"{spec}: hint must be f32, bf16 or -")
    return {
        "label": f"{preset}/{'+'.join(kept) or 'none'}/{hint}"
        + ("" if ranges == "quantile" else f"/{ranges}"),
        "preset": preset,
        "float": kept,
        "hint": hint,
        "range": ranges,
    }


def quantize(
    ov_model,
    crops,
    preset="mixed",
    float_layers=FLOAT_LAYERS,
    ranges="quantile",
):
    """NNCF post-training quantization on ``crops``; the convolutions
    named in ``float_layers`` (see :func:`parse_variant`) left in float."""
    import nncf
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
    )
    from nncf.quantization.range_estimator import (
        RangeEstimatorParametersSet,
    )

    # in topological order: the image's convolution first, the logits'
    # last (the decoder's carry the batch normalisation's name, Multiply_*)
    convs = [
        op.get_friendly_name()
        for op in ov_model.get_ordered_ops()
        if op.get_type_name() == "Convolution"
    ]
    assert len(convs) == 15, convs  # 10 encoder, 4 decoder, the logits
    picks = {
        "first": convs[:1],
        "decoder": convs[10:14],
        "penultimate": convs[13:14],
        "last": convs[14:],
    }
    names = sorted({n for k in float_layers for n in picks[k]})
    return nncf.quantize(
        ov_model,
        nncf.Dataset(crops),
        preset={
            "mixed": nncf.QuantizationPreset.MIXED,
            "performance": nncf.QuantizationPreset.PERFORMANCE,
        }[preset],
        subset_size=len(crops),
        ignored_scope=nncf.IgnoredScope(names=names) if names else None,
        advanced_parameters=AdvancedQuantizationParameters(
            activations_range_estimator_params={
                "quantile": RangeEstimatorParametersSet.MEAN_QUANTILE,
                "minmax": RangeEstimatorParametersSet.MINMAX,
            }[ranges]
        ),
    )


def openvino_forward(core, ov_model, shape, config=None):
    """A tile ``forward`` of ``ov_model`` compiled at ``shape`` with the
    CPU ``config`` (properties)."""
    fixed = ov_model.clone()
    channels = fixed.input(0).get_partial_shape()[3].get_length()
    fixed.reshape({0: [1, *shape, channels]})
    compiled = core.compile_model(fixed, "CPU", config or {})
    request = compiled.create_infer_request()
    out = compiled.output(0)

    def forward(tiles):
        request.infer({0: tiles})
        return request.get_tensor(out).data.copy()

    return forward


def cpu_config(hint, threads):
    out = {}
    if hint != "-":
        out["INFERENCE_PRECISION_HINT"] = {"f32": "f32", "bf16": "bf16"}[hint]
    if threads:
        out["INFERENCE_NUM_THREADS"] = threads
    return out


def matmul_gflops(dtype: str, n: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of an n^3 matrix product in TensorFlow in ``dtype``
    (bfloat16 runs where the CPU has no native bfloat16 too, emulated)."""
    from bench_model import timings

    from napari_thinseg.model.backend import tensorflow

    tf = tensorflow()
    rng = np.random.default_rng(0)
    a = tf.constant(rng.random((n, n), dtype=np.float32), getattr(tf, dtype))
    b = tf.constant(rng.random((n, n), dtype=np.float32), getattr(tf, dtype))
    product = tf.function(lambda: tf.matmul(a, b))
    best = min(timings(lambda: product().numpy(), repeat, warmup=1))
    return 2 * n**3 / best / 1e9


# -- measuring ----------------------------------------------------------------
def tiled(forward, image, shape, exclude_zero=False):
    """Class map of ``image`` through the product's margin tiles."""
    from napari_thinseg.inference.tiling import (
        margin_for,
        predict_margin_tiles,
    )

    gen = predict_margin_tiles(
        forward, image, shape, margin_for(shape), False, exclude_zero
    )
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value[0]


def big_image(side: int) -> np.ndarray:
    """The seed photo's 512 x 512 corner, flipped and turned, tiled."""
    from napari_thinseg.imaging.files import read_image

    photo = read_image(SAMPLE)[..., :3][:512, :512]
    variants = [np.rot90(p, k) for p in (photo, photo[::-1]) for k in range(4)]
    n = -(-side // 512)
    rows = [
        np.concatenate([variants[(7 * (r * n + c)) % 8] for c in range(n)], 1)
        for r in range(n)
    ]
    return np.ascontiguousarray(np.concatenate(rows)[:side, :side])


def read_photos(folder: Path):
    from napari_thinseg.imaging.convert import rgb8
    from napari_thinseg.imaging.files import read_image

    files = sorted(folder.glob("*.png"), key=lambda p: int(p.stem))
    return [(f.stem, rgb8(read_image(f))[..., :3]) for f in files]


def load(name):
    from napari_thinseg.model import checkpoints as ck

    model, config, _ = ck.load_model(ck.shipped_model_prefix(name))
    return model, config


NO_BF16 = "emulated: no avx512_bf16 / amx_bf16"


def speed(model, config, int8s, core, side, rounds, peaks, ov_float=None):
    """TensorFlow float32 and bfloat16 and each OpenVINO int8 variant
    (``{label: (model, cpu config)}``) on a ``side`` x ``side`` image,
    interleaved ``rounds`` times; the table; ``{label: x bfloat16}``."""
    from napari_thinseg.inference.predict import margin_forward, tile_shape
    from napari_thinseg.inference.tiling import margin_for, margin_starts
    from napari_thinseg.model.backend import BF16_CPU_FLAGS, cpu_flags
    from napari_thinseg.model.vgg_unet import rebuild

    image = big_image(side)
    shape = tile_shape(model, config, side, side)
    m = margin_for(shape)
    n_tiles = len(margin_starts(side, shape[0], m)) * len(
        margin_starts(side, shape[1], m)
    )
    gflop = conv_gflop(rebuild(model, config, *shape, "float32")) * n_tiles
    forwards = {
        "TensorFlow float32": margin_forward(model, config, shape, "float32"),
        "TensorFlow bfloat16": margin_forward(
            model, config, shape, "bfloat16"
        ),
    }
    if ov_float is not None:
        forwards["OpenVINO float32"] = openvino_forward(
            core, ov_float[0], shape, ov_float[1]
        )
    for label, (q8, cfg) in int8s.items():
        forwards[f"OpenVINO int8 {label}"] = openvino_forward(
            core, q8, shape, cfg
        )
    warm = np.zeros((1, *shape, 3), np.uint8)
    for forward in forwards.values():
        forward(warm)
    best = dict.fromkeys(forwards, float("inf"))
    maps = {}
    for r in range(rounds):
        for name, forward in forwards.items():
            t0 = time.perf_counter()
            maps[name] = tiled(forward, image, shape)
            dt = time.perf_counter() - t0
            best[name] = min(best[name], dt)
            print(
                f"  round {r + 1} {name}: {dt:.1f} s "
                f"(load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    ref = maps["TensorFlow float32"]
    bf16, f32 = best["TensorFlow bfloat16"], best["TensorFlow float32"]
    mpix = side * side / 1e6
    native = sorted(BF16_CPU_FLAGS & cpu_flags())
    print(
        f"\n{side} x {side} image, {n_tiles} tiles of {shape[0]} x "
        f"{shape[1]} ({gflop / n_tiles / (shape[0] * shape[1]) * 1e3:.3f} "
        f"MFLOP a tile pixel, {gflop * 1e3 / (side * side):.3f} an image "
        f"pixel); TensorFlow matrix product {peaks['float32']:.0f} GFLOP/s "
        f"float32, {peaks['bfloat16']:.0f} bfloat16 "
        f"({'native: ' + ', '.join(native) if native else NO_BF16}); "
        f"best of {rounds}, load average at the end "
        + " ".join(f"{v:.1f}" for v in os.getloadavg())
    )
    print(
        "| backend | s | px/s | s per MPix | GFLOP/s | x float32 | "
        "x bfloat16 | agrees with float32 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, s in best.items():
        agree = float((maps[name] == ref).mean())
        print(
            f"| {name} | {s:.1f} | {side * side / s / 1e3:.0f} k | "
            f"{s / mpix:.2f} | {gflop / s:.0f} | {f32 / s:.2f} | "
            f"{bf16 / s:.2f} | {100 * agree:.2f} % |",
            flush=True,
        )
    return {
        label: (
            bf16 / best[f"OpenVINO int8 {label}"],
            f32 / best[f"OpenVINO int8 {label}"],
        )
        for label in int8s
    }


def agreement(name, model, config, int8s, core, photos):
    """Per photo and overall: the share of pixels whose class matches
    TensorFlow float32's, for bfloat16 and each int8 variant."""
    from napari_thinseg.inference.predict import margin_forward, tile_shape

    exclude_zero = bool(config.trained_on.get("ignore_zero", False))
    labels = ["bfloat16", *int8s]
    counts = {k: [0, 0] for k in labels}
    worst = dict.fromkeys(labels, 1.0)
    for stem, photo in photos:
        shape = tile_shape(model, config, *photo.shape[:2])
        ref = tiled(
            margin_forward(model, config, shape, "float32"),
            photo,
            shape,
            exclude_zero,
        )
        forwards = {
            "bfloat16": margin_forward(model, config, shape, "bfloat16")
        }
        for label, (q8, cfg) in int8s.items():
            forwards[label] = openvino_forward(core, q8, shape, cfg)
        line = [f"  {name} {stem} ({photo.shape[1]} x {photo.shape[0]}):"]
        for label, forward in forwards.items():
            same = tiled(forward, photo, shape, exclude_zero) == ref
            counts[label][0] += int(same.sum())
            counts[label][1] += same.size
            worst[label] = min(worst[label], float(same.mean()))
            line.append(f"{label} {100 * same.mean():.2f} %")
        print(" ".join(line), flush=True)
    return {k: (a / b, worst[k]) for k, (a, b) in counts.items()}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--side", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--calibration", type=int, default=64)
    p.add_argument("--crop", type=int, default=192)
    p.add_argument("--models", default="default,sandstone")
    p.add_argument(
        "--int8",
        default="mixed/first+last/-,mixed/first+decoder+last/-",
        help="int8 variants, comma-separated preset/float/hint: preset "
        "mixed or performance; float first+last, first, last or none (the "
        "convolutions left in float); hint f32, bf16 or - (OpenVINO's "
        "default)",
    )
    p.add_argument(
        "--openvino_float",
        action="store_true",
        help="time the unquantized OpenVINO model (float32) too",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="OpenVINO inference threads (0: its default)",
    )
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import nncf
    import openvino as ov

    variants = [parse_variant(v) for v in args.int8.split(",")]
    core = ov.Core()
    print(
        f"OpenVINO {ov.__version__.split('-')[0]}, NNCF {nncf.__version__}; "
        f"{core.get_property('CPU', 'FULL_DEVICE_NAME')}, "
        f"{os.cpu_count()} CPU cores, OpenVINO capabilities "
        + "/".join(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        + "; load average "
        + " ".join(f"{v:.1f}" for v in os.getloadavg()),
        flush=True,
    )
    results, ratios = {}, None
    for name in args.models.split(","):
        folder, target = SETS[name]
        model, config = load(name)
        photos = read_photos(folder)
        crops = calibration_crops(
            [ph for _, ph in photos], args.calibration, args.crop
        )
        ov_model = openvino_model(model, config)
        quantized = {}  # (preset, float layers) -> model: hints share one
        int8s = {}
        for v in variants:
            key = (v["preset"], v["float"], v["range"])
            if key not in quantized:
                t0 = time.perf_counter()
                quantized[key] = quantize(ov_model, crops, *key)
                print(
                    f"{name} {v['label']}: quantized on {len(crops)} crops "
                    f"of {args.crop} px in {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )
            int8s[v["label"]] = (
                quantized[key],
                cpu_config(v["hint"], args.threads),
            )
        if name == "default" and args.side:
            peaks = {d: matmul_gflops(d) for d in ("float32", "bfloat16")}
            ov_float = (
                (ov_model, cpu_config("f32", args.threads))
                if args.openvino_float
                else None
            )
            ratios = speed(
                model,
                config,
                int8s,
                core,
                args.side,
                args.rounds,
                peaks,
                ov_float,
            )
        results[name] = (
            agreement(name, model, config, int8s, core, photos),
            target,
        )
    labels = [v["label"] for v in variants]
    print(
        "\n| model | photos | bfloat16 agrees | "
        + " | ".join(f"int8 {k} agrees" for k in labels)
        + " | target |"
    )
    print("|---|---|---|" + "---|" * len(labels) + "---|")
    ok = dict.fromkeys(labels, True)
    for name, (agree, target) in results.items():
        cells = []
        for k in ["bfloat16", *labels]:
            overall, lowest = agree[k]
            cells.append(f"{100 * overall:.2f} % (lowest {100 * lowest:.2f})")
            if k != "bfloat16":
                ok[k] &= lowest >= target
        print(
            f"| {name} | {SETS[name][0].parent.name} | "
            + " | ".join(cells)
            + f" | {100 * target:.0f} % |"
        )
    if ratios is not None:
        for k in labels:
            x_bf16, x_f32 = ratios[k]
            keep = x_bf16 >= 1.6 and ok[k]
            print(
                f"int8 {k}: {x_bf16:.2f}x bfloat16 (target 1.6x), "
                f"{x_f32:.2f}x float32; agreement (every photo) "
                f"{'met' if ok[k] else 'NOT met'}: "
                f"{'keep' if keep else 'drop'}"
            )
    print(
        "load average at the end "
        + " ".join(f"{v:.1f}" for v in os.getloadavg())
    )


if __name__ == "__main__":
    main()
