"""The one exception type users see.

Every bad input raises :class:`ThinsegError` with a one-line message that
names the file or value and the problem; the CLI prints it and exits 2, the
widgets show it as a napari notification.
"""


class ThinsegError(ValueError):
    """A bad input or an impossible request, explained in one line."""
