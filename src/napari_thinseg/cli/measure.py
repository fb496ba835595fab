"""``thinseg stats``: modal analysis of label images, as a table and CSV.

A thin shell over :mod:`napari_thinseg.measure` (the text is
:func:`~napari_thinseg.measure.report.format_measurement`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ThinsegError
from ._common import count, drive, positive_float


def cmd_stats(args) -> int:
    from ..imaging.atomic import refuse_existing
    from ..imaging.files import list_images
    from ..measure import format_measurement, measure_files, write_csv

    labels = list_images(args.labels)
    csv = Path(args.csv) if args.csv else None
    if csv is not None:
        # refuse before measuring, not after minutes of work
        refuse_existing([csv], args.overwrite)
        if csv.resolve() in {p.resolve() for p in labels}:
            raise ThinsegError(f"{csv}: is one of the label images")
    results = drive(
        measure_files(
            labels,
            scheme=args.scheme,
            pixel_size_um=args.pixel_size_um,
            points=args.points,
            n_boot=args.resamples,
            block_px=args.block_px,
            sizes=not args.no_sizes,
            seed=args.seed,
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
        help="label images or folders of them",
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
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing CSV"
    )
    p.set_defaults(func=cmd_stats)
