"""TensorFlow, imported once, quietly and safely next to napari.

Everything that needs TensorFlow calls :func:`tensorflow` first, inside a
function: importing the package (and opening napari) never loads it.
"""

from __future__ import annotations

import os
import sys
import threading

from ..errors import ThinsegError

# before TensorFlow is first imported: the TF backend, and no C++ log spam
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

_TF_LOCK = threading.Lock()


def tensorflow():
    """Import TensorFlow once, safely next to napari, quietly; return it.

    Three traps, all met in practice:

    * TensorFlow's native code writes log lines (oneDNN, CUDA probing) to
      file descriptor 2 before any Python setting applies; they would bury
      the CLI's one-line messages, so stderr is closed while it starts.
    * TensorFlow carries its own copy of LLVM; Mesa's OpenGL drivers
      (napari's canvas under llvmpipe, radeonsi...) load the system one.
      A TensorFlow loaded after the canvas binds to Mesa's copy and crashes
      during import: ``RTLD_DEEPBIND`` makes its libraries use their own
      symbols first (process-wide while the import runs, then restored).
    * pybind11 remembers the thread state of the thread that first imports
      it; a napari ``thread_worker`` runs on a pooled thread whose state is
      dropped when the worker ends, and the next worker there would crash.
      So the import runs in a short-lived thread of its own.

    Raises
    ------
    ThinsegError
        TensorFlow is not installed or failed to load.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    outcome: dict = {}
    done = threading.Event()

    def load():
        flags = sys.getdlopenflags()
        deepbind = getattr(os, "RTLD_DEEPBIND", 0)  # glibc only
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            sys.setdlopenflags(flags | deepbind)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
            import tensorflow as tf

            tf.config.list_physical_devices()  # the CUDA probe logs here
            outcome["tf"] = tf
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sys.setdlopenflags(flags)
            done.set()

    with _TF_LOCK:
        if "tensorflow" not in sys.modules:
            thread = threading.Thread(
                target=load, name="thinseg-import-tensorflow", daemon=True
            )
            thread.start()
            try:
                done.wait()
            except KeyboardInterrupt:
                # stderr is closed until the import ends: wait for it to
                # come back so that "interrupted" can be read
                done.wait()
                raise
            error = outcome.get("error")
            if isinstance(error, ImportError):
                raise ThinsegError(
                    f"TensorFlow could not be loaded ({error}); training and "
                    "prediction need the 'tensorflow' package"
                ) from None
            if error is not None:
                raise error
    return sys.modules["tensorflow"]
