"""SearchConfig: defaults, validation, the study name."""

from __future__ import annotations

import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.train.search import SearchConfig, default_study_name


def test_defaults_follow_the_issue() -> None:
    cfg = SearchConfig()
    space = cfg.space()
    assert (space.lr_min, space.lr_max, space.batch_sizes) == (1e-5, 1e-2, (16, 32, 64, 128))
    assert (space.epochs_min, space.epochs_max, cfg.subset) == (5, 40, 0.1)
    assert cfg.resolved_metric() == "val_roc_auc" and cfg.direction() == "maximize"
    multi = SearchConfig(task="multiclass")
    assert multi.resolved_metric() == "val_balanced_accuracy"
    assert SearchConfig(monitor="val_loss").direction() == "minimize"


def test_study_name_depends_on_settings_not_on_run_control() -> None:
    a = default_study_name(SearchConfig(), "m.csv")
    assert a == default_study_name(SearchConfig(n_trials=99, n_workers=4, timeout=5), "m.csv")
    assert a != default_study_name(SearchConfig(lr_max=0.1), "m.csv")
    assert a != default_study_name(SearchConfig(), "other.csv")
    assert a.startswith("isic-binary-alexnet-")


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"pruner": "hyperband"}, "pruner"),
        ({"monitor": "train_loss"}, "validation metric"),
        ({"task": "regression"}, "task="),
        ({"n_trials": 0}, "n_trials=0"),
        ({"n_workers": 0}, "n_workers=0"),
        ({"subset": 1.5}, r"subset=1.5 must lie in \(0, 1\]"),
        ({"timeout": -1.0}, "timeout=-1.0"),
        ({"heartbeat": 0}, "heartbeat"),
        ({"batch_sizes": "0"}, "batch_sizes"),
        ({"epochs_min": 9, "epochs_max": 3}, "epochs range"),
    ],
)
def test_validate_names_the_bad_setting(kw: dict, match: str) -> None:
    with pytest.raises(IsicInputError, match=match):
        SearchConfig(**kw).validate()


def test_trial_config_is_one_fold_on_the_search_metric() -> None:
    cfg = SearchConfig(task="multiclass", patience=2, channels_last=True)
    trial = cfg.train_config({"lr": 0.01, "batch_size": 32.0, "epochs": 4.0})
    assert (trial.folds, trial.epochs, trial.batch_size, trial.lr) == (1, 4, 32, 0.01)
    assert isinstance(trial.epochs, int) and isinstance(trial.batch_size, int)
    assert trial.monitor == "val_balanced_accuracy" and trial.patience == 2
    assert trial.channels_last is True
    assert trial.work_dir == "outputs/train"  # a trial's state lives in a temp dir instead
