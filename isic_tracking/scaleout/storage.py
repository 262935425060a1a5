"""Optuna storages from a URL: which kind a URL names, opening it with a clear message when
it cannot be reached, and the URL with its password masked for logs and tags.

``journal:<path>`` (or a bare path): one file shared by the processes of one host;
``sqlite:///<path>`` (or ``*.db``): one process at a time; ``postgresql://...``,
``mysql+pymysql://...``: several machines (RDB storages, with a heartbeat).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback

from isic_tracking.errors import IsicInputError
from isic_tracking.scaleout.reconnect import ReconnectingRDBStorage

_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def mask_url(url: str) -> str:
    """The storage URL with any password replaced by ``***`` (safe to log)."""
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


def journal_path(url: str) -> Path | None:
    """The file of a journal storage URL (``journal:<path>`` or a bare path), else None."""
    if url.startswith("journal:"):
        rest = url[len("journal:") :]
        return Path(rest[2:] if rest.startswith("//") else rest)
    if "://" not in url and not url.endswith(_SQLITE_SUFFIXES):
        return Path(url)
    return None


def is_sqlite(url: str) -> bool:
    """Whether the URL names a SQLite file (``sqlite:...`` or a bare ``*.db`` path)."""
    return url.startswith("sqlite:") or (
        not url.startswith("journal:") and "://" not in url and url.endswith(_SQLITE_SUFFIXES)
    )


def _connect_args(url: str) -> dict[str, Any]:
    """Driver options: a server that does not answer fails in seconds, not minutes."""
    if url.startswith(("postgresql", "mysql")):
        return {"connect_timeout": 10}
    return {}


def make_storage(url: str, heartbeat: int = 60, max_retry: int = 1) -> BaseStorage:
    """Open an Optuna storage, failing at once with a clear message when it is unreachable.

    Args:
        url: ``journal:<path>`` (or a bare path): one file shared by the processes of one host;
            ``sqlite:///<path>`` (or ``*.db``): one process at a time; ``postgresql://...``,
            ``mysql+pymysql://...``: several machines.
        heartbeat: RDB storages record a heartbeat every ``heartbeat`` seconds; a running trial
            silent for ``2 * heartbeat`` seconds is failed and re-queued.
        max_retry: how often such a trial is re-queued.
    """
    jpath = journal_path(url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if jpath is not None:
            return _open_journal(jpath)
        return _open_rdb(url, heartbeat, max_retry)


def _open_journal(path: Path) -> BaseStorage:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    except OSError as err:
        raise IsicInputError(
            f"cannot open the Optuna journal storage {path}: {err}; choose a writable "
            "path (storage=journal:<path>)"
        ) from err


def _open_rdb(url: str, heartbeat: int, max_retry: int) -> BaseStorage:
    retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    if "://" not in url:  # bare sqlite file name
        url = f"sqlite:///{url}"
    if not url.startswith(("sqlite", "postgresql", "mysql", "oracle", "mssql")):
        raise IsicInputError(
            f"storage={mask_url(url)!r}: use journal:<path>, sqlite:///<path>, "
            "postgresql://user:password@host/db or mysql+pymysql://user:password@host/db"
        )
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if _connect_args(url):
        engine_kwargs["connect_args"] = _connect_args(url)
    try:
        # PostgreSQL/MySQL: retry calls across a server restart instead of killing the worker
        rdb = ReconnectingRDBStorage if url.startswith(("postgresql", "mysql")) else RDBStorage
        return rdb(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat,
            grace_period=2 * heartbeat,
            heartbeat_stale_trial_callback=retry,
        )
    except ImportError as err:
        missing = getattr(err.__cause__, "name", None) or str(err)
        raise IsicInputError(
            f"storage {mask_url(url)}: its database driver is not installed ({missing}); "
            "pip install 'psycopg[binary]' (postgresql://), psycopg2-binary "
            "(postgresql+psycopg2://) or PyMySQL (mysql+pymysql://)"
        ) from err
    except Exception as err:  # sqlalchemy OperationalError / ArgumentError, driver errors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise IsicInputError(
            f"cannot reach the Optuna storage {mask_url(url)}: {first}. Check host, port, "
            "user, password and that the database exists (PostgreSQL: createdb <name>), "
            "or use a local storage (storage=journal:optuna.journal)"
        ) from err
