"""Interpretation figures: filter heatmaps (thesis Fig. 26), top-filter tables (Table 10),
Jaccard matrices and exemplar grids.

Every function builds a :class:`matplotlib.figure.Figure` directly (no pyplot global state)
and returns it; the entry points log it (``tracking.log_figure``) and close it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from torch import Tensor


def filter_heatmap(
    percent: pd.DataFrame,
    title: str = "Class-specific filters",
    filters: Sequence[int] | None = None,
    annotate: bool | None = None,
) -> Figure:
    """Group x filter heatmap of the percentage of each group's images firing each filter
    (thesis Fig. 26).

    Args:
        percent: ``[groups, filters]`` percentages (from ``filter_percentages``).
        title: figure title.
        filters: columns to show (e.g. the union of every group's top filters); default all.
        annotate: write the values in the cells (default: when at most 30 columns).
    """
    data = percent if filters is None else percent.loc[:, list(filters)]
    n_rows, n_cols = data.shape
    annotate = n_cols <= 30 if annotate is None else annotate
    fig = Figure(figsize=(min(2 + 0.45 * n_cols, 24), 1.5 + 0.45 * n_rows), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(data.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0)
    ax.set_xticks(range(n_cols), [str(c) for c in data.columns], rotation=90, fontsize=8)
    ax.set_yticks(range(n_rows), [str(r) for r in data.index])
    ax.set_xlabel("filter")
    ax.set_title(title)
    if annotate:
        vmax = np.nanmax(data.to_numpy(dtype=float)) if data.size else 0
        for i in range(n_rows):
            for j in range(n_cols):
                v = data.iat[i, j]
                if np.isfinite(v):
                    color = "black" if v > 0.6 * vmax else "white"
                    ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(im, ax=ax, label="% of images > threshold")
    return fig


def top_filters_table(top: pd.DataFrame, title: str = "Top filters") -> Figure:
    """Table figure like thesis Table 10: one row per group, one column per rank, cells
    ``filter (percent %)``; with a ``layer`` column the layer leads the row label."""
    key = top.columns[0]
    by = [key] + (["layer"] if "layer" in top.columns else [])
    n_rank = int(top["rank"].max()) if len(top) else 0
    rows = []
    for g, d in top.groupby(by, sort=False):
        g = g if isinstance(g, tuple) else (g,)
        label = " / ".join(str(x) for x in reversed(g))
        d = d.sort_values("rank")
        cells = [f"{int(f)} ({p:.0f}%)" for f, p in zip(d["filter"], d["percent"])]
        rows.append([label, *cells, *[""] * (n_rank - len(cells))])
    header = [" / ".join(reversed(by)), *[f"#{r}" for r in range(1, n_rank + 1)]]
    # column widths in characters -> figure width, so long labels are never cut off
    label_chars = max(len(r[0]) for r in [header, *rows]) + 2
    rank_chars = 12
    total = label_chars + rank_chars * n_rank
    fig = Figure(figsize=(0.4 + 0.085 * total, 0.7 + 0.3 * (len(rows) + 1)))
    ax = fig.add_axes((0.02, 0.02, 0.96, 0.96 - 0.5 / fig.get_figheight()))
    ax.axis("off")
    fig.suptitle(title, y=0.99, va="top")
    if rows:
        table = ax.table(
            cellText=rows,
            colLabels=header,
            colWidths=[label_chars / total] + [rank_chars / total] * n_rank,
            cellLoc="center",
            bbox=(0, 0, 1, 1),
        )
        table.auto_set_font_size(False)
        table.set_fontsize(8)
    return fig


def jaccard_heatmap(matrix: pd.DataFrame, title: str = "Jaccard overlap of top filters") -> Figure:
    """Heatmap of a Jaccard matrix (rows: groups of one table, columns: of another)."""
    n_rows, n_cols = matrix.shape
    fig = Figure(figsize=(2.5 + 0.6 * n_cols, 1.5 + 0.45 * n_rows), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(matrix.to_numpy(dtype=float), vmin=0, vmax=1, cmap="magma", aspect="auto")
    ax.set_xticks(range(n_cols), [str(c) for c in matrix.columns], rotation=45, ha="right")
    ax.set_yticks(range(n_rows), [str(r) for r in matrix.index])
    for i in range(n_rows):
        for j in range(n_cols):
            v = matrix.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="grey")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="Jaccard index")
    return fig


def _to_hwc(img: Tensor) -> np.ndarray:
    a = img.detach().float().cpu().clamp(0, 1).numpy()
    return a.transpose(1, 2, 0) if a.shape[0] in (1, 3) else a


def exemplar_grid(
    crops: Sequence[Tensor],
    row_labels: Sequence[str],
    cell_labels: Sequence[str] | None = None,
    ncols: int | None = None,
    title: str = "Dataset exemplars",
) -> Figure:
    """Grid of exemplar crops, one row per filter (Borowski et al. 2021).

    Args:
        crops: ``[3, h, w]`` tensors in 0..1, row-major (``len(row_labels) * ncols``; missing
            cells stay blank).
        row_labels: label of each row (e.g. ``"filter 12"``).
        cell_labels: small caption under each crop (e.g. image id and activation).
        ncols: crops per row (default ``len(crops) // len(row_labels)``).
        title: figure title.
    """
    nrows = max(len(row_labels), 1)
    ncols = ncols or max(len(crops) // nrows, 1)
    fig = Figure(figsize=(1.3 * ncols + 1.2, 1.45 * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i in range(nrows):
        for j in range(ncols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            k = i * ncols + j
            if k < len(crops):
                ax.imshow(_to_hwc(crops[k]), interpolation="nearest")
                if cell_labels is not None:
                    ax.set_xlabel(cell_labels[k], fontsize=6)
            else:
                ax.axis("off")
            if j == 0 and i < len(row_labels):
                ax.set_ylabel(row_labels[i], fontsize=8)
    fig.suptitle(title)
    return fig
