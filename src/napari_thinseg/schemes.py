"""Class schemes: the table of id, name and colour behind every label image.

A scheme travels with datasets and models as JSON (``classes.json``) and
lives in a napari Labels layer's ``features`` table. Label 0 always means
*unlabelled* and is not part of the scheme.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ThinsegError

SCHEME_FILENAME = "classes.json"
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class PetroClass:
    """One class of a scheme.

    Parameters
    ----------
    id : int
        Label value, 1..255 (0 is reserved for unlabelled pixels).
    name : str
        Name shown in napari's status bar, legends and tables.
    color : str
        ``#rrggbb`` hex colour.
    """

    id: int
    name: str
    color: str

    def __post_init__(self):
        if (
            not isinstance(self.id, int | np.integer)
            or not 1 <= self.id <= 255
        ):
            raise ThinsegError(f"class id must be 1..255, got {self.id!r}")
        if not str(self.name).strip():
            raise ThinsegError(f"class {self.id} has an empty name")
        if not _HEX.match(str(self.color)):
            raise ThinsegError(
                f"class {self.id} colour must be '#rrggbb', got {self.color!r}"
            )
        object.__setattr__(self, "id", int(self.id))
        object.__setattr__(self, "color", self.color.lower())

    @property
    def rgb(self) -> tuple[int, int, int]:
        """Colour as 0..255 integers."""
        return hex_to_rgb(self.color)


@dataclass(frozen=True)
class ClassScheme:
    """An ordered table of classes with unique ids and names.

    Parameters
    ----------
    name : str
        Name of the scheme (``"seed"``, ``"sandstone"`` or the user's).
    classes : tuple of PetroClass
        The classes, in id order.
    pore_ids : tuple of int
        Ids of the classes that are visual porosity (blue-dye epoxy).
    """

    name: str
    classes: tuple[PetroClass, ...]
    pore_ids: tuple[int, ...] = ()

    def __post_init__(self):
        classes = tuple(sorted(self.classes, key=lambda c: c.id))
        ids = [c.id for c in classes]
        if not classes:
            raise ThinsegError(f"class scheme {self.name!r} has no classes")
        if len(set(ids)) != len(ids):
            raise ThinsegError(f"class scheme {self.name!r} repeats an id")
        names = [c.name for c in classes]
        if len(set(names)) != len(names):
            raise ThinsegError(f"class scheme {self.name!r} repeats a name")
        missing = set(self.pore_ids) - set(ids)
        if missing:
            raise ThinsegError(
                f"pore class ids {sorted(missing)} are not in scheme "
                f"{self.name!r}"
            )
        object.__setattr__(self, "classes", classes)
        object.__setattr__(
            self, "pore_ids", tuple(int(i) for i in self.pore_ids)
        )

    # -- lookups -----------------------------------------------------------
    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.classes]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def max_id(self) -> int:
        return self.classes[-1].id

    @property
    def n_classes(self) -> int:
        """Number of model outputs: ids 0..max_id (keras-segmentation's
        ``n_classes`` counts the unlabelled 0 too)."""
        return self.max_id + 1

    def __getitem__(self, class_id: int) -> PetroClass:
        for c in self.classes:
            if c.id == class_id:
                return c
        raise KeyError(class_id)

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    def id_of(self, name: str) -> int:
        """Id of the class called ``name`` (case-insensitive; or by its
        old name, :data:`RENAMED_CLASSES`)."""
        for c in self.classes:  # an old seed name finds its class too
            if current_name(c.id, name).lower() == c.name.lower():
                return c.id
        raise KeyError(name)

    @property
    def pore_id(self) -> int:
        """The first pore class id (where auto-label puts blue epoxy)."""
        if not self.pore_ids:
            raise ThinsegError(f"class scheme {self.name!r} has no pore class")
        return self.pore_ids[0]

    # -- editing (schemes are immutable: each returns a new scheme) ---------
    def with_class(self, class_id: int, name: str, color: str) -> ClassScheme:
        """Add class ``class_id`` or replace its name and colour."""
        others = [c for c in self.classes if c.id != class_id]
        return ClassScheme(
            self.name,
            (*others, PetroClass(class_id, name, color)),
            self.pore_ids,
        )

    def recolored(self, colors: Mapping[int, str]) -> ClassScheme:
        """Same classes with some colours replaced (``{id: '#rrggbb'}``)."""
        return ClassScheme(
            self.name,
            tuple(
                PetroClass(c.id, c.name, colors.get(c.id, c.color))
                for c in self.classes
            ),
            self.pore_ids,
        )

    # -- serialisation -----------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "pore_ids": list(self.pore_ids),
            "classes": [
                {"id": c.id, "name": c.name, "color": c.color}
                for c in self.classes
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> ClassScheme:
        try:
            classes = tuple(
                PetroClass(
                    int(c["id"]),
                    current_name(c["id"], c["name"]),
                    str(c["color"]),
                )
                for c in data["classes"]
            )
            return cls(
                str(data.get("name", "custom")),
                classes,
                tuple(int(i) for i in data.get("pore_ids", ())),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ThinsegError(f"not a class scheme: {exc!r}") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClassScheme:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ThinsegError(
                f"class scheme is not valid JSON: {exc}"
            ) from None
        if not isinstance(data, dict):
            raise ThinsegError("class scheme JSON must be an object")
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        from .imaging.atomic import atomic_write_text

        return atomic_write_text(Path(path), self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ClassScheme:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ThinsegError(
                f"{path}: cannot read ({exc.strerror})"
            ) from None
        try:
            return cls.from_json(text)
        except ThinsegError as exc:
            raise ThinsegError(f"{path}: {exc}") from None

    # -- napari ------------------------------------------------------------
    def to_features(self) -> dict[str, list]:
        """Feature table for a napari Labels layer: one row per label value.

        napari looks a label value up in the ``index`` column to show its
        row in the status bar, so row 0 (unlabelled) is included.
        """
        return {
            "index": [0, *self.ids],
            "name": ["unlabelled", *self.names],
            "color": ["#00000000", *(c.color for c in self.classes)],
        }

    @classmethod
    def from_features(cls, features, name: str = "layer") -> ClassScheme:
        """Rebuild a scheme from a Labels layer's ``features`` table."""
        try:
            rows = zip(
                features["index"],
                features["name"],
                features["color"],
                strict=True,
            )
            classes = tuple(
                PetroClass(int(i), current_name(i, n), str(c)[:7])
                for i, n, c in rows
                if int(i) != 0
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ThinsegError(
                f"layer features are not a class scheme: {exc!r}"
            ) from None
        pores = tuple(c.id for c in classes if _looks_like_pore(c.name))
        return cls(name, classes, pores)

    def colormap_dict(self, alpha: float = 1.0) -> dict:
        """``{label: RGBA floats}`` for ``DirectLabelColormap``; ``None``
        (labels outside the scheme) is mid gray, 0 is transparent."""
        colors = {None: (0.5, 0.5, 0.5, alpha), 0: (0.0, 0.0, 0.0, 0.0)}
        for c in self.classes:
            colors[c.id] = (*(v / 255 for v in c.rgb), alpha)
        return colors

    def lut(self) -> np.ndarray:
        """256 x 3 uint8 lookup table id -> RGB (0 and unknown ids black)."""
        table = np.zeros((256, 3), np.uint8)
        for c in self.classes:
            table[c.id] = c.rgb
        return table


def hex_to_rgb(color: str) -> tuple[int, int, int]:
    """``'#rrggbb'`` -> ``(r, g, b)`` in 0..255."""
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def rgb_to_hex(rgb: Iterable[float]) -> str:
    """0..255 RGB triple -> ``'#rrggbb'``."""
    r, g, b = (int(round(float(v))) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _looks_like_pore(name: str) -> bool:
    name = name.lower()
    return "pore" in name or "epoxy" in name or "porosity" in name


SEED = ClassScheme(
    "seed",
    (
        PetroClass(1, "black (opaque) grains", "#1c1c1c"),
        PetroClass(2, "dark-gray grains", "#7a4b2a"),
        PetroClass(3, "blue-dye epoxy (visual porosity)", "#1f5fd0"),
        PetroClass(4, "medium-gray grains", "#c8a878"),
        PetroClass(5, "bright quartz grains", "#f3efe4"),
    ),
    pore_ids=(3,),
)
"""The seed's five gray-level classes (keras-segmentation annotations)."""

RENAMED_CLASSES = {
    (2, "darker grains"): "dark-gray grains",
    (4, "darker grains (medium gray)"): "medium-gray grains",
}
"""Old names of seed classes, ``(id, old name): new name``: schemes
saved with them (model configs, ``classes.json``, layers, sessions)
load with the new names, so they still match the seed's classes."""


def current_name(class_id: int, name: str) -> str:
    """A class's name, an old seed name (:data:`RENAMED_CLASSES`) made
    the current one."""
    return RENAMED_CLASSES.get((int(class_id), str(name)), str(name))


SANDSTONE = ClassScheme(
    "sandstone",
    (
        PetroClass(1, "pore", "#1f5fd0"),
        PetroClass(2, "quartz", "#f3efe4"),
        PetroClass(3, "feldspar", "#e2c39b"),
        PetroClass(4, "rock fragment", "#8a6446"),
        PetroClass(5, "carbonate grain", "#d8cba0"),
        PetroClass(6, "opaque", "#1c1c1c"),
        PetroClass(7, "quartz cement", "#cfe0e6"),
        PetroClass(8, "carbonate cement", "#efdcaa"),
        PetroClass(9, "clay", "#7d8a4c"),
        PetroClass(10, "other", "#b05aa8"),
    ),
    pore_ids=(1,),
)
"""A ten-class sandstone point-count scheme."""

BUILTIN_SCHEMES = {"seed": SEED, "sandstone": SANDSTONE}


def get_scheme(name_or_path: str | Path | ClassScheme | None) -> ClassScheme:
    """A built-in scheme by name, a scheme JSON file, or the scheme itself.

    ``None`` gives the seed scheme.
    """
    if name_or_path is None:
        return SEED
    if isinstance(name_or_path, ClassScheme):
        return name_or_path
    key = str(name_or_path)
    if key in BUILTIN_SCHEMES:
        return BUILTIN_SCHEMES[key]
    path = Path(key)
    if path.is_dir():
        path = path / SCHEME_FILENAME
    if not path.exists():
        raise ThinsegError(
            f"{key}: not a built-in scheme ({', '.join(BUILTIN_SCHEMES)}) "
            "nor a scheme JSON file"
        )
    return ClassScheme.load(path)


def scheme_near(
    path: str | Path, choice=None, n_classes: int | None = None
) -> ClassScheme:
    """The scheme asked for, else the ``classes.json`` of the dataset that
    ``path`` belongs to, else the seed scheme.

    For a labels file, ``classes.json`` is looked for beside it and in the
    folder above (a dataset's root); for a folder, in it and above it.
    Without one, ``n_classes`` other than the seed's gives generic class
    names (a model trained on an unnamed dataset).
    """
    if choice:
        return get_scheme(choice)
    path = Path(path)
    first = path if path.is_dir() else path.parent
    for folder in (first, first.parent):
        if (folder / SCHEME_FILENAME).is_file():
            return get_scheme(folder / SCHEME_FILENAME)
    if n_classes not in (None, SEED.n_classes):
        return generic_scheme(n_classes)
    return get_scheme(None)


def generic_scheme(n_classes: int) -> ClassScheme:
    """Classes 1..n-1 named "class k", coloured along a ramp."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return ClassScheme(
        f"{n_classes} classes",
        tuple(
            PetroClass(
                k,
                f"class {k}",
                rgb_to_hex(np.array(cmap(k % 20)[:3]) * 255),
            )
            for k in range(1, n_classes)
        ),
    )
