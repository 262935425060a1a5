"""The images the sanity analysis compares, and how they become model input.

Natural images come from a manifest through the evaluation transform without its
normalization (``[0, 1]`` floats), so that visualizations (rendered in ``[0, 1]``), noise and
photographs all pass through the same :func:`to_model_input` (resize to the model's input
size, then the model's normalization).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from isic_tracking.data.dataset import ManifestDataset
from isic_tracking.data.transforms import build_transforms, normalize
from isic_tracking.errors import IsicInputError
from isic_tracking.utils import progress


def to_model_input(
    images: Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    image_size: int | None = None,
) -> Tensor:
    """``[B, 3, H, W]`` images in ``[0, 1]`` -> normalized model input (resized if asked)."""
    x = images.float()
    if image_size and tuple(x.shape[-2:]) != (image_size, image_size):
        x = F.interpolate(
            x, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True
        )
    return normalize(x, mean, std)


def load_images(df: pd.DataFrame, image_size: int) -> Tensor:
    """A manifest's images as ``[N, 3, S, S]`` floats in ``[0, 1]``, via the eval transform.

    The same decoding and resize + centre crop as evaluation
    (:func:`isic_tracking.data.transforms.build_transforms` with ``train=False``), without
    the normalization, which :func:`to_model_input` applies.
    """
    ds = ManifestDataset(df, build_transforms(image_size, train=False, mean=None))
    if len(ds) == 0:
        return torch.empty(0, 3, image_size, image_size)
    return torch.stack([ds[i][0] for i in progress(range(len(ds)), desc="images")])


def noise_images(n: int, image_size: int, seed: int = 0) -> Tensor:
    """``n`` uniform-noise images ``[n, 3, S, S]`` in ``[0, 1]``: the noise baseline."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, image_size, image_size, generator=g)


def images_per_class(df: pd.DataFrame, n_images: int, classes: Sequence[str]) -> int:
    """``n_images``, or the smallest class's count when a class has fewer (a small split of
    the multiclass demo); never below 2, so :func:`sample_per_class` still names a class
    too small for same-class pairs."""
    counts = df["label_name"].astype(str).value_counts()
    return max(2, min([int(n_images)] + [int(counts.get(c, 0)) for c in classes]))


def sample_per_class(
    df: pd.DataFrame,
    n_images: int,
    classes: Sequence[str],
    seed: int = 0,
    where: str = "the manifest",
) -> pd.DataFrame:
    """``n_images`` random rows of each class (by ``label_name``), in class order.

    Raises:
        IsicInputError: a class has fewer than ``n_images`` rows (or fewer than 2: the
            same-class baseline needs pairs); the message gives every class's count.
    """
    if n_images < 2:
        raise IsicInputError(f"n_images must be >= 2 (same-class pairs), got {n_images}")
    counts = df["label_name"].astype(str).value_counts()
    short = {c: int(counts.get(c, 0)) for c in classes if counts.get(c, 0) < n_images}
    if short:
        have = ", ".join(f"{c}: {int(counts.get(c, 0))}" for c in classes)
        raise IsicInputError(
            f"too few natural images in {where}: "
            + ", ".join(f"class {c!r} has {k}" for c, k in short.items())
            + f", {n_images} needed per class (n_images). Available: {have}. "
            "Lower n_images or choose another split."
        )
    parts = [
        df[df["label_name"].astype(str) == c].sample(n=n_images, random_state=seed) for c in classes
    ]
    return pd.concat(parts).reset_index(drop=True)
