"""Reading thin-section images and writing annotation PNGs, safely.

Every read error becomes a one-line :class:`ThinsegError` naming the file;
every write goes to a temporary file in the target folder and is renamed
into place, so a crash never leaves a half-written file under the real name
and an existing file is replaced only when the caller says ``overwrite``.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .errors import ThinsegError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MIN_SIDE = 2
"""Smallest image side in pixels that anything here accepts."""


def read_image(path: str | Path) -> np.ndarray:
    """Read a 2D image (gray, RGB, RGBA; 8/16-bit or float) from disk.

    TIFFs go through tifffile (16-bit and float survive), everything else
    through imageio.

    Raises
    ------
    ThinsegError
        Missing, empty, unreadable or too small files.
    """
    path = Path(path)
    if not path.is_file():
        raise ThinsegError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ThinsegError(f"{path}: empty file (0 bytes)")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            data = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            # Pillow sniffs the format from the bytes (a JPEG named .png
            # still reads) and, unlike the plugin search, fails quietly
            data = iio.imread(path, plugin="pillow")
    except Exception as exc:  # any decoder failure is a bad input file
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ThinsegError(
            f"{path}: not a readable image ({reason})"
        ) from None
    data = np.asarray(data)
    check_image(data, str(path))
    return data


def check_image(data: np.ndarray, name: str = "image") -> None:
    """Refuse arrays that are not a usable 2D image or a stack of them."""
    if data.dtype.kind not in "uifb":
        raise ThinsegError(f"{name}: pixel type {data.dtype} is not an image")
    if data.ndim < 2:
        raise ThinsegError(f"{name}: {data.ndim}D array is not an image")
    spatial = (
        data.shape[:2]
        if data.ndim == 2 or data.shape[-1] in (1, 2, 3, 4)
        else data.shape[-2:]
    )
    if min(spatial) < MIN_SIDE:
        raise ThinsegError(
            f"{name}: image is {spatial[0]}x{spatial[1]} pixels, too small "
            f"(at least {MIN_SIDE}x{MIN_SIDE})"
        )
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise ThinsegError(f"{name}: image contains NaN or infinite values")


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


def ensure_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) or explain in one line why not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ThinsegError(f"{path}: exists and is not a folder") from None
    except OSError as exc:
        raise ThinsegError(
            f"{path}: cannot create folder ({exc.strerror or exc})"
        ) from None
    if not os.access(path, os.W_OK):
        raise ThinsegError(f"{path}: folder is not writable")
    return path


def refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Raise if any of ``paths`` exists and ``overwrite`` is off."""
    if overwrite:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise ThinsegError(
            f"{existing[0]}{more}: already exists (use overwrite to replace)"
        )


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".part", dir=path.parent
    )
    try:
        # mkstemp makes private (0600) files; give the result the mode any
        # new file of the user's gets
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ThinsegError(
            f"{path}: cannot write ({exc.strerror or exc})"
        ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8/uint16 gray, RGB or RGBA array."""
    import imageio.v3 as iio

    buf = io.BytesIO()
    iio.imwrite(buf, array, extension=".png")
    return buf.getvalue()


def write_png(
    path: str | Path, array: np.ndarray, overwrite: bool = False
) -> Path:
    """Write ``array`` as a PNG, atomically, never replacing a file unasked."""
    path = Path(path)
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    return atomic_write_bytes(path, encode_png(array))


def write_tiff(
    path: str | Path, array: np.ndarray, overwrite: bool = False
) -> Path:
    """Write ``array`` (e.g. a label stack) as a TIFF, atomically."""
    import tifffile

    path = Path(path)
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    buf = io.BytesIO()
    tifffile.imwrite(buf, array)
    return atomic_write_bytes(path, buf.getvalue())


def write_annotation(
    path: str | Path, labels: np.ndarray, overwrite: bool = False
) -> Path:
    """Write class ids as an 8-bit single-channel annotation PNG."""
    return write_png(path, check_labels(labels, str(path)), overwrite)


def read_annotation(path: str | Path) -> np.ndarray:
    """Read an annotation PNG as uint8 class ids (first channel if RGB:
    keras-segmentation stores the id in every channel)."""
    data = read_image(path)
    if data.ndim == 3:
        data = data[..., 0]
    return check_labels(data, str(path))
