"""Image priors for activation maximization, each usable in two ways.

- in the loss (``every=0``): ``weight * penalty(images)`` per batch element is added to the loss
  every step;
- as a periodic image operation (``every=k``): every k steps :meth:`Regularizer.apply` replaces the
  images by their regularized version (e.g. a bilateral filter, as in the thesis) and the
  parameterization is set to match (:meth:`~.param.ImageParam.assign`).

Images are ``[B, 3, H, W]`` in ``[0, 1]``; penalties return ``Tensor[B]`` so B renders stay
independent of each other.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Regularizer:
    """A named image prior: a per-image penalty and the matching image operation.

    Attributes:
        name: readable name, e.g. ``l1(0.05)``.
        penalty_fn: ``images -> Tensor[B]`` (unweighted).
        op_fn: ``images -> images`` (what :meth:`apply` does every ``every`` steps).
        weight: factor of the penalty in the loss.
        every: 0 = penalty in the loss each step; k > 0 = apply the operation every k steps.
        value_and_grad: optional ``images -> (penalty_fn(images), its gradient)`` in closed
            form: the penalty then enters the loss as one node whose backward is that gradient,
            instead of autograd's chain of full-size elementwise ops (on a CPU without bf16 the
            L1 + total-variation graph was a third of the image side of a render step).
    """

    name: str
    penalty_fn: Callable[[Tensor], Tensor]
    op_fn: Callable[[Tensor], Tensor]
    weight: float = 1.0
    every: int = 0
    value_and_grad: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None

    @property
    def in_loss(self) -> bool:
        return self.every == 0

    def penalty(self, images: Tensor) -> Tensor:
        """Weighted penalty per image, ``Tensor[B]`` (lower is more regular)."""
        if self.value_and_grad is not None and images.requires_grad:
            return self.weight * _ClosedForm.apply(images, self.value_and_grad)
        return self.weight * self.penalty_fn(images)

    @torch.no_grad()
    def apply(self, images: Tensor) -> Tensor:
        """The regularized images (same shape, in ``[0, 1]``)."""
        return self.op_fn(images).clamp(0, 1)

    def periodic(self, every: int) -> Regularizer:
        """The same prior applied as an image operation every ``every`` steps."""
        return replace(self, every=every)


class _ClosedForm(torch.autograd.Function):
    """A per-image penalty ``Tensor[B]`` whose gradient is given in closed form."""

    @staticmethod
    def forward(ctx, images: Tensor, value_and_grad) -> Tensor:  # noqa: ANN001
        value, grad = value_and_grad(images.detach())
        ctx.save_for_backward(grad)
        return value

    @staticmethod
    def backward(ctx, grad_value: Tensor):  # noqa: ANN205
        (grad,) = ctx.saved_tensors
        return grad * grad_value.view(-1, *([1] * (grad.ndim - 1))), None


def _per_image_mean(t: Tensor) -> Tensor:
    return t.flatten(1).mean(1)


def _tv_map(images: Tensor) -> Tensor:
    """Anisotropic total variation per pixel (sum of absolute neighbour differences)."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs()
    return F.pad(dx, (0, 1)) + F.pad(dy, (0, 0, 0, 1))


def _tv_value_and_grad(images: Tensor) -> tuple[Tensor, Tensor]:
    """``_per_image_mean(_tv_map(images))`` and its gradient (each neighbour difference's sign
    added at its right/lower pixel and subtracted at its left/upper one)."""
    n = images[0].numel()
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    value = (dx.abs().flatten(1).sum(1) + dy.abs().flatten(1).sum(1)) / n
    sx, sy = dx.sign_(), dy.sign_()
    grad = torch.zeros_like(images)
    grad[..., :, 1:] += sx
    grad[..., :, :-1] -= sx
    grad[..., 1:, :] += sy
    grad[..., :-1, :] -= sy
    return value, grad.div_(n)


def gaussian_blur(images: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with reflection padding (kernel radius ``ceil(2 sigma)``)."""
    r = max(1, math.ceil(2 * sigma))
    x = torch.arange(-r, r + 1, device=images.device, dtype=images.dtype)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    c = images.shape[1]
    out = F.pad(images, (r, r, r, r), mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def bilateral_filter(
    images: Tensor, diameter: int = 5, sigma_color: float = 75.0, sigma_space: float = 75.0
) -> Tensor:
    """Edge-preserving smoothing (Tomasi & Manduchi 1998), OpenCV's ``bilateralFilter`` rule.

    Neighbours within ``diameter`` are averaged with weights
    ``exp(-d_space^2 / 2 sigma_space^2) * exp(-d_colour^2 / 2 sigma_color^2)``, where the colour
    distance is the L1 distance over channels on a 0..255 scale (so ``sigma_color=75`` means what
    it means in OpenCV). One pass over the ``diameter^2`` offsets; memory stays ``O(BCHW)``.
    """
    r = diameter // 2
    h, w = images.shape[-2:]
    padded = F.pad(images, (r, r, r, r), mode="reflect")
    num = torch.zeros_like(images)
    den = torch.zeros_like(images[:, :1])
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dx * dx + dy * dy > r * r:  # OpenCV uses a disc
                continue
            nb = padded[..., r + dy : r + dy + h, r + dx : r + dx + w]
            colour = (nb - images).abs().sum(1, keepdim=True) * 255.0
            wgt = torch.exp(
                -(dx * dx + dy * dy) / (2 * sigma_space**2) - colour**2 / (2 * sigma_color**2)
            )
            num = num + wgt * nb
            den = den + wgt
    return num / den


def _distance_to(op: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """Penalty ``mean((x - op(x))^2)`` with ``op(x)`` held fixed: pulls x toward its filtered self."""
    return lambda x: _per_image_mean((x - op(x).detach()) ** 2)


def l1(weight: float = 0.05, center: float = 0.5, every: int = 0) -> Regularizer:
    """L1 distance of the pixels to grey (``center``), mean over pixels; lambda = 0.05 (thesis).

    As an operation it is the proximal step: every pixel moves ``weight`` toward grey.
    """

    def shrink(x: Tensor) -> Tensor:
        d = x - center
        return center + d.sign() * (d.abs() - weight).clamp(min=0)

    def value_and_grad(x: Tensor) -> tuple[Tensor, Tensor]:
        d = x - center
        n = d[0].numel()
        return _per_image_mean(d.abs()), d.sign_().div_(n)  # sign(0) = 0, as abs' backward

    return Regularizer(
        f"l1({weight:g})", lambda x: _per_image_mean((x - center).abs()), shrink, weight, every,
        value_and_grad,
    )  # fmt: skip


def total_variation(weight: float = 0.05, every: int = 0) -> Regularizer:
    """Total variation (mean absolute neighbour difference); penalizes high-frequency noise.

    As an operation it is one subgradient step of size ``weight`` on the per-pixel variation.
    """

    def step(x: Tensor) -> Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(_tv_map(x).sum(), x)
        return x.detach() - weight * g

    return Regularizer(
        f"tv({weight:g})", lambda x: _per_image_mean(_tv_map(x)), step, weight, every,
        _tv_value_and_grad,
    )  # fmt: skip


def blur(sigma: float = 0.5, weight: float = 1.0, every: int = 0) -> Regularizer:
    """Gaussian blur of width ``sigma`` pixels (as an operation), or the distance to it."""
    op = lambda x: gaussian_blur(x, sigma)  # noqa: E731
    return Regularizer(f"blur({sigma:g})", _distance_to(op), op, weight, every)


def bilateral(
    diameter: int = 5,
    sigma_color: float = 75.0,
    sigma_space: float = 75.0,
    weight: float = 1.0,
    every: int = 10,
) -> Regularizer:
    """Bilateral filter (sigmaColor 75, as the thesis) applied every ``every`` steps by default."""
    op = lambda x: bilateral_filter(x, diameter, sigma_color, sigma_space)  # noqa: E731
    return Regularizer(f"bilateral({sigma_color:g})", _distance_to(op), op, weight, every)
