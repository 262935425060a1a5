"""The `prepare` stage: a reader's default task comes from the registry when --task is not given."""

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
    labels = set(pd.read_csv(out / "manifest.csv")["label_name"])
    assert labels and (labels <= {"benign", "malignant"}) == (task == "binary")
