"""Random robustness transforms: pure ``Tensor -> Tensor`` closures and :func:`compose`.

Unlike torch-dreams (one random transform for the whole batch, random resizing that changes the
tensor shape every step), every batch element gets its own draw, all geometric parts are folded
into ONE affine matrix per element (one batched ``affine_grid`` + ``grid_sample``, no loop over the
batch), and the output keeps the input's size: a constant shape means cuDNN / oneDNN choose their
kernels once and CUDA graphs or ``torch.compile`` stay usable.

Randomness comes from torch's generator on the image's device; :func:`~.render.render` seeds it
inside ``torch.random.fork_rng`` so a render is reproducible and leaves the global state alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import reduce

import torch
import torch.nn.functional as F
from torch import Tensor

Transform = Callable[[Tensor], Tensor]

#: Defaults after the thesis's Table 3: rotation +-15 degrees, translation 0.1 of the
#: image, scale up to 1.2. The lower scale bound (0.5) is torch-dreams' default, which the thesis
#: used; the pixel jitter (4 px) is ours, as lucent's final small jitter.
THESIS_TRANSFORMS = {
    "rotate": 15.0,
    "translate": 0.1,
    "scale": (0.5, 1.2),
    "jitter": 4,
}


def _uniform(n: int, low: float, high: float, like: Tensor) -> Tensor:
    return torch.rand(n, device=like.device, dtype=like.dtype) * (high - low) + low


def random_affine(
    rotate: float = 0.0,
    translate: float = 0.0,
    scale: tuple[float, float] = (1.0, 1.0),
    jitter: int = 0,
    padding_mode: str = "reflection",
) -> Transform:
    """Independent random rotation, translation, zoom and pixel jitter for each image.

    Args:
        rotate: maximum rotation in degrees (uniform in ``[-rotate, rotate]``).
        translate: maximum shift as a fraction of the image side, in x and y independently.
        scale: zoom range ``(low, high)``; > 1 enlarges the content (like resizing up).
        jitter: maximum extra shift in whole pixels (lucent's ``jitter``).
        padding_mode: how ``grid_sample`` fills what comes from outside (default reflection).

    Returns:
        ``t(images [B, C, H, W]) -> [B, C, H, W]``; a square image keeps its shape.
    """

    def transform(x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        angle = _uniform(b, -rotate, rotate, x) * (math.pi / 180.0)
        zoom = _uniform(b, scale[0], scale[1], x)
        # Normalized coordinates span 2 per side: a shift of f of the side is 2 f.
        tx = _uniform(b, -translate, translate, x) * 2
        ty = _uniform(b, -translate, translate, x) * 2
        if jitter:
            tx = tx + torch.randint(-jitter, jitter + 1, (b,), device=x.device) * (2.0 / w)
            ty = ty + torch.randint(-jitter, jitter + 1, (b,), device=x.device) * (2.0 / h)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1
        )  # [B, 2, 3]: output grid -> input coordinates
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(
            x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False
        )

    return transform


def jitter(pixels: int) -> Transform:
    """Independent random shift of up to ``pixels`` in x and y."""
    return random_affine(jitter=pixels)


def rotate(degrees: float) -> Transform:
    """Independent random rotation in ``[-degrees, degrees]``."""
    return random_affine(rotate=degrees)


def translate(fraction: float) -> Transform:
    """Independent random shift of up to ``fraction`` of the side."""
    return random_affine(translate=fraction)


def scale(low: float, high: float) -> Transform:
    """Independent random zoom in ``[low, high]``, resampled back to the input size."""
    return random_affine(scale=(low, high))


def compose(transforms: Sequence[Transform]) -> Transform:
    """Apply ``transforms`` left to right (an empty list is the identity)."""
    return lambda x: reduce(lambda acc, t: t(acc), transforms, x)


def thesis_transforms(**overrides) -> Transform:
    """The thesis's transform set (:data:`THESIS_TRANSFORMS`) as one batched affine resample."""
    return random_affine(**{**THESIS_TRANSFORMS, **overrides})
