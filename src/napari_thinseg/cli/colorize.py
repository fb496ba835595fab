"""``thinseg colorize``: petrographic pictures of label images."""

from __future__ import annotations

from pathlib import Path

from ..errors import ThinsegError
from ..imaging.files import output_paths
from ..progress import Progress
from ._common import drive


def _partner_images(labels: list[Path], image: str | None):
    """The thin-section image for each labels file (None without --image)."""
    from ..imaging.files import IMAGE_SUFFIXES

    if image is None:
        return [None] * len(labels)
    image = Path(image)
    if image.is_file():
        if len(labels) != 1:
            raise ThinsegError(
                f"{image}: one image given for {len(labels)} label files; "
                "give a folder of images with the same names"
            )
        return [image]
    if not image.is_dir():
        raise ThinsegError(f"{image}: no such file or folder")
    by_stem = {
        f.stem: f
        for f in sorted(image.iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    }
    missing = [p for p in labels if p.stem not in by_stem]
    if missing:
        raise ThinsegError(f"{missing[0]}: no image of that name in {image}")
    return [by_stem[p.stem] for p in labels]


def _colorize_files(labels, images, out, scheme_choice, overwrite):
    from ..colorize import match_colors, save_colored
    from ..imaging.atomic import refuse_existing
    from ..imaging.files import read_annotation, read_image
    from ..schemes import scheme_near

    targets = output_paths(labels, out)
    refuse_existing(targets, overwrite)
    for k, (lab, img, dst) in enumerate(
        zip(labels, images, targets, strict=True)
    ):
        scheme = scheme_near(lab, scheme_choice)
        ids = read_annotation(lab)
        if img is not None:
            try:
                scheme = match_colors(ids, read_image(img), scheme)
            except ThinsegError as exc:
                raise ThinsegError(f"{lab}: {exc}") from None
        save_colored(dst, ids, scheme, overwrite=True)
        yield Progress(k + 1, len(labels), lab.name)
    return targets


def cmd_colorize(args) -> int:
    from ..imaging.atomic import ensure_dir
    from ..imaging.files import list_images

    labels = list_images(args.labels)
    images = _partner_images(labels, args.image)
    ensure_dir(args.out)
    outputs = drive(
        _colorize_files(
            labels, images, Path(args.out), args.scheme, args.overwrite
        ),
        "colorize",
    )
    print(f"coloured {len(outputs)} label image(s) into {args.out}")
    return 0


def add_commands(sub) -> None:
    """Register ``colorize`` on the ``thinseg`` subparsers."""
    p = sub.add_parser(
        "colorize",
        help="paint label images in petrographic colours",
        description="Write DIR/<stem>.png, an RGB picture of each labels "
        "file; with --image, each class takes its median colour in the "
        "thin section.",
    )
    p.add_argument("labels", nargs="+", metavar="LABELS")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument(
        "--image",
        metavar="IMAGE_OR_DIR",
        help="match the thin section's colours",
    )
    p.add_argument(
        "--scheme",
        help="seed, sandstone or a classes.json "
        "(default: classes.json near the labels, else seed)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_colorize)
