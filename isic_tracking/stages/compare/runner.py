"""The ``compare`` stage: one table across training runs (thesis Tables 6-9) + bar charts.

Runs are comparable only when they were trained on identical folds: the train stage tags
``isic.split_digest`` (hash of image_id -> fold); differing digests are flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from isic_tracking.errors import IsicInputError
from isic_tracking.stages.train.runner_results import summary_of
from isic_tracking.tracking import tag
from isic_tracking.tracking.registry import INIT_FIELDS, _resolve_version, init_line
from isic_tracking.tracking.runs import get_run, get_stage_run, param

#: metric families shown per model, as in the thesis's tables
TABLE_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "loss")
PARTS = ("train", "val", "test")


@dataclass
class Comparison:
    table: pd.DataFrame
    comparable: bool
    warnings: list[str]


def resolve_train_runs(runs: list[str], models: list[str]) -> list[str]:
    """Train run ids from run ids and registered model names (``name`` or ``name@alias``)."""
    ids = [r for r in runs if r]
    for m in (m for m in models if m):
        name, _, ref = m.removeprefix("models:/").partition("@")
        name, _, ver = name.partition("/")
        mv = _resolve_version(name, ref or ver or "champion")
        run = get_run(mv.run_id)
        ids.append(run.data.tags.get("mlflow.parentRunId", mv.run_id))
    if len(ids) < 1:
        raise IsicInputError("give at least one train run id (runs=...) or model name (models=...)")
    for i in ids:
        get_stage_run(i, "train")
    return list(dict.fromkeys(ids))


def _row(run_id: str) -> dict:
    run = get_run(run_id)
    t, m = run.data.tags, summary_of(run_id)  # over its folds (the parent logs a few)
    row: dict = {
        "run_id": run_id,
        "name": t.get("mlflow.runName", run_id[:8]),
        "arch": param(run, "arch"),
        "task": param(run, "task"),
        "data_set": t.get(tag.dataset_digest("training"), ""),
        "manifest": param(run, "manifest"),
        "folds": param(run, "folds"),
        "grouping": t.get(tag.GROUPING, ""),
        "split_digest": t.get(tag.SPLIT_DIGEST, ""),
        "init": init_line({k: param(run, f"init.{k}") or "" for k in INIT_FIELDS}),
    }
    for part in PARTS:
        for k in TABLE_METRICS:
            key = f"best_{part}_{k}" if part != "test" else f"test_{k}"
            row[f"{part}_{k}_mean"] = m.get(f"{key}_mean")
            row[f"{part}_{k}_std"] = m.get(f"{key}_std")
    return row


def compare_runs(run_ids: list[str]) -> Comparison:
    """The comparison table; ``comparable`` is False when splits (or tasks) differ."""
    table = pd.DataFrame([_row(r) for r in run_ids])
    warnings = []
    if table["split_digest"].nunique() > 1:
        groups = table.groupby("split_digest")["name"].apply(list).to_dict()
        warnings.append(
            f"runs were trained on different splits {groups}: their metrics are not comparable; "
            "train them on the same manifest, folds, grouping and seed"
        )
    if table["task"].nunique() > 1:
        warnings.append(f"runs mix tasks {sorted(table['task'].unique())}")
    return Comparison(table, not warnings, warnings)


def mean_std_table(table: pd.DataFrame) -> pd.DataFrame:
    """Human-readable 'mean ± std' cells, one row per model (the logged thesis-style table)."""
    out = table[["name", "arch", "init", "folds", "grouping", "split_digest"]].copy()
    for part in PARTS:
        for k in TABLE_METRICS:
            mean, std = table[f"{part}_{k}_mean"], table[f"{part}_{k}_std"]
            out[f"{part}_{k}"] = [
                "" if pd.isna(a) else f"{a:.3f} ± {0.0 if pd.isna(b) else b:.3f}"
                for a, b in zip(mean, std)
            ]
    return out
