"""How long measurements take on big label images (not run by CI).

Prints, side by side in one run: fractions and intervals only, and with
grain and pore sizes (watershed splitting), for synthetic sandstones of
growing size, and their ratio.

    .venv/bin/python bench/bench_analysis.py [SIZE ...]
"""

import sys
import time

from napari_thinseg.dataset.synth import synthetic_sandstone
from napari_thinseg.measure import measure
from napari_thinseg.schemes import SANDSTONE


def timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(sizes):
    for n in sizes:
        _, labels = synthetic_sandstone((n, n), seed=0)
        fast = timed(lambda lab=labels: measure(lab, SANDSTONE, sizes=False))
        full = timed(
            lambda lab=labels: measure(lab, SANDSTONE, pixel_size_um=5.0)
        )
        print(
            f"{n}x{n}: fractions + intervals {fast:6.2f} s, with grain and "
            f"pore sizes {full:6.2f} s (x{full / fast:.0f})"
        )


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [500, 1000, 2000])
