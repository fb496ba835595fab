"""What a VGG-UNet checkpoint config holds, checked by one validator.

:data:`CONFIG_SCHEMA` (JSON schema) is the single source of what a
``P_config.json`` may hold: :func:`check_config` checks a config read from
disk against it, and :class:`ModelConfig` checks itself against it when it
is made, so a config made in code and one read from a file are refused for
the same reasons in the same words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from .._version import __version__
from ..errors import ThinsegError
from ..schemes import SEED, ClassScheme, generic_scheme

MODEL_CLASS = "vgg_unet"
MAX_INPUT_SIDE = 4096
MAX_CLASSES = 256

_SIDE_SCHEMA = {
    "type": "integer",
    "minimum": 32,
    "maximum": MAX_INPUT_SIDE,
    "multipleOf": 32,
}
_HINTS = {
    "input_height": f"a multiple of 32 in 32..{MAX_INPUT_SIDE}",
    "input_width": f"a multiple of 32 in 32..{MAX_INPUT_SIDE}",
    "n_classes": f"an integer in 2..{MAX_CLASSES}",
    "input_channels": "3 (RGB) or 6 (plane + crossed polars)",
}

CONFIG_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "napari-thinseg / keras-segmentation checkpoint config",
    "type": "object",
    "required": ["model_class", "n_classes", "input_height", "input_width"],
    "properties": {
        "model_class": {"type": "string", "enum": [MODEL_CLASS]},
        "n_classes": {"type": "integer", "minimum": 2, "maximum": MAX_CLASSES},
        "input_height": _SIDE_SCHEMA,
        "input_width": _SIDE_SCHEMA,
        "input_channels": {"type": "integer", "enum": [3, 6, 9, 12]},
        "output_height": {"type": "integer", "minimum": 1},
        "output_width": {"type": "integer", "minimum": 1},
        "scheme": {"type": ["object", "null"]},
        "preprocessing": {"type": "string", "enum": ["sub_mean"]},
        "version": {"type": "string", "maxLength": 100},
        "trained_on": {"type": "object"},
    },
}
"""What a ``P_config.json`` may hold; keys keras-segmentation or later
versions add are allowed and ignored."""


def config_problem(data, schema: dict = CONFIG_SCHEMA) -> str | None:
    """The first way ``data`` breaks ``schema``, in one line; None if it
    does not."""
    import jsonschema

    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(data)
    )
    if error is None:
        return None
    where = "/".join(str(k) for k in error.absolute_path)
    if not where and error.validator == "type":
        return "config must be a JSON object"
    if error.validator == "required":
        missing = sorted(set(schema["required"]) - set(data))
        return f"config lacks {', '.join(missing)}"
    if where == "model_class":
        return (
            f"unknown model_class {error.instance!r} (this plugin builds "
            f"{MODEL_CLASS!r})"
        )
    message = f"{where}: {error.message[:200]}"
    if where in _HINTS:
        message += f" (must be {_HINTS[where]})"
    return message


def check_config(data, where: str | None = None) -> None:
    """Refuse a config that does not match :data:`CONFIG_SCHEMA`, naming
    the first offending key (and ``where`` it came from)."""
    problem = config_problem(data)
    if problem is not None:
        raise ThinsegError(f"{where}: {problem}" if where else problem)


def check_input_size(height, width) -> None:
    """VGG pools four times and the decoder needs even sizes: multiples of
    32, as keras-segmentation asserts."""
    sides = {"input_height": height, "input_width": width}
    problem = config_problem(
        sides,
        {
            "type": "object",
            "required": list(sides),
            "properties": dict.fromkeys(sides, _SIDE_SCHEMA),
        },
    )
    if problem is not None:
        raise ThinsegError(problem)


@dataclass
class ModelConfig:
    """What keras-segmentation writes to ``<checkpoints>_config.json``, and
    ours besides (class scheme, preprocessing, version, training data).

    ``input_channels`` is 3 for an RGB photo (keras-segmentation's model,
    and then not written), 6 for plane + crossed polars stacked (our
    extension: keras-segmentation cannot load such a checkpoint).
    """

    n_classes: int
    input_height: int = 416
    input_width: int = 608
    input_channels: int = 3
    model_class: str = MODEL_CLASS
    scheme: dict | None = None
    preprocessing: str = "sub_mean"
    version: str = ""
    trained_on: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.version:
            self.version = __version__
        check_config({f.name: getattr(self, f.name) for f in fields(self)})

    @property
    def output_height(self) -> int:
        return self.input_height // 2

    @property
    def output_width(self) -> int:
        return self.input_width // 2

    @property
    def n_views(self) -> int:
        """Co-registered RGB photos per input (2: plane + crossed polars)."""
        return self.input_channels // 3

    @property
    def class_scheme(self) -> ClassScheme:
        """The scheme stored with the model; the seed scheme (or generic
        class names) when the checkpoint came without one."""
        if self.scheme:
            return ClassScheme.from_dict(self.scheme)
        if self.n_classes == SEED.n_classes:
            return SEED
        return generic_scheme(self.n_classes)

    def to_json_dict(self) -> dict:
        data = asdict(self)
        if data["input_channels"] == 3:
            del data["input_channels"]  # keras-segmentation's config
        return {
            "model_class": data.pop("model_class"),
            "n_classes": data.pop("n_classes"),
            "input_height": data.pop("input_height"),
            "input_width": data.pop("input_width"),
            "output_height": self.output_height,
            "output_width": self.output_width,
            **data,
        }

    @classmethod
    def from_json_dict(cls, data, where: str | None = None) -> ModelConfig:
        """A config from a ``P_config.json`` dict, checked; ``where`` (the
        file) prefixes every message."""
        check_config(data, where)
        kwargs = {
            k: v
            for k, v in data.items()
            if k in CONFIG_SCHEMA["properties"]
            and k not in ("output_height", "output_width")
        }
        prefix = f"{where}: " if where else ""
        try:
            config = cls(**kwargs)
            if config.scheme is not None:
                config.class_scheme  # noqa: B018  (validates the scheme)
        except (ThinsegError, TypeError) as exc:
            raise ThinsegError(f"{prefix}{exc}") from None
        for key in ("output_height", "output_width"):
            if key in data and data[key] != getattr(config, key):
                raise ThinsegError(
                    f"{prefix}{key} {data[key]!r} does not match the input "
                    f"size (expected {getattr(config, key)})"
                )
        return config
