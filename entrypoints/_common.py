"""Shared entry-point plumbing: user errors become one clear line and exit code 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from isic_tracking.config import parse_bool, parse_int
from isic_tracking.errors import IsicInputError


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> int:
    """Call ``main``; an :class:`IsicInputError` prints ``error: <message>`` and returns 2.

    Under ``mlflow run`` (``MLFLOW_RUN_ID`` set) any error is also recorded on the stage's run
    as tag ``isic.error``, so the ``main`` pipeline can name it in its one-line failure.
    """
    run_id = os.environ.get("MLFLOW_RUN_ID")  # read now: mlflow.end_run() unsets it
    try:
        return main(argv)
    except IsicInputError as err:
        _record_error(run_id, str(err))
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:
        _record_error(run_id, f"{type(err).__name__}: {err}")
        raise


def _record_error(run_id: str | None, message: str) -> None:
    if not run_id:
        return
    try:
        from mlflow.tracking import MlflowClient

        from isic_tracking.tracking import tag

        MlflowClient().set_tag(run_id, tag.ERROR, message[:4000])
    except Exception:  # the store itself may be what failed: the message is printed anyway
        pass


def str2bool(v: str | bool) -> bool:
    """argparse type for MLproject booleans ('true'/'false')."""
    return parse_bool(v)


def optional(v: str) -> str | None:
    """argparse type: '' and 'none' mean not given (MLproject cannot pass None)."""
    return None if v in ("", "none", "None", "null") else v


def count(v: str) -> int:
    """argparse type for integers; MLproject may pass them as '5.0'."""
    return parse_int(v)
