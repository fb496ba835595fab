"""napari-thinseg: segment petrographic thin sections in napari.

The pipeline, module by module: :mod:`.classes` (class schemes) and
:mod:`.colormap` -> :mod:`.autolabel` -> :mod:`.dataset` -> model, train,
predict -> analysis. None of them imports napari or Qt; the widgets under
:mod:`._widgets` and :mod:`.cli` are thin shells over them.
"""

__version__ = "0.1.0"

from .autolabel import AutoLabelParams, EpoxyWindow, autolabel
from .classes import SANDSTONE, SEED, ClassScheme, PetroClass, get_scheme
from .errors import ThinsegError

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
