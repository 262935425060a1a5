"""The search space: batch sizes, ranges, distributions, suggestions."""

from __future__ import annotations

import optuna
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.train.search import SearchConfig, SearchSpace, parse_batch_sizes


def test_parse_batch_sizes_and_space_errors() -> None:
    assert parse_batch_sizes("64, 16,32,16") == (16, 32, 64)
    with pytest.raises(IsicInputError, match="batch_sizes"):
        parse_batch_sizes("16,big")
    with pytest.raises(IsicInputError, match="lr_min"):
        SearchSpace(lr_min=1e-2, lr_max=1e-4)
    with pytest.raises(IsicInputError, match="epochs"):
        SearchSpace(epochs_min=0)
    with pytest.raises(IsicInputError, match="pruner"):
        SearchConfig(pruner="hyperband").validate()
    with pytest.raises(IsicInputError, match="validation metric"):
        SearchConfig(monitor="train_loss").validate()


def test_suggestions_stay_in_the_space_and_enqueued_points_come_back() -> None:
    space = SearchSpace(1e-4, 1e-2, (16, 64), 2, 5)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"lr": 1e-3, "batch_size": 64, "epochs": 3})
    first = space.suggest(study.ask())
    assert first == {"lr": 1e-3, "batch_size": 64, "epochs": 3}
    for _ in range(20):
        p = space.suggest(study.ask())
        assert 1e-4 <= p["lr"] <= 1e-2 and p["batch_size"] in (16, 64) and 2 <= p["epochs"] <= 5
        assert isinstance(p["batch_size"], int)
    dists = space.distributions()
    assert dists["lr"].log and dists["batch_size"].choices == (16, 64)
    assert (dists["epochs"].low, dists["epochs"].high) == (2, 5)
