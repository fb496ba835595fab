"""Tiles, photos and label files as tasks on a real dask LocalCluster of
2 worker processes on loopback: the same results as one process."""

import numpy as np
import pytest
from _slides import slide_file

from napari_thinseg.distributed import (
    ModelPayload,
    cluster,
    n_workers,
    worker_model,
)
from napari_thinseg.errors import ThinsegError
from napari_thinseg.imaging.files import write_annotation
from napari_thinseg.imaging.lazy import open_lazy
from napari_thinseg.measure.modal import measure_files
from napari_thinseg.predict_slide import predict_slide
from napari_thinseg.progress import run


@pytest.fixture(scope="module")
def client():
    with cluster(workers=2) as c:
        yield c


def test_a_slide_on_two_workers_equals_one_process(
    default_model, client, tmp_path
):
    model, config = default_model
    path, _ = slide_file(tmp_path)
    slide = open_lazy(path)
    here = np.zeros(slide.shape[:2], np.uint8)
    run(predict_slide(model, config, slide, here, tile=256))
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
