"""What the ``filters`` stage reads and reports around :func:`.filters.filter_report`: the
classes of a model, which image groups a ``groups`` spec asks for, the filters a heatmap
marks and the recovery-AUC metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from isic_tracking.data.manifest import infer_task, task_classes
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.names import metric_key

ZSCORE = "zscore"


def class_names(config: Mapping[str, Any], df: pd.DataFrame) -> list[str]:
    """The model's classes; for an ImageNet base (no classes of ours), the manifest's task."""
    if config.get("task") in ("binary", "multiclass"):
        return [str(c) for c in config["classes"]]
    return list(task_classes(infer_task(df)))


def group_sources(spec: str, columns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(sources, notes) of a ``groups`` spec: ``zscore`` and manifest columns, in order.

    ``none`` and empty items are skipped; ``artifact`` without such a column is skipped with
    a note; any other unknown item is an :class:`IsicInputError` listing the columns.
    """
    sources, notes = [], []
    for item in (s.strip() for s in spec.split(",")):
        if item in ("", "none"):
            continue
        if item == ZSCORE or item in columns:
            sources.append(item)
        elif item == "artifact":
            notes.append("note: the manifest has no `artifact` column: classes only (groups=none)")
        else:
            raise IsicInputError(
                f"groups={item!r} is neither `zscore`, `none` nor a manifest column; "
                f"columns: {', '.join(map(str, columns))}"
            )
    return sources, notes


def union_top(top: pd.DataFrame, layer: str) -> list[int]:
    """Every filter of ``layer`` in a top-N table (the columns a heatmap marks)."""
    return sorted(set(top.loc[top["layer"] == layer, "filter"].astype(int)))


def recovery_metrics(recovery: pd.DataFrame, layers: Sequence[str]) -> dict[str, float]:
    """``recovery_auc/<artifact>`` (and ``recovery_best_auc``) of the last layer, plus
    ``recovery_auc/<artifact>/<layer>`` per layer when there are several; MLflow-safe keys."""
    last = layers[-1]
    metrics = {}
    for r in recovery.itertuples(index=False):
        if r.layer == last:
            metrics[f"recovery_auc/{r.artifact}"] = r.auc
            metrics[f"recovery_best_auc/{r.artifact}"] = r.best_auc
        if len(layers) > 1:
            metrics[f"recovery_auc/{r.artifact}/{r.layer}"] = r.auc
    return {metric_key(k): v for k, v in metrics.items()}
