"""Similarity between sets of vectors and between images, batched on the device.

Every function compares *all* rows of ``a`` with *all* rows of ``b`` in one matrix product
(no Python loop over pairs), so a layer with 5 visualizations x 200 natural images is one
``[5, C] @ [C, 200]`` op. Spearman's rho is Pearson's r of the ranks; ranks are computed
with torch on the tensors' device, tied values get their average rank (as
:func:`scipy.stats.rankdata` ``method="average"``), which matters for ReLU outputs where
many channels are exactly 0.

A constant row has no defined correlation: its entries are NaN (as in scipy), and the
aggregations in :mod:`isic_tracking.interpret.sanity` skip NaNs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.choices import METRICS  # noqa: F401 (re-exported)


def rank(x: Tensor) -> Tensor:
    """Average ranks (1-based) of ``x`` along its last dimension; ties share their mean rank.

    Args:
        x: ``[..., D]`` finite floats (any device).

    Returns:
        Floating tensor of the same shape (float64 for float64 input, else float32).
    """
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    shape = x.shape
    d = shape[-1]
    flat = x.reshape(-1, d)
    sorted_x, order = flat.sort(dim=-1)
    pos = torch.arange(d, device=x.device, dtype=torch.long).expand_as(order)
    # a tie group runs from its first position (start) to its last (end), contiguously
    new = torch.ones_like(sorted_x, dtype=torch.bool)
    new[:, 1:] = sorted_x[:, 1:] != sorted_x[:, :-1]
    last = torch.ones_like(new)
    last[:, :-1] = new[:, 1:]
    start = torch.where(new, pos, 0).cummax(dim=-1).values
    end = torch.where(last, pos, d - 1).flip(-1).cummin(dim=-1).values.flip(-1)
    avg = (start + end).to(dtype) / 2 + 1
    ranks = torch.empty_like(avg).scatter_(-1, order, avg)
    return ranks.reshape(shape)


def _unit_rows(x: Tensor, center: bool) -> Tensor:
    """Rows (optionally centered) scaled to unit L2 norm; a zero-norm row becomes NaN."""
    x = x.float() if x.dtype not in (torch.float32, torch.float64) else x
    # relative tolerance: centering a constant row in float arithmetic leaves rounding noise
    scale = x.abs().amax(dim=-1, keepdim=True)
    if center:
        x = x - x.mean(dim=-1, keepdim=True)
    norm = x.norm(dim=-1, keepdim=True)
    tiny = 4 * torch.finfo(x.dtype).eps * (x.shape[-1] ** 0.5) * scale
    return torch.where(norm > tiny, x / norm, torch.full_like(x, float("nan")))


def similarity(a: Tensor, b: Tensor, metric: str = "spearman", paired: bool = False) -> Tensor:
    """Similarity of every row of ``a`` with every row of ``b`` (or row ``i`` with row ``i``).

    Args:
        a: ``[N, D]``.
        b: ``[M, D]`` on the same device.
        metric: ``"spearman"`` (rank correlation, ties averaged), ``"pearson"`` or ``"cosine"``.
        paired: when True, ``N == M`` and only the ``N`` pairs ``(a[i], b[i])`` are computed.

    Returns:
        ``[N, M]`` (or ``[N]`` when paired) in ``[-1, 1]``; NaN where a row is constant
        (spearman/pearson) or zero (cosine).
    """
    if metric not in METRICS:
        raise IsicInputError(f"unknown metric {metric!r}; choose one of {METRICS}")
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise IsicInputError(
            f"similarity needs [N, D] and [M, D] with the same D, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    if paired and a.shape[0] != b.shape[0]:
        raise IsicInputError(f"paired similarity needs as many rows: {a.shape[0]} vs {b.shape[0]}")
    same = b is a  # a self-similarity matrix: rank and normalize once
    if metric == "spearman":
        a = rank(a)
        b = a if same else rank(b)
    ua = _unit_rows(a, center=metric != "cosine")
    ub = ua if same else _unit_rows(b, center=metric != "cosine")
    out = (ua * ub).sum(dim=-1) if paired else ua @ ub.T
    return out.clamp(-1.0, 1.0)


def _gaussian_window(size: int, sigma: float, device: torch.device, dtype) -> Tensor:
    coords = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    x: Tensor,
    y: Tensor,
    window: int = 11,
    sigma: float = 1.5,
    data_range: float = 1.0,
) -> Tensor:
    """Mean structural similarity of image pairs ``(x[i], y[i])`` (Wang et al., 2004).

    The standard constants ``K1=0.01, K2=0.03`` and an 11-tap Gaussian window (sigma 1.5),
    computed per channel over the valid region and averaged; a window larger than the image
    shrinks to the image's shorter side. Adebayo et al. (2018) use it to show how much an
    explanation changes when the model is randomized.

    Args:
        x: ``[B, C, H, W]`` images in ``[0, data_range]``.
        y: same shape as ``x``.
        window: Gaussian window size (odd).
        sigma: Gaussian standard deviation in pixels.
        data_range: value range of the images (1.0 for ``[0, 1]``).

    Returns:
        ``[B]`` SSIM per pair, 1 for identical images.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise IsicInputError(
            f"ssim needs two [B, C, H, W] batches of one shape, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    x, y = x.to(dtype), y.to(dtype)
    c = x.shape[1]
    size = min(window, x.shape[-2], x.shape[-1])
    size -= 1 - size % 2  # odd
    g = _gaussian_window(size, sigma, x.device, dtype)
    kh = g.view(1, 1, size, 1).expand(c, 1, size, 1)
    kw = g.view(1, 1, 1, size).expand(c, 1, 1, size)

    def blur(t: Tensor) -> Tensor:  # separable Gaussian filter, valid region only
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(dim=1)
