"""Training the VGG-UNet.

- :mod:`.settings`: keras-segmentation's training settings, checked;
- :mod:`.recipe`: what a run should be (optimizer, crops, epochs that
  fit a budget: :func:`~.recipe.propose`);
- :mod:`.loop`: :func:`~.loop.train`, the progress generator that runs
  it, checkpoints every epoch and stops at the budget.

Fine-tuning on brush strokes builds on these in :mod:`..strokes`.
"""
