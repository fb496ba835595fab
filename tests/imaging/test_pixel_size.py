"""Pixel sizes from the files microscope cameras write."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_thinseg.imaging.pixel_size import file_pixel_size_um, png_dpi

IMAGE = np.zeros((8, 10, 3), np.uint8)


def test_ome_tiff_physical_size(tmp_path):
    path = tmp_path / "scan.ome.tif"
    tifffile.imwrite(
        path,
        IMAGE,
        photometric="rgb",
        metadata={
            "PhysicalSizeX": 0.345,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeY": 0.345,
        },
    )
    assert file_pixel_size_um(path) == pytest.approx(0.345)
    mm = tmp_path / "mm.ome.tif"
    tifffile.imwrite(
        mm,
        IMAGE,
        photometric="rgb",
        metadata={"PhysicalSizeX": 0.0025, "PhysicalSizeXUnit": "mm"},
    )
    assert file_pixel_size_um(mm) == pytest.approx(2.5)


def test_imagej_tiff_with_micron_unit(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path,
        IMAGE[..., 0],
        imagej=True,
        resolution=(1 / 2.5, 1 / 2.5),
        metadata={"unit": "micron"},
    )
    assert file_pixel_size_um(path) == pytest.approx(2.5)


def test_plain_tiff_resolution_tags(tmp_path):
    cm = tmp_path / "cm.tif"
    # 4000 px per cm = 2.5 um per px
    tifffile.imwrite(
        cm,
        IMAGE,
        photometric="rgb",
        resolution=(4000, 4000),
        resolutionunit="CENTIMETER",
    )
    assert file_pixel_size_um(cm) == pytest.approx(2.5)
    inch = tmp_path / "inch.tif"
    tifffile.imwrite(
        inch,
        IMAGE,
        photometric="rgb",
        resolution=(10160, 10160),
        resolutionunit="INCH",
    )
    assert file_pixel_size_um(inch) == pytest.approx(2.5)


@pytest.mark.parametrize("dpi", [72, 96, 300])
def test_print_densities_are_no_pixel_size(tmp_path, dpi):
    path = tmp_path / "edited.tif"
    tifffile.imwrite(
        path,
        IMAGE,
        photometric="rgb",
        resolution=(dpi, dpi),
        resolutionunit="INCH",
    )
    assert file_pixel_size_um(path) is None
    png = tmp_path / "edited.png"
    Image.fromarray(IMAGE).save(png, dpi=(dpi, dpi))
    assert file_pixel_size_um(png) is None


def test_png_phys_and_nothing_recorded(tmp_path):
    png = tmp_path / "labels.png"
    Image.fromarray(IMAGE).save(png, dpi=png_dpi(2.5))
    assert file_pixel_size_um(png) == pytest.approx(2.5, rel=1e-3)
    bare = tmp_path / "bare.png"
    Image.fromarray(IMAGE).save(bare)
    assert file_pixel_size_um(bare) is None
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, IMAGE, photometric="rgb")
    assert file_pixel_size_um(plain) is None
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    assert file_pixel_size_um(broken) is None
    assert file_pixel_size_um(tmp_path / "photo.jpg") is None
