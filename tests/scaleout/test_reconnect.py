"""The reconnecting Optuna storage, without a server: a real sqlite RDBStorage whose database
is made unreachable (an exclusive lock held by another connection) and reachable again."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc

from isic_tracking.scaleout.reconnect import ReconnectingRDBStorage, connection_error

FAST_FAIL = {"connect_args": {"timeout": 0.05}}  # sqlite busy wait: fail at once when locked


def _lock(db: Path) -> sqlite3.Connection:
    """Another connection holding an exclusive lock: every read and write fails."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def _storage(db: Path, reconnect_s: float) -> ReconnectingRDBStorage:
    return ReconnectingRDBStorage(
        f"sqlite:///{db}", engine_kwargs=FAST_FAIL, reconnect_s=reconnect_s
    )


def test_connection_error_finds_the_cause() -> None:
    """Operational / interface errors and invalidated connections, also behind a wrapper."""
    op = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    try:
        try:
            raise op
        except sqlalchemy.exc.OperationalError as e:
            raise optuna.exceptions.StorageInternalError("wrapped") from e
    except optuna.exceptions.StorageInternalError as wrapped:
        assert connection_error(wrapped) is op
    iface = sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("closed"))
    assert connection_error(iface) is iface
    lost = sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception("x"), connection_invalidated=True)
    assert connection_error(lost) is lost
    other = sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception("x"))
    assert connection_error(other) is None
    assert connection_error(ValueError("no")) is None
    assert connection_error(sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("dup"))) is None


def test_call_fails_when_the_outage_outlasts_reconnect_s(tmp_path: Path) -> None:
    """reconnect_s=0: the lost connection surfaces (as Optuna's or sqlalchemy's error)."""
    db = tmp_path / "optuna.db"
    storage = _storage(db, reconnect_s=0)
    lock = _lock(db)
    try:
        with pytest.raises(Exception) as err:
            storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
        assert connection_error(err.value) is not None
    finally:
        lock.close()
    assert storage.get_all_studies() == []


def test_calls_ride_out_an_outage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Calls made while the database is unreachable succeed once it is back, exactly once."""
    db = tmp_path / "optuna.db"
    storage = _storage(db, reconnect_s=30)
    study_id = storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
    trial_id = storage.create_new_trial(study_id)
    locked, release = threading.Event(), threading.Event()

    def outage() -> None:  # the database is down until `release` (no assertion on when)
        conn = _lock(db)
        locked.set()
        release.wait(1.5)
        conn.rollback()
        conn.close()

    thread = threading.Thread(target=outage)
    thread.start()
    locked.wait()
    try:
        # a write without Optuna's own retry loop (unlike create_new_trial)
        storage.set_trial_param(
            trial_id, "x", 0.5, optuna.distributions.FloatDistribution(0.0, 1.0)
        )
    finally:
        release.set()
        thread.join()
    assert "set_trial_param: connection lost, retrying: database is locked" in caplog.text
    trials = storage.get_all_trials(study_id)
    assert [t.number for t in trials] == [0]
    assert trials[0].params == {"x": 0.5}
    # and a study over the reconnecting storage works as usual afterwards
    study = optuna.load_study(study_name="s", storage=storage)
    assert study.trials[0].params == {"x": 0.5}


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    """A non-connection error raises at once even with a long reconnect_s."""
    storage = _storage(tmp_path / "optuna.db", reconnect_s=3600)
    with pytest.raises(KeyError):
        storage.get_study_id_from_name("missing")
    assert storage.reconnect_s == 3600


def test_a_session_left_on_a_dead_connection_is_replaced(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The connection died inside the thread's open transaction (what a server restart does
    to a session mid-call): plain RDBStorage raises PendingRollbackError; ours retries on a
    fresh session."""
    plain = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'plain.db'}")
    plain.scoped_session().connection().invalidate()
    with pytest.raises(optuna.exceptions.StorageInternalError) as err:
        plain.get_all_studies()
    assert isinstance(err.value.__cause__, sqlalchemy.exc.PendingRollbackError)
    assert connection_error(err.value) is err.value.__cause__

    storage = _storage(tmp_path / "optuna.db", reconnect_s=30)
    storage.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "s")
    storage.scoped_session().connection().invalidate()
    assert [s.study_name for s in storage.get_all_studies()] == ["s"]
    assert "get_all_studies: connection lost, retrying: Can't reconnect" in caplog.text
