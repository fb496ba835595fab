"""Transfer a trained VGG-UNet to another class scheme.

Everything but the output layer (``head_conv``: one 3 x 3 filter and bias
per class) is the same network whatever the classes, so it is copied as
it is: the encoder and decoder keep what they learnt. The output layer is
made anew for the target scheme, and each target class that the source
model also has (the same name; ids may differ) keeps its filter and bias,
so a fine-tune starts from "pore is pore" and only the new classes start
from scratch. Class 0 (unlabelled) maps to class 0.

An RGB model also transfers to a plane + crossed polars one (6 input
channels): the first convolution's kernel is the RGB kernel once per view,
divided by the number of views, so the new network starts as the old one
would see the mean of the two photos, and training learns what crossed
polars add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ThinsegError
from ..schemes import ClassScheme
from .weights import weight_layers

HEAD = "head_conv"
"""The output layer: the only one whose shape depends on the classes."""
FIRST = "block1_conv1"
"""The first convolution: the only one whose shape depends on the input
channels."""


@dataclass(frozen=True)
class Transfer:
    """What a transfer kept: ``kept`` maps target class ids to the source
    ids whose output weights they took; ``new`` are target ids whose
    output weights start from scratch."""

    kept: dict[int, int]
    new: tuple[int, ...]
    channels: tuple[int, int] | None = None
    """(source, target) input channels when they differ."""

    def describe(self, scheme: ClassScheme) -> str:
        """One line: which classes kept their output weights."""

        def names(ids):
            return (
                ", ".join(
                    scheme[i].name if i in scheme.ids else f"class {i}"
                    for i in ids
                )
                or "none"
            )

        kept = [i for i in sorted(self.kept) if i > 0]
        line = (
            f"kept the output weights of {names(kept)}; "
            f"new: {names([i for i in self.new if i > 0])}"
        )
        if self.channels:
            line += (
                f"; input widened from {self.channels[0]} to "
                f"{self.channels[1]} channels"
            )
        return line


def class_mapping(
    source: ClassScheme, n_source: int, target: ClassScheme, n_target: int
) -> dict[int, int]:
    """``{target id: source id}`` for the classes both models have: the
    same name (case and spaces ignored), and class 0 (unlabelled)."""

    def key(name: str) -> str:
        return " ".join(name.lower().split())

    by_name = {key(c.name): c.id for c in source if c.id < n_source}
    mapping = {0: 0}
    for c in target:
        if c.id < n_target and key(c.name) in by_name:
            mapping[c.id] = by_name[key(c.name)]
    return mapping


def is_identity(mapping: dict[int, int], n_source: int, n_target: int) -> bool:
    """Whether ``mapping`` keeps every output as it is (nothing to do)."""
    return n_source == n_target and all(
        mapping.get(i) == i for i in range(n_target)
    )


def transfer_weights(
    source_model,
    source_scheme: ClassScheme,
    target_model,
    target_scheme: ClassScheme,
) -> Transfer:
    """Copy ``source_model``'s weights into ``target_model`` (a VGG-UNet
    of the target scheme's class count, any input size): all layers but
    the output one as they are, and the output filters of the classes
    both schemes have (see :func:`class_mapping`); the other output
    filters keep ``target_model``'s fresh initialisation."""
    sources = {ly.name: ly for ly in weight_layers(source_model)}
    targets = weight_layers(target_model)
    if set(sources) != {ly.name for ly in targets}:
        raise ThinsegError(
            "the base model is not a VGG-UNet of this layout: cannot "
            "transfer its weights"
        )
    n_source = source_model.output_shape[-1]
    n_target = target_model.output_shape[-1]
    mapping = class_mapping(source_scheme, n_source, target_scheme, n_target)
    c_source = source_model.input_shape[-1]
    c_target = target_model.input_shape[-1]
    if c_target % c_source:
        raise ThinsegError(
            f"the base model takes {c_source} input channels: it cannot "
            f"start a model of {c_target} (use a base of 3 channels)"
        )
    for layer in targets:
        arrays = sources[layer.name].get_weights()
        if layer.name == FIRST and c_target != c_source:
            # each view gets the RGB filters, shared out between the views
            views = c_target // c_source
            kernel, bias = arrays
            arrays = [np.concatenate([kernel] * views, axis=2) / views, bias]
        if layer.name == HEAD:
            kernel, bias = (np.array(a) for a in layer.get_weights())
            src_kernel, src_bias = arrays
            for t, s in mapping.items():
                kernel[..., t] = src_kernel[..., s]
                bias[t] = src_bias[s]
            arrays = [kernel, bias]
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise ThinsegError(
                f"base model layer {layer.name}: weights of shapes "
                f"{[a.shape for a in arrays]}, expected {expected}"
            )
        layer.set_weights(arrays)
    new = tuple(i for i in range(n_target) if i not in mapping)
    channels = (c_source, c_target) if c_source != c_target else None
    return Transfer(dict(sorted(mapping.items())), new, channels)
