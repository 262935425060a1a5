"""The compare stage: thesis-style table + bar charts; runs on different splits are flagged."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from entrypoints.compare import main as compare_main
from isic_tracking.config import TrainConfig
from isic_tracking.errors import IsicInputError
from isic_tracking.stages.compare.runner import compare_runs, resolve_train_runs
from isic_tracking.stages.train.runner import run_training


def _train(manifest: Path, tmp: Path, arch: str, seed: int = 0) -> str:
    cfg = TrainConfig(
        manifest=str(manifest),
        arch=arch,
        folds=2,
        epochs=1,
        batch_size=16,
        image_size=64,
        max_batches=2,
        seed=seed,
        work_dir=str(tmp / "work"),
    )
    return run_training(cfg).run_id


@pytest.mark.slow
def test_compare_alexnet_resnet18_table_charts_and_split_flag(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    alex = _train(binary_manifest, tmp_path, "alexnet")
    r18 = _train(binary_manifest, tmp_path, "resnet18")
    same = compare_runs([alex, r18])
    assert same.comparable and not same.warnings
    assert list(same.table.arch) == ["alexnet", "resnet18"]
    assert same.table["val_roc_auc_mean"].notna().all()

    other = _train(binary_manifest, tmp_path, "resnet18", seed=1)  # another split
    assert compare_main(["--runs", f"{alex},{r18},{other}"]) == 0
    run = mlflow.search_runs(filter_string="tags.`isic.stage` = 'compare'").iloc[0]
    assert run["tags.isic.comparable"] == "false"
    assert "different splits" in run["tags.isic.compare_warnings"]
    client = MlflowClient()
    files = {f.path for f in client.list_artifacts(run.run_id, "figures")}
    assert {"figures/val_roc_auc.png", "figures/test_roc_auc.png"} <= files
    table = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.run_id, artifact_path="tables/comparison.csv", dst_path=str(tmp_path)
        )
    )
    assert len(table) == 3 and table["val_roc_auc"].str.contains("±").all()
    # registered model names resolve to their training runs
    assert resolve_train_runs([], ["isic-binary-alexnet"]) == [alex]


def test_compare_rejects_non_train_runs(mlflow_tracking: str) -> None:
    with mlflow.start_run() as run:
        mlflow.set_tag("isic.stage", "filters")
    with pytest.raises(IsicInputError, match="not a train run"):
        resolve_train_runs([run.info.run_id], [])
    with pytest.raises(IsicInputError, match="no registered model"):
        resolve_train_runs([], ["nope"])
