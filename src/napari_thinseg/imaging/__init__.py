"""Images in and out: conversion to float / uint8 RGB (:mod:`.convert`),
resizing (:mod:`.resize`), image and annotation files (:mod:`.files`) and
safe writes (:mod:`.atomic`).

The bottom of the pipeline: it imports nothing of the package but
:mod:`napari_thinseg.errors`.
"""
