"""Every trial of a search as a nested MLflow run under the study's parent run.

A trial's run holds its parameters, per-epoch metrics, duration and final state (tag
``optuna.state``: complete / pruned / failed; MLflow status FINISHED / KILLED / FAILED). The
runs are written through ``MlflowClient`` with explicit run ids, so worker processes and
other machines attach their trials to the same parent (no global active-run state).
"""

from __future__ import annotations

import time
from typing import Any

import optuna
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from isic_tracking.scaleout.recovery import retry_of_trial
from isic_tracking.tracking import tag
from isic_tracking.tracking.outage import create_run_riding_outage
from isic_tracking.tracking.runs import child_runs, context_tags
from isic_tracking.train.search import TrialHooks, TrialOutcome

TRIAL_STAGE = "search-trial"
TRIAL_TAG = "optuna.trial_number"
STATE_TAG = "optuna.state"
RETRY_TAG = "optuna.retry_of"
RUN_ID_ATTR = "mlflow_run_id"
#: Trial outcome -> MLflow run status (pruned trials show as "killed" in the UI).
RUN_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}
_OPTUNA_STATE = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}


class MlflowTrialHooks(TrialHooks):
    """Each trial a nested run under ``parent_run_id`` (works from any process)."""

    def __init__(self, parent_run_id: str, study_name: str, metric: str) -> None:
        self.client = MlflowClient()
        self.parent_run_id = parent_run_id
        self.study_name = study_name
        self.metric = metric
        self.experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        self.run_ids: dict[int, str] = {}

    def start(self, trial: optuna.Trial, params: dict[str, Any]) -> None:
        tags = {
            MLFLOW_PARENT_RUN_ID: self.parent_run_id,
            tag.STAGE: TRIAL_STAGE,
            tag.STUDY_NAME: self.study_name,
            TRIAL_TAG: str(trial.number),
            STATE_TAG: "running",
        }
        retry_of = retry_of_trial(trial)
        if retry_of is not None:
            tags[RETRY_TAG] = str(retry_of)
        run = create_run_riding_outage(
            self.client,
            self.experiment_id,
            run_name=f"trial-{trial.number}",
            tags=context_tags(**tags),
        )
        run_id = run.info.run_id
        self.run_ids[trial.number] = run_id
        trial.set_user_attr(RUN_ID_ATTR, run_id)
        self.client.log_batch(
            run_id,
            params=[Param(k, str(v)) for k, v in {**params, "trial_number": trial.number}.items()],
        )

    def epoch(self, trial: optuna.Trial, epoch: int, row: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, epoch)
            for k, v in row.items()
            if _is_number(v) and k != "epoch"
        ]
        self.client.log_batch(self.run_ids[trial.number], metrics=metrics)

    def end(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        run_id = self.run_ids.pop(trial.number, None)
        if run_id is None:  # start() failed before the run existed
            return
        now = int(time.time() * 1000)
        metrics = {"duration_s": outcome.seconds, "epochs_run": float(outcome.epochs_run)}
        if outcome.value is not None:
            metrics["objective"] = float(outcome.value)
        tags = {STATE_TAG: outcome.state}
        if outcome.error:
            tags[tag.ERROR] = outcome.error[:4000]
        if outcome.best_epoch is not None:
            tags[tag.BEST_EPOCH] = str(outcome.best_epoch)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        self.client.set_terminated(run_id, status=RUN_STATUS[outcome.state], end_time=now)
        if outcome.state == "complete" and outcome.value is not None:
            self.client.log_metric(
                self.parent_run_id, "trial_value", float(outcome.value), now, trial.number
            )


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def sync_trial_runs(study: optuna.Study, parent_run_id: str) -> int:
    """End the nested runs still marked running whose trial has finished (a dead worker's
    trial, failed by heartbeat or by :func:`fail_dead_local_trials`). Returns how many."""
    client = MlflowClient()
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    n = 0
    for run in child_runs(parent_run_id):
        number = run.data.tags.get(TRIAL_TAG)
        if run.info.status != "RUNNING" or number is None:
            continue
        state = _OPTUNA_STATE.get(states.get(int(number), ""))
        if state is None:
            continue
        client.set_tag(run.info.run_id, STATE_TAG, state)
        if state == "failed":
            client.set_tag(run.info.run_id, tag.ERROR, "worker died (no heartbeat)")
        client.set_terminated(run.info.run_id, status=RUN_STATUS[state])
        n += 1
    return n
