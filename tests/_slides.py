"""A small whole slide for the slide tests: a tiled TIFF."""

from pathlib import Path

import numpy as np
import tifffile

from napari_thinseg.imaging.files import read_image

SAMPLE = (
    Path(__file__).parents[1] / "src/napari_thinseg/data/seed/sandstone_2.png"
)


def slide_file(
    folder: Path, dtype=np.uint8, shape=(1000, 640)
) -> tuple[Path, np.ndarray]:
    """A tiled TIFF twice the packaged thin section's height (by default;
    the section and its mirror images tiled to ``shape``)."""
    photo = read_image(SAMPLE)[..., :3]
    image = np.concatenate([photo, photo[::-1]])
    while image.shape[1] < shape[1]:
        image = np.concatenate([image, image[:, ::-1]], axis=1)
    while image.shape[0] < shape[0]:
        image = np.concatenate([image, image[::-1]])
    image = np.ascontiguousarray(image[: shape[0], : shape[1]])
    if dtype == np.uint16:  # 12-bit data in a 16-bit file
        image = image.astype(np.uint16) * 16
    path = folder / "slide.tif"
    tifffile.imwrite(path, image, tile=(128, 128), photometric="rgb")
    return path, image
