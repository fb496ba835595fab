"""keras-segmentation dataset folders: export (image, labels) pairs, read them.

The layout is keras-segmentation's::

    DIR/images_prepped_train/<stem>.png        the thin section (RGB)
    DIR/images_xpl_prepped_train/<stem>.png    the same field between
                                               crossed polars (optional)
    DIR/annotations_prepped_train/<stem>.png   class id per pixel (uint8)
    DIR/images_prepped_test/...                held-out pairs, when asked
    DIR/annotations_prepped_test/...
    DIR/classes.json                           the class scheme

Images and annotations pair up by file stem. ``images/`` + ``annotations/``
(the shorter names of the shipped seed data) are read as well, with
``images_xpl/``. With a crossed-polars folder, every image has its
crossed-polarised twin of the same stem there, and a pair's image is the
two stacked (:func:`~napari_thinseg.imaging.convert.stack_views`, 6 channels).
Pairs in
memory (:class:`Pair`) are checked for training (:func:`check_pairs`) and
split for testing or validation (:func:`split_names`, :func:`hold_out`)
here too.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from ..imaging.atomic import StagedFiles, refuse_existing
from ..imaging.convert import (
    describe_views,
    n_views,
    rgb8,
    stack_views,
    views8,
)
from ..imaging.files import (
    IMAGE_SUFFIXES,
    check_image,
    check_labels,
    encode_png,
    read_annotation,
    read_image,
)
from ..progress import Progress
from ..schemes import SCHEME_FILENAME, SEED, ClassScheme

SPLITS = ("train", "test")
LAYOUTS = tuple(
    (f"images_prepped_{s}", f"annotations_prepped_{s}", s) for s in SPLITS
) + (("images", "annotations", "train"),)


def images_dir(root: str | Path, split: str = "train") -> Path:
    return Path(root) / f"images_prepped_{split}"


def annotations_dir(root: str | Path, split: str = "train") -> Path:
    return Path(root) / f"annotations_prepped_{split}"


def xpl_dir(images: str | Path) -> Path:
    """The crossed-polars folder beside an images folder:
    ``images_prepped_train`` -> ``images_xpl_prepped_train``,
    ``images`` -> ``images_xpl``."""
    images = Path(images)
    name = images.name
    if name.startswith("images"):
        return images.with_name("images_xpl" + name[len("images") :])
    return images.with_name(name + "_xpl")


@dataclass(frozen=True)
class Pair:
    """One thin section and its labels, to be exported under ``name``."""

    name: str
    image: np.ndarray
    labels: np.ndarray
    source: str = ""
    """Where the labels came from (a file or layer), for messages."""

    @property
    def where(self) -> str:
        return self.source or self.name


@dataclass
class ExportResult:
    """What :func:`export_dataset` wrote."""

    root: Path
    train: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def safe_stem(name: str) -> str:
    """A file stem for a layer name: no path separators or control chars."""
    stem = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", name).strip(" .")
    return stem or "image"


def split_names(
    names: Sequence[str], test_fraction: float, seed: int = 0
) -> set[str]:
    """The names held out for testing: a seeded, order-independent draw.

    ``round(test_fraction * n)`` names, at least one when the fraction is
    positive, and never all of them.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ThinsegError(
            f"test fraction must be in [0, 1), got {test_fraction}"
        )
    n = len(names)
    if test_fraction == 0 or n < 2:
        return set()
    n_test = min(max(1, round(test_fraction * n)), n - 1)
    order = np.random.default_rng(seed).permutation(sorted(names))
    return set(order[:n_test].tolist())


def hold_out(
    pairs: Sequence[Pair], fraction: float, seed: int
) -> tuple[list[Pair], list[Pair]]:
    """Split ``pairs`` into (training, validation) by :func:`split_names`.

    At least one pair goes to each side.

    Raises
    ------
    ThinsegError
        Fewer than two pairs.
    """
    if len(pairs) < 2:
        raise ThinsegError(
            "holding out pairs for validation needs at least two ticked "
            "pairs; tick more, or validate on the training pairs"
        )
    held = split_names([p.name for p in pairs], max(fraction, 1e-9), seed)
    return (
        [p for p in pairs if p.name not in held],
        [p for p in pairs if p.name in held],
    )


def export_dataset(
    pairs: Sequence[Pair],
    root: str | Path,
    scheme: ClassScheme = SEED,
    test_fraction: float = 0.0,
    seed: int = 0,
    overwrite: bool = False,
) -> Generator[Progress, None, ExportResult]:
    """Write ``pairs`` as a keras-segmentation dataset under ``root``.

    Everything is checked before the first file is written (shapes, label
    values, names, existing files), so a bad pair leaves the folder as it
    was. Yields one :class:`Progress` per pair.
    """
    root = Path(root)
    if not pairs:
        raise ThinsegError("nothing to export: no (image, labels) pairs")
    stems = [safe_stem(p.name) for p in pairs]
    dupes = {s for s in stems if stems.count(s) > 1}
    if dupes:
        raise ThinsegError(
            f"two pairs would both be named {sorted(dupes)[0]!r}"
        )
    labels_u8 = []
    views = {n_views(p.image) for p in pairs}
    if len(views) > 1:
        raise ThinsegError(
            "some pairs are plane + crossed polars and some RGB photos: "
            "export one kind at a time"
        )
    for pair in pairs:
        check_image(
            pair.image[..., :3] if n_views(pair.image) > 1 else pair.image,
            pair.name,
        )
        labels = check_labels(pair.labels, f"{pair.name} labels")
        shape = pair.image.shape[:2]
        if labels.shape != shape:
            raise ThinsegError(
                f"{pair.name}: image is {shape[0]}x{shape[1]} but its labels "
                f"are {'x'.join(map(str, labels.shape))}"
            )
        unknown = set(np.unique(labels).tolist()) - {0, *scheme.ids}
        if unknown:
            raise ThinsegError(
                f"{pair.name}: label values {sorted(unknown)} are not classes "
                f"of scheme {scheme.name!r}"
            )
        labels_u8.append(labels)

    test = split_names(stems, test_fraction, seed)
    targets = []
    for stem in stems:
        split = "test" if stem in test else "train"
        targets.append(
            (
                split,
                images_dir(root, split) / f"{stem}.png",
                annotations_dir(root, split) / f"{stem}.png",
            )
        )
    with_xpl = views == {2}
    paths = [p for _, i, a in targets for p in (i, a)]
    if with_xpl:
        paths += [xpl_dir(i.parent) / i.name for _, i, _ in targets]
    refuse_existing(paths, overwrite)
    scheme_path = root / SCHEME_FILENAME
    if scheme_path.exists() and not overwrite:
        old = ClassScheme.load(scheme_path)
        if old.classes != scheme.classes:
            raise ThinsegError(
                f"{scheme_path}: holds another class scheme "
                "(use overwrite to replace)"
            )
    # every file is staged first and all are renamed into place at the end:
    # a full disk, an error or Stop leaves no half-written dataset behind
    result = ExportResult(root)
    with StagedFiles() as staged:
        for split in sorted({t[0] for t in targets}):
            staged.make_dir(images_dir(root, split))
            staged.make_dir(annotations_dir(root, split))
            if with_xpl:
                staged.make_dir(xpl_dir(images_dir(root, split)))
        for k, (pair, labels, stem, (split, img_path, ann_path)) in enumerate(
            zip(pairs, labels_u8, stems, targets, strict=True)
        ):
            ppl = views8(pair.image)[..., :3] if with_xpl else pair.image
            staged.write(img_path, encode_png(rgb8(ppl)))
            if with_xpl:
                xpl = views8(pair.image)[..., 3:]
                staged.write(
                    xpl_dir(img_path.parent) / img_path.name, encode_png(xpl)
                )
            staged.write(ann_path, encode_png(labels))
            getattr(result, split).append(stem)
            yield Progress(k + 1, len(pairs), stem)
        staged.write(scheme_path, (scheme.to_json() + "\n").encode())
        result.files = staged.commit()
    return result


# -- reading -----------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One image of a dataset folder and its annotation file (if any)."""

    name: str
    split: str
    image_path: Path
    annotation_path: Path | None
    xpl_path: Path | None = None
    """The crossed-polarised twin, where the dataset has them."""


def _image_files(folder: Path) -> dict[str, Path]:
    return {
        f.stem: f
        for f in sorted(folder.iterdir())
        if f.is_file()
        and f.suffix.lower() in IMAGE_SUFFIXES
        and not f.name.startswith(".")
    }


def dataset_folders(root: str | Path) -> list[tuple[str, Path, Path]]:
    """``(split, images, annotations)`` folder pairs present under ``root``."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [
        (split, root / img, root / ann)
        for img, ann, split in LAYOUTS
        if (root / img).is_dir() and (root / ann).is_dir()
    ]


def is_dataset(root: str | Path) -> bool:
    """Whether ``root`` has the dataset layout (folders, not contents)."""
    return bool(dataset_folders(root))


def pair_files(
    images: Path, annotations: Path, split: str = "train"
) -> tuple[list[Sample], list[Path]]:
    """Match image and annotation files by stem.

    Returns the samples (an image without annotation gets ``None``) and the
    annotation files that have no image.
    """
    imgs, anns = _image_files(images), _image_files(annotations)
    xpls = _image_files(xpl_dir(images)) if xpl_dir(images).is_dir() else {}
    samples = [
        Sample(stem, split, path, anns.get(stem), xpls.get(stem))
        for stem, path in imgs.items()
    ]
    orphans = [anns[s] for s in sorted(set(anns) - set(imgs))]
    return samples, orphans


def read_dataset(root: str | Path) -> tuple[list[Sample], ClassScheme]:
    """The samples of a dataset folder and its class scheme.

    The scheme is ``classes.json`` when present, else the seed scheme.
    """
    root = Path(root)
    folders = dataset_folders(root)
    if not folders:
        raise ThinsegError(
            f"{root}: not a dataset folder (needs images_prepped_train/ and "
            "annotations_prepped_train/)"
        )
    samples: list[Sample] = []
    for split, img, ann in folders:
        samples += pair_files(img, ann, split)[0]
    if not samples:
        raise ThinsegError(f"{root}: dataset folders hold no images")
    scheme_path = root / SCHEME_FILENAME
    scheme = ClassScheme.load(scheme_path) if scheme_path.exists() else SEED
    return samples, scheme


# -- pairs for training -------------------------------------------------------
def pairs_from_folders(
    images: str | Path,
    annotations: str | Path,
    xpl_images: str | Path | None = None,
) -> list[Pair]:
    """Read every matched (image, annotation) pair of two folders; with
    ``xpl_images``, each image stacked with its crossed-polarised twin of
    the same stem there (6 channels)."""
    images, annotations = Path(images), Path(annotations)
    folders = [images, annotations]
    if xpl_images is not None:
        folders.append(Path(xpl_images))
    for folder in folders:
        if not folder.is_dir():
            raise ThinsegError(f"{folder}: no such folder")
    samples, orphans = pair_files(images, annotations)
    xpls = _image_files(Path(xpl_images)) if xpl_images is not None else {}
    missing = [s for s in samples if s.annotation_path is None]
    if missing:
        raise ThinsegError(
            f"{missing[0].image_path}: no annotation of that name in "
            f"{annotations}"
        )
    if orphans:
        raise ThinsegError(f"{orphans[0]}: annotation without an image")
    if not samples:
        raise ThinsegError(f"{images}: no images")
    lacking = [s for s in samples if xpls and s.name not in xpls]
    if xpl_images is not None and (lacking or not xpls):
        where = lacking[0].image_path if lacking else samples[0].image_path
        raise ThinsegError(
            f"{where}: no crossed-polarised image of that name in {xpl_images}"
        )
    return [
        Pair(
            s.name,
            read_views(s.image_path, xpls.get(s.name)),
            read_annotation(s.annotation_path),
            str(s.annotation_path),
        )
        for s in samples
    ]


def read_views(image: Path, xpl: Path | None = None) -> np.ndarray:
    """A photo (uint8 RGB), or with ``xpl`` the plane- and
    crossed-polarised photos stacked (6 channels), their sizes checked."""
    if xpl is None:
        return read_image(image)
    try:
        return stack_views(read_image(image), read_image(xpl))
    except ThinsegError as exc:
        raise ThinsegError(f"{image} and {xpl}: {exc}") from None


def check_pairs(pairs: Sequence[Pair], n_classes: int) -> list[Pair]:
    """uint8 images (RGB, or plane + crossed polars stacked: all alike)
    and uint8 labels, refusing what can't be learnt."""
    if not pairs:
        raise ThinsegError("no training images")
    out = []
    for p in pairs:
        labels = check_labels(p.labels, p.where)
        image = views8(np.asarray(p.image))
        if labels.shape != image.shape[:2]:
            raise ThinsegError(
                f"{p.where}: image {image.shape[0]}x{image.shape[1]} and "
                f"labels {labels.shape[0]}x{labels.shape[1]} differ in size"
            )
        if labels.max(initial=0) >= n_classes:
            raise ThinsegError(
                f"{p.where}: label {labels.max()} >= n_classes {n_classes} "
                f"(class ids run 0..{n_classes - 1})"
            )
        out.append(Pair(p.name, image, labels, p.source))
        if image.shape[-1] != out[0].image.shape[-1]:
            raise ThinsegError(
                f"{p.where}: {describe_views(image)}, but "
                f"{out[0].where}: {describe_views(out[0].image)}; train on "
                "one kind of input"
            )
    return out
