"""The demo search's objective: validation loss, which tells trials apart where a few dozen
validation images saturate ROC AUC, with enough trials for the pruner to act."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from isic_tracking.profiles import PROFILES
from isic_tracking.train.search import (
    SearchConfig,
    SearchObjective,
    TrialHooks,
    load_search_data,
    open_study,
)

#: Shrinks the demo's search to seconds; everything that defines the objective is kept.
SMALLER = dict(epochs_min=2, epochs_max=3, image_size=32, subset=1.0, n_trials=4, device="cpu")


@pytest.mark.parametrize("profile", ["demo"])
def test_demo_search_minimizes_validation_loss_with_room_to_prune(profile: str) -> None:
    cfg = SearchConfig(**PROFILES[profile]["search"]).validate()
    assert cfg.resolved_metric() == "val_loss" and cfg.direction() == "minimize"
    # the pruner acts only after its start-up trials, past its warm-up epochs
    assert cfg.pruner == "median" and cfg.pruner_startup_trials < cfg.n_trials
    assert cfg.pruner_warmup_epochs < cfg.epochs_max


class _Rows(TrialHooks):
    def __init__(self) -> None:
        self.rows: dict[int, list[dict[str, float]]] = {}

    def epoch(self, trial: optuna.Trial, epoch: int, row: dict[str, float]) -> None:
        self.rows.setdefault(trial.number, []).append(row)


def test_demo_objective_gives_every_trial_its_own_score(binary_manifest: Path) -> None:
    demo = {**PROFILES["demo"]["search"], **SMALLER, "pruner": "none"}
    cfg = SearchConfig(manifest=str(binary_manifest), arch="smallcnn", **demo).validate()
    study = open_study(optuna.storages.InMemoryStorage(), "demo", cfg)
    hooks = _Rows()
    study.optimize(SearchObjective(cfg, load_search_data(cfg), hooks), n_trials=cfg.n_trials)
    values = [t.value for t in study.trials]
    assert len(set(values)) == len(values) == cfg.n_trials
    # the value is the loss of the trial's best epoch under the champion policy, a real loss
    for t in study.trials:
        losses = {round(r["val_loss"], 12) for r in hooks.rows[t.number]}
        assert round(t.value, 12) in losses and t.value > 0
    auc = dataclasses.replace(cfg, monitor="val_roc_auc")
    assert auc.direction() == "maximize"  # the thesis's objective stays available
