"""The pixel size a thin-section image file records, in micrometres.

Microscope cameras and slide scanners write it in one of:

- OME-XML (OME-TIFF): ``Pixels`` ``PhysicalSizeX`` / ``PhysicalSizeY``
  with ``PhysicalSizeXUnit`` (default micrometre);
- ImageJ TIFFs: ``XResolution`` pixels per ``unit`` (``micron``, ``um``,
  ``mm``, ``cm``...) from the ImageJ description;
- plain TIFF tags: ``XResolution`` / ``YResolution`` pixels per
  ``ResolutionUnit`` (inch or centimetre);
- PNG: the ``pHYs`` chunk, pixels per metre.

A resolution in pixels per inch of 72, 96, 150 or 300 (what editors and
scanners write when they know nothing about the optics, a display or print
density) is not a pixel size and gives None, as does anything missing,
non-positive or outside :data:`PLAUSIBLE_UM`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

PLAUSIBLE_UM = (0.01, 1000.0)
"""Pixel sizes (um) taken as real: from a 100x objective on a fine sensor
to a coarse overview scan."""

PRINT_DPI = (72, 96, 150, 200, 240, 300, 600)
"""Pixels per inch written by editors and scanners as a print or screen
density, which say nothing about the optics."""

_UNIT_UM = {
    "pm": 1e-6,
    "nm": 1e-3,
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "mm": 1e3,
    "millimeter": 1e3,
    "cm": 1e4,
    "centimeter": 1e4,
    "m": 1e6,
    "inch": 25400.0,
    "in": 25400.0,
}


def _plausible(um: float | None) -> float | None:
    if um is None or not (PLAUSIBLE_UM[0] <= um <= PLAUSIBLE_UM[1]):
        return None
    return float(um)


def _unit_um(unit: str) -> float | None:
    # micro sign, Greek mu, or ImageJ's escaped "\u00B5m"
    key = unit.strip().lower().replace("\\u00b5", "u")
    return _UNIT_UM.get(key.replace("\u00b5", "u").replace("\u03bc", "u"))


def _ome_um(description: str) -> float | None:
    try:
        root = ET.fromstring(description)
    except ET.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Pixels":
            continue
        size = element.get("PhysicalSizeX")
        if size is None:
            return None
        scale = _unit_um(element.get("PhysicalSizeXUnit", "µm"))
        try:
            return _plausible(float(size) * scale) if scale else None
        except ValueError:
            return None
    return None


def _ratio(value) -> float | None:
    try:
        num, den = value
        return num / den if den else None
    except (TypeError, ValueError):
        try:
            return float(value)
        except (TypeError, ValueError):
            return None


def _tiff_um(path: Path) -> float | None:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        if tif.is_ome and tif.ome_metadata:
            found = _ome_um(tif.ome_metadata)
            if found is not None:
                return found
        tags = page.tags
        x_res = tags.get("XResolution")
        per_unit = _ratio(x_res.value) if x_res is not None else None
        if not per_unit or per_unit <= 0:
            return None
        if tif.is_imagej:
            unit = (tif.imagej_metadata or {}).get("unit", "")
            scale = _unit_um(str(unit))
            return _plausible(scale / per_unit) if scale else None
        unit_tag = tags.get("ResolutionUnit")
        unit = int(unit_tag.value) if unit_tag is not None else 2
        if unit == 2:  # inch
            if round(per_unit) in PRINT_DPI:
                return None
            return _plausible(25400.0 / per_unit)
        if unit == 3:  # centimetre
            return _plausible(1e4 / per_unit)
        return None


def _png_um(path: Path) -> float | None:
    from PIL import Image

    with Image.open(path) as im:
        dpi = im.info.get("dpi")
    if not dpi or not dpi[0] or round(dpi[0]) in PRINT_DPI:
        return None
    return _plausible(25400.0 / float(dpi[0]))


def file_pixel_size_um(path: str | Path) -> float | None:
    """The pixel size (um per pixel, along x) that ``path`` records, or
    None when it records none (see the module docstring). Never raises
    for an unreadable file: the image reader says what is wrong with it."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            return _tiff_um(path)
        if suffix == ".png":
            return _png_um(path)
    except Exception:  # noqa: BLE001 - damaged files: no pixel size
        return None
    return None


def png_dpi(pixel_size_um: float | None) -> tuple[float, float] | None:
    """The ``dpi`` that records ``pixel_size_um`` in a PNG's pHYs chunk."""
    if pixel_size_um is None:
        return None
    dpi = 25400.0 / pixel_size_um
    return dpi, dpi
