"""Whole-slide images opened lazily: TIFF / OME-TIFF / BigTIFF (tiled,
striped or pyramidal) and OME-Zarr, as dask arrays read tile by tile
(PNG, JPEG and BMP photos, which have no tiles, are read whole).

A scan of 30,000 x 30,000 pixels is 2.7 GB of RGB; nothing here reads
more of it than the region asked for. TIFFs go through tifffile's zarr
store (each TIFF tile or strip a chunk) or, for uncompressed contiguous
pages, a read-only memory map; OME-Zarr (NGFF 0.4 on zarr v2, 0.5 on
zarr v3) through ``zarr``. Every level of a pyramid becomes one array,
full resolution first, with axes ``(y, x)`` or ``(y, x, channel)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ThinsegError

ZARR_SUFFIXES = (".zarr",)
ZARR_METADATA = ("zarr.json", ".zgroup", ".zarray", ".zattrs")
"""The files that make a folder a zarr store (v3, then v2)."""
TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
BLOCK_SIDE = 4096
"""Side of the blocks whole-image statistics are gathered in (48 MB of
RGB uint8 at a time)."""


@dataclass
class LazyImage:
    """An image on disk, read lazily.

    Attributes
    ----------
    path : Path
        The file or ``.zarr`` folder.
    levels : list of dask arrays
        Full resolution first, then the pyramid's coarser levels (if any);
        axes ``(y, x)`` or ``(y, x, channel)``.
    pixel_size_um : float or None
        Micrometres per pixel of the full-resolution level, when recorded.
    """

    path: Path
    levels: list
    pixel_size_um: float | None = None

    @property
    def data(self):
        """The full-resolution level."""
        return self.levels[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.levels[0].shape)

    @property
    def dtype(self) -> np.dtype:
        return self.levels[0].dtype

    @property
    def megapixels(self) -> float:
        return self.shape[0] * self.shape[1] / 1e6


def is_zarr(path: str | Path) -> bool:
    """Whether ``path`` is a zarr folder (v2 or v3 metadata)."""
    path = Path(path)
    return path.is_dir() and any(
        (path / name).is_file() for name in ZARR_METADATA
    )


def is_lazy_readable(path: str | Path) -> bool:
    """Whether :func:`open_lazy` takes ``path``: a TIFF or a zarr folder."""
    path = Path(path)
    return is_zarr(path) or (
        path.is_file() and path.suffix.lower() in TIFF_SUFFIXES
    )


def open_lazy(path: str | Path) -> LazyImage:
    """Open a TIFF or OME-Zarr image lazily (see the module docstring).

    Raises
    ------
    ThinsegError
        Missing or unreadable file, or not a 2D (gray / RGB / views)
        image.
    """
    path = Path(path)
    if is_zarr(path):
        return _open_zarr(path)
    if not path.exists():
        raise ThinsegError(f"{path}: no such file or folder")
    if path.suffix.lower() in TIFF_SUFFIXES:
        return _open_tiff(path)
    from .files import IMAGE_SUFFIXES

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ThinsegError(
            f"{path}: whole-slide images are read from TIFF / OME-TIFF / "
            "BigTIFF files or OME-Zarr folders"
        )
    return _open_whole(path)


def _open_whole(path: Path) -> LazyImage:
    """A PNG / JPEG / BMP photo, which has no tiles to read one by one:
    read whole (these formats stay far below slide sizes), served as
    the same kind of array."""
    import dask.array as da

    from .files import read_image
    from .pixel_size import file_pixel_size_um

    image = read_image(path)
    if image.ndim == 3 and image.shape[-1] not in (3, 4):
        raise ThinsegError(
            f"{path}: a 2D image is needed, got shape {image.shape}"
        )
    array = da.from_array(image, chunks=_chunks(image))
    return LazyImage(path, [array], file_pixel_size_um(path))


# -- TIFF ----------------------------------------------------------------
def _open_tiff(path: Path) -> LazyImage:
    import dask.array as da
    import tifffile
    import zarr

    from .pixel_size import file_pixel_size_um

    try:
        tif = tifffile.TiffFile(path)
        series = tif.series[0]
        axes = series.axes
        node = zarr.open(series.aszarr(), mode="r")
        if isinstance(node, zarr.Group):  # pyramid: one array a level
            levels = [da.from_zarr(node[key]) for key in sorted(node, key=int)]
        else:
            levels = [da.from_zarr(node)]
        if series.dataoffset is not None:
            # uncompressed and contiguous: a memory map pages in only what
            # is read (zarr would read a single-strip page whole)
            array = tifffile.memmap(path, series=0, level=0, mode="r")
            levels[0] = da.from_array(array, chunks=_chunks(array))
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise ThinsegError(f"{path}: cannot read as TIFF ({exc})") from None
    levels = [_yx_last(level, axes, path) for level in levels]
    return LazyImage(path, levels, file_pixel_size_um(path))


def _chunks(array) -> tuple:
    return (1024, 1024, *array.shape[2:])[: array.ndim]


def _yx_last(array, axes: str, path: Path):
    """``array`` with axes ``(y, x[, channel])``: singleton axes dropped,
    channels (S, or C of a planar file) moved last."""
    axes = axes.upper()
    index = []
    kept = ""
    for name, size in zip(axes, array.shape, strict=True):
        if name in "YXSC" or size > 1:
            index.append(slice(None))
            kept += name
        else:
            index.append(0)
    array = array[tuple(index)]
    extra = [a for a in kept if a not in "YXSC"]
    if extra or "Y" not in kept or "X" not in kept:
        raise ThinsegError(
            f"{path}: a 2D image is needed, got axes {axes} "
            f"{tuple(array.shape)}; save one plane"
        )
    channel = [a for a in kept if a in "SC"]
    if len(channel) > 1:
        raise ThinsegError(f"{path}: more than one channel axis ({axes})")
    order = [kept.index("Y"), kept.index("X")] + [
        kept.index(a) for a in channel
    ]
    array = array.transpose(order)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    return array


# -- OME-Zarr ------------------------------------------------------------
def ngff_attrs(path: str | Path) -> dict:
    """The group attributes of a zarr folder (v2 ``.zattrs`` or v3
    ``zarr.json``), NGFF 0.5's ``ome`` level taken off; empty if none."""
    path = Path(path)
    for name in (".zattrs", "zarr.json"):
        try:
            meta = json.loads((path / name).read_text())
        except (OSError, ValueError):
            continue
        attrs = meta.get("attributes", {}) if name == "zarr.json" else meta
        if isinstance(attrs, dict):
            return dict(attrs.get("ome", attrs))
    return {}


def multiscales_of(path: str | Path) -> dict | None:
    """The NGFF ``multiscales`` entry of an OME-Zarr folder (0.4 or 0.5),
    None for a plain zarr array or group."""
    found = ngff_attrs(path).get("multiscales")
    return found[0] if found else None


def _open_zarr(path: Path) -> LazyImage:
    import dask.array as da
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
        multiscales = multiscales_of(path)
        if isinstance(node, zarr.Array):
            return LazyImage(
                path,
                [_yx_last(da.from_zarr(node), _guess_axes(node.shape), path)],
            )
        if multiscales is None:
            raise ThinsegError(
                f"{path}: a zarr group without OME-Zarr multiscales metadata"
            )
        axes = "".join(
            (a["name"] if isinstance(a, dict) else a)[0]
            for a in multiscales.get("axes", ["y", "x"])
        )
        if len(axes) != node[multiscales["datasets"][0]["path"]].ndim:
            axes = _guess_axes(node[multiscales["datasets"][0]["path"]].shape)
        levels = [
            _yx_last(da.from_zarr(node[d["path"]]), axes, path)
            for d in multiscales["datasets"]
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ThinsegError(
            f"{path}: cannot read as OME-Zarr ({exc})"
        ) from None
    return LazyImage(path, levels, _ngff_pixel_size(multiscales, axes))


def _guess_axes(shape) -> str:
    if len(shape) == 2:
        return "YX"
    if len(shape) == 3:
        return "YXC" if shape[2] <= 6 else "CYX"
    return "TCZYX"[-len(shape) :]


_NGFF_UNIT_UM = {"micrometer": 1.0, "nanometer": 1e-3, "millimeter": 1e3}


def _ngff_pixel_size(multiscales: dict, axes: str) -> float | None:
    """Micrometres per pixel along y of the full-resolution level."""
    from .pixel_size import _plausible

    try:
        unit = next(
            a.get("unit")
            for a in multiscales.get("axes", [])
            if isinstance(a, dict) and a.get("name") == "y"
        )
        transforms = multiscales["datasets"][0]["coordinateTransformations"]
        scale = next(t["scale"] for t in transforms if t["type"] == "scale")
        um = float(scale[axes.upper().index("Y")]) * _NGFF_UNIT_UM[unit]
    except (StopIteration, KeyError, ValueError, IndexError, TypeError):
        return None
    return _plausible(um)


def read_region(array) -> np.ndarray:
    """A region of a lazy (dask, zarr) or in-memory array as numpy, read
    in this thread: never sent to a dask cluster, whose workers could not
    take the open file (the default scheduler inside a worker or next to
    a ``Client`` would try)."""
    if hasattr(array, "compute"):
        return np.asarray(array.compute(scheduler="synchronous"))
    return np.asarray(array)


# -- statistics without loading --------------------------------------------
def blocks(shape, side: int = BLOCK_SIDE):
    """Slices of the ``side`` x ``side`` blocks covering ``shape[:2]``,
    row by row."""
    for y in range(0, shape[0], side):
        for x in range(0, shape[1], side):
            yield np.s_[y : y + side, x : x + side]


def lazy_data_range(array) -> tuple[float, float]:
    """:func:`~.convert.data_range` of a lazy array, block by block (only
    unsigned integers above 8 bits need a pass: their bit depth)."""
    from .convert import data_range

    dtype = np.dtype(array.dtype)
    if dtype.kind != "u" or dtype.itemsize == 1:
        if dtype.kind in "uib":
            return data_range(np.zeros(1, dtype))
        lo, hi = np.inf, -np.inf
        for block in blocks(array.shape):
            part = read_region(array[block])
            lo, hi = min(lo, float(part.min())), max(hi, float(part.max()))
        return data_range(np.array([lo, hi], dtype))
    top = max(int(read_region(array[b]).max()) for b in blocks(array.shape))
    return data_range(np.array([top], dtype))
