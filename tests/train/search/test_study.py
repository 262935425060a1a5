"""Opening a study: sampler, pruner, and refusing a resume with another metric or space."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.scaleout.storage import make_storage
from isic_tracking.train.search import SearchConfig, make_pruner, make_sampler, open_study


def test_resumed_study_must_use_the_same_ranges(tmp_path: Path) -> None:
    storage = make_storage(f"journal:{tmp_path / 'o.journal'}")
    cfg = SearchConfig(batch_sizes="16,32")
    study = open_study(storage, "s", cfg)
    study.add_trial(
        optuna.create_trial(
            params={"lr": 1e-3, "batch_size": 16, "epochs": 5},
            distributions=cfg.space().distributions(),
            value=0.7,
        )
    )
    open_study(storage, "s", cfg)  # same space: fine
    with pytest.raises(IsicInputError, match="same ranges"):
        open_study(storage, "s", SearchConfig(batch_sizes="8,16"))
    with pytest.raises(IsicInputError, match="another study_name"):
        open_study(storage, "s", SearchConfig(batch_sizes="16,32", monitor="val_loss"))


def test_study_direction_pruner_and_seeded_sampler() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = open_study(storage, "loss", SearchConfig(monitor="val_loss", pruner="none"))
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert isinstance(study.pruner, optuna.pruners.NopPruner)
    median = make_pruner("median", startup_trials=4, warmup_epochs=2)
    assert isinstance(median, optuna.pruners.MedianPruner)
    with pytest.raises(IsicInputError, match="pruner='asha'"):
        make_pruner("asha")
    # the sampler is seeded: the same seed draws the same points
    a = optuna.create_study(sampler=make_sampler(3))
    b = optuna.create_study(sampler=make_sampler(3))
    for s in (a, b):
        s.optimize(lambda t: t.suggest_float("lr", 1e-5, 1e-2, log=True), n_trials=3)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]


def test_workers_with_the_same_seed_on_one_study_draw_different_points() -> None:
    """Two "machines" (a study object and a sampler each, the same seed, one storage) taking
    turns: every trial gets its own startup point. With TPE seeded once per process both
    would have drawn the same point for their first trial, and so on."""
    storage = optuna.storages.InMemoryStorage()
    name = optuna.create_study(storage=storage).study_name
    machines = [optuna.load_study(study_name=name, storage=storage, sampler=make_sampler(3))
                for _ in range(2)]  # fmt: skip
    for _ in range(3):
        for study in machines:
            study.optimize(lambda t: t.suggest_float("lr", 1e-5, 1e-2, log=True), n_trials=1)
    points = [t.params["lr"] for t in machines[0].trials]
    assert len(points) == 6 and len(set(points)) == 6, points
    # ... and one process replays its study from the seed
    replay = optuna.create_study(sampler=make_sampler(3))
    replay.optimize(lambda t: t.suggest_float("lr", 1e-5, 1e-2, log=True), n_trials=6)
    assert [t.params["lr"] for t in replay.trials] == points
