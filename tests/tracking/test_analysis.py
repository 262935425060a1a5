"""split_rows: which natural images an analysis stage looks at (real MLflow for the folds)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from torch import nn

from isic_tracking.data.manifest import read_manifest
from isic_tracking.errors import IsicInputError
from isic_tracking.tracking.analysis import split_rows
from isic_tracking.tracking.registry import LoadedModel


def _loaded(train_run_id: str | None = None) -> LoadedModel:
    return LoadedModel(nn.Identity(), {}, "pretrained:x", train_run_id=train_run_id)


def test_explicit_manifest_splits(binary_manifest: Path):
    df = read_manifest(binary_manifest)
    rows, path = split_rows(_loaded(), str(binary_manifest), "all")
    assert path == str(binary_manifest) and len(rows) == len(df)
    rows, _ = split_rows(_loaded(), str(binary_manifest), "train")
    assert len(rows) == (df["split"] == "train").sum() and list(rows.index) == list(
        range(len(rows))
    )
    with pytest.raises(IsicInputError, match="unknown split 'val'"):
        split_rows(_loaded(), str(binary_manifest), "val")
    with pytest.raises(IsicInputError, match="needs the folds of a training run"):
        split_rows(_loaded(), str(binary_manifest), "val0")


def test_no_manifest_without_a_training_run(binary_manifest: Path, tmp_path: Path):
    with pytest.raises(IsicInputError, match="has no training run.*pass manifest="):
        split_rows(_loaded(), None, "all")
    rows, path = split_rows(_loaded(), None, "all", fallback_manifest=lambda: str(binary_manifest))
    assert path == str(binary_manifest) and len(rows) > 0
    df = read_manifest(binary_manifest)
    only_train = tmp_path / "train.csv"
    df[df["split"] == "train"].to_csv(only_train, index=False)
    with pytest.raises(IsicInputError, match="split 'test' of .*train.csv has no images"):
        split_rows(_loaded(), str(only_train), "test")


def test_val_k_takes_the_fold_of_the_training_run(mlflow_tracking: str, binary_manifest: Path):
    df = read_manifest(binary_manifest)
    folds = pd.DataFrame(
        {"image_id": df["image_id"].astype(str), "fold": [i % 2 for i in range(len(df))]}
    )
    with mlflow.start_run() as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_param("manifest", str(binary_manifest))
        folds.to_csv(Path(tmp) / "folds.csv", index=False)
        mlflow.log_artifact(str(Path(tmp) / "folds.csv"), "splits")
    loaded = _loaded(run.info.run_id)
    rows, path = split_rows(loaded, None, "val1")
    assert path == str(binary_manifest)
    assert set(rows["image_id"]) == set(folds.loc[folds["fold"] == 1, "image_id"])
    with pytest.raises(IsicInputError, match=r"has no fold 3; folds: \[0, 1\]"):
        split_rows(loaded, None, "val3")
