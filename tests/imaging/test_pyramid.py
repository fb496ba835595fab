import json

import numpy as np
import pytest
import tifffile

from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.lazy import multiscales_of, open_lazy, read_region
from napari_thinseg.imaging.pyramid import (
    LabelsPyramid,
    check_slide_output,
    is_slide_output,
    level_shapes,
    open_levels,
    partial_path,
    thinseg_attrs,
    write_bigtiff,
)
from napari_thinseg.schemes import SANDSTONE


def test_level_shapes_halve_down_to_the_smallest_side():
    assert level_shapes((5000, 3000)) == [
        (5000, 3000),
        (2500, 1500),
        (1250, 750),
    ]
    assert level_shapes((700, 900)) == [(700, 900)]
    assert level_shapes((2049, 1025), min_side=256)[-1] == (513, 257)


def test_regions_in_any_order_fill_every_level_exactly(tmp_path):
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 7, (2300, 1900), np.uint8)
    out = tmp_path / "labels.ome.zarr"
    pyramid = LabelsPyramid.create(out, truth.shape, SANDSTONE, 2.5, chunk=256)
    assert pyramid.store_path == partial_path(out) and not out.exists()
    # uneven, unaligned regions, written out of order
    cuts_y, cuts_x = [0, 333, 1201, 2300], [0, 517, 1900]
    regions = [
        (y0, y1, x0, x1)
        for y0, y1 in zip(cuts_y, cuts_y[1:], strict=False)
        for x0, x1 in zip(cuts_x, cuts_x[1:], strict=False)
    ]
    for y0, y1, x0, x1 in reversed(regions):
        pyramid.write(y0, x0, truth[y0:y1, x0:x1])
    assert pyramid.finish() == out
    assert not partial_path(out).exists()
    levels = open_levels(out)
    assert len(levels) == 2
    for k, level in enumerate(levels):
        np.testing.assert_array_equal(level[:], truth[:: 2**k, :: 2**k])


def test_the_pyramid_is_ome_zarr_with_classes_and_scale(tmp_path):
    out = tmp_path / "labels.ome.zarr"
    pyramid = LabelsPyramid.create(
        out, (1200, 1100), SANDSTONE, 0.5, source="scan.tif"
    )
    pyramid.finish()
    ms = multiscales_of(out)
    assert ms["version"] == "0.4"
    assert [a["name"] for a in ms["axes"]] == ["y", "x"]
    assert ms["datasets"][1]["coordinateTransformations"][0]["scale"] == [
        1.0,
        1.0,
    ]
    attrs = json.loads((out / ".zattrs").read_text())
    colors = {
        c["label-value"]: c["rgba"] for c in attrs["image-label"]["colors"]
    }
    assert colors[SANDSTONE.pore_id] == [
        *SANDSTONE[SANDSTONE.pore_id].rgb,
        255,
    ]
    assert attrs["image-label"]["source"] == {"image": "scan.tif"}
    assert thinseg_attrs(out)["class_scheme"] == SANDSTONE.to_dict()
    # read back as any OME-Zarr: its pixel size and levels
    back = open_lazy(out)
    assert back.pixel_size_um == pytest.approx(0.5)
    assert [lv.shape for lv in back.levels] == [(1200, 1100), (600, 550)]


def test_an_existing_output_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "labels.ome.zarr"
    first = LabelsPyramid.create(out, (64, 64))
    first.write(0, 0, np.full((64, 64), 3, np.uint8))
    first.finish()
    with pytest.raises(ThinsegError, match="already exists"):
        LabelsPyramid.create(out, (64, 64))
    assert open_levels(out)[0][0, 0] == 3
    # a stopped run's partial store is ours to replace
    stopped = LabelsPyramid.create(out, (64, 64), overwrite=True)
    stopped.write(0, 0, np.ones((8, 8), np.uint8))
    again = LabelsPyramid.create(out, (64, 64), overwrite=True)
    assert again.levels[0][0, 0] == 0
    assert open_levels(out)[0][0, 0] == 3  # until the new one finishes
    again.finish()
    assert open_levels(out)[0][0, 0] == 0


def test_bigtiff_holds_the_levels_tiled_with_the_pixel_size(tmp_path):
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 5, (1300, 1000), np.uint8)
    levels = [truth, truth[::2, ::2]]
    out = write_bigtiff(tmp_path / "labels.tif", levels, 2.0, tile=256)
    with tifffile.TiffFile(out) as tif:
        assert tif.is_bigtiff
        page = tif.pages[0]
        assert page.is_tiled and page.tilewidth == 256
        assert page.compression == tifffile.COMPRESSION.ADOBE_DEFLATE
        assert len(tif.series[0].levels) == 2
    back = open_lazy(out)
    np.testing.assert_array_equal(read_region(back.levels[0]), truth)
    np.testing.assert_array_equal(read_region(back.levels[1]), levels[1])
    assert back.pixel_size_um == pytest.approx(2.0)
    with pytest.raises(ThinsegError, match="already exists"):
        write_bigtiff(out, levels)
    assert not partial_path(out).exists()


def test_a_partial_records_its_run_and_reopens_with_its_tiles(
    tmp_path, monkeypatch
):
    from napari_thinseg.imaging import pyramid as pm

    out = tmp_path / "labels.ome.zarr"
    first = LabelsPyramid.create(out, (1100, 2200))
    assert not first.resumed and len(first.levels) == 2
    first.mark_done(0, (0, 8, 0, 8))  # before begin: nothing recorded
    assert not (first.store_path / pm.RUN_RECORD).exists()
    run = {"model": "abc", "tiles": [512, 512, 32, 12]}
    first.begin(run)
    flushed = []
    monkeypatch.setattr(pm, "fsync_paths", lambda p: flushed.extend(p))
    first.write(1000, 1030, np.full((100, 40), 4, np.uint8))
    first.mark_done(7, (1000, 1100, 1030, 1070))
    # the chunks of the region at both levels were flushed first
    names = {str(p.relative_to(first.store_path)) for p in flushed}
    assert names == {"0/0/1", "0/1/1", "1/0/0"}
    again = LabelsPyramid.create(out, (1100, 2200))
    assert again.resumed and again.left == run and again.done == {7}
    assert again.levels[1][500, 515] == 4
    again.finish()
    assert not (out / pm.RUN_RECORD).exists()
    # a partial that recorded no run holds nothing to trust: replaced
    bare = LabelsPyramid.create(tmp_path / "bare.zarr", (64, 64))
    bare.write(0, 0, np.ones((8, 8), np.uint8))
    fresh = LabelsPyramid.create(tmp_path / "bare.zarr", (64, 64))
    assert not fresh.resumed and fresh.levels[0][0, 0] == 0
    # an unreadable record is refused, the partial kept
    (fresh.store_path / pm.RUN_RECORD).write_text("{")
    with pytest.raises(ThinsegError, match="unreadable; use overwrite"):
        LabelsPyramid.create(tmp_path / "bare.zarr", (64, 64))
    assert fresh.store_path.is_dir()


def test_a_bigtiff_output_is_written_from_its_working_pyramid(tmp_path):
    out = tmp_path / "labels.tif"
    labels = np.random.default_rng(0).integers(0, 5, (1100, 1030), np.uint8)
    pyramid = LabelsPyramid.create(out, labels.shape, SANDSTONE, 2.0)
    assert pyramid.store_path == tmp_path / "labels.tif.zarr.partial"
    pyramid.begin({"model": "m"})
    pyramid.write(0, 0, labels[:600])
    pyramid.mark_done(0, (0, 600, 0, 1030))
    # a stopped run resumes from the working pyramid, as for OME-Zarr
    again = LabelsPyramid.create(out, labels.shape, SANDSTONE, 2.0)
    assert again.resumed and again.done == {0}
    again.write(600, 0, labels[600:])
    assert again.finish() == out
    assert not list(tmp_path.glob("*.partial")) and out.is_file()
    tiff = open_lazy(out)
    assert tiff.pixel_size_um == pytest.approx(2.0)
    np.testing.assert_array_equal(read_region(tiff.data), labels)
    np.testing.assert_array_equal(
        np.asarray(again.levels[1]), labels[::2, ::2]
    )
    with pytest.raises(ThinsegError, match="already exists"):
        LabelsPyramid.create(out, labels.shape, SANDSTONE, 2.0)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "choose the output"),
        ("labels.png", "OME-Zarr folder (.zarr) or a pyramidal BigTIFF"),
        ("scan.tif", "that is the slide itself"),
    ],
)
def test_slide_outputs_refused_in_one_line(tmp_path, name, words):
    slide = tmp_path / "scan.tif"
    path = str(tmp_path / name) if name else "  "
    with pytest.raises(ThinsegError) as caught:
        check_slide_output(path, slide)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_slide_outputs_allowed():
    for name in ("a.ome.zarr", "a.zarr/", "a.TIF", "a.btf", "a.tiff"):
        assert is_slide_output(name)
        assert check_slide_output(name, "scan.tif").name == name.rstrip("/")
    assert not is_slide_output("a.png")
