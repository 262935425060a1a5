"""Where to look: links into the MLflow UI for an experiment, a run, a model version, and
the line every stage ends with (its run id and that link)."""

from __future__ import annotations

import os

import mlflow
from mlflow.entities import Run

from isic_tracking.log import get_logger

log = get_logger(__name__)

#: where ``mlflow ui`` serves when the tracking URI is a local store (sqlite, file)
LOCAL_UI = "http://127.0.0.1:5000"
#: the UI's query parameter for its model-training (not GenAI) view
TRAINING_VIEW = "workflowType=machine_learning"
#: set by ``main`` for its stages: the pipeline run they belong to
PIPELINE_ENV = "ISIC_PIPELINE_RUN_ID"


def ui_base(tracking_uri: str | None = None) -> str:
    """The UI's address: the tracking server itself, else ``mlflow ui``'s default."""
    uri = (tracking_uri or mlflow.get_tracking_uri()).rstrip("/")
    return uri if uri.startswith(("http://", "https://")) else LOCAL_UI


def experiment_url(experiment_id: str, tracking_uri: str | None = None) -> str:
    """The experiment's runs in the UI's model-training view."""
    return f"{ui_base(tracking_uri)}/#/experiments/{experiment_id}/runs?{TRAINING_VIEW}"


def run_url(experiment_id: str, run_id: str, tracking_uri: str | None = None) -> str:
    """A run's page in the model-training view (a fresh browser would open the GenAI one)."""
    return f"{ui_base(tracking_uri)}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"


def ui_command(tracking_uri: str | None = None) -> str:
    """How to open the UI on this store (nothing to start for a tracking server)."""
    uri = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        return f"open {uri}"
    return f"mlflow ui --backend-store-uri {uri}"


def run_link(run_id: str) -> str:
    """The UI link of a run (``[id](url)``, markdown for run descriptions)."""
    run = mlflow.get_run(run_id)
    return f"[`{run_id}`]({run_url(run.info.experiment_id, run_id)})"


def announce(stage: str, run: Run) -> None:
    """The line a stage ends with: its run id and its UI link (plus how to open the UI on a
    local store, unless the ``main`` pipeline, which says it once at the end, runs it)."""
    log.info(f"{stage}: run {run.info.run_id}  {run_url(run.info.experiment_id, run.info.run_id)}")
    local = not mlflow.get_tracking_uri().startswith(("http://", "https://"))
    if local and not os.environ.get(PIPELINE_ENV):
        log.info(f"  (open the UI first: {ui_command()})")
