"""What the ``filters`` stage reads and reports around :func:`.report.filter_report`: the
classes of a model, which image groups a ``groups`` spec asks for, the filters a heatmap
marks, the recovery-AUC and dead-filter metrics and the planted-shortcut check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from isic_tracking.data.manifest import infer_task, task_classes
from isic_tracking.errors import IsicInputError
from isic_tracking.interpret.filters import rank_auc
from isic_tracking.interpret.liveness import CONSTANT, DEAD
from isic_tracking.interpret.names import metric_key, safe_name

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
    """``recovery_auc/<artifact>`` (and ``recovery_best_auc/<artifact>``) of the last layer,
    plus ``recovery_auc_<layer>/<artifact>`` per layer when there are several; MLflow-safe
    keys with one ``/`` level (metric, then artifact)."""
    last = layers[-1]
    metrics = {}
    for r in recovery.itertuples(index=False):
        if r.layer == last:
            metrics[f"recovery_auc/{r.artifact}"] = r.auc
            metrics[f"recovery_best_auc/{r.artifact}"] = r.best_auc
        if len(layers) > 1:
            metrics[f"recovery_auc_{safe_name(r.layer)}/{r.artifact}"] = r.auc
    return {metric_key(k): v for k, v in metrics.items()}


def liveness_metrics(counts: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """``dead_filters`` / ``constant_filters`` over all layers, and per layer
    ``dead_filters/<layer>`` / ``constant_filters/<layer>``."""
    metrics: dict[str, float] = {}
    for kind in (DEAD, CONSTANT):
        metrics[f"{kind}_filters"] = float(sum(c[kind] for c in counts.values()))
        for layer, c in counts.items():
            metrics[f"{kind}_filters/{safe_name(layer)}"] = float(c[kind])
    return {metric_key(k): v for k, v in metrics.items()}


def liveness_line(counts: Mapping[str, Mapping[str, int]]) -> str:
    """One terminal line: the dead and constant filters per layer, left out of the rankings."""
    parts = [
        f"{layer}: {c[DEAD]} dead, {c[CONSTANT]} constant of {sum(c.values())}"
        for layer, c in counts.items()
    ]
    return f"filters not ranked ({'; '.join(parts)}): tables/inactive_filters.csv"


#: Classes that count as malignant for the shortcut's class link (binary, 8-class task).
MALIGNANT = ("malignant", "MEL")


@dataclass(frozen=True)
class ShortcutCheck:
    """Does the planted shortcut's artifact have a selective filter ranked first?

    ``malignant_auc`` tells a filter the model uses as malignant evidence (a learned
    shortcut: > 0.5) from one that sees the artifact but not the class; measured on images
    where the artifact does not follow the class (the control set), it separates a learned
    shortcut from a merely salient artifact.
    """

    artifact: str
    layer: str
    filter: int  # rank 1 of the artifact's group
    auc: float  # its ROC AUC for "image has the artifact"
    min_auc: float
    malignant_auc: float  # its ROC AUC for "image is malignant" (NaN without such a class)

    @property
    def passed(self) -> bool:
        return bool(self.auc >= self.min_auc)


def shortcut_check(
    recovery: pd.DataFrame,
    artifact: str,
    layer: str,
    min_auc: float,
    max_acts: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
) -> ShortcutCheck:
    """The planted shortcut's check from the recovery table: the AUC of ``artifact``'s top filter
    in ``layer`` must reach ``min_auc``; with that filter's AUC for the malignant class
    (``max_acts`` ``[N, C]`` of ``layer``, ``labels`` index ``classes``). Raises when the
    analysed images have no such group."""
    rows = recovery[(recovery["artifact"] == artifact) & (recovery["layer"] == layer)]
    if rows.empty:
        groups = sorted(set(recovery["artifact"]))
        raise IsicInputError(
            f"shortcut_artifact={artifact!r}: no image group of that name in layer {layer!r} "
            f"(groups: {', '.join(groups) or 'none'}); analyse images that carry it "
            "(groups=artifact and a split or manifest with that artifact)"
        )
    r = rows.iloc[0]
    f = int(r["filter"])
    names = [str(c) for c in classes]
    mal = next((names.index(c) for c in MALIGNANT if c in names), None)
    positive = np.asarray(labels).reshape(-1) == mal
    mal_auc = (
        float(rank_auc(np.asarray(max_acts)[:, [f]], positive)[0]) if mal is not None else np.nan
    )
    return ShortcutCheck(artifact, layer, f, float(r["auc"]), float(min_auc), mal_auc)
