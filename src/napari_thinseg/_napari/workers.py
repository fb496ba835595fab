"""One way for the widgets to run long work off the GUI thread.

A job is a function or generator function (the core's progress
generators). :func:`start` runs it in a napari ``thread_worker`` with its
progress bar; errors the user can act on (:class:`ThinsegError`, out of
memory) come back as a :class:`Refused` result with the one line to show,
never as a traceback; anything else is an error napari's worker reports.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import OUT_OF_MEMORY, ThinsegError, is_out_of_memory


@dataclass(frozen=True)
class Refused:
    """A job's result when it refused its input: the one line to show."""

    message: str


def refusing(job: Callable, out_of_memory: str = OUT_OF_MEMORY) -> Callable:
    """``job`` with :class:`ThinsegError` and out-of-memory errors
    returned as :class:`Refused` (``out_of_memory`` says what to lower)."""

    def refused(exc: BaseException) -> Refused:
        if isinstance(exc, ThinsegError):
            return Refused(str(exc))
        if is_out_of_memory(exc):
            return Refused(out_of_memory)
        raise exc

    if inspect.isgeneratorfunction(job):

        @functools.wraps(job)
        def generator(*args, **kwargs):
            try:
                return (yield from job(*args, **kwargs))
            except Exception as exc:
                return refused(exc)

        return generator

    @functools.wraps(job)
    def function(*args, **kwargs):
        try:
            return job(*args, **kwargs)
        except Exception as exc:
            return refused(exc)

    return function


def start(
    job: Callable,
    *args,
    desc: str | None = None,
    total: int | None = None,
    out_of_memory: str = OUT_OF_MEMORY,
    yielded: Callable | None = None,
    returned: Callable | None = None,
    refused: Callable[[str], None] | None = None,
    errored: Callable | None = None,
    aborted: Callable | None = None,
    finished: Callable | None = None,
    **kwargs,
):
    """Run ``job(*args, **kwargs)`` in a started napari ``thread_worker``.

    ``desc`` (and ``total``) give it a napari progress bar. A
    :class:`Refused` result goes to ``refused(message)``, any other to
    ``returned(value)``; the other callbacks are the worker's signals.
    Returns the worker.
    """
    from napari.qt.threading import thread_worker

    def on_returned(value):
        if isinstance(value, Refused):
            if refused is not None:
                refused(value.message)
        elif returned is not None:
            returned(value)

    connect = {"returned": on_returned}
    for signal, callback in (
        ("yielded", yielded),
        ("errored", errored),
        ("aborted", aborted),
        ("finished", finished),
    ):
        if callback is not None:
            connect[signal] = callback
    progress = None
    if desc is not None:
        progress = {"desc": desc}
        if total is not None:
            progress["total"] = total
    make = thread_worker(
        refusing(job, out_of_memory), progress=progress, connect=connect
    )
    return make(*args, **kwargs)
