"""Progress events yielded by the long-running generators.

Long work (batch auto-label, export, later training and prediction) is one
generator that yields :class:`Progress` and returns its result, so the CLI
draws a bar, the GUI drives a ``thread_worker`` and tests just iterate.
"""

from __future__ import annotations

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
