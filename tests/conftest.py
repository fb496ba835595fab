"""Test session set-up shared by every test module."""

import os


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
