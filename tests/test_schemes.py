import json

import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.schemes import (
    SANDSTONE,
    SEED,
    ClassScheme,
    PetroClass,
    get_scheme,
    hex_to_rgb,
)


def test_seed_scheme_is_the_seed_classes():
    assert SEED.ids == [1, 2, 3, 4, 5]
    assert SEED.pore_ids == (3,)
    assert "epoxy" in SEED[3].name
    assert SEED.n_classes == 6  # keras-segmentation counts class 0 too


def test_default_colours_are_petrographic():
    r, g, b = SEED[3].rgb  # pores blue
    assert b > 180 and b > r + 100
    assert min(SEED[5].rgb) > 220  # quartz near white
    assert max(SEED[1].rgb) < 40  # opaque black
    r, g, b = SEED[2].rgb  # darker grains brown: red > green > blue
    assert r > g > b
    assert SANDSTONE.pore_id == 1 and len(SANDSTONE) == 10
    assert SANDSTONE.names[:3] == ["pore", "quartz", "feldspar"]


def test_json_round_trip(tmp_path):
    edited = SEED.with_class(6, "clay", "#7D8A4C").recolored({1: "#000000"})
    path = edited.save(tmp_path / "classes.json")
    back = ClassScheme.load(path)
    assert back == edited
    assert back[6].color == "#7d8a4c"
    assert json.loads(path.read_text())["classes"][0] == {
        "id": 1,
        "name": "black (opaque) grains",
        "color": "#000000",
    }
    assert get_scheme(tmp_path) == edited
    assert get_scheme("sandstone") is SANDSTONE
    assert get_scheme(None) is SEED


def test_features_round_trip():
    features = SANDSTONE.to_features()
    assert features["index"][0] == 0 and features["name"][0] == "unlabelled"
    back = ClassScheme.from_features(features, "x")
    assert back.classes == SANDSTONE.classes
    assert back.pore_ids == (1,)


def test_colormap_dict_and_lut():
    cmap = SEED.colormap_dict()
    assert cmap[0][3] == 0  # unlabelled transparent
    assert cmap[3] == pytest.approx((0x1F / 255, 0x5F / 255, 0xD0 / 255, 1))
    assert SEED.lut()[3].tolist() == list(hex_to_rgb(SEED[3].color))
    assert SEED.lut()[0].tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PetroClass(0, "x", "#000000"), "1..255"),
        (lambda: PetroClass(256, "x", "#000000"), "1..255"),
        (lambda: PetroClass(1, " ", "#000000"), "empty name"),
        (lambda: PetroClass(1, "x", "red"), "rrggbb"),
        (lambda: ClassScheme("s", ()), "no classes"),
        (
            lambda: ClassScheme(
                "s",
                (PetroClass(1, "a", "#000000"), PetroClass(1, "b", "#000000")),
            ),
            "repeats an id",
        ),
        (
            lambda: ClassScheme(
                "s",
                (PetroClass(1, "a", "#000000"), PetroClass(2, "a", "#000000")),
            ),
            "repeats a name",
        ),
        (
            lambda: ClassScheme("s", (PetroClass(1, "a", "#000000"),), (2,)),
            "pore class",
        ),
        (lambda: ClassScheme.from_json("[1]"), "object"),
        (lambda: ClassScheme.from_json("{"), "not valid JSON"),
        (
            lambda: ClassScheme.from_json('{"classes": [{"id": 1}]}'),
            "not a class scheme",
        ),
        (lambda: get_scheme("nonsense"), "not a built-in scheme"),
    ],
)
def test_bad_schemes(make, message):
    with pytest.raises(ThinsegError, match=message):
        make()
