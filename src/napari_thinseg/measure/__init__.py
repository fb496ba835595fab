"""Measurements of label images: modal composition and optical porosity
with their intervals, grain and pore sizes, and the report (table rows,
CSV, text) that the CLI and the Measure dock share."""

from .modal import (
    Measurement,
    format_measurement,
    measure,
    measure_files,
    write_csv,
)

__all__ = [
    "Measurement",
    "format_measurement",
    "measure",
    "measure_files",
    "write_csv",
]
