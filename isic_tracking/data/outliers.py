"""Artifact detection by per-channel z-scores, as in the thesis.

Each pixel's channel values are compared with the data set's channel mean and standard
deviation; a pixel whose |z| exceeds the threshold (2.0) in any channel is an outlier pixel.
Artifacts (stickers, ink, rulers, dark vignetted corners, bubbles) are far from the typical
skin/lesion colours, so an image's outlier-pixel fraction scores how much of it is artifact.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from isic_tracking.data.transforms import normalize
from isic_tracking.errors import IsicInputError

OVERLAY_COLOR = (1.0, 0.0, 0.0)


def _images_of(batch: Tensor | Sequence) -> Tensor:
    """The image tensor of a loader batch (a tensor, or a tuple whose first item is one)."""
    return batch if isinstance(batch, Tensor) else batch[0]


def dataset_channel_stats(images_iter: Iterable[Tensor | Sequence]) -> tuple[Tensor, Tensor]:
    """Per-channel mean and standard deviation over every pixel of every image, in one pass.

    Args:
        images_iter: batches ``[B, C, H, W]`` (or loader tuples ``(images, ...)``).

    Returns:
        (mean ``[C]``, std ``[C]``), float32. Batches are merged with Chan et al.'s parallel
        variance update in float64, so the result does not depend on the batch size.
    """
    n, mean, m2 = 0, None, None
    for batch in images_iter:
        x = _images_of(batch).detach().to(torch.float64)
        x = x.transpose(0, 1).reshape(x.shape[1], -1)  # [C, pixels]
        nb = x.shape[1]
        if nb == 0:
            continue
        mb = x.mean(dim=1)
        m2b = ((x - mb[:, None]) ** 2).sum(dim=1)
        if mean is None:
            n, mean, m2 = nb, mb, m2b
            continue
        delta = mb - mean
        total = n + nb
        mean = mean + delta * (nb / total)
        m2 = m2 + m2b + delta**2 * (n * nb / total)
        n = total
    if mean is None:
        raise IsicInputError("no images to compute channel statistics from (empty loader)")
    return mean.float(), (m2 / n).sqrt().float()


def zscore_maps(
    images: Tensor, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor
) -> Tensor:
    """Per-channel z-scores ``(x - mean) / std`` of ``[B, C, H, W]`` images."""
    return normalize(images, mean, std)


def outlier_mask(
    images: Tensor,
    mean: Sequence[float] | Tensor,
    std: Sequence[float] | Tensor,
    threshold: float = 2.0,
) -> Tensor:
    """Boolean ``[B, H, W]``: pixels with ``|z| > threshold`` in any channel."""
    return (zscore_maps(images, mean, std).abs() > threshold).any(dim=1)


def outlier_scores(
    images: Tensor,
    mean: Sequence[float] | Tensor,
    std: Sequence[float] | Tensor,
    threshold: float = 2.0,
) -> Tensor:
    """Fraction of outlier pixels of each image, ``[B]`` in [0, 1] (see :func:`outlier_mask`)."""
    return outlier_mask(images, mean, std, threshold).flatten(1).float().mean(dim=1)


def score_table(
    df: pd.DataFrame,
    loader: Iterable,
    threshold: float = 2.0,
    mean: Sequence[float] | Tensor | None = None,
    std: Sequence[float] | Tensor | None = None,
    image_threshold: float | None = None,
) -> pd.DataFrame:
    """Outlier score of every image of ``df``.

    Args:
        df (DataFrame): the manifest the loader reads (``image_id`` used; ``label_name`` and
            ``artifact`` copied when present, to compare with the truth of synthetic data).
        loader: yields ``(images, labels)`` in ``df`` order, or ``(images, labels, indices)``
            (``make_loader(..., return_index=True)``) in any order. Use un-normalized eval
            images (``build_transforms(size, train=False, mean=None)``).
        threshold (float, default 2.0): pixel z-score threshold.
        mean, std: channel statistics; computed from ``loader`` (an extra pass) when None.
        image_threshold (float, optional): an image is an outlier when its score exceeds
            this fraction; by default when its score lies more than ``threshold`` standard
            deviations above the mean score (the same z-score rule, one level up).

    Returns:
        DataFrame ``image_id, score, is_outlier`` (+ ``label_name``, ``artifact``), in ``df``
        order.
    """
    if mean is None or std is None:
        mean, std = dataset_channel_stats(loader)
    scores = np.full(len(df), np.nan)
    pos = 0
    for batch in loader:
        images = _images_of(batch)
        s = outlier_scores(images, mean, std, threshold).cpu().numpy()
        if not isinstance(batch, Tensor) and len(batch) >= 3:
            idx = torch.as_tensor(batch[2]).cpu().numpy()
        else:
            idx = np.arange(pos, pos + len(s))
        scores[idx] = s
        pos += len(s)
    if np.isnan(scores).any():
        raise IsicInputError(
            f"the loader gave scores for {int((~np.isnan(scores)).sum())} of {len(df)} images; "
            "pass a loader over the same manifest without drop_last"
        )
    if image_threshold is None:
        sd = scores.std()
        cut = scores.mean() + threshold * sd if sd > 0 else np.inf
    else:
        cut = image_threshold
    table = pd.DataFrame(
        {
            "image_id": df["image_id"].astype(str).to_numpy(),
            "score": scores,
            "is_outlier": scores > cut,
        }
    )
    for col in ("label_name", "artifact"):
        if col in df.columns:
            table[col] = df[col].to_numpy()
    return table
