"""How fast auto-label runs on a big uint8 thin section, and how exactly.

Prints, for a SIZE x SIZE RGB image tiled from the bundled seed photo
(default 4000), all measured side by side in one run: MPix/s of the uint8
path (one thread, and one per core) and of the plain scikit-image float
rule for the gray, epoxy and multi-Otsu methods, their ratios, the share
of pixels where both give the same label, and this machine's memory
bandwidth (a large numpy copy) as the bound. Not run by CI; about two
minutes (the plain epoxy rule alone takes seconds).

    .venv/bin/python bench/bench_autolabel.py [SIZE]

The plain rule is the README's, written with scikit-image: gray =
``gaussian(rgb2gray(image / 255), 1)`` binned at the thresholds; epoxy
adds ``rgb2hsv`` of the smoothed float RGB and the window; multi-Otsu
bins at ``threshold_multiotsu`` of that gray (128 bins, as the package).
"""

import os
import platform
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import scipy
import skimage
from skimage.color import rgb2gray, rgb2hsv
from skimage.filters import gaussian, threshold_multiotsu

from napari_thinseg.autolabel import fast as autolabel_fast
from napari_thinseg.autolabel.rule import (
    DEFAULT_THRESHOLDS,
    AutoLabelParams,
    EpoxyWindow,
    apply_epoxy,
    autolabel,
)

SEED = (
    Path(__file__).parents[1] / "src/napari_thinseg/data/seed/sandstone_2.png"
)


def best_of(fn, repeat):
    """Shortest of ``repeat`` runs (seconds) and the last result."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def plain_gray(image, thresholds=DEFAULT_THRESHOLDS, sigma=1.0):
    gray = gaussian(rgb2gray(image[..., :3] / 255.0), sigma=sigma)
    labels = np.ones(gray.shape, np.uint8)
    for t in thresholds:
        labels += gray > t
    return gray, labels


def plain_epoxy(image, window=None, sigma=1.0):
    window = window or EpoxyWindow()
    gray, bins = plain_gray(image, sigma=sigma)
    smooth = gaussian(image[..., :3] / 255.0, sigma=sigma, channel_axis=-1)
    hue, sat, value = np.moveaxis(rgb2hsv(np.clip(smooth, 0, 1)), -1, 0)
    blue = (
        (hue >= window.hue_min)
        & (hue <= window.hue_max)
        & (sat >= window.min_saturation)
        & (value >= window.min_value)
    )
    return apply_epoxy(bins, gray, blue, DEFAULT_THRESHOLDS)


def plain_multiotsu(image, n_classes=5, sigma=1.0):
    gray = gaussian(rgb2gray(image[..., :3] / 255.0), sigma=sigma)
    thresholds = threshold_multiotsu(gray, classes=n_classes, nbins=128)
    return plain_gray(image, thresholds, sigma)[1]


def copy_bandwidth(nbytes=1 << 28) -> float:
    """GB/s of a large numpy copy (bytes read + bytes written)."""
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    seconds, _ = best_of(lambda: np.copyto(dst, src), 5)
    return 2 * nbytes / seconds / 1e9


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{model}, {os.cpu_count()} cores; numpy {np.__version__}, scipy "
        f"{scipy.__version__}, scikit-image {skimage.__version__}"
    )


def main(size=4000):
    photo = iio.imread(SEED)[..., :3]
    reps = (-(-size // photo.shape[0]), -(-size // photo.shape[1]), 1)
    image = np.ascontiguousarray(np.tile(photo, reps)[:size, :size])
    mpix = size * size / 1e6
    print(f"machine: {machine()}")
    print(f"image: {size} x {size} RGB uint8 tiled from {SEED.name}")
    bandwidth = copy_bandwidth()
    # any method reads the image (3 B) and writes labels (1 B) per pixel
    print(
        f"memory: numpy copy {bandwidth:.1f} GB/s (read + write); reading "
        f"the image and writing the labels bound any method at "
        f"{bandwidth * 1e3 / 4:.0f} MPix/s"
    )
    cores = autolabel_fast._cores()
    print(f"load average (1 min) at the start: {os.getloadavg()[0]:.2f}")
    print(
        f"\n{'method':10s} {'uint8, 1 thread':>16s} "
        f"{f'uint8, {cores} threads':>17s} {'float rule':>12s} "
        f"{'ratio 1 / ' + str(cores):>12s} {'agreement':>11s}"
    )
    methods = [
        ("gray", AutoLabelParams(), plain_gray, 2),
        ("epoxy", AutoLabelParams("epoxy"), plain_epoxy, 1),
        ("multiotsu", AutoLabelParams("multiotsu"), plain_multiotsu, 1),
    ]
    for name, params, plain, repeat in methods:
        plain_s, reference = best_of(lambda p=plain: p(image), repeat)
        if isinstance(reference, tuple):
            reference = reference[1]
        fast_s, labels = {}, {}
        for threads in (1, None):
            autolabel_fast.THREADS = threads
            fast_s[threads], labels[threads] = best_of(
                lambda p=params: autolabel(image, p), 5
            )
        autolabel_fast.THREADS = None
        # threads split the rows, never the results
        assert np.array_equal(labels[1], labels[None])
        agreement = (labels[1] == reference).mean()
        print(
            f"{name:10s} {mpix / fast_s[1]:9.0f} MPix/s "
            f"{mpix / fast_s[None]:10.0f} MPix/s "
            f"{mpix / plain_s:5.1f} MPix/s "
            f"{plain_s / fast_s[1]:5.1f}x /{plain_s / fast_s[None]:5.1f}x "
            f"{agreement:11.6%}"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4000)
