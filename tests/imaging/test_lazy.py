import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr

from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.lazy import (
    is_lazy_readable,
    is_zarr,
    lazy_data_range,
    open_lazy,
    read_region,
)


def _rgb(h=700, w=900, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def test_a_tiled_tiff_is_read_tile_by_tile(tmp_path):
    image = _rgb()
    path = tmp_path / "slide.tif"
    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb")
    slide = open_lazy(path)
    assert isinstance(slide.data, da.Array)
    assert slide.shape == (700, 900, 3) and slide.dtype == np.uint8
    # one chunk a TIFF tile: a region reads only the tiles it touches
    assert slide.data.chunksize[:2] == (256, 256)
    region = read_region(slide.data[300:420, 500:777])
    np.testing.assert_array_equal(region, image[300:420, 500:777])
    assert slide.megapixels == pytest.approx(0.63)


def test_a_pyramidal_ome_tiff_gives_every_level_and_its_pixel_size(
    tmp_path,
):
    image = _rgb(1024, 1536)
    path = tmp_path / "scan.ome.tif"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        options = {"tile": (256, 256), "photometric": "rgb"}
        tif.write(
            image,
            subifds=2,
            metadata={
                "axes": "YXS",
                "PhysicalSizeX": 0.8,
                "PhysicalSizeY": 0.8,
            },
            **options,
        )
        tif.write(image[::2, ::2], subfiletype=1, **options)
        tif.write(image[::4, ::4], subfiletype=1, **options)
    slide = open_lazy(path)
    assert [lv.shape for lv in slide.levels] == [
        (1024, 1536, 3),
        (512, 768, 3),
        (256, 384, 3),
    ]
    assert slide.pixel_size_um == pytest.approx(0.8)
    np.testing.assert_array_equal(
        read_region(slide.levels[2]), image[::4, ::4]
    )


def test_an_uncompressed_tiff_is_memory_mapped(tmp_path):
    image = _rgb(300, 200)
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, image, photometric="rgb")
    slide = open_lazy(path)
    # a memory map under the dask array, not one strip read whole
    assert isinstance(slide.data, da.Array)
    np.testing.assert_array_equal(read_region(slide.data[10:20]), image[10:20])


def test_planar_channels_come_last_and_stacks_are_refused(tmp_path):
    image = _rgb(64, 96)
    planar = tmp_path / "planar.tif"
    tifffile.imwrite(
        planar,
        np.moveaxis(image, -1, 0),
        photometric="rgb",
        planarconfig="separate",
    )
    np.testing.assert_array_equal(read_region(open_lazy(planar).data), image)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(
        stack, np.zeros((5, 64, 96), np.uint8), metadata={"axes": "ZYX"}
    )
    with pytest.raises(ThinsegError, match="2D image"):
        open_lazy(stack)


def test_ome_zarr_0_4_and_0_5_are_read_with_their_scale(tmp_path):
    image = _rgb(256, 320)
    for version, fmt in (("0.4", 2), ("0.5", 3)):
        path = tmp_path / f"v{version}.ome.zarr"
        root = zarr.open_group(str(path), mode="w", zarr_format=fmt)
        chw = np.moveaxis(image, -1, 0)
        for k in range(2):
            arr = root.create_array(
                str(k),
                shape=chw[:, :: 2**k, :: 2**k].shape,
                chunks=(3, 128, 128),
                dtype=np.uint8,
            )
            arr[:] = chw[:, :: 2**k, :: 2**k]
        multiscales = [
            {
                "version": version,
                "axes": [
                    {"name": "c", "type": "channel"},
                    {"name": "y", "type": "space", "unit": "micrometer"},
                    {"name": "x", "type": "space", "unit": "micrometer"},
                ],
                "datasets": [
                    {
                        "path": str(k),
                        "coordinateTransformations": [
                            {
                                "type": "scale",
                                "scale": [1, 1.5 * 2**k, 1.5 * 2**k],
                            }
                        ],
                    }
                    for k in range(2)
                ],
            }
        ]
        if fmt == 2:
            root.attrs["multiscales"] = multiscales
        else:
            root.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
        assert is_zarr(path) and is_lazy_readable(path)
        slide = open_lazy(path)
        assert [lv.shape for lv in slide.levels] == [
            (256, 320, 3),
            (128, 160, 3),
        ], version
        np.testing.assert_array_equal(read_region(slide.data), image)
        assert slide.pixel_size_um == pytest.approx(1.5), version


def test_a_zarr_group_without_multiscales_is_refused(tmp_path):
    path = tmp_path / "plain.zarr"
    zarr.open_group(str(path), mode="w")
    with pytest.raises(ThinsegError, match="multiscales"):
        open_lazy(path)
    with pytest.raises(ThinsegError, match="no such"):
        open_lazy(tmp_path / "missing.tif")
    other = tmp_path / "notes.txt"
    other.write_text("")
    with pytest.raises(ThinsegError, match="TIFF"):
        open_lazy(other)


def test_a_png_photo_is_served_whole_as_the_same_kind_of_array(tmp_path):
    from napari_thinseg.imaging.files import write_png

    image = _rgb(50, 70)
    path = write_png(tmp_path / "photo.png", image, pixel_size_um=2.0)
    photo = open_lazy(path)
    assert isinstance(photo.data, da.Array) and len(photo.levels) == 1
    np.testing.assert_array_equal(read_region(photo.data), image)
    assert photo.pixel_size_um == pytest.approx(2.0, rel=1e-3)


def test_twelve_bit_range_is_found_block_by_block():
    data = np.zeros((5000, 300), np.uint16)
    data[4900, 10] = 4000  # in the second block row only
    lazy = da.from_array(data, chunks=1000)
    assert lazy_data_range(lazy) == (0.0, 4095.0)
    assert lazy_data_range(da.zeros((10, 10), dtype=np.uint8)) == (0.0, 255.0)
    floats = da.from_array(np.linspace(-1, 3, 100).reshape(10, 10))
    assert lazy_data_range(floats) == (-1.0, 3.0)
