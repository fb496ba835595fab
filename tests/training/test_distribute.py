"""Training on several devices: a MirroredStrategy over 2 logical CPU
devices, each training on its half of every batch, takes the step one
device takes (issue 13).

TensorFlow's logical devices must be set before it starts, so the runs
are in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)
from napari_thinseg.dataset.folders import Pair
from napari_thinseg.errors import ThinsegError
from napari_thinseg.progress import run
from napari_thinseg.schemes import SEED
from napari_thinseg.dataset.synth import synthetic_sandstone, to_seed_labels
from napari_thinseg.training.loop import TrainSettings, train

pairs = []
for seed in (1, 2):
    rgb, labels = synthetic_sandstone((64, 64), seed=seed)
    pairs.append(Pair(str(seed), rgb, to_seed_labels(labels)))
out = {}
for devices in (1, 2):
    settings = TrainSettings(
        input_height=32, input_width=32, epochs=1, batch_size=4,
        steps_per_epoch=3, optimizer="sgd", learning_rate=0.05,
        precision="float32", devices=devices,
    )
    result = run(train(pairs, SEED, settings))
    out[devices] = {
        "weights": [w.tolist() for w in result.model.get_weights()[-2:]],
        "replicas": result.config.trained_on.get("replicas"),
    }
    if devices == 1:  # the same network before any batch
        start = run(train(pairs, SEED, settings, stop=lambda: True))
        out["start"] = [w.tolist() for w in start.model.get_weights()[-2:]]
# the moving average of the weights on mirrored variables
out["averaged"] = {}
for devices in (1, 2):
    settings = TrainSettings(
        input_height=32, input_width=32, epochs=1, batch_size=4,
        steps_per_epoch=3, optimizer="sgd", learning_rate=0.05,
        precision="float32", devices=devices, average_weights=0.5,
    )
    result = run(train(pairs, SEED, settings))
    out["averaged"][devices] = [
        w.tolist() for w in result.model.get_weights()[-2:]
    ]
try:
    run(train(pairs, SEED, TrainSettings(
        input_height=32, input_width=32, epochs=1, batch_size=3,
        steps_per_epoch=1, devices=2)))
except ThinsegError as exc:
    out["odd"] = str(exc)
try:
    run(train(pairs, SEED, TrainSettings(
        input_height=32, input_width=32, epochs=1, batch_size=4,
        steps_per_epoch=1, devices=3)))
except ThinsegError as exc:
    out["three"] = str(exc)
# a strategy the caller opened (as across machines) is the one used
settings = TrainSettings(
    input_height=32, input_width=32, epochs=1, batch_size=4,
    steps_per_epoch=3, optimizer="sgd", learning_rate=0.05,
    precision="float32",
)
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    result = run(train(pairs, SEED, settings))
out["outer"] = {
    "weights": [w.tolist() for w in result.model.get_weights()[-2:]],
    "replicas": result.config.trained_on.get("replicas"),
}
# every device gets its part of the batch, not the whole batch
from napari_thinseg.model.backend import split_batch
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x = np.arange(8 * 3, dtype=np.float32).reshape(8, 3)
parts = strategy.experimental_local_results(split_batch(strategy, x)[0])
out["parts"] = [np.asarray(p).tolist() for p in parts]
out["one"] = split_batch(tf.distribute.get_strategy(), x)[0] is x
print("RESULT" + json.dumps(out))
"""


def test_two_devices_train_as_one():
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT") :])
    one, two = out["1"], out["2"]
    assert one["replicas"] is None and two["replicas"] == 2
    # plain SGD: a batch split wrongly (gradients summed, not averaged)
    # would move the weights twice as far
    for a, b, s in zip(
        one["weights"], two["weights"], out["start"], strict=True
    ):
        moved = np.linalg.norm(np.subtract(a, s))
        apart = np.linalg.norm(np.subtract(a, b))
        assert moved > 1e-3, moved  # trained, not the start
        # each device normalises its half of the batch by its own batch
        # statistics: about 1-2 % apart; gradients summed instead of
        # averaged would be as far apart as the step itself
        assert apart < 0.1 * moved, (apart, moved)
    assert out["outer"]["replicas"] == 2
    averaged = out["averaged"]
    for a, b, plain, s in zip(
        averaged["1"], averaged["2"], one["weights"], out["start"], strict=True
    ):
        # not the last step's weights, and averaged alike on 1 and 2
        # devices (closer to each other than to the last step's)
        moved = np.linalg.norm(np.subtract(plain, s))
        off_last = np.linalg.norm(np.subtract(a, plain))
        assert off_last > 0.02 * moved, (off_last, moved)
        assert np.linalg.norm(np.subtract(a, b)) < 0.5 * off_last
    assert out["parts"] == [
        x.tolist() for x in np.split(np.arange(24.0).reshape(8, 3), 2)
    ]
    assert out["one"]
    assert "does not split over 2 devices" in out["odd"]
    assert "3 devices asked for" in out["three"]
