"""napari-thinseg: segment petrographic thin sections in napari.

The folders follow the pipeline: :mod:`.imaging` (image files and
conversions) and :mod:`.schemes` (class schemes) at the bottom, then
:mod:`.autolabel` -> :mod:`.dataset` (+ :mod:`.augment`) -> :mod:`.model`
(the VGG-UNet family) -> :mod:`.train` -> :mod:`.predict` (+
:mod:`.tiling`, :mod:`.metrics`) -> :mod:`.measure` -> :mod:`.rocktype`;
:mod:`.colorize` and :mod:`.synth` beside them. None of them imports napari
or Qt; :mod:`.cli` and :mod:`._napari` (reader, writer, samples, widgets)
are thin shells over them. ``tests/test_layout.py`` checks these rules.
"""

from ._version import __version__
from .autolabel import AutoLabelParams, EpoxyWindow, autolabel
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
