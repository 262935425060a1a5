"""Links into the MLflow UI and the line every stage ends with."""

from __future__ import annotations

import logging

import mlflow
import pytest

from isic_tracking.tracking.links import (
    LOCAL_UI,
    PIPELINE_ENV,
    announce,
    experiment_url,
    run_url,
    ui_base,
    ui_command,
)


def test_links_point_at_the_server_or_at_mlflow_ui() -> None:
    assert ui_base("http://127.0.0.1:5005/") == "http://127.0.0.1:5005"
    assert ui_base("sqlite:///mlflow.db") == LOCAL_UI == "http://127.0.0.1:5000"
    # the runs in the model-training view, not the GenAI one (MLflow 3.x's workflowType)
    assert experiment_url("7", "http://h:1") == (
        "http://h:1/#/experiments/7/runs?workflowType=machine_learning"
    )
    assert run_url("7", "abc", "http://h:1") == (
        "http://h:1/#/experiments/7/runs/abc?workflowType=machine_learning"
    )
    assert ui_command("sqlite:///a.db") == "mlflow ui --backend-store-uri sqlite:///a.db"
    assert ui_command("http://h:1") == "open http://h:1"


def test_a_stage_ends_with_its_run_and_link(
    mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Alone: run id, link and how to open the UI; under ``main``: the link only (main says
    how to open the UI once)."""
    with mlflow.start_run() as run:
        pass
    monkeypatch.delenv(PIPELINE_ENV, raising=False)
    with caplog.at_level(logging.INFO, logger="isic_tracking"):
        announce("eda", run)
    url = run_url(run.info.experiment_id, run.info.run_id)
    assert [r.getMessage() for r in caplog.records] == [
        f"eda: run {run.info.run_id}  {url}",
        f"  (open the UI first: mlflow ui --backend-store-uri {mlflow_tracking})",
    ]
    caplog.clear()
    monkeypatch.setenv(PIPELINE_ENV, "pipeline-run")
    with caplog.at_level(logging.INFO, logger="isic_tracking"):
        announce("eda", run)
    assert [r.getMessage() for r in caplog.records] == [f"eda: run {run.info.run_id}  {url}"]
