"""A 30,000 x 30,000 slide (2.7 GB of RGB) read, labelled tile by tile
into a labels pyramid and measured, in a fresh process whose peak
resident memory is measured: bounded by the tiles, not the image."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np, tifffile
    from napari_thinseg.imaging.lazy import open_lazy, read_region
    from napari_thinseg.imaging.pyramid import LabelsPyramid, open_levels
    from napari_thinseg.measure.modal import measure_lazy
    from napari_thinseg.prefetch import map_ahead
    from napari_thinseg.inference.slides import fill
    from napari_thinseg.progress import run
    from napari_thinseg.schemes import SEED
    from napari_thinseg.inference.tiling import (
        margin_tile_classes,
        margin_tiles,
    )

    side, folder = int(sys.argv[1]), sys.argv[2]
    # blocks of 32 px: blue where the block's third channel is high
    rng = np.random.default_rng(0)
    base = np.kron(rng.integers(0, 256, (16, 16, 3), np.uint8),
                   np.ones((32, 32, 1), np.uint8))
    n = (-(-side // 512)) ** 2
    tifffile.imwrite(
        f"{folder}/slide.tif", (base for _ in range(n)),
        shape=(side, side, 3), dtype=np.uint8, tile=(512, 512),
        photometric="rgb", compression="zlib", compressionargs={"level": 1},
        bigtiff=True,
    )
    slide = open_lazy(f"{folder}/slide.tif")

    def forward(tiles):  # a stand-in network: class 2 where blue is high
        blue = tiles[..., 2:3].astype(np.float32) / 255
        return np.concatenate([np.zeros_like(blue), 1 - blue, blue], -1)

    # large tiles: each TIFF tile is decoded fewer times (the test's time)
    shape = (2048, 2048)
    tiles = margin_tiles(side, side, shape, 32)
    out = LabelsPyramid.create(f"{folder}/labels.ome.zarr", slide.shape, SEED)
    results = map_ahead(
        lambda t: (t, margin_tile_classes(forward, slide.data, t, shape)[0]),
        tiles,
    )
    run(fill(out, results, len(tiles)))
    out.finish()
    m = measure_lazy(open_levels(out.path)[0], SEED)
    labels = read_region(open_levels(out.path)[0][-512:, -512:])
    at = np.arange(side - 512, side) % 512  # where in the repeated tile
    assert (labels == np.where(base[at][:, at, 2] > 127, 2, 1)).all()
    # this process's own high-water mark (ru_maxrss would also count the
    # parent's memory at fork: Linux carries it over exec)
    status = open("/proc/self/status").read()
    peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(f"{peak:.0f} {m.counted_pixels} {len(tiles)}")
    """
)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self/status"
)
def test_a_30000_px_slide_stays_in_bounded_memory(tmp_path):
    side = 30_000
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(side), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    peak_mb, counted, n_tiles = map(int, proc.stdout.split())
    assert counted == side * side  # every pixel labelled
    assert n_tiles > 200
    image_mb = side * side * 3 / 2**20  # 2,575 MiB of RGB
    # the labels alone would be 858 MiB; the process stays far below both
    assert peak_mb < 600 < image_mb / 4, peak_mb
