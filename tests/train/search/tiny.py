"""The search tests' tiny config and an in-memory study with queued trials."""

from __future__ import annotations

import optuna

from isic_tracking.train.search import SearchConfig, open_study

GOOD = {"lr": 3e-3, "batch_size": 16, "epochs": 3}


def tiny_config(manifest: str, **kw) -> SearchConfig:
    """A search small enough for 2 CPU cores: a tiny timm net at 32 px, 1-3 epochs."""
    base = dict(
        manifest=manifest,
        arch="timm:test_efficientnet",
        image_size=32,
        subset=1.0,
        device="cpu",
        augment="none",
        lr_min=1e-4,
        lr_max=1e-2,
        batch_sizes="16",
        epochs_min=1,
        epochs_max=3,
        pruner_startup_trials=2,
        pruner_warmup_epochs=1,
    )
    base.update(kw)
    return SearchConfig(**base).validate()


def memory_study(cfg: SearchConfig, enqueue: list[dict]) -> optuna.Study:
    study = open_study(optuna.storages.InMemoryStorage(), "t", cfg)
    for params in enqueue:
        study.enqueue_trial(params, skip_if_exists=False)
    return study
