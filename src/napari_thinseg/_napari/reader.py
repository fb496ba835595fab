"""Reader contribution: open a keras-segmentation dataset folder, or an
OME-Zarr folder (a whole slide or its labels).

Each image of a dataset comes in as an image layer named by its stem, its
crossed-polarised twin (where the dataset has them) as ``"<stem> XPL"``,
hidden, and its annotation as a Labels layer ``"<stem> labels"`` in the
dataset's class scheme. An OME-Zarr comes in as one multiscale layer,
read lazily: Labels when it holds labels (a class scheme written by
:class:`~napari_thinseg.imaging.pyramid.LabelsPyramid`, or NGFF
``image-label`` metadata), with the scheme's colours, else an Image;
scaled by its pixel size in micrometres. (napari takes no Labels pyramid
of a single level: such labels come in as a plain layer.)
"""

from __future__ import annotations

from pathlib import Path

from ..dataset.folders import is_dataset, read_dataset
from ..imaging.files import read_annotation, read_image
from ..schemes import SCHEME_FILENAME
from .layers import labels_layer_data, layer_levels


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
    """Return a reader for dataset folders (or their ``classes.json``),
    session folders (:mod:`.session`) and OME-Zarr folders, ``None`` for
    anything else. The manifest offers this reader for folders and
    ``classes.json`` only, never for a plain image."""
    from ..imaging.lazy import is_zarr
    from .session import is_session, session_layers

    one = path[0] if isinstance(path, list) and len(path) == 1 else path
    if isinstance(one, str | Path) and is_session(one):
        return lambda p: session_layers(p[0] if isinstance(p, list) else p)
    if isinstance(one, str | Path) and is_zarr(one):
        return read_zarr_layers
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


def _label_colormap(image_label: dict) -> dict | None:
    """``{label: RGBA floats}`` of NGFF ``image-label`` colours, or None."""
    colors = {None: (0.5, 0.5, 0.5, 1.0), 0: (0.0, 0.0, 0.0, 0.0)}
    for entry in image_label.get("colors") or []:
        try:
            rgba = [float(v) / 255 for v in entry["rgba"]]
            colors[int(entry["label-value"])] = tuple(rgba)
        except (KeyError, TypeError, ValueError):
            continue
    return colors if len(colors) > 2 else None


def read_zarr_layers(path):
    """The layer data tuple of an OME-Zarr folder (see the module
    docstring)."""
    from ..imaging.lazy import ngff_attrs, open_lazy
    from ..imaging.pyramid import thinseg_attrs
    from ..schemes import ClassScheme

    folder = Path(path[0] if isinstance(path, list) else path)
    image = open_lazy(folder)
    name = folder.name.removesuffix(".zarr").removesuffix(".ome")
    kwargs = {"name": name, "multiscale": True}
    if image.pixel_size_um:
        um = image.pixel_size_um
        kwargs["scale"] = (um, um)
    attrs = ngff_attrs(folder)
    scheme = thinseg_attrs(folder).get("class_scheme")
    if scheme is None and "image-label" not in attrs:
        return [(image.levels, kwargs, "image")]
    levels = layer_levels(image.levels)
    data, kwargs["multiscale"] = levels["data"], levels["multiscale"]
    if scheme is not None:
        scheme = ClassScheme.from_dict(scheme)
        return [labels_layer_data(data, scheme, **kwargs)]
    colormap = _label_colormap(attrs["image-label"])
    if colormap is not None:
        kwargs["colormap"] = colormap
    return [(data, kwargs, "labels")]
