"""Checkpoints in keras-segmentation's layout, read and written safely.

``P_config.json`` holds keras-segmentation's keys (model_class, n_classes,
input and output sizes) and ours (class scheme, preprocessing, version,
training data); each epoch's weights go next to it as ``P.<epoch>``, and the
latest is the largest epoch number, found as keras-segmentation finds it.

We write ``P.<epoch>`` as a Keras-2 style HDF5 weights file (the layout
standalone Keras <= 2.3, i.e. keras-segmentation 0.3.0, wrote there), which
tf.keras's ``load_weights`` also reads, so checkpoints move both ways. We
read that layout, TensorFlow checkpoints (``P.<epoch>.index`` +
``.data-*``, what tf.keras 2.4+ writes) and Keras 3 ``.weights.h5`` files.
Every write goes to a temporary file that is renamed into place, so a crash
never leaves a half-written file as the latest checkpoint. Writers hold a
shared lock on the folder while they write; the next write under a prefix
removes that prefix's temporary files when no writer holds the lock (their
writer was killed), so ``kill -9`` leaves no litter for long.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ThinsegError
from ..imaging.atomic import atomic_write_bytes, atomic_write_text, ensure_dir
from .config import ModelConfig
from .keras_archive import load_keras_file
from .vgg_unet import build
from .weights import assign_weights, encode_hdf5_weights, read_weights

CONFIG_SUFFIX = "_config.json"


# -- config ------------------------------------------------------------------
def config_path(prefix: str | Path) -> Path:
    return Path(f"{prefix}{CONFIG_SUFFIX}")


def write_config(prefix: str | Path, config: ModelConfig) -> Path:
    path = config_path(prefix)
    text = json.dumps(config.to_json_dict(), indent=2)
    with _writing(prefix):
        return atomic_write_text(path, text + "\n")


def read_config(prefix: str | Path) -> ModelConfig:
    """Read and validate ``P_config.json`` before anything is built."""
    path = config_path(prefix)
    if not path.is_file():
        raise ThinsegError(f"{path}: no such checkpoint config")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ThinsegError(
            f"{path}: not a readable JSON config ({exc})"
        ) from None
    return ModelConfig.from_json_dict(data, str(path))


# -- finding epochs ----------------------------------------------------------
def list_checkpoints(prefix: str | Path) -> dict[int, str]:
    """``{epoch: weights path}`` of ``P.<epoch>`` files and TF checkpoints.

    keras-segmentation 0.3.0 globs ``P.*`` and keeps names whose rest is a
    number; we do the same and also take ``P.<epoch>.index`` (tf.keras).
    """
    prefix = str(prefix)
    found: dict[int, str] = {}
    for path in glob.glob(glob.escape(prefix) + ".*"):
        rest = path[len(prefix) :].strip(".")
        if rest.isdigit() and os.path.isfile(path):
            found[int(rest)] = path
        else:
            m = re.fullmatch(r"(\d+)\.index", rest)
            if m and int(m.group(1)) not in found:
                found[int(m.group(1))] = path[: -len(".index")]
    return found


def remove_checkpoints(prefix: str | Path) -> None:
    """Delete every epoch's weights under ``prefix`` (asked-for overwrite:
    a stale later epoch would otherwise still be "latest")."""
    for path in list_checkpoints(prefix).values():
        for f in glob.glob(glob.escape(path) + ".*") + [path]:
            if re.search(r"\.(\d+|index|data-\d+-of-\d+)$", f):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f)


def find_latest_checkpoint(prefix: str | Path) -> str | None:
    """The weights path of the largest epoch, or None."""
    found = list_checkpoints(prefix)
    return found[max(found)] if found else None


# -- writing weights ---------------------------------------------------------
def save_checkpoint(prefix: str | Path, epoch: int, model, dtype=None) -> Path:
    """Write ``P.<epoch>`` atomically and return its path.

    Temporary files of ``P`` that killed writers left are removed first.
    """
    path = Path(f"{prefix}.{int(epoch)}")
    data = encode_hdf5_weights(model, dtype)
    with _writing(prefix):
        return atomic_write_bytes(path, data)


STALE_TEMP_SECONDS = 3600.0
"""Where folders cannot be locked (Windows, some network file systems),
temporary files this old count as left by a dead writer."""


def temp_file_pattern(prefix: str | Path) -> re.Pattern:
    """Names of the temporary files :func:`save_checkpoint` and
    :func:`write_config` make for ``prefix`` (``atomic_write_bytes``:
    ``.<name>.<8 mkstemp characters>.part``), and of nothing else: other
    prefixes' (``P2``, ``P.1``) and foreign files never match."""
    name = re.escape(Path(prefix).name)
    config = re.escape(CONFIG_SUFFIX)
    return re.compile(rf"\.{name}(?:\.\d+|{config})\.[a-z0-9_]{{8}}\.part")


def remove_stale_temp_files(
    prefix: str | Path, min_age: float = 0.0
) -> list[Path]:
    """Delete ``prefix``'s temporary files (at least ``min_age`` seconds
    old); return what was deleted. Only safe while no live writer of the
    folder can be mid-write: :func:`_writing` makes sure of that."""
    prefix = Path(prefix)
    pattern = temp_file_pattern(prefix)
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(prefix.parent))
    except OSError:
        return removed
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if min_age and now - entry.stat().st_mtime < min_age:
                continue
            os.unlink(entry.path)
        except OSError:  # gone already, or not ours to delete
            continue
        removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def _writing(prefix: str | Path):
    """Write ``prefix``'s files under the folder's shared writers' lock.

    A process killed mid-write leaves its temporary file behind and, dying,
    drops its lock; so whoever gets the lock exclusively knows that every
    temporary file there is dead and removes ``prefix``'s. Then it writes
    holding the lock shared (writers wait only for a clean-up), and syncs
    the folder so the rename survives a power cut too.
    """
    folder = Path(prefix).parent
    ensure_dir(folder)
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):  # Windows: no folder locks
        remove_stale_temp_files(prefix, STALE_TEMP_SECONDS)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # another writer is busy: its temporary file is alive
        except OSError:  # no flock here (NFS needs a writable file)
            remove_stale_temp_files(prefix, STALE_TEMP_SECONDS)
        else:
            remove_stale_temp_files(prefix)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)  # drops the lock


# -- models ------------------------------------------------------------------
SHIPPED_MODELS = {
    "default": "thinseg_default",
    "sandstone": "thinseg_sandstone",
}
"""The models in ``weights/``, by the name the CLI and widgets use:
``default`` (the seed's gray-level classes) and ``sandstone`` (minerals,
the ``sandstone`` scheme)."""
DEFAULT_MODEL_NAME = SHIPPED_MODELS["default"]


def shipped_model_prefix(name: str = "default") -> Path:
    """Checkpoints prefix of a shipped model (see :data:`SHIPPED_MODELS`).

    Wheels carry them inside the package (``napari_thinseg/weights``); a
    source checkout has them in the repository's ``weights/``.
    """
    if name not in SHIPPED_MODELS:
        raise ThinsegError(
            f"unknown model {name!r} (shipped: {', '.join(SHIPPED_MODELS)})"
        )
    file = SHIPPED_MODELS[name]
    package = Path(__file__).resolve().parents[1]
    for folder in (package / "weights", package.parents[1] / "weights"):
        prefix = folder / file
        if config_path(prefix).is_file():
            return prefix
    raise ThinsegError(
        f"the {name} model is not installed (weights/{file}_config.json); "
        "give --checkpoints_path"
    )


def default_model_prefix() -> Path:
    """Checkpoints prefix of the shipped default model."""
    return shipped_model_prefix("default")


def model_prefix(name_or_path: str | Path) -> Path:
    """A shipped model's prefix by name (``default``, ``sandstone``), else
    ``name_or_path`` itself (a checkpoints path)."""
    if str(name_or_path) in SHIPPED_MODELS:
        return shipped_model_prefix(str(name_or_path))
    return Path(name_or_path)


def shipped_model_of(class_names) -> str | None:
    """The name of the shipped model whose classes are ``class_names``
    (a scheme's names, in order), if one is installed: what a run on
    labels of that scheme starts from when nothing else is chosen."""
    for name in SHIPPED_MODELS:
        try:
            config = read_config(shipped_model_prefix(name))
        except ThinsegError:
            continue  # not installed
        if tuple(config.class_scheme.names) == tuple(class_names):
            return name
    return None


def resolve_prefix(path: str | Path) -> Path:
    """A checkpoints prefix from a prefix, its config file, or a folder
    holding exactly one ``*_config.json``."""
    path = Path(path)
    if path.name.endswith(CONFIG_SUFFIX):
        return path.with_name(path.name[: -len(CONFIG_SUFFIX)])
    if path.is_dir():
        configs = sorted(path.glob(f"*{CONFIG_SUFFIX}"))
        if len(configs) == 1:
            return resolve_prefix(configs[0])
        if not configs:
            raise ThinsegError(f"{path}: folder holds no *{CONFIG_SUFFIX}")
        raise ThinsegError(
            f"{path}: folder holds {len(configs)} checkpoint configs; name one"
        )
    return path


def load_model(path: str | Path, epoch: int | None = None):
    """Build the model of a checkpoint and load its latest (or given) epoch.

    Returns
    -------
    model, config, weights_path
    """
    if str(path).endswith(".keras"):
        if epoch is not None:
            raise ThinsegError(f"{path}: a .keras file holds a single epoch")
        model, config = load_keras_file(path)
        return model, config, str(path)
    prefix = resolve_prefix(path)
    config = read_config(prefix)
    found = list_checkpoints(prefix)
    if not found:
        raise ThinsegError(f"{prefix}: no weights ({prefix}.<epoch>) found")
    if epoch is None:
        epoch = max(found)
    if epoch not in found:
        raise ThinsegError(f"{prefix}: no weights for epoch {epoch}")
    weights = read_weights(found[epoch])
    model = build(config)
    assign_weights(model, weights, found[epoch])
    return model, config, found[epoch]


# -- what a training run does with existing checkpoints ---------------------
@dataclass(frozen=True)
class CheckpointPlan:
    """What a training run does at its checkpoints prefix: start at
    ``start_epoch`` (from ``resume_from`` weights when resuming), and first
    remove the old epochs when ``replace``."""

    prefix: Path | None
    start_epoch: int = 0
    resume_from: str | None = None
    replace: bool = False


def exist_at(prefix: str | Path | None) -> bool:
    """Whether ``prefix`` holds a config or any epoch's weights."""
    return prefix is not None and bool(
        list_checkpoints(prefix) or config_path(prefix).exists()
    )


def plan_checkpoints(
    prefix: str | Path | None,
    config: ModelConfig,
    auto_resume: bool = False,
    overwrite: bool = False,
    choices: str = "resume with auto_resume_checkpoint, or overwrite",
) -> CheckpointPlan:
    """The one rule for checkpoints already at ``prefix``, used by the CLI
    and the Train widget alike: resume from the latest epoch (same classes
    and input size only), replace them all (asked for), or refuse.

    ``choices`` tells the user, in the words of their interface, how to
    resume or overwrite.
    """
    if prefix is None:
        return CheckpointPlan(None)
    prefix = Path(prefix)
    existing = list_checkpoints(prefix)
    if auto_resume and existing:
        old = read_config(prefix)
        if (old.n_classes, old.input_height, old.input_width) != (
            config.n_classes,
            config.input_height,
            config.input_width,
        ):
            raise ThinsegError(
                f"{prefix}: checkpoints are for {old.n_classes} classes "
                f"at {old.input_height}x{old.input_width}; cannot resume "
                f"with {config.n_classes} at "
                f"{config.input_height}x{config.input_width}"
            )
        last = max(existing)
        return CheckpointPlan(prefix, last + 1, existing[last])
    if exist_at(prefix) and not overwrite:
        raise ThinsegError(f"{prefix}: checkpoints already exist ({choices})")
    return CheckpointPlan(prefix, replace=overwrite)
