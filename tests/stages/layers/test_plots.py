"""The layer profile figure: one panel per kind of measure, layers shallow to deep."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from isic_tracking.stages.layers.plots import layer_profile


def test_layer_profile_draws_every_measure_over_the_layers():
    n = 3
    rows = {"layer": ["a", "b", "c"], "cka": [1.0, 0.8, 0.3], "topk_jaccard": [1.0, 0.5, 0.0],
            "fv_same": [0.7, 0.2, -0.3], "fv_other": [0.0, 0.0, 0.0],
            "weight_change": [0.1, 0.4, 0.7]}  # fmt: skip
    for key in ("reset_drop", "rerandomize_drop", "probe_base", "probe_tuned"):
        rows[key] = np.linspace(0.1, 0.9, n)
        rows[f"{key}_low"], rows[f"{key}_high"] = rows[key] - 0.05, rows[key] + 0.05
    fig = layer_profile(pd.DataFrame(rows), "smallcnn " * 20, "roc_auc")
    axes = fig.axes
    assert len(axes) == 4
    assert [t.get_text() for t in axes[3].get_xticklabels()] == ["a", "b", "c"]
    assert axes[0].get_ylim()[0] <= -0.3  # a negative picture correlation stays visible
    assert "\n" in fig._suptitle.get_text()  # a long title wraps
    assert "roc_auc" in axes[2].get_ylabel()
    plt.close(fig)
