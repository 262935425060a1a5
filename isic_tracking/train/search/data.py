"""The rows a search trains and validates on: a stratified (grouped) subset of the training
rows, split once into a holdout pair that every trial shares."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from isic_tracking.data.defaults import load_task_manifest
from isic_tracking.data.manifest import task_classes
from isic_tracking.data.splits import check_fold, holdout_split, stratified_subset
from isic_tracking.train.search.config import SearchConfig


@dataclass
class SearchData:
    """The holdout split every trial trains and validates on."""

    train: pd.DataFrame
    val: pd.DataFrame
    subset: pd.DataFrame
    manifest_path: str


def load_search_data(cfg: SearchConfig) -> SearchData:
    """Stratified (grouped) subset of the training rows, then a holdout split of it."""
    df, path = load_task_manifest(cfg.manifest, cfg.task)
    classes = task_classes(cfg.task)
    subset = stratified_subset(df, cfg.subset, seed=cfg.seed, grouped=cfg.grouped)
    train, val = holdout_split(subset, cfg.val_fraction, seed=cfg.seed, grouped=cfg.grouped)
    check_fold(train, val, classes, "search holdout")
    return SearchData(train, val, subset, str(path))
