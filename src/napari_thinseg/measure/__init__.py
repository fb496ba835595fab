"""Measurements of label images: modal composition and optical porosity
with their intervals (:mod:`.modal`), grain and pore sizes
(:mod:`.grains`), the results (:mod:`.results`) and the report (CSV,
text) that the CLI and the Measure dock share (:mod:`.report`)."""

from .modal import measure, measure_files
from .report import format_measurement, write_csv
from .results import ClassStats, Interval, Measurement, SizeStats

__all__ = [
    "ClassStats",
    "Interval",
    "Measurement",
    "SizeStats",
    "format_measurement",
    "measure",
    "measure_files",
    "write_csv",
]
