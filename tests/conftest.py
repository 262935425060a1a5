"""Shared fixtures: a real, temporary MLflow tracking store (sqlite + local artifacts)."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest

os.environ.setdefault("CI", "true")  # quiet progress bars
os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")


@pytest.fixture
def mlflow_tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh sqlite tracking + registry store with artifacts under tmp_path; yields its URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.create_experiment("tests", artifact_location=(tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", exp)
    mlflow.set_experiment(experiment_id=exp)
    yield uri
    while mlflow.active_run():
        mlflow.end_run()
