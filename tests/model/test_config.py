"""One validator: a config made in code and one read from a file are
refused for the same reasons, in the same words."""

import json

import pytest

from napari_thinseg.errors import ThinsegError
from napari_thinseg.model.checkpoints import read_config
from napari_thinseg.model.config import (
    CONFIG_SCHEMA,
    MAX_INPUT_SIDE,
    ModelConfig,
    check_input_size,
    config_problem,
)


@pytest.mark.parametrize(
    "change",
    [
        {"input_height": 100},
        {"input_width": 8192},
        {"n_classes": 1},
        {"n_classes": 300},
        {"model_class": "pspnet"},
        {"preprocessing": "divide"},
        {"version": "x" * 200},
    ],
)
def test_code_and_file_are_refused_alike(tmp_path, change):
    good = {"n_classes": 6, "input_height": 64, "input_width": 64}
    with pytest.raises(ThinsegError) as in_code:
        ModelConfig(**{**good, **change})
    data = {"model_class": "vgg_unet", **good, **change}
    (tmp_path / "P_config.json").write_text(json.dumps(data))
    with pytest.raises(ThinsegError) as from_file:
        read_config(tmp_path / "P")
    where = str(tmp_path / "P_config.json")
    assert str(from_file.value) == f"{where}: {in_code.value}"


def test_the_schema_carries_the_limits():
    side = CONFIG_SCHEMA["properties"]["input_height"]
    assert side["maximum"] == MAX_INPUT_SIDE and side["multipleOf"] == 32
    assert config_problem({"model_class": "vgg_unet"}).startswith(
        "config lacks"
    )


def test_input_size_check_uses_the_same_schema():
    check_input_size(64, 4096)
    with pytest.raises(
        ThinsegError, match="input_width: 100 is not a multiple of 32"
    ):
        check_input_size(64, 100)
    with pytest.raises(
        ThinsegError, match="input_height: True is not of type"
    ):
        check_input_size(True, 64)


def test_a_valid_config_round_trips():
    config = ModelConfig(6, 128, 192, trained_on={"n_images": 3})
    again = ModelConfig.from_json_dict(config.to_json_dict())
    assert again == config and again.output_width == 96
