"""Interpretation figures build without pyplot and show what they are given."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from isic_tracking.interpret.plots import (
    exemplar_grid,
    filter_heatmap,
    jaccard_heatmap,
    top_filters_table,
)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_filter_heatmap_shows_selected_filters():
    pct = pd.DataFrame(np.arange(12.0).reshape(3, 4), index=["MEL", "NV", "BCC"])
    fig = filter_heatmap(pct, filters=[1, 3])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "3"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["MEL", "NV", "BCC"]
    assert len(ax.texts) == 6  # annotated cells
    assert _png(fig).startswith(b"\x89PNG")


def test_top_filters_table_has_one_row_per_class_and_layer():
    top = pd.DataFrame(
        {
            "class": ["a", "a", "b", "b"],
            "filter": [3, 1, 2, 0],
            "percent": [90.0, 40.0, 80.0, 10.0],
            "rank": [1, 2, 1, 2],
            "layer": ["l"] * 4,
        }
    )
    fig = top_filters_table(top)
    table = fig.axes[0].tables[0]
    texts = {c.get_text().get_text() for c in table.get_celld().values()}
    assert {"3 (90%)", "1 (40%)", "2 (80%)", "#1", "#2", "l / a", "l / b", "layer / class"} <= texts
    assert _png(fig)


def test_jaccard_heatmap_and_exemplar_grid():
    j = pd.DataFrame([[1.0, 0.25]], index=["MEL"], columns=["hair", "ruler"])
    assert len(jaccard_heatmap(j).axes[0].texts) == 2
    crops = [torch.rand(3, 8, 8) for _ in range(5)]
    fig = exemplar_grid(crops, ["filter 1", "filter 2"], [f"c{i}" for i in range(5)], ncols=3)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert len(image_axes) == 5
    assert fig.axes[0].get_ylabel() == "filter 1" and fig.axes[3].get_ylabel() == "filter 2"
    assert _png(fig)
