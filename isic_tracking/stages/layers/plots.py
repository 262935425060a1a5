"""The layer profile: every measure over depth (shallow left, deep right) in one figure."""

from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def _band(ax, x, table: pd.DataFrame, key: str, label: str, colour: str) -> None:
    ax.plot(x, table[key], "o-", color=colour, label=label)
    if f"{key}_low" in table:
        ax.fill_between(x, table[f"{key}_low"], table[f"{key}_high"], color=colour, alpha=0.2)


def layer_profile(table: pd.DataFrame, title: str, monitor: str) -> Figure:
    """Four panels sharing the layer axis: similarity to the base (CKA, top-k overlap, the
    same filters' pictures), relative weight change, the drop of ``monitor`` when the layer is
    reset or re-randomized, and the k-NN probe's balanced accuracy before and after."""
    x = list(range(len(table)))
    fig, axes = plt.subplots(4, 1, figsize=(max(6.0, 0.45 * len(x) + 3), 11), sharex=True)
    ax = axes[0]
    ax.plot(x, table["cka"], "o-", color="C0", label="CKA base vs fine-tuned")
    ax.plot(x, table["topk_jaccard"], "s--", color="C1", label="top-k filters overlap (Jaccard)")
    if table["fv_same"].notna().any():
        ax.plot(x, table["fv_same"], "^-", color="C2", label="same filter's pictures (corr.)")
        ax.plot(x, table["fv_other"], "v:", color="C7", label="other filters' pictures (baseline)")
    ax.set_ylabel("similarity to base")
    lowest = table[["cka", "topk_jaccard", "fv_same", "fv_other"]].min().min()
    ax.set_ylim(min(-0.05, float(lowest) - 0.05), 1.05)
    ax.legend(fontsize=8, loc="lower left")
    axes[1].bar(x, table["weight_change"], color="C4")
    axes[1].set_ylabel("‖W_ft − W_base‖ / ‖W_base‖")
    ax = axes[2]
    _band(ax, x, table, "reset_drop", "reset to base", "C3")
    _band(ax, x, table, "rerandomize_drop", "re-randomized", "C5")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel(f"drop of {monitor}")
    ax.legend(fontsize=8)
    ax = axes[3]
    _band(ax, x, table, "probe_base", "base", "C7")
    _band(ax, x, table, "probe_tuned", "fine-tuned", "C0")
    ax.set_ylabel("k-NN probe\nbalanced accuracy")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_xticks(x)
    ax.set_xticklabels(table["layer"], rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("layer (shallow → deep); bands: 95 % bootstrap intervals over images")
    fig.suptitle(textwrap.fill(title, 70), fontsize=10)
    fig.tight_layout()
    return fig
