"""The one way the widgets tell the user something: napari notifications,
one line each, and actions whose errors become notifications instead of
tracebacks in the Qt event loop."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from napari.utils.notifications import show_error, show_info, show_warning

from ..errors import ThinsegError

logger = logging.getLogger(__name__)


def notify_error(message: str) -> None:
    """Show ``message`` (first line only) as a napari error notification."""
    show_error(str(message).strip().splitlines()[0] if message else "error")


def notify_info(message: str) -> None:
    """Show ``message`` as a napari info notification."""
    show_info(str(message))


def notify_warning(message: str) -> None:
    """Show ``message`` as a napari warning notification."""
    show_warning(str(message))


def one_line(exc: BaseException) -> str:
    """A one-line description of ``exc`` for a notification."""
    if isinstance(exc, ThinsegError):
        text = str(exc)
    else:
        text = (
            f"{type(exc).__name__}: {exc}"
            if str(exc)
            else (type(exc).__name__)
        )
    return text.strip().splitlines()[0] if text.strip() else "error"


def reports_errors(method: Callable) -> Callable:
    """Decorate a widget action so that errors become notifications.

    A :class:`ThinsegError` is shown as its one-line message; anything else
    is logged with its traceback and shown as one line, never raised into
    the Qt event loop. The widget's ``status_label``, where it has one,
    shows the message too (not the previous run's status).
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except ThinsegError as exc:
            message = one_line(exc)
        except Exception as exc:  # a widget must never crash napari
            logger.exception("napari-thinseg: %s failed", method.__name__)
            message = one_line(exc)
        notify_error(message)
        label = getattr(args[0], "status_label", None) if args else None
        if label is not None:
            label.setText(message)
        return None

    return wrapper


def report_failure(
    widget, message: str, notify: Callable[[str], None] | None = None
) -> None:
    """Tell that a widget's run failed: ``notify(message)`` (if given),
    the message in its ``status_label``, and its ``failed`` signal."""
    if notify is not None:
        notify(message)
    widget.status_label.setText(message)
    widget.failed.emit(message)


def scaling_note(name: str, data) -> str:
    """``"; <name>: 12-bit data in a 16-bit image: ..."`` where the values
    were scaled other than plainly (:func:`~..imaging.convert.
    describe_scaling`), else ``""``; shown as information too."""
    from ..imaging.convert import describe_scaling

    why = describe_scaling(data)
    if not why:
        return ""
    notify_info(f"{name}: {why}")
    return f" ({why})"
