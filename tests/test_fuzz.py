"""Property-based tests of the readers, the auto-label and the measurements.

Over random shapes, dtypes and values (and damaged files), every call
either returns what its docstring promises or raises the documented
:class:`ThinsegError` with a one-line message (naming the file, for the
readers); any other exception, a crash or a wrong result is a finding.

The example counts here keep the module under a minute; the fuzz script
``tests/fuzz/fuzz_inputs.py`` runs the same tests on many more inputs by
setting ``THINSEG_FUZZ_SCALE`` before importing this module.
"""

from __future__ import annotations

import atexit
import collections
import functools
import io
import math
import os
import re
import shutil
import struct
import tempfile
import time
import warnings
import zlib
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_thinseg.autolabel.rule import (
    AutoLabelParams,
    EpoxyWindow,
    autolabel,
    epoxy_mask,
    label_scheme,
    labels_from_gray,
    multiotsu_thresholds,
)
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.convert import float_range, to_float
from napari_thinseg.imaging.files import (
    MAX_PIXELS,
    MIN_SIDE,
    check_image,
    check_labels,
    read_annotation,
    read_image,
)
from napari_thinseg.measure import grains, modal, report
from napari_thinseg.schemes import SANDSTONE, SEED, ClassScheme, PetroClass

SCALE = float(os.environ.get("THINSEG_FUZZ_SCALE", "1"))
"""Multiplies every test's example count (the fuzz script raises it)."""

COUNTS: collections.Counter = collections.Counter()
"""Inputs tried per test, and outcomes ("<test>: refused" ...)."""

SLOW_S = float(os.environ.get("THINSEG_FUZZ_SLOW_S", "inf"))
"""In the fuzz script, a single small input taking longer than this is a
finding (a hang); the test suite itself asserts no timings."""


def fuzz(n: int):
    """Hypothesis settings for ``n`` examples (times :data:`SCALE`)."""
    return settings(
        max_examples=max(1, round(n * SCALE)),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


def counted(test):
    """Count the examples a test runs (in :data:`COUNTS`)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        COUNTS[test.__name__] += 1
        return test(*args, **kwargs)

    return run


def one_line(exc: ThinsegError, name: str | None = None) -> None:
    """The documented error: one non-empty line (naming ``name``)."""
    msg = str(exc)
    assert msg.strip(), "empty ThinsegError message"
    assert len(msg.splitlines()) == 1, f"message is not one line: {msg!r}"
    if name is not None:
        assert name in msg, f"message does not name {name}: {msg!r}"


def attempt(target: str, fn, *args, name: str | None = None, **kwargs):
    """``fn(*args, **kwargs)``, or None if it raised the documented error;
    counts the input and the outcome under ``target``."""
    COUNTS[f"{target}: calls"] += 1
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # Pillow's DecompressionBombWarning and numpy's overflow notes
            # are no failures; results are checked below
            warnings.simplefilter("ignore")
            out = fn(*args, **kwargs)
    except ThinsegError as exc:
        one_line(exc, name)
        COUNTS[f"{target}: refused"] += 1
        return None
    finally:
        took = time.perf_counter() - start
        assert took < SLOW_S, f"{target} took {took:.0f} s"
    COUNTS[f"{target}: returned"] += 1
    return out


# -- scratch files -------------------------------------------------------
_SCRATCH: list[Path] = []


def scratch(name: str) -> Path:
    """A path in a temporary folder shared by the file tests (function
    fixtures and @given don't mix)."""
    if not _SCRATCH:
        folder = Path(tempfile.mkdtemp(prefix="thinseg-fuzz-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _SCRATCH.append(folder)
    return _SCRATCH[0] / name


# -- strategies ----------------------------------------------------------
IMAGE_DTYPES = (
    np.uint8,
    np.uint16,
    np.uint32,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.float16,
    np.float32,
    np.float64,
    np.bool_,
)


def mostly(valid, invalid, odds: int = 6):
    """``valid``, but ``invalid`` once in ``odds`` draws: every argument
    gets bad values, yet most calls get far enough to test the results."""
    # not k == 0: Hypothesis draws the ends of a range more often
    return st.integers(0, odds - 1).flatmap(
        lambda k: invalid if k == odds // 2 else valid
    )


def image_shapes(max_dims=4, max_side=7):
    """Mostly (H, W) and (H, W, 1..4) with sides 2..max_side; else any
    shape of 1..max_dims dims, sides 0..max_side, channels 1..5."""
    side = st.integers(MIN_SIDE, max_side)
    return mostly(
        st.one_of(
            st.tuples(side, side),
            st.tuples(side, side, st.integers(1, 4)),
        ),
        st.one_of(
            hnp.array_shapes(
                min_dims=1, max_dims=max_dims, min_side=0, max_side=max_side
            ),
            st.tuples(st.integers(0, 2), st.integers(0, 2)),
            st.tuples(side, side, st.integers(1, 5)),
        ),
        odds=3,
    )


@st.composite
def images(draw, dtypes=IMAGE_DTYPES, shapes=None, finite=False):
    """Arrays of a random dtype and shape; a third are constant. Float
    values lie in [0, 1] or anywhere (huge, tiny); one float array in four
    has NaN and inf too, unless ``finite``."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    shape = draw(shapes if shapes is not None else image_shapes())
    if dtype.kind == "f":
        width = dtype.itemsize * 8
        special = not finite and draw(st.integers(0, 3)) == 0
        elements = st.one_of(
            st.floats(0, 1, width=width),
            st.floats(width=width, allow_nan=special, allow_infinity=special),
        )
    else:
        elements = hnp.from_dtype(dtype)
    if draw(st.integers(0, 2)) == 0:
        return np.full(shape, draw(elements), dtype)
    return draw(hnp.arrays(dtype, shape, elements=elements))


def increasing_in_unit_interval(values) -> bool:
    values = list(values)
    return all(0 < v < 1 for v in values) and all(
        a < b for a, b in zip(values, values[1:], strict=False)
    )


def spatial_shape(image: np.ndarray) -> tuple[int, ...]:
    """(H, W) of a 2D gray or colour image."""
    return image.shape[:2]


# -- io: arrays written as files -----------------------------------------
def _write(path: Path, array: np.ndarray, writer: str, photometric) -> bool:
    """Write ``array`` with a third-party writer; False if it can't."""
    import tifffile

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if writer == "tiff":
                tifffile.imwrite(
                    path, array, photometric=photometric, metadata=None
                )
            else:
                path.write_bytes(_pillow(array, writer.upper()))
    except Exception:
        return False
    return path.exists() and path.stat().st_size > 0


def check_read(path: Path, target: str) -> np.ndarray | None:
    """read_image and read_annotation of ``path`` keep their promises."""
    data = attempt(target, read_image, path, name=str(path))
    if data is not None:
        assert isinstance(data, np.ndarray)
        check_image(data, "read_image's result")  # raises on a bad image
        assert data.size * data.itemsize <= 8 * MAX_PIXELS
    labels = attempt(target, read_annotation, path, name=str(path))
    if labels is not None:
        assert labels.dtype == np.uint8 and labels.ndim == 2
        assert data is not None and labels.shape == data.shape[:2]
        assert min(labels.shape) >= MIN_SIDE
    return data


@fuzz(60)
@given(
    array=images(),
    writer=st.sampled_from(["tiff", "tiff", "png", "png", "bmp", "jpeg"]),
    photometric=st.sampled_from([None, "minisblack", "rgb"]),
)
@counted
def test_read_written_arrays(array, writer, photometric):
    path = scratch(f"written.{writer}")
    path.unlink(missing_ok=True)
    if not _write(path, array, writer, photometric):
        COUNTS["test_read_written_arrays: writer refused"] += 1
        return
    data = check_read(path, "test_read_written_arrays")
    plain = (
        array.ndim == 2
        and min(array.shape) >= MIN_SIDE
        and (array.dtype.kind != "f" or np.isfinite(array).all())
    )
    if plain and writer == "tiff" and photometric != "rgb":
        # a plain gray TIFF comes back as it was written
        assert data is not None and data.dtype == array.dtype
        np.testing.assert_array_equal(data, array)
    if plain and writer == "png" and array.dtype in (np.uint8, np.uint16):
        assert data is not None
        np.testing.assert_array_equal(data, array)


# -- io: damaged files ---------------------------------------------------
def _tiff(array, **kwargs) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, array, **kwargs)
    return buf.getvalue()


def _pillow(array, fmt: str, **kwargs) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    image = array if isinstance(array, Image.Image) else Image.fromarray(array)
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


_SEEDS: dict[str, tuple[str, bytes]] = {}


def seed_files() -> dict[str, tuple[str, bytes]]:
    """Valid small files of every kind the readers meet: name -> (suffix,
    bytes)."""
    if _SEEDS:
        return _SEEDS
    from PIL import Image

    rng = np.random.default_rng(7)
    gray = rng.integers(0, 256, (12, 17), dtype=np.uint8)
    rgb = rng.integers(0, 256, (12, 17, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (12, 17, 4), dtype=np.uint8)
    g16 = rng.integers(0, 65536, (12, 17), dtype=np.uint16)
    frames = [Image.fromarray(rgb), Image.fromarray(rgb[::-1].copy())]
    _SEEDS.update(
        {
            "png-gray": (".png", _pillow(gray, "PNG")),
            "png-16": (".png", _pillow(g16, "PNG")),
            "png-rgb": (".png", _pillow(rgb, "PNG")),
            "png-rgba": (".png", _pillow(rgba, "PNG")),
            "png-palette": (
                ".png",
                _pillow(Image.fromarray(rgb).quantize(8), "PNG"),
            ),
            "png-animated": (
                ".png",
                _pillow(
                    frames[0], "PNG", save_all=True, append_images=frames[1:]
                ),
            ),
            "jpeg-gray": (".jpg", _pillow(gray, "JPEG")),
            "jpeg-rgb": (".jpg", _pillow(rgb, "JPEG", quality=90)),
            "jpeg-progressive": (
                ".jpeg",
                _pillow(rgb, "JPEG", progressive=True),
            ),
            "bmp-rgb": (".bmp", _pillow(rgb, "BMP")),
            "bmp-gray": (".bmp", _pillow(gray, "BMP")),
            "tiff-gray": (".tif", _tiff(gray)),
            "tiff-16": (".tif", _tiff(g16)),
            "tiff-float": (".tif", _tiff(rng.random((9, 11), np.float32))),
            "tiff-rgb-zlib": (".tif", _tiff(rgb, compression="zlib")),
            "tiff-planar": (
                ".tif",
                _tiff(
                    np.moveaxis(rgb, -1, 0),
                    photometric="rgb",
                    planarconfig="separate",
                ),
            ),
            "tiff-rgba": (
                ".tif",
                _tiff(rgba, photometric="rgb", extrasamples=["unassalpha"]),
            ),
            "tiff-tiled": (".tiff", _tiff(rgb, tile=(16, 16))),
            "tiff-stack": (
                ".tif",
                _tiff(
                    rng.integers(0, 9, (3, 8, 9), dtype=np.uint8),
                    photometric="minisblack",
                ),
            ),
            "tiff-pillow-packbits": (
                ".tif",
                _pillow(rgb, "TIFF", compression="packbits"),
            ),
        }
    )
    return _SEEDS


SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")

_position = st.one_of(
    st.integers(0, 64),  # headers are where sizes and offsets live
    st.floats(0, 1, exclude_max=True),
)
mutations = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), _position, st.integers(0, 7)),
        st.tuples(st.just("truncate"), _position),
        st.tuples(
            st.just("junk"), _position, st.binary(min_size=1, max_size=24)
        ),
        st.tuples(st.just("zeros"), _position, st.integers(1, 64)),
        st.tuples(st.just("byte"), _position, st.integers(0, 255)),
        st.tuples(
            st.just("word"),
            _position,
            st.sampled_from(
                [
                    0,
                    1,
                    0x7FFF,
                    0xFFFF,
                    0x10000,
                    0x7FFFFFFF,
                    0x80000000,
                    0xFFFFFFFF,
                ]
            ),
            st.sampled_from(["<I", ">I", "<H", ">H"]),
        ),
    ),
    min_size=1,
    max_size=6,
)


def mutate(data: bytes, ops) -> bytes:
    out = bytearray(data)
    for op, pos, *args in ops:
        if not out:
            out.extend(b"\0")
        i = pos if isinstance(pos, int) else int(pos * len(out))
        i = min(i, len(out) - 1)
        if op == "flip":
            out[i] ^= 1 << args[0]
        elif op == "truncate":
            del out[i:]
        elif op == "junk":
            out[i:i] = args[0]
        elif op == "zeros":
            out[i : i + args[0]] = bytes(len(out[i : i + args[0]]))
        elif op == "byte":
            out[i] = args[0]
        elif op == "word":
            value, fmt = args
            packed = struct.pack(fmt, value & (0xFFFF if "H" in fmt else ~0))
            out[i : i + len(packed)] = packed
    return bytes(out)


@fuzz(150)
@given(
    seed=st.sampled_from(sorted(seed_files())),
    ops=mutations,
    rename=st.one_of(st.none(), st.sampled_from(SUFFIXES)),
)
@counted
def test_read_damaged_files(seed, ops, rename):
    suffix, data = seed_files()[seed]
    path = scratch(f"damaged{rename or suffix}")
    path.write_bytes(mutate(data, ops))
    check_read(path, "test_read_damaged_files")


@fuzz(20)
@given(
    seed=st.sampled_from(sorted(seed_files())),
    rename=st.sampled_from(SUFFIXES),
)
@counted
def test_read_valid_files_under_any_name(seed, rename):
    """Undamaged seeds read (a JPEG named .png too) unless a TIFF goes to
    Pillow or the other way round."""
    suffix, data = seed_files()[seed]
    path = scratch(f"renamed{rename}")
    path.write_bytes(data)
    read = check_read(path, "test_read_valid_files_under_any_name")
    tiff = (".tif", ".tiff")
    if (suffix in tiff) == (rename in tiff):
        assert read is not None, seed


# -- io: decompression bombs ---------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bomb(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(bytes(64)))
        + _png_chunk(b"IEND", b"")
    )


def apng_bomb(side: int, frames: int) -> bytes:
    """An animated PNG: one blank ``side`` x ``side`` frame, then
    ``frames - 1`` one-pixel updates, each a full frame once decoded."""
    rows = zlib.compress(bytes(side + 1) * side, 9)  # filter byte + row
    out = [
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(
            b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
        ),
        _png_chunk(b"acTL", struct.pack(">II", frames, 0)),
    ]
    seq = 0

    def fctl(w, h):
        nonlocal seq
        chunk = _png_chunk(
            b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, 1, 10, 0, 0)
        )
        seq += 1
        return chunk

    out += [fctl(side, side), _png_chunk(b"IDAT", rows)]
    pixel = zlib.compress(b"\0\xff")
    for _ in range(frames - 1):
        out.append(fctl(1, 1))
        out.append(_png_chunk(b"fdAT", struct.pack(">I", seq) + pixel))
        seq += 1
    out.append(_png_chunk(b"IEND", b""))
    return b"".join(out)


def tiff_bomb(width: int, height: int, compression=None) -> bytes:
    """A 4 x 4 TIFF whose header says ``width`` x ``height``."""
    import tifffile

    data = bytearray(
        _tiff(
            np.zeros((4, 4), np.uint8), compression=compression, metadata=None
        )
    )
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        tags = tif.pages[0].tags
        for code, value in ((256, width), (257, height)):
            tag = tags[code]
            fmt = "<H" if tag.dtype == 3 else "<I"
            struct.pack_into(fmt, data, tag.valueoffset, value)
    return bytes(data)


def bmp_bomb(width: int, height: int) -> bytes:
    data = bytearray(_pillow(np.zeros((4, 4, 3), np.uint8), "BMP"))
    struct.pack_into("<ii", data, 18, width, height)
    return bytes(data)


def jpeg_bomb(width: int, height: int) -> bytes:
    data = bytearray(_pillow(np.zeros((8, 8, 3), np.uint8), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


@pytest.mark.parametrize(
    "name, make",
    [
        ("bomb.png", lambda: png_bomb(60000, 60000)),
        ("animated-bomb.png", lambda: apng_bomb(8000, 20)),
        ("bomb.tif", lambda: tiff_bomb(60000, 60000)),
        ("bomb-zlib.tif", lambda: tiff_bomb(60000, 60000, "zlib")),
        ("bomb.bmp", lambda: bmp_bomb(60000, 60000)),
        ("bomb.jpg", lambda: jpeg_bomb(65000, 65000)),
    ],
)
def test_decompression_bomb_refused_before_decoding(tmp_path, name, make):
    import resource

    path = tmp_path / name
    path.write_bytes(make())
    assert path.stat().st_size < 200_000
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ThinsegError) as info:
            read_image(path)
    one_line(info.value, str(path))
    assert re.search(r"limit|exceeds|more than", str(info.value))
    # nothing near the declared gigabytes was touched
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak
    assert grown < 400_000


def tiff_page_ring(pages: int) -> bytes:
    """A TIFF of ``pages`` empty pages whose last one points to the first."""
    data = bytearray(b"II*\0" + struct.pack("<I", 8))
    for i in range(pages):
        data += struct.pack("<HI", 0, 8 + (i + 1) % pages * 6)
    return bytes(data)


@pytest.mark.parametrize("pages", [2, 150])
def test_tiff_page_loop_refused(tmp_path, pages):
    # tifffile spots a loop only if it closes within 100 pages, else it
    # follows it for 2**32 pages
    path = tmp_path / "loop.tif"
    path.write_bytes(tiff_page_ring(pages))
    with pytest.raises(ThinsegError, match="chain of pages loops") as info:
        read_image(path)
    one_line(info.value, str(path))


# -- io: labels ----------------------------------------------------------
@fuzz(100)
@given(array=images(dtypes=IMAGE_DTYPES + (np.uint64, np.complex64)))
@counted
def test_check_labels(array):
    labels = attempt("test_check_labels", check_labels, array)
    if labels is not None:
        assert labels.dtype == np.uint8 and labels.shape == array.shape
        np.testing.assert_array_equal(labels, array.astype(np.int64))


# -- auto-label ----------------------------------------------------------
finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
thresholds = mostly(
    # valid: increasing, inside (0, 1)
    st.lists(st.floats(0.001, 0.999), min_size=1, max_size=7, unique=True).map(
        sorted
    ),
    st.one_of(
        st.lists(finite_or_not, max_size=6),
        st.lists(st.integers(), max_size=3),
        st.just("0.3"),
    ),
)
sigmas = mostly(
    st.one_of(st.floats(0, 100), st.integers(0, 100)),
    st.one_of(finite_or_not, st.integers(), st.just("1")),
)
class_counts = mostly(
    st.integers(2, 8),
    st.one_of(
        st.integers(), st.floats(), st.just(True), st.just("5"), st.none()
    ),
)
unit = mostly(st.floats(0, 1), finite_or_not, odds=12)


@fuzz(200)
@given(
    method=mostly(
        st.sampled_from(["gray", "multiotsu", "epoxy"]), st.text(max_size=8)
    ),
    thresholds=thresholds,
    sigma=sigmas,
    n_classes=class_counts,
    window=st.tuples(unit, unit, unit, unit),
)
@counted
def test_autolabel_params(method, thresholds, sigma, n_classes, window):
    epoxy = attempt("test_autolabel_params", EpoxyWindow, *window)
    if epoxy is not None:
        assert 0 <= epoxy.hue_min < epoxy.hue_max <= 1
    params = attempt(
        "test_autolabel_params",
        AutoLabelParams,
        method=method,
        thresholds=thresholds,
        sigma=sigma,
        n_classes=n_classes,
        epoxy=epoxy or EpoxyWindow(),
    )
    if params is not None:
        assert increasing_in_unit_interval(params.thresholds)
        assert 0 <= params.sigma <= 100 and 2 <= params.n_classes <= 8
        assert isinstance(params.n_classes, int)
        assert len(label_scheme(params)) >= params.n_bins()


def _valid_params(draw):
    method = draw(st.sampled_from(["gray", "multiotsu", "epoxy"]))
    t = draw(
        st.lists(
            st.floats(0.01, 0.99), min_size=1, max_size=6, unique=True
        ).map(sorted)
    )
    if any(b - a < 1e-9 for a, b in zip(t, t[1:], strict=False)):
        t = [0.25, 0.4, 0.6, 0.75]
    return AutoLabelParams(
        method=method,
        thresholds=tuple(t),
        sigma=draw(st.one_of(st.just(0.0), st.just(1.0), st.floats(0, 4))),
        # multi-Otsu's search grows as bins ** (classes - 1): 7 and 8
        # classes take seconds
        n_classes=draw(st.integers(2, 6)),
    )


valid_params = st.composite(_valid_params)()


@fuzz(200)
@given(
    image=images(shapes=image_shapes(max_dims=3, max_side=9)),
    params=valid_params,
    rgb=st.sampled_from([None, True, False]),
)
@counted
def test_autolabel(image, params, rgb):
    labels = attempt("test_autolabel", autolabel, image, params, rgb=rgb)
    if labels is None:
        return
    assert labels.dtype == np.uint8
    assert labels.shape == spatial_shape(image)
    n = len(label_scheme(params))
    assert labels.min() >= 1 and labels.max() <= n, (labels.max(), n)


@fuzz(100)
@given(
    gray=images(
        dtypes=(np.float64, np.float32),
        shapes=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    ),
    params=valid_params,
    thresholds=st.one_of(st.none(), thresholds),
    blue=st.one_of(st.none(), st.booleans(), st.integers(0, 3)),
)
@counted
def test_labels_from_gray(gray, params, thresholds, blue):
    if isinstance(blue, bool):
        mask = np.full(gray.shape, blue)
    elif isinstance(blue, int):  # a mask of the wrong shape
        mask = np.ones((gray.shape[0] + blue, gray.shape[1]), bool)
    else:
        mask = None
    labels = attempt(
        "test_labels_from_gray",
        labels_from_gray,
        gray,
        params,
        thresholds,
        mask,
    )
    if labels is None:
        return
    assert labels.dtype == np.uint8 and labels.shape == gray.shape
    # the bins follow the thresholds actually used
    used = params.thresholds if thresholds is None else thresholds
    n = len(used) + 1 + (params.method == "epoxy")
    assert labels.min() >= 1 and labels.max() <= n


@fuzz(100)
@given(
    gray=mostly(
        # Hypothesis' arrays repeat one value a lot: noise has levels
        st.tuples(st.integers(2, 16), st.integers(2, 16), st.integers(0)).map(
            lambda a: np.random.default_rng(a[2]).random(a[:2])
        ),
        images(
            dtypes=(np.float64, np.float32),
            shapes=st.tuples(st.integers(0, 16), st.integers(0, 16)),
        ),
        odds=2,
    ),
    # 7 and 8 classes are valid but take a second each (the search grows
    # as bins ** (classes - 1))
    n_classes=mostly(st.integers(2, 6), class_counts),
)
@counted
def test_multiotsu_thresholds(gray, n_classes):
    t = attempt(
        "test_multiotsu_thresholds", multiotsu_thresholds, gray, n_classes
    )
    if t is not None:
        assert len(t) == n_classes - 1
        assert increasing_in_unit_interval(t)


@fuzz(150)
@given(
    image=images(),
    value_range=st.one_of(
        st.none(),
        st.tuples(st.floats(-1e300, 1e300), st.floats(-1e300, 1e300)),
    ),
)
@counted
def test_to_float(image, value_range):
    if image.dtype.kind == "f":
        lo_hi = attempt("test_to_float", float_range, image)
        if lo_hi is not None:
            lo, hi = lo_hi
            assert math.isfinite(lo) and math.isfinite(hi) and lo <= hi
    values = attempt("test_to_float", to_float, image, value_range)
    if values is None:
        assert image.dtype.kind == "f"
        assert not np.isfinite(image).all() or value_range is not None
        return
    assert values.dtype == np.float64 and values.shape == image.shape
    if value_range is None or np.isfinite(image).all():
        # (a tile's NaN are its caller's: float_range of the whole image
        # refuses them)
        assert np.isfinite(values).all()
    low = -1.01 if image.dtype.kind == "i" else 0.0  # signed: [-1, 1]
    finite = values[np.isfinite(values)]
    assert finite.min(initial=0) >= low and finite.max(initial=0) <= 1


@fuzz(80)
@given(
    image=images(
        shapes=mostly(
            st.tuples(
                st.integers(2, 9), st.integers(2, 9), st.sampled_from([3, 4])
            ),
            image_shapes(max_dims=3, max_side=9),
            odds=3,
        )
    ),
    sigma=st.one_of(st.just(0.0), st.floats(0, 3)),
)
@counted
def test_epoxy_mask(image, sigma):
    blue = attempt("test_epoxy_mask", epoxy_mask, image, sigma)
    if blue is not None:
        assert blue.dtype == bool and blue.shape == spatial_shape(image)


# -- measurements --------------------------------------------------------
NO_PORES = ClassScheme(
    "no pores",
    (PetroClass(1, "quartz", "#ffffff"), PetroClass(200, "clay", "#777777")),
)
TWO_PORES = ClassScheme(
    "two pores",
    (
        PetroClass(2, "pore", "#0000ff"),
        PetroClass(7, "grain", "#eeeeee"),
        PetroClass(255, "epoxy", "#0000aa"),
    ),
    pore_ids=(2, 255),
)
SCHEMES = (SEED, SANDSTONE, NO_PORES, TWO_PORES)

LABEL_DTYPES = (
    np.uint8,
    np.uint16,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.bool_,
)


@st.composite
def label_maps(draw, max_side=24):
    """Label images: mostly class ids of the schemes below, sometimes any
    value of the dtype; a third constant, a third blocky (regions big
    enough to be grains); sides from 1 (2 x 2 included), other dims
    now and then."""
    dtype = np.dtype(draw(st.sampled_from(LABEL_DTYPES)))
    shape = draw(
        mostly(
            st.one_of(
                st.just((2, 2)),
                st.tuples(st.integers(1, max_side), st.integers(1, max_side)),
            ),
            hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
            odds=10,
        )
    )
    if dtype.kind == "b":
        elements = st.booleans()
    else:
        info = np.iinfo(dtype)
        ids = [
            v for v in (0, 1, 2, 3, 4, 5, 7, 9, 10, 200, 255) if v <= info.max
        ]
        elements = mostly(
            st.sampled_from(ids),
            st.integers(int(info.min), int(info.max)),
        )
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return np.full(shape, draw(elements), dtype)
    if kind == 1 and len(shape) == 2:
        k = draw(st.integers(2, 8))
        small = draw(
            hnp.arrays(
                dtype,
                (-(-shape[0] // k), -(-shape[1] // k)),
                elements=elements,
            )
        )
        big = np.kron(small, np.ones((k, k), dtype))
        return np.ascontiguousarray(big[: shape[0], : shape[1]])
    return draw(hnp.arrays(dtype, shape, elements=elements))


pixel_sizes = mostly(
    st.one_of(st.none(), st.floats(0.01, 1000)),
    st.one_of(
        finite_or_not,
        st.sampled_from([0, -1, 1e-300, 1e300, 5e-7, 2e6, "2.5", "x", True]),
    ),
    odds=12,
)


@fuzz(150)
@given(
    labels=label_maps(),
    scheme=st.sampled_from(SCHEMES),
    mask=mostly(
        st.one_of(st.none(), st.booleans()), st.integers(1, 3), odds=12
    ),
    pixel_size_um=pixel_sizes,
    points=mostly(
        st.integers(1, 10_000), st.one_of(st.integers(), st.just(1.5)), odds=12
    ),
    n_boot=mostly(st.integers(0, 30), st.integers(max_value=-1), odds=12),
    block_px=mostly(
        st.one_of(st.none(), st.integers(1, 30)),
        st.one_of(st.integers(max_value=0), st.just(2.0)),
        odds=12,
    ),
    sizes=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@counted
def test_measure(
    labels,
    scheme,
    mask,
    pixel_size_um,
    points,
    n_boot,
    block_px,
    sizes,
    seed,
):
    if isinstance(mask, bool):
        region = np.random.default_rng(seed).random(labels.shape) < 0.7
        region |= mask
    elif isinstance(mask, int):  # a mask of the wrong shape
        region = np.ones(labels.shape[:-1] + (labels.shape[-1] + mask,), bool)
    else:
        region = None
    m = attempt(
        "test_measure",
        modal.measure,
        labels,
        scheme,
        mask=region,
        pixel_size_um=pixel_size_um,
        points=points,
        n_boot=n_boot,
        block_px=block_px,
        sizes=sizes,
        seed=seed,
    )
    if m is None:
        return
    check_measurement(m, labels, scheme, region, sizes)


def check_measurement(m, labels, scheme, region, sizes):
    """What the module docstring promises of a measurement."""
    assert m.counted_pixels >= 1
    assert sum(c.pixels for c in m.classes) == m.counted_pixels
    fractions = np.array([c.fraction for c in m.classes])
    assert np.all((fractions >= 0) & (fractions <= 1))
    assert math.isclose(fractions.sum(), 1.0, rel_tol=1e-9)
    # counted pixels: scheme ids inside the mask, nothing else
    ids = np.asarray(labels).astype(np.int64)
    counted = np.isin(ids, scheme.ids)
    if region is not None:
        counted &= region
    assert counted.sum() == m.counted_pixels
    if scheme.pore_ids:
        assert 0 <= m.porosity <= 1
        expected = np.isin(ids[counted], scheme.pore_ids).mean()
        assert math.isclose(m.porosity, expected, abs_tol=1e-12)
    else:
        assert math.isnan(m.porosity)
    intervals = [(c.fraction, c.binomial, c.bootstrap) for c in m.classes]
    intervals.append((m.porosity, m.porosity_binomial, m.porosity_bootstrap))
    for value, binomial, bootstrap in intervals:
        if math.isfinite(value):
            assert 0 <= binomial.low <= value + 1e-12
            assert value - 1e-12 <= binomial.high <= 1
        for interval in (binomial, bootstrap):
            if interval is not None and math.isfinite(interval.low):
                assert 0 <= interval.low <= interval.high <= 1
    if m.pixel_size_um is not None:
        assert math.isfinite(m.counted_area_mm2)
        assert all(math.isfinite(c.area_mm2) for c in m.classes)
    for s in (m.grains, m.pores):
        if s is None:
            continue
        assert s.count == len(s.diameters_px) and s.border_count <= s.count
        assert np.all(s.diameters_px >= 2 * math.sqrt(10 / math.pi) - 1e-9)
        for v in (s.mean_phi, s.sorting_phi, s.median_diameter_um):
            assert v is None or math.isfinite(v)
        assert s.sorting_phi is None or s.sorting_phi >= 0
    if m.pore_border_fraction is not None:
        assert 0 <= m.pore_border_fraction <= 1
    if sizes:
        assert m.grains is not None
        assert (m.pores is not None) == bool(scheme.pore_ids)
    # the outputs of a measurement never fail
    row = m.to_row()
    assert row["counted_pixels"] == m.counted_pixels
    assert report.format_measurement(m)


@fuzz(100)
@given(
    fraction=st.one_of(st.floats(0, 1), finite_or_not),
    n=st.one_of(st.integers(1, 10**9), st.integers(-3, 0)),
)
@counted
def test_wilson_interval(fraction, n):
    lo_hi = attempt("test_wilson_interval", modal.wilson_interval, fraction, n)
    if lo_hi is None:
        return
    lo, hi = lo_hi
    if math.isfinite(fraction):
        p = min(max(fraction, 0.0), 1.0)
        assert 0 <= lo <= p + 1e-12 and p - 1e-12 <= hi <= 1
    else:
        assert math.isnan(lo) and math.isnan(hi)


@fuzz(100)
@given(
    diameters=hnp.arrays(
        np.float64,
        st.integers(0, 30),
        elements=st.floats(3.5, 1e5),
    ),
    pixel_size_um=st.one_of(st.none(), st.floats(0.01, 1000)),
    border=st.integers(0, 30),
)
@counted
def test_size_stats(diameters, pixel_size_um, border):
    s = attempt(
        "test_size_stats",
        grains.size_stats,
        diameters,
        pixel_size_um,
        min(border, len(diameters)),
    )
    assert s is not None and s.count == len(diameters)
    if pixel_size_um is not None and len(diameters) >= grains.MIN_SIZED:
        assert math.isfinite(s.mean_phi) and s.sorting_phi >= 0
        assert s.sorting_class in dict(grains.SORTING_CLASSES).values()
    if s.count:
        assert math.isfinite(s.median_diameter_px)


@fuzz(100)
@given(
    phi=hnp.arrays(
        np.float64, st.integers(0, 40), elements=st.floats(-1e6, 1e6)
    ),
)
@counted
def test_folk_ward(phi):
    out = attempt("test_folk_ward", grains.folk_ward, phi)
    if out is None:
        assert phi.size == 0
        return
    mean, sorting = out
    assert math.isfinite(mean) and sorting >= 0
    assert phi.min() - 1e-6 <= mean <= phi.max() + 1e-6
    assert isinstance(grains.sorting_class(sorting), str)


@fuzz(100)
@given(
    binary=hnp.arrays(
        bool,
        st.tuples(st.integers(1, 24), st.integers(1, 24)),
        elements=st.booleans(),
    ),
    min_distance=st.one_of(st.none(), st.integers(-1, 6)),
    merge_px=st.floats(0, 3),
)
@counted
def test_split_objects(binary, min_distance, merge_px):
    out = attempt(
        "test_split_objects",
        grains.split_objects,
        binary,
        min_distance,
        merge_px=merge_px,
    )
    if out is None:
        return
    objects, n = out
    assert objects.shape == binary.shape
    np.testing.assert_array_equal(objects > 0, binary)
    assert set(np.unique(objects[binary])) == set(range(1, n + 1))
