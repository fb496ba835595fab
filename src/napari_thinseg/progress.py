"""Progress events yielded by the long-running generators.

Long work (batch auto-label, export, training, prediction) is one
generator that yields :class:`Progress` and returns its result, so the CLI
draws a bar (:func:`drive_with_bar`), the GUI drives a ``thread_worker``
and tests just iterate (:func:`run`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """``step`` of ``total`` units done; ``message`` says on what."""

    step: int
    total: int
    message: str = ""


@dataclass(frozen=True)
class ItemProgress:
    """``progress`` within item ``index`` of ``n`` (an image of a
    folder, say)."""

    index: int
    n: int
    progress: Progress


@dataclass(frozen=True)
class ItemDone:
    """Item ``index`` of ``n`` is finished; ``result`` is what it made
    (an image's prediction, a label file written...)."""

    index: int
    n: int
    result: Any


ITEM_UNITS = 1000
"""Units of progress an item counts for in :func:`item_steps`."""


def item_steps(event: ItemProgress | ItemDone) -> tuple[int, int]:
    """``(done, total)`` units of a job over items that ``event`` says
    (each item :data:`ITEM_UNITS`; an :class:`ItemDone` counts whole)."""
    if isinstance(event, ItemDone):
        done = (event.index + 1) * ITEM_UNITS
    else:
        p = event.progress
        done = event.index * ITEM_UNITS + ITEM_UNITS * p.step // max(
            1, p.total
        )
    return done, max(1, event.n) * ITEM_UNITS


class TimeLeft:
    """Estimated seconds left of a job, from its progress events.

    The rate is measured from the first event on, so what came before it
    (loading TensorFlow, building the model) does not count.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._first: tuple[float, int] | None = None

    def update(self, step: int, total: int) -> float | None:
        """Seconds left after ``step`` of ``total`` (None until known)."""
        now = self._clock()
        if self._first is None or step < self._first[1]:
            self._first = (now, step)
            return None
        started, first_step = self._first
        if step >= total:
            return 0.0
        if step == first_step:
            return None
        rate = (now - started) / (step - first_step)
        return rate * (total - step)


def time_left_text(seconds: float | None) -> str:
    """``"about 3 min left"``; empty while unknown and once done."""
    if seconds is None or seconds < 0.5:
        return ""  # unknown, or done
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"about {minutes} min left"
    return f"about {minutes // 60} h {minutes % 60:02d} min left"


def run(
    gen: Generator[Progress, Any, T],
    on_event: Callable[[Any], None] | None = None,
) -> T:
    """Drive a progress generator to the end and return its result,
    handing every event to ``on_event`` (``events.append``, say)."""
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)


def relay(
    gen: Generator[Any, Any, T],
    wrap: Callable[[Any], Any] = lambda event: event,
    stop: Callable[[], bool] | None = None,
) -> Generator[Any, Any, T]:
    """Drive sub-generator ``gen`` inside another: yield each of its
    events through ``wrap`` and return its result (``result = yield from
    relay(job, ...)``). Once ``stop()`` is true ``gen`` is closed and
    :class:`Stopped` raised, between two events."""
    while True:
        try:
            event = next(gen)
        except StopIteration as done:
            return done.value
        if stop is not None and stop():
            gen.close()
            raise Stopped
        yield wrap(event)


def as_message(message: str) -> Callable[[Progress], Progress]:
    """A ``wrap`` for :func:`relay`: the event's progress, told as
    ``message``."""
    return lambda event: Progress(event.step, event.total, message)


class Stopped(Exception):
    """A relayed job was stopped (its ``stop()`` turned true)."""


def drive_with_bar(
    gen: Generator, desc: str, unit: str = "file", on_event=None
):
    """Run a progress generator with a bar on stderr (only on a terminal).

    ``on_event(event, bar)`` is called with every event (to print epoch
    summaries, say). The generator is closed on the way out, so Ctrl-C
    reaches its clean-up.
    """
    from tqdm import tqdm

    bar = None
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                return stop.value
            if bar is None:
                bar = tqdm(
                    total=ev.total,
                    desc=desc,
                    unit=unit,
                    disable=None,
                    leave=False,
                )
            elif ev.total != bar.total:
                bar.reset(total=ev.total)  # the next phase of the job
            bar.update(ev.step - bar.n)
            bar.set_postfix_str(ev.message, refresh=False)
            if on_event is not None:
                on_event(ev, bar)
    finally:
        if bar is not None:
            bar.close()
        gen.close()
