"""Sample data: a synthetic sandstone with exact labels, and a real one."""

from __future__ import annotations

from pathlib import Path

from ..imaging.files import read_annotation, read_image
from ..schemes import SANDSTONE, SEED
from .layers import labels_layer_data

SEED_SAMPLE = Path(__file__).parents[1] / "data" / "seed" / "sandstone_2.png"


def synthetic_sandstone_sample(shape=(512, 512), seed=0):
    """A synthetic thin section and its ground-truth labels."""
    from ..dataset.synth import synthetic_sandstone

    rgb, labels = synthetic_sandstone(shape, seed=seed)
    return [
        (rgb, {"name": "synthetic sandstone", "rgb": True}, "image"),
        labels_layer_data(
            labels, SANDSTONE, "synthetic sandstone truth", opacity=0.5
        ),
    ]


def seed_sandstone_sample():
    """Image 2 of the seed thin sections (MIT, Craig Phillips 2021) and its
    published gray-level annotation."""
    image = read_image(SEED_SAMPLE)[..., :3]
    labels = read_annotation(
        SEED_SAMPLE.with_name("sandstone_2_annotation.png")
    )
    return [
        (image, {"name": "sandstone (seed)", "rgb": True}, "image"),
        labels_layer_data(
            labels,
            SEED,
            "sandstone (seed) annotation",
            opacity=0.5,
            visible=False,
        ),
    ]
