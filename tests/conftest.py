"""Test session set-up shared by every test module."""

import os

import pytest


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

    monkeypatch.setattr(checkpoints, "default_model_prefix", missing)
    for module in ("model_choice", "train_form"):
        monkeypatch.setattr(
            f"napari_thinseg._napari.widgets.{module}.default_model_prefix",
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
