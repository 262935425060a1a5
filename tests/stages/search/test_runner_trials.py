"""Trial runs: one nested MLflow run per Optuna trial, ended as its trial ended."""

from __future__ import annotations

import mlflow
import optuna
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from isic_tracking.stages.search.runner_trials import (
    RETRY_TAG,
    STATE_TAG,
    TRIAL_TAG,
    MlflowTrialHooks,
    sync_trial_runs,
)
from isic_tracking.train.search import SearchConfig, TrialOutcome

SPACE = SearchConfig().space()


def _parent() -> str:
    return (
        MlflowClient().create_run(mlflow.get_experiment_by_name("tests").experiment_id).info.run_id
    )


def test_trial_run_records_params_epochs_and_outcome(mlflow_tracking: str) -> None:
    parent = _parent()
    hooks = MlflowTrialHooks(parent, "s", "val_roc_auc")
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 1e-3, "batch_size": 16, "epochs": 5})
    trial = study.ask()
    params = SPACE.suggest(trial)
    hooks.start(trial, params)
    hooks.epoch(trial, 0, {"val_roc_auc": 0.6, "train_loss": 0.7, "epoch": 0, "note": "x"})
    hooks.epoch(trial, 1, {"val_roc_auc": 0.8, "train_loss": 0.5, "epoch": 1})
    hooks.end(trial, TrialOutcome("complete", 0.8, 1.5, 2, best_epoch=1))

    client = MlflowClient()
    run = client.get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["mlflow.parentRunId"] == parent
    assert run.data.tags[TRIAL_TAG] == "0" and run.data.tags[STATE_TAG] == "complete"
    assert run.data.tags["isic.best_epoch"] == "1" and RETRY_TAG not in run.data.tags
    assert run.data.params == {
        "lr": "0.001",
        "batch_size": "16",
        "epochs": "5",
        "trial_number": "0",
    }
    assert [m.value for m in client.get_metric_history(run.info.run_id, "val_roc_auc")] == [
        0.6,
        0.8,
    ]
    assert run.data.metrics["objective"] == 0.8 and run.data.metrics["epochs_run"] == 2
    assert "note" not in run.data.metrics and "epoch" not in run.data.metrics
    assert client.get_run(parent).data.metrics["trial_value"] == 0.8


def test_pruned_trial_is_killed_and_a_dead_workers_run_is_synced(mlflow_tracking: str) -> None:
    parent = _parent()
    hooks = MlflowTrialHooks(parent, "s", "val_roc_auc")
    study = optuna.create_study(direction="maximize")
    pruned, dead = study.ask(), study.ask()
    for t in (pruned, dead):
        hooks.start(t, SPACE.suggest(t))
    hooks.end(pruned, TrialOutcome("pruned", 0.5, 1.0, 1))
    study.tell(pruned, state=TrialState.PRUNED)
    study.tell(dead, state=TrialState.FAIL)  # its worker died: nobody ended its run
    client = MlflowClient()
    assert client.get_run(dead.user_attrs["mlflow_run_id"]).info.status == "RUNNING"

    assert sync_trial_runs(study, parent) == 1
    killed = client.get_run(pruned.user_attrs["mlflow_run_id"])
    assert killed.info.status == "KILLED" and killed.data.tags[STATE_TAG] == "pruned"
    synced = client.get_run(dead.user_attrs["mlflow_run_id"])
    assert synced.info.status == "FAILED" and synced.data.tags[STATE_TAG] == "failed"
    assert synced.data.tags["isic.error"] == "worker died (no heartbeat)"
    assert sync_trial_runs(study, parent) == 0
