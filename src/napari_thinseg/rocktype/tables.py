"""The tables a study brings: plug samples and image features.

The samples table holds one row per core plug (``sample``, porosity,
``permeability_md`` and the optional ``image``, ``rock_type``,
``formation`` and ``pixel_size_um``); rows without plug data are images
to predict. Image features come from ``measure(...).to_row()`` (of
:mod:`napari_thinseg.measure`) or a features CSV, one numeric row per
sample. Both are checked here and handed to :mod:`.study` in API units:
porosity as a fraction, permeability in millidarcy (mD).
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from ..progress import Progress

_SAMPLE = ("sample", "name", "sample_id", "id")
_PERM = ("permeability_md", "permeability", "perm_md", "perm", "k_md", "k")
_PHI_ANY = ("porosity", "phi")
_PHI_FRACTION = ("porosity_fraction", "phi_fraction")
_PHI_PERCENT = ("porosity_percent", "porosity_pct", "phi_percent")
_IMAGE = ("image", "image_path", "image_file")
_ROCK_TYPE = ("rock_type", "rocktype")
_FORMATION = ("formation",)
_PIXEL = ("pixel_size_um",)
_MISSING = ("", "na", "n/a", "nan", "none", "null", "-")


# -- samples -----------------------------------------------------------------
@dataclass(frozen=True)
class Samples:
    """The samples table, checked and in API units.

    ``porosity`` and ``permeability_md`` are NaN where not measured (a row
    with only an image: to be predicted). Text columns hold ``None`` where
    empty; ``rock_types``/``formations``/``images`` are ``None`` when the
    table had no such column.
    """

    names: tuple[str, ...]
    porosity: np.ndarray
    permeability_md: np.ndarray
    images: tuple[str | None, ...] | None = None
    rock_types: tuple[str | None, ...] | None = None
    formations: tuple[str | None, ...] | None = None
    pixel_size_um: np.ndarray | None = None
    porosity_note: str = "porosity given as a fraction"
    source: str = "samples"

    def __len__(self) -> int:
        return len(self.names)

    @property
    def measured(self) -> np.ndarray:
        """Rows with both porosity and permeability."""
        return np.isfinite(self.porosity) & np.isfinite(self.permeability_md)


def add_unmeasured(
    samples: Samples,
    names: Sequence[str],
    images: Sequence[str | None] | None = None,
) -> Samples:
    """``samples`` with rows appended that have no plug data (new images
    to predict)."""
    k = len(names)
    if not k:
        return samples
    images = list(images) if images is not None else [None] * k

    def grow(values, fill):
        return None if values is None else (*values, *fill)

    has_images = samples.images is not None or any(images)
    return Samples(
        names=(*samples.names, *names),
        porosity=np.r_[samples.porosity, np.full(k, np.nan)],
        permeability_md=np.r_[samples.permeability_md, np.full(k, np.nan)],
        images=(
            (*(samples.images or (None,) * len(samples)), *images)
            if has_images
            else None
        ),
        rock_types=grow(samples.rock_types, (None,) * k),
        formations=grow(samples.formations, (None,) * k),
        pixel_size_um=(
            None
            if samples.pixel_size_um is None
            else np.r_[samples.pixel_size_um, np.full(k, np.nan)]
        ),
        porosity_note=samples.porosity_note,
        source=samples.source,
    )


def _norm(header: str) -> str:
    return "_".join(str(header).strip().lower().replace("-", " ").split())


def _pick(columns: Mapping[str, Sequence], names, what, source):
    hits = [c for c in columns if _norm(c) in names]
    if len(hits) > 1:
        raise ThinsegError(
            f"{source}: {len(hits)} {what} columns ({', '.join(hits)}); "
            "keep one"
        )
    return hits[0] if hits else None


def _text(values) -> tuple[str | None, ...]:
    out = []
    for v in values:
        s = "" if v is None else str(v).strip()
        out.append(None if s.lower() in _MISSING else s)
    return tuple(out)


def _numbers(values, column, names, source) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        s = str(v).strip()
        if s.lower() in _MISSING:
            continue
        try:
            out[i] = float(s)
        except ValueError:
            raise ThinsegError(
                f"{source}: sample {names[i]!r}: {column} {s!r} is not a "
                "number"
            ) from None
        if not math.isfinite(out[i]):
            raise ThinsegError(
                f"{source}: sample {names[i]!r}: {column} is {s}"
            )
    return out


def _sample_names(columns: Mapping[str, Sequence], source) -> tuple[str, ...]:
    """The sample names, refusing an empty or ragged table and missing or
    repeated names."""
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ThinsegError(f"{source}: columns of different lengths")
    if not lengths or not lengths.pop():
        raise ThinsegError(f"{source}: no samples")
    sample_col = _pick(columns, _SAMPLE, "sample", source)
    if sample_col is None:
        raise ThinsegError(
            f"{source}: no 'sample' column (columns: {', '.join(columns)})"
        )
    names = _text(columns[sample_col])
    for i, n in enumerate(names):
        if n is None:
            raise ThinsegError(f"{source}: row {i + 1} has no sample name")
    dup = [n for n, c in Counter(names).items() if c > 1]
    if dup:
        raise ThinsegError(f"{source}: sample {dup[0]!r} listed twice")
    return names


def _porosity_columns(columns: Mapping[str, Sequence], source):
    """``({"any" | "fraction" | "percent": column or None}, the one given
    or None)``, refusing more than one porosity column."""
    phi_cols = {
        kind: _pick(columns, group, f"{kind} porosity", source)
        for kind, group in (
            ("any", _PHI_ANY),
            ("fraction", _PHI_FRACTION),
            ("percent", _PHI_PERCENT),
        )
    }
    given = [c for c in phi_cols.values() if c is not None]
    if len(given) > 1:
        raise ThinsegError(
            f"{source}: {len(given)} porosity columns ({', '.join(given)}); "
            "keep one"
        )
    return phi_cols, given[0] if given else None


def _require_plug_columns(columns, phi_col, perm_col, source) -> None:
    """Refuse a table without a porosity or a permeability column (both
    named in one message)."""
    missing = []
    if phi_col is None:
        missing.append("porosity (or porosity_fraction/porosity_percent)")
    if perm_col is None:
        missing.append("permeability_md")
    if missing:
        raise ThinsegError(
            f"{source}: no {' and no '.join(missing)} column "
            f"(columns: {', '.join(columns)})"
        )


def _porosity_unit(phi: np.ndarray, phi_cols, phi_col) -> tuple[bool, str]:
    """Whether the porosity is in percent, and a note saying why."""
    if phi_cols["percent"]:
        return True, f"porosity read as percent ({phi_col!r})"
    if phi_cols["fraction"]:
        return False, f"porosity read as a fraction ({phi_col!r})"
    # a fraction never exceeds 1; % values of a real rock almost always
    # do (< 1 % everywhere would be read as a fraction: name the column
    # porosity_percent for such tight rocks)
    percent = bool(np.nanmax(np.r_[phi, 0.0]) > 1.0)
    return percent, (
        f"porosity read as percent ({phi_col!r} has values > 1)"
        if percent
        else f"porosity read as a fraction ({phi_col!r} <= 1)"
    )


def _check_plug_ranges(phi, k, names, percent, fraction_col, source):
    """Refuse a porosity outside (0, 1) (or (0, 100) %) and a
    permeability <= 0; measured values only."""
    top, unit = (100.0, "%") if percent else (1.0, "")
    for i in np.flatnonzero(np.isfinite(phi)):
        if not 0 < phi[i] < top:
            raise ThinsegError(
                f"{source}: sample {names[i]!r}: porosity {phi[i]:g}{unit} "
                f"is outside (0, {top:g}{unit})"
                + (
                    "; use a porosity_percent column for percent"
                    if fraction_col and phi[i] > 1
                    else ""
                )
            )
    for i in np.flatnonzero(np.isfinite(k)):
        if k[i] <= 0:
            raise ThinsegError(
                f"{source}: sample {names[i]!r}: permeability {k[i]:g} mD "
                "is not positive (log k needs k > 0)"
            )


def _check_measured_in_pairs(phi, k, names, source) -> None:
    """Refuse a sample with a porosity but no permeability, or the
    reverse (a row with neither is an image to predict)."""
    for i in range(len(names)):
        if np.isfinite(phi[i]) != np.isfinite(k[i]):
            have, lack = (
                ("porosity", "permeability")
                if np.isfinite(phi[i])
                else ("permeability", "porosity")
            )
            raise ThinsegError(
                f"{source}: sample {names[i]!r} has a {have} but no {lack}"
            )


def _pixel_sizes(columns, names, source) -> np.ndarray | None:
    """The ``pixel_size_um`` column (NaN where empty), refusing sizes
    <= 0; None without one."""
    px_col = _pick(columns, _PIXEL, "pixel size", source)
    if not px_col:
        return None
    pixel = _numbers(columns[px_col], px_col, names, source)
    bad = np.isfinite(pixel) & ~(pixel > 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ThinsegError(
            f"{source}: sample {names[i]!r}: pixel size {pixel[i]:g} "
            "um is not positive"
        )
    return pixel


def samples_from_columns(
    columns: Mapping[str, Sequence], source: str = "samples"
) -> Samples:
    """Check a table of columns (name -> values) and build :class:`Samples`.

    Column names are matched case-insensitively: ``sample`` (or ``name``),
    porosity as ``porosity`` / ``phi`` (a fraction, or percent when any
    value exceeds 1), ``porosity_fraction`` or ``porosity_percent``
    (explicit), ``permeability_md`` (or ``permeability``, ``k``), and the
    optional ``image``, ``rock_type``, ``formation`` and ``pixel_size_um``.

    Raises
    ------
    ThinsegError
        Missing columns, duplicate samples, text in number columns,
        porosity outside (0, 1) or (0, 100) %, permeability <= 0, and a
        porosity without a permeability or the reverse.
    """
    names = _sample_names(columns, source)
    phi_cols, phi_col = _porosity_columns(columns, source)
    perm_col = _pick(columns, _PERM, "permeability", source)
    image_col = _pick(columns, _IMAGE, "image", source)
    _require_plug_columns(columns, phi_col, perm_col, source)
    phi = _numbers(columns[phi_col], phi_col, names, source)
    k = _numbers(columns[perm_col], perm_col, names, source)
    percent, note = _porosity_unit(phi, phi_cols, phi_col)
    _check_plug_ranges(phi, k, names, percent, phi_cols["fraction"], source)
    if percent:
        phi = phi / 100.0
    _check_measured_in_pairs(phi, k, names, source)
    images = _text(columns[image_col]) if image_col else None
    rt_col = _pick(columns, _ROCK_TYPE, "rock type", source)
    fm_col = _pick(columns, _FORMATION, "formation", source)
    pixel = _pixel_sizes(columns, names, source)
    return Samples(
        names=names,
        porosity=phi,
        permeability_md=k,
        images=images,
        rock_types=_text(columns[rt_col]) if rt_col else None,
        formations=_text(columns[fm_col]) if fm_col else None,
        pixel_size_um=pixel,
        porosity_note=note,
        source=source,
    )


def read_table(path: str | Path) -> dict[str, list[str]]:
    """Read a CSV (comma, semicolon or tab separated) into columns."""
    path = Path(path)
    if not path.is_file():
        raise ThinsegError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ThinsegError(f"{path}: not a readable CSV (not UTF-8)") from None
    except OSError as exc:
        raise ThinsegError(
            f"{path}: cannot read ({exc.strerror or exc})"
        ) from None
    if not text.strip():
        raise ThinsegError(f"{path}: empty CSV")
    if "\0" in text:
        raise ThinsegError(f"{path}: not a readable CSV (binary data)")
    # the header decides the separator: the one it holds most of
    first = next(ln for ln in text.splitlines() if ln.strip())
    delim = max(",;\t", key=first.count)
    try:
        rows = [
            row
            for row in csv.reader(
                io.StringIO(text), delimiter=delim, strict=True
            )
            if any(cell.strip() for cell in row)
        ]
    except csv.Error as exc:
        raise ThinsegError(f"{path}: not a readable CSV ({exc})") from None
    header = [h.strip() for h in rows[0]]
    if len(header) < 2 or any(not h for h in header):
        raise ThinsegError(
            f"{path}: not a readable CSV (header {','.join(header)!r} needs "
            "named columns)"
        )
    if len(set(header)) < len(header):
        raise ThinsegError(f"{path}: repeated column names in the header")
    body = rows[1:]
    for n, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise ThinsegError(
                f"{path}: row {n} has {len(row)} fields, the header "
                f"{len(header)}"
            )
    return {h: [row[i] for row in body] for i, h in enumerate(header)}


def read_samples(path: str | Path) -> Samples:
    """Read and check a samples CSV; see :func:`samples_from_columns`."""
    return samples_from_columns(read_table(path), source=str(path))


# -- features ----------------------------------------------------------------
@dataclass(frozen=True)
class Features:
    """Numeric image features, one row per sample (NaN where missing)."""

    names: tuple[str, ...]
    columns: tuple[str, ...]
    values: np.ndarray

    def __post_init__(self):
        shape = (len(self.names), len(self.columns))
        if np.shape(self.values) != shape:
            raise ThinsegError(
                f"features: values of shape {np.shape(self.values)} for "
                f"{shape[0]} samples x {shape[1]} columns"
            )
        dup = [n for n, c in Counter(self.names).items() if c > 1]
        if dup:
            raise ThinsegError(f"features: sample {dup[0]!r} listed twice")

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.columns.index(name)]

    def take(self, names: Sequence[str]) -> np.ndarray:
        """Rows for ``names`` in that order (NaN rows for absent ones)."""
        index = {n: i for i, n in enumerate(self.names)}
        out = np.full((len(names), len(self.columns)), np.nan)
        for r, n in enumerate(names):
            if n in index:
                out[r] = self.values[index[n]]
        return out


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not (
        isinstance(v, bool | np.bool_)
    )


def features_from_rows(
    names: Sequence[str], rows: Sequence[Mapping[str, object]]
) -> Features:
    """Features from dicts such as ``Measurement.to_row()``.

    Numeric entries only (text such as a scheme name is left out); the
    columns are the union of all rows, in first-seen order.
    """
    columns: dict[str, None] = {}
    for row in rows:
        for key, v in row.items():
            if _is_number(v):
                columns.setdefault(str(key), None)
    cols = tuple(columns)
    values = np.full((len(rows), len(cols)), np.nan)
    for r, row in enumerate(rows):
        for c, key in enumerate(cols):
            v = row.get(key)
            if _is_number(v):
                values[r, c] = float(v)
    return Features(tuple(names), cols, values)


_NOT_FEATURE_SUFFIXES = (
    "_binomial_low",
    "_binomial_high",
    "_bootstrap_low",
    "_bootstrap_high",
    "_pixels",
    "_area_mm2",
    "_count",
    "pixel_size_um",
)


def model_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """The feature columns worth modelling.

    Interval bounds, pixel counts, areas and object counts of
    ``Measurement.to_row()`` scale with the image or restate a fraction,
    so they are left out; a ``_px`` diameter is left out when its ``_um``
    twin is there.
    """
    cols = set(columns)
    return tuple(
        c
        for c in columns
        if not c.endswith(_NOT_FEATURE_SUFFIXES)
        and not (c.endswith("_px") and f"{c[:-3]}_um" in cols)
    )


def read_features(path: str | Path) -> Features:
    """A features CSV: a ``sample`` column and numeric feature columns.

    Wholly non-numeric columns (formation, notes) are ignored; a column
    mixing numbers and text is an error (a typo would otherwise drop it).
    """
    columns = read_table(path)
    sample_col = _pick(columns, _SAMPLE, "sample", path)
    if sample_col is None:
        raise ThinsegError(f"{path}: no 'sample' column")
    names = _text(columns[sample_col])
    if any(n is None for n in names):
        raise ThinsegError(f"{path}: a row has no sample name")
    keep, values = [], []
    for col, raw in columns.items():
        if col == sample_col:
            continue
        text = _text(raw)
        parsed = []
        for s in text:
            try:
                parsed.append(np.nan if s is None else float(s))
            except ValueError:
                parsed.append(None)
        bad = [s for s, p in zip(text, parsed, strict=True) if p is None]
        if len(bad) == len([s for s in text if s is not None]):
            continue  # a text column
        if bad:
            raise ThinsegError(
                f"{path}: column {col!r} mixes numbers and text ({bad[0]!r})"
            )
        keep.append(col)
        values.append(parsed)
    if not keep:
        raise ThinsegError(f"{path}: no numeric feature columns")
    return Features(names, tuple(keep), np.array(values, dtype=float).T)


def iter_measure_features(
    label_files: Mapping[str, str | Path],
    scheme,
    pixel_size_um: float | Mapping[str, float | None] | None = None,
) -> Generator[Progress, None, Features]:
    """Measure each sample's label image with
    :func:`napari_thinseg.measure.measure`.

    Yields :class:`Progress` per image and returns :class:`Features`.
    ``pixel_size_um`` is one size for all or a mapping sample -> size.
    """
    from ..imaging.files import read_annotation
    from ..measure import measure

    names, rows = [], []
    total = len(label_files)
    for step, (name, path) in enumerate(label_files.items(), start=1):
        px = (
            pixel_size_um.get(name)
            if isinstance(pixel_size_um, Mapping)
            else pixel_size_um
        )
        labels = read_annotation(path)
        try:
            # no bootstrap: its intervals are not model features
            row = measure(
                labels, scheme, pixel_size_um=px, n_boot=0, name=name
            ).to_row()
        except ThinsegError as exc:
            raise ThinsegError(f"{path}: {exc}") from None
        names.append(name)
        rows.append(row)
        yield Progress(step, total, Path(path).name)
    return features_from_rows(names, rows)


def measure_features(label_files, scheme, pixel_size_um=None) -> Features:
    """:func:`iter_measure_features`, run to the end."""
    from ..progress import run

    return run(iter_measure_features(label_files, scheme, pixel_size_um))
