"""Value scaling: 12-bit data in 16-bit files is not a black image."""

from __future__ import annotations

import numpy as np
import pytest

from napari_thinseg.autolabel.rule import autolabel
from napari_thinseg.imaging.convert import (
    data_range,
    describe_scaling,
    rgb8,
    to_float,
    used_bits,
)
from napari_thinseg.inference.tiling import tile_rgb


@pytest.mark.parametrize(
    ("top", "bits"),
    [
        (0, 8),
        (255, 8),
        (256, 10),
        (1023, 10),
        (4080, 12),
        (4095, 12),
        (4096, 14),
        (16383, 14),
        (16384, 16),
        (65535, 16),
    ],
)
def test_used_bits_of_uint16(top, bits):
    image = np.zeros((3, 4), np.uint16)
    image[1, 2] = top
    assert used_bits(image) == bits
    assert data_range(image) == (0.0, 2.0**bits - 1)


def test_other_dtypes_keep_their_scale():
    assert used_bits(np.full((2, 2), 3, np.uint8)) == 8
    assert used_bits(np.full((2, 2), 3, np.int16)) == 16
    assert data_range(np.full((2, 2), 3, np.int16)) == (0.0, 32767.0)
    assert data_range(np.full((2, 2), 0.5)) == (0.0, 1.0)
    assert data_range(np.array([[0.0, 255.0]])) == (0.0, 255.0)
    assert used_bits(np.zeros((0, 3), np.uint16)) == 16


def test_twelve_bit_data_in_a_16_bit_file_is_scaled_by_4095():
    """Issue 12: values 0-4080 in a uint16 TIFF came out all black."""
    gray8 = np.array([[0, 64, 128, 255]], np.uint8)
    twelve = gray8.astype(np.uint16) * 16  # 0..4080
    np.testing.assert_allclose(to_float(twelve), twelve / 4095)
    assert rgb8(twelve)[0, :, 0].tolist() == [0, 64, 128, 254]
    assert describe_scaling(twelve) == (
        "12-bit data in a 16-bit image: 0..4095 scaled to 0..255"
    )
    # full 16-bit data and 8-bit images are as before, and say nothing
    full = gray8.astype(np.uint16) * 257
    assert rgb8(full)[0, :, 0].tolist() == gray8[0].tolist()
    assert describe_scaling(full) is None
    assert describe_scaling(gray8) is None
    assert "stretched" in describe_scaling(gray8.astype(float))


def test_gray_level_autolabel_of_12_bit_data_is_not_one_class():
    rng = np.random.default_rng(0)
    gray8 = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    twelve = gray8.astype(np.uint16) * 16
    # the seed's gray-level rule: 100 % class 1 before
    labels = autolabel(twelve)
    assert (labels == autolabel(gray8)).mean() > 0.97
    assert len(np.unique(labels)) > 3


def test_tiles_scale_like_the_whole_image():
    """A tile of a 12-bit image whose own maximum is low scales by the
    whole image's bit depth, not its own."""
    image = np.zeros((64, 64, 3), np.uint16)
    image[:32] = 200  # a dark half: alone it would look 8-bit
    image[32:] = 4000
    whole = data_range(image)
    dark = tile_rgb(image, 0, 0, 32, 32, whole)
    assert dark.max() == round(200 / 4095 * 255)
