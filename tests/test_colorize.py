import numpy as np
import pytest

from napari_thinseg.colorize import (
    class_medians,
    colorize,
    match_colors,
    save_colored,
)
from napari_thinseg.errors import ThinsegError
from napari_thinseg.schemes import SEED


def test_colorize_uses_scheme_colours():
    labels = np.array([[0, 1, 3], [5, 9, 2]], np.uint8)
    rgb = colorize(labels, SEED)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, 2].tolist() == list(SEED[3].rgb)
    assert rgb[0, 0].tolist() == [0, 0, 0]  # unlabelled
    assert rgb[1, 1].tolist() == [0, 0, 0]  # not in the scheme


def test_match_colors_takes_class_medians():
    labels = np.zeros((4, 6), np.uint8)
    labels[:, :3] = 3
    labels[:, 3:] = 5
    image = np.zeros((4, 6, 3), np.uint8)
    image[:, :3] = [[10, 20, 200]] * 3
    image[0, 0] = (255, 255, 255)  # an outlier the median ignores
    image[:, 3:] = (230, 225, 210)
    assert class_medians(labels, image, [3, 5, 1]) == {
        3: (10, 20, 200),
        5: (230, 225, 210),
    }
    matched = match_colors(labels, image, SEED)
    assert matched[3].color == "#0a14c8"
    assert matched[5].color == "#e6e1d2"
    assert matched[1] == SEED[1]  # absent class keeps its colour
    assert matched.names == SEED.names


def test_match_colors_on_gray_and_16_bit():
    labels = np.ones((3, 3), np.uint8)
    gray16 = np.full((3, 3), 65535, np.uint16)
    assert class_medians(labels, gray16, [1]) == {1: (255, 255, 255)}


def test_match_colors_shape_mismatch():
    with pytest.raises(ThinsegError, match="differ in size"):
        match_colors(np.ones((3, 3), np.uint8), np.zeros((4, 4, 3)), SEED)


def test_save_colored_never_overwrites_unasked(tmp_path):
    import imageio.v3 as iio

    labels = np.array([[1, 3], [5, 0]], np.uint8)
    path = save_colored(tmp_path / "c.png", labels, SEED)
    assert np.array_equal(iio.imread(path), colorize(labels, SEED))
    before = path.read_bytes()
    with pytest.raises(ThinsegError, match="already exists"):
        save_colored(path, np.zeros((2, 2), np.uint8), SEED)
    assert path.read_bytes() == before
    save_colored(path, np.zeros((2, 2), np.uint8), SEED, overwrite=True)
    assert iio.imread(path).max() == 0
