"""Where the README's first API examples found the petrographic colours;
the code lives in :mod:`napari_thinseg.colorize`."""

from .colorize import colorize, match_colors, save_colored

__all__ = ["colorize", "match_colors", "save_colored"]
