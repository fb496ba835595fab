"""Save checkpoints in a loop until killed (a helper of test_faults.py).

``python _checkpoint_writer.py PREFIX [--keras] [--count N]``

``PREFIX.0`` (base weights) and ``PREFIX_config.json`` must exist. The
writer continues after the latest epoch under PREFIX: epoch ``n`` holds
every weight of epoch 0 plus ``n / 1000`` (see :func:`shifted`), so the
test knows exactly what each file must contain. It prints ``ready`` before
its first save and ``saved <n> <seconds>`` after each, flushed.

``--keras`` saves a real Keras model built from the config (imports
TensorFlow, seconds); without it, a stand-in with the same layers, weight
names and arrays as the base file (read with h5py), which starts in a
fraction of a second. :func:`napari_thinseg.model.checkpoints.save_checkpoint`
writes the same layout from either.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def shifted(arrays, epoch: int) -> list[np.ndarray]:
    """Epoch ``epoch``'s arrays, from epoch 0's."""
    step = np.float32(epoch / 1000)
    return [(a + step).astype(a.dtype) for a in arrays]


class _Weight:
    def __init__(self, name: str):
        self.name = name


class _Layer:
    def __init__(self, name: str, weight_names: list[str], arrays):
        self.name = name
        self.weights = [_Weight(n) for n in weight_names]
        self.arrays = list(arrays)

    def get_weights(self):
        return self.arrays

    def set_weights(self, arrays):
        self.arrays = list(arrays)


class StandIn:
    """What ``encode_hdf5_weights`` reads of a Keras model, from a file
    that one wrote: every layer's name, weight names and arrays."""

    def __init__(self, path: str):
        import h5py

        def text(v):
            return v.decode() if isinstance(v, bytes) else str(v)

        self.layers = []
        with h5py.File(path, "r") as f:
            for name in map(text, f.attrs["layer_names"]):
                names = list(map(text, f[name].attrs.get("weight_names", [])))
                arrays = [np.asarray(f[name][n]) for n in names]
                self.layers.append(_Layer(name, names, arrays))


def main(argv: list[str]) -> int:
    from napari_thinseg.model import checkpoints as ck
    from napari_thinseg.model import weights as wt

    prefix = argv[0]
    count = int(argv[argv.index("--count") + 1]) if "--count" in argv else 0
    base = [arrays for _, arrays in wt.read_weights(f"{prefix}.0")]
    if "--keras" in argv:
        from napari_thinseg.model.weights import weight_layers

        model, _, _ = ck.load_model(prefix, epoch=0)
        targets = weight_layers(model)
    else:
        model = StandIn(f"{prefix}.0")
        targets = [ly for ly in model.layers if ly.weights]
    epoch = max(ck.list_checkpoints(prefix)) + 1
    print("ready", flush=True)
    saved = 0
    while not count or saved < count:
        for layer, arrays in zip(targets, base, strict=True):
            layer.set_weights(shifted(arrays, epoch))
        start = time.perf_counter()
        ck.save_checkpoint(prefix, epoch, model)
        took = time.perf_counter() - start
        print(f"saved {epoch} {took:.3f}", flush=True)
        epoch += 1
        saved += 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
