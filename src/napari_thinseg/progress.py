"""Progress events yielded by the long-running generators.

Long work (batch auto-label, export, later training and prediction) is one
generator that yields :class:`Progress` and returns its result, so the CLI
draws a bar, the GUI drives a ``thread_worker`` and tests just iterate.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """``step`` of ``total`` units done; ``message`` says on what."""

    step: int
    total: int
    message: str = ""


def run(gen: Generator[Progress, Any, T]) -> T:
    """Drive a progress generator to the end and return its result."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
