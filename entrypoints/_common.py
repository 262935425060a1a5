"""Shared entry-point plumbing: user errors become one clear line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from isic_tracking import log
from isic_tracking.config import parse_bool, parse_int
from isic_tracking.errors import IsicInputError


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Set up the stage messages (:func:`isic_tracking.log.setup`) and call ``main``; an
    :class:`IsicInputError` prints ``error: <message>`` and returns 2."""
    log.setup()
    try:
        return main(argv)
    except IsicInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def str2bool(v: str | bool) -> bool:
    """argparse type for MLproject booleans ('true'/'false')."""
    return parse_bool(v)


def optional(v: str) -> str | None:
    """argparse type: '' and 'none' mean not given (MLproject cannot pass None)."""
    return None if v in ("", "none", "None", "null") else v


def count(v: str) -> int:
    """argparse type for integers; MLproject may pass them as '5.0'."""
    return parse_int(v)
