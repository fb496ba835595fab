"""Layer scale from the pixel size an image file records.

napari opens a TIFF or PNG with scale 1 whatever its resolution tags say.
Once any of the plugin's docks is open, every Image layer read from a file
that records a pixel size (:func:`~..imaging.pixel_size.file_pixel_size_um`:
OME-XML, ImageJ, TIFF resolution tags, PNG pHYs) and still has scale 1
gets that size as its scale, in micrometres; predictions and auto-labels
copy it, and Measure reports areas in mm2 and grain sizes in um without
typing. A scale the user set is never changed.
"""

from __future__ import annotations

import weakref

from napari.layers import Image

from ..imaging.pixel_size import file_pixel_size_um
from .notify import notify_info

PIXEL_SIZE_KEY = "thinseg_pixel_size_um"
"""Metadata key: the pixel size (um) the layer's scale was set from."""

_followed: weakref.WeakSet = weakref.WeakSet()


def scale_from_file(layer) -> float | None:
    """Set ``layer``'s scale from its file's pixel size (an Image layer
    read from a file, scale still 1); returns the size set, else None."""
    if not isinstance(layer, Image) or PIXEL_SIZE_KEY in layer.metadata:
        return None
    path = getattr(getattr(layer, "source", None), "path", None)
    if not path or any(float(s) != 1.0 for s in layer.scale[-2:]):
        return None
    um = file_pixel_size_um(path)
    if um is None:
        return None
    layer.scale = (*tuple(layer.scale)[:-2], um, um)
    layer.metadata = {**layer.metadata, PIXEL_SIZE_KEY: um}
    notify_info(
        f"{layer.name}: {um:g} µm per pixel, from the file; the layer's "
        "scale is in micrometres"
    )
    return um


def follow_file_pixel_sizes(viewer) -> None:
    """Give the viewer's image layers, open and to come, their files'
    pixel sizes (once per viewer, whichever dock asks first)."""
    layers = viewer.layers
    if layers in _followed:
        return
    _followed.add(layers)
    for layer in list(layers):
        scale_from_file(layer)
    layers.events.inserted.connect(lambda event: scale_from_file(event.value))
