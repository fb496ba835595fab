"""What the Folders widget runs in its worker (no Qt here): every image
of a folder auto-labelled or predicted, its labels written as an
annotation PNG (with the photo's pixel size), measured, and the
measurements written as one stats CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ....autolabel.rule import AutoLabelParams, autolabel, label_scheme
from ....errors import ThinsegError
from ....imaging.atomic import ensure_dir, refuse_existing
from ....imaging.convert import describe_scaling
from ....imaging.files import (
    list_images,
    output_paths,
    read_annotation,
    read_image,
    write_annotation,
)
from ....imaging.pixel_size import file_pixel_size_um
from ....measure import Measurement, measure, write_csv
from ....progress import ItemDone, ItemProgress, Progress, relay
from .job import ModelSource, load_first

STATS_NAME = "stats.csv"
"""The measurements' file in the output folder."""


@dataclass(frozen=True)
class LabelledFile:
    """What an image's :class:`~napari_thinseg.progress.ItemDone` holds:
    the image labelled, written and measured."""

    source: Path
    output: Path
    measurement: Measurement
    note: str = ""


def plan_outputs(folder, out_dir, overwrite: bool, resume: bool = False):
    """The images of ``folder``, the label files they become and the
    indices of those to keep, refused (before any work) when the output
    folder is the input or files exist there and neither ``overwrite``
    nor ``resume`` is on. ``resume`` keeps the label files a stopped run
    wrote whole (:func:`~napari_thinseg.inference.predict.written_labels`,
    the rule of ``thinseg predict --resume``: a torn one is refused)."""
    from ....inference.predict import written_labels

    files = list_images([folder])
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(folder).resolve():
        raise ThinsegError(
            f"{out_dir}: write the labels to another folder than the photos"
        )
    outputs = output_paths(files, out_dir)
    kept: set[int] = set()
    if resume and not overwrite:
        kept, _ = written_labels(outputs)
        # the stats are remade from every label file, kept ones too
        refuse_existing(
            [p for k, p in enumerate(outputs) if k not in kept], False
        )
    else:
        refuse_existing([*outputs, out_dir / STATS_NAME], overwrite)
    return files, outputs, kept


def folders_job(
    folder,
    out_dir,
    overwrite: bool = False,
    params: AutoLabelParams | None = None,
    source: ModelSource | None = None,
    precision: str = "auto",
    resume: bool = False,
):
    """Auto-label (``params``) or predict (``source``) every image of
    ``folder`` into ``out_dir`` (``resume``: the label files a stopped
    run wrote are kept and measured again, see :func:`plan_outputs`);
    yields :class:`ItemProgress` and an
    :class:`~napari_thinseg.progress.ItemDone` of :class:`LabelledFile`
    per image; returns the stats CSV's path."""
    files, outputs, kept = plan_outputs(folder, out_dir, overwrite, resume)
    ensure_dir(Path(out_dir))
    n = len(files)
    model = config = None
    if source is not None and len(kept) < n:
        model, config = yield from load_first(source, n)
    measurements = []
    for k, (src, dst) in enumerate(zip(files, outputs, strict=True)):
        yield ItemProgress(k, n, Progress(0, 1, src.name))
        um = file_pixel_size_um(src)
        if k in kept:
            labels, note = read_annotation(dst), "kept from a stopped run"
            scheme = (
                source.config.class_scheme
                if source is not None
                else label_scheme(params or AutoLabelParams())
            )
        else:
            image = read_image(src)
            labels, scheme = yield from _labelled(
                src, image, params, model, config, precision, k, n
            )
            write_annotation(dst, labels, overwrite=True, pixel_size_um=um)
            note = describe_scaling(image) or ""
        m = measure(labels, scheme, pixel_size_um=um, name=src.name)
        measurements.append(m)
        yield ItemDone(k, n, LabelledFile(src, dst, m, note))
    return write_csv(measurements, Path(out_dir) / STATS_NAME, overwrite=True)


def _labelled(src, image, params, model, config, precision, k, n):
    """The labels of ``image`` (item ``k`` of ``n``) and their scheme:
    auto-labelled with ``params``, or predicted with ``model``."""
    try:
        if model is None:
            params = params or AutoLabelParams()
            return autolabel(image, params), label_scheme(params)
        from ....inference.predict import predict_image

        job = predict_image(model, config, image, precision=precision)
        predicted = yield from relay(job, lambda p: ItemProgress(k, n, p))
        return predicted.labels, config.class_scheme
    except ThinsegError as exc:
        raise ThinsegError(f"{src}: {exc}") from None
