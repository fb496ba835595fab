"""Feedback from a few brush strokes in seconds: a random forest on the
VGG-UNet's own features (convpaint's idea).

Fine-tuning the network takes minutes; a user who painted a few strokes
(0 = unlabelled) wants a prediction to judge within a CPU minute. So the
network (a shipped model, or one just trained) only runs forward
(:class:`FeatureNetwork`: rebuilt at a tile size, cut after
:data:`FEATURE_LAYERS`, maps at 1, 1/2, 1/4, 1/8 resolution); the maps
are interpolated bilinearly at the stroked pixels (at most
``samples_per_class`` a class, seeded) and a random forest learns the
classes from them. Maps are never brought to full resolution: prediction
runs tile by tile on a grid every ``stride`` pixels, a few thousand
points at a time, and the class probabilities are interpolated to the
pixels. :func:`fit_encoder_classifier` and
:func:`predict_encoder_classifier` yield progress and return an
:class:`EncoderClassifier` and a :class:`ClassifierPrediction`
(:mod:`~napari_thinseg.strokes.prior` adds the start model's
prediction). scikit-learn and TensorFlow are imported when first needed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ThinsegError
from ..imaging.convert import describe_views, views8
from ..inference.predict import Prediction
from ..inference.tiling import (
    GRID,
    MARGIN,
    auto_tile_shape,
    confidence_map,
    margin_for,
    margin_tiles,
)
from ..model.backend import resolve_precision, tensorflow
from ..model.config import ModelConfig
from ..model.vgg_unet import IMAGENET_MEAN_RGB, rebuild
from ..progress import Progress

FEATURE_LAYERS = (
    "block1_conv2",
    "block2_conv2",
    "block3_conv3",
    "block4_conv3",
)
"""The encoder's last convolution of each block (64 + 128 + 256 + 512
features at 1, 1/2, 1/4, 1/8 resolution): the layers convpaint takes
from VGG16. The network's input (``input_1``: the pixels' colour), the
decoder's layers (``decoder1_bn`` .. ``decoder4_bn``) and the model's
logits (``head_conv``) may be named too."""

FEATURE_TILE_PIXELS = 640 * 640
"""Largest tile the features are computed on (about 0.5 GB of network
memory and feature maps in float32)."""

CHUNK_POINTS = 8192
"""Points whose features are interpolated and classified at a time
(8192 x 960 float32 features: 31 MB)."""

TREES_PER_STEP = 10
"""Trees grown between two progress events."""


@dataclass
class EncoderClassifier:
    """A random forest on a VGG-UNet's features, and where they came from.

    ``classes`` are the stroked class ids, in the order of the forest's
    probabilities; ``n_classes`` the length of the probability axis of a
    prediction (id ``c`` at index ``c``; ids never stroked, 0 included,
    get 0). ``source`` names the model (``"prediction from the encoder
    classifier on <source>"``).
    """

    forest: Any
    features: FeatureNetwork = field(repr=False)
    classes: tuple[int, ...]
    n_classes: int
    source: str
    samples: dict[int, int]
    fit_cpu_seconds: float = 0.0
    extra: Any = None  # (image8, ys, xs) -> (n, f) features added

    def describe(self) -> str:
        """``"encoder classifier (5 classes, 4 layers) on <source>"``."""
        return (
            f"encoder classifier ({len(self.classes)} classes, "
            f"{len(self.features.layers)} layers) on {self.source}"
        )


@dataclass
class ClassifierPrediction(Prediction):
    """:class:`~napari_thinseg.inference.predict.Prediction` of an
    :class:`EncoderClassifier`: class ids, and when asked the confidence
    and the class probabilities ``(H, W, n_classes)`` float32; ``source``
    says what predicted."""

    probabilities: np.ndarray | None = None
    source: str = ""


def model_source(config: ModelConfig) -> str:
    """A short name of the model a config belongs to: its scheme, class
    count and how many images it was trained on."""
    scheme = config.class_scheme.name
    n_images = config.trained_on.get("n_images")
    trained = f", trained on {n_images} images" if n_images else ""
    return f"the {scheme!r} VGG-UNet ({config.n_classes - 1} classes{trained})"


# -- features ----------------------------------------------------------------
class FeatureNetwork:
    """Feature maps of a VGG-UNet's layers for image tiles.

    The network is rebuilt at each tile shape (cached, the last
    ``keep``) in ``precision`` and cut after ``layers``; a tile is uint8
    ``(h, w, channels)`` with sides multiples of 32, ``channels`` the
    model's (3 for RGB, 6 for plane + crossed polars).
    """

    def __init__(
        self,
        model,
        config: ModelConfig,
        layers: Sequence[str] = FEATURE_LAYERS,
        precision: str = "auto",
        keep: int = 2,
    ):
        names = {ly.name for ly in model.layers}
        unknown = [name for name in layers if name not in names]
        if not layers or unknown:
            raise ThinsegError(
                f"feature layers {', '.join(unknown) or '(none)'} are not "
                f"in the model (use some of {', '.join(FEATURE_LAYERS)})"
            )
        self.model = model
        self.config = config
        self.layers = tuple(layers)
        self.precision = resolve_precision(precision)
        self.channels = int(model.input_shape[-1])
        self.keep = keep
        self._networks: OrderedDict[tuple, Any] = OrderedDict()
        mean = np.asarray(IMAGENET_MEAN_RGB, np.float32)
        self.mean = np.tile(mean, max(1, self.channels // 3))

    def _network(self, shape: tuple[int, int]):
        fn = self._networks.get(shape)
        if fn is not None:
            self._networks.move_to_end(shape)
            return fn
        tf = tensorflow()
        import keras

        twin = rebuild(self.model, self.config, *shape, self.precision)
        cut = keras.Model(
            twin.input, [twin.get_layer(n).output for n in self.layers]
        )
        mean = tf.constant(self.mean)
        spec = tf.TensorSpec((1, *shape, self.channels), tf.uint8)

        @tf.function(input_signature=[spec])
        def maps(tile):
            out = cut(tf.cast(tile, tf.float32) - mean, training=False)
            return [tf.cast(o, tf.float32) for o in out]

        self._networks[shape] = maps
        while len(self._networks) > self.keep:
            self._networks.popitem(last=False)
        return maps

    def maps(self, tile: np.ndarray) -> list[np.ndarray]:
        """The feature maps ``(h / s, w / s, c)`` of one tile, one per
        layer."""
        shape = tuple(tile.shape[:2])
        if shape[0] % GRID or shape[1] % GRID:
            raise ThinsegError(f"tile {shape}: sides must be multiples of 32")
        out = self._network(shape)(tile[None])
        maps = [np.asarray(o)[0] for o in out]
        if not all(np.isfinite(m).all() for m in maps):
            raise ThinsegError(
                "the model produced NaN or infinite features; its weights "
                "are broken (retrain or load another checkpoint)"
            )
        return maps

    def image8(self, image: np.ndarray, name: str = "image") -> np.ndarray:
        """``image`` as the network's uint8 input, refused when its
        channels do not match the model's."""
        image8 = views8(np.asarray(image))
        if image8.ndim != 3 or image8.shape[-1] != self.channels:
            raise ThinsegError(
                f"{name}: the model takes "
                f"{describe_views(self.channels)}; this image is "
                f"{describe_views(np.asarray(image))}"
            )
        return image8


@dataclass(frozen=True)
class Tile:
    """A feature tile at ``(y, x)`` of ``shape``; its core (the pixels it
    decides) is ``[top:bottom, left:right]`` in tile coordinates."""

    y: int
    x: int
    shape: tuple[int, int]
    top: int
    bottom: int
    left: int
    right: int

    def pixels(self, image8: np.ndarray) -> np.ndarray:
        """The tile of ``image8``, reflect-padded past the image's edge."""
        th, tw = self.shape
        part = image8[self.y : self.y + th, self.x : self.x + tw]
        pad = ((0, th - part.shape[0]), (0, tw - part.shape[1]), (0, 0))
        if pad[0][1] or pad[1][1]:
            mode = "reflect" if min(part.shape[:2]) > 1 else "edge"
            part = np.pad(part, pad, mode=mode)
        return part


def feature_tiles(height: int, width: int) -> list[Tile]:
    """Tiles covering an image, with :data:`.MARGIN` pixels of context at
    their inner edges (one tile when :data:`FEATURE_TILE_PIXELS` hold it):
    prediction's margin tiles (:func:`~..inference.tiling.margin_tiles`)."""
    shape = auto_tile_shape(height, width, MARGIN, FEATURE_TILE_PIXELS)
    tiles = margin_tiles(height, width, shape, margin_for(shape))
    return [Tile(t.y, t.x, shape, *t.core) for t in tiles]


def _taps(coords: np.ndarray, size: int, scale: float):
    """Bilinear taps (half-pixel centres, clamped at the edges, as
    TensorFlow resizes) of pixel coordinates ``coords`` in a map of
    ``size`` cells of ``scale`` pixels: ``(i0, i1, w1)``."""
    f = np.clip((np.asarray(coords) + 0.5) / scale - 0.5, 0, size - 1)
    i0 = np.floor(f).astype(np.intp)
    return i0, np.minimum(i0 + 1, size - 1), (f - i0).astype(np.float32)


def _lerp(values: np.ndarray, taps, axis: int) -> np.ndarray:
    """``values`` interpolated along ``axis`` (0 or 1) at ``taps``."""
    i0, i1, w = taps
    w = w[:, None, None] if axis == 0 else w[None, :, None]
    a, b = np.take(values, i0, axis), np.take(values, i1, axis)
    return a * (1 - w) + b * w


def points_features(
    maps: Sequence[np.ndarray], tile_height: int, ys, xs
) -> np.ndarray:
    """Features ``(n, sum of channels)`` of ``maps`` (of a tile
    ``tile_height`` pixels high) at pixels ``(ys, xs)`` (tile
    coordinates, float allowed), interpolated bilinearly."""
    out = []
    for m in maps:
        scale = tile_height / m.shape[0]
        y0, y1, wy = _taps(ys, m.shape[0], scale)
        x0, x1, wx = _taps(xs, m.shape[1], scale)
        wy, wx = wy[:, None], wx[:, None]
        top = m[y0, x0] * (1 - wx) + m[y0, x1] * wx
        bottom = m[y1, x0] * (1 - wx) + m[y1, x1] * wx
        out.append(top * (1 - wy) + bottom * wy)
    return np.concatenate(out, axis=-1)


def grid_features(
    maps: Sequence[np.ndarray], tile_height: int, ys, xs
) -> np.ndarray:
    """Features ``(len(ys), len(xs), channels)`` on the grid of rows
    ``ys`` and columns ``xs``: what :func:`points_features` gives at each
    grid point, interpolated separably."""
    out = []
    for m in maps:
        scale = tile_height / m.shape[0]
        rows = _lerp(m, _taps(ys, m.shape[0], scale), 0)
        out.append(_lerp(rows, _taps(xs, m.shape[1], scale), 1))
    return np.concatenate(out, axis=-1)


def upsample(grid: np.ndarray, height: int, width: int, stride: int):
    """Values on a grid every ``stride`` pixels (centred in each cell)
    brought to ``height`` x ``width`` pixels bilinearly."""
    if stride == 1:
        return grid[:height, :width]
    rows = _lerp(grid, _taps(np.arange(height), grid.shape[0], stride), 0)
    return _lerp(rows, _taps(np.arange(width), grid.shape[1], stride), 1)


# -- fitting -----------------------------------------------------------------
def check_pairs(pairs, features: FeatureNetwork):
    """``[(name, uint8 image, labels)]``, refusing mismatched shapes."""
    if not len(pairs):
        raise ThinsegError("no images to learn from")
    out = []
    for k, pair in enumerate(pairs):
        if hasattr(pair, "labels"):
            name, image, labels = pair.where, pair.image, pair.labels
        else:
            (image, labels), name = pair, f"image {k + 1}"
        labels = np.asarray(labels)
        if labels.ndim != 2 or labels.dtype.kind not in "ui":
            raise ThinsegError(
                f"{name}: strokes must be a 2D integer array, got "
                f"{labels.dtype} of shape {labels.shape}"
            )
        image8 = features.image8(image, name)
        if image8.shape[:2] != labels.shape:
            raise ThinsegError(
                f"{name}: image {image8.shape[0]}x{image8.shape[1]} and "
                f"strokes {labels.shape[0]}x{labels.shape[1]} differ in "
                "size"
            )
        if labels.min(initial=0) < 0 or labels.max(initial=0) > 255:
            raise ThinsegError(f"{name}: stroke class ids must be 0..255")
        out.append((name, image8, labels))
    return out


def sample_strokes(
    labels: Sequence[np.ndarray], per_class: int, seed: int = 0
) -> dict[int, list[np.ndarray]]:
    """``{class id: [flat pixel indices of each image]}``: at most
    ``per_class`` stroked pixels of each class over all images, drawn
    with ``seed`` (all of a class that has fewer)."""
    classes = sorted(
        set().union(*(np.unique(lab[lab > 0]).tolist() for lab in labels))
    )
    rng = np.random.default_rng(seed)
    out = {}
    for c in classes:
        where = [np.flatnonzero(lab == c) for lab in labels]
        counts = np.cumsum([0] + [len(w) for w in where])
        n = min(per_class, int(counts[-1]))
        pick = np.sort(rng.choice(counts[-1], n, replace=False))
        out[c] = [
            where[k][
                pick[(pick >= counts[k]) & (pick < counts[k + 1])] - counts[k]
            ]
            for k in range(len(where))
        ]
    return out


def _plan_strokes(checked, per_class: int, seed: int):
    """The stroked classes, and ``(image8, (ys, xs), class ids, tile)``
    of the sampled pixels for each tile of an image that has some."""
    picked = sample_strokes([lab for _, _, lab in checked], per_class, seed)
    if len(picked) < 2:
        one = f"strokes of one class only (id {next(iter(picked), None)})"
        raise ThinsegError(
            f"{one if picked else 'no strokes'}: paint at least two classes"
        )
    jobs = []
    for k, (_, image8, lab) in enumerate(checked):
        flat = np.concatenate([picked[c][k] for c in picked])
        if len(flat):
            yx, ids = np.unravel_index(flat, lab.shape), lab.ravel()[flat]
            jobs += [(image8, yx, ids, t) for t in feature_tiles(*lab.shape)]
    return tuple(picked), jobs


def _stroke_features(jobs, features: FeatureNetwork, extra, n_steps: int):
    """Features and class ids ``(x, y)`` of the pixels, one step a tile."""
    x_parts, y_parts = [], []
    for step, (image8, (ys, xs), ids, tile) in enumerate(jobs, start=1):
        # each pixel from the one tile whose core holds it: none twice
        ty, tx = ys - tile.y, xs - tile.x
        inside = (ty >= tile.top) & (ty < tile.bottom)
        inside &= (tx >= tile.left) & (tx < tile.right)
        if inside.any():
            maps = features.maps(tile.pixels(image8))
            f = points_features(maps, tile.shape[0], ty[inside], tx[inside])
            if extra is not None:
                f = np.hstack([f, extra(image8, ys[inside], xs[inside])])
            x_parts.append(f)
            y_parts.append(ids[inside])
        yield Progress(step, n_steps, "features of the strokes")
    return np.concatenate(x_parts), np.concatenate(y_parts)


def _fit_forest(x, y, classes, balance, n_trees, seed, n_steps):
    """A forest on ``(x, y)`` and its pixels per class; the last steps of
    ``n_steps``, one per :data:`TREES_PER_STEP` trees grown."""
    try:
        from sklearn.ensemble import RandomForestClassifier
    except ImportError:
        need = "the encoder classifier needs scikit-learn"
        raise ThinsegError(f"{need} (pip install scikit-learn)") from None
    counts = {c: int((y == c).sum()) for c in classes}
    share = np.array(list(counts.values())) * len(classes) / len(y)
    weight = 1.0 / share[np.searchsorted(classes, y)] if balance else None
    forest = RandomForestClassifier(
        n_estimators=0, random_state=seed, warm_start=True, n_jobs=-1
    )
    # warm start: each fit grows only the trees added since the last
    sizes = [*range(TREES_PER_STEP, n_trees, TREES_PER_STEP), n_trees]
    for step, grown in enumerate(sizes, start=n_steps - len(sizes) + 1):
        forest.set_params(n_estimators=grown)
        forest.fit(x, y, sample_weight=weight)
        yield Progress(step, n_steps, f"{grown} of {n_trees} trees")
    return forest, counts


def fit_encoder_classifier(
    model,
    config: ModelConfig,
    pairs: Sequence,
    layers: Sequence[str] = FEATURE_LAYERS,
    samples_per_class: int = 2000,
    n_trees: int = 100,
    seed: int = 0,
    balance_classes: bool = False,
    n_classes: int | None = None,
    precision: str = "auto",
    source: str | None = None,
    features: FeatureNetwork | None = None,
    extra=None,
) -> Generator[Progress, None, EncoderClassifier]:
    """Learn the stroked classes from ``model``'s features.

    Parameters
    ----------
    model, config
        A loaded VGG-UNet
        (:func:`~napari_thinseg.model.checkpoints.load_model`, or a
        training result); its classes do not matter.
    pairs
        ``(image, strokes)`` tuples or
        :class:`~napari_thinseg.dataset.folders.Pair`: images as the model
        takes them, strokes integer class ids (0 unlabelled) of the
        image's height and width.
    layers
        The layers whose outputs are the features.
    samples_per_class
        Stroked pixels per class the forest learns from (at most, drawn
        with ``seed`` over all images).
    balance_classes
        Weight the classes so that each counts alike however few pixels
        it has (else as sampled).
    n_trees, seed
        The forest's size and random seed (same seed, same forest).
    n_classes
        Length of a prediction's probability axis (the scheme's class
        count); at least the largest stroked id + 1, which is the default.
    precision
        What the network computes in (see
        :func:`~napari_thinseg.inference.predict.predict_image`).
    source
        The model's name in messages (default :func:`model_source`).
    features
        A :class:`FeatureNetwork` to reuse (its rebuilt networks are
        cached); ``model``, ``config``, ``layers`` and ``precision`` are
        then ignored.
    extra
        ``(image8, ys, xs) -> (n, f)`` more features at image pixels (e.g.
        :mod:`.filter_features`), kept by the classifier to predict.

    Raises
    ------
    ThinsegError
        No strokes, strokes of one class only, or images and strokes that
        differ in size or do not suit the model.
    """
    started = time.process_time()
    if samples_per_class < 1 or n_trees < 1:
        raise ThinsegError("samples_per_class and n_trees must be >= 1")
    features = features or FeatureNetwork(model, config, layers, precision)
    checked = check_pairs(pairs, features)
    classes, jobs = _plan_strokes(checked, samples_per_class, seed)
    n_classes = max(n_classes or 0, classes[-1] + 1)
    n_steps = len(jobs) + -(-n_trees // TREES_PER_STEP)
    x, y = yield from _stroke_features(jobs, features, extra, n_steps)
    forest, counts = yield from _fit_forest(
        x, y, classes, balance_classes, n_trees, seed, n_steps
    )
    source = source or model_source(features.config)
    seconds = time.process_time() - started
    return EncoderClassifier(
        forest, features, classes, n_classes, source, counts, seconds, extra
    )


# -- predicting --------------------------------------------------------------
def predict_encoder_classifier(
    classifier: EncoderClassifier,
    image: np.ndarray,
    stride: int = 2,
    probabilities: bool = True,
    confidence: bool = False,
) -> Generator[Progress, None, ClassifierPrediction]:
    """Classify every pixel of ``image`` with ``classifier``.

    The forest decides on a grid every ``stride`` pixels (1, 2 or 4: 2
    is the network's own output resolution and a quarter of the work of
    1); its class probabilities are interpolated bilinearly to the pixels
    and the most probable stroked class is each pixel's label. Yields a
    :class:`~napari_thinseg.progress.Progress` per few thousand grid points.
    """
    if stride not in (1, 2, 4):
        raise ThinsegError(f"stride must be 1, 2 or 4, got {stride}")
    features = classifier.features
    image8 = features.image8(image)
    height, width = image8.shape[:2]
    classes = np.asarray(classifier.classes, np.uint8)
    n_known = len(classes)
    probs = np.zeros((height, width, n_known), np.float32)
    half = (stride - 1) / 2
    plan = []
    for tile in feature_tiles(height, width):
        ch, cw = tile.bottom - tile.top, tile.right - tile.left
        gh, gw = -(-ch // stride), -(-cw // stride)
        rows = max(1, CHUNK_POINTS // gw)
        plan.append((tile, ch, cw, gh, gw, range(0, gh, rows), rows))
    total = sum(len(p[-2]) for p in plan)
    step = 0
    for tile, ch, cw, gh, gw, chunks, rows in plan:
        maps = features.maps(tile.pixels(image8))
        xs = tile.left + stride * np.arange(gw) + half
        grid = np.empty((gh, gw, n_known), np.float32)
        for r0 in chunks:
            r1 = min(gh, r0 + rows)
            ys = tile.top + stride * np.arange(r0, r1) + half
            feats = grid_features(maps, tile.shape[0], ys, xs)
            feats = feats.reshape(-1, feats.shape[-1])
            if classifier.extra is not None:
                gy, gx = np.meshgrid(ys + tile.y, xs + tile.x, indexing="ij")
                more = classifier.extra(image8, gy.ravel(), gx.ravel())
                feats = np.hstack([feats, more])
            p = classifier.forest.predict_proba(feats)
            grid[r0:r1] = p.reshape(r1 - r0, gw, n_known)
            step += 1
            yield Progress(step, total, f"{step} of {total} parts")
        y, x = tile.y + tile.top, tile.x + tile.left
        probs[y : y + ch, x : x + cw] = upsample(grid, ch, cw, stride)
    labels = classes[probs.argmax(-1)]
    conf = confidence_map(probs) if confidence else None
    full = None
    if probabilities:
        full = np.zeros((height, width, classifier.n_classes), np.float32)
        full[..., classes] = probs
    return ClassifierPrediction(
        labels, conf, full, f"encoder classifier on {classifier.source}"
    )
