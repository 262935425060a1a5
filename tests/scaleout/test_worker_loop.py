"""The worker loop: the study's budget, the claim lock, sampler seeds, failures that go on."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from isic_tracking.errors import NonFiniteLossError
from isic_tracking.scaleout.storage import make_storage
from isic_tracking.scaleout.worker_loop import (
    budget_left,
    claim_lock_path,
    retried_numbers,
    run_worker,
)
from isic_tracking.train.search import SearchConfig, SearchObjective, load_search_data, open_study
from tests.train.search.tiny import tiny_config


def _x(trial: optuna.Trial) -> float:
    return trial.suggest_float("x", 0.0, 1.0)


def test_budget_counts_the_whole_study_and_resume_tops_up(manifest: str, tmp_path: Path) -> None:
    cfg = tiny_config(manifest, pruner="none", max_batches=1, epochs_max=1)
    data = load_search_data(cfg)
    url = f"journal:{tmp_path / 'o.journal'}"
    study = open_study(make_storage(url), "s", cfg)
    assert run_worker(study, SearchObjective(cfg, data), n_trials=2) == [0, 1]
    again = open_study(make_storage(url), "s", cfg)  # a new process resuming
    assert run_worker(again, SearchObjective(cfg, data), n_trials=2) == []
    assert run_worker(again, SearchObjective(cfg, data), n_trials=3) == [2]
    assert [t.number for t in again.trials] == [0, 1, 2]


def test_threads_sharing_the_claim_lock_never_overshoot(tmp_path: Path) -> None:
    url = f"journal:{tmp_path / 'o.journal'}"
    optuna.create_study(storage=make_storage(url), study_name="s")
    lock = claim_lock_path(url, "s")
    ran: list[list[int]] = []

    def worker() -> None:
        study = optuna.load_study(study_name="s", storage=make_storage(url))
        ran.append(run_worker(study, _x, n_trials=7, lock_path=lock))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    study = optuna.load_study(study_name="s", storage=make_storage(url))
    assert len(study.trials) == 7 and sorted(n for r in ran for n in r) == list(range(7))
    assert claim_lock_path(url, "s") == lock != claim_lock_path(url, "other")


def test_caught_errors_fail_one_trial_others_stop_the_worker() -> None:
    study = optuna.create_study()
    calls = iter([NonFiniteLossError("nan"), None])

    def objective(trial: optuna.Trial) -> float:
        err = next(calls)
        if err is not None:
            raise err
        return _x(trial)

    assert run_worker(study, objective, n_trials=2) == [0, 1]
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.COMPLETE]

    def broken(trial: optuna.Trial) -> float:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        run_worker(optuna.create_study(), broken, n_trials=2)


def test_timeout_stops_starting_trials() -> None:
    study = optuna.create_study()
    assert run_worker(study, _x, n_trials=10_000, timeout=0.2)
    assert len(study.trials) < 10_000


def test_retried_failures_do_not_use_up_the_budget() -> None:
    cfg = SearchConfig()
    study = open_study(optuna.storages.InMemoryStorage(), "s", cfg)
    failed = study.ask(cfg.space().distributions())
    study.tell(failed, state=TrialState.FAIL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        RetryHeartbeatStaleTrialCallback(max_retry=1)(study, study.trials[failed.number])
    assert retried_numbers(study.get_trials()) == {failed.number}
    assert budget_left(study, 2) == (1, 1)  # one slot left, one re-queued trial waiting
    assert budget_left(study, 1) == (0, 1)
