"""One fold: best epoch, early stopping, the resume state, exact resume, pure helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from isic_tracking.config import TrainConfig
from isic_tracking.data.manifest import read_manifest
from isic_tracking.data.splits import assign_folds, fold_split
from isic_tracking.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_transforms
from isic_tracking.errors import IsicInputError
from isic_tracking.train.fold import (
    _normalization,
    build_model,
    class_counts,
    epoch_label,
    epoch_seed,
    evaluate_fold_on,
    resolve_amp,
    train_fold,
)
from isic_tracking.train.resume import load_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def split(binary_manifest: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = read_manifest(binary_manifest)
    train = assign_folds(df[df["split"] == "train"].reset_index(drop=True), 2, seed=0)
    return fold_split(train, 0)


def tiny(**kw) -> TrainConfig:
    base = dict(
        arch="timm:test_resnet",
        image_size=32,
        batch_size=16,
        lr=1e-3,
        epochs=3,
        device="cpu",
        augment="none",
        max_batches=2,
    )
    base.update(kw)
    return TrainConfig(**base)


def _no_time(history: list[dict[str, float]]) -> list[dict[str, float]]:
    return [
        {k: v for k, v in row.items() if "seconds" not in k and "per_s" not in k} for row in history
    ]


def test_fold_returns_its_best_epoch_and_writes_the_state(split, tmp_path: Path) -> None:
    tr, va = split
    seen: list[int] = []
    state = tmp_path / "fold0.pt"
    result = train_fold(tiny(), tr, va, 0, state, on_epoch=lambda e, row: seen.append(e))
    assert seen == [0, 1, 2] and [r["epoch"] for r in result.history] == [0, 1, 2]
    best = max(range(3), key=lambda e: result.history[e]["val_roc_auc"])
    assert result.best_epoch == best
    assert result.best_metrics == result.history[best]
    assert len(result.best_predictions.y_true) == len(va)
    assert result.extra["config"]["image_size"] == 32 and result.extra["config"]["task"] == "binary"
    saved = load_state(state)
    assert (saved["fold"], saved["epoch"], saved["best_epoch"]) == (0, 2, best)
    np.testing.assert_array_equal(saved["best_scores"].numpy(), result.best_predictions.scores)


def test_each_epoch_leaves_one_line_saying_fold_and_epoch(
    split, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bars say what they count (``fold 2/3 epoch 1/2 train``); each epoch leaves one
    line with its losses, the monitored metric and whether it is the best so far."""
    assert epoch_label(1, 3, 0, 2) == "fold 2/3 epoch 1/2"
    assert epoch_label(0, 1, 4, 10) == "epoch 5/10"  # one split
    assert epoch_label(0, 1, 4, 10, "trial 3") == "trial 3 epoch 5/10"  # a search's trial
    tr, va = split
    with caplog.at_level("INFO", logger="isic_tracking.train.fold"):
        train_fold(tiny(epochs=2, folds=3), tr, va, 1, tmp_path / "s.pt")
    lines = [r.getMessage() for r in caplog.records if r.name == "isic_tracking.train.fold"]
    assert [line.split(":")[0] for line in lines] == ["fold 2/3 epoch 1/2", "fold 2/3 epoch 2/2"]
    assert all("train_loss " in line and " · val_roc_auc " in line for line in lines)
    assert not lines[0].endswith("(best)")  # epoch 0 < min_best_epoch (1): kept, never best


def test_no_best_mark_before_the_first_epoch_that_may_be_best(
    split, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before ``min_best_epoch`` every epoch replaces the kept checkpoint, yet none of them can
    be the fold's best: the terminal must not call them "(best)"."""
    tr, va = split
    with caplog.at_level("INFO", logger="isic_tracking.train.fold"):
        result = train_fold(tiny(epochs=3, min_best_epoch=2), tr, va, 0, tmp_path / "s.pt")
    lines = [r.getMessage() for r in caplog.records if r.name == "isic_tracking.train.fold"]
    assert not any(line.endswith("(best)") for line in lines[:2]), lines
    assert lines[2].endswith("(best)") and result.best_epoch == 2


def test_interrupted_fold_resumes_to_the_uninterrupted_result(split, tmp_path: Path) -> None:
    tr, va = split
    whole = train_fold(tiny(), tr, va, 0, tmp_path / "whole.pt")
    part = tmp_path / "part.pt"
    train_fold(tiny(epochs=1), tr, va, 0, part)  # "killed" after epoch 0
    resumed_epochs: list[int] = []
    resumed = train_fold(tiny(), tr, va, 0, part, on_epoch=lambda e, r: resumed_epochs.append(e))
    assert resumed_epochs == [1, 2]  # epoch 0 came from the state
    assert _no_time(resumed.history) == _no_time(whole.history)
    assert resumed.best_epoch == whole.best_epoch
    assert all(torch.equal(resumed.best_state[k], v) for k, v in whole.best_state.items())


def test_state_of_another_fold_is_not_resumed(split, tmp_path: Path) -> None:
    tr, va = split
    state = tmp_path / "s.pt"
    train_fold(tiny(epochs=1), tr, va, 1, state)
    seen: list[int] = []
    train_fold(tiny(epochs=2), tr, va, 0, state, on_epoch=lambda e, r: seen.append(e))
    assert seen == [0, 1] and load_state(state)["fold"] == 0


def test_early_stopping_ends_the_fold(split, tmp_path: Path) -> None:
    tr, va = split
    # lr 0: only batch-norm statistics move; patience 1 stops one epoch after the best
    result = train_fold(tiny(lr=0.0, patience=1, epochs=5), tr, va, 0, tmp_path / "s.pt")
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 2 < 5


def test_evaluate_fold_on_test_rows_matches_validation(split, tmp_path: Path) -> None:
    tr, va = split
    cfg = tiny(epochs=1)
    result = train_fold(cfg, tr, va, 0, tmp_path / "s.pt")
    metrics = evaluate_fold_on(cfg, result, va)
    assert set(metrics) >= {"test_loss", "test_roc_auc", "test_accuracy"}
    # the same rows as validation: same ranking metric as the fold's best epoch
    assert metrics["test_roc_auc"] == pytest.approx(result.best_metrics["val_roc_auc"])


def test_class_counts_epoch_seed_and_amp() -> None:
    df = pd.DataFrame({"label": [0, 0, 2, 2, 2]})
    assert class_counts(df, 3) == [2, 0, 3]
    seeds = {epoch_seed(s, f, e) for s in (0, 1) for f in (0, 1) for e in (0, 1)}
    assert len(seeds) == 8 and all(0 <= s < 2**31 for s in seeds)
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) is None and resolve_amp("none", cpu) is None
    assert resolve_amp("bf16", cpu) == "bf16"


def test_normalization_of_the_eval_transform() -> None:
    assert _normalization(build_transforms(32, train=False)) == (
        list(IMAGENET_MEAN),
        list(IMAGENET_STD),
    )
    assert _normalization(object()) == (list(IMAGENET_MEAN), list(IMAGENET_STD))


def test_image_size_too_small_is_a_clear_error() -> None:
    with pytest.raises(IsicInputError, match="image_size=8 is too small"):
        build_model(tiny(arch="alexnet", image_size=8), torch.device("cpu"))
