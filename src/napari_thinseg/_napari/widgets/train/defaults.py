"""The Train form's defaults: the model a run starts from, and the values
its controls show until the user edits them.

- :func:`start_candidates`: what training starts from when the user has
  not chosen: the model whose prediction the labels were corrected from
  (the Predict widget's stamp on the labels layer, or on the image's
  ``"<image> prediction"`` layer), else the shipped model of the labels'
  class scheme, else a new model.
- :class:`FollowDefaults`: a control the user has not edited follows the
  form's defaults (a Fit proposal, the fine-tune recipe when the labels
  are strokes and training starts from a model); an edited one keeps the
  user's value. A fine-tune's settings are
  :func:`~napari_thinseg.strokes.finetune.finetune_settings`' (the
  core's, never the widget's), ``given`` the edited values and the sizes
  the form shows for the budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from qtpy.QtWidgets import QAbstractButton, QComboBox

from ....dataset.folders import Pair
from ....errors import ThinsegError
from ....model import checkpoints as ck
from ....model.cache import describe, trained_models
from ....schemes import ClassScheme
from ....strokes.finetune import RECIPE, TRAINED_FIELDS, wants_finetune
from ....training.loop import TrainSettings
from ....training.settings import crop_size
from ...layers import PREDICTION_KEY
from ...notify import one_line
from .._common import layer_array
from ..pair_table import dataset_scheme
from .choices import (
    START_CHECKPOINT,
    START_DEFAULT,
    START_NEW,
    START_SANDSTONE,
)

#: the settings Fit proposes for a budget
#: (:func:`~napari_thinseg.training.recipe.propose`)
SIZE_FIELDS = (
    "input_height",
    "input_width",
    "batch_size",
    "steps_per_epoch",
    "epochs",
)
#: the fine-tune recipe's settings: those the form has a control for show
#: the recipe's values for a fine-tune, :class:`TrainSettings`' otherwise
RECIPE_FIELDS = TRAINED_FIELDS


def prediction_stamps(viewer, image, labels) -> list[dict]:
    """The Predict widget's stamps (``metadata["thinseg_prediction"]``:
    the model's name, a ``prefix`` where one is stamped) that ``labels``
    may have been corrected from: its own, then those of ``image``'s
    ``"<image> prediction"`` layers, the latest first."""
    from napari.layers import Labels

    stamps = []
    own = (getattr(labels, "metadata", None) or {}).get(PREDICTION_KEY)
    if isinstance(own, dict):
        stamps.append(own)
    base = f"{image.name} prediction"
    for layer in reversed(list(viewer.layers)):
        if layer is labels or not isinstance(layer, Labels):
            continue
        if layer.name != base and not layer.name.startswith(base + " "):
            continue
        found = layer.metadata.get(PREDICTION_KEY)
        if isinstance(found, dict):
            stamps.append(found)
    return stamps


def _stamped_start(stamp: dict) -> tuple[str, str] | None:
    """``(start kind, checkpoint path)`` of the model a stamp names."""
    path = stamp.get("prefix")
    if path:
        return START_CHECKPOINT, str(path)
    name = str(stamp.get("model", ""))
    for kind, file in ck.SHIPPED_MODELS.items():
        if name == file:
            return kind, ""  # the start kinds are the shipped names
    for item in reversed(trained_models.items()):
        if item.name == name and item.checkpoint:
            # "<prefix>.<epoch>": its prefix
            return START_CHECKPOINT, str(Path(item.checkpoint).with_suffix(""))
    return None


def start_candidates(
    stamps: Sequence[dict], scheme: ClassScheme | None
) -> list[tuple[str, str]]:
    """What a run starts from when the user has not chosen, best first:
    the stamped models, the shipped model of ``scheme``, a new model.
    The caller takes the first that is there."""
    out = [s for s in map(_stamped_start, stamps) if s is not None]
    shipped = None if scheme is None else ck.shipped_model_of(scheme.names)
    if shipped is not None:
        out.append((shipped, ""))
    out.append((START_NEW, ""))
    return out


def shown_defaults(finetune: bool) -> dict:
    """What the recipe's controls show: the fine-tune recipe's values
    (:data:`~napari_thinseg.strokes.finetune.RECIPE`) for a fine-tune
    from strokes, else :class:`~napari_thinseg.training.loop.TrainSettings`'
    defaults."""
    source = RECIPE if finetune else TrainSettings()
    return {name: getattr(source, name) for name in RECIPE_FIELDS}


def finetune_text(finetune: bool) -> str:
    """The form's line on what kind of run Start makes."""
    if not finetune:
        return ""
    rate = f"{RECIPE.learning_rate:g}"
    return (
        "strokes on a model: a fine-tune that keeps what the model knows "
        f"(the recipe's {RECIPE.optimizer} at {rate} unless set here); "
        "some strokes are held out to judge it, and the better of the "
        "two models is kept"
    )


# -- controls that follow defaults ------------------------------------------
def control_value(control):
    """A control's value: a combo's data (else its text), a check box's
    state, a spin box's number."""
    if isinstance(control, QComboBox):
        data = control.currentData()
        return control.currentText() if data is None else data
    if isinstance(control, QAbstractButton):
        return control.isChecked()
    return control.value()


def set_control(control, value) -> None:
    """Set a control to ``value`` (as :func:`control_value` reads it)."""
    if isinstance(control, QComboBox):
        index = control.findData(value)
        if index < 0:
            index = control.findText(str(value))
        if index >= 0:
            control.setCurrentIndex(index)
    elif isinstance(control, QAbstractButton):
        control.setChecked(bool(value))
    else:
        control.setValue(value)


class FollowDefaults:
    """Named values (a control each, or a getter and setter) that follow
    the defaults :meth:`offer` gives until the user edits them.

    A value is edited when it differs from the last default it was given
    (so a value a session restores counts as the user's), or once
    :meth:`pin` was called for it (a choice made in code, as
    ``TrainForm.set_start``).
    """

    def __init__(self):
        self._get: dict[str, Callable[[], object]] = {}
        self._set: dict[str, Callable[[object], None]] = {}
        self._default: dict[str, object] = {}
        self._pinned: set[str] = set()

    def add(self, name: str, control=None, get=None, put=None) -> None:
        """Follow ``control`` (or the value ``get()`` reads and
        ``put(value)`` sets) as ``name``; its value now is its default."""
        self._get[name] = get or (lambda: control_value(control))
        self._set[name] = put or (lambda v: set_control(control, v))
        self._default[name] = self._get[name]()

    def __contains__(self, name: str) -> bool:
        return name in self._get

    def edited(self, name: str) -> bool:
        return name in self._pinned or self._get[name]() != self._default[name]

    def edited_names(self) -> list[str]:
        return [name for name in self._get if self.edited(name)]

    def offer(self, name: str, value, force: bool = False) -> None:
        """``value`` is ``name``'s default now: shown unless the user
        edited it (``force``: shown anyway, and no longer edited)."""
        if force:
            self._pinned.discard(name)
        elif self.edited(name):
            return
        self._set[name](value)
        self._default[name] = self._get[name]()

    def pin(self, name: str) -> None:
        """Count ``name`` as edited, whatever its value."""
        self._pinned.add(name)


class FormDefaults:
    """The :class:`~.form.TrainForm`'s reactions that keep its
    controls on their defaults (a mixin of the form, which has the
    controls, ``pairs_table``, ``budget`` and ``start_prefix``)."""

    def _follow_defaults(self) -> None:
        """Follow the form's setting controls, by their settings' names."""
        self._refreshing = False
        self.defaults = FollowDefaults()
        self.defaults.add(
            "start",
            get=lambda: (self.start_kind(), self.start_path.text().strip()),
            put=self._put_start,
        )
        for name, control in (
            ("input_height", self.input_height),
            ("input_width", self.input_width),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("steps_per_epoch", self.steps_per_epoch),
            ("optimizer", self.optimizer),
            ("augment", self.augment),
            ("colour_augment", self.colour_augment),
            ("ignore_zero", self.ignore_zero),
            ("balance_classes", self.balance),
            ("average_weights", self.average),
            ("schedule", self.schedule),
            ("seed", self.seed),
            ("frozen_blocks", self.frozen_blocks),
        ):
            self.defaults.add(name, control)
        rate = self.learning_rate
        self.defaults.add(
            "learning_rate", rate, put=lambda v: rate.setValue(v or 0.0)
        )

    def _ticked(self) -> list[tuple]:
        """The ticked ``(image, labels)`` layers."""
        return [
            (im, lb)
            for im, ok, lb, _ in self.pairs_table.rows()
            if ok and lb is not None
        ]

    def given(self, settings: TrainSettings) -> dict:
        """A fine-tune's ``given``: the values of ``settings`` the user
        edited and, with a budget, the sizes shown (Fit's proposal, or
        the user's), so that the run is the one the form shows (the
        worker's own measure of this machine's speed, taken while
        TensorFlow starts, proposed fewer steps)."""
        names = self.defaults.edited_names()
        if self.budget.budget() is not None:
            names += [n for n in SIZE_FIELDS if n not in names]
        return {
            name: getattr(settings, name)
            for name in names
            if hasattr(settings, name)
        }

    def _on_pairs_changed(self) -> None:
        self._refresh()
        labels = [lb for _, lb in self._ticked()]
        if not labels:
            self.scheme_label.setText(
                "tick images with labels layers to train on"
            )
            return
        try:
            scheme = dataset_scheme(labels)
        except ThinsegError as exc:
            self.scheme_label.setText(str(exc))
            return
        names = ", ".join(f"{c.id} {c.name}" for c in scheme)
        self.scheme_label.setText(
            f"{len(labels)} pair(s), scheme '{scheme.name}': {names}"
        )

    def _on_start_changed(self, *_) -> None:
        kind = self.start_kind()
        self.start_path.setEnabled(kind == START_CHECKPOINT)
        self.start_browse.setEnabled(kind == START_CHECKPOINT)
        # random weights are not worth keeping
        self.frozen_blocks.setEnabled(kind != START_NEW)
        self._refresh()

    def _refresh(self, *_) -> None:
        """Follow the ticked labels and the start model: the start where
        the user has not chosen one, the crop size a start model fixes
        (not in a fine-tune), the recipe's or training's defaults, and
        the sizes the budget proposes."""
        if self._refreshing:
            return
        self._refreshing = True
        try:
            self._offer_start()
            config = self._show_start()
            ticked = [layer_array(lb) for _, lb in self._ticked()]
            # the rule train_job applies to the loaded model
            finetune = wants_finetune(
                config, [Pair("", None, lab) for lab in ticked]
            )
            self._finetune = finetune
            self._start_config = None if finetune else config
            if self._start_config is not None:
                # the CLI's rule: the start model's size unless edited
                sizes = crop_size(start_config=self._start_config)
                self.defaults.offer("input_height", sizes[0])
                self.defaults.offer("input_width", sizes[1])
            for name, value in shown_defaults(finetune).items():
                if name in self.defaults:
                    self.defaults.offer(name, value)
            proposal = self.budget.proposal()
            if proposal is not None:
                self.apply_proposal(proposal, force=False)
            self.budget.update_estimate()
            self.run_label.setText(finetune_text(finetune))
            self.run_label.setVisible(finetune)
        finally:
            self._refreshing = False

    def _offer_start(self) -> None:
        """Start from the model the labels were corrected from, else the
        shipped model of their scheme, else a new one (until the user
        chooses)."""
        if self.defaults.edited("start"):
            return
        ticked = self._ticked()
        stamps = [
            stamp
            for image, labels in ticked
            for stamp in prediction_stamps(self.viewer, image, labels)
        ]
        try:
            scheme = dataset_scheme([lb for _, lb in ticked])
        except ThinsegError:
            scheme = None
        for kind, path in start_candidates(stamps, scheme if ticked else None):
            try:
                if kind != START_NEW:
                    self._prefix_of(kind, path)
            except ThinsegError:
                continue  # not installed, or no such checkpoint
            self.defaults.offer("start", (kind, path))
            self._on_start_changed()
            return

    def _show_start(self):
        """Say what training starts from; the start model's config (None
        for a new model, or one that cannot be read)."""
        kind = self.start_kind()
        try:
            prefix = None
            if kind in (START_DEFAULT, START_SANDSTONE) or (
                kind == START_CHECKPOINT and self.start_path.text().strip()
            ):
                prefix = self.start_prefix()
            config = None if prefix is None else describe(prefix).config
        except ThinsegError as exc:
            if kind in (START_DEFAULT, START_SANDSTONE):
                self.model_label.setText(
                    f"the {kind} model is not installed: train a new "
                    "model or start from a checkpoint"
                )
            else:
                self.model_label.setText(one_line(exc))
            return None
        if config is None:
            self.model_label.setText(
                "a new VGG-UNet with random weights"
                if kind == START_NEW
                else "choose a checkpoint config (P_config.json)"
            )
            return None
        self.model_label.setText(
            f"{config.n_classes} classes ('{config.class_scheme.name}'), "
            f"input {config.input_height}×{config.input_width}"
        )
        return config
