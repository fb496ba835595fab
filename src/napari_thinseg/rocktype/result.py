"""What a rock-typing study found, and its outputs.

:class:`RockTypeResult` holds the petrophysics of every sample and, with
image features, the cross-validated image models and their predictions;
it gives the CSV rows, the printed report and the files written
(``rocktypes.csv`` and ``crossplot.png``).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..imaging.atomic import (
    atomic_write_bytes,
    atomic_write_text,
    ensure_dir,
    refuse_existing,
)
from .calibration import Calibration
from .petrophysics import (
    PORE_THROAT_CLASSES,
    flow_units,
    fzi,
    pore_throat_class,
    winland_r35,
)
from .plots import crossplot_png
from .regression import ClassificationCV, RegressionCV
from .tables import Features, Samples

SMALL_SAMPLE_N = 20
"""Below this many training samples the output warns that CV scores are
themselves uncertain."""


@dataclass
class RockTypeResult:
    """Everything :func:`.study.rock_typing` found; :meth:`rows` is the
    CSV."""

    samples: Samples
    r35_um: np.ndarray
    pore_throat: np.ndarray
    rqi_um: np.ndarray
    phi_z: np.ndarray
    fzi_um: np.ndarray
    flow_unit: np.ndarray
    flow_unit_edges: tuple[float, ...]
    flow_unit_method: str
    features: Features | None = None
    feature_columns: tuple[str, ...] = ()
    training: np.ndarray | None = None
    to_predict: np.ndarray | None = None
    porosity_cv: RegressionCV | None = None
    log_k_cv: RegressionCV | None = None
    rock_type_cv: ClassificationCV | None = None
    pore_throat_cv: ClassificationCV | None = None
    porosity_pred: np.ndarray | None = None
    log_k_pred: np.ndarray | None = None
    rock_type_pred: list | None = None
    calibrations: dict[str, Calibration] | None = None
    calibration_cv: RegressionCV | None = None
    porosity_calibrated: np.ndarray | None = None
    optical_bias: float | None = None
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[dict[str, object]]:
        """One dict per sample, in the samples' order."""
        s = self.samples
        out = []
        feats = (
            self.features.take(s.names) if self.features is not None else None
        )
        for i, name in enumerate(s.names):
            row: dict[str, object] = {"sample": name}
            if s.formations is not None:
                row["formation"] = s.formations[i]
            if s.rock_types is not None:
                row["rock_type"] = s.rock_types[i]
            if s.images is not None:
                row["image"] = s.images[i]
            row["porosity_fraction"] = s.porosity[i]
            row["permeability_md"] = s.permeability_md[i]
            row["r35_um"] = self.r35_um[i]
            row["pore_throat_class"] = self.pore_throat[i]
            row["rqi_um"] = self.rqi_um[i]
            row["phi_z"] = self.phi_z[i]
            row["fzi_um"] = self.fzi_um[i]
            unit = int(self.flow_unit[i])
            row["flow_unit"] = unit if unit > 0 else None
            if feats is not None:
                for c, col in enumerate(self.features.columns):
                    row[f"img_{col}"] = feats[i, c]
            if self.porosity_pred is not None:
                row.update(self._prediction_row(i))
            out.append(row)
        return out

    def _prediction_row(self, i) -> dict[str, object]:
        row: dict[str, object] = {}
        held_out = bool(self.training[i])
        known = held_out or bool(self.to_predict[i])
        row["prediction"] = (
            "held-out" if held_out else "new" if known else None
        )
        phi, logk = self.porosity_pred[i], self.log_k_pred[i]
        row["porosity_pred"] = phi
        row["log10_k_pred"] = logk
        row["permeability_md_pred"] = 10.0**logk
        if self.rock_type_pred is not None:
            row["rock_type_pred"] = self.rock_type_pred[i]
        if self.porosity_calibrated is not None:
            row["porosity_calibrated"] = self.porosity_calibrated[i]
        r35 = np.nan
        if np.isfinite(phi) and 0 < phi < 1:
            r35 = float(winland_r35(10.0**logk, phi))
        row["r35_um_pred"] = r35
        row["pore_throat_class_pred"] = (
            pore_throat_class(r35) if np.isfinite(r35) else None
        )
        row["flow_unit_pred"] = (
            int(flow_units(fzi(10.0**logk, phi), self.flow_unit_edges))
            if np.isfinite(r35)
            else None
        )
        return row

    def lines(self) -> list[str]:
        """The report printed by ``thinseg rocktype``."""
        s = self.samples
        n_meas = int(s.measured.sum())
        out = [
            f"{len(s)} sample(s), {n_meas} with plug porosity and "
            f"permeability; {s.porosity_note}",
        ]
        counts = Counter(self.pore_throat[s.measured])
        out.append(
            "pore-throat classes (Winland r35): "
            + ", ".join(
                f"{n} {counts[n]}" for n, _ in PORE_THROAT_CLASSES if counts[n]
            )
        )
        units = Counter(self.flow_unit[s.measured].tolist())
        out.append(
            f"flow units ({self.flow_unit_method}): "
            + ", ".join(f"unit {u}: {units[u]}" for u in sorted(units))
        )
        if self.porosity_cv is not None:
            cv = self.porosity_cv
            out.append(
                f"image models on {cv.n} sample(s) with "
                f"{len(self.feature_columns)} feature(s), {cv.cv} CV:"
            )
            for res in (
                self.porosity_cv,
                self.log_k_cv,
                self.rock_type_cv,
                self.pore_throat_cv,
                self.calibration_cv,
            ):
                if res is not None:
                    out.append("  " + res.summary())
            if cv.n < SMALL_SAMPLE_N:
                out.append(
                    f"warning: only {cv.n} training sample(s) (< "
                    f"{SMALL_SAMPLE_N}): the CV scores are themselves "
                    "uncertain; treat the image models as indicative"
                )
        if self.optical_bias is not None:
            side = "below" if self.optical_bias < 0 else "above"
            out.append(
                "optical porosity is on average "
                f"{abs(self.optical_bias):.4f} {side} plug porosity "
                "(micro-porosity is invisible in thin section)"
            )
        if self.calibrations:
            out.append("optical porosity calibration:")
            out += ["  " + c.summary() for c in self.calibrations.values()]
        out += [f"note: {n}" for n in self.notes]
        return out

    def write(self, out: str | Path, overwrite: bool = False):
        """Write ``out/rocktypes.csv`` and ``out/crossplot.png``."""
        out = Path(out)
        paths = (out / "rocktypes.csv", out / "crossplot.png")
        refuse_existing(paths, overwrite)
        ensure_dir(out)
        m = self.samples.measured
        png = crossplot_png(
            self.samples.porosity[m],
            self.samples.permeability_md[m],
            self.pore_throat[m],
        )
        atomic_write_text(paths[0], rows_to_csv(self.rows()))
        atomic_write_bytes(paths[1], png)
        return paths


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float | np.floating):
        return "" if not np.isfinite(v) else f"{float(v):.6g}"
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


def rows_to_csv(rows: Sequence[Mapping[str, object]]) -> str:
    """CSV text of dict rows (columns: union, first-seen order)."""
    columns: dict[str, None] = {}
    for row in rows:
        for key in row:
            columns.setdefault(key, None)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()
