"""Sessions: a day's work saved as a folder and opened again.

A session folder holds ``session.json`` (the layers in order: name, kind,
file, scale, translate, visibility, opacity, class scheme and the plugin's
metadata), ``images/<n>.tif`` (the data as it was, any dtype),
``labels/<n>.png`` (uint8 class ids; TIFF beyond 255), ``points/<n>.csv``
(coordinates and the layer's features: a point count's classes and
confirmations), ``model/`` with the model trained last in this session
(a keras-segmentation checkpoint), so that "model just trained" survives
a restart, and the settings of the panel's widgets. Saving never replaces
a session unless asked; every file is written atomically. Whole slides
(multiscale layers) are kept by the path of their file, read lazily when
the session opens, never copied. The reader
opens a session folder dropped on napari; :func:`open_session` also
brings the model back.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from napari.layers import Image, Labels, Points

from ..errors import ThinsegError
from ..imaging.atomic import atomic_write_text, ensure_dir, refuse_existing
from ..imaging.files import (
    read_annotation,
    read_image,
    write_annotation,
    write_tiff,
)
from ..schemes import ClassScheme
from .layers import labels_kwargs, layer_levels, scheme_of

SESSION_FILE = "session.json"
VERSION = 1
MODEL_PREFIX = Path("model") / "trained"


def is_session(path) -> bool:
    """Whether ``path`` is a session folder."""
    return (Path(path) / SESSION_FILE).is_file()


def _json_safe(metadata: dict) -> dict:
    out = {}
    for key, value in metadata.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue  # arrays and objects stay behind
        out[key] = value
    return out


def _slide_entry(layer) -> dict:
    """What a session keeps of a multiscale layer: the file it shows
    (a slide, or a labels pyramid: the ``.partial`` store of a stopped
    prediction too)."""
    from ..imaging.pyramid import partial_path
    from .layers import PREDICTION_KEY, SLIDE_KEY

    meta = layer.metadata
    source = meta.get(SLIDE_KEY)
    predicted = meta.get(PREDICTION_KEY)
    if isinstance(predicted, dict) and predicted.get("output"):
        source = predicted["output"]
        if not Path(source).exists():
            source = str(partial_path(source))
    source = source or layer.source.path
    if not source or not Path(source).exists():
        raise ThinsegError(
            f"layer {layer.name!r}: a whole-slide layer is saved by its "
            "file, and it has none on disk"
        )
    entry = {"kind": "slide", "file": str(Path(source).resolve())}
    if isinstance(layer, Labels):
        entry.update(kind="slide labels", scheme=scheme_of(layer).to_dict())
    return entry


def _slide_layer(entry: dict, kwargs: dict) -> tuple:
    """The layer data tuple of a saved whole-slide layer, read lazily."""
    from ..imaging.lazy import open_lazy

    try:
        levels = open_lazy(entry["file"]).levels
    except ThinsegError as exc:
        raise ThinsegError(f"layer {entry['name']!r}: {exc}") from None
    if entry["kind"] == "slide":
        return levels, {**kwargs, "multiscale": True}, "image"
    extra = labels_kwargs(ClassScheme.from_dict(entry["scheme"]))
    meta = {**kwargs["metadata"], **extra.pop("metadata")}
    shown = layer_levels(levels)
    kwargs = {**kwargs, **extra, "metadata": meta}
    kwargs["multiscale"] = shown["multiscale"]
    return shown["data"], kwargs, "labels"


def _common(layer) -> dict:
    return {
        "name": layer.name,
        "scale": [float(s) for s in layer.scale],
        "translate": [float(t) for t in layer.translate],
        "visible": bool(layer.visible),
        "opacity": float(layer.opacity),
        "metadata": _json_safe(dict(layer.metadata)),
    }


def save_session(
    viewer, folder, overwrite: bool = False, settings: dict | None = None
) -> Path:
    """Write the viewer's Image, Labels and Points layers (and the model
    trained last, and the widgets' ``settings``) as a session in
    ``folder``; returns ``session.json``.

    Raises
    ------
    ThinsegError
        A session is there already (without ``overwrite``), or nothing to
        save.
    """
    from ..model.cache import trained_models

    folder = Path(folder)
    target = folder / SESSION_FILE
    refuse_existing([target], overwrite)
    layers = [
        ly for ly in viewer.layers if isinstance(ly, Image | Labels | Points)
    ]
    if not layers:
        raise ThinsegError("nothing to save: no image, labels or points")
    ensure_dir(folder)
    entries = []
    for k, layer in enumerate(layers):
        entry = _common(layer)
        if getattr(layer, "multiscale", False):
            # a whole slide is saved by its file, never loaded whole
            entry.update(_slide_entry(layer))
            entries.append(entry)
            continue
        data = np.asarray(layer.data)
        if isinstance(layer, Labels):
            entry["kind"] = "labels"
            entry["scheme"] = scheme_of(layer).to_dict()
            if (
                data.ndim == 2
                and data.min(initial=0) >= 0
                and (data.max(initial=0) <= 255)
            ):
                entry["file"] = f"labels/{k}.png"
                write_annotation(folder / entry["file"], data, overwrite=True)
            else:
                entry["file"] = f"labels/{k}.tif"
                write_tiff(folder / entry["file"], data, overwrite=True)
        elif isinstance(layer, Image):
            entry.update(kind="image", rgb=bool(layer.rgb))
            entry["file"] = f"images/{k}.tif"
            write_tiff(folder / entry["file"], data, overwrite=True)
        else:
            entry.update(kind="points", size=float(np.mean(layer.size)))
            entry["file"] = f"points/{k}.csv"
            table = layer.features.copy()
            for axis in range(data.shape[1]):
                table.insert(axis, f"axis{axis}", data[:, axis])
            ensure_dir((folder / entry["file"]).parent)
            atomic_write_text(
                folder / entry["file"], table.to_csv(index=False)
            )
        entries.append(entry)
    model = None
    item = trained_models.latest()
    if item is not None and item.config is not None:
        from ..model import checkpoints

        prefix = folder / MODEL_PREFIX
        ensure_dir(prefix.parent)
        checkpoints.write_config(prefix, item.config)
        checkpoints.save_checkpoint(prefix, 0, item.model)
        model = {"prefix": str(MODEL_PREFIX), "name": item.name}
    session = {
        "version": VERSION,
        "layers": entries,
        "model": model,
        "settings": settings or {},
    }
    return atomic_write_text(target, json.dumps(session, indent=2) + "\n")


def _read(folder: Path) -> dict:
    try:
        session = json.loads((folder / SESSION_FILE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ThinsegError(f"{folder / SESSION_FILE}: {exc}") from None
    if not isinstance(session, dict) or session.get("version") != VERSION:
        raise ThinsegError(
            f"{folder / SESSION_FILE}: not a napari-thinseg session "
            f"(version {VERSION})"
        )
    return session


def session_layers(folder) -> list[tuple]:
    """Layer data tuples of a session folder, in their saved order."""
    import pandas as pd

    folder = Path(folder)
    out = []
    for entry in _read(folder)["layers"]:
        path = folder / entry["file"]  # or the absolute file of a slide
        kwargs = {
            key: entry[key]
            for key in ("name", "scale", "translate", "visible", "opacity")
        }
        kwargs["metadata"] = entry.get("metadata", {})
        kind = entry["kind"]
        if kind in ("slide", "slide labels"):
            out.append(_slide_layer(entry, kwargs))
        elif kind == "labels":
            data = (
                read_annotation(path)
                if path.suffix == ".png"
                else read_image(path)
            )
            scheme = ClassScheme.from_dict(entry["scheme"])
            extra = labels_kwargs(scheme)
            kwargs["metadata"] = {
                **kwargs["metadata"],
                **extra.pop("metadata"),
            }
            out.append((data, {**kwargs, **extra}, "labels"))
        elif kind == "image":
            out.append(
                (read_image(path), {**kwargs, "rgb": entry["rgb"]}, "image")
            )
        elif kind == "points":
            table = pd.read_csv(path)
            axes = [c for c in table.columns if c.startswith("axis")]
            data = table[axes].to_numpy(float)
            kwargs.update(
                features=table.drop(columns=axes), size=entry["size"]
            )
            out.append((data, kwargs, "points"))
    return out


def open_session(viewer, folder) -> list:
    """Add a session's layers to ``viewer`` and register its model as the
    latest trained one; returns the layers."""
    from ..model.cache import TrainedModel, trained_models

    folder = Path(folder)
    session = _read(folder)
    layers = []
    for data, kwargs, kind in session_layers(folder):
        layers.append(getattr(viewer, f"add_{kind}")(data, **kwargs))
    model = session.get("model")
    if model:
        from ..model.checkpoints import load_model

        net, config, path = load_model(folder / model["prefix"])
        name = f"{model['name']} (from session)"
        trained_models.add(TrainedModel(net, config, name, path))
    return layers


def session_settings(folder) -> dict:
    """The widgets' settings a session saved (empty when none)."""
    settings = _read(Path(folder)).get("settings") or {}
    return settings if isinstance(settings, dict) else {}
