"""Named render settings, so that the thesis's with/without-regularization comparison (Fig. 29)
is one flag: ``regularization=thesis`` vs ``regularization=none``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.featvis.param import fourier_image, maco_image, pixel_image
from isic_tracking.interpret.featvis.regularizers import bilateral, l1, total_variation
from isic_tracking.interpret.featvis.transforms import thesis_transforms


def _thesis() -> dict[str, Any]:
    """Fourier image, the thesis's transforms, L1 (0.05) + total variation in the loss and a
    bilateral filter (sigmaColor 75) every 10 steps."""
    return {
        "param_fn": fourier_image,
        "transforms": thesis_transforms(),
        "regularizers": [l1(0.05), total_variation(0.05), bilateral(every=10)],
    }


def _none() -> dict[str, Any]:
    """Plain pixels, no transform, no prior: the unregularized baseline."""
    return {"param_fn": pixel_image, "transforms": [], "regularizers": []}


def _fourier() -> dict[str, Any]:
    """Fourier image and the thesis's transforms, no penalty (lucent's default)."""
    return {"param_fn": fourier_image, "transforms": thesis_transforms(), "regularizers": []}


def _maco() -> dict[str, Any]:
    """MACO phase-only image (Fel et al. 2023) and the thesis's transforms."""
    return {"param_fn": maco_image, "transforms": thesis_transforms(), "regularizers": []}


PRESETS: dict[str, Callable[[], dict[str, Any]]] = {
    "thesis": _thesis,
    "none": _none,
    "fourier": _fourier,
    "maco": _maco,
}


def preset(name: str) -> dict[str, Any]:
    """Keyword arguments for :func:`~.render.render` (``param_fn``, ``transforms``,
    ``regularizers``) of the preset ``name``."""
    if name not in PRESETS:
        raise IsicInputError(
            f"unknown regularization preset {name!r}; choose one of {', '.join(PRESETS)}"
        )
    return PRESETS[name]()
