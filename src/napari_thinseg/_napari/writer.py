"""Writer contribution: a Labels layer as an annotation PNG (class ids)."""

from __future__ import annotations

from pathlib import Path

from ..imaging.files import write_annotation


def write_labels(path: str, data, meta: dict) -> list[str]:
    """Save ``data`` as an 8-bit single-channel PNG of class ids.

    napari has already asked the user before replacing a file, so an
    existing file is overwritten here.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    labels = data
    if labels.ndim != 2:
        from ..errors import ThinsegError

        raise ThinsegError(
            f"{path}: an annotation PNG holds one 2D plane; these labels are "
            f"{labels.ndim}D"
        )
    write_annotation(path, labels, overwrite=True)
    return [str(path)]
