"""Writing files safely: folders made or refused in one line, atomic
writes (a temporary file beside the target, then a rename), and groups of
files that appear together or not at all.

A crash never leaves a half-written file under the real name, and an
existing file is replaced only when the caller says ``overwrite``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..errors import ThinsegError


def ensure_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) or explain in one line why not."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ThinsegError(f"{path}: exists and is not a folder") from None
    except OSError as exc:
        raise ThinsegError(
            f"{path}: cannot create folder ({exc.strerror or exc})"
        ) from None
    if not os.access(path, os.W_OK):
        raise ThinsegError(f"{path}: folder is not writable")
    return path


def refuse_existing(paths: Sequence[Path], overwrite: bool) -> None:
    """Raise if any of ``paths`` exists and ``overwrite`` is off."""
    if overwrite:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise ThinsegError(
            f"{existing[0]}{more}: already exists (use overwrite to replace)"
        )


def _write_file(fd: int, data: bytes) -> None:
    """Write all of ``data`` to the open file ``fd`` and flush it to disk."""
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _cannot_write(path: Path, exc: OSError) -> ThinsegError:
    return ThinsegError(f"{path}: cannot write ({exc.strerror or exc})")


def _umask() -> int:
    """The process umask; read from /proc on Linux, because setting it to
    read it back leaves it 0 if Ctrl-C lands in between."""
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open("/proc/self/status", encoding="ascii") as f,
    ):
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_temp(path: Path, data: bytes) -> str:
    """Write ``data`` to a new temporary file beside ``path``; return its
    name. Nothing is left behind if that fails."""
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".part", dir=path.parent
        )
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        # mkstemp makes private (0600) files; give the result the mode any
        # new file of the user's gets
        mask = _umask()
        os.fchmod(fd, 0o666 & ~mask)
        _write_file(fd, data)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise
    return tmp


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and a rename."""
    path = Path(path)
    tmp = _write_temp(path, data)
    try:
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _cannot_write(path, exc) from None
        raise
    return path


class StagedFiles:
    """Files that appear together or not at all.

    :meth:`write` puts each file beside its target under a temporary name;
    :meth:`commit` renames them all into place (renames need no disk
    space, so a full disk strikes while staging, never half way through
    committing). Leaving the ``with`` block without committing (an error,
    Stop, Ctrl-C) removes the temporaries and the folders made for them,
    so the targets are as they were.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[str, Path]] = []
        self._made: list[Path] = []

    def make_dir(self, path: str | Path) -> Path:
        """Create ``path`` (and parents), remembering what was new."""
        path = Path(path)
        new = []
        for p in (path, *path.parents):
            if p.exists():
                break
            new.append(p)
        ensure_dir(path)
        self._made.extend(new)
        return path

    def write(self, path: str | Path, data: bytes) -> Path:
        path = Path(path)
        self._staged.append((_write_temp(path, data), path))
        return path

    def commit(self) -> list[Path]:
        done = []
        for tmp, path in self._staged:
            try:
                os.replace(tmp, path)
            except OSError as exc:
                raise _cannot_write(path, exc) from None
            done.append(path)
        self._staged.clear()
        self._made.clear()
        return done

    def discard(self) -> None:
        for tmp, _ in self._staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._staged.clear()
        deepest_first = sorted(self._made, key=lambda p: -len(p.parts))
        for folder in deepest_first:  # only if left empty
            with contextlib.suppress(OSError):
                folder.rmdir()
        self._made.clear()

    def __enter__(self) -> StagedFiles:
        return self

    def __exit__(self, *exc) -> None:
        self.discard()


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def leftover_temps(path: str | Path) -> list[Path]:
    """The temporary files an interrupted atomic write of ``path`` left
    beside it (:func:`atomic_write_bytes`' ``.<name>.*.part``)."""
    path = Path(path)
    with contextlib.suppress(OSError):
        return sorted(path.parent.glob(f".{path.name}.*.part"))
    return []


def fsync_paths(paths) -> None:
    """Flush the files at ``paths`` (those that exist) and the folders
    holding them to disk: what was written is kept through a power cut,
    not only a crash."""
    folders = set()
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        folders.add(Path(path).parent)
    for folder in folders:
        with contextlib.suppress(OSError):  # not every system syncs folders
            fd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
