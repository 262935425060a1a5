"""tracking/pipeline.py: the reuse key and the lookup of finished stages (real sqlite store)."""

from __future__ import annotations

import mlflow
from mlflow.tracking import MlflowClient

from isic_tracking.tracking import tag
from isic_tracking.tracking.pipeline import (
    GIT_COMMIT_TAG,
    effective_run,
    find_finished_stage,
    stage_key,
)
from isic_tracking.tracking.runs import experiment_id, get_run


def test_stage_key_ignores_order_and_treats_none_as_empty() -> None:
    assert stage_key("train", {"a": 1, "b": None}) == stage_key("train", {"b": "", "a": "1"})
    assert stage_key("train", {"a": 1}) != stage_key("search", {"a": 1})
    assert stage_key("train", {"a": 1}) != stage_key("train", {"a": 2})


def _stage(key: str, commit: str, status: str = "FINISHED") -> str:
    client = MlflowClient()
    run = client.create_run(experiment_id(), tags={tag.STAGE_KEY: key, GIT_COMMIT_TAG: commit})
    client.set_terminated(run.info.run_id, status)
    return run.info.run_id


def test_find_finished_stage_matches_key_commit_and_status(mlflow_tracking: str) -> None:
    params = {"folds": "3"}
    key = stage_key("train", params)
    _stage(key, "c1", status="FAILED")
    assert find_finished_stage(experiment_id(), "train", params, "c1") is None
    done = _stage(key, "c1")
    _stage(stage_key("train", {"folds": "5"}), "c1")
    assert find_finished_stage(experiment_id(), "train", params, "c1").info.run_id == done
    assert find_finished_stage(experiment_id(), "train", params, "c2") is None
    assert find_finished_stage(experiment_id(), "train", params, None).info.run_id == done


def test_effective_run_follows_a_resumed_train_run(mlflow_tracking: str) -> None:
    with mlflow.start_run() as first:
        pass
    with mlflow.start_run(tags={tag.RESUMED_INTO: first.info.run_id}) as resume:
        pass
    assert effective_run(get_run(resume.info.run_id)).info.run_id == first.info.run_id
    assert effective_run(get_run(first.info.run_id)).info.run_id == first.info.run_id
