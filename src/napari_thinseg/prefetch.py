"""Work that overlaps with the network: the next item is prepared in a
background thread while the caller uses the current one.

The network keeps both cores busy only while it runs; reading the next
photo, cutting the next training crops or writing the last label PNG can
happen in that time instead of between calls. NumPy, Pillow and
TensorFlow release the GIL while they work, so a thread is enough.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_ahead(
    fn: Callable[[T], R], items: Iterable[T], depth: int = 1
) -> Generator[R, None, None]:
    """``fn(item)`` for each item, in order, computed up to ``depth`` items
    ahead of the caller in one worker thread.

    ``fn`` runs in one thread, in order, so a stateful ``fn`` (a seeded
    sampler) gives the same results as a plain loop; at most ``depth + 1``
    results are held. An exception in ``fn`` is raised to the caller when
    it reaches that item. Closing the generator (``close()``, or leaving a
    ``for`` loop early and dropping it) cancels what was not started and
    waits for the one item in progress.
    """
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    source = iter(items)
    pool = ThreadPoolExecutor(1, thread_name_prefix="thinseg-ahead")
    pending: deque[Future] = deque()
    try:
        for item in source:
            pending.append(pool.submit(fn, item))
            if len(pending) > depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
