"""The Train widget's time budget: "train for N minutes", sizes that fit
it, and the estimated time of the current settings shown before Start.
The budget starts at a fine-tune's
(:data:`~napari_thinseg.strokes.finetune.DEFAULT_MINUTES`).

The estimate comes from :mod:`napari_thinseg.training.recipe`: the machine's
matrix-product speed, measured once (a few milliseconds), and the work of
a training step.
"""

from __future__ import annotations

from collections.abc import Callable

from qtpy.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from ....model.backend import BF16_CPU_FLAGS, cpu_flags
from ....strokes.finetune import DEFAULT_MINUTES
from ....training.recipe import (
    Proposal,
    propose,
    seconds_per_step,
    sgemm_gflops,
)
from .._common import button


def cpu_precision(precision: str) -> str:
    """What ``precision`` means on this CPU, without asking TensorFlow
    (which is not loaded before Start) about a GPU: an estimate of GPU
    training would be pessimistic, never optimistic."""
    if precision != "auto":
        return precision
    return "bfloat16" if cpu_flags() & BF16_CPU_FLAGS else "float32"


class BudgetRow(QWidget):
    """Minutes of training (0: no budget), a "fit" button and the
    estimate.

    Parameters
    ----------
    shapes : callable
        The ticked training images' ``(height, width)``.
    sizes : callable
        The form's ``(height, width, batch, steps per epoch, epochs,
        precision, frozen encoder blocks)``.
    apply : callable
        Puts a :class:`~napari_thinseg.training.recipe.Proposal` into the form
        (Fit: over the user's sizes too).
    """

    def __init__(
        self,
        shapes: Callable[[], list[tuple[int, int]]],
        sizes: Callable[[], tuple[int, int, int, int, int, str, int]],
        apply: Callable[[Proposal], None],
    ):
        super().__init__()
        self._shapes, self._sizes, self._apply = shapes, sizes, apply
        self._gflops: float | None = None
        self.minutes = QDoubleSpinBox()
        self.minutes.setRange(0.0, 10_000.0)
        self.minutes.setDecimals(1)
        self.minutes.setSingleStep(1.0)
        self.minutes.setSuffix(" min")
        self.minutes.setSpecialValueText("no budget")
        self.minutes.setValue(DEFAULT_MINUTES)
        self.minutes.setToolTip(
            "Train for this long at most (0: until the epochs are done); "
            "'fit' proposes crop size, batch and steps for it"
        )
        self.fit_button = button(
            "Fit", self.fit, "Crop size, batch and steps for the budget"
        )
        self.estimate = QLabel("")
        self.estimate.setWordWrap(True)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.minutes)
        row.addWidget(self.fit_button)
        row.addWidget(self.estimate, 1)

    def budget(self) -> float | None:
        """The budget in minutes, None for none."""
        value = self.minutes.value()
        return value if value > 0 else None

    def gflops(self) -> float:
        if self._gflops is None:
            self._gflops = sgemm_gflops()
        return self._gflops

    def proposal(self) -> Proposal | None:
        """The sizes that fit the budget on this machine for the ticked
        images (None without a budget or images)."""
        minutes, shapes = self.budget(), self._shapes()
        if minutes is None or not shapes:
            return None
        *_, precision, frozen = self._sizes()
        return propose(
            shapes, minutes, cpu_precision(precision), self.gflops(), frozen
        )

    def fit(self) -> Proposal | None:
        """Put sizes that fit the budget into the form (nothing without a
        budget or images)."""
        proposal = self.proposal()
        if proposal is not None:
            self._apply(proposal)
        self.update_estimate()
        return proposal

    def seconds(self) -> float:
        """Estimated seconds of the form's settings on this machine."""
        height, width, batch, steps, epochs, precision, frozen = self._sizes()
        step = seconds_per_step(
            height,
            width,
            batch,
            cpu_precision(precision),
            self.gflops(),
            frozen,
        )
        return step * steps * epochs

    def update_estimate(self, *_) -> None:
        if self.budget() is not None and not self._shapes():
            # the sizes are fitted to the images once they are ticked
            self.estimate.setText(
                "sizes fit the budget once images are ticked"
            )
            return
        minutes = self.seconds() / 60
        text = (
            f"about {minutes:.0f} min on this machine"
            if minutes >= 1
            else f"about {max(1, round(minutes * 60))} s on this machine"
        )
        budget = self.budget()
        if budget is not None and minutes > budget:
            text += f"; stops at {budget:g} min"
        self.estimate.setText(text)
