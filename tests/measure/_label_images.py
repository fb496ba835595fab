"""Label images drawn for the measurement tests: discs of known size."""

import numpy as np

from napari_thinseg.schemes import SANDSTONE

PORE = SANDSTONE.id_of("pore")
QUARTZ = SANDSTONE.id_of("quartz")
FELDSPAR = SANDSTONE.id_of("feldspar")
CLAY = SANDSTONE.id_of("clay")


def disc(shape, centre, radius):
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2


def discs_image():
    """Quartz discs r=12 in clay: 6 alone, 4 touching pairs; 2 feldspar
    discs touching quartz ones; 3 small r=6; some 3x3 specks."""
    shape = (260, 300)
    labels = np.full(shape, CLAY, np.uint8)
    centres = [(30, 30 + 45 * i) for i in range(6)]
    for i in range(4):  # pairs 23 px apart: overlapping by a sliver
        y, x = 90 + 40 * (i // 2), 40 + 130 * (i % 2)
        centres += [(y, x), (y, x + 23)]
    for c in centres:
        labels[disc(shape, c, 12)] = QUARTZ
    for y, x in [(230, 40), (230, 120)]:
        labels[disc(shape, (y, x), 12)] = QUARTZ
        labels[disc(shape, (y, x + 23), 12)] = FELDSPAR
    for x in (200, 230, 260):
        labels[disc(shape, (230, x), 6)] = QUARTZ
    for x in (200, 240, 280):
        labels[160:163, x : x + 3] = QUARTZ  # 9 px: speckle, dropped
    return labels
