"""Rock typing from plugs and thin sections.

- :mod:`.petrophysics`: Winland r35 and pore-throat classes, RQI, phi_z,
  FZI, natural breaks and hydraulic flow units, from plugs alone;
- :mod:`.tables`: the samples and image features tables, read and
  checked;
- :mod:`.regression`: small numpy models and their cross-validation
  against naive baselines;
- :mod:`.calibration`: optical-to-plug porosity lines per formation;
- :mod:`.study`: :func:`rock_typing`, which ties them together;
- :mod:`.result`: what it found, as CSV rows, a report and files;
- :mod:`.plots`: the porosity-permeability cross-plot.
"""

from .calibration import Calibration, apply_calibration, fit_calibration
from .petrophysics import (
    FZI_BIN_EDGES_UM,
    PORE_THROAT_CLASSES,
    flow_unit_edges,
    flow_units,
    fzi,
    natural_breaks,
    phi_z,
    pore_throat_class,
    rqi,
    winland_permeability,
    winland_r35,
)
from .plots import crossplot_png, save_crossplot
from .result import RockTypeResult, rows_to_csv
from .study import rock_typing
from .tables import (
    Features,
    Samples,
    add_unmeasured,
    features_from_rows,
    iter_measure_features,
    measure_features,
    read_features,
    read_samples,
    samples_from_columns,
)

__all__ = [
    "FZI_BIN_EDGES_UM",
    "PORE_THROAT_CLASSES",
    "Calibration",
    "Features",
    "RockTypeResult",
    "Samples",
    "add_unmeasured",
    "apply_calibration",
    "crossplot_png",
    "features_from_rows",
    "fit_calibration",
    "flow_unit_edges",
    "flow_units",
    "fzi",
    "iter_measure_features",
    "measure_features",
    "natural_breaks",
    "phi_z",
    "pore_throat_class",
    "read_features",
    "read_samples",
    "rock_typing",
    "rows_to_csv",
    "rqi",
    "samples_from_columns",
    "save_crossplot",
    "winland_permeability",
    "winland_r35",
]
