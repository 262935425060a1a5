"""Opening the study: its sampler, its pruner, and the check that a resumed study was made for
the same metric and search space."""

from __future__ import annotations

import optuna
from optuna.storages import BaseStorage

from isic_tracking.errors import IsicInputError
from isic_tracking.train.search.config import PRUNERS, SearchConfig


def make_sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    """TPE with a seed (random for its first 10 trials; ``constant_liar`` on for parallel)."""
    return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


def make_pruner(
    name: str, startup_trials: int = 3, warmup_epochs: int = 1
) -> optuna.pruners.BasePruner:
    """``median``: stop a trial whose best value so far is worse than the median of the
    completed trials at the same epoch; ``none``: never prune."""
    if name == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=startup_trials, n_warmup_steps=warmup_epochs
        )
    if name == "none":
        return optuna.pruners.NopPruner()
    raise IsicInputError(f"pruner={name!r}: choose one of {list(PRUNERS)}")


def open_study(
    storage: BaseStorage,
    study_name: str,
    cfg: SearchConfig,
    sampler: optuna.samplers.BaseSampler | None = None,
) -> optuna.Study:
    """Create the study or load it (resume); refuse one made for another metric or space."""
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        direction=cfg.direction(),
        sampler=sampler or make_sampler(cfg.seed),
        pruner=make_pruner(cfg.pruner, cfg.pruner_startup_trials, cfg.pruner_warmup_epochs),
        load_if_exists=True,
    )
    want = (
        optuna.study.StudyDirection.MAXIMIZE
        if cfg.direction() == "maximize"
        else (optuna.study.StudyDirection.MINIMIZE)
    )
    if study.direction != want:
        raise IsicInputError(
            f"study {study_name!r} {study.direction.name.lower()}s its objective, but metric "
            f"{cfg.resolved_metric()} needs {cfg.direction()}; use another study_name"
        )
    dists = cfg.space().distributions()
    for t in study.get_trials(deepcopy=False):
        for name, dist in t.distributions.items():
            if name in dists and dist != dists[name]:
                raise IsicInputError(
                    f"study {study_name!r} was searched with {name} in {dist}, not "
                    f"{dists[name]}; pass the same ranges to resume it, or a new study_name"
                )
    return study
