"""Whole slides predicted tile by tile: equal to the prediction of the
image in memory, into a pyramid, and refusals."""

import numpy as np
import pytest
from _slides import slide_file

from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.lazy import open_lazy
from napari_thinseg.imaging.pyramid import LabelsPyramid, open_levels
from napari_thinseg.inference.predict import predict_image
from napari_thinseg.inference.slides import TileProgress, predict_slide
from napari_thinseg.progress import run


def test_the_slide_equals_the_image_predicted_in_memory(
    default_model, tmp_path
):
    model, config = default_model
    path, image = slide_file(tmp_path)
    whole = run(predict_image(model, config, image, tile=256)).labels
    slide = open_lazy(path)
    out = LabelsPyramid.create(
        tmp_path / "labels.ome.zarr", slide.shape, config.class_scheme
    )
    events = []
    result = run(
        predict_slide(model, config, slide, out, tile=256), events.append
    )
    out.finish()
    np.testing.assert_array_equal(open_levels(out.path)[0][:], whole)
    assert result.tiles == len(events) - 1 > 4
    assert result.shape == (1000, 640) and result.tile_shape == (256, 256)
    # the first event comes before the network is built; then one a tile,
    # whose regions cover the image once
    assert events[0].step == 0 and events[-1].step == events[-1].total
    cover = np.zeros(whole.shape, int)
    for ev in events[1:]:
        assert isinstance(ev, TileProgress)
        y0, y1, x0, x1 = ev.region
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()


def test_twelve_bit_slides_scale_like_the_image(default_model, tmp_path):
    model, config = default_model
    path, image = slide_file(tmp_path, np.uint16)
    whole = run(predict_image(model, config, image, tile=512)).labels
    out = np.zeros(image.shape[:2], np.uint8)
    run(predict_slide(model, config, open_lazy(path), out, tile=512))
    np.testing.assert_array_equal(out, whole)


def test_a_stop_leaves_the_tiles_done(default_model, tmp_path):
    model, config = default_model
    path, _ = slide_file(tmp_path)
    out = np.zeros((1000, 640), np.uint8)
    job = predict_slide(model, config, open_lazy(path), out, tile=256)
    next(job)
    first = next(job)
    job.close()  # what Stop does
    y0, y1, x0, x1 = first.region
    assert out[y0:y1, x0:x1].any()
    assert not out[600:, :].any()


def test_slides_refuse_what_they_cannot_take(default_model, tmp_path):
    model, config = default_model
    xpl = np.zeros((300, 300, 6), np.uint8)
    with pytest.raises(ThinsegError, match="plane-polarised image alone"):
        run(predict_slide(model, config, xpl, np.zeros((300, 300))))
    with pytest.raises(ThinsegError, match="fitted margin tiles"):
        run(
            predict_slide(
                model,
                config,
                np.zeros((600, 600, 3), np.uint8),
                np.zeros((600, 600)),
                tile=(128, 192),
            )
        )
    with pytest.raises(ThinsegError, match="from its file"):
        run(
            predict_slide(
                model,
                config,
                np.zeros((64, 64, 3), np.uint8),
                np.zeros((64, 64)),
                client=object(),
            )
        )
