"""The `prepare` stage: the reader's default task when --task is not given; counts logged."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from entrypoints.prepare import main


@pytest.mark.parametrize(
    "layout, dataset, task",
    [("isic2019", "isic2019", "multiclass"), ("isic2016", "isic2016-test", "binary")],
)
def test_default_task_is_the_readers_first(
    mlflow_tracking: str, synthetic_root: Path, tmp_path: Path, layout, dataset, task
):
    out = tmp_path / "prepared"
    argv = ["--dataset", dataset, "--root", str(synthetic_root / layout), "--out", str(out)]
    assert main([*argv, "--image_size", "32", "--workers", "1"]) == 0
    (run,) = mlflow.search_runs(output_format="list")
    assert run.data.params["task"] == task and run.data.params["out"] == str(out.resolve())
    manifest = pd.read_csv(out / "manifest.csv")
    labels = set(manifest["label_name"])
    assert labels and (labels <= {"benign", "malignant"}) == (task == "binary")
    metrics = run.data.metrics
    assert metrics["n_images"] == len(manifest) and metrics["n_cached"] == len(manifest)
    counts = manifest["label_name"].value_counts()
    assert {k: metrics[f"n_class/{k}"] for k in counts.index} == counts.to_dict()
    artifacts = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert "skipped.csv" in artifacts
