"""The Train widget's loss and IoU plots on a real viewer."""

from __future__ import annotations

import os
from pathlib import Path

from napari_thinseg._napari.widgets.train.plots import (
    NO_IOU,
    NO_LOSS,
    TrainingPlots,
)
from napari_thinseg.schemes import SEED
from napari_thinseg.training.loop import TrainEvent

SHOTS = os.environ.get("THINSEG_SCREENSHOTS")


def test_empty_plots_say_no_data_yet(make_napari_viewer, qtbot):
    """Issue 26: empty loss and IoU plots showed axes of -0.04 to 0.04;
    they say "no data yet" until there is some."""
    viewer = make_napari_viewer()
    plots = TrainingPlots(viewer)
    qtbot.addWidget(plots)
    plots.resize(420, 420)
    plots.reset(SEED, validation=True)
    plots.figure.canvas.draw()
    for ax, note in ((plots.loss_ax, NO_LOSS), (plots.iou_ax, NO_IOU)):
        assert plots.is_empty(ax)
        assert plots.empty_texts[ax].get_text() == note
        assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []
        assert ax.get_xlim() == (0, 1)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        plots.grab().save(str(Path(SHOTS) / "train_plots_empty.png"))

    for step in (1, 2, 3):
        plots.add(TrainEvent(step=step, total=3, loss=1.0 / step))
    plots.redraw()
    assert not plots.is_empty(plots.loss_ax) and plots.is_empty(plots.iou_ax)
    low, high = plots.loss_ax.get_ylim()
    assert low < 0.34 and high > 0.99  # the losses, not -0.04..0.04
    assert plots.loss_ax.get_xlim()[1] >= 3  # the batches
    iou = tuple([0.0] + [0.5] * 5)
    plots.add(
        TrainEvent(
            step=3,
            total=3,
            loss=0.4,
            epoch_end=True,
            val_iou=iou,
            val_mean_iou=0.5,
        )
    )
    plots.figure.canvas.draw()
    assert not plots.is_empty(plots.iou_ax)
    assert len(plots.iou_ax.get_yticks()) > 2
    if SHOTS:
        plots.grab().save(str(Path(SHOTS) / "train_plots_data.png"))
    # a new run starts empty again
    plots.reset(SEED, validation=False)
    assert plots.is_empty(plots.loss_ax) and plots.is_empty(plots.iou_ax)
