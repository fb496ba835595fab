"""napari-thinseg: segment petrographic thin sections in napari.

The folders follow the jobs: :mod:`.imaging` (image files and
conversions) and :mod:`.schemes` (class schemes) at the bottom, then
:mod:`.autolabel` (the gray-level rule, the epoxy finder) ->
:mod:`.dataset` (folders, augmentation, synthetic sandstones) ->
:mod:`.model` (the VGG-UNet family) -> :mod:`.training` ->
:mod:`.inference` (photos, whole slides, clusters) -> :mod:`.strokes`
(the correction loop) -> :mod:`.measure` -> :mod:`.rocktype`;
:mod:`.errors`, :mod:`.progress`, :mod:`.prefetch` and :mod:`.colorize`
are the foundation. None of them imports napari or Qt; :mod:`.cli` and
:mod:`._napari` (reader, writer, samples, widgets) are thin shells over
them. ``tests/test_layout.py`` checks these rules.
"""

from ._version import __version__
from .autolabel.rule import AutoLabelParams, EpoxyWindow, autolabel
from .errors import ThinsegError
from .schemes import SANDSTONE, SEED, ClassScheme, PetroClass, get_scheme

__all__ = [
    "SANDSTONE",
    "SEED",
    "AutoLabelParams",
    "ClassScheme",
    "EpoxyWindow",
    "PetroClass",
    "ThinsegError",
    "__version__",
    "autolabel",
    "get_scheme",
]
