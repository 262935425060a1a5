"""Named render settings, so that the thesis's with/without-regularization comparison (Fig. 29)
is one flag: ``regularization=tuned`` (the default) or ``thesis`` vs ``regularization=none``.

``thesis`` is the thesis's Table 3 as it stands (Adam at lucent's lr 0.05). ``tuned`` (the
default) is the same priors with lr 0.2: Adam moves each Fourier coefficient by at
most ~lr per step, and a saturated colour needs a coefficient of ~12-16 (the DC pixel value
is coefficient / 4 before the sigmoid), so at the demo's 64 steps lr 0.05 stops at ~3.2, a
washed-out image, and first-layer filters (whose optimum is a saturated colour) stayed at
half their natural maximum (docs/benchmarks.md, "Visualizations against the natural
maximum"). Every preset carries its ``lr`` (passed to :func:`~.render.render` with the
rest), so a preset stays what it is by name whatever render's own default.

``tuned`` optimizes in the colour basis of the analysed images when the stage has them
(:func:`~.param.data_colour_basis`, ``colours=data``): its pictures start at the data's mean
colour and move along the data's colour axes first, so class-logit pictures carry the
classes' lesion colours. The other presets keep lucid's ImageNet basis by name.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from torch import Tensor

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.choices import COLOUR_CHOICES
from isic_tracking.interpret.featvis.param import (
    ColourBasis,
    ColourStats,
    data_colour_basis,
    fourier_image,
    maco_image,
    pixel_image,
)
from isic_tracking.interpret.featvis.regularizers import bilateral, l1, total_variation
from isic_tracking.interpret.featvis.transforms import thesis_transforms

#: Learning rate of the presets that keep their original settings by name (lucent's, and the
#: thesis's): render's own default (:data:`~.fastpath.DEFAULT_LR`) is the faster 0.2.
ORIGINAL_LR = 0.05


def _thesis() -> dict[str, Any]:
    """Fourier image, the thesis's transforms, L1 (0.05) + total variation in the loss and a
    bilateral filter (sigmaColor 75) every 10 steps, Adam at lr 0.05."""
    return {
        "param_fn": fourier_image,
        "transforms": thesis_transforms(),
        "regularizers": [l1(0.05), total_variation(0.05), bilateral(every=10)],
        "lr": ORIGINAL_LR,
    }


#: Learning rate of the ``tuned`` preset (see the module docstring).
TUNED_LR = 0.2


def _tuned() -> dict[str, Any]:
    """The thesis's priors and transforms at lr 0.2: reaches saturated colours in 64 steps."""
    return {**_thesis(), "lr": TUNED_LR}


def _none() -> dict[str, Any]:
    """Plain pixels, no transform, no prior: the unregularized baseline."""
    return {"param_fn": pixel_image, "transforms": [], "regularizers": [], "lr": ORIGINAL_LR}


def _fourier() -> dict[str, Any]:
    """Fourier image and the thesis's transforms, no penalty (lucent's default)."""
    return {
        "param_fn": fourier_image,
        "transforms": thesis_transforms(),
        "regularizers": [],
        "lr": ORIGINAL_LR,
    }


def _maco() -> dict[str, Any]:
    """MACO phase-only image (Fel et al. 2023) and the thesis's transforms."""
    return {
        "param_fn": maco_image,
        "transforms": thesis_transforms(),
        "regularizers": [],
        "lr": ORIGINAL_LR,
    }


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {
    "tuned": _tuned,
    "thesis": _thesis,
    "none": _none,
    "fourier": _fourier,
    "maco": _maco,
}


#: Presets that take the data's colour basis when one is given (the others keep ImageNet's).
DATA_COLOUR_PRESETS: tuple[str, ...] = ("tuned",)


def preset(name: str, colour: ColourBasis | None = None) -> dict[str, Any]:
    """Keyword arguments for :func:`~.render.render` (``param_fn``, ``transforms``,
    ``regularizers``, and ``lr`` where the preset sets one) of the preset ``name``; ``colour``
    is the basis of the presets in :data:`DATA_COLOUR_PRESETS` (None: ImageNet's)."""
    if name not in PRESETS:
        raise IsicInputError(
            f"unknown regularization preset {name!r}; choose one of {', '.join(PRESETS)}"
        )
    kw = PRESETS[name]()
    if colour is not None and name in DATA_COLOUR_PRESETS:
        kw["param_fn"] = functools.partial(kw["param_fn"], colour=colour)
    return kw


def resolve_colours(
    choice: str, images: Callable[[], Iterable[Tensor]] | ColourStats | None, what: str
) -> tuple[ColourBasis | None, str]:
    """The colour basis a stage renders ``tuned`` in and what it is (a run param):
    ``data`` fits it to ``images()`` (or to the pixels a :class:`~.param.ColourStats` counted
    in a pass over them; ``what`` names them), ``imagenet`` or no images keep lucid's ImageNet
    basis, saying why."""
    if not wants_data_colours(choice):
        return None, "imagenet (colours=imagenet)"
    if images is None:
        return None, "imagenet (no natural images to fit the data's colours to)"
    if isinstance(images, ColourStats):
        return images.basis(what), f"data ({what})"
    return data_colour_basis(images(), what), f"data ({what})"


def wants_data_colours(choice: str) -> bool:
    """Whether ``colours=choice`` fits the basis to the data (an unknown choice is an error)."""
    if choice not in COLOUR_CHOICES:
        raise IsicInputError(f"colours={choice!r}: choose one of {', '.join(COLOUR_CHOICES)}")
    return choice != "imagenet"
