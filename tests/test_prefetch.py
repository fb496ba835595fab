import threading
import time

import numpy as np
import pytest

from napari_thinseg.prefetch import map_ahead


def test_results_in_order_and_equal_to_a_plain_loop():
    # a stateful function (a seeded generator) gives the same sequence
    plain_rng = np.random.default_rng(3)
    plain = [plain_rng.random(4) for _ in range(6)]
    rng = np.random.default_rng(3)
    ahead = list(map_ahead(lambda _: rng.random(4), range(6)))
    assert len(ahead) == 6
    for a, b in zip(ahead, plain, strict=True):
        np.testing.assert_array_equal(a, b)


def test_the_next_item_is_computed_while_the_caller_works():
    started = []
    release = threading.Event()

    def work(i):
        started.append(i)
        if i == 1:
            release.set()
        return i * 10

    items = map_ahead(work, range(3))
    assert next(items) == 0
    # item 1 was submitted before item 0 was handed over: it runs now,
    # while the caller holds item 0
    assert release.wait(5)
    assert started[:2] == [0, 1]
    assert list(items) == [10, 20]


def test_depth_bounds_what_runs_ahead():
    running = []

    def work(i):
        running.append(i)
        return i

    items = map_ahead(work, range(10), depth=2)
    assert next(items) == 0
    time.sleep(0.1)
    # item 0 handed over, 1 and 2 submitted; 3 not yet
    assert max(running) == 2
    items.close()


def test_an_error_reaches_the_caller_at_its_item():
    def work(i):
        if i == 2:
            raise ValueError("bad item 2")
        return i

    items = map_ahead(work, range(5))
    assert next(items) == 0
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad item 2"):
        next(items)


def test_closing_early_cancels_the_rest_and_ends_the_thread():
    calls, workers = [], set()

    def work(i):
        calls.append(i)
        workers.add(threading.current_thread())
        time.sleep(0.02)
        return i

    items = map_ahead(work, range(1000))
    assert next(items) == 0
    items.close()
    assert len(calls) <= 3
    assert len(workers) == 1
    assert all(w.name.startswith("thinseg-ahead") for w in workers)
    for w in workers:
        w.join(timeout=5)
        assert not w.is_alive()


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth"):
        next(map_ahead(str, range(3), depth=0))
