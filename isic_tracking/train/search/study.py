"""Opening the study: its sampler, its pruner, and the check that a resumed study was made for
the same metric and search space."""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial

from isic_tracking.errors import IsicInputError
from isic_tracking.train.search.config import PRUNERS, SearchConfig


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """TPE whose random draws are seeded per trial, by ``seed`` and the trial's number.

    A sampler's random state lives in its process, not in the storage: workers on separate
    machines started with the same seed on one study would each take their first draw for
    their first trial, i.e. the same startup points. The trial number is handed out once by
    the storage, so seeded by it every trial draws its own point, on any machine, and one
    process still replays a study from its seed. TPE reads the history from the storage on
    every call, so a fresh TPE per trial loses nothing."""

    def __init__(self, seed: int | None, **tpe_kwargs: Any) -> None:
        self._seed = seed
        self._kwargs = tpe_kwargs
        self._by_trial: dict[int, optuna.samplers.TPESampler] = {}

    def _tpe(self, number: int) -> optuna.samplers.TPESampler:
        if number not in self._by_trial:
            seed = None if self._seed is None else (self._seed * 1_000_003 + number) % 2**32
            self._by_trial[number] = optuna.samplers.TPESampler(seed=seed, **self._kwargs)
        return self._by_trial[number]

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial):
        return self._tpe(trial.number).infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space):
        return self._tpe(trial.number).sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, name, distribution):
        return self._tpe(trial.number).sample_independent(study, trial, name, distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._tpe(trial.number).before_trial(study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state, values) -> None:
        self._tpe(trial.number).after_trial(study, trial, state, values)
        self._by_trial.pop(trial.number, None)

    def reseed_rng(self) -> None:
        """Nothing to reseed: every trial's draws come from its own seed."""


def make_sampler(seed: int | None) -> optuna.samplers.BaseSampler:
    """TPE seeded per trial (:class:`TrialSeededSampler`; random for its first 10 trials,
    ``constant_liar`` on for parallel workers)."""
    return TrialSeededSampler(seed, constant_liar=True)


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
