"""``thinseg stats``: modal analysis of label images, as a table and CSV.

A thin shell over :mod:`napari_thinseg.measure` (the text is
:func:`~napari_thinseg.measure.report.format_measurement`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ThinsegError
from ._common import count, drive, positive_float
from .slide import add_cluster_args, client_for


def _measure_slide(path: Path, scheme, options):
    """The modal analysis of a labels pyramid, read a block at a time
    (its class scheme and pixel size from its metadata)."""
    from ..imaging.lazy import open_lazy
    from ..imaging.pyramid import thinseg_attrs
    from ..measure.modal import measure_lazy
    from ..schemes import ClassScheme

    labels = open_lazy(path)
    options = dict(options)
    options["pixel_size_um"] = options["pixel_size_um"] or labels.pixel_size_um
    recorded = thinseg_attrs(path).get("class_scheme")
    if scheme is None and recorded is not None:
        scheme = ClassScheme.from_dict(recorded)
    return measure_lazy(labels.data, scheme, name=path.name, **options)


def cmd_stats(args) -> int:
    from ..imaging.atomic import refuse_existing
    from ..imaging.files import list_images
    from ..imaging.lazy import is_zarr
    from ..measure import format_measurement, measure_files, write_csv

    slides = [Path(p) for p in args.labels if is_zarr(p)]
    others = [p for p in args.labels if not is_zarr(p)]
    labels = list_images(others) if others else []
    csv = Path(args.csv) if args.csv else None
    if csv is not None:
        # refuse before measuring, not after minutes of work
        refuse_existing([csv], args.overwrite)
        if csv.resolve() in {p.resolve() for p in labels}:
            raise ThinsegError(f"{csv}: is one of the label images")
    options = {
        "pixel_size_um": args.pixel_size_um,
        "points": args.points,
        "n_boot": args.resamples,
        "block_px": args.block_px,
        "seed": args.seed,
    }
    results = [_measure_slide(p, args.scheme, options) for p in slides]
    with client_for(args) as client:
        results += drive(
            measure_files(
                labels,
                scheme=args.scheme,
                sizes=not args.no_sizes,
                client=client,
                **options,
            ),
            "stats",
        )
    print("\n\n".join(format_measurement(m) for m in results))
    if csv is not None:
        write_csv(results, csv, overwrite=args.overwrite)
        print(f"\nwrote {len(results)} row(s) to {csv}")
    return 0


def add_commands(sub) -> None:
    """Register ``stats`` on the ``thinseg`` subparsers."""
    p = sub.add_parser(
        "stats",
        help="class fractions, porosity and grain sizes of label images",
        description="Modal analysis of label images (uint8 class ids): "
        "fraction of every class over the labelled pixels (0 and labels "
        "outside the scheme are not counted), optical porosity with a "
        "95% binomial (Wilson) interval for an equivalent point count "
        "and a 95% spatial block-bootstrap interval, grain and pore "
        "sizes (Folk and Ward phi statistics with --pixel_size_um).",
    )
    p.add_argument(
        "labels",
        nargs="+",
        metavar="LABELS_OR_DIR",
        help="label images or folders of them, or whole-slide labels "
        "pyramids (.zarr: measured a block at a time, without sizes)",
    )
    p.add_argument(
        "--pixel_size_um",
        type=positive_float,
        default=None,
        metavar="UM",
        help="micrometres per pixel: areas in mm2 and phi statistics "
        "(default: what each label file records; predict and autolabel "
        "copy it from the photo's TIFF, OME-TIFF or PNG tags)",
    )
    p.add_argument(
        "--points",
        type=count(1),
        default=300,
        help="equivalent point count of the binomial interval (default 300)",
    )
    p.add_argument(
        "--resamples",
        type=count(0),
        default=200,
        help="block-bootstrap resamples, 0 for none (default 200)",
    )
    p.add_argument(
        "--block_px",
        type=count(1),
        default=None,
        help="bootstrap block side in pixels "
        "(default an eighth of the shorter side)",
    )
    p.add_argument(
        "--no_sizes",
        action="store_true",
        help="skip grain and pore sizes (the slow part)",
    )
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
    p.add_argument(
        "--csv",
        metavar="FILE",
        help="write one row per image, columns named with units",
    )
    p.add_argument(
        "--scheme",
        help="seed, sandstone or a classes.json "
        "(default: classes.json near the labels, else seed)",
    )
    add_cluster_args(p)
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing CSV"
    )
    p.set_defaults(func=cmd_stats)
