"""The correction loop: a petrographer predicts, brushes the worst
places, trains, predicts again.

- :mod:`.held_out`: some strokes kept out of training, to judge whether
  the fine-tuned model beats the one it started from;
- :mod:`.soft_targets`: what the start model says of every pixel, which
  unpainted pixels keep while the strokes move the model;
- :mod:`.finetune`: the fine-tune from strokes (distillation, the
  budget, the verdict);
- :mod:`.next_places`: where to correct next.
"""
