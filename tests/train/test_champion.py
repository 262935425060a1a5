"""The champion policy: minimum epoch, metric resolution + loss tie-break, fold choice."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from isic_tracking.config import TrainConfig
from isic_tracking.errors import IsicInputError
from isic_tracking.tracking import tag
from isic_tracking.train.champion import (
    ChampionPolicy,
    best_epoch,
    champion_index,
    explain,
    policy_for,
    unprefixed,
)


def rows(*pairs: tuple[float, float]) -> list[dict[str, float]]:
    """History rows (val_roc_auc, val_loss) for epochs 0, 1, ..."""
    return [{"epoch": i, "val_roc_auc": a, "val_loss": b} for i, (a, b) in enumerate(pairs)]


# The case: one lucky epoch 0 on a small validation set, then real training.
LUCKY_START = rows((0.998, 0.97), (0.88, 0.85), (0.95, 0.67), (0.98, 0.46), (0.98, 0.38))


def test_plain_maximum_keeps_the_lucky_epoch_zero() -> None:
    assert best_epoch(LUCKY_START, ChampionPolicy("val_roc_auc", min_epoch=0)) == 0


def test_min_epoch_never_keeps_a_barely_trained_checkpoint() -> None:
    assert best_epoch(LUCKY_START, ChampionPolicy("val_roc_auc", min_epoch=2)) == 4


def test_equal_values_at_the_resolution_go_to_the_lower_loss() -> None:
    exact = ChampionPolicy("val_roc_auc", min_epoch=2)
    coarse = ChampionPolicy("val_roc_auc", min_epoch=2, decimals=2)
    history = rows((0.5, 1.0), (0.6, 0.9), (0.981, 0.7), (0.979, 0.4), (0.983, 0.6))
    assert best_epoch(history, exact) == 4  # plain maximum
    assert best_epoch(history, coarse) == 3  # 0.98 == 0.98 == 0.98, loss 0.4 is lowest
    # exact ties (a saturated AUC) are decided by the loss even without rounding
    assert best_epoch(rows((1.0, 0.9), (1.0, 0.5), (1.0, 0.7)), ChampionPolicy("val_roc_auc")) == 1


def test_a_fold_stopped_before_min_epoch_keeps_its_latest_epoch() -> None:
    assert best_epoch(LUCKY_START[:2], ChampionPolicy("val_roc_auc", min_epoch=3)) == 1


def test_loss_monitor_is_minimized_and_nan_never_wins() -> None:
    policy = ChampionPolicy("val_loss", min_epoch=0)
    assert best_epoch(rows((0.9, 0.8), (0.9, 0.3), (0.9, float("nan"))), policy) == 1


def test_online_rule_equals_the_offline_choice_on_random_histories() -> None:
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 8)
        history = rows(*[(round(rng.random(), 3), rng.random()) for _ in range(n)])
        policy = ChampionPolicy("val_roc_auc", rng.randint(0, 4), rng.choice([None, 1, 2]))
        kept, best = -1, None
        for i, row in enumerate(history):
            if policy.improves(row, i, best, kept):
                kept, best = i, row
        assert kept == best_epoch(history, policy)
        assert kept >= min(policy.min_epoch, n - 1)


def test_champion_fold_uses_the_same_key_and_explains_itself() -> None:
    folds = [
        unprefixed({"best_val_roc_auc": 0.984, "best_val_loss": 0.38, "best_epoch": 9}),
        unprefixed({"best_val_roc_auc": 0.981, "best_val_loss": 0.26, "best_epoch": 8}),
        unprefixed({"best_val_roc_auc": 0.95, "best_val_loss": 0.20, "best_epoch": 7}),
    ]
    assert champion_index(folds, ChampionPolicy("val_roc_auc")) == 0
    policy = ChampionPolicy("val_roc_auc", min_epoch=3, decimals=2)
    assert champion_index(folds, policy) == 1
    text = explain(policy, folds, ["fold 0", "fold 1", "fold 2"])
    assert text.startswith("Champion: fold 1 (val_roc_auc=0.9810, val_loss=0.2600 at epoch 8)")
    assert "from epoch 3 on" in text and "rounded to 2 decimals" in text and "fold 2:" in text


def test_policy_from_train_config_and_bad_values() -> None:
    cfg = TrainConfig(task="multiclass", min_best_epoch=4, best_decimals=2)
    assert policy_for(cfg) == ChampionPolicy("val_balanced_accuracy", 4, 2)
    with pytest.raises(IsicInputError, match="min_best_epoch"):
        ChampionPolicy("val_roc_auc", min_epoch=-1)
    with pytest.raises(IsicInputError, match="empty"):
        best_epoch([], ChampionPolicy("val_roc_auc"))


def test_training_keeps_policy_epochs_and_describes_the_champion(
    mlflow_tracking: str, binary_manifest: Path, tmp_path: Path
) -> None:
    from isic_tracking.stages.train.runner import run_training

    cfg = TrainConfig(
        manifest=str(binary_manifest),
        arch="smallcnn",
        folds=2,
        epochs=3,
        batch_size=16,
        image_size=32,
        lr=3e-3,
        min_best_epoch=2,
        best_decimals=2,
        work_dir=str(tmp_path / "work"),
    )
    out = run_training(cfg)
    client = MlflowClient()
    policy = policy_for(cfg)
    folds = client.search_runs(
        [client.get_run(out.run_id).info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{out.run_id}'",
    )
    for fold in folds:
        history = [
            {"epoch": m.step, **{k: client.get_metric_history(fold.info.run_id, k)[m.step].value
                                 for k in ("val_roc_auc", "val_loss")}}
            for m in client.get_metric_history(fold.info.run_id, "val_roc_auc")
        ]  # fmt: skip
        assert fold.data.metrics["best_epoch"] == best_epoch(history, policy) == 2
    champion = client.get_model_version_by_alias(out.model_name, "champion")
    assert f"**Champion**: fold {champion.tags[tag.FOLD]} (" in champion.description
    assert "from epoch 2 on" in champion.description
