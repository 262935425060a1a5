"""Task names and the direction of a monitored metric."""

from __future__ import annotations

import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.train.tasks import TASKS, check_task, metric_mode


def test_known_tasks_pass() -> None:
    assert TASKS == ("binary", "multiclass")
    for task in TASKS:
        check_task(task)


@pytest.mark.parametrize("task", ["Binary", "ternary", "", "multi-class"])
def test_unknown_task_error_names_it_and_the_choices(task: str) -> None:
    with pytest.raises(IsicInputError) as err:
        check_task(task)
    assert str(err.value) == f"unknown task {task!r}; choose one of ['binary', 'multiclass']"


@pytest.mark.parametrize(
    "metric, mode",
    [
        ("val_loss", "min"),
        ("train_loss", "min"),
        ("VAL_LOSS", "min"),
        ("best_val_loss_mean", "min"),
        ("val_roc_auc", "max"),
        ("val_balanced_accuracy", "max"),
        ("val_f1", "max"),
        ("accuracy", "max"),
    ],
)
def test_metric_mode(metric: str, mode: str) -> None:
    """Loss-like names are minimized, everything else maximized."""
    assert metric_mode(metric) == mode
