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


def test_seed_gray_classes_read_apart_and_old_names_still_load():
    """Issue 26: classes 2 and 4 read "darker grains" and "darker grains
    (medium gray)"; their names now tell them apart at a glance, and
    schemes saved with the old names (the shipped model's config, a
    dataset's classes.json, a layer's features) load as the seed's."""
    from pathlib import Path

    from napari_thinseg.model.transfer import class_mapping

    names = {c.id: c.name for c in SEED}
    assert names[2] == "dark-gray grains"
    assert names[4] == "medium-gray grains"
    assert SEED.pore_ids == (3,) and SEED.ids == [1, 2, 3, 4, 5]
    first_words = [n.split()[0] for n in SEED.names]
    assert len(set(first_words)) == len(first_words)

    old = SEED.to_dict()
    old["classes"][1]["name"] = "darker grains"
    old["classes"][3]["name"] = "darker grains (medium gray)"
    assert ClassScheme.from_dict(old) == SEED
    features = SEED.to_features()
    features["name"][2] = "darker grains"
    features["name"][4] = "darker grains (medium gray)"
    assert ClassScheme.from_features(features, "seed").classes == SEED.classes
    assert SEED.id_of("darker grains (medium gray)") == 4
    assert SEED.id_of("Dark-gray grains") == 2
    shipped = Path(__file__).parents[1] / "weights/thinseg_default_config.json"
    if shipped.is_file():
        config = json.loads(shipped.read_text())
        saved = config.get("class_scheme") or config.get("scheme")
        if saved is not None:
            loaded = ClassScheme.from_dict(saved)
            assert loaded.classes == SEED.classes
            mapping = class_mapping(loaded, 6, SEED, 6)
            assert mapping == {i: i for i in range(6)}
