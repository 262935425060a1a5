"""The figures of the ``filters`` stage's probes: the ablation drops against their random
baseline, and the units x concepts IoU heatmap of the dissection."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def ablation_figure(table: pd.DataFrame, score: str = "logit") -> Figure:
    """Per variant (a panel each) and target (a row: ``kind name @ layer``): the drops of the
    class's ``score`` on the target's own images when removing ``k`` random live filters (grey
    dots, with their 95th percentile as a bar) and its top-k filters (a marker: green when
    above that bar, red when not)."""
    own = table[(table["images"] == "own") & (table["score"] == score)]
    variants = list(dict.fromkeys(own["variant"]))
    labels = list(dict.fromkeys(f"{r.kind} {r.name} @ {r.layer}" for r in own.itertuples()))
    fig = Figure(figsize=(4.5 * max(len(variants), 1), 1.2 + 0.42 * len(labels)),
                 layout="constrained")  # fmt: skip
    axes = fig.subplots(1, max(len(variants), 1), sharey=True, squeeze=False)[0]
    rng = np.random.default_rng(0)  # vertical jitter of the dots only
    for ax, variant in zip(axes, variants):
        for r in own[own["variant"] == variant].itertuples():
            y = labels.index(f"{r.kind} {r.name} @ {r.layer}")
            rand = np.asarray(r.random, dtype=float)
            ax.scatter(rand, y + rng.uniform(-0.15, 0.15, len(rand)), s=9, c="0.6", lw=0)
            ax.plot([r.random_q95] * 2, [y - 0.3, y + 0.3], c="0.3", lw=1.5)
            ax.scatter([r.drop], [y], marker="D", s=40, c="tab:green" if r.passed else "tab:red",
                       zorder=3)  # fmt: skip
        ax.axvline(0, c="0.8", lw=0.8, zorder=0)
        ax.set_title(f"{variant}: top-k vs random (bar: 95th pct.)", fontsize=9)
        ax.set_xlabel(f"drop of the class {score} on its images")
    axes[0].set_yticks(range(len(labels)), labels, fontsize=8)
    axes[0].invert_yaxis()
    return fig


def dissection_heatmap(table: pd.DataFrame, concepts: Sequence[str], top: int = 20) -> Figure:
    """Units (``layer:unit``, the ``top`` best by IoU) x concepts heatmap of the pooled IoU;
    the labelled units' best cells are framed."""
    best = table.sort_values("iou", ascending=False, kind="stable").head(top)
    data = best[[f"iou_{c}" for c in concepts]].to_numpy(dtype=float)
    fig = Figure(figsize=(2.5 + 0.6 * len(concepts), 1.4 + 0.3 * len(best)), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(data, aspect="auto", cmap="magma", vmin=0)
    ax.set_xticks(range(len(concepts)), list(concepts), rotation=45, ha="right")
    ax.set_yticks(range(len(best)), [f"{r.layer}:{r.unit}" for r in best.itertuples()],
                  fontsize=7)  # fmt: skip
    for i, r in enumerate(best.itertuples()):
        if r.labelled and r.concept in concepts:
            j = list(concepts).index(r.concept)
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="cyan", lw=1.5))
    fig.colorbar(im, ax=ax, label="IoU (pooled over images)")
    ax.set_title("Network Dissection: IoU of each unit's top activations with each concept")
    return fig
