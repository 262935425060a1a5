"""Trials of workers that died: failed and re-queued with the same parameters.

:class:`optuna.storages.RetryHeartbeatStaleTrialCallback` re-queues a failed trial; the RDB
storages' heartbeat finds dead workers on any machine, :func:`fail_dead_local_trials` those
of this host (journal files have no heartbeat).
"""

from __future__ import annotations

import warnings

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from isic_tracking.scaleout.liveness import HOST, dead_local_owner


def fail_dead_local_trials(study: optuna.Study, max_retry: int = 1) -> list[int]:
    """Fail the running trials of workers on this host that no longer exist, and re-queue
    each with the same parameters (up to ``max_retry`` times). Returns the failed numbers.

    RDB storages do the same across machines with their heartbeat; journal files have none.
    """
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = dead_local_owner(t.user_attrs)
        if pid is None:
            continue
        try:
            study.tell(t.number, state=TrialState.FAIL)
        except (RuntimeError, ValueError):  # finished meanwhile by someone else
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_user_attr(f"isic.dead_trial.{t.number}", f"{HOST}:{pid}")
            RetryHeartbeatStaleTrialCallback(max_retry=max_retry)(study, t)
        failed.append(t.number)
    return failed


def retry_of_trial(trial: optuna.Trial) -> int | None:
    """The number of the crashed trial that ``trial`` re-runs, or None."""
    for t in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.number == trial.number:
            failed = t.system_attrs.get("failed_trial")  # set by the retry callback
            return None if failed is None else int(failed)
    return None
