"""Would ONNX Runtime or OpenVINO predict faster than TensorFlow here?

The shipped default model's weights in the VGG-UNet at 416 x 608, batch 1,
measured in one process in turns (best of ``--repeat`` after warm-up):

- TensorFlow, the shipped inference path (``inference_function``: a
  traced ``tf.function``), in float32 and in bfloat16 (mixed precision);
- ONNX Runtime (CPU execution provider) on the model exported by Keras
  (``model.export(format="onnx")``, tf2onnx underneath), float32;
- OpenVINO on the model exported as a TensorFlow SavedModel and converted
  by ``openvino.convert_model``, with its CPU plugin's default inference
  precision (bfloat16 on CPUs that have it) and with f32 forced.

For each: seconds per image, GFLOP/s of the network's convolutions, the
speed-up over TensorFlow bfloat16, and the share of pixels whose class
agrees with TensorFlow float32. The optional packages are not part of the
project: ``pip install tf2onnx onnxruntime openvino`` to run this (a
backend that is not installed is reported and skipped). Not run by CI.

    .venv/bin/python bench/bench_backends.py [--repeat 5]
"""

import argparse
import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np
from bench_model import conv_gflop, timings

HEIGHT, WIDTH = 416, 608


def default_model_at(height, width, precision):
    from napari_thinseg.model import checkpoints as ck
    from napari_thinseg.model.vgg_unet import rebuild

    model, config, _ = ck.load_model(ck.default_model_prefix())
    return rebuild(model, config, height, width, precision), config


def sample_tile():
    from napari_thinseg._napari.sample_data import SEED_SAMPLE
    from napari_thinseg.imaging.convert import rgb8
    from napari_thinseg.imaging.files import read_image
    from napari_thinseg.imaging.resize import resize_bilinear

    image = rgb8(read_image(SEED_SAMPLE))[..., :3]
    return resize_bilinear(image, HEIGHT, WIDTH)[None]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from napari_thinseg.model.vgg_unet import (
        IMAGENET_MEAN_RGB,
        inference_function,
    )

    tiles = sample_tile()
    x = tiles.astype(np.float32) - np.asarray(IMAGENET_MEAN_RGB, np.float32)
    runs = {}  # name -> (seconds, class map at half resolution)
    model32, config = default_model_at(HEIGHT, WIDTH, "float32")
    gflop = conv_gflop(model32)

    def measure(name, forward, output=None):
        """Time ``forward``; ``output`` gives the network's own output
        (half resolution) where ``forward`` returns more."""
        out = forward() if output is None else output()
        best = min(timings(forward, args.repeat, warmup=1))
        half = np.asarray(out).reshape(HEIGHT // 2, WIDTH // 2, -1)
        runs[name] = (best, half)
        print(f"  {name}: {best:.3f} s/image", flush=True)

    print(
        f"VGG-UNet {config.n_classes} classes at {HEIGHT} x {WIDTH}, "
        f"{gflop:.1f} GFLOP a forward pass; {os.cpu_count()} CPU cores"
    )
    for precision in ("float32", "bfloat16"):
        model = (
            model32
            if precision == "float32"
            else default_model_at(HEIGHT, WIDTH, precision)[0]
        )
        forward = inference_function(model, 1)
        measure(
            f"TensorFlow {precision}",
            lambda f=forward: f(tiles).numpy(),
            lambda m=model: m(x, training=False).numpy(),
        )

    with tempfile.TemporaryDirectory() as tmp:
        if importlib.util.find_spec(
            "onnxruntime"
        ) and importlib.util.find_spec("tf2onnx"):
            import onnxruntime as ort

            path = Path(tmp) / "vgg_unet.onnx"
            model32.export(str(path), format="onnx", verbose=False)
            session = ort.InferenceSession(
                str(path), providers=["CPUExecutionProvider"]
            )
            name = session.get_inputs()[0].name
            measure(
                f"ONNX Runtime {ort.__version__} float32",
                lambda: session.run(None, {name: x})[0],
            )
        else:
            missing = "pip install tf2onnx onnxruntime"
            print(f"  ONNX Runtime: not installed ({missing})")
        if importlib.util.find_spec("openvino"):
            import openvino as ov

            saved = Path(tmp) / "saved_model"
            model32.export(str(saved), format="tf_saved_model", verbose=False)
            core = ov.Core()
            converted = ov.convert_model(str(saved))
            for hint in (None, "f32"):
                config_ov = (
                    {} if hint is None else {"INFERENCE_PRECISION_HINT": hint}
                )
                compiled = core.compile_model(converted, "CPU", config_ov)
                used = compiled.get_property("INFERENCE_PRECISION_HINT")
                measure(
                    f"OpenVINO {ov.__version__.split('-')[0]} CPU "
                    f"{used.get_type_name()}"
                    + (" (default)" if hint is None else ""),
                    lambda c=compiled: c(x)[0],
                )
        else:
            print("  OpenVINO: not installed (pip install openvino)")

    ref = runs["TensorFlow float32"][1].argmax(-1)
    bf16 = runs["TensorFlow bfloat16"][0]
    print(
        "backend: s/image, GFLOP/s, speed-up over TensorFlow bfloat16, "
        "classes agreeing with TensorFlow float32"
    )
    for name, (seconds, probs) in runs.items():
        agree = float((probs.argmax(-1) == ref).mean())
        print(
            f"{name:>34}: {seconds:.3f} s  {gflop / seconds:6.1f} GFLOP/s  "
            f"{bf16 / seconds:4.2f}x  {100 * agree:6.2f} %"
        )


if __name__ == "__main__":
    main()
