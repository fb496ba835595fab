"""The ``thinseg`` command: the plugin's work, headless.

A thin shell over the pipeline modules. Bad input exits with status 2 and
one line on stderr naming the file and the problem; nothing on disk is
replaced without ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Generator, Sequence
from pathlib import Path

from . import __version__
from .errors import OUT_OF_MEMORY, ThinsegError, is_out_of_memory


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (exit 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be HxW, like 512x768, got {text!r}"
        ) from None
    return h, w


def _thresholds(text: str):
    from .autolabel import parse_thresholds

    try:
        return parse_thresholds(text)
    except ThinsegError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def drive(gen: Generator, desc: str, unit: str = "file", on_event=None):
    """Run a progress generator with a bar on stderr (only on a terminal).

    ``on_event(event, bar)`` is called with every event (to print epoch
    summaries, say). The generator is closed on the way out, so Ctrl-C
    reaches its clean-up.
    """
    from tqdm import tqdm

    bar = None
    try:
        while True:
            try:
                ev = next(gen)
            except StopIteration as stop:
                return stop.value
            if bar is None:
                bar = tqdm(
                    total=ev.total,
                    desc=desc,
                    unit=unit,
                    disable=None,
                    leave=False,
                )
            bar.update(ev.step - bar.n)
            bar.set_postfix_str(ev.message, refresh=False)
            if on_event is not None:
                on_event(ev, bar)
    finally:
        if bar is not None:
            bar.close()
        gen.close()


def _outputs(inputs: Sequence[Path], out: Path, suffix=".png") -> list[Path]:
    """``out/<stem><suffix>`` for each input, refusing two equal stems."""
    seen: dict[str, Path] = {}
    for p in inputs:
        if p.stem in seen:
            raise ThinsegError(
                f"{p}: same name as {seen[p.stem]}; outputs would collide"
            )
        seen[p.stem] = p
    return [out / f"{p.stem}{suffix}" for p in inputs]


# -- autolabel ---------------------------------------------------------------
def _autolabel_files(inputs, out, params, overwrite):
    from .autolabel import autolabel, autolabel_stack, is_rgb
    from .io import (
        is_stack,
        read_image,
        refuse_existing,
        write_annotation,
        write_tiff,
    )

    outputs = _outputs(inputs, out)
    refuse_existing(outputs, overwrite)
    for k, (src, dst) in enumerate(zip(inputs, outputs, strict=True)):
        image = read_image(src)
        rgb = is_rgb(image)
        if is_stack(image):
            # a stack: every plane, kept together in one TIFF
            labels = drive(autolabel_stack(image, params, rgb), src.name)
            write_tiff(dst.with_suffix(".tif"), labels, overwrite)
        else:
            try:
                labels = autolabel(image, params, rgb=rgb)
            except ThinsegError as exc:
                raise ThinsegError(f"{src}: {exc}") from None
            write_annotation(dst, labels, overwrite=True)
        yield _progress(k, len(inputs), src.name)
    return outputs


def _progress(k, n, name):
    from .progress import Progress

    return Progress(k + 1, n, name)


def cmd_autolabel(args) -> int:
    from .autolabel import AutoLabelParams, EpoxyWindow
    from .io import ensure_dir, list_images

    params = AutoLabelParams(
        method=args.method,
        thresholds=args.thresholds,
        sigma=args.sigma,
        n_classes=args.classes,
        epoxy=EpoxyWindow(
            args.hue[0], args.hue[1], args.min_saturation, args.min_value
        ),
    )
    inputs = list_images(args.inputs)
    ensure_dir(args.out)
    outputs = drive(
        _autolabel_files(inputs, Path(args.out), params, args.overwrite),
        "autolabel",
    )
    print(f"labelled {len(outputs)} image(s) into {args.out}")
    return 0


# -- colorize ----------------------------------------------------------------
def _partner_images(labels: list[Path], image: str | None):
    """The thin-section image for each labels file (None without --image)."""
    from .io import IMAGE_SUFFIXES

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
    from .classes import scheme_near
    from .colormap import match_colors, save_colored
    from .io import read_annotation, read_image, refuse_existing

    outputs = _outputs(labels, out)
    refuse_existing(outputs, overwrite)
    for k, (lab, img, dst) in enumerate(
        zip(labels, images, outputs, strict=True)
    ):
        scheme = scheme_near(lab, scheme_choice)
        ids = read_annotation(lab)
        if img is not None:
            try:
                scheme = match_colors(ids, read_image(img), scheme)
            except ThinsegError as exc:
                raise ThinsegError(f"{lab}: {exc}") from None
        save_colored(dst, ids, scheme, overwrite=True)
        yield _progress(k, len(labels), lab.name)
    return outputs


def cmd_colorize(args) -> int:
    from .io import ensure_dir, list_images

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


# -- synth -------------------------------------------------------------------
def _synth_pairs(n, size, seed, scheme_name):
    from .dataset import Pair
    from .synth import synthetic_sandstone, to_seed_labels

    for k in range(n):
        rgb, labels = synthetic_sandstone(size, seed=seed + k)
        if scheme_name == "seed":
            labels = to_seed_labels(labels)
        yield Pair(f"synth_{seed + k:04d}", rgb, labels)


def cmd_synth(args) -> int:
    from .classes import get_scheme
    from .dataset import export_dataset

    if args.n < 1:
        raise ThinsegError(f"-n must be at least 1, got {args.n}")
    scheme = get_scheme(args.scheme)
    pairs = list(_synth_pairs(args.n, args.size, args.seed, args.scheme))
    result = drive(
        export_dataset(
            pairs,
            args.out,
            scheme,
            args.test_fraction,
            args.seed,
            args.overwrite,
        ),
        "synth",
    )
    print(
        f"wrote {len(result.train)} training and {len(result.test)} test "
        f"synthetic thin section(s) to {args.out}"
    )
    return 0


# -- parser ------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from .autolabel import DEFAULT_THRESHOLDS, METHODS, EpoxyWindow

    parser = _Parser(
        prog="thinseg",
        description="Segment petrographic thin sections (napari-thinseg).",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks on errors"
    )
    sub = parser.add_subparsers(
        dest="command", required=True, parser_class=_Parser
    )

    p = sub.add_parser(
        "autolabel",
        help="label images by gray level / blue epoxy",
        description="Write DIR/<stem>.png (uint8 class ids) per image.",
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
        type=_thresholds,
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
    win = EpoxyWindow()
    p.add_argument(
        "--hue",
        type=float,
        nargs=2,
        default=(win.hue_min, win.hue_max),
        metavar=("MIN", "MAX"),
        help="blue-dye hue window in [0, 1] (epoxy method)",
    )
    p.add_argument("--min-saturation", type=float, default=win.min_saturation)
    p.add_argument("--min-value", type=float, default=win.min_value)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_autolabel)

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

    p = sub.add_parser(
        "synth",
        help="write synthetic thin sections with exact labels",
        description="A keras-segmentation dataset of synthetic sandstones.",
    )
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("-n", type=int, default=1)
    p.add_argument("--size", type=_size, default=(512, 512), metavar="HxW")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--scheme", choices=("sandstone", "seed"), default="sandstone"
    )
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_synth)

    from ._cli_analysis import add_commands as add_analysis
    from ._cli_model import add_commands as add_model
    from ._cli_rocktype import add_commands as add_rocktype

    add_model(sub)
    add_analysis(sub)
    add_rocktype(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ThinsegError as exc:
        if args.debug:
            raise
        print(f"thinseg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("thinseg: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        if is_out_of_memory(exc):
            print(f"thinseg: error: {OUT_OF_MEMORY}", file=sys.stderr)
            return 2
        print(
            f"thinseg: internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
