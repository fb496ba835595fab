"""Which open photos are the plane- and crossed-polarised views of one
field: the rule the widgets follow to stack a photo with its twin.

Two rules, the first one that pairs a photo wins:

* **by name**: ``"<image> XPL"`` (also ``_xpl``, ``-crossed``,
  ``" crossed polars"``... :data:`NAME_SUFFIXES`, any case) is
  ``<image>``'s crossed-polarised twin;
* **by file**: two files whose paths are the same once the view words are
  taken out of every folder name and of the file's stem (``ppl`` /
  ``xpl``, ``plane`` / ``crossed``... :data:`PLANE_WORDS`,
  :data:`CROSSED_WORDS`, any case), and of which one only has a crossed
  word: ``ppl/7a.jpg`` and ``xpl/7a.jpg``, ``PPL/7a.png`` and
  ``XPL/7a.tif``, ``7a_plane.png`` and ``7a_crossed.png``,
  ``images/7a.png`` and ``images_xpl/7a.png`` (a dataset's folders).
  The extension does not count; both photos must be the same size.

A photo is never its own twin, and each is in one pair at most.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

PLANE_WORDS = ("ppl", "plane", "ppol", "parallel")
"""Words of a path that say plane-polarised light."""

CROSSED_WORDS = ("xpl", "crossed", "cpl", "xpol")
"""Words of a path that say crossed polars."""

NAME_SUFFIXES = ("xpl", "(xpl)", "crossed", "crossed polars", "npx")
"""``"<image> <suffix>"`` (or with ``_`` or ``-``) names a photo as
``<image>``'s crossed-polarised twin."""

_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class View:
    """One open photo: its name, the file it was read from (if any) and
    its (rows, cols) (if known)."""

    name: str
    path: str | None = None
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ViewPair:
    """A plane-polarised photo and its crossed-polarised twin (indices
    into the views given), and the rule that paired them (``"name"`` or
    ``"file"``)."""

    plane: int
    crossed: int
    rule: str


def _words(text: str) -> list[str]:
    return [w for w in _WORD.split(text.lower()) if w]


def view_of_path(path: str | PurePath) -> str | None:
    """``"crossed"`` or ``"plane"`` when a folder of ``path`` or its stem
    says so (a crossed word wins), else None."""
    p = PurePath(path)
    words = {w for part in (*p.parent.parts, p.stem) for w in _words(part)}
    if words & set(CROSSED_WORDS):
        return "crossed"
    if words & set(PLANE_WORDS):
        return "plane"
    return None


def field_key(path: str | PurePath) -> tuple:
    """``path`` without its view words and extension: the same for the
    plane- and crossed-polarised files of one field."""
    p = PurePath(path)
    views = set(PLANE_WORDS) | set(CROSSED_WORDS)
    return tuple(
        tuple(w for w in _words(part) if w not in views)
        for part in (*p.parent.parts, p.stem)
    )


def _same_size(a: View, b: View) -> bool:
    return a.shape is None or b.shape is None or a.shape == b.shape


def _name_pairs(views: Sequence[View]) -> list[ViewPair]:
    by_name: dict[str, int] = {}
    for j, view in enumerate(views):
        by_name.setdefault(view.name.lower(), j)
    pairs = []
    for i, view in enumerate(views):
        for suffix in NAME_SUFFIXES:
            j = next(
                (
                    k
                    for sep in (" ", "_", "-")
                    if (k := by_name.get(f"{view.name}{sep}{suffix}".lower()))
                    is not None
                    and k != i
                ),
                None,
            )
            if j is not None:
                pairs.append(ViewPair(i, j, "name"))
                break
    return pairs


def _file_pairs(views: Sequence[View], taken: set[int]) -> list[ViewPair]:
    groups: dict[tuple, list[int]] = {}
    for i, view in enumerate(views):
        if view.path and i not in taken:
            groups.setdefault(field_key(view.path), []).append(i)
    pairs = []
    for members in groups.values():
        kinds = {i: view_of_path(views[i].path) for i in members}
        crossed = [i for i in members if kinds[i] == "crossed"]
        # plane-marked photos first, then unmarked ones
        plane = [i for i in members if kinds[i] == "plane"]
        plane += [i for i in members if kinds[i] is None]
        for c in crossed:
            match = next(
                (
                    p
                    for p in plane
                    if p not in taken
                    and views[p].path != views[c].path
                    and _same_size(views[p], views[c])
                ),
                None,
            )
            if match is not None:
                pairs.append(ViewPair(match, c, "file"))
                taken.update((match, c))
    return pairs


def pair_views(views: Sequence[View]) -> list[ViewPair]:
    """The plane + crossed polars pairs among ``views`` (see the module
    docstring), in the order of their plane photos."""
    pairs, taken = [], set()
    for pair in _name_pairs(views):
        if pair.plane not in taken and pair.crossed not in taken:
            pairs.append(pair)
            taken.update((pair.plane, pair.crossed))
    pairs += _file_pairs(views, taken)
    return sorted(pairs, key=lambda p: p.plane)


def crossed_twin(views: Sequence[View], index: int) -> int | None:
    """The index of ``views[index]``'s crossed-polarised twin, or None."""
    for pair in pair_views(views):
        if pair.plane == index:
            return pair.crossed
    return None


def pair_text(views: Sequence[View], pair: ViewPair) -> str:
    """``"'7a' + '7a [1]' (ppl/7a.jpg, xpl/7a.jpg)"``: a pair as the user
    reads it (the files' last folder and name when paired by file)."""
    plane, crossed = views[pair.plane], views[pair.crossed]
    text = f"{plane.name!r} + {crossed.name!r}"
    if pair.rule == "file":
        files = [
            "/".join(PurePath(v.path).parts[-2:]) for v in (plane, crossed)
        ]
        text += f" ({files[0]}, {files[1]})"
    return text
