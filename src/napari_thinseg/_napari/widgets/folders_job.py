"""What the Folders widget runs in its worker (no Qt here): every image
of a folder auto-labelled or predicted, its labels written as an
annotation PNG (with the photo's pixel size), measured, and the
measurements written as one stats CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...autolabel.rule import AutoLabelParams, autolabel, label_scheme
from ...errors import ThinsegError
from ...imaging.atomic import ensure_dir, refuse_existing
from ...imaging.convert import describe_scaling
from ...imaging.files import (
    list_images,
    output_paths,
    read_image,
    write_annotation,
)
from ...imaging.pixel_size import file_pixel_size_um
from ...measure import Measurement, measure, write_csv
from ...progress import ItemProgress, Progress, relay
from .predict_job import ModelSource

STATS_NAME = "stats.csv"
"""The measurements' file in the output folder."""


@dataclass(frozen=True)
class FileDone:
    """Image ``index`` of ``n`` is labelled, written and measured."""

    index: int
    n: int
    source: Path
    output: Path
    measurement: Measurement
    note: str = ""


def plan_outputs(folder, out_dir, overwrite: bool):
    """The images of ``folder`` and the label files they become, refused
    (before any work) when the output folder is the input or files exist
    there and ``overwrite`` is off."""
    files = list_images([folder])
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(folder).resolve():
        raise ThinsegError(
            f"{out_dir}: write the labels to another folder than the photos"
        )
    outputs = output_paths(files, out_dir)
    refuse_existing([*outputs, out_dir / STATS_NAME], overwrite)
    return files, outputs


def folders_job(
    folder,
    out_dir,
    overwrite: bool = False,
    params: AutoLabelParams | None = None,
    source: ModelSource | None = None,
    precision: str = "auto",
):
    """Auto-label (``params``) or predict (``source``) every image of
    ``folder`` into ``out_dir``; yields :class:`ItemProgress` and
    :class:`FileDone`; returns the stats CSV's path."""
    files, outputs = plan_outputs(folder, out_dir, overwrite)
    ensure_dir(Path(out_dir))
    n = len(files)
    model = config = None
    if source is not None:
        from ...inference.predict import predict_image
        from ...model.cache import loaded_models
        from ._common import import_tensorflow

        import_tensorflow()
        model, config = source.model, source.config
        if model is None:
            yield ItemProgress(0, n, Progress(0, 1, f"loading {source.name}"))
            model, config = loaded_models.load(source.file)
    measurements = []
    for k, (src, dst) in enumerate(zip(files, outputs, strict=True)):
        image = read_image(src)
        yield ItemProgress(k, n, Progress(0, 1, src.name))
        try:
            if source is None:
                params = params or AutoLabelParams()
                labels, scheme = autolabel(image, params), label_scheme(params)
            else:
                job = predict_image(model, config, image, precision=precision)
                predicted = yield from relay(
                    job, lambda p, k=k: ItemProgress(k, n, p)
                )
                labels = predicted.labels
                scheme = config.class_scheme
        except ThinsegError as exc:
            raise ThinsegError(f"{src}: {exc}") from None
        um = file_pixel_size_um(src)
        write_annotation(dst, labels, overwrite=True, pixel_size_um=um)
        m = measure(labels, scheme, pixel_size_um=um, name=src.name)
        measurements.append(m)
        yield FileDone(k, n, src, dst, m, describe_scaling(image) or "")
    return write_csv(measurements, Path(out_dir) / STATS_NAME, overwrite=True)
