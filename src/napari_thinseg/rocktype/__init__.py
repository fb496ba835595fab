"""Rock typing from plugs and thin sections: petrophysics (Winland r35,
RQI / FZI, flow units), the samples and features tables, cross-validated
image models against baselines, and the study that ties them together."""

from .study import rock_typing

__all__ = ["rock_typing"]
