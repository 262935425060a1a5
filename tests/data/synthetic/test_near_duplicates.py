"""Planted near-duplicates: where they go, what is recorded (crop, scale, quality), and that
the leakage check finds exactly them (found: all; false alarms: none)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from isic_tracking.data.leakage import check_planted, duplicate_pairs, image_hashes
from isic_tracking.data.sources import read_source
from isic_tracking.data.sources.constants import NEAR_DUPLICATES_FILE, NEAR_DUPLICATES_HEADER
from isic_tracking.data.synthetic import make_synthetic
from isic_tracking.data.synthetic.near_duplicates import (
    CROP,
    EDGES,
    IMAGE_DIRS,
    read_near_duplicates,
)
from isic_tracking.errors import IsicInputError
from tests.data.synthetic.helpers import csv_bytes

N_PAIRS = 12


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planted") / "raw"
    make_synthetic(root, n_images=96, seed=1, image_size=64, near_duplicates=N_PAIRS)
    return root


def test_truth_lists_each_pair_and_the_copies_are_readable(planted: Path):
    truth = read_near_duplicates(planted)
    assert list(truth.columns) == list(NEAR_DUPLICATES_HEADER) and len(truth) == N_PAIRS
    assert truth["copy_of"].is_unique and not set(truth["image_id"]) & set(truth["copy_of"])
    assert set(zip(truth["copy_of_layout"], truth["layout"])) == {
        ("isic2020", "isic2016"),
        ("isic2016", "isic2020"),
        ("isic2019", "isic2019"),
    }
    assert read_near_duplicates(planted / "isic2020") is not None  # found from a layout too
    trims = truth[[f"crop_{e}" for e in EDGES]].astype(float).to_numpy()
    cropped = trims > 0
    assert set(cropped.sum(axis=1)) == {1, 2}  # one or two edges per copy, both kinds seen
    assert (trims[cropped] >= CROP[0]).all() and (trims[cropped] <= CROP[1]).all()
    numbers = truth.astype({c: float for c in truth.columns if c.startswith(("crop_", "scale"))})
    for r in numbers.itertuples():  # the recorded crop and scale give the copy's size
        copy = Image.open(planted / r.layout / IMAGE_DIRS[r.layout] / f"{r.image_id}.jpg")
        orig = Image.open(
            planted / r.copy_of_layout / IMAGE_DIRS[r.copy_of_layout] / f"{r.copy_of}.jpg"
        )
        kept_w = orig.width * (1 - r.crop_left - r.crop_right)
        kept_h = orig.height * (1 - r.crop_top - r.crop_bottom)
        assert np.isclose(copy.width, kept_w * r.scale, atol=1.5)
        assert np.isclose(copy.height, kept_h * r.scale, atol=1.5)
    binary = read_source("synthetic", planted, task="binary").manifest.set_index("image_id")
    for r in truth[truth["layout"] != "isic2019"].itertuples():
        a, b = binary.loc[r.image_id], binary.loc[r.copy_of]
        assert a["label"] == b["label"] and a["artifact"] == b["artifact"]
        assert {a["split"], b["split"]} == {"train", "test"}
        assert a["source"] != b["source"]


def test_default_plants_nothing_and_leaves_the_set_unchanged(tmp_path: Path, planted: Path):
    plain = tmp_path / "plain"
    make_synthetic(plain, n_images=96, seed=1, image_size=64)
    assert not (plain / NEAR_DUPLICATES_FILE).exists()
    assert read_near_duplicates(plain) is None
    again = tmp_path / "again"
    make_synthetic(again, n_images=96, seed=1, image_size=64, near_duplicates=N_PAIRS)
    assert csv_bytes(again) == csv_bytes(planted)  # planting is deterministic too
    make_synthetic(again, n_images=96, seed=1, image_size=64)  # overwrite: stale truth removed
    assert not (again / NEAR_DUPLICATES_FILE).exists() and csv_bytes(again) == csv_bytes(plain)


@pytest.fixture(scope="module", params=[1, 4])
def planted_seeds(request: pytest.FixtureRequest, planted: Path, tmp_path_factory) -> Path:
    """The set above (seed 1) and another one (seed 4): the same 12 pairs, other pictures."""
    if request.param == 1:
        return planted
    root = tmp_path_factory.mktemp("planted4") / "raw"
    make_synthetic(root, n_images=96, seed=request.param, image_size=64, near_duplicates=N_PAIRS)
    return root


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_leakage_check_finds_every_planted_pair_and_nothing_else(planted_seeds: Path, task: str):
    """Cropped (2-8 % off one or two edges), rescaled, re-encoded copies: all found, among
    look-alike lesions of the same classes, with no false alarm."""
    manifest = read_source("synthetic", planted_seeds, task=task).manifest
    pairs = duplicate_pairs(image_hashes(manifest))
    truth = read_near_duplicates(planted_seeds)
    check = check_planted(pairs, truth, manifest["image_id"])
    assert check.n_planted == (8 if task == "binary" else 4)
    assert (check.n_found, check.n_false_alarms) == (check.n_planted, 0)
    assert set(pairs["kind"]) == {"near"}
    if task == "binary":
        assert (pairs["split_a"] != pairs["split_b"]).all()


def test_too_many_pairs_is_a_clear_error(tmp_path: Path):
    with pytest.raises(IsicInputError, match="too few images"):
        make_synthetic(tmp_path / "s", n_images=16, seed=0, image_size=32, near_duplicates=60)
