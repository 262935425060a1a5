"""Opening a study: sampler, pruner, and refusing a resume with another metric or space."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.train.search import (
    SearchConfig,
    make_pruner,
    make_sampler,
    make_storage,
    open_study,
)


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
        open_study(storage, "s", SearchConfig(batch_sizes="16,32", metric="val_loss"))


def test_study_direction_pruner_and_seeded_sampler() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = open_study(storage, "loss", SearchConfig(metric="val_loss", pruner="none"))
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
