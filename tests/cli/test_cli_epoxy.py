"""``thinseg autolabel --method epoxy``: the dye found unaided, samples,
and the fixed window's flags in both spellings (issue 26)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest
from test_cli import assert_bad_input, thinseg
from test_epoxy import iou, photo

from napari_thinseg.schemes import SEED


@pytest.fixture
def pale(tmp_path):
    """A warm photo of deep dye with a far paler corner."""
    image, pore = photo((0.1, 0.3, 0.8), seed=3)
    corner = np.zeros(pore.shape, bool)
    corner[:30, :40] = pore[:30, :40]
    image[corner] = (200, 203, 196)
    path = tmp_path / "pale.png"
    iio.imwrite(path, image)
    return path, pore, corner


def _pores(folder):
    return iio.imread(folder / "pale.png") == SEED.pore_id


def test_epoxy_unaided_and_with_a_sample(pale, tmp_path):
    path, pore, corner = pale
    proc = thinseg(
        "autolabel", path, "--out", tmp_path / "a", "--method", "epoxy"
    )
    assert proc.returncode == 0, proc.stderr
    found = _pores(tmp_path / "a")
    assert iou(found & ~corner, pore & ~corner) > 0.95
    assert found[corner].mean() < 0.1
    y, x = np.argwhere(corner)[len(np.argwhere(corner)) // 2]
    proc = thinseg(
        "autolabel",
        path,
        "--out",
        tmp_path / "b",
        "--method",
        "epoxy",
        "--epoxy_sample",
        x,
        y,
        "--epoxy_sample",
        100,
        80,
    )
    assert proc.returncode == 0, proc.stderr
    assert _pores(tmp_path / "b")[corner].mean() > 0.9


def test_both_spellings_of_the_window_flags(pale, tmp_path):
    path = pale[0]
    outs = []
    for k, flags in enumerate(
        (
            ("--min_saturation", "0.3", "--min_value", "0.7"),
            ("--min-saturation", "0.3", "--min-value", "0.7"),
        )
    ):
        out = tmp_path / f"o{k}"
        proc = thinseg(
            "autolabel", path, "--out", out, "--method", "epoxy", *flags
        )
        assert proc.returncode == 0, proc.stderr
        outs.append(iio.imread(out / "pale.png"))
    np.testing.assert_array_equal(outs[0], outs[1])
    # a fixed window took over: the dye (value 0.58) is darker than it
    assert not (outs[0] == SEED.pore_id).any()
    text = thinseg("autolabel", "--help").stdout
    assert "--min_saturation" in text and "--epoxy_sample X Y" in text
    assert "--min-saturation" not in text and "--min-value" not in text


@pytest.mark.parametrize(
    "extra, words",
    [
        (("--epoxy_sample", "500", "3"), ("outside the image",)),
        (("--epoxy_sample", "1", "1", "--hue", "0.4", "0.7"), ("not both",)),
        (("--epoxy_sample", "a", "1"), ("invalid int",)),
    ],
)
def test_bad_samples_are_one_line(pale, tmp_path, extra, words):
    proc = thinseg(
        "autolabel",
        pale[0],
        "--out",
        tmp_path / "o",
        "--method",
        "epoxy",
        *extra,
    )
    assert_bad_input(proc, *words)


def test_a_sample_on_a_grain_or_without_epoxy_is_refused(pale, tmp_path):
    path, pore, _ = pale
    y, x = np.argwhere(~pore)[0]
    proc = thinseg(
        "autolabel",
        path,
        "--out",
        tmp_path / "o",
        "--method",
        "epoxy",
        "--epoxy_sample",
        x,
        y,
    )
    assert_bad_input(proc, "pale.png", "sample")
    proc = thinseg(
        "autolabel", path, "--out", tmp_path / "o", "--epoxy_sample", 1, 1
    )
    assert_bad_input(proc, "need --method epoxy")


def test_pale_dye_unaided(tmp_path):
    """The fixed window of old found none of this pale dye."""
    image, pore = photo((0.62, 0.72, 0.82))
    iio.imwrite(tmp_path / "pale.png", image)
    out = tmp_path / "o"
    proc = thinseg(
        "autolabel", tmp_path / "pale.png", "--out", out, "--method", "epoxy"
    )
    assert proc.returncode == 0, proc.stderr
    assert iou(_pores(out), pore) > 0.95
