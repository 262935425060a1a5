"""Trials of dead local workers: failed, re-queued with the same parameters, counted once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import optuna
from optuna.trial import TrialState

from isic_tracking.scaleout.recovery import fail_dead_local_trials, retry_of_trial
from isic_tracking.scaleout.storage import make_storage
from isic_tracking.scaleout.worker_loop import budget_left
from isic_tracking.train.search import SearchConfig, open_study


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def _owned_by(trial: optuna.Trial, pid: int) -> optuna.Trial:
    trial.set_user_attr("isic.host", socket.gethostname())
    trial.set_user_attr("isic.pid", pid)
    return trial


def test_dead_local_worker_trial_is_failed_and_requeued(tmp_path: Path) -> None:
    storage = make_storage(f"journal:{tmp_path / 'o.journal'}")
    cfg = SearchConfig()
    study = open_study(storage, "s", cfg)
    trial = _owned_by(study.ask(cfg.space().distributions()), _dead_pid())
    # this process: alive, left alone
    alive = _owned_by(study.ask(cfg.space().distributions()), os.getpid())

    assert fail_dead_local_trials(study) == [trial.number]
    trials = study.get_trials()
    assert trials[trial.number].state == TrialState.FAIL
    assert trials[alive.number].state == TrialState.RUNNING
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.system_attrs["failed_trial"] == trial.number
    assert retry.params == trials[trial.number].params
    # the re-queued trial replaces the failed one in the budget
    assert budget_left(study, 3) == (1, 1)
    assert fail_dead_local_trials(study) == []  # already handled


def test_retried_trial_knows_which_trial_it_reruns(tmp_path: Path) -> None:
    storage = make_storage(f"journal:{tmp_path / 'o.journal'}")
    cfg = SearchConfig()
    study = open_study(storage, "s", cfg)
    dead = _dead_pid()
    first = _owned_by(study.ask(cfg.space().distributions()), dead)
    assert retry_of_trial(first) is None  # an original trial
    fail_dead_local_trials(study, max_retry=1)
    rerun = study.ask()  # picks up the waiting copy
    assert retry_of_trial(rerun) == first.number
    assert study.user_attrs[f"isic.dead_trial.{first.number}"].endswith(f":{dead}")
