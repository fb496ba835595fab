"""The table of (image, labels, crossed polars) layer rows that the
Export and Train widgets share, and how layers are matched into pairs.

Each image layer is a row with a tick box, its labels layer and, for
plane + crossed polars models, its crossed-polarised twin: an image layer
of the same field, matched by :func:`napari_thinseg.imaging.pairing.
pair_views` (by name, ``"<image> XPL"``..., or by the files the layers
were read from, ``ppl/7a.jpg`` and ``xpl/7a.jpg``...) or chosen by hand.
Twins are not rows of their own, and no image is offered as its own twin.
Pairs made by file are told once (an info notification).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from ...dataset.folders import Pair
from ...errors import ThinsegError
from ...imaging.convert import stack_views
from ...imaging.pairing import View, pair_text, pair_views
from ...schemes import SEED, ClassScheme
from ..layers import is_model_output, scheme_of
from ..notify import notify_info
from ._common import LayerCombo, LayerWatcher, layer_array, plane_shape

IMAGE, LABELS, XPL = range(3)
NAME_SUFFIXES = ("labels", "annotation", "truth")
"""``"<image> <suffix>"`` names a Labels layer as the image's labels."""
XPL_TIP = (
    "For a plane + crossed polars model: the crossed-polarised image of "
    "the same field (found by name, e.g. '<image> XPL', or by file, e.g. "
    "ppl/7a.jpg and xpl/7a.jpg)"
)

_told: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def layer_view(layer) -> View:
    """The :class:`~napari_thinseg.imaging.pairing.View` of an image
    layer: its name, the file it was read from, its 2D shape."""
    path = getattr(getattr(layer, "source", None), "path", None)
    return View(layer.name, str(path) if path else None, plane_shape(layer))


def crossed_polars_pairs(image_layers: Sequence) -> list[tuple]:
    """``(plane layer, crossed layer, text)`` of every plane + crossed
    polars pair among ``image_layers`` (the text says which layers and,
    paired by file, which files)."""
    layers = list(image_layers)
    views = [layer_view(ly) for ly in layers]
    return [
        (layers[p.plane], layers[p.crossed], pair_text(views, p))
        for p in pair_views(views)
    ]


def match_crossed_polars(image, image_layers: Sequence):
    """The Image layer paired with ``image`` as its crossed-polarised
    twin among ``image_layers`` (by name or by file), or None."""
    if image is None:
        return None
    layers = list(image_layers)
    if not any(ly is image for ly in layers):
        layers.append(image)
    for plane, crossed, _ in crossed_polars_pairs(layers):
        if plane is image:
            return crossed
    return None


def tell_file_pairs(viewer) -> None:
    """Tell once (an info notification) each plane + crossed polars pair
    made by the files the layers came from; follows the viewer's layers
    from the first call on."""
    layers = viewer.layers
    if layers not in _told:
        _told[layers] = set()
        layers.events.inserted.connect(lambda *_: _tell_new(layers))
    _tell_new(layers)


def _tell_new(layers) -> None:
    told = _told.get(layers)
    if told is None:
        return
    images = [ly for ly in layers if isinstance(ly, Image)]
    views = [layer_view(ly) for ly in images]
    for p in pair_views(views):
        key = (id(images[p.plane]), id(images[p.crossed]))
        if p.rule == "file" and key not in told:
            told.add(key)
            notify_info(f"plane + crossed polars: {pair_text(views, p)}")


def match_labels(image, labels_layers: Sequence, taken: Sequence = ()):
    """The Labels layer that most likely annotates ``image``.

    First ``"<image> labels"``, ``"<image> annotation"``, ``"<image> truth"``
    (case-insensitive), else the first layer of the same 2D shape that is
    not in ``taken`` (layers that other images claim by name) nor a
    model's prediction (:func:`~..layers.is_model_output`: chosen by hand
    only).

    Returns
    -------
    napari.layers.Labels or None
    """
    by_name = {ly.name.lower(): ly for ly in labels_layers}
    for suffix in NAME_SUFFIXES:
        layer = by_name.get(f"{image.name} {suffix}".lower())
        if layer is not None:
            return layer
    shape = plane_shape(image)
    if not shape:
        return None
    taken_ids = {id(ly) for ly in taken}
    for layer in labels_layers:
        if (
            id(layer) not in taken_ids
            and not is_model_output(layer)
            and plane_shape(layer) == shape
        ):
            return layer
    return None


def dataset_scheme(labels_layers: Sequence) -> ClassScheme:
    """The one class scheme of the chosen labels layers.

    Layers without a scheme of their own follow the others; the seed scheme
    is used when none has one.

    Raises
    ------
    ThinsegError
        Two layers carry different classes.
    """
    found = [
        (ly, s)
        for ly in labels_layers
        if (s := scheme_of(ly, default=None)) is not None
    ]
    if not found:
        return SEED
    first_layer, first = found[0]
    for layer, scheme in found[1:]:
        if scheme.classes != first.classes:
            raise ThinsegError(
                f"labels layers {first_layer.name!r} and {layer.name!r} have "
                "different class schemes; give them one scheme first "
                "(Petrographic colours)"
            )
    return first


class PairTable(QTableWidget):
    """Image layers with a tick box and a labels-layer choice each.

    Labels are matched with :func:`match_labels` (by name, else by shape);
    ticks and choices survive layer changes. Shared by the Export and
    Train widgets.

    Parameters
    ----------
    viewer : napari.Viewer
        The viewer whose layers to list.
    parent : QWidget, optional
        Qt parent.
    include : callable, optional
        ``include(image_layer)`` is false for Image layers not to list.
    keep_ticks : bool
        Whether a row whose labels choice is matched again keeps its tick
        (else it is ticked when a labels layer is found).
    purpose : str
        What the pairs are for, in the "nothing to …" message.

    Attributes
    ----------
    changed : Signal()
        Emitted when a tick or a labels choice changes.
    """

    changed = Signal()

    def __init__(
        self,
        viewer,
        parent: QWidget = None,
        *,
        include: Callable[[object], bool] | None = None,
        keep_ticks: bool = True,
        purpose: str = "train on",
    ):
        super().__init__(0, 3, parent)
        self.viewer = viewer
        self._include = include
        self._keep_ticks = keep_ticks
        self._purpose = purpose
        self._rows: list[tuple] = []
        self.setHorizontalHeaderLabels(["image", "labels", "crossed polars"])
        self.horizontalHeaderItem(XPL).setToolTip(XPL_TIP)
        self.verticalHeader().setVisible(False)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self.horizontalHeader()
        header.setSectionResizeMode(IMAGE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(LABELS, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(XPL, QHeaderView.ResizeMode.Stretch)
        self.itemChanged.connect(lambda *_: self.changed.emit())
        self._watcher = LayerWatcher(viewer, self.refresh)
        self.refresh()
        tell_file_pairs(viewer)

    def pairs_text(self) -> str:
        """The rows' crossed-polars pairs as the user reads them, ``""``
        for none."""
        images = [ly for ly in self.viewer.layers if isinstance(ly, Image)]
        chosen = {id(im): x for im, _, _, x in self.rows() if x is not None}
        return "; ".join(
            text
            for plane, crossed, text in crossed_polars_pairs(images)
            if chosen.get(id(plane)) is crossed
        )

    def refresh(self) -> None:
        """Re-list the image layers, keeping the user's ticks and choices."""
        memory = {
            id(image): (
                item.checkState() == Qt.CheckState.Checked,
                combo.currentData(),
                twin.currentData(),
            )
            for image, item, combo, twin in self._rows
        }
        every_image = [
            ly for ly in self.viewer.layers if isinstance(ly, Image)
        ]
        pairs = crossed_polars_pairs(every_image)
        found = {id(plane): (crossed, text) for plane, crossed, text in pairs}
        twins = {id(crossed) for _, crossed, _ in pairs}
        images = [
            ly
            for ly in every_image
            if (self._include is None or self._include(ly))
            and id(ly) not in twins
        ]
        labels = [ly for ly in self.viewer.layers if isinstance(ly, Labels)]
        alive = {id(ly) for ly in labels + every_image}
        plan = []
        for image in images:
            checked, chosen, twin = memory.get(id(image), (None, None, None))
            if chosen is not None and id(chosen) not in alive:
                # its labels layer was removed: matched afresh, or unticked
                chosen, checked = None, None
            if twin is None or id(twin) not in alive:
                twin = found.get(id(image), (None, ""))[0]
            plan.append([image, checked, chosen, twin])
        # layers that images claim by name, or that rows already hold, are
        # not offered to other images by shape
        taken = [match_labels(im, labels, labels) for im in images]
        taken += [entry[2] for entry in plan]
        for entry in plan:
            if entry[2] is None:
                entry[2] = match_labels(entry[0], labels, taken)
                taken.append(entry[2])
                if not self._keep_ticks:
                    entry[1] = None
            if entry[1] is None:  # a new row: ticked when it has labels
                entry[1] = entry[2] is not None
        self.blockSignals(True)
        try:
            self.setRowCount(0)
            self.setRowCount(len(images))
            self._rows = []
            for row, (image, checked, chosen, twin) in enumerate(plan):
                item = QTableWidgetItem(image.name)
                item.setFlags(
                    Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable
                )
                item.setCheckState(_check_state(checked))
                combo = QComboBox()
                combo.addItem("(none)", None)
                for layer in labels:
                    combo.addItem(layer.name, layer)
                if chosen is not None:
                    combo.setCurrentIndex(1 + labels.index(chosen))
                combo.currentIndexChanged.connect(
                    lambda *_: self.changed.emit()
                )
                twin_combo = self._twin_combo(image, every_image, twin)
                if id(image) in found:
                    twin_combo.setToolTip(f"paired: {found[id(image)][1]}")
                self.setItem(row, IMAGE, item)
                self.setCellWidget(row, LABELS, combo)
                self.setCellWidget(row, XPL, twin_combo)
                self._rows.append((image, item, combo, twin_combo))
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def _twin_combo(self, image, image_layers, twin) -> QComboBox:
        """(none) and the other image layers of the same 2D shape."""
        combo = QComboBox()
        combo.addItem("(none)", None)
        shape = plane_shape(image)
        for layer in image_layers:
            if layer is not image and plane_shape(layer) == shape:
                combo.addItem(layer.name, layer)
                if layer is twin:
                    combo.setCurrentIndex(combo.count() - 1)
        combo.currentIndexChanged.connect(lambda *_: self.changed.emit())
        return combo

    def rows(self) -> list[tuple]:
        """``(image layer, ticked, labels layer or None, crossed-polars
        layer or None)`` per row."""
        return [
            (
                image,
                item.checkState() == Qt.CheckState.Checked,
                combo.currentData(),
                twin.currentData(),
            )
            for image, item, combo, twin in self._rows
        ]

    def set_row(
        self, image_name: str, checked=None, labels_name=None, xpl_name=None
    ):
        """Tick/untick an image and/or choose its labels layer (and its
        crossed-polarised twin; ``""`` for none) by name."""
        for image, item, combo, twin in self._rows:
            if image.name != image_name:
                continue
            if checked is not None:
                item.setCheckState(_check_state(checked))
            for box, name in ((combo, labels_name), (twin, xpl_name)):
                if name is None:
                    continue
                index = box.findText(name) if name else 0
                if index < 0:
                    raise ThinsegError(f"{name}: no such layer to choose")
                box.setCurrentIndex(index)
            return
        raise ThinsegError(f"{image_name}: no such image layer")

    def chosen(self) -> list[tuple]:
        """The ticked ``(image, labels, crossed polars or None)`` layers.

        Raises
        ------
        ThinsegError
            Nothing ticked, or a ticked image without labels.
        """
        chosen = [(im, lb, xpl) for im, ok, lb, xpl in self.rows() if ok]
        if not chosen:
            raise ThinsegError(
                f"nothing to {self._purpose}: tick an image that has a "
                "labels layer"
            )
        for image, labels, _ in chosen:
            if labels is None:
                raise ThinsegError(f"{image.name}: choose its labels layer")
        twins = {xpl is not None for _, _, xpl in chosen}
        if len(twins) > 1:
            raise ThinsegError(
                "some ticked images have a crossed-polars layer and some "
                "not: choose one for each, or none"
            )
        return chosen


class TwinCombo(LayerCombo):
    """A choice of image layer, or none, for the crossed polars of the
    image that ``image_combo`` chooses: never that image itself, nor an
    image of another size."""

    def __init__(self, viewer, image_combo: LayerCombo, parent=None):
        self._image_combo = image_combo
        super().__init__(viewer, Image, parent, none="(none)")
        self.setToolTip(XPL_TIP)

    def every_image(self) -> list:
        """All the viewer's image layers, the chosen image among them."""
        return super().layers()

    def layers(self) -> list:
        image = self._image_combo.layer()
        if image is None:
            return self.every_image()
        shape = plane_shape(image)
        return [
            ly
            for ly in self.every_image()
            if ly is not image and plane_shape(ly) == shape
        ]


def crossed_polars_combo(viewer, image_combo: LayerCombo) -> TwinCombo:
    """A choice of image layer, or none, for the crossed polars of
    ``image_combo``'s image."""
    return TwinCombo(viewer, image_combo)


def chosen_twin(image, combo: TwinCombo, by_name: bool):
    """The crossed-polars layer to stack with ``image``: ``combo``'s
    choice, or with ``by_name`` the layer paired with it (by name or
    file)."""
    if by_name:
        return match_crossed_polars(image, combo.every_image())
    return combo.layer()


def layer_input(image, twin=None) -> np.ndarray:
    """The model input of an image layer: a copy of its data, stacked with
    its crossed-polarised ``twin`` layer's (6 channels) when there is one."""
    data = layer_array(image).copy()
    if twin is None:
        return data
    try:
        return stack_views(data, layer_array(twin))
    except ThinsegError as exc:
        raise ThinsegError(f"{image.name} and {twin.name}: {exc}") from None


def layer_pairs(chosen: Sequence[tuple]) -> list[Pair]:
    """:class:`Pair` copies of ``(image layer, labels layer[, crossed
    polars layer])`` tuples (:func:`layer_input`)."""
    return [
        Pair(
            image.name,
            layer_input(image, *twin),
            layer_array(labels).copy(),
            f"layer {labels.name!r}",
        )
        for image, labels, *twin in chosen
    ]


def _check_state(checked: bool):
    return Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
