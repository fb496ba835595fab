"""The porosity-permeability cross-plot PNG."""

import imageio.v3 as iio
import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.rocktype import petrophysics as pp
from napari_thinseg.rocktype import plots


def test_crossplot_png_written_and_not_blank(tmp_path):
    phi = np.array([0.08, 0.12, 0.18, 0.22, 0.25])
    k = np.array([0.05, 2.0, 40.0, 300.0, 2000.0])
    path = plots.save_crossplot(tmp_path / "x.png", phi, k)
    image = iio.imread(path)
    w, h = plots.CROSSPLOT_SIZE_PX
    assert image.shape[:2] == (h, w)
    rgb = image[..., :3].reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 20
    assert rgb.std() > 10
    # the points are there in their class colours
    for name in set(pp.pore_throat_class(pp.winland_r35(k, phi))):
        colour = plots.CLASS_COLORS[name]
        want = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        assert (np.abs(rgb.astype(int) - want).sum(axis=1) == 0).any(), name
    with pytest.raises(ThinsegError, match="already exists"):
        plots.save_crossplot(path, phi, k)
