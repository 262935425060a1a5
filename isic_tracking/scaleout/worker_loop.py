"""The worker loop every process (or machine) of a study runs, and the study's budget.

The budget ``n_trials`` counts the study's trials, not each worker's: a claim lock (one
host) serializes "count, then create a trial", so the study ends with exactly ``n_trials``
trials; across machines two workers claiming the last slot in the same few milliseconds can
still add one trial. Before each claim the dead local workers' trials are re-queued.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
import torch
from filelock import FileLock
from optuna.trial import FrozenTrial, TrialState

from isic_tracking.errors import NonFiniteLossError
from isic_tracking.scaleout.recovery import fail_dead_local_trials

#: Exceptions that fail one trial and let the study go on (anything else stops the worker).
CATCH: tuple[type[BaseException], ...] = (
    NonFiniteLossError,
    getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError),
)
#: Seconds between checks while a worker waits for other workers' last trials.
WAIT_POLL_S = 2.0


def retried_numbers(trials: Sequence[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that were re-queued (they do not use up the budget)."""
    out: set[int] = set()
    for t in trials:
        out.update(int(n) for n in t.system_attrs.get("retry_history", []))
    return out


def budget_left(study: optuna.Study, n_trials: int) -> tuple[int, int]:
    """(trials still to create, waiting trials to run): the budget counts every trial
    except failed ones that were re-queued; waiting (re-queued) trials are already counted."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    used = sum(1 for t in trials if not (t.state == TrialState.FAIL and t.number in retried))
    waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
    return max(0, n_trials - used), waiting


def claim_lock_path(storage_url: str, study_name: str) -> Path:
    """Lock file serializing trial claims of the workers on this host."""
    key = hashlib.sha1(f"{storage_url}\0{study_name}".encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"isic-search-{key}.lock"


class _Claim:
    """A file lock held from "count the trials" until the new trial exists."""

    def __init__(self, path: str | Path | None) -> None:
        self._lock = FileLock(str(path)) if path else None
        self._held = False

    def acquire(self) -> None:
        if self._lock is not None and not self._held:
            self._lock.acquire()
            self._held = True

    def release(self) -> None:
        if self._lock is not None and self._held:
            self._lock.release()
            self._held = False


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    timeout: float = 0.0,
    lock_path: str | Path | None = None,
    catch: tuple[type[BaseException], ...] = CATCH,
    max_retry: int = 1,
) -> list[int]:
    """Run trials of ``study`` until it holds ``n_trials`` trials (or ``timeout`` seconds).

    Every worker of a study calls this; ``lock_path`` (same for every worker on a host)
    makes "count the trials, then create one" atomic, so the budget is never overshot.
    Returns the numbers of the trials this worker ran.
    """
    claim = _Claim(lock_path)
    start = time.monotonic()
    ran: list[int] = []

    def claimed(trial: optuna.Trial) -> float:
        claim.release()  # the trial exists now: the next worker may claim
        ran.append(trial.number)
        return objective(trial)

    while not timeout or time.monotonic() - start < timeout:
        claim.acquire()
        try:
            fail_dead_local_trials(study, max_retry=max_retry)
            left, waiting = budget_left(study, n_trials)
            if left == 0 and waiting == 0:
                if not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                    break
                # Budget used, but a trial still runs in another worker (maybe a dead one on
                # another machine): wait, failing stale trials (heartbeat) meanwhile, so a dead
                # worker's trial is failed and its retry is run here, and every worker's summary
                # sees the finished study.
                claim.release()
                _fail_stale_trials(study)
                time.sleep(WAIT_POLL_S)
                continue
            study.optimize(claimed, n_trials=1, catch=catch, gc_after_trial=False)
        finally:
            claim.release()
    return ran


def _fail_stale_trials(study: optuna.Study) -> None:
    """Optuna's heartbeat check (what each worker runs before asking for a trial)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
