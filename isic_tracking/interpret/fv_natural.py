"""How a visualization compares with the data set: ``fv_over_natural_max``.

A feature visualization claims to show what maximizes a unit. The claim is only worth
something if the picture excites the unit at least as much as the best natural image does, so
every rendered picture's activation is set next to the maximum and the 99th percentile of the
SAME objective (same reduction, e.g. the channel's spatial mean, same input normalization and
size) over the analysed natural images.

A unit is *live* on the images when its objective is positive on at least one image and not
constant; for a unit that is not live the ratio has no meaning and is NaN (counted apart).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from isic_tracking.data.transforms import normalize
from isic_tracking.interpret.featvis import Objective
from isic_tracking.interpret.hooks import LayerRecorder, frozen_eval

#: Natural values spread less than this (relative to their magnitude) count as constant.
CONSTANT_TOL = 1e-6
#: The percentile logged next to the maximum.
PERCENTILE = 0.99


@dataclass(frozen=True)
class NaturalReference:
    """Per target (``[T]`` tensors): max and 99th percentile of the objective over the natural
    images, whether the unit is live on them, and how many images were seen."""

    max: Tensor
    p99: Tensor
    live: Tensor
    n_images: int


def natural_values(
    model: nn.Module,
    objectives: Sequence[Objective],
    batches: Iterable[Tensor],
    mean: Sequence[float],
    std: Sequence[float],
) -> Tensor:
    """``[N, T]``: objective ``t`` (one shared target each, e.g. ``channel(layer, c)``) on each
    natural image (batches of ``[B, 3, H, W]`` in ``[0, 1]``), normalized as the render does."""
    with NaturalValues(model, objectives, mean, std) as acc:
        for images in batches:
            acc.add(images)
    return acc.values()


class NaturalValues:
    """:func:`natural_values` batch by batch: inside ``with``, ``add`` each batch; then
    ``values()``. One pass over the images can so feed several models (and the colour
    basis), each image decoded once."""

    def __init__(
        self,
        model: nn.Module,
        objectives: Sequence[Objective],
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        if not objectives:
            raise ValueError("natural_values needs at least one objective")
        self.model, self.objectives = model, list(objectives)
        p = next(model.parameters(), None)
        self.device = p.device if p is not None else torch.device("cpu")
        self.mean = torch.tensor(mean, device=self.device)
        self.std = torch.tensor(std, device=self.device)
        self._out: list[Tensor] = []
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> NaturalValues:
        layers = list(dict.fromkeys(name for o in self.objectives for name in o.layers))
        self._stack.enter_context(frozen_eval(self.model))
        self._rec = self._stack.enter_context(LayerRecorder(self.model, layers))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def add(self, images: Tensor) -> None:
        with torch.no_grad():
            acts = self._rec(normalize(images.to(self.device), self.mean, self.std))
            self._out.append(torch.stack([o(acts).float() for o in self.objectives], 1).cpu())

    def values(self) -> Tensor:
        if not self._out:
            raise ValueError("natural_values got no images")
        return torch.cat(self._out)


def reference(values: Tensor) -> NaturalReference:
    """Max, 99th percentile and liveness of each column of ``values [N, T]``."""
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"values must be [N>0, T], got {tuple(values.shape)}")
    v = values.double()
    hi, lo = v.max(0).values, v.min(0).values
    spread = hi - lo
    constant = spread <= CONSTANT_TOL * torch.maximum(hi.abs(), lo.abs()).clamp(min=1.0)
    return NaturalReference(
        max=hi.float(),
        p99=torch.quantile(v, PERCENTILE, dim=0).float(),
        live=(hi > 0) & ~constant,
        n_images=int(values.shape[0]),
    )


def ratio(reached: Tensor, natural: Tensor, live: Tensor) -> Tensor:
    """``reached / natural`` per target; NaN where the unit is not live or ``natural <= 0``."""
    r = reached.double() / natural.double()
    ok = live & (natural > 0)
    return torch.where(ok, r, torch.full_like(r, float("nan"))).float()


def summary(ratios: Tensor) -> dict[str, float]:
    """Over the live targets (non-NaN ratios): the fraction at >= 1.0, the median ratio, how
    many were live and how many were not (NaN: both counts are floats, as metrics are)."""
    ok = ~torch.isnan(ratios)
    live = ratios[ok]
    return {
        "frac": float((live >= 1.0).float().mean()) if live.numel() else float("nan"),
        "median": float(torch.quantile(live.double(), 0.5)) if live.numel() else float("nan"),
        "live": float(live.numel()),
        "not_live": float((~ok).sum()),
    }
