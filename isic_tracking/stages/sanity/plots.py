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
    summary: pd.DataFrame,
    metric: str = "spearman",
    title: str | None = None,
    versus_noise: pd.DataFrame | None = None,
) -> Figure:
    """Mean similarity (band: ± one standard deviation) across depth, one line per comparison.

    With ``versus_noise`` (:func:`isic_tracking.interpret.versus_noise.verdict_table`), a second panel below shows
    visualization minus noise per layer with its bootstrap interval as a band, each point
    marked by its verdict, and the natural images' own difference (the control).
    """
    layers = summary.drop_duplicates("depth").sort_values("depth")["layer"].tolist()
    width = max(6.0, 0.35 * len(layers) + 3)
    panels = versus_noise is not None and not versus_noise.empty
    fig = Figure(figsize=(width, 7.0 if panels else 4.5), layout="constrained")
    axes = fig.subplots(2 if panels else 1, 1, sharex=True, squeeze=False,
                        height_ratios=[3, 2] if panels else None)[:, 0]  # fmt: skip
    ax = axes[0]
    for comp, part in summary.groupby("comparison", sort=False):
        part = part.sort_values("depth")
        style = dict(_STYLE.get(comp, dict(label=comp)))
        x, m, s = part["depth"].to_numpy(), part["mean"].to_numpy(), part["std"].fillna(0)
        ax.plot(x, m, marker="o", ms=3, **style)
        ax.fill_between(x, m - s.to_numpy(), m + s.to_numpy(), color=style.get("color"), alpha=0.12)
    ax.set_ylabel(f"{metric} similarity")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_title(title or "Path similarity of feature visualizations")
    ax.legend(fontsize=7, loc="best")
    if panels:
        _plot_versus_noise(axes[1], versus_noise)
    axes[-1].set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=7)
    axes[-1].set_xlabel("layer (shallow → deep)")
    return fig


_VERDICT_MARK = {"closer": ("^", "C2"), "not closer": ("v", "C3"), "undecided": ("o", "0.5")}


def _plot_versus_noise(ax, table: pd.DataFrame) -> None:
    t = table.sort_values("depth")
    x = t["depth"].to_numpy()
    level = f"{t['level'].iloc[0]:.0%}"
    ax.fill_between(x, t["lo"], t["hi"], color="C3", alpha=0.2, label=f"{level} bootstrap interval")
    ax.plot(x, t["difference"], color="C3", lw=2, label="visualization − noise")
    for v, (marker, color) in _VERDICT_MARK.items():
        sel = (t["verdict"] == v).to_numpy()
        if sel.any():
            ax.scatter(x[sel], t["difference"].to_numpy()[sel], marker=marker, s=40,
                       color=color, zorder=3, label=v)  # fmt: skip
    if "natural_minus_noise" in t:
        ax.plot(x, t["natural_minus_noise"], color="C0", lw=1.2, ls="--",
                label="natural − noise (control)")  # fmt: skip
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("closer than noise by")
    ax.set_title("Closer to their class than noise? (interval above 0: closer)", fontsize=9)
    ax.legend(fontsize=7, loc="best", ncols=2)


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
