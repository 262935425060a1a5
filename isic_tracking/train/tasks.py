"""The two tasks and the direction of a monitored metric: light names (no torch) that the
configs and the command-line help need before anything heavy is imported."""

from __future__ import annotations

from isic_tracking.errors import IsicInputError

TASKS = ("binary", "multiclass")


def check_task(task: str) -> None:
    """Raise a clear error for a task other than binary / multiclass."""
    if task not in TASKS:
        raise IsicInputError(f"unknown task {task!r}; choose one of {list(TASKS)}")


def metric_mode(metric: str) -> str:
    """``"min"`` for loss-like metric names (``val_loss``), ``"max"`` for the rest (AUC, F1...)."""
    return "min" if "loss" in metric.lower() else "max"
