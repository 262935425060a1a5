"""Figures of the sanity analysis: path-similarity curves, layer correlation, image grids."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
from matplotlib.figure import Figure
from torch import Tensor

_STYLE = {
    "visualization": dict(color="C3", lw=2.5, label="visualization vs natural (same class)"),
    "natural_same_class": dict(color="C0", lw=1.5, label="natural vs natural, same class"),
    "natural_other_classes": dict(color="C2", lw=1.5, label="natural vs natural, other classes"),
    "noise": dict(color="0.4", lw=1.5, ls="--", label="noise vs natural"),
    "unregularized": dict(color="C1", lw=1.5, label="unregularized visualization vs natural"),
    "unregularized_vs_regularized": dict(
        color="C4", lw=1.5, ls=":", label="unregularized vs regularized visualization"
    ),
    "class_logit": dict(color="C5", lw=2, label="class-logit visualization vs natural"),
}


def plot_path_similarity(
    summary: pd.DataFrame, metric: str = "spearman", title: str | None = None
) -> Figure:
    """Mean similarity (band: ± one standard deviation) across depth, one line per comparison."""
    layers = summary.drop_duplicates("depth").sort_values("depth")["layer"].tolist()
    fig = Figure(figsize=(max(6.0, 0.35 * len(layers) + 3), 4.5), layout="constrained")
    ax = fig.add_subplot()
    for comp, part in summary.groupby("comparison", sort=False):
        part = part.sort_values("depth")
        style = dict(_STYLE.get(comp, dict(label=comp)))
        x, m, s = part["depth"].to_numpy(), part["mean"].to_numpy(), part["std"].fillna(0)
        ax.plot(x, m, marker="o", ms=3, **style)
        ax.fill_between(x, m - s.to_numpy(), m + s.to_numpy(), color=style.get("color"), alpha=0.12)
    ax.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer (shallow → deep)")
    ax.set_ylabel(f"{metric} similarity")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(title or "Path similarity of feature visualizations")
    ax.legend(fontsize=7, loc="best")
    return fig


def plot_layer_correlation(corr: Tensor, layers: Sequence[str], title: str | None = None) -> Figure:
    """Heatmap of :func:`layer_correlation`."""
    n = len(layers)
    size = max(4.5, 0.3 * n + 2)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(corr.detach().cpu().numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(n), layers, rotation=90, fontsize=7)
    ax.set_yticks(range(n), layers, fontsize=7)
    fig.colorbar(im, ax=ax, label="Spearman of the visualizations' similarity matrices")
    ax.set_title(title or "Layer x layer correlation of visualization activations")
    return fig


def plot_image_grid(
    images: Tensor, labels: Sequence[str] | None = None, ncols: int = 6, title: str | None = None
) -> Figure:
    """The visualizations used, one labelled tile each (``[B, 3, H, W]`` in ``[0, 1]``)."""
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = Figure(figsize=(1.8 * ncols, 1.9 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i].detach().cpu().permute(1, 2, 0).clamp(0, 1).numpy())
            if labels is not None:
                ax.set_title(labels[i], fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
