"""Label maps of whole slides written tile by tile: OME-Zarr pyramids and
pyramidal BigTIFFs, never held whole in memory.

:class:`LabelsPyramid` is an OME-Zarr (NGFF 0.4, zarr v2 format: what
QuPath, Fiji / MoBIE, napari-ome-zarr and ome-zarr-py read) with the
labels at full resolution and coarser levels, each half the size of the
one above, down to about :data:`MIN_LEVEL_SIDE` pixels. A region written
at full resolution goes into every level at once: level ``k`` holds every
``2**k``-th pixel (nearest neighbour, as labels must be), so any tile can
be written in any order and the pyramid is always consistent. The group
carries NGFF ``image-label`` metadata (class colours and names) and the
class scheme.

The pyramid is written under ``<name>.partial`` and renamed to its name
when :meth:`LabelsPyramid.finish` is called, so a stopped or crashed run
never leaves a half-written result under the real name. A name ending in
``.tif`` / ``.tiff`` / ``.btf`` (:data:`TIFF_OUTPUTS`) asks for a
pyramidal BigTIFF: the pyramid is written under
``<name>.zarr.partial`` and :meth:`LabelsPyramid.finish` streams it into
the BigTIFF (:func:`write_bigtiff`), then removes it; the rule
:func:`check_slide_output` applies for the CLI and the Whole slide tab
alike.

Resuming: a run that :meth:`LabelsPyramid.begin` says what made it (a
JSON-able record: the model, the input, the tile plan) keeps that record
and the indices of the tiles it has written in :data:`RUN_RECORD` inside
the ``.partial``. The record is rewritten atomically after each tile, once
the tile's chunks at every level are on disk (zarr writes each chunk to a
temporary file and renames it, and :meth:`mark_done` flushes them first),
so a tile counted done is whole at every level whenever the run is
killed. :meth:`LabelsPyramid.create` over such a ``.partial`` opens it
again (the caller checks the record, :attr:`LabelsPyramid.left`);
``overwrite`` discards it.
:func:`write_bigtiff` streams the levels of a pyramid into a tiled,
compressed BigTIFF with its levels as SubIFDs.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from .atomic import atomic_write_text, ensure_dir, fsync_paths, refuse_existing

CHUNK_SIDE = 1024
"""Chunk side of every level (1 MB of uint8 labels a chunk)."""

MIN_LEVEL_SIDE = 512
"""The coarsest level's shorter side is below twice this."""

COMPRESSION = "zstd"

RUN_RECORD = "thinseg_run.json"
"""What made a ``.partial`` and which of its tiles are done (removed when
the pyramid is finished)."""

ZARR_OUTPUTS = (".zarr",)
TIFF_OUTPUTS = (".tif", ".tiff", ".btf")
SLIDE_OUTPUTS = (*ZARR_OUTPUTS, *TIFF_OUTPUTS)
"""What a whole slide's labels can be written to, tile by tile."""

DISCARD = "use overwrite to discard it and start over"

_ZARR_TEMP = re.compile(r"\.[0-9a-f]{32}\.partial$")
"""The name ending of a chunk file zarr was writing when killed."""


def level_shapes(shape, min_side: int = MIN_LEVEL_SIDE) -> list[tuple]:
    """Shapes of the pyramid levels of a ``shape`` image: full size, then
    halved (rounding up) while the shorter side stays >= ``min_side``."""
    shapes = [tuple(int(s) for s in shape[:2])]
    while min(shapes[-1]) // 2 >= min_side:
        h, w = shapes[-1]
        shapes.append((-(-h // 2), -(-w // 2)))
    return shapes


def is_slide_output(path: str | Path) -> bool:
    """Whether ``path`` names a labels pyramid (:data:`SLIDE_OUTPUTS`)."""
    return Path(str(path).rstrip("/")).suffix.lower() in SLIDE_OUTPUTS


def is_tiff_output(path: str | Path) -> bool:
    return Path(str(path).rstrip("/")).suffix.lower() in TIFF_OUTPUTS


def check_slide_output(path: str | Path, slide: str | Path | None = None):
    """``path`` as a whole slide's labels output; refused in one line when
    empty, not an OME-Zarr folder or BigTIFF name, or the slide itself."""
    text = str(path).strip().rstrip("/")
    if not text:
        raise ThinsegError(
            "choose the output (an .ome.zarr folder or a .tif BigTIFF)"
        )
    out = Path(text).expanduser()
    if not is_slide_output(out):
        raise ThinsegError(
            f"{out.name}: a whole slide's labels are an OME-Zarr folder "
            "(.zarr) or a pyramidal BigTIFF (.tif, .tiff, .btf)"
        )
    if slide is not None and out.resolve() == Path(slide).resolve():
        raise ThinsegError(f"{out.name}: that is the slide itself")
    return out


def working_store(path: str | Path) -> Path:
    """The OME-Zarr a labels pyramid for ``path`` is written into: its
    ``.partial`` (a BigTIFF's: ``<name>.zarr.partial``)."""
    path = Path(path)
    if is_tiff_output(path):
        path = path.with_name(path.name + ".zarr")
    return partial_path(path)


def partial_path(path: str | Path) -> Path:
    """Where the pyramid for ``path`` is written until it is finished."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def _compressor():
    import numcodecs

    return numcodecs.Zstd(level=3)


class LabelsPyramid:
    """Labels of a whole slide, written region by region into an OME-Zarr
    pyramid (see the module docstring).

    Use :meth:`create`; :meth:`write` a region; :meth:`finish` when done.
    """

    def __init__(self, path: Path, store_path: Path, levels: list, left=None):
        self.path = path
        self.store_path = store_path
        self.levels = levels
        self.pixel_size_um: float | None = None
        self.left: dict | None = None
        """What the run that left this ``.partial`` recorded (its
        :meth:`begin` record; None for a new pyramid)."""
        self.done: set[int] = set()
        """Indices of the tiles written whole (:meth:`mark_done`)."""
        self._run: dict | None = None
        if left is not None:
            self.left = left["run"]
            self.done = {int(k) for k in left["done"]}

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.levels[0].shape)

    @property
    def resumed(self) -> bool:
        """Opened from what a stopped or killed run left."""
        return self.left is not None

    @classmethod
    def create(
        cls,
        path: str | Path,
        shape,
        scheme=None,
        pixel_size_um: float | None = None,
        overwrite: bool = False,
        source: str | None = None,
        chunk: int = CHUNK_SIDE,
    ) -> LabelsPyramid:
        """An empty (all 0: unlabelled) pyramid for labels of ``shape``,
        at ``path`` (refused if it exists, unless ``overwrite``); or the
        ``.partial`` a stopped run of the same labels left, opened to
        resume (discarded with ``overwrite``; refused in one line if made
        for other labels)."""
        import zarr

        path = Path(path)
        refuse_existing([path], overwrite)
        ensure_dir(path.parent)
        store_path = working_store(path)
        shapes = level_shapes(shape)
        attrs = _ngff_attrs(len(shapes), pixel_size_um, scheme, source)
        if store_path.exists() and not overwrite:
            found = _reopen(path, store_path, shapes, attrs)
            if found is not None:
                found.pixel_size_um = pixel_size_um
                return found
        if store_path.exists():
            # what a stopped run left, unresumable or to be discarded
            _remove(store_path)
        root = zarr.open_group(str(store_path), mode="w", zarr_format=2)
        levels = [
            root.create_array(
                str(k),
                shape=s,
                chunks=(min(chunk, s[0]), min(chunk, s[1])),
                dtype=np.uint8,
                fill_value=0,
                compressors=_compressor(),
                chunk_key_encoding={"name": "v2", "separator": "/"},
            )
            for k, s in enumerate(shapes)
        ]
        root.attrs.update(attrs)
        made = cls(path, store_path, levels)
        made.pixel_size_um = pixel_size_um
        return made

    def write(self, y: int, x: int, labels: np.ndarray) -> None:
        """Put ``labels`` (full resolution) at ``(y, x)``, and every
        ``2**k``-th of its pixels into level ``k``."""
        labels = np.asarray(labels, np.uint8)
        h, w = labels.shape
        self.levels[0][y : y + h, x : x + w] = labels
        for k, level in enumerate(self.levels[1:], start=1):
            step = 2**k
            y0, x0 = -(-y // step), -(-x // step)
            y1, x1 = -(-(y + h) // step), -(-(x + w) // step)
            if y1 > y0 and x1 > x0:
                part = labels[y0 * step - y :: step, x0 * step - x :: step]
                level[y0:y1, x0:x1] = part[: y1 - y0, : x1 - x0]

    def dask_levels(self) -> list:
        """The levels as dask arrays (what napari shows as multiscale)."""
        import dask.array as da

        return [da.from_zarr(level) for level in self.levels]

    def begin(self, run: dict) -> None:
        """Record that the run ``run`` describes (JSON-able) writes into
        this pyramid; the tiles :attr:`done` so far stay (the caller has
        checked that :attr:`left`, if any, equals ``run``)."""
        self._run = json.loads(json.dumps(run))
        if self.left is None:
            self.done = set()
        self.left = self._run
        self._save()

    def mark_done(self, index: int, region) -> None:
        """Count tile ``index`` (its labels written at ``region = (y0,
        y1, x0, x1)``) done: its chunks at every level are flushed to
        disk, then the record says so (nothing before :meth:`begin`)."""
        if self._run is None:
            return
        y0, y1, x0, x1 = region
        fsync_paths(self._chunk_files(y0, y1, x0, x1))
        self.done.add(int(index))
        self._save()

    def _save(self) -> None:
        record = {"run": self._run, "done": sorted(self.done)}
        atomic_write_text(self.store_path / RUN_RECORD, json.dumps(record))

    def _chunk_files(self, y0, y1, x0, x1) -> list[Path]:
        """The chunk files of every level that the full-resolution region
        touches."""
        files = []
        for k, level in enumerate(self.levels):
            step = 2**k
            ly0, lx0 = -(-y0 // step), -(-x0 // step)
            ly1, lx1 = -(-y1 // step), -(-x1 // step)
            if ly1 <= ly0 or lx1 <= lx0:
                continue
            ch, cw = level.chunks
            folder = self.store_path / str(k)
            for cy in range(ly0 // ch, (ly1 - 1) // ch + 1):
                for cx in range(lx0 // cw, (lx1 - 1) // cw + 1):
                    files.append(folder / str(cy) / str(cx))
        return files

    def finish(self) -> Path:
        """Move the finished pyramid to its name (replacing what is there
        only if ``create`` was told to overwrite), or stream it into its
        BigTIFF, and return that path (without the resume record); the
        levels are then the finished file's."""
        if is_tiff_output(self.path):
            write_bigtiff(
                self.path, self.levels, self.pixel_size_um, overwrite=True
            )
            shutil.rmtree(self.store_path)
            self.store_path, self._run = self.path, None
            self.levels = tiff_levels(self.path)
            return self.path
        if self.path.exists():
            _remove(self.path)
        self.store_path.rename(self.path)
        self.store_path = self.path
        (self.path / RUN_RECORD).unlink(missing_ok=True)
        self._run = None
        self.levels = open_levels(self.path)
        return self.path


def _reopen(path: Path, store_path: Path, shapes, attrs) -> LabelsPyramid:
    """The pyramid a stopped run left at ``store_path`` to resume, if it
    recorded its run (else None: nothing in it can be trusted); refused if
    it holds other labels than ``shapes`` and ``attrs`` describe."""
    import zarr

    try:
        left = json.loads((store_path / RUN_RECORD).read_text())
        if not isinstance(left.get("run"), dict):
            raise ValueError("no run")
        left["done"] = [int(k) for k in left["done"]]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise ThinsegError(
            f"{store_path}: its record of the tiles done is unreadable; "
            f"{DISCARD}"
        ) from None
    try:
        root = zarr.open_group(str(store_path), mode="r+", zarr_format=2)
        found = json.loads(json.dumps(dict(root.attrs)))
        datasets = found["multiscales"][0]["datasets"]
        levels = [root[d["path"]] for d in datasets]
        found_shapes = [tuple(level.shape) for level in levels]
    except Exception:  # noqa: BLE001  (any damage: one line)
        raise ThinsegError(
            f"{store_path}: not a labels pyramid this plugin can resume; "
            f"{DISCARD}"
        ) from None
    differs = _differences(found, found_shapes, attrs, shapes)
    if differs:
        raise ThinsegError(
            f"{store_path}: left by a run of other labels ({differs}); "
            f"{DISCARD}"
        )
    for leftover in store_path.rglob("*.partial"):
        if _ZARR_TEMP.search(leftover.name):  # a chunk being written
            leftover.unlink(missing_ok=True)
    return LabelsPyramid(path, store_path, levels, left)


def _differences(found, found_shapes, attrs, shapes) -> str:
    """What differs between a ``.partial``'s labels and those asked for,
    in words (empty if nothing)."""
    attrs = json.loads(json.dumps(attrs))
    if found_shapes[0] != tuple(shapes[0]):
        (h, w), (nh, nw) = found_shapes[0], shapes[0]
        return f"{h} x {w} px, not {nh} x {nw}"
    label, asked = found.get("image-label", {}), attrs["image-label"]

    def scheme(attrs, label):
        return (
            attrs.get("thinseg"),
            label.get("colors"),
            label.get("properties"),
        )

    words = []
    if scheme(found, label) != scheme(attrs, asked):
        words.append("another class scheme")
    if found.get("multiscales") != attrs.get("multiscales"):
        words.append("another pixel size")
    if label.get("source") != asked.get("source"):
        words.append("another source image")
    return ", ".join(words)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def _ngff_attrs(n_levels, pixel_size_um, scheme, source) -> dict:
    unit = {"unit": "micrometer"} if pixel_size_um else {}
    um = float(pixel_size_um or 1.0)
    datasets = [
        {
            "path": str(k),
            "coordinateTransformations": [
                {"type": "scale", "scale": [um * 2**k, um * 2**k]}
            ],
        }
        for k in range(n_levels)
    ]
    attrs = {
        "multiscales": [
            {
                "version": "0.4",
                "name": "labels",
                "axes": [
                    {"name": "y", "type": "space", **unit},
                    {"name": "x", "type": "space", **unit},
                ],
                "datasets": datasets,
                "type": "nearest",
            }
        ],
        "image-label": {"version": "0.4", "colors": []},
    }
    if source:
        attrs["image-label"]["source"] = {"image": source}
    if scheme is not None:
        attrs["image-label"]["colors"] = [
            {"label-value": c.id, "rgba": [*c.rgb, 255]} for c in scheme
        ]
        attrs["image-label"]["properties"] = [
            {"label-value": c.id, "class": c.name} for c in scheme
        ]
        attrs["thinseg"] = {"class_scheme": scheme.to_dict()}
    return attrs


def open_levels(path: str | Path) -> list:
    """The zarr arrays of a labels pyramid's levels, full size first."""
    import zarr

    from .lazy import multiscales_of

    root = zarr.open_group(str(path), mode="r")
    found = multiscales_of(path)
    if found is None:
        raise ThinsegError(f"{path}: not an OME-Zarr pyramid")
    return [root[d["path"]] for d in found["datasets"]]


def tiff_levels(path: str | Path) -> list:
    """The levels of a pyramidal TIFF, full size first (lazy arrays)."""
    from .lazy import open_lazy

    return open_lazy(path).levels


def thinseg_attrs(path: str | Path) -> dict:
    """What :class:`LabelsPyramid` recorded of its own (the class scheme
    as ``class_scheme``), empty for other zarr folders."""
    try:
        attrs = json.loads((Path(path) / ".zattrs").read_text())
        return dict(attrs.get("thinseg", {}))
    except (OSError, ValueError, AttributeError):
        return {}


def write_bigtiff(
    path: str | Path,
    levels: Sequence,
    pixel_size_um: float | None = None,
    overwrite: bool = False,
    tile: int = 512,
) -> Path:
    """Write ``levels`` (full size first; zarr, dask or numpy arrays) as a
    tiled, zlib-compressed BigTIFF, the coarser levels as SubIFDs, tile by
    tile; atomically (a temporary file renamed when complete)."""
    import tifffile

    path = Path(path)
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    temp = partial_path(path)

    def tiles(level):
        h, w = level.shape[:2]
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                part = np.asarray(level[y : y + tile, x : x + tile])
                out = np.zeros((tile, tile), part.dtype)
                out[: part.shape[0], : part.shape[1]] = part
                yield out

    resolution = {}
    if pixel_size_um:
        # pixels per centimetre, as microscope software writes it
        per_cm = 1e4 / float(pixel_size_um)
        resolution = {"resolution": (per_cm, per_cm), "resolutionunit": 3}
    try:
        with tifffile.TiffWriter(temp, bigtiff=True) as tif:
            for k, level in enumerate(levels):
                tif.write(
                    tiles(level),
                    shape=tuple(level.shape[:2]),
                    dtype=np.uint8,
                    tile=(tile, tile),
                    compression="zlib",
                    photometric="minisblack",
                    subifds=len(levels) - 1 if k == 0 else None,
                    subfiletype=1 if k else 0,
                    **(resolution if k == 0 else {}),
                )
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
