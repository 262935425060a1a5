"""What the stages say on the terminal, through the ``logging`` module.

``get_logger(__name__)`` everywhere; the entry points call :func:`setup` once so that
messages print as plain lines (as ``print`` did), and a user or a test can raise, lower or
capture them with the standard logging tools (``ISIC_LOG_LEVEL=WARNING`` quiets the stages).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

_ROOT = "isic_tracking"


def get_logger(name: str) -> logging.Logger:
    """The logger of a module of this project (``entrypoints.x`` lands under ``isic_tracking``)."""
    if not name.startswith(_ROOT):
        name = f"{_ROOT}.{name}"
    return logging.getLogger(name)


#: what MLflow would print that a user cannot act on: download bars on every model load, its
#: own "view run at" lines (each stage prints its link), INFO chatter (set before importing)
QUIET_MLFLOW = {
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}
#: warnings about MLflow's internals, not the user's data or settings
IGNORED_WARNINGS = (r"Hint: Inferred schema contains integer column",)


def quiet_libraries() -> None:
    """Keep off the terminal what the user cannot act on (:data:`QUIET_MLFLOW`,
    :data:`IGNORED_WARNINGS`); a value the user set in the environment wins. Inherited by
    the stages ``main`` starts."""
    for key, value in QUIET_MLFLOW.items():
        os.environ.setdefault(key, value)
    for message in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)


def setup(level: str | None = None) -> None:
    """Print this project's messages as plain lines on stdout, once per process, and quiet
    the libraries (:func:`quiet_libraries`)."""
    quiet_libraries()
    root = logging.getLogger(_ROOT)
    root.setLevel((level or os.environ.get("ISIC_LOG_LEVEL") or "INFO").upper())
    if not any(getattr(h, "_isic", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._isic = True  # type: ignore[attr-defined]
        root.addHandler(handler)
