"""TensorFlow, imported once, quietly and safely next to napari; and the
precision the network computes in.

Everything that needs TensorFlow calls :func:`tensorflow` first, inside a
function: importing the package (and opening napari) never loads it.
:func:`resolve_precision` turns a ``precision`` option into float32,
bfloat16 (CPUs with native bfloat16) or float16 (GPUs), and
:func:`dtype_policy` builds a model under the matching Keras mixed
precision policy without leaving it set.
"""

from __future__ import annotations

import contextlib
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


# -- precision ---------------------------------------------------------------
PRECISIONS = ("auto", "float32", "bfloat16", "float16")
"""What ``precision=`` accepts; ``auto`` picks with :func:`auto_precision`."""

POLICIES = {
    "float32": "float32",
    "bfloat16": "mixed_bfloat16",
    "float16": "mixed_float16",
}
"""The Keras dtype policy of each precision: mixed ones compute in 16 bits
and keep their variables (and so checkpoints) in float32."""

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags (``/proc/cpuinfo``) of native bfloat16 dot products."""


def cpu_flags(path: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags (empty where there is no ``/proc/cpuinfo``:
    macOS, Windows)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU."""
    return bool(tensorflow().config.list_physical_devices("GPU"))


def auto_precision() -> str:
    """``float16`` on a GPU, ``bfloat16`` on a CPU with native bfloat16
    (AVX512-BF16 or AMX), else ``float32``: 16-bit compute only where the
    hardware makes it faster."""
    if has_gpu():
        return "float16"
    if cpu_flags() & BF16_CPU_FLAGS:
        return "bfloat16"
    return "float32"


def resolve_precision(precision: str = "auto") -> str:
    """``float32``, ``bfloat16`` or ``float16`` for a ``precision`` option.

    Raises
    ------
    ThinsegError
        Not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ThinsegError(
            f"unknown precision {precision!r} (use {', '.join(PRECISIONS)})"
        )
    return auto_precision() if precision == "auto" else precision


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build Keras layers under ``precision``'s dtype policy (a resolved
    precision); the previous policy is back afterwards, so no later build
    inherits it. Keras keeps the policy per thread."""
    tensorflow()
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(POLICIES[precision])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def replica_devices(devices: int | None = None) -> list[str]:
    """The devices one training runs on, as ``tf.distribute`` names them:
    every GPU when there are several (``devices`` None), else ``devices``
    of them (GPUs, or logical CPUs where there are not enough GPUs, as in
    tests); ``[]`` for one device."""
    tf = tensorflow()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if devices is None:
        return gpus if len(gpus) > 1 else []
    if devices <= 1:
        return []
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    pool = gpus if len(gpus) >= devices else cpus
    if len(pool) < devices:
        raise ThinsegError(
            f"{devices} devices asked for, this machine has {len(gpus)} "
            f"GPU(s) and {len(cpus)} logical CPU device(s)"
        )
    return pool[:devices]


def outer_strategy():
    """The ``tf.distribute`` strategy whose scope the caller has opened
    around training (a ``MultiWorkerMirroredStrategy`` over several
    machines, say), or None."""
    tf = tensorflow()
    return (
        tf.distribute.get_strategy() if tf.distribute.has_strategy() else None
    )


def replica_scope(devices: list[str]):
    """Where to build and compile a network that trains on ``devices``: a
    ``tf.distribute.MirroredStrategy`` scope (each batch split across
    them, gradients summed) for two or more, else nothing."""
    if len(devices) < 2:
        return contextlib.nullcontext()
    return tensorflow().distribute.MirroredStrategy(devices).scope()


def split_batch(strategy, *arrays):
    """``arrays`` (a batch each) cut into one equal part per replica of
    ``strategy`` (``model.distribute_strategy``), as the per-replica
    values ``train_on_batch`` hands each device; as they are for one
    replica. Without the cut every device would train on the whole
    batch: the same gradients, no work shared."""
    n = strategy.num_replicas_in_sync
    if n < 2:
        return arrays

    def parts(array):
        size = len(array) // n

        def part(context):
            k = context.replica_id_in_sync_group
            return array[k * size : (k + 1) * size]

        return strategy.experimental_distribute_values_from_function(part)

    return tuple(parts(a) for a in arrays)
