"""Training crops and augmentation.

Random crops at the model's input size from images of any size, drawn in
proportion to the labelled pixels each image holds; with augmentation,
flips, 90 degree turns, a mild scale change and brightness / contrast /
saturation jitter (hue, the blue dye, barely varies between sections).
With colour augmentation besides (:func:`colour_cast`), each crop looks as
another microscope, camera or stain might show it: white balance (colour
temperature and tint), gamma, saturation, a hue turn small enough that
blue epoxy stays blue, now and then a slight blur or sensor noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..errors import ThinsegError
from ..imaging.resize import resize_bilinear, resize_nearest
from ..model.vgg_unet import input_mean
from .folders import Pair


class CropSettings(Protocol):
    """What the sampler reads of the training settings
    (:class:`~napari_thinseg.training.loop.TrainSettings` has it all); a
    protocol,
    so that this module need not import the training module that uses
    it."""

    input_height: int
    input_width: int
    batch_size: int
    augment: bool
    colour_augment: bool
    seed: int


class CropSampler:
    """Random training crops at the model input size, with augmentation."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        settings: CropSettings,
        ignore_zero: bool,
        soft: Sequence[np.ndarray | None] | None = None,
        stroke_crops: float = 0.0,
    ):
        """``soft``: per pair, soft targets ``(H, W, C)`` cropped with the
        labels (a fine-tune's distillation; see :meth:`batch`);
        ``stroke_crops``: the share of crops centred on a labelled
        pixel (few strokes on a large photo are otherwise rarely in a
        crop)."""
        self.pairs = list(pairs)
        self.s = settings
        self.rng = np.random.default_rng(settings.seed)
        self.soft = list(soft) if soft is not None else None
        self.stroke_crops = stroke_crops
        self._painted = (
            [np.flatnonzero(p.labels > 0) for p in self.pairs]
            if stroke_crops
            else None
        )
        counts = np.array(
            [
                (p.labels > 0).sum() if ignore_zero else p.labels.size
                for p in self.pairs
            ],
            float,
        )
        if counts.sum() == 0:
            raise ThinsegError(
                "the labels are all 0 (unlabelled): nothing to learn; paint "
                "some classes first"
            )
        self.weights = counts / counts.sum()

    def _origin(self, k: int, shape, wh: int, ww: int) -> tuple[int, int]:
        """Top-left corner of a ``wh`` x ``ww`` window of pair ``k``
        (padded to ``shape``): anywhere, or around a labelled pixel."""
        painted = self._painted[k] if self._painted is not None else ()
        if len(painted) and self.rng.random() < self.stroke_crops:
            cy, cx = np.unravel_index(
                painted[self.rng.integers(len(painted))],
                self.pairs[k].labels.shape,
            )
            # the pixel anywhere in the window but its outer eighths
            y = cy - self.rng.integers(wh // 8, wh - wh // 8 + 1)
            x = cx - self.rng.integers(ww // 8, ww - ww // 8 + 1)
            return (
                int(np.clip(y, 0, shape[0] - wh)),
                int(np.clip(x, 0, shape[1] - ww)),
            )
        return (
            int(self.rng.integers(0, shape[0] - wh + 1)),
            int(self.rng.integers(0, shape[1] - ww + 1)),
        )

    def crop(self) -> tuple[np.ndarray, ...]:
        """One (image, labels) crop, with its soft targets when the
        sampler has them."""
        th, tw = self.s.input_height, self.s.input_width
        k = self.rng.choice(len(self.pairs), p=self.weights)
        pair = self.pairs[k]
        rotate = self.s.augment and self.rng.random() < 0.5
        scale = self.rng.uniform(0.85, 1.15) if self.s.augment else 1.0
        # a window that becomes th x tw after scaling (and a quarter turn)
        wh, ww = (tw, th) if rotate else (th, tw)
        wh, ww = max(2, round(wh / scale)), max(2, round(ww / scale))
        image, labels = _pad_to(pair.image, pair.labels, wh, ww)
        y, x = self._origin(k, image.shape, wh, ww)
        parts = [image, labels]
        if self.soft is not None:
            # padding has no target (zeros), as it has no label
            parts.append(_pad_to(self.soft[k], pair.labels, wh, ww, "zero")[0])
        parts = [p[y : y + wh, x : x + ww] for p in parts]
        if rotate:
            parts = [np.rot90(p) for p in parts]
        if self.s.augment:
            if self.rng.random() < 0.5:
                parts = [p[:, ::-1] for p in parts]
            if self.rng.random() < 0.5:
                parts = [p[::-1] for p in parts]
        if parts[0].shape[:2] != (th, tw):
            parts[0] = resize_bilinear(np.ascontiguousarray(parts[0]), th, tw)
            parts[1:] = [
                resize_nearest(p, th, tw, centred=True) for p in parts[1:]
            ]
        return tuple(np.ascontiguousarray(p) for p in parts)

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        """A batch ``(x, y)``: preprocessed crops and their labels at the
        output resolution, ``(B, P)``; with soft targets ``y`` is
        ``(B, P, 1 + C)``, the label then the targets
        (:func:`~napari_thinseg.training.recipe.distillation_loss`)."""
        crops = [self.crop() for _ in range(self.s.batch_size)]
        x = np.stack([c[0] for c in crops]).astype(np.float32)
        # jitter and casts see each view (plane, crossed polars) as the
        # RGB photo it is, with the same change for both
        views = x.reshape(*x.shape[:-1], -1, 3)
        if self.s.augment:
            views = self._jitter(views)
        if self.s.colour_augment:
            views = np.stack([colour_cast(img, self.rng) for img in views])
        # the mean subtracted from the 0..255 values as they are, as at
        # prediction: not through ``preprocess``, which would stretch a
        # float crop's own range onto 0..255
        x = views.reshape(x.shape) - input_mean(x.shape[-1])
        oh, ow = self.s.input_height // 2, self.s.input_width // 2
        y = np.stack([resize_nearest(c[1], oh, ow).ravel() for c in crops])
        if self.soft is None:
            return x, y.astype(np.int32)
        soft = np.stack(
            [resize_nearest(c[2], oh, ow).reshape(oh * ow, -1) for c in crops]
        )
        return x, np.concatenate(
            [y[..., None].astype(np.float32), soft.astype(np.float32)], -1
        )

    def _jitter(self, x: np.ndarray) -> np.ndarray:
        """Brightness, contrast and saturation changes of a few percent:
        stain and lighting vary between thin sections, hue (the blue dye)
        much less."""
        out = np.empty_like(x)
        for i, img in enumerate(x):
            b, c, s = self.rng.uniform(0.9, 1.1, 3)
            # (..., 3): RGB last, views of a stack alike
            gray = img @ np.array([0.2125, 0.7154, 0.0721], np.float32)
            img = gray[..., None] + s * (img - gray[..., None])
            img = img.mean() + c * (img - img.mean())
            out[i] = np.clip(img * b, 0, 255)
        return out.round()


# -- colour casts -------------------------------------------------------------
TEMPERATURE = 0.12
"""Largest change of the red and blue gains (opposite ways): about the
+-1500 K of a halogen lamp against a daylight filter."""
TINT = 0.04
"""Largest change of the green gain (magenta / green tint)."""
GAMMA = (0.8, 1.25)
SATURATION = (0.7, 1.3)
HUE_DEGREES = 8.0
"""Largest hue turn: blue epoxy (hue about 220 degrees) stays blue."""
BLUR_SIGMA = 1.0
NOISE_SD = 4.0
"""Largest sensor noise, in gray levels."""
BLUR_NOISE_CHANCE = 0.3

# YIQ: luma and two chroma axes, in which a hue turn is a rotation
_YIQ = np.array(
    [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]]
)
_RGB = np.linalg.inv(_YIQ)


def colour_matrix(temperature, tint, saturation, hue_degrees) -> np.ndarray:
    """The 3 x 3 matrix (RGB column vectors) of a white balance change,
    then a saturation scale and hue turn about the gray axis."""
    gains = np.diag([1 + temperature, 1 + tint, 1 - temperature])
    a = np.deg2rad(hue_degrees)
    chroma = saturation * np.array(
        [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    )
    turn = np.eye(3)
    turn[1:, 1:] = chroma
    return _RGB @ turn @ _YIQ @ gains


def colour_cast(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (float32 RGB, 0..255, ``(H, W, 3)`` or a stack of views
    ``(H, W, views, 3)``, all cast alike) as another microscope might show
    it: a random white balance, gamma, saturation and small hue turn, and
    with chance :data:`BLUR_NOISE_CHANCE` each a slight blur and sensor
    noise. Float32 RGB 0..255 out (rounded)."""
    from scipy.ndimage import gaussian_filter

    matrix = colour_matrix(
        rng.uniform(-TEMPERATURE, TEMPERATURE),
        rng.uniform(-TINT, TINT),
        rng.uniform(*SATURATION),
        rng.uniform(-HUE_DEGREES, HUE_DEGREES),
    ).astype(np.float32)
    out = np.clip(image @ matrix.T, 0, 255) / np.float32(255)
    gamma = np.exp(rng.uniform(np.log(GAMMA[0]), np.log(GAMMA[1])))
    out = np.power(out, np.float32(gamma)) * np.float32(255)
    if rng.random() < BLUR_NOISE_CHANCE:
        sigma = rng.uniform(0.3, BLUR_SIGMA)
        out = gaussian_filter(out, (sigma, sigma) + (0,) * (out.ndim - 2))
    if rng.random() < BLUR_NOISE_CHANCE:
        sd = rng.uniform(0, NOISE_SD)
        out = out + rng.normal(0, sd, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).round().astype(np.float32)


def cast_copy(image: np.ndarray, temperature: float, gamma: float):
    """A colour-cast copy of a uint8 RGB photo (the tests and benchmarks
    of robustness to other microscopes): the white balance of
    ``temperature`` (see :data:`TEMPERATURE`; positive is warmer: more
    red, less blue), then
    ``gamma``."""
    matrix = colour_matrix(temperature, 0.0, 1.0, 0.0)
    out = np.clip(np.asarray(image, np.float64) @ matrix.T, 0, 255) / 255
    return np.round(255 * out**gamma).astype(np.uint8)


def _pad_to(image, labels, height, width, image_mode=None):
    ph, pw = max(0, height - image.shape[0]), max(0, width - image.shape[1])
    if ph or pw:
        mode = "reflect" if min(image.shape[:2]) > 1 else "edge"
        if image_mode == "zero":
            mode = "constant"
        image = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode=mode)
        # padded pixels are not ground truth
        labels = np.pad(labels, ((0, ph), (0, pw)))
    return image, labels


def validation_crops(
    pairs: Sequence[Pair], height: int, width: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic crops (a grid over each image) for validation."""
    xs, ys = [], []
    for p in pairs:
        image, labels = _pad_to(p.image, p.labels, height, width)
        for y in range(0, image.shape[0] - height + 1, height):
            for x in range(0, image.shape[1] - width + 1, width):
                xs.append(image[y : y + height, x : x + width])
                ys.append(labels[y : y + height, x : x + width])
    if len(xs) > limit:
        keep = np.linspace(0, len(xs) - 1, limit).round().astype(int)
        xs, ys = [xs[i] for i in keep], [ys[i] for i in keep]
    return np.stack(xs), np.stack(ys)
