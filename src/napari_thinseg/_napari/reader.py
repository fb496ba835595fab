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
from .layers import labels_layer_data


def napari_get_reader(path):
    """Return a reader for dataset folders, ``None`` for anything else."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    return read_dataset_layers if is_dataset(Path(path)) else None


def read_dataset_layers(path):
    """Layer data tuples of every (image, annotation) pair of the folder."""
    if isinstance(path, list):
        path = path[0]
    samples, scheme = read_dataset(path)
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
