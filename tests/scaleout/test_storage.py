"""Optuna storage URLs: parsing, masking, real journal and sqlite storages, clear errors."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.scaleout.storage import is_sqlite, journal_path, make_storage, mask_url


def test_journal_and_sqlite_urls_are_told_apart() -> None:
    assert journal_path("journal:/tmp/o.journal") == Path("/tmp/o.journal")
    assert journal_path("journal:///tmp/o.journal") == Path("/tmp/o.journal")
    assert journal_path("journal:rel/o.journal") == Path("rel/o.journal")
    assert journal_path("runs/optuna.log") == Path("runs/optuna.log")  # bare path: journal
    assert journal_path("journal:o.db") == Path("o.db")
    for url in ("sqlite:///o.db", "o.db", "x.sqlite3", "postgresql://u@h/db"):
        assert journal_path(url) is None
    assert is_sqlite("sqlite:///o.db") and is_sqlite("o.sqlite")
    assert not is_sqlite("journal:o.db") and not is_sqlite("postgresql://u@h/db")
    assert not is_sqlite("runs/optuna.log")


def test_mask_url_hides_the_password_only() -> None:
    assert mask_url("postgresql://me:s3cret@db.host:5432/optuna") == (
        "postgresql://me:***@db.host:5432/optuna"
    )
    assert mask_url("journal:/tmp/o.journal") == "journal:/tmp/o.journal"
    assert mask_url("sqlite:///o.db") == "sqlite:///o.db"


@pytest.mark.parametrize("kind", ["journal", "sqlite", "bare-db"])
def test_real_storages_keep_a_study_across_openings(tmp_path: Path, kind: str) -> None:
    url = {
        "journal": f"journal:{tmp_path / 'deep' / 'o.journal'}",
        "sqlite": f"sqlite:///{tmp_path / 'o.db'}",
        "bare-db": str(tmp_path / "bare.db"),
    }[kind]
    study = optuna.create_study(storage=make_storage(url), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = optuna.load_study(study_name="s", storage=make_storage(url))
    assert [t.value for t in again.trials] == [t.value for t in study.trials]
    if kind == "journal":
        assert (tmp_path / "deep" / "o.journal").stat().st_size > 0


def test_unreachable_storage_fails_at_once_with_a_clear_message(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(IsicInputError) as err:
        make_storage("postgresql://nobody@127.0.0.1:1/x")
    assert time.monotonic() - t0 < 15
    msg = str(err.value)
    assert "127.0.0.1:1" in msg and ("cannot reach" in msg or "driver" in msg)
    with pytest.raises(IsicInputError, match="cannot reach the Optuna storage"):
        make_storage(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'o.db'}")
    with pytest.raises(IsicInputError, match="journal storage"):
        make_storage("journal:/proc/isic-no-such-place/o.journal")
    with pytest.raises(IsicInputError, match="use journal:"):
        make_storage("redis://localhost/0")


def test_password_is_masked_in_messages() -> None:
    with pytest.raises(IsicInputError) as err:
        make_storage("postgresql://me:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(err.value)
