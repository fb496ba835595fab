"""The VGG-UNet family, from the bottom up:

- :mod:`.backend`: TensorFlow, imported once, lazily and safely;
- :mod:`.config`: :class:`~.config.ModelConfig` and the one JSON schema
  that every config is checked against;
- :mod:`.weights`: weights files read and written, put into a model by
  layer order with every shape checked;
- :mod:`.vgg_unet`: the network, layer for layer keras-segmentation's;
- :mod:`.keras_archive`: ``.keras`` files, loaded safely;
- :mod:`.checkpoints`: ``P_config.json`` + ``P.<epoch>`` folders, the
  shipped models, and the rule for checkpoints that already exist;
- :mod:`.cache`: loaded and just-trained models kept for the next
  prediction, safe to share between threads.

Importing any of them is cheap; TensorFlow loads on first use.
"""
