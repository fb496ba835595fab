"""Point counting: the grid, pre-assignment, the user's calls, the count
with its binomial intervals, and the CSV round trip."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.measure.modal import wilson_interval
from napari_thinseg.measure.point_count import (
    PointCount,
    assign_points,
    point_grid,
    read_points_csv,
    write_points_csv,
    write_summary_csv,
)
from napari_thinseg.schemes import SANDSTONE


def halves(shape=(120, 200)):
    """Left half pore (1), right half quartz (2), one unlabelled row."""
    labels = np.full(shape, 2, np.uint8)
    labels[:, : shape[1] // 2] = 1
    labels[0] = 0
    return labels


def test_grid_by_spacing_and_by_count():
    grid = point_grid((100, 200), spacing=10, seed=3)
    assert grid.shape == (200, 2)  # 10 rows x 20 columns
    offset = grid[0]
    assert np.all((offset >= 0) & (offset < 10))
    np.testing.assert_allclose(np.diff(np.unique(grid[:, 0])), 10)
    # the same seed, the same grid; another, another offset
    assert np.array_equal(grid, point_grid((100, 200), spacing=10, seed=3))
    assert not np.array_equal(grid, point_grid((100, 200), spacing=10, seed=4))
    centred = point_grid((100, 200), spacing=10, seed=None)
    assert tuple(centred[0]) == (5.0, 5.0)
    # N points over the image, or over the counted area of a mask: the
    # number asked (issue 26: 100 asked gave 110), spread over it all
    for shape, n in (((300, 400), 300), ((100, 100), 100), ((37, 91), 7)):
        grid = point_grid(shape, n_points=n)
        assert len(grid) == n == len(np.unique(grid, axis=0))
        spacing = (shape[0] * shape[1] / n) ** 0.5
        assert grid[:, 0].max() > shape[0] - 2 * spacing
        assert grid[:, 1].max() > shape[1] - 2 * spacing
    mask = np.zeros((300, 400), bool)
    mask[:, :200] = True
    on_mask = point_grid((300, 400), n_points=300, mask=mask)
    assert len(on_mask) == 300
    assert on_mask[:, 1].max() < 200


def test_bad_grids_are_one_line():
    with pytest.raises(ThinsegError, match="number of points"):
        point_grid((10, 10))
    with pytest.raises(ThinsegError, match="spacing"):
        point_grid((10, 10), spacing=0)
    with pytest.raises(ThinsegError, match="differ in size"):
        point_grid((10, 10), n_points=5, mask=np.ones((5, 5), bool))


def test_assign_and_count_with_wilson_intervals():
    labels = halves()
    count = PointCount.from_labels(labels, SANDSTONE, spacing=10, seed=1)
    assert np.array_equal(count.class_ids, assign_points(count.points, labels))
    summary = {c.name: c for c in count.summary(labels)}
    counted = int(count.counted.sum())
    assert counted == len(count.points) - np.count_nonzero(
        count.points[:, 0] < 1
    )
    pore, quartz = summary["pore"], summary["quartz"]
    assert pore.points + quartz.points == counted
    assert pore.fraction == pytest.approx(0.5, abs=0.05)
    assert (pore.low, pore.high) == pytest.approx(
        wilson_interval(pore.fraction, counted)
    )
    assert pore.low < 0.5 < pore.high
    assert pore.area_fraction == pytest.approx(0.5)
    assert summary["feldspar"].points == 0
    assert summary["feldspar"].high > 0  # zero counted: still an interval


def test_the_users_calls_and_the_next_point():
    count = PointCount.from_labels(halves(), SANDSTONE, spacing=20, seed=0)
    assert not count.confirmed.any()
    assert count.next_unconfirmed() == 0
    count.set_class(0, 3)  # feldspar, not what the labels said
    assert count.class_ids[0] == 3 and count.confirmed[0]
    assert count.next_unconfirmed(0) == 1
    count.set_class(slice(None), 2)
    assert count.next_unconfirmed() is None
    with pytest.raises(ThinsegError, match="not in scheme"):
        count.set_class(0, 99)


def test_round_trip_through_csv(tmp_path):
    labels = halves()
    count = PointCount.from_labels(labels, SANDSTONE, n_points=50, seed=2)
    count.set_class(4, 3)
    path = write_points_csv(count, tmp_path / "count.csv")
    again = read_points_csv(path, SANDSTONE)
    np.testing.assert_allclose(again.points, count.points, atol=0.005)
    assert np.array_equal(again.class_ids, count.class_ids)
    assert np.array_equal(again.confirmed, count.confirmed)
    with pytest.raises(ThinsegError, match="exist"):
        write_points_csv(count, path)
    summary = write_summary_csv(count, tmp_path / "summary.csv", labels)
    rows = list(csv.reader(summary.open()))
    assert rows[0][:4] == ["class_id", "class_name", "points", "percent"]
    by_name = {r[1]: r for r in rows[1:]}
    assert by_name["feldspar"][2] == "1"
    assert float(by_name["pore"][6]) == pytest.approx(50.0)
    total = int(by_name["total counted"][2])
    assert total == sum(int(r[2]) for r in rows[1 : 1 + len(SANDSTONE)])
    assert by_name["confirmed"][2] == "1"


def test_a_csv_that_is_no_count_is_one_line(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ThinsegError, match="not a points CSV"):
        read_points_csv(bad, SANDSTONE)
    broken = tmp_path / "broken.csv"
    broken.write_text("y,x,class_id,class_name,confirmed\n1,2,pore,,0\n")
    with pytest.raises(ThinsegError, match="not a point"):
        read_points_csv(broken, SANDSTONE)
    with pytest.raises(ThinsegError, match="missing.csv"):
        read_points_csv(tmp_path / "missing.csv", SANDSTONE)
