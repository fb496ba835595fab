"""What a measurement gives: the 95 % intervals, the fractions of each
class, grain and pore sizes, and the whole :class:`Measurement` with its
flat table row (column names carry their units).

Plain data; :mod:`.modal` and :mod:`.grains` fill it in, :mod:`.report`
writes it as CSV and text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A 95 % interval; ``method`` says how it was made."""

    low: float
    high: float
    method: str


@dataclass
class ClassStats:
    """Fraction of one class over the counted pixels, with its intervals."""

    id: int
    name: str
    pixels: int
    fraction: float
    area_mm2: float | None
    binomial: Interval
    bootstrap: Interval | None


@dataclass
class SizeStats:
    """Sizes of grains or pore bodies (equivalent circle diameters).

    ``mean_phi`` / ``sorting_phi`` are Folk and Ward's graphic mean and
    inclusive graphic standard deviation; None without a pixel size or
    with fewer than :data:`~.grains.MIN_SIZED` objects. ``border_count``
    objects touch the edge of the counted area (measured as seen,
    truncated).
    """

    count: int
    diameters_px: np.ndarray
    diameters_um: np.ndarray | None
    mean_phi: float | None
    sorting_phi: float | None
    sorting_class: str | None
    median_diameter_um: float | None
    border_count: int = 0
    gray_levels: bool = False
    """The classes were gray-level bins, not minerals: grains are the
    union of the grain classes (:func:`~.grains.is_gray_level`)."""
    mean_diameter_px: float | None = None
    """Folk and Ward's graphic mean as a diameter in pixels (with at least
    :data:`~.grains.MIN_SIZED` objects; given without a pixel size)."""
    sorting_px: float | None = None
    """Folk and Ward's sorting of the diameters in pixels: the same number
    as ``sorting_phi`` (phi is a log2 scale), known without a pixel
    size."""

    @property
    def median_diameter_px(self) -> float | None:
        if not self.count:
            return None
        return float(np.median(self.diameters_px))


@dataclass
class Measurement:
    """Everything measured on one label image."""

    name: str
    counted_pixels: int
    pixel_size_um: float | None
    classes: list[ClassStats]
    porosity: float
    porosity_binomial: Interval
    porosity_bootstrap: Interval | None
    grains: SizeStats | None
    pores: SizeStats | None
    pore_border_fraction: float | None
    scheme_name: str = ""

    @property
    def counted_area_mm2(self) -> float | None:
        return area_mm2(self.counted_pixels, self.pixel_size_um)

    def to_row(self) -> dict:
        """One flat CSV row; column names carry their units.

        Fractions are 0..1 (``_fraction``, interval ``_low`` / ``_high``),
        areas ``_mm2``, diameters ``_px`` / ``_um``, sorting ``_phi``.
        Missing values are None.
        """
        row: dict = {
            "name": self.name,
            "scheme": self.scheme_name,
            "counted_pixels": self.counted_pixels,
            "pixel_size_um": self.pixel_size_um,
            "counted_area_mm2": self.counted_area_mm2,
        }
        _interval_cols(
            row,
            "porosity",
            self.porosity,
            self.porosity_binomial,
            self.porosity_bootstrap,
        )
        row["porosity_area_mm2"] = area_mm2(
            round(self.porosity * self.counted_pixels)
            if np.isfinite(self.porosity)
            else None,
            self.pixel_size_um,
        )
        for c, key in zip(
            self.classes, _column_keys(self.classes), strict=True
        ):
            row[f"{key}_pixels"] = c.pixels
            _interval_cols(row, key, c.fraction, c.binomial, c.bootstrap)
            row[f"{key}_area_mm2"] = c.area_mm2
        for prefix, s in (("grain", self.grains), ("pore", self.pores)):
            row[f"{prefix}_count"] = None if s is None else s.count
            row[f"{prefix}_border_count"] = (
                None if s is None else s.border_count
            )
            row[f"{prefix}_median_diameter_px"] = (
                None if s is None else s.median_diameter_px
            )
            row[f"{prefix}_median_diameter_um"] = (
                None if s is None else s.median_diameter_um
            )
            row[f"{prefix}_mean_phi"] = None if s is None else s.mean_phi
            row[f"{prefix}_sorting_phi"] = None if s is None else s.sorting_phi
            row[f"{prefix}_sorting"] = None if s is None else s.sorting_class
        row["grains_from"] = (
            None
            if self.grains is None
            else "gray levels"
            if self.grains.gray_levels
            else "classes"
        )
        row["pore_border_fraction"] = self.pore_border_fraction
        row["binomial_method"] = self.porosity_binomial.method
        row["bootstrap_method"] = (
            None
            if self.porosity_bootstrap is None
            else self.porosity_bootstrap.method
        )
        return row


def area_mm2(pixels, pixel_size_um) -> float | None:
    """The area of ``pixels`` pixels in mm2; None when either is unknown."""
    if pixels is None or pixel_size_um is None:
        return None
    return float(pixels) * (pixel_size_um / 1000.0) ** 2


def _interval_cols(row, key, value, binomial, bootstrap):
    row[f"{key}_fraction"] = value
    row[f"{key}_binomial_low"] = binomial.low
    row[f"{key}_binomial_high"] = binomial.high
    row[f"{key}_bootstrap_low"] = None if bootstrap is None else bootstrap.low
    row[f"{key}_bootstrap_high"] = (
        None if bootstrap is None else bootstrap.high
    )


# class prefixes that would make a class column equal a fixed one
# ("porosity_fraction", "counted_pixels", "counted_area_mm2")
_RESERVED = ("porosity", "counted", "counted_area")


def _column_keys(classes: Sequence[ClassStats]) -> list[str]:
    """Column prefixes from class names (``"rock fragment"`` ->
    ``rock_fragment``); a clash or an empty slug falls back on the id."""
    slugs = [
        re.sub(r"[^0-9a-z]+", "_", c.name.lower()).strip("_") for c in classes
    ]
    out = []
    for c, s in zip(classes, slugs, strict=True):
        if not s or slugs.count(s) > 1 or s in _RESERVED:
            s = f"class{c.id}_{s}" if s else f"class{c.id}"
        out.append(s)
    return out
