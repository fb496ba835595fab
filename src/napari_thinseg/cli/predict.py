"""``thinseg predict | evaluate_model | verify_dataset``.

Drop-in for ``python -m keras_segmentation``'s commands of those names: the
same flags with the same defaults, plus ours (shipped models by name,
tiles, precision, test-time augmentation, crossed-polarised images). The
option helpers the train command shares are here too. TensorFlow is
imported only when a command runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from ..model.backend import PRECISIONS

PRECISION_HELP = (
    "what the network computes in; auto: bfloat16 on CPUs with native "
    "bfloat16 (AVX512-BF16, AMX), float16 on a GPU, else float32"
)


def add_precision(p) -> None:
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help=PRECISION_HELP,
    )


def _check_model_args(args) -> None:
    if args.checkpoints_path and args.model:
        raise ThinsegError("give --model or --checkpoints_path, not both")


def _load(args):
    from ..model import checkpoints as ck

    _check_model_args(args)
    path = args.checkpoints_path or ck.model_prefix(args.model or "default")
    return ck.load_model(path)


def crossed_polars_twins(
    inputs: list[Path], xpl: str | None, single: bool
) -> dict[Path, Path]:
    """``{photo: its crossed-polarised twin}`` for ``--xpl_input_path``
    (a file for one photo, a folder of the same stems for a folder)."""
    if not xpl:
        return {}
    xpl = Path(xpl)
    if single:
        if not xpl.is_file():
            raise ThinsegError(f"{xpl}: no such crossed-polarised image")
        return {inputs[0]: xpl}
    if not xpl.is_dir():
        raise ThinsegError(
            f"{xpl}: no such folder (--xpl_input_path must be a folder of "
            "the same names when --input_path is one)"
        )
    from ..imaging.files import list_images

    by_stem = {f.stem: f for f in list_images([xpl])}
    for src in inputs:
        if src.stem not in by_stem:
            raise ThinsegError(
                f"{src}: no crossed-polarised image of that name in {xpl}"
            )
    return {src: by_stem[src.stem] for src in inputs}


def check_views_given(config, given: bool, flag: str) -> None:
    """Refuse photos without their crossed-polarised twins (``flag`` not
    ``given``) for a plane + crossed polars model, and twins for an RGB
    model, in CLI words."""
    if config.n_views > 1 and not given:
        raise ThinsegError(
            "the model takes plane + crossed polars: give the "
            f"crossed-polarised images with {flag}"
        )
    if config.n_views == 1 and given:
        raise ThinsegError(
            f"the model takes RGB photos only: leave out {flag} "
            "(or use a plane + crossed polars model)"
        )


def cmd_predict(args) -> int:
    from ..imaging.atomic import ensure_dir
    from ..imaging.files import list_images, output_paths
    from ..imaging.lazy import is_lazy_readable, is_zarr
    from ..imaging.pyramid import is_slide_output
    from ..inference.predict import check_tile
    from ._common import drive
    from .slide import check_slide_args, client_for, predict_slide_file

    check_tile(args.tile)
    _check_model_args(args)
    source = Path(args.input_path)
    single = source.is_file() or is_lazy_readable(source)
    if single and (
        is_slide_output(args.output_path)
        or is_zarr(source)
        or args.workers
        or args.scheduler
    ):
        if check_slide_args(args):
            return 0
        model, config, weights = _load(args)
        check_views_given(config, False, "--xpl_input_path")
        with client_for(args) as client:
            return predict_slide_file(args, model, config, weights, client)
    if is_slide_output(args.output_path):
        raise ThinsegError(
            f"{args.output_path}: a whole-slide output (OME-Zarr, BigTIFF) "
            "takes one image; give a folder for a folder of photos"
        )
    inputs = list_images([source])
    if single:
        out = Path(args.output_path)
        if out.is_dir() or args.output_path.endswith(("/", os.sep)):
            out = out / f"{source.stem}.png"
        outputs = [out]
    else:
        outputs = output_paths(inputs, Path(args.output_path))
    twins = crossed_polars_twins(inputs, args.xpl_input_path, single)
    kept = keep_written(inputs, outputs, args)
    if kept and not inputs:
        print(f"all {kept} label file(s) already written: nothing to do")
        return 0
    model, config, weights = _load(args)
    check_views_given(config, bool(twins), "--xpl_input_path")
    ensure_dir(outputs[0].parent)
    photos = PhotoRun(args, model, config, inputs, outputs, twins)
    with client_for(args) as client:
        drive(
            photos.here() if client is None else photos.on(client), "predict"
        )
    kept_words = f" ({kept} already written, kept)" if kept else ""
    print(
        f"predicted {len(inputs)} image(s){kept_words} with {weights} into "
        f"{photos.written[0] if single else args.output_path}"
    )
    photos.notes.print()
    return 0


class PhotoRun:
    """``thinseg predict`` of photos (not a whole slide): each photo's
    labels (a stack's plane by plane), written beside the others, in this
    process (:meth:`here`) or on a dask cluster (:meth:`on`); both yield
    a :class:`~napari_thinseg.progress.Progress` per photo."""

    def __init__(self, args, model, config, inputs, outputs, twins):
        from ._common import ScalingNotes

        self.args, self.model, self.config = args, model, config
        self.inputs, self.outputs, self.twins = inputs, outputs, twins
        self.written: list[Path] = []
        self.notes = ScalingNotes()

    def predict_one(self, image, name: str) -> np.ndarray:
        from ..inference.predict import predict_image
        from ._common import drive

        args = self.args
        try:
            return drive(
                predict_image(
                    self.model,
                    self.config,
                    image,
                    mode=args.mode,
                    tile=args.tile,
                    precision=args.precision,
                    tta=args.tta,
                ),
                name,
                unit="batch",
            ).labels
        except ThinsegError as exc:
            raise ThinsegError(f"{name}: {exc}") from None

    def colored(self, labels: np.ndarray) -> np.ndarray:
        from ..colorize import colorize

        if not self.args.colored:
            return labels
        return colorize(labels, self.config.class_scheme)

    def labels_of(self, src, image) -> np.ndarray:
        from ..imaging.files import is_stack

        if self.twins or not is_stack(image):
            return self.colored(self.predict_one(image, str(src)))
        # every plane, kept together in one TIFF as autolabel does
        return np.stack(
            [
                self.colored(self.predict_one(plane, f"{src} plane {i}"))
                for i, plane in enumerate(image)
            ]
        )

    def write(self, dst, labels, stack: bool, um) -> None:
        from ..imaging.files import write_annotation, write_png, write_tiff

        # the labels keep the photo's pixel size (stats reads it back)
        if stack:
            write_tiff(dst, labels, self.args.overwrite)
        elif self.args.colored:
            write_png(dst, labels, overwrite=True, pixel_size_um=um)
        else:
            write_annotation(dst, labels, overwrite=True, pixel_size_um=um)

    def here(self):
        """Predict in this process: the next photo is read, and the last
        labels written, while the network works on this one."""
        from ..dataset.folders import read_views
        from ..imaging.files import is_stack
        from ..imaging.pixel_size import file_pixel_size_um
        from ..prefetch import map_ahead
        from ..progress import Progress

        twins, n = self.twins, len(self.inputs)
        images = map_ahead(
            lambda src: read_views(src, twins.get(src)), self.inputs
        )
        with ThreadPoolExecutor(1, thread_name_prefix="thinseg-write") as pool:
            writing = None
            for k, (src, dst, image) in enumerate(
                zip(self.inputs, self.outputs, images, strict=True)
            ):
                self.notes.check(src.name, image)
                labels = self.labels_of(src, image)
                stack = not twins and is_stack(image)
                if stack:
                    dst = dst.with_suffix(".tif")
                if writing is not None:
                    writing.result()  # a failed write stops the run here
                um = file_pixel_size_um(src)
                writing = pool.submit(self.write, dst, labels, stack, um)
                self.written.append(dst)
                yield Progress(k + 1, n, src.name)
            if writing is not None:
                writing.result()

    def on(self, client):
        """Predict on a dask cluster, one task a photo."""
        from ..imaging.pixel_size import file_pixel_size_um
        from ..progress import Progress
        from .slide import predicted_on_cluster

        results = predicted_on_cluster(
            client, self.model, self.config, self.inputs, self.twins, self.args
        )
        for done, (k, labels) in enumerate(results, start=1):
            src, dst = self.inputs[k], self.outputs[k]
            labels = self.colored(labels)
            self.write(dst, labels, False, file_pixel_size_um(src))
            self.written.append(dst)
            yield Progress(done, len(self.inputs), src.name)


def keep_written(inputs: list, outputs: list, args) -> int:
    """``--resume``: drop from ``inputs`` and ``outputs`` (in place) the
    photos whose label files a stopped run wrote whole, and say how many;
    without it, refuse existing outputs unless ``--overwrite``."""
    from ..imaging.atomic import refuse_existing
    from ..inference.predict import written_labels

    if not args.resume:
        refuse_existing(outputs, args.overwrite)
        return 0
    done, leftovers = written_labels(outputs)
    for path in leftovers:
        print(f"note: {path}: left by an interrupted write (safe to delete)")
    inputs[:] = [p for k, p in enumerate(inputs) if k not in done]
    outputs[:] = [p for k, p in enumerate(outputs) if k not in done]
    return len(done)


def cmd_evaluate(args) -> int:
    from ..dataset.folders import pairs_from_folders
    from ..inference.predict import check_tile, evaluate
    from ._common import drive

    check_tile(args.tile)
    pairs = pairs_from_folders(
        args.images_path, args.segs_path, args.xpl_images_path
    )
    model, config, _ = _load(args)
    check_views_given(config, bool(args.xpl_images_path), "--xpl_images_path")
    result = drive(
        evaluate(
            model,
            config,
            [(p.name, p.image, p.labels) for p in pairs],
            mode=args.mode,
            tile=args.tile,
            precision=args.precision,
            tta=args.tta,
        ),
        "evaluate",
    )
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


def cmd_verify(args) -> int:
    from ..dataset.folders import check_pairs, pairs_from_folders

    pairs = pairs_from_folders(
        args.images_path, args.segs_path, args.xpl_images_path
    )
    check_pairs(pairs, args.n_classes)
    print(f"Dataset verified! ({len(pairs)} pairs)")
    return 0


XPL_FOLDER_HELP = (
    "the crossed-polarised photos of the same fields, named as the images "
    "(for a plane + crossed polars model)"
)


def add_xpl_folder(p, flag: str) -> None:
    p.add_argument(flag, default=None, help=XPL_FOLDER_HELP)


def _tile_arg(text: str):
    """``--tile N`` or ``--tile HxW`` (checked by the prediction)."""
    try:
        sides = [int(v) for v in text.lower().split("x")]
    except ValueError:
        sides = []
    if len(sides) not in (1, 2):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give N or HxW pixels, e.g. 512 or 128x192"
        )
    return sides[0] if len(sides) == 1 else tuple(sides)


def _add_model(p) -> None:
    from ..model.checkpoints import SHIPPED_MODELS

    p.add_argument(
        "--model",
        choices=tuple(SHIPPED_MODELS),
        default=None,
        help="a shipped model: default (the seed's gray-level classes, "
        "the default) or sandstone (minerals: pore, quartz, feldspar, "
        "rock fragment, ...)",
    )


def _add_tta(p) -> None:
    p.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation (tile mode): average the 8 flips and "
        "quarter turns of every tile (8x the work)",
    )


def _add_tile(p) -> None:
    p.add_argument(
        "--tile",
        type=_tile_arg,
        default=None,
        metavar="N|HxW",
        help="tile size for tile mode, multiples of 32 (default: fitted "
        "to each image, at most about 1120 x 1120); the model's input "
        "size gives the classic overlapping tiles",
    )


def add_commands(sub) -> None:
    """Register predict, evaluate_model and verify_dataset."""
    from .slide import add_cluster_args, add_resume_args

    p = sub.add_parser(
        "predict",
        help="predict class maps (label PNGs, or pyramids of whole slides)",
        description="Write a label PNG (uint8 class ids, the image's "
        "size) per image; --colored writes the petrographic picture. A "
        "whole slide (TIFF / OME-TIFF / BigTIFF / OME-Zarr, read lazily) "
        "goes tile by tile into an OME-Zarr or BigTIFF labels pyramid.",
    )
    p.add_argument(
        "--checkpoints_path",
        default=None,
        help="a trained model (default: the shipped one --model names)",
    )
    _add_model(p)
    p.add_argument("--input_path", required=True, help="image or folder")
    p.add_argument(
        "--xpl_input_path",
        default=None,
        help="the crossed-polarised image (or folder of them, named as "
        "the images) for a plane + crossed polars model",
    )
    p.add_argument(
        "--output_path",
        required=True,
        help="file or folder; a .zarr (OME-Zarr) or .tif (BigTIFF) output "
        "is a tiled labels pyramid, written tile by tile",
    )
    p.add_argument("--colored", action="store_true")
    p.add_argument(
        "--mode",
        choices=("tile", "resize"),
        default="tile",
        help="native-resolution tiles (default) or "
        "keras-segmentation's whole-image resize (float32)",
    )
    _add_tile(p)
    add_precision(p)
    _add_tta(p)
    add_cluster_args(p)
    add_resume_args(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "evaluate_model",
        help="IoU of a model on annotated images (JSON)",
    )
    p.add_argument("--checkpoints_path", default=None)
    _add_model(p)
    p.add_argument("--images_path", required=True)
    p.add_argument("--segs_path", required=True)
    add_xpl_folder(p, "--xpl_images_path")
    p.add_argument(
        "--mode",
        choices=("tile", "resize"),
        default="tile",
        help="for the full-resolution metrics",
    )
    _add_tile(p)
    add_precision(p)
    _add_tta(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "verify_dataset",
        help="check a dataset's pairs, sizes and labels",
    )
    p.add_argument("--images_path", required=True)
    p.add_argument("--segs_path", required=True)
    add_xpl_folder(p, "--xpl_images_path")
    p.add_argument("--n_classes", type=int, required=True)
    p.set_defaults(func=cmd_verify)
