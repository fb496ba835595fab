"""Resizing as OpenCV (keras-segmentation) does it."""

import numpy as np

from napari_thinseg.imaging.resize import resize_bilinear, resize_nearest


def test_nearest_resize_like_opencv():
    labels = np.arange(6).reshape(2, 3)
    assert resize_nearest(labels, 4, 6).tolist() == [
        [0, 0, 1, 1, 2, 2],
        [0, 0, 1, 1, 2, 2],
        [3, 3, 4, 4, 5, 5],
        [3, 3, 4, 4, 5, 5],
    ]
    assert resize_nearest(np.arange(5)[None], 1, 2).tolist() == [[0, 2]]


def test_bilinear_keeps_a_flat_image_and_halves_by_block_means():
    flat = np.full((10, 14, 3), 77, np.uint8)
    assert (resize_bilinear(flat, 6, 9) == 77).all()
    image = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    half = resize_bilinear(image, 2, 2)
    # an exact 2x reduction is the rounded mean of each 2 x 2 block
    assert half.tolist() == [[25, 45], [105, 125]]
