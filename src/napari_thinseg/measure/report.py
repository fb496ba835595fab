"""A measurement as a CSV table and as text, for the CLI and the dock.

The table has one row per measurement (:meth:`.Measurement.to_row`: column
names carry their units). Every piece of text written about a
measurement is made here, once: numbers, percentages and intervals, the
median size, phi values, how the intervals were made, the summaries of
the Measure dock and :func:`format_measurement`, the plain-text table
``thinseg stats`` prints. Two :class:`Typography` settings tell them
apart: the dock writes en dashes, µm and φ (:data:`TYPESET`), the CLI
plain ASCII (:data:`PLAIN`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ThinsegError
from .grains import MIN_SIZED, sorting_class
from .results import Interval, Measurement, SizeStats


# -- CSV -------------------------------------------------------------------
def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return "" if not np.isfinite(value) else repr(float(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def write_csv(
    measurements_or_rows: Iterable[Measurement | dict],
    path: str | Path,
    overwrite: bool = False,
) -> Path:
    """Write measurements (or their rows) as CSV, one row each.

    Columns are the union of the rows' keys in first-seen order; missing
    values are empty cells. Written atomically; an existing file is
    replaced only with ``overwrite``.
    """
    from ..imaging.atomic import atomic_write_text, ensure_dir, refuse_existing

    path = Path(path)
    rows = [
        r.to_row() if isinstance(r, Measurement) else dict(r)
        for r in measurements_or_rows
    ]
    if not rows:
        raise ThinsegError(f"{path}: no measurements to write")
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    columns = list(dict.fromkeys(key for r in rows for key in r))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in columns])
    return atomic_write_text(path, buf.getvalue())


# -- numbers as text ---------------------------------------------------------
@dataclass(frozen=True)
class Typography:
    """The characters a text uses: for a value not measured, between the
    ends of a range, and for micrometres and phi."""

    missing: str
    range_dash: str
    micrometre: str
    phi: str


TYPESET = Typography(missing="–", range_dash="–", micrometre="µm", phi="φ")
"""The Measure dock's text: en dashes, µm and φ."""

PLAIN = Typography(missing="-", range_dash="-", micrometre="um", phi="phi")
"""The CLI's text: ASCII only, for any terminal and log file."""

NO_VALUE = TYPESET.missing
"""What the dock shows for a value not measured."""


def _missing(value) -> bool:
    if value is None:
        return True
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def percent(
    value: float | None, digits: int = 2, style: Typography = TYPESET
) -> str:
    """``0.125`` -> ``"12.50"``; ``None`` or NaN -> a dash."""
    return style.missing if _missing(value) else f"{100 * value:.{digits}f}"


def interval_text(
    interval: Interval | None, digits: int = 2, style: Typography = TYPESET
) -> str:
    """A 0..1 interval as ``"9.10–15.90"`` (percent); ``None`` or NaN ->
    a dash."""
    if interval is None or _missing(interval.low):
        return style.missing
    low = percent(interval.low, digits, style)
    return f"{low}{style.range_dash}{percent(interval.high, digits, style)}"


def number(value, fmt: str = ".4g", style: Typography = TYPESET) -> str:
    """A number with ``fmt``; ``None`` (or NaN) -> a dash."""
    if _missing(value):
        return style.missing
    try:
        return format(value, fmt)
    except (TypeError, ValueError):
        return str(value)


def phi_text(value: float | None, style: Typography = TYPESET) -> str:
    """A size or sorting in phi units, ``"1.23 φ"``; None -> a dash."""
    return style.missing if _missing(value) else f"{value:.2f} {style.phi}"


def median_text(
    sizes: SizeStats, um_digits: int = 1, style: Typography = TYPESET
) -> str:
    """The median diameter of :class:`SizeStats`, in µm or else pixels."""
    if not _missing(sizes.median_diameter_um):
        return f"{sizes.median_diameter_um:.{um_digits}f} {style.micrometre}"
    if not _missing(sizes.median_diameter_px):
        return f"{sizes.median_diameter_px:.1f} px"
    return style.missing


# -- the Measure dock's text -------------------------------------------------
def methods(m: Measurement) -> str:
    """How the two porosity intervals of ``m`` were made."""
    boot = m.porosity_bootstrap
    return f"95 % intervals: {m.porosity_binomial.method}; " + (
        boot.method
        if boot is not None
        else "no block bootstrap (fewer than two blocks counted)"
    )


def counted_text(m: Measurement) -> str:
    """What was counted, at which pixel size: the dock's status line."""
    unit = (
        f"{m.pixel_size_um:g} µm/px"
        if m.pixel_size_um
        else "pixel size unknown"
    )
    return f"{m.name}: {m.counted_pixels:,} labelled pixels counted ({unit})"


GRAY_LEVEL_NOTE = "gray-level classes, not minerals: grains of all shades"
"""Said next to grain numbers measured on gray-level bins."""

SIZE_KEYS = ("grains", "mean", "sorting", "median", "pores", "border")
"""The lines of :func:`size_texts`, in the dock's order."""


NO_PIXEL_SIZE = "pixel size unknown"
"""Said beside sizes given in pixels."""


def mean_size_text(g: SizeStats, style: Typography = TYPESET) -> str:
    """Folk and Ward's graphic mean: in phi, else (no pixel size) as a
    diameter in pixels, else a dash and why."""
    if not _missing(g.mean_phi):
        return phi_text(g.mean_phi, style)
    if not _missing(g.mean_diameter_px):
        return f"{g.mean_diameter_px:.1f} px ({NO_PIXEL_SIZE}: no {style.phi})"
    return f"{style.missing} (fewer than {MIN_SIZED} grains)"


def sorting_text(g: SizeStats, style: Typography = TYPESET) -> str:
    """Folk and Ward's sorting and Folk's class; from the pixel sizes
    when the pixel size is unknown (sorting needs no scale); else a dash
    and why."""
    if not _missing(g.sorting_phi):
        return f"{phi_text(g.sorting_phi, style)}, {g.sorting_class}"
    if not _missing(g.sorting_px):
        return (
            f"{phi_text(g.sorting_px, style)}, {sorting_class(g.sorting_px)}"
            f" (from sizes in px: {NO_PIXEL_SIZE})"
        )
    return f"{style.missing} (fewer than {MIN_SIZED} grains)"


def size_texts(m: Measurement) -> dict[str, str]:
    """The dock's grain and pore lines, by :data:`SIZE_KEYS`; a dash for
    what was not measured."""
    grains, pores = m.grains, m.pores
    out = dict.fromkeys(SIZE_KEYS, NO_VALUE)
    if grains is not None:
        out["grains"] = (
            f"{grains.count:,} ({grains.border_count:,} on the edge)"
            + (f"; {GRAY_LEVEL_NOTE}" if grains.gray_levels else "")
        )
        out["mean"] = mean_size_text(grains)
        out["sorting"] = sorting_text(grains)
        out["median"] = median_text(grains)
    if pores is not None:
        out["pores"] = f"{pores.count:,}, median {median_text(pores)}"
    if not _missing(m.pore_border_fraction):
        out["border"] = f"{percent(m.pore_border_fraction, 1)} %"
    return out


# -- the CLI's text ----------------------------------------------------------
def format_measurement(m: Measurement, narrow: bool = False) -> str:
    """A readable plain-text table of one measurement (percentages);
    ``narrow`` puts each class name on a line of its own, above its
    numbers (about 45 columns: a dock shows it without sideways
    scrolling)."""
    area = m.counted_area_mm2
    head = f"{m.name or 'labels'}: {m.counted_pixels:,} counted px"
    if area is not None:
        head += f" ({area:.4g} mm2 at {m.pixel_size_um:g} um/px)"
    if m.scheme_name:
        head += f", scheme {m.scheme_name}"
    names = [c.name for c in m.classes] + ["porosity"]
    width = max(len(n) for n in names)
    columns = f"{'%':>6}  {'binomial 95%':>12}  {'bootstrap 95%':>13}"
    if narrow:
        lines = [head, "  class", f"    {columns}"]
    else:
        lines = [head, f"  {'class':<{width}}  {columns}"]

    def line(label, fraction, binomial, bootstrap):
        value = percent(fraction, 2, PLAIN)
        low_high = interval_text(binomial, 1, PLAIN)
        boot = interval_text(bootstrap, 1, PLAIN)
        numbers = f"{value:>6}  {low_high:>12}  {boot:>13}"
        if narrow:
            return f"  {label}\n    {numbers}"
        return f"  {label:<{width}}  {numbers}"

    for c in m.classes:
        lines.append(line(c.name, c.fraction, c.binomial, c.bootstrap))
    lines.append(
        line("porosity", m.porosity, m.porosity_binomial, m.porosity_bootstrap)
    )
    lines.append(
        f"  binomial: {m.porosity_binomial.method}; bootstrap: "
        + (
            m.porosity_bootstrap.method
            if m.porosity_bootstrap is not None
            else "not available (fewer than 2 blocks)"
        )
    )
    if m.grains is not None:
        g = m.grains
        text = f"  grains: {g.count}"
        if g.mean_phi is not None:
            text += (
                f"; mean {phi_text(g.mean_phi, PLAIN)}; sorting "
                f"{phi_text(g.sorting_phi, PLAIN)} ({g.sorting_class})"
            )
        elif g.mean_diameter_px is not None:  # no pixel size: in pixels
            text += (
                f"; mean {mean_size_text(g, PLAIN)}; sorting "
                f"{sorting_text(g, PLAIN)}"
            )
        if g.count:
            text += f"; median {median_text(g, 0, PLAIN)}"
        text += f"; {g.border_count} on the edge"
        if g.gray_levels:
            text += f" ({GRAY_LEVEL_NOTE})"
        lines.append(text)
    if m.pores is not None:
        p = m.pores
        text = f"  pore bodies: {p.count}"
        if p.count:
            text += f"; median {median_text(p, 0, PLAIN)}"
        if m.pore_border_fraction is not None:
            text += (
                f"; {percent(m.pore_border_fraction, 1, PLAIN)} % of pore "
                "area touches the edge"
            )
        lines.append(text)
    return "\n".join(lines)
