"""The ``filters`` stage's report over one or more layers: class- and group-specific live
filters, their Jaccard overlap, the artifact recovery AUCs and the dead/constant filters
(which no ranking holds; see :mod:`isic_tracking.interpret.liveness`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from torch import Tensor

from isic_tracking.interpret.filters import (
    RECOVERY_COLUMNS,
    TOP_COLUMNS,
    artifact_recovery_auc,
    check_classes_present,
    jaccard_overlap,
    labels_array,
    membership,
    ranked_layer,
)
from isic_tracking.interpret.liveness import filter_liveness, max_matrix


@dataclass
class FilterReport:
    """Everything the ``filters`` stage reports, over one or more layers.

    Top tables have the group key first (``class`` or ``group``) and a ``layer`` column;
    percent tables are ``[groups, filters]`` per layer.
    """

    class_top: pd.DataFrame
    class_percent: dict[str, pd.DataFrame]
    group_top: pd.DataFrame
    group_percent: dict[str, pd.DataFrame]
    jaccard: pd.DataFrame
    recovery: pd.DataFrame
    liveness: dict[str, pd.DataFrame]  # per layer: filter, status, max, std


def filter_report(
    max_acts: dict[str, Tensor],
    labels: Tensor | np.ndarray | Sequence[int],
    class_names: Sequence[str],
    groups: pd.DataFrame | pd.Series | None = None,
    quantile: float = 0.95,
    top_n: int = 5,
    *,
    split: str = "the split",
    min_group_images: int = 1,
) -> FilterReport:
    """Class- and group-specific filters of every layer, their Jaccard overlap and the
    artifact recovery AUC.

    Args:
        max_acts: ``{layer: [N, C] max activations}`` (``LayerStats.max`` per layer).
        labels, class_names, quantile, top_n, split: see :func:`class_specific_filters`.
        groups: image groups (see :func:`membership`), or None for classes only.
        min_group_images: groups with fewer images are left out.

    Returns:
        A :class:`FilterReport`; its rankings hold live filters only, ``liveness`` says
        which are dead or constant. The Jaccard matrix is square over classes and groups (a
        group named like a class is prefixed ``group:``); top-filter sets are ``(layer,
        filter)`` pairs, so filters of different layers never match.
    """
    check_classes_present(labels, class_names, split)
    names = [str(c) for c in class_names]
    lab = labels_array(labels)
    class_member = pd.DataFrame({n: lab == i for i, n in enumerate(names)})
    group_member = None
    if groups is not None:
        group_member = membership(groups, len(lab))
        keep = group_member.sum(axis=0) >= max(min_group_images, 1)
        group_member = group_member.loc[:, keep]
        group_member.columns = [f"group:{g}" if g in names else g for g in group_member.columns]
        if group_member.shape[1] == 0:
            group_member = None
    class_tops, group_tops, recs = [], [], []
    class_pct: dict[str, pd.DataFrame] = {}
    group_pct: dict[str, pd.DataFrame] = {}
    liveness: dict[str, pd.DataFrame] = {}
    for layer, acts in max_acts.items():
        acts = max_matrix(acts)
        liveness[layer] = filter_liveness(acts)
        top, class_pct[layer] = ranked_layer(acts, class_member, quantile, top_n, "class")
        class_tops.append(top.assign(layer=layer))
        if group_member is not None:
            top, group_pct[layer] = ranked_layer(acts, group_member, quantile, top_n, "group")
            group_tops.append(top.assign(layer=layer))
            recs.append(
                artifact_recovery_auc(acts, group_member, quantile, top).assign(layer=layer)
            )
    class_top = pd.concat(class_tops, ignore_index=True)
    empty_top = pd.DataFrame(columns=["group", *TOP_COLUMNS, "layer"])
    group_top = pd.concat(group_tops, ignore_index=True) if group_tops else empty_top
    both = pd.concat([class_top.rename(columns={"class": "group"}), group_top], ignore_index=True)
    recovery = (
        pd.concat(recs, ignore_index=True)
        if recs
        else pd.DataFrame(columns=[*RECOVERY_COLUMNS, "layer"])
    )
    return FilterReport(
        class_top, class_pct, group_top, group_pct, jaccard_overlap(both), recovery, liveness
    )
