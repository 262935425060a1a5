"""The search's rows: a stratified subset, split once into a disjoint holdout pair."""

from __future__ import annotations

import pandas as pd

from isic_tracking.data.manifest import read_manifest
from isic_tracking.train.search import load_search_data
from tests.train.search.tiny import tiny_config


def test_subset_and_holdout(manifest: str) -> None:
    train_rows = read_manifest(manifest)
    train_rows = train_rows[train_rows["split"] == "train"]
    half = load_search_data(tiny_config(manifest, subset=0.5))
    assert abs(len(half.subset) - len(train_rows) / 2) <= 4
    assert set(half.train["image_id"]).isdisjoint(half.val["image_id"])
    assert len(half.train) + len(half.val) == len(half.subset)
    assert set(half.val["label"]) == {0, 1} and set(half.train["label"]) == {0, 1}
    assert half.manifest_path == manifest
    again = load_search_data(tiny_config(manifest, subset=0.5))
    pd.testing.assert_frame_equal(again.val, half.val)  # same seed, same split
