"""What every ``thinseg`` command shares: the parser, argument types, the
progress bar and the output names."""

from __future__ import annotations

import argparse
import contextlib

from ..errors import ThinsegError
from ..progress import drive_with_bar as drive

__all__ = [
    "ThinsegParser",
    "count",
    "drive",
    "positive_float",
    "size",
]


class ThinsegParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be HxW, like 512x768, got {text!r}"
        ) from None
    return h, w


def thresholds(text: str):
    from ..autolabel.rule import parse_thresholds

    try:
        return parse_thresholds(text)
    except ThinsegError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be a positive number, got {text!r}"
        )
    return value


def count(least: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = least - 1
        if value < least:
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {least}, got {text!r}"
            )
        return value

    return parse


class ScalingNotes:
    """What value scaling was applied to which input
    (:func:`~..imaging.convert.describe_scaling`), printed after the run
    so that the progress bar stays whole."""

    def __init__(self):
        self.notes: list[str] = []

    def check(self, name: str, image) -> None:
        from ..imaging.convert import describe_scaling

        why = describe_scaling(image)
        if why:
            self.notes.append(f"note: {name}: {why}")

    def print(self) -> None:
        for note in self.notes:
            print(note)


@contextlib.contextmanager
def sigint_stops():
    """Within it, a first Ctrl-C asks the job to stop before its next
    batch (the ``stop`` callable given turns True) instead of
    interrupting TensorFlow inside an operation, which can crash the
    process (seen as a segmentation fault on a CPU with AMX); a second
    Ctrl-C interrupts at once. A stop that was asked for is raised as
    ``KeyboardInterrupt`` on the way out (``thinseg`` exits 130)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    asked = threading.Event()

    def ask(signum, frame):
        if asked.is_set():
            raise KeyboardInterrupt
        asked.set()

    previous = signal.signal(signal.SIGINT, ask)
    try:
        yield asked.is_set
    finally:
        signal.signal(signal.SIGINT, previous)
    if asked.is_set():
        raise KeyboardInterrupt
