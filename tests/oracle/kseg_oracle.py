"""Run unmodified keras-segmentation 0.3.0 (the oracle) on tf-keras.

Usage: python kseg_oracle.py JOB.json  (writes results next to paths given
in the job). Runs in its own process so that its ``keras`` alias (tf_keras)
never meets the product's Keras 3.

Job keys: n_classes, input_height, input_width, and any of
  "summary": path -> JSON {params, shapes}
  "train": {train_images, train_annotations, checkpoints_path, epochs,
            steps_per_epoch, batch_size}
  "load_weights": path (weights to load before predicting / evaluating)
  "find_latest": {checkpoints_path, out, load} -> JSON {latest}: what
            keras_segmentation.train.find_latest_checkpoint returns; with
            "load": true those weights are loaded
  "save_h5": path (tf-keras ``save_weights`` in the legacy HDF5 layout,
            whatever the name)
  "save_tf": path (tf-keras ``save_weights`` as a TF checkpoint, as
            keras-segmentation's checkpoints callback writes it)
  "predict": {inp, out} or a list of them -> .npy class map at output size
  "evaluate": {images, annotations, out} -> JSON
"""

import functools
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def alias_keras():
    import tf_keras

    sys.modules["keras"] = tf_keras
    for sub in (
        "models",
        "layers",
        "backend",
        "callbacks",
        "utils",
        "losses",
        "optimizers",
    ):
        sys.modules[f"keras.{sub}"] = getattr(tf_keras, sub)


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    alias_keras()
    import numpy as np
    import tensorflow as tf

    tf.random.set_seed(job.get("seed", 0))
    from keras_segmentation.models.unet import _unet
    from keras_segmentation.models.vgg16 import get_vgg_encoder

    model = _unet(
        job["n_classes"],
        functools.partial(get_vgg_encoder, pretrained=None),
        input_height=job["input_height"],
        input_width=job["input_width"],
    )
    model.model_name = "vgg_unet"
    if "summary" in job:
        layers = [
            {"name": ly.name, "shapes": [list(w.shape) for w in ly.weights]}
            for ly in model.layers
            if ly.weights
        ]
        with open(job["summary"], "w") as f:
            json.dump(
                {
                    "params": int(model.count_params()),
                    "output_shape": list(model.output_shape),
                    "layers": layers,
                },
                f,
            )
    if "train" in job:
        t = job["train"]
        model.train(
            train_images=t["train_images"],
            train_annotations=t["train_annotations"],
            checkpoints_path=t["checkpoints_path"],
            epochs=t.get("epochs", 1),
            steps_per_epoch=t.get("steps_per_epoch", 2),
            batch_size=t.get("batch_size", 2),
            verify_dataset=False,
        )
    if "load_weights" in job:
        model.load_weights(job["load_weights"])
    if "find_latest" in job:
        from keras_segmentation.train import find_latest_checkpoint

        fl = job["find_latest"]
        latest = find_latest_checkpoint(fl["checkpoints_path"])
        with open(fl["out"], "w") as f:
            json.dump({"latest": latest}, f)
        if fl.get("load") and latest is not None:
            model.load_weights(latest)
    if "save_h5" in job:
        model.save_weights(job["save_h5"], save_format="h5")
    if "save_tf" in job:
        model.save_weights(job["save_tf"], save_format="tf")
    if "predict" in job:
        from keras_segmentation.predict import predict

        jobs = job["predict"]
        for p in [jobs] if isinstance(jobs, dict) else jobs:
            np.save(p["out"], predict(model=model, inp=p["inp"]))
    if "evaluate" in job:
        from keras_segmentation.predict import evaluate

        e = job["evaluate"]
        res = evaluate(
            model=model,
            inp_images_dir=e["images"],
            annotations_dir=e["annotations"],
        )
        with open(e["out"], "w") as f:
            json.dump({k: np.asarray(v).tolist() for k, v in res.items()}, f)


if __name__ == "__main__":
    main(sys.argv[1])
