"""The optical-to-plug porosity calibration per formation."""

import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.rocktype import calibration as cal


def test_calibration_recovers_a_b_per_formation():
    rng = np.random.default_rng(5)
    optical = rng.uniform(0.05, 0.25, 20)
    forms = ["North"] * 12 + ["South"] * 8
    truth = {"North": (0.03, 1.10), "South": (0.06, 0.85)}
    plug = np.array(
        [
            truth[f][0] + truth[f][1] * o
            for f, o in zip(forms, optical, strict=True)
        ]
    ) + rng.normal(0, 0.002, 20)
    cals = cal.fit_calibration(optical, plug, forms)
    for f, (a, b) in truth.items():
        assert cals[f].a == pytest.approx(a, abs=0.006)
        assert cals[f].b == pytest.approx(b, abs=0.04)
        assert cals[f].residual_std == pytest.approx(0.002, rel=0.6)
    assert cals["North"].n == 12 and cals["South"].n == 8
    got = cal.apply_calibration(cals, [0.1, 0.1], ["North", "South"])
    assert got == pytest.approx([0.03 + 0.11, 0.06 + 0.085], abs=0.005)


def test_calibration_refuses_small_formations():
    with pytest.raises(ThinsegError, match="'B'.*2 sample.*at least 3"):
        cal.fit_calibration(
            [0.1, 0.2, 0.3, 0.1, 0.2], [0.1] * 5, ["A"] * 3 + ["B"] * 2
        )
    cals = cal.fit_calibration([0.1, 0.2, 0.3], [0.12, 0.22, 0.33])
    assert list(cals) == [cal.ALL_FORMATIONS]
    with pytest.raises(ThinsegError, match="'Z' has no"):
        cal.apply_calibration(cals, [0.1], ["Z"])
    with pytest.raises(ThinsegError, match="same in every"):
        cal.fit_calibration([0.1] * 3, [0.1, 0.2, 0.3])
