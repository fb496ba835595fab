"""What the study found, written out."""

import math

import pytest
from test_study import study

from napari_thinseg.errors import ThinsegError
from napari_thinseg.rocktype.study import rock_typing


def test_result_write_refuses_existing(tmp_path):
    samples, _ = study(new=0)
    res = rock_typing(samples)
    csv_path, png = res.write(tmp_path / "out")
    assert csv_path.read_text().startswith("sample,")
    assert png.stat().st_size > 1000
    with pytest.raises(ThinsegError, match="already exists"):
        res.write(tmp_path / "out")
    res.write(tmp_path / "out", overwrite=True)
    assert not math.isnan(res.optical_bias or 0.0)
