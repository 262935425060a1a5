"""The probes' figures draw what their tables hold."""

from __future__ import annotations

import numpy as np
import pandas as pd

from isic_tracking.stages.filters.plots import ablation_figure, dissection_heatmap


def test_ablation_figure_has_a_panel_per_variant_and_a_row_per_target():
    rows = []
    for variant in ("zero", "mean"):
        for name, drop in (("benign", 0.1), ("malignant", 2.0)):
            rows.append({"kind": "class", "name": name, "layer": "L", "variant": variant,
                         "score": "logit", "images": "own", "drop": drop, "random_q95": 0.5,
                         "passed": drop > 0.5, "random": np.linspace(0, 0.6, 10)})  # fmt: skip
    fig = ablation_figure(pd.DataFrame(rows))
    axes = fig.get_axes()
    assert len(axes) == 2
    labels = [t.get_text() for t in axes[0].get_yticklabels()]
    assert labels == ["class benign @ L", "class malignant @ L"]
    # 2 targets: random dots and the top-k marker each
    assert len(axes[0].collections) == 4


def test_dissection_heatmap_shows_the_top_units_and_frames_the_labelled():
    table = pd.DataFrame({"layer": "L", "unit": range(30), "concept": "ruler",
                          "iou": np.linspace(0.3, 0.0, 30),
                          "labelled": np.linspace(0.3, 0.0, 30) >= 0.04,
                          "iou_lesion": 0.01, "iou_ruler": np.linspace(0.3, 0.0, 30)})  # fmt: skip
    fig = dissection_heatmap(table, ["lesion", "ruler"], top=10)
    ax = fig.get_axes()[0]
    assert ax.images[0].get_array().shape == (10, 2)
    assert len(ax.patches) == 10  # every shown unit is labelled
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "L:0"
