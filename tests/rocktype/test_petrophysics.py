"""Petrophysics against hand arithmetic, and the flow units."""

import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.rocktype import petrophysics as pp


# -- petrophysics against hand arithmetic -------------------------------------
def test_winland_r35_hand_computed():
    # k = 100 mD, phi = 20 %:
    # log r35 = 0.732 + 0.588 * log10(100) - 0.864 * log10(20)
    #         = 0.732 + 1.176 - 0.864 * 1.301030 = 1.908 - 1.124090
    #         = 0.783910  ->  r35 = 10 ** 0.783910 = 6.0801 um
    assert pp.winland_r35(100, 0.20) == pytest.approx(6.0801, abs=1e-4)
    # k = 1 mD, phi = 10 %: log r35 = 0.732 + 0 - 0.864 * 1 = -0.132
    # -> r35 = 10 ** -0.132 = 0.73790 um
    assert pp.winland_r35(1, 0.10) == pytest.approx(0.73790, abs=1e-5)
    # vectorised, and the iso-line inverts it
    r = pp.winland_r35([100, 1], [0.2, 0.1])
    assert r == pytest.approx([6.0801, 0.73790], abs=1e-4)
    assert pp.winland_permeability(r, [0.2, 0.1]) == pytest.approx([100, 1])


def test_rqi_phi_z_fzi_hand_computed():
    # k = 100 mD, phi = 0.20: RQI = 0.0314 * sqrt(100 / 0.2)
    #   = 0.0314 * sqrt(500) = 0.0314 * 22.360680 = 0.702125 um
    # phi_z = 0.2 / 0.8 = 0.25; FZI = 0.702125 / 0.25 = 2.808501 um
    assert pp.rqi(100, 0.2) == pytest.approx(0.702125, abs=1e-6)
    assert pp.phi_z(0.2) == pytest.approx(0.25)
    assert pp.fzi(100, 0.2) == pytest.approx(2.808501, abs=1e-6)
    # k = 0.5 mD, phi = 0.08: RQI = 0.0314 * sqrt(6.25) = 0.0314 * 2.5
    #   = 0.0785; phi_z = 0.08 / 0.92 = 0.0869565; FZI = 0.0785 / 0.0869565
    #   = 0.90275 um
    assert pp.rqi(0.5, 0.08) == pytest.approx(0.0785)
    assert pp.fzi(0.5, 0.08) == pytest.approx(0.90275, abs=1e-5)


@pytest.mark.parametrize(
    ("r35", "name"),
    [
        (0.05, "nano"),
        (0.0999, "nano"),
        (0.1, "micro"),  # a boundary belongs to the larger class
        (0.4999, "micro"),
        (0.5, "meso"),
        (1.9999, "meso"),
        (2.0, "macro"),
        (9.9999, "macro"),
        (10.0, "mega"),
        (250.0, "mega"),
    ],
)
def test_pore_throat_class_boundaries(r35, name):
    assert pp.pore_throat_class(r35) == name
    assert list(pp.pore_throat_class([r35, r35])) == [name, name]


@pytest.mark.parametrize(
    ("k", "phi"), [(0, 0.2), (-1, 0.2), (10, 0), (10, 1.0), (10, -0.1)]
)
def test_petrophysics_refuses_impossible_values(k, phi):
    with pytest.raises(ThinsegError):
        pp.winland_r35(k, phi)
    with pytest.raises(ThinsegError):
        pp.fzi(k, phi)


# -- flow units ---------------------------------------------------------------
def test_fixed_flow_unit_bins():
    edges = pp.FZI_BIN_EDGES_UM
    assert edges[0] == 0.09375 and edges[-1] == 48.0
    units = pp.flow_units([0.05, 0.09375, 0.1, 0.75, 47.9, 48.0, 100.0])
    assert units.tolist() == [1, 2, 2, 5, 10, 11, 11]


def test_natural_breaks_recovers_groups_and_is_deterministic():
    rng = np.random.default_rng(1)
    fzi = np.concatenate(
        [
            10 ** rng.normal(-0.8, 0.05, 12),
            10 ** rng.normal(0.0, 0.05, 9),
            10 ** rng.normal(0.9, 0.05, 7),
        ]
    )
    truth = np.repeat([1, 2, 3], [12, 9, 7])
    edges = pp.flow_unit_edges(fzi, 3)
    assert len(edges) == 2
    assert np.array_equal(pp.flow_units(fzi, edges), truth)
    # same answer for shuffled input and on every call
    perm = rng.permutation(fzi.size)
    assert pp.flow_unit_edges(fzi[perm], 3) == edges
    assert pp.flow_unit_edges(fzi, 3) == edges


def test_natural_breaks_keeps_equal_values_together():
    assert pp.natural_breaks([1, 1, 1, 1], 3) == ()
    assert pp.natural_breaks([1, 1, 5, 5, 9], 3) == (3.0, 7.0)
    with pytest.raises(ThinsegError):
        pp.natural_breaks([1, 2], 0)
