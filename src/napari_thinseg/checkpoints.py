"""Where the README's first API examples found checkpoints; the code lives
in :mod:`napari_thinseg.model.checkpoints`."""

from .model.checkpoints import default_model_prefix, load_model

__all__ = ["default_model_prefix", "load_model"]
