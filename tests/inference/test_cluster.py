"""Tiles, photos and label files as tasks on a real dask LocalCluster of
2 worker processes on loopback: the same results as one process, also
when a worker is killed mid-run; a scheduler killed mid-run ends the run
in one line and leaves a ``.partial`` that resumes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from _slides import slide_file

from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.files import write_annotation
from napari_thinseg.imaging.lazy import open_lazy
from napari_thinseg.imaging.pyramid import LabelsPyramid, open_levels
from napari_thinseg.inference.cluster import (
    ModelPayload,
    cluster,
    n_workers,
    worker_model,
)
from napari_thinseg.inference.slides import predict_slide
from napari_thinseg.measure.modal import measure_files
from napari_thinseg.progress import run


@pytest.fixture(scope="module")
def client():
    with cluster(workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def one_process(default_model, tmp_path_factory):
    """The test slide and its labels predicted in this process."""
    model, config = default_model
    path, _ = slide_file(tmp_path_factory.mktemp("slide"))
    slide = open_lazy(path)
    here = np.zeros(slide.shape[:2], np.uint8)
    run(predict_slide(model, config, slide, here, tile=256))
    return slide, here


def test_a_slide_on_two_workers_equals_one_process(
    default_model, client, one_process
):
    model, config = default_model
    slide, here = one_process
    there = np.zeros_like(here)
    events = []
    result = run(
        predict_slide(model, config, slide, there, tile=256, client=client),
        events.append,
    )
    np.testing.assert_array_equal(there, here)
    assert result.workers == n_workers(client) == 2
    assert "on 2 workers" in events[-1].message
    # both workers took tiles
    assert len(client.run(lambda: 1)) == 2


def test_label_files_are_measured_on_the_cluster_alike(client, tmp_path):
    rng = np.random.default_rng(3)
    for k in range(3):
        write_annotation(tmp_path / f"l{k}.png", rng.integers(0, 7, (90, 120)))
    kwargs = {"sizes": False, "n_boot": 50}
    here = run(measure_files([tmp_path], **kwargs))
    there = run(measure_files([tmp_path], client=client, **kwargs))
    assert [m.name for m in there] == ["l0.png", "l1.png", "l2.png"]
    assert [m.porosity for m in there] == [m.porosity for m in here]
    assert [m.porosity_bootstrap for m in there] == [
        m.porosity_bootstrap for m in here
    ]


def test_a_worker_builds_the_model_from_its_bytes_once(default_model):
    model, config = default_model
    payload = ModelPayload.from_model(model, config)
    assert payload.digest and len(payload.weights) > 1e6
    # the payload holds bytes and text only: nothing Keras is pickled
    assert set(vars(payload)) == {"config_json", "weights", "digest"}
    built, built_config = worker_model(payload)
    assert worker_model(payload)[0] is built
    assert built_config.n_classes == config.n_classes
    x = np.random.default_rng(0).random((1, *model.input_shape[1:]))
    np.testing.assert_allclose(
        built.predict_on_batch(x), model.predict_on_batch(x), atol=1e-5
    )


def test_a_missing_scheduler_is_one_line():
    with (
        pytest.raises(ThinsegError, match="cannot reach the dask"),
        cluster(scheduler="tcp://127.0.0.1:9", timeout=1),
    ):
        pass
    with (
        pytest.raises(ThinsegError, match="workers or a scheduler"),
        cluster(),
    ):
        pass


# -- faults (last: a worker is killed) ----------------------------------------
def test_a_scheduler_killed_mid_run_leaves_a_partial_that_resumes(
    default_model, one_process, tmp_path
):
    model, config = default_model
    slide, here = one_process
    file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler"]
        + ["--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
        + ["--scheduler-file", str(file)],
        stderr=subprocess.DEVNULL,
        env=env,
    )
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        address = json.loads(file.read_text())["address"]
        worker = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address]
            + ["--nthreads", "1", "--no-dashboard"],
            stderr=subprocess.DEVNULL,
            env=env,
        )
        out = LabelsPyramid.create(
            tmp_path / "labels.ome.zarr", slide.shape[:2]
        )

        def kill_scheduler(event):
            if event.step == 2:
                os.kill(scheduler.pid, signal.SIGKILL)

        with (
            cluster(scheduler=address) as remote,
            pytest.raises(ThinsegError) as exc,
        ):
            remote.wait_for_workers(1, timeout=60)
            run(
                predict_slide(
                    model, config, slide, out, tile=256, client=remote
                ),
                kill_scheduler,
            )
    finally:
        for proc in (scheduler, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    message = str(exc.value)
    assert "lost the connection to the dask scheduler" in message
    assert f"kept in {out.store_path}: run again to resume" in message
    assert "\n" not in message
    # the tiles written are kept: a run here picks them up
    again = LabelsPyramid.create(out.path, slide.shape[:2])
    kept = len(again.done)
    assert again.resumed and kept >= 2
    result = run(predict_slide(model, config, slide, again, tile=256))
    assert result.kept == kept
    again.finish()
    np.testing.assert_array_equal(open_levels(again.path)[0][:], here)


def test_a_worker_killed_mid_run_changes_nothing_but_is_said(
    default_model, client, one_process
):
    model, config = default_model
    slide, here = one_process
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker(event):
        # late: its tiles go to the other worker, not to the one its
        # nanny starts (which builds the model first)
        if event.step == event.total - 4 and not killed:
            busy = [a for a, keys in client.processing().items() if keys]
            victim = (busy or sorted(pids))[0]
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

    events = []
    there = np.zeros_like(here)
    result = run(
        predict_slide(model, config, slide, there, tile=256, client=client),
        lambda e: (events.append(e), kill_a_busy_worker(e)),
    )
    assert killed
    np.testing.assert_array_equal(there, here)
    assert result.workers_lost == 1
    assert events[-1].step == events[-1].total == result.tiles
