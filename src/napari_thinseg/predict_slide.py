"""Whole slides: an image read lazily, predicted margin tile by margin
tile into a labels pyramid (or any array), in this process or with the
tiles as tasks on a dask cluster (:mod:`.distributed`).

The tiles are :func:`.tiling.margin_tiles` of the tile shape
:func:`.predict.tile_shape` fits to the image, each through the network
exactly as :func:`.predict.predict_image` runs it, so the labels equal a
prediction of the whole image in memory, and a run on a cluster equals a
run here. Memory: the tiles being worked on and the labels pyramid's
chunks they touch, never the image (:mod:`.imaging.lazy`).
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .errors import ThinsegError
from .imaging.lazy import LazyImage, lazy_data_range, open_lazy
from .model.backend import resolve_precision
from .model.config import ModelConfig
from .progress import Progress
from .tiling import MarginTile, margin_for, margin_tile_classes, margin_tiles


@dataclass(frozen=True)
class TileProgress(Progress):
    """A tile's labels are written: ``region = (y0, y1, x0, x1)`` of the
    full-resolution image (for a viewer to refresh)."""

    region: tuple[int, int, int, int] = (0, 0, 0, 0)


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
        From :func:`~.model.checkpoints.load_model` or training.
    image : LazyImage or array
        The slide (:func:`~.imaging.lazy.open_lazy`), or any array that
        slices to numpy; a cluster needs a :class:`LazyImage` (its workers
        open the file themselves).
    out : LabelsPyramid or array
        Where the labels go (:class:`~.imaging.pyramid.LabelsPyramid`, a
        zarr array, a numpy array of the image's size).
    tile, precision, tta
        As for :func:`~.predict.predict_image`.
    client : distributed.Client, optional
        Run the tiles as tasks on this cluster (:mod:`.distributed`).

    Yields :class:`TileProgress` per tile written (in the order they
    finish on a cluster).
    """
    plan, tiles = plan_slide(model, config, image, tile, precision, tta)
    data = image.data if isinstance(image, LazyImage) else image
    shape = tuple(int(s) for s in data.shape[:2])
    n = len(tiles)
    what = f"{plan.tile_shape[0]}x{plan.tile_shape[1]} tiles"
    # before the network is built and traced (seconds): Stop can act
    yield TileProgress(0, n, f"{n} {what} in {plan.precision}")
    workers = 1
    if client is None:
        results = _here(model, config, data, tiles, plan)
    else:
        if not isinstance(image, LazyImage):
            raise ThinsegError(
                "a cluster reads the slide from its file: open it with "
                "open_lazy"
            )
        from .distributed import n_workers

        workers = n_workers(client)
        results = _on_cluster(client, model, config, image, tiles, plan)
    yield from fill(out, results, n, workers if client is not None else 0)
    return SlidePrediction(shape, n, plan.tile_shape, workers)


def fill(
    out, results, n_tiles: int, workers: int = 0
) -> Generator[TileProgress, None, None]:
    """Write ``(tile, labels)`` results into ``out`` as they come, a
    :class:`TileProgress` each (``workers``: said in the message when
    they run on a cluster); closes ``results`` on the way out (a Stop
    cancels what was not done)."""
    on = f" on {workers} workers" if workers else ""
    try:
        for done, (tile, labels) in enumerate(results, start=1):
            _write(out, tile, labels)
            yield TileProgress(
                done, n_tiles, f"tile {done} of {n_tiles}{on}", tile.region
            )
    finally:
        results.close()


def _here(model, config, data, tiles, plan):
    """``(tile, labels)`` of every tile, in order, computed one tile ahead
    in a worker thread (the next tile is read while the network runs)."""
    from .overlap import map_ahead

    forward = slide_forward(model, config, plan)
    outputs = map_ahead(lambda t: tile_classes(forward, data, t, plan), tiles)
    try:
        yield from zip(tiles, outputs, strict=True)
    finally:
        outputs.close()


def _on_cluster(client, model, config, image, tiles, plan):
    """``(tile, labels)`` as the cluster's workers finish them: each
    worker builds the model once from its checkpoint bytes, opens the
    slide's file itself and returns the class map of a tile's core; twice
    the cluster's threads are submitted at a time."""
    from .distributed import ModelPayload, in_flight, submit_in_turn

    payload = ModelPayload.from_model(model, config)
    shared = client.scatter(payload, broadcast=True)
    return submit_in_turn(
        client,
        tile_task,
        (shared, str(image.path), plan),
        tiles,
        in_flight(client),
        f"thinseg-tile-{payload.digest}",
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
    from .distributed import worker_model

    key = (payload.digest, plan)
    with _forwards_lock:
        if key not in _forwards:
            _forwards.clear()  # one model a worker at a time
            model, config = worker_model(payload)
            _forwards[key] = slide_forward(model, config, plan)
        return _forwards[key]
