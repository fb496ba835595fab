"""Training data: keras-segmentation's folder layout and what feeds it.

- :mod:`.folders`: image / annotation folders paired, checked and read
  (keras-segmentation's dataset layout);
- :mod:`.augment`: flips, turns and colour jitter of training crops;
- :mod:`.synth`: synthetic sandstones with exact labels, for tests,
  samples and replay.
"""
