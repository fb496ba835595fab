"""Predictions and measurements as tasks on a dask.distributed cluster.

``thinseg predict ... --workers N`` starts a ``LocalCluster`` of N worker
processes on this machine; ``--scheduler tcp://HOST:PORT`` uses a running
cluster (``dask scheduler`` / ``dask worker``, dask-jobqueue on SLURM,
dask-kubernetes). Work is cut into tasks that dask schedules:

* a folder: one task per photo (read, predict, write the label PNG);
* a whole slide: one task per margin tile (:mod:`.slides`); the
  workers read their tiles from the slide's file, the client writes the
  labels pyramid as tiles come back;
* ``thinseg stats``: one task per label image.

The model travels as its checkpoint's bytes (config JSON and HDF5
weights, :class:`ModelPayload`), sent once to every worker, never as a
pickled Keras object; each worker process builds it once and keeps it
(:func:`worker_model`). Files are named by path: on a cluster of several
machines they must lie on a file system every worker sees.

Faults: dask runs the tasks of a worker that dies again on the others
(a ``LocalCluster``'s nanny starts a new one); :class:`WorkerWatch` tells
a run which workers it lost. A task that killed several workers in turn
(dask's ``KilledWorker``) and a lost scheduler end the run in one line
(:class:`ClusterLost` for the scheduler: the caller says what it kept).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ThinsegError


class ClusterLost(ThinsegError):
    """The connection to the dask scheduler was lost mid-run."""


def _distributed():
    try:
        import distributed
    except ImportError:  # pragma: no cover - a declared dependency
        raise ThinsegError(
            "dask.distributed is not installed (pip install distributed)"
        ) from None
    return distributed


@contextlib.contextmanager
def cluster(
    workers: int | None = None,
    scheduler: str | None = None,
    timeout: float = 20.0,
):
    """A ``distributed.Client``: on a new ``LocalCluster`` of ``workers``
    processes (the machine's cores shared out), or on the cluster at
    ``scheduler`` (given up after ``timeout`` seconds); closed (the local
    cluster shut down) on the way out."""
    distributed = _distributed()
    if (workers is None) == (scheduler is None):
        raise ThinsegError("give a number of workers or a scheduler address")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ThinsegError(
                f"cannot reach the dask scheduler at {scheduler} ({exc})"
            ) from None
        try:
            with _quiet_reconnects():
                yield client
        finally:
            with contextlib.suppress(Exception):  # the scheduler is gone
                client.close()
        return
    if workers < 1:
        raise ThinsegError(f"workers must be >= 1, got {workers}")
    threads = max(1, (os.cpu_count() or 1) // workers)
    with (
        distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


@contextlib.contextmanager
def _quiet_reconnects():
    """The client's own tracebacks of a lost scheduler left out (the run
    says it in one line)."""
    logger = logging.getLogger("distributed.client")
    utils = logging.getLogger("distributed.utils")
    levels = logger.level, utils.level
    logger.setLevel(logging.CRITICAL)
    utils.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(levels[0])
        utils.setLevel(levels[1])


def n_workers(client) -> int:
    """Workers the cluster has now."""
    return len(client.scheduler_info(n_workers=-1)["workers"])


# -- the model, as bytes -----------------------------------------------------
@dataclass(frozen=True)
class ModelPayload:
    """A model as its checkpoint files' bytes: config JSON and HDF5
    weights (what a worker builds the model from)."""

    config_json: str
    weights: bytes = field(repr=False)
    digest: str = ""

    @classmethod
    def from_model(cls, model, config) -> ModelPayload:
        """The payload of a built model (the weights it has now)."""
        import json

        from ..model.weights import encode_hdf5_weights

        text = json.dumps(config.to_json_dict())
        weights = encode_hdf5_weights(model)
        digest = hashlib.sha256(text.encode() + weights).hexdigest()[:16]
        return cls(text, weights, digest)


_models: dict[str, tuple] = {}
_models_lock = threading.Lock()


def worker_model(payload: ModelPayload):
    """``(model, config)`` of ``payload``, built once per process."""
    with _models_lock:
        if payload.digest not in _models:
            _limit_threads()
            _models.clear()  # one model a worker at a time
            _models[payload.digest] = _build(payload)
        return _models[payload.digest]


def _build(payload: ModelPayload):
    from ..model.checkpoints import load_model

    with tempfile.TemporaryDirectory(prefix="thinseg-model-") as folder:
        prefix = Path(folder) / "model"
        Path(f"{prefix}_config.json").write_text(payload.config_json)
        Path(f"{prefix}.1").write_bytes(payload.weights)
        model, config, _ = load_model(prefix)
    return model, config


def _limit_threads() -> None:
    """TensorFlow on a worker uses the worker's threads, not every core
    (two workers on two cores would otherwise fight)."""
    try:
        threads = _distributed().get_worker().state.nthreads
    except ValueError:  # not on a worker (tests calling tasks directly)
        return
    from ..model.backend import tensorflow

    tf = tensorflow()
    with contextlib.suppress(RuntimeError):  # already running: as it is
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


# -- tasks ------------------------------------------------------------------
def submit_in_turn(
    client, fn, args: tuple, items, in_flight: int, key: str
) -> Iterator:
    """``(item, fn(*args, item))`` as the cluster finishes them, at most
    ``in_flight`` submitted at a time (what bounds the client's memory);
    closing it cancels the rest. ``args`` may hold futures (scattered
    data)."""
    distributed = _distributed()
    queue = iter(enumerate(items))
    futures = {}
    finished = distributed.as_completed()

    def submit():
        found = next(queue, None)
        if found is not None:
            k, item = found
            future = client.submit(
                fn, *args, item, key=f"{key}-{k}", pure=False
            )
            futures[future.key] = (future, item)
            finished.add(future)

    try:
        for _ in range(max(1, in_flight)):
            submit()
        for future in finished:
            _, item = futures.pop(future.key)
            value = result(future, client)
            submit()
            yield item, value
    finally:
        if client.status == "running":  # else nothing to cancel on
            client.cancel([f for f, _ in futures.values()])


def result(future, client=None):
    """A finished task's value; its failure in one line (a lost
    scheduler: :class:`ClusterLost`)."""
    from concurrent.futures import CancelledError

    try:
        return future.result()
    except ThinsegError:
        raise
    except CancelledError:
        if client is not None and client.status != "running":
            raise ClusterLost(
                "lost the connection to the dask scheduler"
            ) from None
        raise ThinsegError(
            f"a cluster task was cancelled ({future.key})"
        ) from None
    except Exception as exc:  # a worker's failure, in one line
        if type(exc).__name__ == "KilledWorker":
            raise ThinsegError(
                "a task was running on every dask worker that died "
                "(out of memory? fewer workers or a smaller tile)"
            ) from None
        raise ThinsegError(
            f"a cluster task failed: {type(exc).__name__}: {exc}"
        ) from None


class WorkerWatch:
    """The workers a cluster lost since this was made: those gone from
    the scheduler's list (polled at most every ``every`` seconds)."""

    def __init__(self, client, every: float = 1.0):
        self.client = client
        self.every = every
        self.lost: list[str] = []
        self._alive = self._workers()
        self._polled = time.monotonic()

    def _workers(self) -> set[str]:
        info = self.client.scheduler_info(n_workers=-1)
        return set(info["workers"])

    def check(self, force: bool = False) -> list[str]:
        """The addresses of the workers lost so far."""
        now = time.monotonic()
        if self.client.status != "running" or (
            not force and now - self._polled < self.every
        ):
            return self.lost
        self._polled = now
        alive = self._workers()
        self.lost += sorted(self._alive - alive)
        self._alive = alive
        return self.lost


def in_flight(client) -> int:
    """Tasks to keep submitted: twice the cluster's threads, so that no
    worker waits while the client holds few results at a time."""
    return 2 * max(1, sum(client.nthreads().values()))


def predict_file_task(payload, settings, files: tuple[str, str | None]):
    """A task: the labels of one photo, ``files`` its path and its
    crossed-polarised twin's or None (read, predicted in tile mode;
    ``settings``: keywords of :func:`~.predict.predict_image`)."""
    from ..dataset.folders import read_views
    from ..progress import run
    from .predict import predict_image

    source, xpl = files
    model, config = worker_model(payload)
    image = read_views(Path(source), Path(xpl) if xpl else None)
    return run(predict_image(model, config, image, **settings)).labels


def map_files(client, fn, items, *args) -> Iterator:
    """``(index, fn(*args, item))`` for every item, as the cluster
    finishes them (:func:`submit_in_turn`; ``args`` sent once to every
    worker); closing it cancels the rest."""
    import uuid

    shared = tuple(client.scatter(a, broadcast=True) for a in args)
    tasks = submit_in_turn(
        client,
        _indexed,
        (fn, *shared),
        list(enumerate(items)),
        in_flight(client),
        f"thinseg-{fn.__name__}-{uuid.uuid4().hex[:8]}",
    )
    try:
        for (k, _), value in tasks:
            yield k, value
    finally:
        tasks.close()


def _indexed(fn, *args):
    """``fn(*args[:-1], item)`` of the last argument ``(index, item)``."""
    *shared, (_, item) = args
    return fn(*shared, item)
