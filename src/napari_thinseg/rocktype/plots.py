"""The porosity-permeability cross-plot with Winland r35 iso-lines."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..imaging.atomic import atomic_write_bytes, ensure_dir, refuse_existing
from .petrophysics import (
    PORE_THROAT_CLASSES,
    pore_throat_class,
    winland_permeability,
    winland_r35,
)

CLASS_COLORS = {
    "nano": "#7b3294",
    "micro": "#c2a5cf",
    "meso": "#a6dba0",
    "macro": "#1b9e77",
    "mega": "#00441b",
}
"""Point colour of each pore-throat class."""

CROSSPLOT_SIZE_PX = (700, 500)
"""Width and height of the cross-plot PNG."""


def crossplot_png(
    porosity, permeability_md, classes=None, dpi: int = 100
) -> bytes:
    """PNG bytes of log k against porosity with Winland r35 iso-lines.

    Points are coloured by pore-throat class; the iso-lines are the class
    boundaries (0.1, 0.5, 2 and 10 um). Drawn with the Agg canvas directly,
    so no GUI backend or pyplot state is touched.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    phi = np.asarray(porosity, dtype=float)
    k = np.asarray(permeability_md, dtype=float)
    if classes is None:
        classes = pore_throat_class(winland_r35(k, phi)) if phi.size else []
    w, h = CROSSPLOT_SIZE_PX
    fig = Figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    top = max(0.35, float(phi.max()) * 1.1) if phi.size else 0.35
    grid = np.linspace(0.005, min(top, 0.99), 200)
    for _, r in PORE_THROAT_CLASSES[1:]:
        ax.plot(
            100 * grid,
            winland_permeability(r, grid),
            color="0.55",
            lw=0.9,
            ls="--",
        )
        ax.annotate(
            f"r35 = {r:g} um",
            (100 * grid[-1], winland_permeability(r, grid[-1])),
            fontsize=7,
            color="0.35",
            ha="right",
            va="bottom",
        )
    classes = np.asarray(classes, dtype=object)
    for name, _ in PORE_THROAT_CLASSES:
        sel = classes == name
        if np.any(sel):
            ax.scatter(
                100 * phi[sel],
                k[sel],
                s=28,
                color=CLASS_COLORS[name],
                edgecolor="k",
                linewidth=0.4,
                label=f"{name} ({int(np.sum(sel))})",
                zorder=3,
            )
    ax.set_yscale("log")
    ax.set_xlim(0, 100 * top)
    if k.size:
        ax.set_ylim(
            min(1e-3, float(k.min()) / 3), max(1e4, float(k.max()) * 3)
        )
    else:
        ax.set_ylim(1e-3, 1e4)
    ax.set_xlabel("porosity (%)")
    ax.set_ylabel("permeability (mD)")
    ax.set_title("porosity-permeability, Winland r35 pore-throat classes")
    ax.grid(True, which="major", lw=0.3, color="0.85")
    if classes.size:
        ax.legend(loc="upper left", fontsize=8, title="pore throats")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_crossplot(
    path: str | Path, porosity, permeability_md, classes=None, overwrite=False
) -> Path:
    """Write :func:`crossplot_png` to ``path`` atomically."""
    path = Path(path)
    refuse_existing([path], overwrite)
    ensure_dir(path.parent)
    return atomic_write_bytes(
        path, crossplot_png(porosity, permeability_md, classes)
    )
