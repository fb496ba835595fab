"""Point counting: a petrographer's modal analysis.

A grid of points over the section (:func:`point_grid`: a square grid of a
given spacing, or of about ``n`` points over the counted area, shifted by
one random offset as JMicroVision and PetroG place theirs), each point
pre-assigned the class under it (:func:`assign_points`, from labels or a
model's prediction) and then confirmed or changed by the user, one point
at a time. :class:`PointCount` holds the points, their classes and which
are confirmed; :meth:`PointCount.summary` gives the count of every class,
its percentage and its 95 % Wilson interval (the binomial interval of a
point count, as :func:`~.modal.wilson_interval`), beside the class's area
fraction in the labels when given.

Files (:func:`write_points_csv` / :func:`read_points_csv`): one row per
point (``y``, ``x`` in pixels, ``class_id``, ``class_name``,
``confirmed``), so a count is reopened where it was left; and
:func:`write_summary_csv`, one row per class (``points``, ``percent``,
``percent_low``, ``percent_high``, ``area_percent``) with the total.
Points on unlabelled pixels (0) or outside the scheme are not counted
(JMicroVision's "null" points).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from ..schemes import ClassScheme
from .modal import wilson_interval

POINTS_COLUMNS = ("y", "x", "class_id", "class_name", "confirmed")
"""The columns of a points CSV, in order."""


def point_grid(
    shape: tuple[int, int],
    n_points: int | None = None,
    spacing: float | None = None,
    seed: int | None = 0,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Points ``(N, 2)`` (row, column; float pixel centres) of a square
    grid over an image of ``shape``.

    Give ``spacing`` (pixels), or ``n_points``: the spacing is then
    about ``sqrt(area / n_points)``, the area that of ``mask`` (counted
    pixels) or of the image, and exactly ``n_points`` are given (the
    grid's extra points, evenly spread over it, are left out; fewer only
    where the mask has fewer pixels). The whole grid is shifted by one
    offset drawn with ``seed`` (uniform in a cell; None: the grid starts
    half a spacing from the corner). Points off ``mask`` are dropped.
    """
    height, width = (int(s) for s in shape[:2])
    if height < 1 or width < 1:
        raise ThinsegError(f"no image to put points on: {height}x{width}")
    if mask is not None and np.asarray(mask).shape[:2] != (height, width):
        raise ThinsegError("the mask and the image differ in size")
    area = height * width if mask is None else int(np.count_nonzero(mask))
    if spacing is None:
        if n_points is None or not n_points >= 1:
            raise ThinsegError(
                f"give a number of points (>= 1) or a spacing, got "
                f"{n_points!r}"
            )
        spacing = math.sqrt(max(area, 1) / n_points)
        # a slightly finer grid until it holds the points asked for
        for _ in range(60):
            grid = _grid(height, width, spacing, seed, mask)
            if len(grid) >= n_points or spacing < 1:
                break
            spacing *= 0.95
        if len(grid) > n_points:
            keep = np.linspace(0, len(grid) - 1, int(n_points))
            grid = grid[np.round(keep).astype(np.intp)]
        return grid
    if not (spacing > 0 and math.isfinite(spacing)):
        raise ThinsegError(f"point spacing must be > 0 pixels, got {spacing}")
    return _grid(height, width, spacing, seed, mask)


def _grid(height, width, spacing, seed, mask) -> np.ndarray:
    """The square grid of ``spacing`` (see :func:`point_grid`)."""
    if seed is None:
        dy = dx = spacing / 2
    else:
        dy, dx = np.random.default_rng(seed).uniform(0, 1, 2) * spacing
    ys = np.arange(dy, height, spacing)
    xs = np.arange(dx, width, spacing)
    grid = np.stack(np.meshgrid(ys, xs, indexing="ij"), -1).reshape(-1, 2)
    if mask is not None:
        rows, cols = _pixels(grid, (height, width))
        grid = grid[np.asarray(mask, bool)[rows, cols]]
    return grid


def _pixels(points: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """The pixel each point lies on (clipped into the image)."""
    pts = np.asarray(points, float).reshape(-1, 2)
    rows = np.clip(np.floor(pts[:, 0]).astype(np.intp), 0, shape[0] - 1)
    cols = np.clip(np.floor(pts[:, 1]).astype(np.intp), 0, shape[1] - 1)
    return rows, cols


def assign_points(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The class id (uint8) under each point of a 2D label image."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ThinsegError(
            f"point counting needs 2D labels, got {labels.ndim}D"
        )
    rows, cols = _pixels(points, labels.shape)
    return labels[rows, cols].astype(np.uint8)


@dataclass(frozen=True)
class ClassCount:
    """One class of a point count."""

    id: int
    name: str
    points: int
    fraction: float
    low: float
    high: float
    area_fraction: float | None = None


@dataclass
class PointCount:
    """A point count in progress: points ``(N, 2)``, their class ids and
    whether the user confirmed each."""

    points: np.ndarray
    class_ids: np.ndarray
    scheme: ClassScheme
    confirmed: np.ndarray = field(default=None)

    def __post_init__(self):
        self.points = np.asarray(self.points, float).reshape(-1, 2)
        self.class_ids = np.asarray(self.class_ids, np.uint8).reshape(-1)
        if len(self.class_ids) != len(self.points):
            raise ThinsegError(
                f"{len(self.points)} points but {len(self.class_ids)} classes"
            )
        if self.confirmed is None:
            self.confirmed = np.zeros(len(self.points), bool)
        self.confirmed = np.asarray(self.confirmed, bool).reshape(-1)

    @classmethod
    def from_labels(cls, labels, scheme: ClassScheme, **grid) -> PointCount:
        """A grid (:func:`point_grid` keywords) pre-assigned from
        ``labels``."""
        labels = np.asarray(labels)
        points = point_grid(labels.shape, **grid)
        return cls(points, assign_points(points, labels), scheme)

    def set_class(self, index, class_id: int) -> None:
        """The user's call on point(s) ``index``: ``class_id``, confirmed."""
        if class_id not in self.scheme.ids:
            raise ThinsegError(
                f"class {class_id} is not in scheme '{self.scheme.name}'"
            )
        self.class_ids[index] = class_id
        self.confirmed[index] = True

    def next_unconfirmed(self, after: int = -1) -> int | None:
        """The first unconfirmed point after ``after`` (wrapping), or None
        when all are confirmed."""
        todo = np.flatnonzero(~self.confirmed)
        if not len(todo):
            return None
        later = todo[todo > after]
        return int(later[0] if len(later) else todo[0])

    @property
    def counted(self) -> np.ndarray:
        """Which points count: on a class of the scheme (not 0)."""
        return np.isin(self.class_ids, self.scheme.ids)

    def summary(self, labels=None) -> list[ClassCount]:
        """Every class's count, fraction and 95 % Wilson interval (and its
        area fraction over the labelled pixels of ``labels``)."""
        ids = self.class_ids[self.counted]
        n = len(ids)
        area = None
        if labels is not None:
            values = np.asarray(labels).ravel()
            inside = values[np.isin(values, self.scheme.ids)]
            area = (inside, max(len(inside), 1))
        out = []
        for c in self.scheme.classes:
            k = int(np.count_nonzero(ids == c.id))
            fraction = k / n if n else math.nan
            low, high = wilson_interval(fraction, n) if n else (math.nan,) * 2
            area_fraction = (
                None
                if area is None
                else float(np.count_nonzero(area[0] == c.id) / area[1])
            )
            out.append(
                ClassCount(c.id, c.name, k, fraction, low, high, area_fraction)
            )
        return out


# -- files -------------------------------------------------------------------
def _write(path: Path, rows: list[list], overwrite: bool) -> Path:
    from ..imaging.atomic import atomic_write_text, ensure_dir, refuse_existing

    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def write_points_csv(
    count: PointCount, path: str | Path, overwrite: bool = False
) -> Path:
    """Every point of ``count``: ``y``, ``x``, ``class_id``,
    ``class_name``, ``confirmed`` (0/1)."""
    names = {c.id: c.name for c in count.scheme.classes}
    rows = [list(POINTS_COLUMNS)]
    for (y, x), cid, ok in zip(
        count.points, count.class_ids, count.confirmed, strict=True
    ):
        rows.append(
            [
                f"{y:.2f}",
                f"{x:.2f}",
                int(cid),
                names.get(int(cid), ""),
                int(ok),
            ]
        )
    return _write(Path(path), rows, overwrite)


def read_points_csv(path: str | Path, scheme: ClassScheme) -> PointCount:
    """A point count written by :func:`write_points_csv`, to go on."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
    except OSError as exc:
        raise ThinsegError(f"{path}: {exc.strerror or exc}") from None
    if table and not set(POINTS_COLUMNS) - {"class_name"} <= set(table[0]):
        raise ThinsegError(
            f"{path}: not a points CSV (columns {', '.join(POINTS_COLUMNS)})"
        )
    try:
        points = [(float(r["y"]), float(r["x"])) for r in table]
        ids = [int(r["class_id"]) for r in table]
        confirmed = [
            r["confirmed"].strip() in ("1", "true", "True") for r in table
        ]
    except (TypeError, ValueError) as exc:
        raise ThinsegError(f"{path}: a row is not a point ({exc})") from None
    if any(not 0 <= i <= 255 for i in ids):
        raise ThinsegError(f"{path}: class ids must be 0..255")
    return PointCount(np.array(points).reshape(-1, 2), ids, scheme, confirmed)


def write_summary_csv(
    count: PointCount,
    path: str | Path,
    labels=None,
    overwrite: bool = False,
) -> Path:
    """One row per class (``points``, ``percent`` and its 95 % Wilson
    ``percent_low`` / ``percent_high``, ``area_percent`` of ``labels``),
    then the total and how many points were confirmed."""
    summary = count.summary(labels)

    def pct(value):
        return (
            ""
            if value is None or not math.isfinite(value)
            else (f"{100 * value:.2f}")
        )

    rows = [
        [
            "class_id",
            "class_name",
            "points",
            "percent",
            "percent_low",
            "percent_high",
            "area_percent",
        ]
    ]
    for c in summary:
        rows.append(
            [
                c.id,
                c.name,
                c.points,
                pct(c.fraction),
                pct(c.low),
                pct(c.high),
                pct(c.area_fraction),
            ]
        )
    counted = int(count.counted.sum())
    rows.append(["", "total counted", counted, "100.00" if counted else ""])
    rows.append(["", "confirmed", int(count.confirmed.sum()), "", "", "", ""])
    rows.append(["", "not counted (unlabelled)", len(count.points) - counted])
    return _write(Path(path), rows, overwrite)
