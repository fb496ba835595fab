"""Prediction, from a photo to a whole-slide scan.

- :mod:`.predict`: one photo (or a folder) through a model, and its
  evaluation against labels;
- :mod:`.metrics`: confusion matrices and IoU;
- :mod:`.tiling`: overlapping tiles and their seamless stitching;
- :mod:`.slides`: whole slides, tile by tile, into resumable pyramids;
- :mod:`.cluster`: the same on a dask.distributed cluster.
"""
