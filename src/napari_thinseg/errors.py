"""The one exception type users see.

Every bad input raises :class:`ThinsegError` with a one-line message that
names the file or value and the problem; the CLI prints it and exits 2, the
widgets show it as a napari notification.
"""


class ThinsegError(ValueError):
    """A bad input or an impossible request, explained in one line."""


OUT_OF_MEMORY = (
    "out of memory: lower the batch size or the input size (or close other "
    "programs using the memory)"
)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-memory error (numpy's ``MemoryError``,
    TensorFlow's ``ResourceExhaustedError``), told apart by class name so
    that TensorFlow need not be imported."""
    if isinstance(exc, MemoryError):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(
        names & {"ResourceExhaustedError", "OutOfMemoryError"}
    ) or "OOM when allocating" in str(exc)
