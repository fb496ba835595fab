import imageio.v3 as iio
import numpy as np
import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.rocktype import tables as sm


# -- samples table ------------------------------------------------------------
def cols(**kw):
    base = {"sample": ["a", "b", "c"], "permeability_md": ["10", "1", "100"]}
    base.update(kw)
    return base


def test_porosity_percent_detected_when_values_exceed_one():
    s = sm.samples_from_columns(cols(porosity=["12", "0.8", "25"]))
    assert s.porosity.tolist() == pytest.approx([0.12, 0.008, 0.25])
    assert "percent" in s.porosity_note


def test_porosity_fraction_detected_when_all_at_most_one():
    s = sm.samples_from_columns(cols(Porosity=["0.12", "0.08", "0.25"]))
    assert s.porosity.tolist() == pytest.approx([0.12, 0.08, 0.25])
    assert "fraction" in s.porosity_note


def test_explicit_porosity_columns():
    # a tight rock in percent (all < 1) is read right when the column says so
    s = sm.samples_from_columns(cols(porosity_percent=["0.5", "0.8", "0.9"]))
    assert s.porosity.tolist() == pytest.approx([0.005, 0.008, 0.009])
    s = sm.samples_from_columns(cols(porosity_fraction=[".1", ".2", ".3"]))
    assert s.porosity.tolist() == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(ThinsegError, match="porosity_percent"):
        sm.samples_from_columns(cols(porosity_fraction=["12", ".2", ".3"]))


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"porosity": ["0.1", "0.2", "0"]}, "'c'"),
        ({"porosity": ["10", "20", "100"]}, "outside"),
        (
            {
                "porosity": [".1", ".2", ".3"],
                "permeability_md": ["1", "0", "2"],
            },
            "not positive",
        ),
        ({"porosity": [".1", "x", ".3"]}, "not a number"),
        ({"porosity": [".1", "", ".3"]}, "no porosity"),
        (
            {"porosity": [".1", ".2", ".3"], "porosity_percent": ["1"] * 3},
            "porosity columns",
        ),
        ({"sample": ["a", "a", "c"], "porosity": [".1"] * 3}, "twice"),
        ({"permeability_md": None, "porosity": [".1"] * 3}, "permeability"),
    ],
)
def test_bad_samples_tables(kw, words):
    table = cols(**kw)
    table = {k: v for k, v in table.items() if v is not None}
    with pytest.raises(ThinsegError, match=words) as info:
        sm.samples_from_columns(table, source="s.csv")
    assert "\n" not in str(info.value)


def test_missing_porosity_column_is_named():
    with pytest.raises(ThinsegError, match="no porosity"):
        sm.samples_from_columns(cols())


def test_read_samples_csv_variants(tmp_path):
    p = tmp_path / "s.csv"
    # Excel's BOM, semicolons, spaces in headers and a blank line
    p.write_text(
        "\ufeffSample; Porosity ; Permeability mD;Formation\n"
        "a;12;10;X\n\nb;20;300;Y\n",
        encoding="utf-8",
    )
    s = sm.read_samples(p)
    assert s.names == ("a", "b")
    assert s.porosity.tolist() == pytest.approx([0.12, 0.20])
    assert s.formations == ("X", "Y")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not a readable CSV"),
        (b"sample,porosity,permeability_md\na,0.1\n", "row 2"),
    ],
)
def test_read_samples_unreadable(tmp_path, content, words):
    p = tmp_path / "s.csv"
    p.write_bytes(content)
    with pytest.raises(ThinsegError, match=words):
        sm.read_samples(p)
    with pytest.raises(ThinsegError, match="no such file"):
        sm.read_samples(tmp_path / "nope.csv")


# -- features table -----------------------------------------------------------
def test_read_features_table(tmp_path):
    p = tmp_path / "f.csv"
    p.write_text(
        "sample,porosity_fraction,note,grain_mean_phi\n"
        "a,0.1,ok,2.0\nb,0.2,fine,\n"
    )
    f = sm.read_features(p)
    assert f.columns == ("porosity_fraction", "grain_mean_phi")
    assert np.isnan(f.values[1, 1])
    p.write_text("sample,porosity_fraction\na,0.1\nb,oops\nc,0.2\n")
    with pytest.raises(ThinsegError, match="mixes numbers and text"):
        sm.read_features(p)


def test_measure_features_from_label_pngs(tmp_path):
    from napari_thinseg.schemes import SEED

    files = {}
    for i, frac in enumerate((0.1, 0.2, 0.3)):
        labels = np.full((40, 50), 5, np.uint8)
        labels.reshape(-1)[: int(frac * labels.size)] = 3  # the pore class
        files[f"s{i}"] = tmp_path / f"s{i}.png"
        iio.imwrite(files[f"s{i}"], labels)
    feats = sm.measure_features(files, SEED, pixel_size_um=2.0)
    assert feats.names == ("s0", "s1", "s2")
    assert feats.column("porosity_fraction") == pytest.approx([0.1, 0.2, 0.3])
