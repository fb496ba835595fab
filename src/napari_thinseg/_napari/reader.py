"""Reader contribution: open a keras-segmentation dataset folder.

Each image comes in as an image layer named by its stem, its
crossed-polarised twin (where the dataset has them) as ``"<stem> XPL"``,
hidden, and its annotation as a Labels layer ``"<stem> labels"`` in the
dataset's class scheme.
"""

from __future__ import annotations

from pathlib import Path

from ..dataset import is_dataset, read_dataset
from ..imaging.files import read_annotation, read_image
from ..schemes import SCHEME_FILENAME
from .layers import labels_layer_data


def dataset_folder(path) -> Path | None:
    """The dataset folder ``path`` names (the folder itself, or the folder
    of its ``classes.json``), or None."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(path)
    if path.name == SCHEME_FILENAME and path.is_file():
        path = path.parent
    return path if is_dataset(path) else None


def napari_get_reader(path):
    """Return a reader for dataset folders (or their ``classes.json``) and
    session folders (:mod:`.session`), ``None`` for anything else. The
    manifest offers this reader for folders and ``classes.json`` only,
    never for a plain image."""
    from .session import is_session, session_layers

    one = path[0] if isinstance(path, list) and len(path) == 1 else path
    if isinstance(one, str | Path) and is_session(one):
        return lambda p: session_layers(p[0] if isinstance(p, list) else p)
    return read_dataset_layers if dataset_folder(path) is not None else None


def read_dataset_layers(path):
    """Layer data tuples of every (image, annotation) pair of the folder."""
    folder = dataset_folder(path)
    if folder is None:  # read_dataset says what is wrong with it
        folder = path[0] if isinstance(path, list) else path
    samples, scheme = read_dataset(folder)
    layers = []
    for s in samples:
        image = read_image(s.image_path)
        name = s.name if s.split == "train" else f"{s.name} ({s.split})"
        layers.append((image, {"name": name}, "image"))
        if s.xpl_path is not None:
            xpl = {"name": f"{name} XPL", "visible": False}
            layers.append((read_image(s.xpl_path), xpl, "image"))
        if s.annotation_path is not None:
            labels = read_annotation(s.annotation_path)
            layers.append(labels_layer_data(labels, scheme, f"{name} labels"))
    return layers
