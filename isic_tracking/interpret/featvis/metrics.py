"""How well a rendered image shows a known pattern (for tests with planted filters)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def pattern_correlation(image: Tensor, pattern: Tensor) -> float:
    """Highest Pearson correlation between ``pattern`` and any same-size patch of ``image``.

    Normalized cross-correlation (Lewis 1995): every ``k x k`` patch (all channels together)
    and the pattern are centred and scaled to unit norm, so brightness and contrast do not
    matter. 1 means the pattern appears exactly (up to contrast) somewhere in the image.

    Args:
        image: ``[C, H, W]``.
        pattern: ``[C, kh, kw]`` (e.g. a first-layer filter).

    Returns:
        The maximum over positions, in ``[-1, 1]``.
    """
    kh, kw = pattern.shape[-2:]
    patches = F.unfold(image[None].float(), (kh, kw))[0].T  # [positions, C*kh*kw]
    patches = patches - patches.mean(1, keepdim=True)
    patches = patches / (patches.norm(dim=1, keepdim=True) + 1e-8)
    p = pattern.flatten().float()
    p = (p - p.mean()) / ((p - p.mean()).norm() + 1e-8)
    return float((patches @ p.to(patches.device)).max())
