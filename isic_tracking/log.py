"""What the stages say on the terminal, through the ``logging`` module.

``get_logger(__name__)`` everywhere; the entry points call :func:`setup` once so that
messages print as plain lines (as ``print`` did), and a user or a test can raise, lower or
capture them with the standard logging tools (``ISIC_LOG_LEVEL=WARNING`` quiets the stages).
"""

from __future__ import annotations

import logging
import os
import sys

_ROOT = "isic_tracking"


def get_logger(name: str) -> logging.Logger:
    """The logger of a module of this project (``entrypoints.x`` lands under ``isic_tracking``)."""
    if not name.startswith(_ROOT):
        name = f"{_ROOT}.{name}"
    return logging.getLogger(name)


def setup(level: str | None = None) -> None:
    """Print this project's messages as plain lines on stdout, once per process."""
    root = logging.getLogger(_ROOT)
    root.setLevel((level or os.environ.get("ISIC_LOG_LEVEL") or "INFO").upper())
    if not any(getattr(h, "_isic", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._isic = True  # type: ignore[attr-defined]
        root.addHandler(handler)
