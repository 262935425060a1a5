"""The figure of the per-layer verdict: each pictured layer's pictures minus noise along the
path (thesis Figs. 33-35), one line per pictured layer, its own layer marked."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

_MARK = {"closer": "^", "not closer": "v", "undecided": "o"}


def plot_layer_verdicts(table: pd.DataFrame, metric: str = "spearman") -> Figure:
    """Difference to noise (band: bootstrap interval) across the path for each pictured layer
    (:func:`.per_layer.layer_verdicts`); a large marker at the pictured layer itself, shaped by
    its verdict; the natural images' own difference dashed (the control)."""
    path = table.drop_duplicates("depth").sort_values("depth")["layer"].tolist()
    fig = Figure(figsize=(max(6.0, 0.35 * len(path) + 3), 4.5), layout="constrained")
    ax = fig.add_subplot()
    for i, (pic, part) in enumerate(table.groupby("picture_layer", sort=False)):
        part = part.sort_values("depth")
        x, d = part["depth"].to_numpy(), part["difference"].to_numpy()
        colour = f"C{i % 10}"
        ax.fill_between(x, part["lo"], part["hi"], color=colour, alpha=0.15)
        ax.plot(x, d, color=colour, lw=2, label=f"pictures of {pic} − noise")
        own = part[part["layer"] == pic]
        for r in own.itertuples():
            ax.scatter([r.depth], [r.difference], marker=_MARK.get(r.verdict, "o"), s=90,
                       color=colour, edgecolor="k", zorder=3)  # fmt: skip
    ctrl = table.drop_duplicates("depth").sort_values("depth")
    ax.plot(ctrl["depth"], ctrl["natural_minus_noise"], color="0.3", lw=1.2, ls="--",
            label="natural − noise (control)")  # fmt: skip
    ax.axhline(0, color="k", lw=0.8)
    level = f"{table['level'].iloc[0]:.0%}" if len(table) else ""
    ax.set_ylabel(f"{metric} similarity: closer than noise by")
    ax.set_title(
        f"Each pictured layer's top filters vs noise ({level} interval)\n"
        "marker at the pictured layer: ▲ closer  ▼ not closer  ● undecided",
        fontsize=9,
    )
    ax.set_xticks(range(len(path)), path, rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("layer (shallow → deep)")
    ax.legend(fontsize=7, loc="best")
    return fig
