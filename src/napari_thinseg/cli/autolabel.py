"""``thinseg autolabel``: labels by gray level, blue epoxy or
multi-Otsu, a folder at a time."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ThinsegError
from ..imaging.files import output_paths
from ._common import ScalingNotes, drive, thresholds


def _autolabel_files(inputs, out, params, overwrite, notes, points=()):
    from ..autolabel.rule import autolabel, autolabel_stack
    from ..imaging.atomic import refuse_existing
    from ..imaging.convert import is_rgb
    from ..imaging.files import (
        is_stack,
        read_image,
        write_annotation,
        write_tiff,
    )
    from ..imaging.pixel_size import file_pixel_size_um

    targets = output_paths(inputs, out)
    refuse_existing(targets, overwrite)
    for k, (src, dst) in enumerate(zip(inputs, targets, strict=True)):
        image = read_image(src)
        notes.check(src.name, image)
        rgb = is_rgb(image)
        if points:
            try:
                params = _with_samples(params, image, rgb, points)
            except ThinsegError as exc:
                raise ThinsegError(f"{src}: {exc}") from None
        if is_stack(image):
            # a stack: every plane, kept together in one TIFF
            labels = drive(autolabel_stack(image, params, rgb), src.name)
            write_tiff(dst.with_suffix(".tif"), labels, overwrite)
        else:
            try:
                labels = autolabel(image, params, rgb=rgb)
            except ThinsegError as exc:
                raise ThinsegError(f"{src}: {exc}") from None
            um = file_pixel_size_um(src)  # stats reads it back
            write_annotation(dst, labels, overwrite=True, pixel_size_um=um)
        yield _progress(k, len(inputs), src.name)
    return targets


SAMPLE_RADIUS = 2
"""A sample is the median colour of (2 r + 1) x (2 r + 1) pixels."""


def _with_samples(params, image, rgb, points):
    """``params`` with the dye colours at pixel ``points`` ((x, y): column,
    row) of ``image`` as epoxy samples (of every plane of a stack)."""
    from dataclasses import replace

    from ..autolabel.epoxy import sample_colour

    if not rgb:
        raise ThinsegError("--epoxy_sample needs a colour (RGB) image")
    height, width = image.shape[-3:-1]
    colours = []
    for x, y in points:
        if not (0 <= x < width and 0 <= y < height):
            raise ThinsegError(
                f"--epoxy_sample {x} {y} lies outside the image "
                f"({width} x {height} pixels)"
            )
        r = SAMPLE_RADIUS
        rows = slice(max(0, y - r), y + r + 1)
        cols = slice(max(0, x - r), x + r + 1)
        colours.append(sample_colour(image[..., rows, cols, :]))
    return replace(params, epoxy_samples=tuple(colours))


def _progress(k, n, name):
    from ..progress import Progress

    return Progress(k + 1, n, name)


def _epoxy_window(args):
    """The fixed epoxy window the flags give (None: none given, the dye
    is found in each image)."""
    from ..autolabel.rule import EpoxyWindow

    given = (args.hue, args.min_saturation, args.min_value)
    if all(v is None for v in given):
        return None
    win = EpoxyWindow()
    hue = (win.hue_min, win.hue_max) if args.hue is None else args.hue
    return EpoxyWindow(
        hue[0],
        hue[1],
        win.min_saturation
        if args.min_saturation is None
        else args.min_saturation,
        win.min_value if args.min_value is None else args.min_value,
    )


def cmd_autolabel(args) -> int:
    from ..autolabel.rule import AutoLabelParams
    from ..imaging.atomic import ensure_dir
    from ..imaging.files import list_images

    points = tuple(tuple(p) for p in args.epoxy_sample or ())
    window = _epoxy_window(args)
    if args.method != "epoxy" and (points or window is not None):
        raise ThinsegError(
            "--epoxy_sample, --hue, --min_saturation and --min_value "
            "need --method epoxy"
        )
    if points and window is not None:
        raise ThinsegError(
            "give either --epoxy_sample or a fixed window (--hue, "
            "--min_saturation, --min_value), not both"
        )
    params = AutoLabelParams(
        method=args.method,
        thresholds=args.thresholds,
        sigma=args.sigma,
        n_classes=args.classes,
        epoxy=window,
    )
    inputs = list_images(args.inputs)
    ensure_dir(args.out)
    notes = ScalingNotes()
    outputs = drive(
        _autolabel_files(
            inputs, Path(args.out), params, args.overwrite, notes, points
        ),
        "autolabel",
    )
    print(f"labelled {len(outputs)} image(s) into {args.out}")
    notes.print()
    return 0


def add_commands(sub) -> None:
    """Register ``autolabel`` on the ``thinseg`` subparsers."""
    from ..autolabel.rule import DEFAULT_THRESHOLDS, METHODS, EpoxyWindow

    p = sub.add_parser(
        "autolabel",
        help="label images by gray level / blue epoxy",
        description="Write DIR/<stem>.png (uint8 class ids) per image. "
        "--method epoxy finds the blue dye in each image by itself (white "
        "balance, then the one bluish population); --epoxy_sample refines "
        "it, and --hue / --min_saturation / --min_value set a fixed hue / "
        "saturation / value window instead.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="image files or folders of images",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--method", choices=METHODS, default="gray")
    p.add_argument(
        "--thresholds",
        type=thresholds,
        default=DEFAULT_THRESHOLDS,
        help="increasing gray thresholds in (0, 1), comma separated "
        "(default 0.25,0.4,0.6,0.75)",
    )
    p.add_argument(
        "--sigma",
        type=float,
        default=1.0,
        help="Gaussian smoothing in pixels (default 1.0)",
    )
    p.add_argument(
        "--classes",
        type=int,
        default=5,
        help="number of multi-Otsu classes (default 5)",
    )
    p.add_argument(
        "--epoxy_sample",
        type=int,
        nargs=2,
        action="append",
        metavar=("X", "Y"),
        help="epoxy method: the dye's colour at pixel column X, row Y "
        "(5 x 5 pixels around it) refines the dye found in each image; "
        "repeat for several samples (pale and dark dye)",
    )
    win = EpoxyWindow()
    p.add_argument(
        "--hue",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="epoxy method: a fixed blue-dye hue window in [0, 1] instead "
        f"of the dye found in each image (default {win.hue_min} "
        f"{win.hue_max} once a fixed window is asked for)",
    )
    for name, text in (
        ("min_saturation", "saturation"),
        ("min_value", "value"),
    ):
        p.add_argument(
            f"--{name}",
            type=float,
            metavar=name.upper(),
            help=f"epoxy method: a fixed window's minimum {text} in [0, 1] "
            f"(default {getattr(win, name)} once a fixed window is asked "
            "for)",
        )
        # the spelling of earlier versions, still taken
        p.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=float,
            help=argparse.SUPPRESS,
        )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_autolabel)
