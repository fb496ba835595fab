"""Whole slides and clusters for ``thinseg predict`` and ``thinseg stats``:
``--workers N`` / ``--scheduler ADDRESS``, and label outputs that are
OME-Zarr pyramids (``.zarr``) or pyramidal BigTIFFs (``.tif``).

A thin shell over :mod:`..predict_slide`, :mod:`..imaging.pyramid` and
:mod:`..distributed`. A whole slide resumes from the ``.partial`` a
stopped or killed run left (a notice says how many tiles were kept;
another model, tile plan or input is refused, ``--overwrite`` starts
over); ``--resume`` also skips a slide already finished.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import ThinsegError
from ..imaging.pyramid import check_slide_output, is_slide_output


def add_cluster_args(p) -> None:
    """``--workers`` and ``--scheduler`` (one or the other)."""
    from ._common import count

    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--workers",
        type=count(1),
        default=None,
        metavar="N",
        help="run on a dask LocalCluster of N worker processes (the "
        "cores shared out); photos, or a whole slide's tiles, as tasks",
    )
    group.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on a running dask cluster, e.g. tcp://10.0.0.5:8786 "
        "(its workers need napari-thinseg and the files' paths)",
    )


def add_resume_args(p) -> None:
    """``--resume`` and ``--overwrite`` (one or the other)."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--resume",
        action="store_true",
        help="keep what a stopped or killed run wrote: a folder's label "
        "files written whole are skipped (a torn one is refused), a "
        "finished slide is skipped. A whole slide resumes from its "
        "<output>.partial with or without --resume, saying how many "
        "tiles it kept (refused if another model, tile size or input "
        "made it)",
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing outputs, and start a whole slide over "
        "(its <output>.partial is discarded)",
    )


def client_for(args):
    """A context giving the cluster's client, or None without one."""
    if args.workers is None and args.scheduler is None:
        return contextlib.nullcontext()
    from ..inference.cluster import cluster

    return cluster(args.workers, args.scheduler)


def check_slide_args(args) -> bool:
    """Refuse, before any model is loaded, what a whole slide cannot
    take; True if ``--resume`` finds the output already finished."""
    from ..imaging.atomic import refuse_existing

    if args.xpl_input_path:
        raise ThinsegError(
            "whole slides are predicted from the plane-polarised scan "
            "alone; give a PNG output for plane + crossed polars photos"
        )
    if args.mode != "tile":
        raise ThinsegError("whole slides are predicted in tile mode")
    if args.colored and is_slide_output(args.output_path):
        raise ThinsegError(
            "--colored writes PNGs; a whole-slide output holds class ids "
            "(its colours are in the OME-Zarr / TIFF metadata)"
        )
    out = Path(args.output_path.rstrip("/"))
    if is_slide_output(out):
        out = check_slide_output(out, args.input_path)
    if args.resume and out.exists():
        print(f"{out}: already predicted (kept; --overwrite replaces it)")
        return True
    refuse_existing([out], args.overwrite)
    return False


def predict_slide_file(args, model, config, weights, client) -> int:
    """``thinseg predict`` of one image into a labels pyramid (or, on a
    cluster, into a PNG), tile by tile; resumes a stopped run's
    ``.partial``."""
    import numpy as np

    from ..imaging.files import write_annotation
    from ..imaging.lazy import open_lazy
    from ..imaging.pyramid import LabelsPyramid
    from ..inference.slides import predict_slide
    from ._common import drive

    out = Path(args.output_path.rstrip("/"))
    pyramid = is_slide_output(args.output_path)
    image = open_lazy(args.input_path)
    shape = image.shape[:2]
    scheme = config.class_scheme
    if not pyramid:
        labels = np.zeros(shape, np.uint8)
    else:
        labels = LabelsPyramid.create(
            out,
            shape,
            scheme,
            image.pixel_size_um,
            overwrite=args.overwrite,
            source=str(image.path),
        )

    def say_kept(event, bar) -> None:
        if event.kept and event.step == event.kept:  # the first event
            bar.write(
                f"resuming {labels.store_path}: {event.kept} of "
                f"{event.total} tiles kept from the stopped run"
            )

    result = drive(
        predict_slide(
            model,
            config,
            image,
            labels,
            tile=args.tile,
            precision=args.precision,
            tta=args.tta,
            client=client,
        ),
        "predict",
        unit="tile",
        on_event=say_kept,
    )
    if not pyramid:
        if args.colored:
            from ..colorize import colorize
            from ..imaging.files import write_png

            write_png(
                out,
                colorize(labels, scheme),
                args.overwrite,
                image.pixel_size_um,
            )
        else:
            write_annotation(out, labels, args.overwrite, image.pixel_size_um)
    else:
        labels.finish()
    where = f" on {result.workers} workers" if client is not None else ""
    kept = f", {result.kept} kept" if result.kept else ""
    print(
        f"predicted {image.path} ({shape[0]} x {shape[1]}, {result.tiles} "
        f"tiles{kept}{where}) with {weights} into {out}"
    )
    if result.workers_lost:
        print(
            f"note: {result.workers_lost} dask worker(s) lost during the "
            "run; their tiles ran again on the others"
        )
    return 0


def predicted_on_cluster(client, model, config, inputs, twins, args):
    """``(index, labels)`` of every photo as the cluster finishes them."""
    from ..inference.cluster import ModelPayload, map_files, predict_file_task

    settings = {
        "mode": args.mode,
        "tile": args.tile,
        "precision": args.precision,
        "tta": args.tta,
    }
    items = [
        (str(src), str(twins[src]) if src in twins else None) for src in inputs
    ]
    payload = ModelPayload.from_model(model, config)
    return map_files(client, predict_file_task, items, payload, settings)
