"""Data for the learning benchmarks: expert-labelled fields and simulated
brush strokes.

- :func:`polarised_fields`: the 16 plane + crossed polars fields of
  ``../shared/data/polarised-sandstones`` (GPL-3.0: benchmarks only), with
  the thin section each came from (fields ``Na`` and ``Nb`` are section
  ``N``), and :func:`section_split`, which keeps a section's fields on one
  side.
- :func:`mineral_photos`: the sandstone-minerals photos (Apache-2.0) in the
  ``sandstone`` scheme, and :func:`image_folds` (k-fold by image).
- :func:`stroke_labels`: what a user's few brush strokes label: short thick
  strokes inside each class's regions, away from its edges, until a share
  of the pixels is labelled; every class present gets strokes, the rare
  ones too (the share per class goes with the square root of its area, as a
  user brushes a little of everything and more of what is common).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
POLARISED = SHARED / "polarised-sandstones"
MINERALS = SHARED / "sandstone-minerals"
POLARISED_CLASSES = (
    "background",
    "K-feldspar",
    "lithic fragment",
    "plagioclase",
    "quartz",
)
"""Classes 1..5 of the polarised-sandstones annotations (0 unlabelled)."""
MAIN_CLASSES = ("pore", "quartz", "feldspar", "rock fragment")
"""The sandstone-minerals score's classes (scripts/train_sandstone_model)."""


def polarised_scheme():
    """The polarised-sandstones labels as a class scheme."""
    from napari_thinseg.schemes import ClassScheme, PetroClass

    colours = ("#6e6e6e", "#e8a0a0", "#8a6446", "#e2c39b", "#f3efe4")
    return ClassScheme(
        "polarised-sandstones",
        tuple(
            PetroClass(i, name, colour)
            for i, (name, colour) in enumerate(
                zip(POLARISED_CLASSES, colours, strict=True), start=1
            )
        ),
    )


@dataclass(frozen=True)
class Field:
    """One field of view: plane- and crossed-polarised RGB, labels."""

    name: str
    section: str
    ppl: np.ndarray
    xpl: np.ndarray | None
    labels: np.ndarray


def section_of(name: str) -> str:
    """``"11a"`` -> ``"11"``; a name without the letter is its own."""
    match = re.fullmatch(r"(\d+)[a-z]", name)
    return match.group(1) if match else name


def polarised_fields(scale: int = 1) -> list[Field]:
    """The 16 fields, every ``scale``-th pixel (1200 x 1600 at 1)."""
    from napari_thinseg.imaging.files import read_annotation, read_image

    out = []
    for path in sorted((POLARISED / "annotations").glob("*.png")):
        labels = read_annotation(path)[::scale, ::scale]
        ppl = read_image(POLARISED / "ppl" / f"{path.stem}.jpg")[..., :3]
        xpl = read_image(POLARISED / "xpl" / f"{path.stem}.jpg")[..., :3]
        out.append(
            Field(
                path.stem,
                section_of(path.stem),
                np.ascontiguousarray(ppl[::scale, ::scale]),
                np.ascontiguousarray(xpl[::scale, ::scale]),
                np.ascontiguousarray(labels),
            )
        )
    return out


def section_split(
    fields: list[Field], n_test_sections: int = 3, seed: int = 0
) -> tuple[list[Field], list[Field]]:
    """(training, held-out) fields; no section on both sides."""
    sections = sorted({f.section for f in fields})
    held = set(
        np.random.default_rng(seed)
        .permutation(sections)[:n_test_sections]
        .tolist()
    )
    return (
        [f for f in fields if f.section not in held],
        [f for f in fields if f.section in held],
    )


def mineral_photos() -> list[Field]:
    """The sandstone-minerals photos, labels in the ``sandstone`` scheme
    (their 10 "hydrocarbon" and 11 "other" become 10 "other")."""
    from napari_thinseg.imaging.files import read_annotation, read_image
    from napari_thinseg.schemes import SANDSTONE

    other = SANDSTONE.id_of("other")
    out = []
    for path in sorted((MINERALS / "images").glob("*.png")):
        labels = read_annotation(MINERALS / "annotations" / path.name)
        labels = np.where(labels > other, other, labels).astype(np.uint8)
        image = read_image(path)[..., :3]
        out.append(Field(path.stem, path.stem, image, None, labels))
    return out


def image_folds(fields: list[Field], k: int = 3) -> list[list[Field]]:
    """``k`` held-out groups, every ``k``-th image."""
    return [fields[i::k] for i in range(k)]


def stroke_labels(
    labels: np.ndarray,
    fraction: float = 0.02,
    seed: int = 0,
    width: int = 9,
    length: int = 60,
) -> np.ndarray:
    """Sparse labels (0 elsewhere) as a user's strokes would give.

    Strokes are random walks of about ``length`` pixels, ``width`` wide,
    kept inside their class's region eroded by half the width (users
    stay off the edges). Stops when ``fraction`` of all pixels is labelled
    (or the regions are used up).
    """
    from scipy import ndimage as ndi
    from skimage.draw import line

    rng = np.random.default_rng(seed)
    out = np.zeros_like(labels)
    classes = [c for c in np.unique(labels).tolist() if c > 0]
    areas = np.array([(labels == c).sum() for c in classes], float)
    budget = np.sqrt(areas) / np.sqrt(areas).sum() * fraction * labels.size
    brush = np.ones((width, width), bool)
    h, w = labels.shape
    for cls, want in zip(classes, budget, strict=True):
        inside = ndi.binary_erosion(labels == cls, brush)
        if not inside.any():
            inside = labels == cls
        ys, xs = np.nonzero(inside)
        stroke = np.zeros(labels.shape, bool)
        for _ in range(400):
            if (out == cls).sum() >= want:
                break
            k = rng.integers(len(ys))
            y, x = ys[k], xs[k]
            angle = rng.uniform(0, 2 * np.pi)
            stroke[:] = False
            for _ in range(max(1, length // 10)):
                angle += rng.normal(0, 0.5)
                y2 = int(np.clip(y + 10 * np.sin(angle), 0, h - 1))
                x2 = int(np.clip(x + 10 * np.cos(angle), 0, w - 1))
                if not inside[y2, x2]:
                    break
                rr, cc = line(y, x, y2, x2)
                stroke[rr, cc] = True
                y, x = y2, x2
            stroke[ys[k], xs[k]] = True
            stroke = ndi.binary_dilation(stroke, brush) & inside
            out[stroke & (out == 0)] = cls
    return out
