"""The rows the ``train`` stage uses: training rows with their cross-validation folds (every
fold checked to hold every class) and the held-out test rows."""

from __future__ import annotations

import pandas as pd

from isic_tracking.config import TrainConfig
from isic_tracking.data.defaults import load_task_manifest
from isic_tracking.data.manifest import read_manifest, task_classes
from isic_tracking.data.splits import assign_folds, check_fold, fold_split
from isic_tracking.errors import IsicInputError


def load_training_data(cfg: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train rows with folds, held-out test rows, manifest path)."""
    df, path = load_task_manifest(cfg.manifest, cfg.task)
    classes = task_classes(cfg.task)
    train = df[df["split"] == "train"].reset_index(drop=True)
    test = df[df["split"] == "test"].reset_index(drop=True)
    if cfg.test_manifest:
        test = read_manifest(cfg.test_manifest)
    if train.empty:
        raise IsicInputError(f"{path}: no rows with split=train")
    train = assign_folds(train, n_folds=cfg.folds, seed=cfg.seed, grouped=cfg.grouped)
    for k in range(cfg.folds):
        tr, va = fold_split(train, k)
        check_fold(tr, va, classes, k)
    return train, test, path
