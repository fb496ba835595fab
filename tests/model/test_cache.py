"""Models kept between runs: staleness, least-recently-used, threads."""

import threading

import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.model import cache
from napari_thinseg.model.checkpoints import write_config
from napari_thinseg.model.config import ModelConfig


def fake_checkpoint(folder, name="P", epochs=(0,)):
    """A config and empty weights files: enough to describe, not load."""
    prefix = folder / name
    write_config(prefix, ModelConfig(6, 64, 64))
    for epoch in epochs:
        (folder / f"{name}.{epoch}").write_bytes(b"")
    return prefix


def test_describe_reads_config_and_latest_weights(tmp_path):
    prefix = fake_checkpoint(tmp_path, epochs=(0, 3))
    file = cache.describe(prefix)
    assert file.name == "P" and file.config.input_height == 64
    assert file.weights.endswith("P.3")
    assert cache.checkpoint_prefix(f"{prefix}_config.json") == prefix
    with pytest.raises(ThinsegError, match="no such file"):
        cache.checkpoint_prefix(tmp_path / "Q")


def test_a_new_epoch_is_a_new_key(tmp_path):
    prefix = fake_checkpoint(tmp_path)
    before = cache.describe(prefix).key
    (tmp_path / "P.1").write_bytes(b"")
    assert cache.describe(prefix).key != before


def test_no_weights_is_refused(tmp_path):
    prefix = fake_checkpoint(tmp_path, epochs=())
    with pytest.raises(ThinsegError, match="no weights"):
        cache.describe(prefix)


def test_loaded_models_load_once_and_drop_the_least_recent(
    tmp_path, monkeypatch
):
    loads = []

    def load(prefix):
        loads.append(prefix.name)
        return f"model {prefix.name}", "config", "weights"

    monkeypatch.setattr(cache, "load_model", load)
    models = cache.LoadedModels(keep=2)
    files = [cache.describe(fake_checkpoint(tmp_path, name)) for name in "ABC"]
    assert models.load(files[0])[0] == "model A"
    assert models.load(files[0])[0] == "model A"
    assert loads == ["A"]
    models.load(files[1])
    models.load(files[0])  # A is now the most recent
    models.load(files[2])  # drops B
    assert len(models) == 2
    assert models.get(files[1].key) is None
    assert models.get(files[0].key) is not None
    assert loads == ["A", "B", "C"]


def test_loaded_models_are_safe_between_threads():
    models = cache.LoadedModels(keep=3)
    errors = []

    def work(k):
        try:
            for i in range(2000):
                models.put((k, i % 7), k, i)
                models.get((k, (i + 3) % 7))
                assert len(models) <= 3
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(models) == 3


def test_trained_models_keep_the_latest_and_tell_listeners():
    models = cache.TrainedModels(keep=1)
    calls = []

    class Listener:
        def changed(self):
            calls.append(len(models))

    listener = Listener()
    models.connect(listener.changed)
    models.add(cache.TrainedModel("m1", None, "one"))
    models.add(cache.TrainedModel("m2", None, "two"))
    assert [m.name for m in models.items()] == ["two"]
    assert models.latest().model == "m2" and calls == [1, 1]
    del listener  # held weakly: no longer called
    models.clear()
    assert calls == [1, 1] and len(models) == 0


def test_a_listener_of_a_deleted_widget_is_dropped():
    models = cache.TrainedModels()
    calls = []

    def deleted():
        calls.append(1)
        raise RuntimeError("wrapped C/C++ object has been deleted")

    models.connect(deleted)
    models.add(cache.TrainedModel("m", None, "m"))
    models.add(cache.TrainedModel("n", None, "n"))
    assert calls == [1]
