"""Labelled picture grids of rendered images (layer, filter, activation reached), as the thesis's
Figs. 27-32 and 44-48, and PNG export of single images.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot global state); the
entry point logs them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from isic_tracking.interpret.featvis.render import RenderResult


def to_uint8(image: Tensor) -> np.ndarray:
    """``[3, H, W]`` float in ``[0, 1]`` -> ``[H, W, 3]`` uint8."""
    arr = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (arr * 255 + 0.5).astype(np.uint8)


def save_png(image: Tensor, path: str | Path) -> Path:
    """Write one ``[3, H, W]`` image in ``[0, 1]`` as a PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)
    return path


def tile_titles(result: RenderResult) -> list[str]:
    """``<label>\\nact <value>`` for each image of a render."""
    return [f"{lab}\nact {float(a):.3g}" for lab, a in zip(result.labels, result.activation)]


def image_grid(
    images: Tensor,
    titles: Sequence[str],
    ncols: int | None = None,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    tile_inches: float = 1.8,
) -> Figure:
    """Images in a grid, each with its title; optional label at the start of each row.

    Args:
        images: ``[N, 3, H, W]`` in ``[0, 1]``.
        titles: one per image (e.g. ``features.10:3\\nact 4.2``).
        ncols: images per row (default: ``ceil(sqrt(N))``, or N / rows with ``row_labels``).
        title: figure title (e.g. model, layer, settings).
        row_labels: a label per row (e.g. ``fine-tuned`` / ``ImageNet``).
    """
    n = images.shape[0]
    if len(titles) != n:
        raise ValueError(f"{n} images but {len(titles)} titles")
    if ncols is None:
        ncols = math.ceil(n / len(row_labels)) if row_labels else math.ceil(math.sqrt(n))
    ncols = max(1, min(ncols, n)) if n else 1
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(
        figsize=(tile_inches * ncols + (1.0 if row_labels else 0), tile_inches * nrows + 0.6)
    )
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i < n:
            ax.imshow(to_uint8(images[i]))
            ax.set_title(titles[i], fontsize=7)
        else:
            ax.axis("off")
    if row_labels:
        for r, lab in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(lab, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def result_grid(result: RenderResult, title: str | None = None, ncols: int | None = None) -> Figure:
    """One render as a labelled grid (label and activation reached under each image)."""
    return image_grid(result.images, tile_titles(result), ncols=ncols, title=title)


def comparison_grid(results: Mapping[str, RenderResult], title: str | None = None) -> Figure:
    """Several renders of the same targets, one row each (e.g. fine-tuned vs ImageNet model,
    with vs without regularization, as the thesis's Fig. 29)."""
    rows = list(results.items())
    ncols = max(r.images.shape[0] for _, r in rows)
    images, titles = [], []
    for _, r in rows:
        pad = ncols - r.images.shape[0]
        images.append(
            torch.cat([r.images, torch.ones(pad, *r.images.shape[1:])]) if pad else r.images
        )
        titles += tile_titles(r) + [""] * pad
    return image_grid(
        torch.cat(images), titles, ncols=ncols, title=title, row_labels=[k for k, _ in rows]
    )
