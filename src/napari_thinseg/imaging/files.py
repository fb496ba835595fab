"""Image files: reading thin-section images and annotations, writing
annotation PNGs and TIFFs.

Every read error becomes a one-line :class:`ThinsegError` naming the file;
writes go through :mod:`.atomic`, so a crash never leaves a half-written
file and an existing file is replaced only when the caller says
``overwrite``.
"""

from __future__ import annotations

import contextlib
import io
import math
import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from .atomic import atomic_write_bytes, ensure_dir, refuse_existing

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MIN_SIDE = 2
"""Smallest image side in pixels that anything here accepts."""
MAX_PIXELS = 1 << 30
"""Most pixels (all planes of a stack together) read from one file, about
32768 x 32768: whole-slide thin-section scans of 20000 x 20000 read, while
a small file declaring a larger image (a decompression bomb) is refused
before anything is allocated. Applied to TIFFs, PNGs (animated ones with
all their frames), JPEGs and BMPs alike."""
MAX_BYTES = 8 * MAX_PIXELS
"""Most bytes one TIFF may decode to (16-bit RGBA at :data:`MAX_PIXELS`)."""
MAX_TIFF_PAGES = 65536
"""Most pages (planes) of one TIFF."""

# what decoders raise when unexpected data trips them up rather than on
# purpose: their message alone ("list index out of range") would not say
# that the file is damaged
_DECODER_SLIPS = (
    ArithmeticError,
    AssertionError,
    AttributeError,
    IndexError,
    KeyError,
    RecursionError,
    TypeError,
    struct.error,
)


def read_image(path: str | Path) -> np.ndarray:
    """Read a 2D image (gray, RGB, RGBA; 8/16-bit or float) from disk.

    TIFFs go through tifffile (16-bit and float survive), everything else
    through imageio.

    Raises
    ------
    ThinsegError
        Missing, empty, unreadable, damaged or too small files, and files
        declaring more than :data:`MAX_PIXELS` pixels.
    """
    path = Path(path)
    if not path.is_file():
        raise ThinsegError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ThinsegError(f"{path}: empty file (0 bytes)")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            data = _read_tiff(path)
        else:
            data = _read_pillow(path)
    except ThinsegError:
        raise
    except Exception as exc:  # any decoder failure is a bad input file
        raise ThinsegError(
            f"{path}: not a readable image ({_reason(exc)})"
        ) from None
    data = np.asarray(data)
    check_image(data, str(path))
    return data


def _reason(exc: Exception) -> str:
    """Why a decoder gave up on a file, as one short line."""
    if isinstance(exc, MemoryError):
        return "too large to decode (out of memory)"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if isinstance(exc, _DECODER_SLIPS):
        text = f"damaged or unsupported file: {type(exc).__name__}: {text}"
    return text if len(text) <= 200 else text[:197] + "..."


def _check_size(path: Path, pixels: int, what: str, nbytes: int = 0):
    """Refuse a file that declares more than :data:`MAX_PIXELS` pixels or
    :data:`MAX_BYTES` bytes, before it is decoded."""
    if pixels > MAX_PIXELS or nbytes > MAX_BYTES:
        raise ThinsegError(
            f"{path}: declares {what} ({pixels:,} pixels"
            f"{f', {nbytes / 2**30:.1f} GiB' if nbytes else ''}), more than "
            f"the {MAX_PIXELS:,} pixels ({MAX_BYTES / 2**30:.1f} GiB) read at "
            "most; crop or tile it"
        )


def _read_pillow(path: Path) -> np.ndarray:
    """Pixels of a PNG, JPEG, BMP... (all frames of an animated one)."""
    import imageio.v3 as iio
    from imageio.core.request import InitializationError

    try:
        # Pillow sniffs the format from the bytes (a JPEG named .png still
        # reads) and, unlike the plugin search, fails quietly
        with _pillow_limit(MAX_PIXELS):
            file = iio.imopen(path, "r", plugin="pillow")
    except OSError as exc:
        # imageio says "can not handle the given uri" or "an unknown error
        # occurred"; what Pillow said (a decompression bomb...) is the cause
        if isinstance(exc.__cause__, InitializationError):
            raise ThinsegError(
                f"{path}: not a readable image (unknown format or damaged "
                "header)"
            ) from None
        raise exc.__cause__ or exc from None
    with file:
        # Pillow checks the size of each frame; an animated PNG can repeat
        # a tiny frame over a large canvas thousands of times
        props = file.properties()
        frames = props.n_images or 1
        h, w = props.shape[1:3] if props.n_images else props.shape[:2]
        what = f"{frames} frames of {w} x {h}" if frames > 1 else f"{w} x {h}"
        _check_size(path, frames * h * w, what)
        with _pillow_limit(MAX_PIXELS):
            return file.read()


@contextlib.contextmanager
def _pillow_limit(pixels: int):
    """Pillow's decompression-bomb limit set to ``pixels`` (it refuses
    twice its ``MAX_IMAGE_PIXELS`` and warns above it) while we read, then
    put back: other napari readers keep Pillow's own."""
    import warnings

    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = pixels // 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _check_tiff_pages(path: Path) -> None:
    """Follow a TIFF's chain of pages (IFDs) as tifffile will, refusing a
    chain that loops or runs past :data:`MAX_TIFF_PAGES`: tifffile spots a
    loop only if it closes within 100 pages, else it follows it for 2**32
    pages (a 1 kB file hangs it)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16).ljust(16, b"\0")
        order = {b"II": "<", b"MM": ">"}.get(head[:2])
        if order is None:
            return  # not a TIFF: tifffile says so
        if struct.unpack(order + "H", head[2:4])[0] == 43:  # BigTIFF
            count, entry, pointer = order + "Q", 20, order + "Q"
            offset = struct.unpack(pointer, head[8:16])[0]
        else:
            count, entry, pointer = order + "H", 12, order + "I"
            offset = struct.unpack(pointer, head[4:8])[0]
        seen: set[int] = set()
        while 0 < offset < size:
            if offset in seen:
                raise ThinsegError(
                    f"{path}: not a readable image (damaged file: its chain "
                    "of pages loops)"
                )
            if len(seen) == MAX_TIFF_PAGES:
                raise ThinsegError(
                    f"{path}: more than {MAX_TIFF_PAGES:,} pages; split the "
                    "stack"
                )
            seen.add(offset)
            f.seek(offset)
            raw = f.read(struct.calcsize(count))
            if len(raw) < struct.calcsize(count):
                return
            tags = struct.unpack(count, raw)[0]
            if tags > 4096:  # tifffile stops here ("suspicious")
                return
            f.seek(offset + len(raw) + tags * entry)
            raw = f.read(struct.calcsize(pointer))
            if len(raw) < struct.calcsize(pointer):
                return
            offset = struct.unpack(pointer, raw)[0]


def _read_tiff(path: Path) -> np.ndarray:
    """Pixels of a TIFF with its samples last, refusing channel layouts
    that are not gray, gray + alpha, RGB or RGBA."""
    import tifffile

    _check_tiff_pages(path)
    with tifffile.TiffFile(path) as tif:
        # counting the pages first keeps tifffile from walking past the
        # last one while it groups them into series (it loops forever on
        # some damaged files)
        len(tif.pages)
        series = tif.series[0]
        page = series.pages[0]
        axes = series.axes
        # tifffile allocates what the header declares: check it first
        shape = tuple(series.shape)
        values = math.prod(shape)
        per_pixel = shape[axes.index("S")] if "S" in axes else 1
        _check_size(
            path,
            values // max(per_pixel, 1),
            " x ".join(map(str, shape)) + f" {series.dtype}",
            values * np.dtype(series.dtype).itemsize,
        )
        data = series.asarray()
        photometric = tifffile.PHOTOMETRIC(page.photometric)
        samples = page.samplesperpixel
        extra = tuple(page.extrasamples or ())
    if "S" in axes:
        # planar (separate) files put the samples first
        data = np.moveaxis(data, axes.index("S"), -1)
    if samples == 1:
        return data
    alpha = bool(extra) and extra[0] in (1, 2)  # associated / unassociated
    if photometric == tifffile.PHOTOMETRIC.RGB:
        # extra samples that are not alpha (infrared, masks...) are dropped
        return data[..., : 4 if alpha else 3]
    gray = photometric == tifffile.PHOTOMETRIC.MINISBLACK
    if gray and samples == 2 and alpha:
        return data
    raise ThinsegError(
        f"{path}: {samples}-channel TIFF ({photometric.name}"
        f"{', extra samples not alpha' if extra and not alpha else ''}) is "
        "not gray, RGB or RGBA; save it as RGB"
    )


def check_image(data: np.ndarray, name: str = "image") -> None:
    """Refuse arrays that are not a usable 2D image or a stack of them."""
    if data.dtype.kind not in "uifb":
        raise ThinsegError(f"{name}: pixel type {data.dtype} is not an image")
    if data.ndim < 2:
        raise ThinsegError(f"{name}: {data.ndim}D array is not an image")
    # (H, W), (H, W, C), (Z, H, W) or (Z, H, W, C), C = 1..4 as napari
    spatial = (
        data.shape[-3:-1]
        if data.ndim > 2 and data.shape[-1] in (1, 2, 3, 4)
        else data.shape[-2:]
    )
    if min(spatial) < MIN_SIDE:
        raise ThinsegError(
            f"{name}: image is {spatial[0]}x{spatial[1]} pixels, too small "
            f"(at least {MIN_SIDE}x{MIN_SIDE})"
        )
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise ThinsegError(f"{name}: image contains NaN or infinite values")


def is_stack(data: np.ndarray) -> bool:
    """Whether ``data`` is a stack of 2D images (gray or RGB/RGBA planes)
    rather than one image; the last axis holds colours when it has 1-4
    entries, as napari guesses."""
    data = np.asarray(data)
    return data.ndim == 4 or (data.ndim == 3 and data.shape[-1] > 4)


def list_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted list of image files.

    Folders contribute their image files (by suffix, not recursive); files
    are taken as given so that a wrong file gets a clear read error later.
    """
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(
                f
                for f in p.iterdir()
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
            if not files:
                raise ThinsegError(f"{p}: folder holds no images")
            found.extend(files)
        elif p.exists():
            found.append(p)
        else:
            raise ThinsegError(f"{p}: no such file or folder")
    return found


def output_paths(
    inputs: Iterable[str | Path], out: str | Path, suffix: str = ".png"
) -> list[Path]:
    """``out/<stem><suffix>`` for each input; two inputs of one stem
    (``a.png`` and ``a.tif``) are refused before any work, since their
    outputs would be one file. The CLI and the Folders tab both plan by
    it."""
    seen: dict[str, Path] = {}
    for p in map(Path, inputs):
        if p.stem in seen:
            raise ThinsegError(
                f"{p}: same name as {seen[p.stem]}; outputs would collide"
            )
        seen[p.stem] = p
    return [Path(out) / f"{stem}{suffix}" for stem in seen]


def check_labels(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """Return ``labels`` as uint8 class ids, refusing what a PNG can't hold."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "b":
        return labels.astype(np.uint8)
    if labels.dtype.kind not in "ui":
        if labels.dtype.kind == "f" and np.all(np.mod(labels, 1) == 0):
            labels = labels.astype(np.int64)
        else:
            raise ThinsegError(
                f"{name}: labels must be integers, got {labels.dtype}"
            )
    if labels.size and labels.min() < 0:
        raise ThinsegError(f"{name}: negative label {labels.min()}")
    if labels.size and labels.max() > 255:
        raise ThinsegError(
            f"{name}: label {labels.max()} > 255 does not fit an 8-bit "
            "annotation PNG"
        )
    return labels.astype(np.uint8, copy=False)


def encode_png(array: np.ndarray, pixel_size_um: float | None = None) -> bytes:
    """PNG bytes of a uint8/uint16 gray, RGB or RGBA array; with
    ``pixel_size_um``, recorded in the pHYs chunk."""
    import imageio.v3 as iio

    from .pixel_size import png_dpi

    buf = io.BytesIO()
    dpi = png_dpi(pixel_size_um)
    extra = {} if dpi is None else {"dpi": dpi}
    iio.imwrite(buf, array, extension=".png", **extra)
    return buf.getvalue()


def write_png(
    path: str | Path,
    array: np.ndarray,
    overwrite: bool = False,
    pixel_size_um: float | None = None,
) -> Path:
    """Write ``array`` as a PNG, atomically, never replacing a file unasked
    (``pixel_size_um``: see :func:`encode_png`)."""
    path = Path(path)
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    return atomic_write_bytes(path, encode_png(array, pixel_size_um))


def write_tiff(
    path: str | Path, array: np.ndarray, overwrite: bool = False
) -> Path:
    """Write ``array`` (e.g. a label stack) as a TIFF, atomically."""
    import tifffile

    path = Path(path)
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    buf = io.BytesIO()
    # say what the planes are: tifffile would take a (3, H, W) label stack
    # for one RGB image
    rgb = array.ndim >= 3 and array.shape[-1] in (3, 4)
    tifffile.imwrite(buf, array, photometric="rgb" if rgb else "minisblack")
    return atomic_write_bytes(path, buf.getvalue())


def write_annotation(
    path: str | Path,
    labels: np.ndarray,
    overwrite: bool = False,
    pixel_size_um: float | None = None,
) -> Path:
    """Write class ids as an 8-bit single-channel annotation PNG (with the
    pixel size of the image they label, when known)."""
    labels = check_labels(labels, str(path))
    return write_png(path, labels, overwrite, pixel_size_um)


def read_annotation(path: str | Path) -> np.ndarray:
    """Read an annotation PNG as uint8 class ids (first channel if RGB:
    keras-segmentation stores the id in every channel)."""
    data = read_image(path)
    if data.ndim == 3 and data.shape[-1] in (1, 2, 3, 4):
        data = data[..., 0]
    if data.ndim != 2:
        # a stack's first column would pass for a label image
        raise ThinsegError(
            f"{path}: an annotation is one 2D label image, got shape "
            f"{data.shape}"
        )
    return check_labels(data, str(path))
