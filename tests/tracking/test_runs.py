"""tracking/runs.py against a real sqlite MLflow store."""

from __future__ import annotations

import math
import os
import time

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient, fluent

from isic_tracking.errors import IsicInputError
from isic_tracking.tracking import tag
from isic_tracking.tracking.runs import (
    EXPERIMENT_KIND_TAG,
    SYSTEM_METRICS_INTERVAL_S,
    child_runs,
    download_artifacts,
    experiment_id,
    flatten,
    get_run,
    get_stage_run,
    log_dataframe,
    log_manifest_input,
    log_metrics,
    log_params,
    manifest_digest,
    param,
    stage_run,
    system_metrics_wanted,
)


def test_flatten_nests_and_serialises_lists() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2]}, "d": (3,)}) == {
        "a.b": 1,
        "a.c": "[1, 2]",
        "d": "[3]",
    }


def test_log_params_resolves_a_raw_value_and_refuses_a_changed_one(mlflow_tracking: str) -> None:
    with mlflow.start_run() as run:
        mlflow.log_param("manifest", "")  # what `mlflow run` logs before the stage resolves it
        log_params({"manifest": "/data/m.csv", "lr": 0.01})
        log_params({"manifest": "/data/m.csv", "lr": 0.01})  # again on resume: no error
        with pytest.raises(IsicInputError, match="resume with the same settings"):
            log_params({"manifest": "/other.csv"})
    got = get_run(run.info.run_id)
    assert got.data.params["manifest"] == ""
    assert param(got, "manifest") == "/data/m.csv"
    assert param(got, "lr") == "0.01"
    assert param(got, "missing", "x") == "x"


def test_stage_run_tags_and_resumes(mlflow_tracking: str) -> None:
    with stage_run("filters", params={"k": 1}, tags={tag.FV_RUN: "abc"}, run_name="f") as run:
        pass
    with stage_run("filters", params={"k": 1}, run_id=run.info.run_id):
        mlflow.log_metric("m", 2.0)
    got = get_run(run.info.run_id)
    assert got.data.tags[tag.STAGE] == "filters"
    assert got.data.tags[tag.FV_RUN] == "abc"
    assert got.info.run_name == "f"
    assert got.data.metrics["m"] == 2.0


def test_log_metrics_drops_non_numbers_keeps_nan(mlflow_tracking: str) -> None:
    with mlflow.start_run() as run:
        log_metrics({"a": 1, "b": "text", "c": float("nan"), "d": None}, prefix="val_")
    m = get_run(run.info.run_id).data.metrics
    assert set(m) == {"val_a", "val_c"}
    assert math.isnan(m["val_c"])


def test_log_dataframe_round_trips_as_csv(mlflow_tracking: str, tmp_path) -> None:
    df = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    with mlflow.start_run() as run:
        log_dataframe(df, "tables/t.csv")
        log_dataframe(df, "top.csv")
    local = download_artifacts(run.info.run_id, "tables/t.csv", tmp_path)
    pd.testing.assert_frame_equal(pd.read_csv(local), df)
    assert download_artifacts(run.info.run_id, "top.csv", tmp_path / "2").is_file()
    with pytest.raises(IsicInputError, match="has no artifact"):
        download_artifacts(run.info.run_id, "nope.csv", tmp_path / "3")


def test_manifest_digest_follows_content_not_paths() -> None:
    a = pd.DataFrame(
        {"image_id": ["x", "y"], "label": [0, 1], "split": ["train"] * 2, "path": ["/a", "/b"]}
    )
    b = a.assign(path=["/c", "/d"])
    assert manifest_digest(a) == manifest_digest(b)
    assert manifest_digest(a) != manifest_digest(a.assign(label=[1, 1]))


def test_log_manifest_input_records_dataset_and_digest_tag(mlflow_tracking: str) -> None:
    df = pd.DataFrame(
        {"image_id": ["x", "y"], "label": [0, 1], "split": ["train"] * 2, "path": ["/a", "/b"]}
    )
    with mlflow.start_run() as run:
        digest = log_manifest_input(df, "synthetic-binary", "training")
    got = get_run(run.info.run_id)
    assert got.data.tags[tag.dataset_digest("training")] == digest
    inputs = got.inputs.dataset_inputs
    assert [i.dataset.digest for i in inputs] == [digest]
    assert inputs[0].tags[0].value == "training"


def test_get_run_and_get_stage_run_errors_say_what_to_pass(mlflow_tracking: str) -> None:
    with pytest.raises(IsicInputError, match="does not exist on tracking server"):
        get_run("0" * 32)
    with stage_run("train") as run:
        pass
    assert get_stage_run(run.info.run_id, "train").info.run_id == run.info.run_id
    with pytest.raises(IsicInputError, match="pass the id of a `sanity` run"):
        get_stage_run(run.info.run_id, "sanity")


def test_child_runs_oldest_first(mlflow_tracking: str) -> None:
    with mlflow.start_run() as parent:
        for name in ("a", "b"):
            with mlflow.start_run(run_name=name, nested=True):
                pass
    assert [r.info.run_name for r in child_runs(parent.info.run_id)] == ["a", "b"]


def test_experiment_id_order(mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture_exp = experiment_id()
    assert fixture_exp == mlflow.get_experiment_by_name("tests").experiment_id
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "isic-named")
    named = experiment_id()  # created on first use
    assert MlflowClient().get_experiment(named).name == "isic-named"
    assert experiment_id() == named
    with mlflow.start_run(experiment_id=fixture_exp):  # the active run wins
        assert experiment_id() == fixture_exp
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME")
    # nothing chosen (or Default, what `mlflow run` passes then): the task's experiment
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", "0")
    binary = MlflowClient().get_experiment(experiment_id())
    assert binary.name == "isic-binary"
    assert MlflowClient().get_experiment(experiment_id("multiclass")).name == "isic-multiclass"
    # the run `mlflow run` made for this process decides, before any name
    with mlflow.start_run(experiment_id=fixture_exp) as run:
        pass
    monkeypatch.setenv("MLFLOW_RUN_ID", run.info.run_id)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "isic-named")
    assert experiment_id("multiclass") == fixture_exp


def test_new_experiments_open_in_the_training_view(
    mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow 3.x's UI shows an experiment tagged ``mlflow.experimentKind`` =
    ``custom_model_development`` in its model-training view (not the GenAI one); an existing
    untagged experiment gets the tag, one a person set to another kind keeps it."""
    client = MlflowClient()
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")
    exp = client.get_experiment(experiment_id("multiclass"))
    assert exp.tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    old = client.create_experiment("old-untagged")
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "old-untagged")
    assert experiment_id() == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == "custom_model_development"
    genai = client.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "chosen")
    assert experiment_id() == genai
    assert client.get_experiment(genai).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_stage_run_goes_to_its_task_experiment_and_describes_itself(
    mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A stage of a multiclass model lands in isic-multiclass, gets a description naming
    its settings, metrics and the runs it used, source/user tags, and ends with its link."""
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID")
    with mlflow.start_run() as used:
        pass
    tags = {"model.uri": "models:/m@champion", "model.task": "multiclass"}
    with caplog.at_level("INFO", logger="isic_tracking"):
        with stage_run(
            "filters", {"split": "val0"}, tags={**tags, "isic.train_run": used.info.run_id}
        ) as run:
            log_metrics({"n_images": 12, "per/layer": 1.0})
            with stage_run("part", nested=True) as child:  # MLflow alone: Default
                pass
    assert child_runs(run.info.run_id)[0].info.run_id == child.info.run_id
    done = MlflowClient().get_run(run.info.run_id)
    assert MlflowClient().get_experiment(done.info.experiment_id).name == "isic-multiclass"
    note = done.data.tags["mlflow.note.content"]
    assert note.startswith("**filters** · `split=val0`")
    assert "`n_images` 12.0000" in note and "per/layer" not in note
    assert f"[`{used.info.run_id}`](http://127.0.0.1:5000/#/experiments/" in note
    assert "`models:/m@champion`" in note
    assert done.data.tags["mlflow.user"] and done.data.tags["mlflow.source.name"]
    assert f"filters: run {run.info.run_id}  http://127.0.0.1:5000/#/experiments/" in caplog.text


def _has_system_metrics(run_id: str) -> bool:
    return any(k.startswith("system/") for k in get_run(run_id).data.metrics)


def test_stage_run_logs_system_metrics_and_leaves_the_environment_alone(
    mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", raising=False)
    monkeypatch.delenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", raising=False)
    with stage_run("filters", run_name="sys") as run:
        monitor = fluent.run_id_to_system_metrics_monitor[run.info.run_id]
        assert monitor.sampling_interval == SYSTEM_METRICS_INTERVAL_S
        assert "MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL" not in os.environ
        # the first sample lands after one interval: wait for it (bounded, not timed)
        for _ in range(300):
            if _has_system_metrics(run.info.run_id):
                break
            time.sleep(0.1)
    metrics = get_run(run.info.run_id).data.metrics
    assert "system/cpu_utilization_percentage" in metrics
    assert "system/system_memory_usage_megabytes" in metrics
    assert run.info.run_id not in fluent.run_id_to_system_metrics_monitor  # stopped


def test_system_metrics_follow_the_users_switch_and_interval(
    mlflow_tracking: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "7")
    with stage_run("filters", run_name="own interval") as run:
        assert fluent.run_id_to_system_metrics_monitor[run.info.run_id].sampling_interval == 7
    assert os.environ["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] == "7"
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "false")
    assert not system_metrics_wanted()
    with stage_run("filters", run_name="off") as run:
        assert run.info.run_id not in fluent.run_id_to_system_metrics_monitor
        with stage_run("filters", run_name="child", nested=True) as child:
            assert child.info.run_id not in fluent.run_id_to_system_metrics_monitor
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    assert system_metrics_wanted()
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "sometimes")
    with pytest.raises(IsicInputError, match="MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING='sometimes'"):
        system_metrics_wanted()
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")
    with stage_run("filters", run_name="on") as run:
        with stage_run("filters", run_name="child", nested=True) as child:
            assert run.info.run_id in fluent.run_id_to_system_metrics_monitor
            assert child.info.run_id not in fluent.run_id_to_system_metrics_monitor
