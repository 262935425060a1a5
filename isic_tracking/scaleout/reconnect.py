"""An Optuna RDB storage that rides out a database restart instead of killing the worker.

Optuna's :class:`~optuna.storages.RDBStorage` turns a lost connection into a
``StorageInternalError`` at once. During a restart (or fail-over) of the PostgreSQL/MySQL
server that means: a worker whose ``trial.report`` or ``study.ask`` hits the outage dies, and
the heartbeat thread of every running trial dies silently, so the trial goes stale and another
worker fails it while it is still training (its worker then crashes on ``tell``).

:class:`ReconnectingRDBStorage` retries each storage call while the error is a connection error
(``sqlalchemy.exc.OperationalError`` / ``InterfaceError``: refused, reset, "terminating
connection due to administrator command"; or ``PendingRollbackError``, what a session whose
connection died inside a transaction raises on its next use), for up to ``reconnect_s``
seconds. Before each retry the thread's session is discarded (it may hold the dead
connection) and the engine's ``pool_pre_ping`` replaces the dead pooled connections. Every call
is its own transaction (rolled back on error), so a retry re-runs it from the start. The one ambiguous case is a
connection lost during COMMIT: a finished ``set_trial_state_values`` retried after it had
committed is recognised and reported as done.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from isic_tracking.log import get_logger

log = get_logger(__name__)

#: RDBStorage methods called by Optuna (directly or through its cache) that talk to the database.
_RETRIED = (
    "create_new_study",
    "delete_study",
    "set_study_user_attr",
    "set_study_system_attr",
    "get_study_id_from_name",
    "get_study_name_from_id",
    "get_study_directions",
    "get_study_user_attrs",
    "get_study_system_attrs",
    "get_trial_user_attrs",
    "get_trial_system_attrs",
    "get_all_studies",
    "create_new_trial",
    "_create_new_trial",
    "set_trial_param",
    "_set_trial_param",
    "get_trial_param",
    "set_trial_state_values",
    "set_trial_intermediate_value",
    "set_trial_user_attr",
    "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number",
    "get_trial",
    "get_all_trials",
    "_get_trials",
    "get_best_trial",
    "_get_best_trial_id",
    "record_heartbeat",
    "_get_stale_trial_ids",
)


def connection_error(err: BaseException) -> BaseException | None:
    """The lost or refused database connection behind ``err`` (Optuna wraps it), or None."""
    import sqlalchemy.exc

    seen: BaseException | None = err
    while seen is not None:
        if isinstance(
            seen,
            sqlalchemy.exc.OperationalError
            | sqlalchemy.exc.InterfaceError
            | sqlalchemy.exc.PendingRollbackError,
        ):
            return seen
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.connection_invalidated:
            return seen
        seen = seen.__cause__
    return None


_inside = threading.local()  # nested calls (create_new_trial -> _create_new_trial) retry once


def _retrying(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def call(self: ReconnectingRDBStorage, *args: Any, **kwargs: Any) -> Any:
        if getattr(_inside, "active", False):
            return fn(self, *args, **kwargs)
        _inside.active = True
        deadline = time.monotonic() + self.reconnect_s
        lost = False
        try:
            while True:
                try:
                    return fn(self, *args, **kwargs)
                except optuna.exceptions.UpdateFinishedTrialError:
                    if lost and name == "set_trial_state_values" and _already_set(self, args):
                        return True  # the attempt that lost its connection had committed
                    raise
                except Exception as err:
                    cause = connection_error(err)
                    if cause is None or time.monotonic() > deadline:
                        raise
                    if not lost:
                        first = str(getattr(cause, "orig", None) or cause).strip()
                        first = (first.splitlines() or [""])[0]
                        log.warning(f"optuna storage: {name}: connection lost, retrying: {first}")
                    lost = True
                    self.scoped_session.remove()  # a fresh session, not one on a dead connection
                    time.sleep(1.0)
        finally:
            _inside.active = False

    return call


def _already_set(storage: RDBStorage, args: tuple[Any, ...]) -> bool:
    trial_id, state = args[0], args[1]
    trial = RDBStorage.get_trial(storage, trial_id)
    return isinstance(state, TrialState) and trial.state == state


class ReconnectingRDBStorage(RDBStorage):
    """:class:`~optuna.storages.RDBStorage` whose calls survive a database restart.

    Args:
        reconnect_s: how long one call keeps retrying a lost connection (default 120 s);
            everything else is passed to ``RDBStorage``.
    """

    def __init__(self, *args: Any, reconnect_s: float = 120.0, **kwargs: Any) -> None:
        self.reconnect_s = reconnect_s
        super().__init__(*args, **kwargs)  # (pickling keeps reconnect_s: it is in __dict__)


for _name in _RETRIED:
    setattr(ReconnectingRDBStorage, _name, _retrying(_name, getattr(RDBStorage, _name)))
