"""How fast the Auto-label preview follows a threshold on a big image.

Prints, for a 4000 x 4000 RGB thin section measured side by side in one
run: the full auto-label (smoothing + binning), and what a threshold move
costs the widget once its :class:`PreviewCache` holds the smoothed gray
(binning only), with their ratio. Not run by CI.

    .venv/bin/python bench/bench_autolabel_preview.py [SIZE]
"""

import sys
import time

import numpy as np

from napari_thinseg.autolabel.preview import PreviewCache
from napari_thinseg.autolabel.rule import AutoLabelParams, autolabel
from napari_thinseg.dataset.synth import synthetic_sandstone


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(size=4000):
    rgb, _ = synthetic_sandstone((size, size), seed=0, grain_size=40)
    for method in ("gray", "epoxy"):
        params = AutoLabelParams(method)
        full = best_of(lambda p=params: autolabel(rgb, p), repeat=1)
        cache = PreviewCache()
        cache.fill("plane", params, rgb, rgb=True)
        moved = AutoLabelParams(method, thresholds=(0.2, 0.45, 0.6, 0.8))
        assert cache.missing("plane", moved) is None  # nothing to smooth
        rebin = best_of(lambda m=moved, c=cache: c.labels("plane", m))
        print(
            f"{size}x{size} {method:5s}: full auto-label {full:6.2f} s, "
            f"threshold move (cached) {rebin * 1000:6.0f} ms, "
            f"ratio {full / rebin:5.1f}x"
        )
    assert np.array_equal(cache.labels("plane", moved), autolabel(rgb, moved))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000)
