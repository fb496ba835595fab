"""``thinseg rocktype``: rock types from plugs and thin-section images.

A thin shell over :mod:`napari_thinseg.rocktype`: it pairs samples with
their label images, measures the images, runs the study and writes
``OUT/rocktypes.csv`` and ``OUT/crossplot.png``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..errors import ThinsegError

OUTPUTS = ("rocktypes.csv", "crossplot.png")


def _find(folder: Path, stem: str) -> Path | None:
    """The image file ``folder/<stem>.<image suffix>``, if exactly one."""
    from ..imaging.files import IMAGE_SUFFIXES

    hits = [
        folder / f"{stem}{suf}"
        for suf in IMAGE_SUFFIXES
        if (folder / f"{stem}{suf}").is_file()
    ]
    if len(hits) > 1:
        raise ThinsegError(
            f"{folder}: {len(hits)} files named {stem!r} "
            f"({', '.join(p.name for p in hits)}); keep one"
        )
    return hits[0] if hits else None


def pair_label_files(samples, csv_path, images_dir, labels_dir):
    """Label file per sample name, plus the new samples found in
    ``images_dir`` (images not listed in the CSV).

    Returns ``(samples, label_files)`` with new samples appended as rows
    without measurements. A listed image must exist and have labels; a
    sample with neither an image nor a labels file named after it keeps
    its plug data only.
    """
    from ..imaging.files import IMAGE_SUFFIXES
    from ..rocktype import add_unmeasured

    base = Path(images_dir) if images_dir else Path(csv_path).parent
    labels_dir = Path(labels_dir)
    if not labels_dir.is_dir():
        raise ThinsegError(f"{labels_dir}: no such folder")
    if images_dir and not Path(images_dir).is_dir():
        raise ThinsegError(f"{images_dir}: no such folder")
    files: dict[str, Path] = {}
    claimed: set[str] = set()
    for i, name in enumerate(samples.names):
        listed = samples.images[i] if samples.images is not None else None
        if listed:
            image = Path(listed)
            image = image if image.is_absolute() else base / image
            if not image.is_file():
                raise ThinsegError(
                    f"{csv_path}: sample {name!r}: image {image} not found"
                )
            stem = image.stem
        else:
            stem = name
            image = _find(base, stem) if images_dir else None
        claimed.add(stem)
        labels = _find(labels_dir, stem)
        if labels is None and (listed or image is not None):
            raise ThinsegError(
                f"{labels_dir}: no labels file {stem}.png for the image of "
                f"sample {name!r}"
            )
        if labels is not None:
            files[name] = labels
    new = []
    if images_dir:
        for f in sorted(Path(images_dir).iterdir()):
            if (
                f.is_file()
                and f.suffix.lower() in IMAGE_SUFFIXES
                and f.stem not in claimed
                and f.stem not in samples.names
            ):
                labels = _find(labels_dir, f.stem)
                if labels is None:
                    raise ThinsegError(
                        f"{labels_dir}: no labels file {f.stem}.png for "
                        f"the new image {f}"
                    )
                new.append((f.stem, f))
                files[f.stem] = labels
                claimed.add(f.stem)
    if not files:
        raise ThinsegError(
            f"{labels_dir}: no labels file matches a sample or image"
        )
    samples = add_unmeasured(
        samples, [n for n, _ in new], [str(f) for _, f in new]
    )
    return samples, files


def cmd_rocktype(args) -> int:
    from ..imaging.atomic import refuse_existing
    from ..rocktype import (
        add_unmeasured,
        iter_measure_features,
        read_features,
        read_samples,
        rock_typing,
    )
    from ..schemes import scheme_near
    from ._common import drive

    out = Path(args.out)
    refuse_existing([out / name for name in OUTPUTS], args.overwrite)
    if args.pixel_size_um is not None and not args.pixel_size_um > 0:
        raise ThinsegError(
            f"--pixel_size_um must be positive, got {args.pixel_size_um}"
        )
    if args.flow_units is not None and args.flow_units < 1:
        raise ThinsegError(
            f"--flow_units must be at least 1, got {args.flow_units}"
        )
    if args.folds is not None and args.folds < 2:
        raise ThinsegError(f"--folds must be at least 2, got {args.folds}")
    if args.images and not args.labels:
        raise ThinsegError(
            "--images needs --labels (the segmentations the features are "
            "measured on)"
        )
    if args.labels and args.features:
        raise ThinsegError("give --labels or --features, not both")
    samples = read_samples(args.samples)
    features = None
    if args.labels:
        samples, files = pair_label_files(
            samples, args.samples, args.images, args.labels
        )
        scheme = scheme_near(Path(args.labels) / "labels.png", args.scheme)
        # a sample's own pixel size (CSV column) wins over the option
        own = samples.pixel_size_um
        pixel = {
            name: args.pixel_size_um
            if own is None or math.isnan(own[i])
            else float(own[i])
            for i, name in enumerate(samples.names)
        }
        features = drive(
            iter_measure_features(files, scheme, pixel), "measure"
        )
    elif args.features:
        features = read_features(args.features)
        listed = set(samples.names)
        samples = add_unmeasured(
            samples, [n for n in features.names if n not in listed]
        )
    result = rock_typing(
        samples,
        features,
        n_flow_units=args.flow_units,
        calibrate=args.calibrate,
        n_folds=args.folds,
        seed=args.seed,
    )
    paths = result.write(out, overwrite=args.overwrite)
    for line in result.lines():
        print(line)
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number, got {text!r}"
        ) from None


def add_commands(sub) -> None:
    """Register ``rocktype`` on the ``thinseg`` subparsers."""
    p = sub.add_parser(
        "rocktype",
        help="Winland r35, RQI/FZI flow units and image-based rock typing",
        description="Rock types from a samples CSV (sample, porosity as a "
        "fraction or percent - values > 1 mean percent, or name the "
        "column porosity_fraction / porosity_percent - permeability_md, "
        "and optional image, rock_type, formation, pixel_size_um). Writes "
        "OUT/rocktypes.csv and OUT/crossplot.png; with --labels (or "
        "--features) fits cross-validated image models, reports them "
        "against a naive baseline and predicts images without plugs.",
    )
    p.add_argument("--samples", required=True, metavar="CSV")
    p.add_argument(
        "--images",
        metavar="DIR",
        help="thin-section images; relative image paths in the CSV are "
        "looked up here, and images not in the CSV are predicted",
    )
    p.add_argument(
        "--labels",
        metavar="DIR",
        help="label PNGs named like the images (or the samples)",
    )
    p.add_argument(
        "--features",
        metavar="CSV",
        help="a table of image features by sample instead of --labels",
    )
    p.add_argument(
        "--pixel_size_um",
        type=float,
        default=None,
        help="micrometres per pixel (a pixel_size_um column overrides)",
    )
    p.add_argument(
        "--scheme",
        help="seed, sandstone or a classes.json (default: classes.json "
        "near the labels, else seed)",
    )
    p.add_argument(
        "--flow_units",
        type=_whole,
        default=None,
        metavar="N",
        help="N flow units by natural breaks of log FZI (default: fixed "
        "FZI bins doubling from 0.09375 um)",
    )
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="fit plug = a + b * optical porosity per formation (at least "
        "3 samples each) and report calibrated porosity",
    )
    p.add_argument(
        "--folds",
        type=_whole,
        default=None,
        help="k-fold CV (default: leave-one-out up to 100 samples)",
    )
    p.add_argument("--seed", type=int, default=0, help="k-fold shuffling")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_rocktype)
