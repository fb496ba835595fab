"""Test session set-up shared by every test module."""

import os
from pathlib import Path

import pytest

SLOW_MODULES = {
    # they train networks, run keras-segmentation beside ours, start dask
    # clusters or kill processes: minutes each; `pytest -m "not slow"`
    # leaves them out, CI runs them all
    "strokes/test_finetune.py",
    "training/test_train.py",
    "training/test_distribute.py",
    "cli/test_cli_train.py",
    "_napari/train/test_widget_train.py",
    "_napari/train/test_widget_train_defaults.py",
    "model/test_oracle_parity.py",
    "model/test_default_model.py",
    "inference/test_cluster.py",
    "inference/test_slide_memory.py",
    "inference/test_slide_resume.py",
    "test_faults.py",
    "test_fuzz.py",
}
TESTS = Path(__file__).parent


LONG_MODULES = (
    "test_robustness.py",
    "cli/test_cli_slide.py",
    "cli/test_cli_polars.py",
)
"""Not slow by the marker's measure, but with a test of a minute or more."""


def pytest_collection_modifyitems(config, items):
    """Mark the tests of :data:`SLOW_MODULES` ``slow``, and run the
    modules with long tests first: the two workers (pytest-xdist, a
    file each) then end together instead of one waiting on a long file
    handed out last."""
    long = SLOW_MODULES | set(LONG_MODULES)

    def relative(item):
        return Path(item.fspath).relative_to(TESTS).as_posix()

    for item in items:
        if relative(item) in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: relative(item) not in long)


def pytest_configure(config):
    """Load the OpenGL driver before anything imports TensorFlow.

    napari's canvas loads Mesa (and its LLVM) before a user ever trains;
    the test session imports TensorFlow first (model tests run before the
    viewer tests), and Mesa's LLVM loaded after TensorFlow's corrupts the
    heap at interpreter exit. Making one GL context up front gives the
    tests the order real use has.
    """
    if not os.environ.get("DISPLAY"):
        return
    from napari.qt import get_qapp
    from qtpy.QtWidgets import QOpenGLWidget

    app = get_qapp()
    widget = QOpenGLWidget()
    widget.resize(8, 8)
    widget.show()
    app.processEvents()
    widget.makeCurrent()
    widget.doneCurrent()
    widget.close()
    widget.deleteLater()
    app.processEvents()
    # and TensorFlow as napari users get it, after the canvas: tests that
    # `import keras` directly would otherwise load it bound to Mesa's LLVM
    # and crash in its static initialisers (seen on Intel Xeon machines)
    from napari_thinseg.model.backend import tensorflow

    tensorflow()


@pytest.fixture
def notes(monkeypatch):
    """Notifications the widgets show, by kind."""
    from napari_thinseg._napari import notify

    seen = {"error": [], "info": [], "warning": []}
    for kind in seen:
        monkeypatch.setattr(
            notify, f"show_{kind}", lambda msg, k=kind: seen[k].append(msg)
        )
    return seen


@pytest.fixture
def no_trained_models():
    """The test starts and ends with an empty model registry."""
    from napari_thinseg.model.cache import loaded_models, trained_models

    trained_models.clear()
    loaded_models.clear()
    yield
    trained_models.clear()
    loaded_models.clear()


@pytest.fixture
def no_default_model(monkeypatch):
    """Pretend the default model is not installed (as before it shipped,
    or in a wheel built without ``weights/``)."""
    from napari_thinseg.errors import ThinsegError
    from napari_thinseg.model import checkpoints

    def missing():
        raise ThinsegError(
            "the default model is not installed (weights/"
            "thinseg_default_config.json); give --checkpoints_path"
        )

    shipped = checkpoints.shipped_model_prefix

    def shipped_but_default(name: str = "default"):
        return missing() if name == "default" else shipped(name)

    monkeypatch.setattr(checkpoints, "default_model_prefix", missing)
    monkeypatch.setattr(
        checkpoints, "shipped_model_prefix", shipped_but_default
    )
    monkeypatch.setattr(
        "napari_thinseg._napari.widgets.predict.model_choice.default_model_prefix",
        missing,
    )


@pytest.fixture
def sandstone_model():
    """The shipped sandstone model's prefix; the test is skipped (with the
    reason) where it is not installed, as in a wheel built without
    ``weights/``."""
    from napari_thinseg.errors import ThinsegError
    from napari_thinseg.model import checkpoints

    try:
        return checkpoints.shipped_model_prefix("sandstone")
    except ThinsegError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def default_model():
    """The shipped default model, loaded once: ``(model, config)``; the
    test is skipped where it is not installed."""
    from napari_thinseg.errors import ThinsegError
    from napari_thinseg.model import checkpoints

    try:
        prefix = checkpoints.shipped_model_prefix("default")
    except ThinsegError as exc:
        pytest.skip(str(exc))
    model, config, _ = checkpoints.load_model(prefix)
    return model, config
