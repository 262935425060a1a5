"""The train stage's rows: folds on the training rows, test rows held out."""

from __future__ import annotations

from pathlib import Path

import pytest

from isic_tracking.config import TrainConfig
from isic_tracking.data.manifest import read_manifest, write_manifest
from isic_tracking.errors import IsicInputError
from isic_tracking.train.data import load_training_data


def test_folds_on_train_rows_and_test_rows_apart(binary_manifest: Path) -> None:
    train, test, path = load_training_data(TrainConfig(manifest=str(binary_manifest), folds=3))
    df = read_manifest(binary_manifest)
    assert str(path) == str(binary_manifest)
    assert len(train) == (df["split"] == "train").sum() and set(train["split"]) == {"train"}
    assert len(test) == (df["split"] == "test").sum()
    assert sorted(train["fold"].unique()) == [0, 1, 2]
    again, _, _ = load_training_data(TrainConfig(manifest=str(binary_manifest), folds=3))
    assert list(again["fold"]) == list(train["fold"])  # same seed, same folds


def test_test_manifest_replaces_the_test_rows(binary_manifest: Path, tmp_path: Path) -> None:
    df = read_manifest(binary_manifest)
    other = write_manifest(df.head(5), tmp_path / "other_test.csv")
    _, test, _ = load_training_data(
        TrainConfig(manifest=str(binary_manifest), folds=2, test_manifest=str(other))
    )
    assert list(test["image_id"]) == list(df.head(5)["image_id"])


def test_no_train_rows_is_a_clear_error(binary_manifest: Path, tmp_path: Path) -> None:
    df = read_manifest(binary_manifest)
    only_test = write_manifest(df.assign(split="test"), tmp_path / "only_test.csv")
    with pytest.raises(IsicInputError, match="no rows with split=train"):
        load_training_data(TrainConfig(manifest=str(only_test)))
