"""Whole slides: an image read lazily, predicted margin tile by margin
tile into a labels pyramid (or any array), in this process or with the
tiles as tasks on a dask cluster (:mod:`.cluster`).

The tiles are :func:`.tiling.margin_tiles` of the tile shape
:func:`.predict.tile_shape` fits to the image, each through the network
exactly as :func:`.predict.predict_image` runs it, so the labels equal a
prediction of the whole image in memory, and a run on a cluster equals a
run here. Memory: the tiles being worked on and the labels pyramid's
chunks they touch, never the image (:mod:`~napari_thinseg.imaging.lazy`).

Resuming: into a :class:`~napari_thinseg.imaging.pyramid.LabelsPyramid` opened
over
the ``.partial`` a stopped, killed or cluster-less run left, a run of the
same model (its weights' digest), input (path, size and modification
time of the file; the pixels of an array) and tile plan (tile shape,
margin, precision, test-time augmentation, value range) computes only the
tiles not yet written, and the pyramid it finishes equals an
uninterrupted run's; a ``.partial`` of another run is refused in one line
saying what differs. On a cluster, the tiles of a lost worker run again
elsewhere (dask reschedules them; the progress says so), and a lost
scheduler ends the run in one line with the tiles done kept.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ThinsegError
from ..imaging.lazy import LazyImage, lazy_data_range, open_lazy
from ..model.backend import resolve_precision
from ..model.config import ModelConfig
from ..progress import Progress
from .tiling import MarginTile, margin_for, margin_tile_classes, margin_tiles


@dataclass(frozen=True)
class TileProgress(Progress):
    """A tile's labels are written: ``region = (y0, y1, x0, x1)`` of the
    full-resolution image (for a viewer to refresh); ``kept`` of the
    ``total`` tiles were kept from a stopped run (counted in ``step``)."""

    region: tuple[int, int, int, int] = (0, 0, 0, 0)
    kept: int = 0


@dataclass(frozen=True)
class SlidePlan:
    """How a slide is cut: what the tiles of the cluster tasks need
    besides the image and the model (small, sent with every task)."""

    tile_shape: tuple[int, int]
    margin: int
    precision: str
    tta: bool
    value_range: tuple[float, float] | None
    exclude_zero: bool


@dataclass
class SlidePrediction:
    """What :func:`predict_slide` did."""

    shape: tuple[int, int]
    tiles: int
    tile_shape: tuple[int, int]
    workers: int
    kept: int = 0
    """Tiles kept from a stopped run (not computed again)."""
    workers_lost: int = 0
    """Cluster workers lost during the run (their tiles ran again)."""


def plan_slide(
    model,
    config: ModelConfig,
    image,
    tile=None,
    precision: str = "auto",
    tta: bool = False,
) -> tuple[SlidePlan, list[MarginTile]]:
    """The plan and the margin tiles of ``image`` (lazy or in memory)."""
    from .predict import check_model_input, is_rebuildable, tile_shape

    data = image.data if isinstance(image, LazyImage) else image
    check_model_input(np.zeros((2, 2, *data.shape[2:]), data.dtype), config)
    if not is_rebuildable(model):
        raise ThinsegError(
            "whole slides need a Keras 3 model (one this plugin trained or "
            "loaded)"
        )
    height, width = data.shape[:2]
    shape = tile_shape(model, config, height, width, tile)
    if tile is not None and tuple(shape) == (
        config.input_height,
        config.input_width,
    ):
        raise ThinsegError(
            "whole slides use fitted margin tiles: leave the tile size "
            "automatic or give another than the model's input size"
        )
    margin = margin_for(shape)
    value_range = None if data.dtype == np.uint8 else lazy_data_range(data)
    plan = SlidePlan(
        tile_shape=tuple(shape),
        margin=margin,
        precision=resolve_precision(precision),
        tta=bool(tta),
        value_range=value_range,
        exclude_zero=bool(config.trained_on.get("ignore_zero", False)),
    )
    return plan, margin_tiles(height, width, shape, margin)


def slide_forward(model, config, plan: SlidePlan):
    """The network ``forward`` of the plan's tiles (built once a run, or
    once a worker)."""
    from .predict import margin_forward

    return margin_forward(
        model, config, plan.tile_shape, plan.precision, plan.tta
    )


def tile_classes(forward, image, tile: MarginTile, plan: SlidePlan):
    """The class map of one tile's core (what a cluster task returns)."""
    labels, _ = margin_tile_classes(
        forward,
        image,
        tile,
        plan.tile_shape,
        plan.value_range,
        exclude_zero=plan.exclude_zero,
    )
    return labels


def _write(out, tile: MarginTile, labels: np.ndarray) -> None:
    y0, y1, x0, x1 = tile.region
    if hasattr(out, "write"):  # a LabelsPyramid: every level
        out.write(y0, x0, labels)
        out.mark_done(tile.index, tile.region)
    else:
        out[y0:y1, x0:x1] = labels


def predict_slide(
    model,
    config: ModelConfig,
    image,
    out,
    tile=None,
    precision: str = "auto",
    tta: bool = False,
    client=None,
) -> Generator[TileProgress, None, SlidePrediction]:
    """Predict ``image`` tile by tile into ``out``.

    Parameters
    ----------
    model, config
        From :func:`~napari_thinseg.model.checkpoints.load_model` or training.
    image : LazyImage or array
        The slide (:func:`~napari_thinseg.imaging.lazy.open_lazy`), or any
        array that
        slices to numpy; a cluster needs a :class:`LazyImage` (its workers
        open the file themselves).
    out : LabelsPyramid or array
        Where the labels go
        (:class:`~napari_thinseg.imaging.pyramid.LabelsPyramid`, a
        zarr array, a numpy array of the image's size). A pyramid
        created over a stopped run's ``.partial`` resumes it: the tiles
        it holds are kept (refused if another model, input or tile plan
        made it).
    tile, precision, tta
        As for :func:`~.predict.predict_image`.
    client : distributed.Client, optional
        Run the tiles as tasks on this cluster (:mod:`.cluster`).

    Yields
    ------
    TileProgress
        One per tile written (in the order they finish on a cluster), the
        tiles kept counted in from the first.
    """
    plan, tiles = plan_slide(model, config, image, tile, precision, tta)
    data = image.data if isinstance(image, LazyImage) else image
    shape = tuple(int(s) for s in data.shape[:2])
    n = len(tiles)
    payload = None
    if client is not None:
        if not isinstance(image, LazyImage):
            raise ThinsegError(
                "a cluster reads the slide from its file: open it with "
                "open_lazy"
            )
        from .cluster import ModelPayload

        payload = ModelPayload.from_model(model, config)
    kept = resume(out, model, config, image, plan, n, payload)
    todo = [t for t in tiles if t.index not in kept]
    what = f"{plan.tile_shape[0]}x{plan.tile_shape[1]} tiles"
    first = f"{n} {what} in {plan.precision}"
    if kept:
        first += f"; {len(kept)} of {n} kept from {out.store_path}"
    # before the network is built and traced (seconds): Stop can act
    yield TileProgress(len(kept), n, first, kept=len(kept))
    result = SlidePrediction(shape, n, plan.tile_shape, 1, len(kept))
    if not todo:
        return result
    if client is None:
        results, watch = _here(model, config, data, todo, plan), None
        yield from fill(out, results, n, kept=len(kept))
        return result
    from .cluster import ClusterLost, WorkerWatch, n_workers

    result.workers = n_workers(client)
    watch = WorkerWatch(client)
    results = _on_cluster(client, payload, image, todo, plan)
    try:
        yield from fill(out, results, n, result.workers, len(kept), watch)
    except ClusterLost as exc:
        raise ThinsegError(f"{exc}; {_kept_words(out, n)}") from None
    result.workers_lost = len(watch.check(force=True))
    return result


def _kept_words(out, n: int) -> str:
    if not hasattr(out, "done"):
        return "the run is lost"
    return (
        f"the {len(out.done)} of {n} tiles done are kept in "
        f"{out.store_path}: run again to resume"
    )


def fill(
    out,
    results,
    n_tiles: int,
    workers: int = 0,
    kept: int = 0,
    watch=None,
) -> Generator[TileProgress, None, None]:
    """Write ``(tile, labels)`` results into ``out`` as they come, a
    :class:`TileProgress` each (``workers``: said in the message when
    they run on a cluster, with the workers ``watch`` saw lost; ``kept``:
    tiles already there); closes ``results`` on the way out (a Stop
    cancels what was not done)."""
    on = f" on {workers} workers" if workers else ""
    try:
        for done, (tile, labels) in enumerate(results, start=kept + 1):
            _write(out, tile, labels)
            lost = len(watch.check()) if watch is not None else 0
            note = f" ({lost} lost: their tiles run again)" if lost else ""
            yield TileProgress(
                done,
                n_tiles,
                f"tile {done} of {n_tiles}{on}{note}",
                tile.region,
                kept,
            )
    finally:
        results.close()


# -- resuming --------------------------------------------------------------
def resume(out, model, config, image, plan, n_tiles, payload=None) -> set:
    """The indices of the tiles ``out`` holds from a stopped run of the
    same model, input and plan (empty for a new pyramid or an array);
    refused in one line if another run left it. Records this run in it."""
    if not hasattr(out, "begin"):
        return set()
    if payload is None:
        from .cluster import ModelPayload

        payload = ModelPayload.from_model(model, config)
    run = slide_run(payload.digest, image, plan, n_tiles)
    if out.left is not None:
        differs = run_differences(out.left, run)
        if differs:
            from ..imaging.pyramid import DISCARD

            raise ThinsegError(
                f"{out.store_path}: left by a run with {differs}; {DISCARD}"
            )
    out.begin(run)
    return set(out.done)


def slide_run(digest: str, image, plan: SlidePlan, n_tiles: int) -> dict:
    """What makes a run's tiles what they are, as JSON."""
    value_range = plan.value_range
    return {
        "model": digest,
        "input": input_identity(image),
        "tiles": [*plan.tile_shape, plan.margin, n_tiles],
        "precision": plan.precision,
        "tta": plan.tta,
        "values": [
            None if value_range is None else [float(v) for v in value_range],
            plan.exclude_zero,
        ],
    }


def input_identity(image) -> dict:
    """A slide file's path, size and modification time (every file of a
    folder's); an array's shape, type and a digest of its pixels."""
    data = image.data if isinstance(image, LazyImage) else image
    found = {"shape": list(data.shape), "dtype": str(data.dtype)}
    if isinstance(image, LazyImage):
        path = image.path.resolve()
        files = [path] if path.is_file() else sorted(path.rglob("*"))
        stats = [f.stat() for f in files if f.is_file()]
        found["path"] = str(path)
        found["bytes"] = sum(st.st_size for st in stats)
        found["modified_ns"] = max((st.st_mtime_ns for st in stats), default=0)
        return found
    digest = hashlib.sha256()
    for y in range(0, data.shape[0], 1024):  # a strip at a time
        digest.update(np.ascontiguousarray(data[y : y + 1024]).tobytes())
    found["digest"] = digest.hexdigest()[:16]
    return found


def run_differences(left: dict, run: dict) -> str:
    """What differs between the run that left a ``.partial`` and this
    one, in words (empty if nothing)."""
    words = []
    if left.get("input") != run["input"]:
        was, now = left.get("input") or {}, run["input"]
        if was.get("path") != now.get("path"):
            words.append(f"another input ({was.get('path', 'an array')})")
        else:
            words.append("another input (the file changed since)")
    if left.get("model") != run["model"]:
        words.append("another model")
    if left.get("tiles") != run["tiles"]:
        (h, w, *_), (nh, nw, *_) = left.get("tiles") or [0, 0], run["tiles"]
        words.append(f"other tiles ({h}x{w}, now {nh}x{nw})")
    if left.get("precision") != run["precision"]:
        words.append(
            f"another precision ({left.get('precision')}, now "
            f"{run['precision']})"
        )
    if left.get("tta") != run["tta"]:
        on = "on" if run["tta"] else "off"
        words.append(f"test-time augmentation (now {on})")
    if left.get("values") != run["values"]:
        words.append("another value scaling")
    return ", ".join(words)


def _here(model, config, data, tiles, plan):
    """``(tile, labels)`` of every tile, in order, computed one tile ahead
    in a worker thread (the next tile is read while the network runs)."""
    from ..prefetch import map_ahead

    forward = slide_forward(model, config, plan)
    outputs = map_ahead(lambda t: tile_classes(forward, data, t, plan), tiles)
    try:
        yield from zip(tiles, outputs, strict=True)
    finally:
        outputs.close()


def _on_cluster(client, payload, image, tiles, plan):
    """``(tile, labels)`` as the cluster's workers finish them: each
    worker builds the model once from its checkpoint bytes, opens the
    slide's file itself and returns the class map of a tile's core; twice
    the cluster's threads are submitted at a time."""
    from .cluster import in_flight, submit_in_turn

    shared = client.scatter(payload, broadcast=True)
    return submit_in_turn(
        client,
        tile_task,
        (shared, str(image.path), plan),
        tiles,
        in_flight(client),
        f"thinseg-tile-{payload.digest}-{uuid.uuid4().hex[:8]}",
    )


@lru_cache(maxsize=4)
def _open(path: str) -> LazyImage:
    return open_lazy(path)


def tile_task(payload, image_path: str, plan: SlidePlan, tile: MarginTile):
    """A cluster task: the class map of one margin tile's core of the
    slide at ``image_path`` (model and file kept per worker process)."""
    return tile_classes(
        _worker_forward(payload, plan), _open(image_path).data, tile, plan
    )


_forwards: dict = {}
_forwards_lock = threading.Lock()


def _worker_forward(payload, plan: SlidePlan):
    """:func:`slide_forward` of the payload's model, once per worker
    process and plan (the worker's task threads share it)."""
    from .cluster import worker_model

    key = (payload.digest, plan)
    with _forwards_lock:
        if key not in _forwards:
            _forwards.clear()  # one model a worker at a time
            model, config = worker_model(payload)
            _forwards[key] = slide_forward(model, config, plan)
        return _forwards[key]
