"""The slow steps of auto-label for the plane a preview shows, kept.

Auto-label is slow where it smooths (the gray level, the blue-dye mask)
and where multi-Otsu searches the histogram, and fast where it bins. A
preview that follows a threshold slider keeps the slow parts of its plane
and only re-bins: :class:`PreviewCache` holds the smoothed gray, the
blue-dye mask and the multi-Otsu thresholds of one plane, each keyed by
the plane and the parameters it depends on (the gray on sigma, the mask on
sigma and the epoxy window or samples, the thresholds on sigma and the
class count). A mask the photo's own dye gave keeps its
:class:`~.epoxy.EpoxyFit` beside it (:attr:`PreviewCache.fit`), for the
view that shows what was chosen.
A threshold move then costs milliseconds; a sigma change recomputes.

Filling is split so that the slow part can run in a worker thread while
only one thread ever touches the cache: :meth:`PreviewCache.missing` says
what is lacking (a :class:`CacheFill`), :meth:`CacheFill.compute` does the
slow work in any thread, and :meth:`PreviewCache.store` puts in what it
computed, also what it computed before an error.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

import numpy as np

from ..errors import ThinsegError
from ..imaging.files import check_image
from .epoxy import find_epoxy
from .rule import (
    AutoLabelParams,
    EpoxyWindow,
    epoxy_mask,
    labels_from_gray,
    multiotsu_thresholds,
    smoothed_gray,
)


@dataclass
class CacheFill:
    """What a :class:`PreviewCache` lacks for one plane and parameters.

    Made by :meth:`PreviewCache.missing`; :meth:`compute` puts the parts it
    computes in ``computed`` (``"gray"``, ``"blue"``, ``"otsu"``) and
    :meth:`PreviewCache.store` moves them into the cache.
    """

    gray_key: tuple
    blue_key: tuple | None
    otsu_key: tuple | None
    sigma: float
    #: the cached smoothed gray (None: compute it)
    gray: np.ndarray | None
    #: compute the blue-dye mask in this window (None: not needed, or the
    #: dye is found in the image: see ``need_blue``)
    window: EpoxyWindow | None
    #: compute this many multi-Otsu classes (None: not needed)
    n_classes: int | None
    #: the cache's generation when asked (a clear since drops the parts)
    generation: int
    computed: dict = field(default_factory=dict)
    #: whether the blue-dye mask is computed at all
    need_blue: bool = False
    #: colours of sampled dye refining the found dye (``window`` None)
    samples: tuple = ()

    def compute(self, image, name: str = "image", rgb: bool = False) -> None:
        """Compute the missing parts from the plane ``image``.

        The slow step; safe in a worker thread (it touches no cache). What
        was computed before an error stays in ``computed``.

        Raises
        ------
        ThinsegError
            If ``image`` is no usable image, the epoxy method is asked of a
            gray one, or multi-Otsu fails.
        """
        image = np.asarray(image)
        gray = self.gray
        if gray is None:
            check_image(image, name)
            gray = self.computed["gray"] = smoothed_gray(
                image, self.sigma, rgb=rgb
            )
        if self.need_blue:
            if not rgb:
                raise ThinsegError(
                    f"{name}: the blue-epoxy method needs a colour (RGB) "
                    "image; use gray thresholds or multi-Otsu"
                )
            if self.window is None:
                blue, fit = find_epoxy(image, self.sigma, self.samples)
                self.computed["blue"] = blue
                self.computed["fit"] = fit
            else:
                blue = epoxy_mask(image, self.sigma, self.window)
                self.computed["blue"] = blue
        if self.n_classes is not None:
            self.computed["otsu"] = multiotsu_thresholds(gray, self.n_classes)


class PreviewCache:
    """Smoothed gray, blue-dye mask and multi-Otsu thresholds of one plane.

    ``source`` arguments name the plane: any hashable that changes when the
    plane does (the widget uses the layer, its data and the plane index).
    The cache holds one of each part; asking for another plane or other
    parameters replaces them. Use it from one thread; only
    :meth:`CacheFill.compute` may run elsewhere.
    """

    def __init__(self):
        self._generation = 0
        self._gray_version = 0
        self.clear()

    def clear(self) -> None:
        """Forget everything (the data changed in place, say); fills asked
        for before are dropped when stored."""
        self._generation += 1
        # (key, value) pairs, None when empty
        self._gray = self._blue = self._otsu = None
        self._fit = None

    @staticmethod
    def keys(source: Hashable, params: AutoLabelParams) -> tuple:
        """The keys of gray level, blue mask and multi-Otsu thresholds that
        ``params`` need on ``source`` (None for a part not needed)."""
        gray = (source, float(params.sigma))
        blue = None
        if params.method == "epoxy":
            blue = (gray, params.epoxy, params.epoxy_samples)
        otsu = (
            (gray, params.n_classes) if params.method == "multiotsu" else None
        )
        return gray, blue, otsu

    def missing(
        self, source: Hashable, params: AutoLabelParams
    ) -> CacheFill | None:
        """What the cache lacks for ``params`` on ``source`` (None: all
        there, :meth:`labels` is fast)."""
        gray_key, blue_key, otsu_key = self.keys(source, params)
        need_gray = _key(self._gray) != gray_key
        need_blue = blue_key is not None and blue_key != _key(self._blue)
        need_otsu = otsu_key is not None and otsu_key != _key(self._otsu)
        if not (need_gray or need_blue or need_otsu):
            return None
        return CacheFill(
            gray_key=gray_key,
            blue_key=blue_key,
            otsu_key=otsu_key,
            sigma=float(params.sigma),
            gray=None if need_gray else self._gray[1],
            window=params.epoxy if need_blue else None,
            n_classes=params.n_classes if need_otsu else None,
            generation=self._generation,
            need_blue=need_blue,
            samples=params.epoxy_samples if need_blue else (),
        )

    def store(self, fill: CacheFill) -> None:
        """Put in what ``fill`` computed (all of it, or what it had before
        an error); nothing when the cache was cleared since it was asked."""
        if fill.generation != self._generation:
            return
        computed = fill.computed
        if "gray" in computed:
            self._gray = (fill.gray_key, computed["gray"])
            self._gray_version += 1
        if "blue" in computed:
            self._blue = (fill.blue_key, computed["blue"])
            self._fit = computed.get("fit")
        if "otsu" in computed:
            self._otsu = (fill.otsu_key, computed["otsu"])

    def fill(
        self,
        source: Hashable,
        params: AutoLabelParams,
        image,
        name: str = "image",
        rgb: bool = False,
    ) -> None:
        """Compute and store here and now what ``params`` lack on
        ``source`` (its plane ``image``); raises what
        :meth:`CacheFill.compute` raises, keeping what came before."""
        fill = self.missing(source, params)
        if fill is None:
            return
        try:
            fill.compute(image, name, rgb)
        finally:
            self.store(fill)

    @property
    def gray(self) -> np.ndarray | None:
        """The cached smoothed gray level (None if there is none)."""
        return None if self._gray is None else self._gray[1]

    @property
    def gray_version(self) -> int | None:
        """A number that changes whenever the cached gray does (None
        without one): what a histogram of it is drawn for."""
        return None if self._gray is None else self._gray_version

    @property
    def blue(self) -> np.ndarray | None:
        """The cached blue-dye mask (None if there is none)."""
        return None if self._blue is None else self._blue[1]

    @property
    def fit(self):
        """The :class:`~.epoxy.EpoxyFit` of the cached mask (None if there
        is none, or it came from a fixed window)."""
        return self._fit

    def has_blue(self, source: Hashable, params: AutoLabelParams) -> bool:
        """Whether the cached mask is the one ``params`` ask on
        ``source``."""
        blue_key = self.keys(source, params)[1]
        return blue_key is not None and blue_key == _key(self._blue)

    @property
    def otsu(self) -> tuple[float, ...] | None:
        """The multi-Otsu thresholds cached last (None if there are none)."""
        return None if self._otsu is None else self._otsu[1]

    def labels(self, source: Hashable, params: AutoLabelParams) -> np.ndarray:
        """What :func:`..autolabel.autolabel` gives for ``params`` on the
        plane ``source``, from the cache (only bins).

        Raises
        ------
        LookupError
            If a part is missing: fill the cache first.
        """
        if self.missing(source, params) is not None:
            raise LookupError("the preview cache lacks parts: fill it first")
        thresholds = self.otsu if params.method == "multiotsu" else None
        blue = None if self._blue is None else self._blue[1]
        return labels_from_gray(self.gray, params, thresholds, blue)


def _key(entry: tuple | None):
    return None if entry is None else entry[0]
