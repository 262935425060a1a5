"""isic_tracking/log.py: stage messages go through logging and print as plain lines."""

from __future__ import annotations

import logging
import os
import warnings

import pytest

from isic_tracking.log import QUIET_MLFLOW, get_logger, setup


@pytest.fixture
def clean_root():
    root = logging.getLogger("isic_tracking")
    saved = (list(root.handlers), root.level)
    root.handlers = [h for h in root.handlers if not getattr(h, "_isic", False)]
    yield root
    root.handlers, root.level = saved


def test_messages_print_as_plain_lines_once(clean_root, capsys, monkeypatch) -> None:
    monkeypatch.delenv("ISIC_LOG_LEVEL", raising=False)
    setup()
    setup()  # a second call adds no second handler
    get_logger("entrypoints.train").info("[train] fold 1/3 done")
    get_logger("isic_tracking.train.fold").debug("not shown at INFO")
    assert capsys.readouterr().out == "[train] fold 1/3 done\n"


def test_level_from_environment(clean_root, capsys, monkeypatch) -> None:
    monkeypatch.setenv("ISIC_LOG_LEVEL", "warning")
    setup()
    log = get_logger(__name__)
    log.info("quiet")
    log.warning("loud")
    assert capsys.readouterr().out == "loud\n"


def test_get_logger_puts_every_module_under_the_project() -> None:
    assert get_logger("entrypoints.sanity").name == "isic_tracking.entrypoints.sanity"
    assert get_logger("isic_tracking.data.cache").name == "isic_tracking.data.cache"


def test_messages_still_reach_standard_handlers(clean_root, caplog) -> None:
    """After setup, pytest's caplog (a root handler) and a user's logging config still see them."""
    setup()
    with caplog.at_level("INFO"):
        get_logger("isic_tracking.tracking.registry").warning("old-style version")
    assert "old-style version" in caplog.text


def test_setup_quiets_what_the_user_cannot_act_on(clean_root, monkeypatch) -> None:
    """MLflow's download bars, its run-URL lines and INFO chatter are off (unless the user
    set them), and its integer-schema hint is not shown; other warnings still are."""
    for key in QUIET_MLFLOW:  # setenv first: the test's changes are undone afterwards
        monkeypatch.setenv(key, "unset")
        monkeypatch.delenv(key)
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")  # the user's choice wins
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        setup()
        warnings.warn(
            "Hint: Inferred schema contains integer column(s). ...", UserWarning, stacklevel=1
        )
        warnings.warn("a warning about the user's data", UserWarning, stacklevel=1)
    assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "DEBUG"
    assert [str(w.message) for w in caught] == ["a warning about the user's data"]
