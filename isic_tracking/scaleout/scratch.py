"""Scratch folders of trials (the resume state of the one fold a trial trains), and the
sweep that removes those of workers that died.

A trial removes its own folder when it ends, however it ends, but a worker killed with
SIGKILL (or by the OOM killer) runs no ``finally``: its folder would stay in the temp
directory for good. So each folder's name carries its owner (pid and process start time,
:mod:`.liveness`), and every new trial first removes the folders whose owner is gone.
:func:`owned_scratch` is what a search worker hands to ``SearchObjective``: it also marks the
trial with its owner, so :mod:`.recovery` can fail and re-queue the trial of a dead worker.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna

from isic_tracking.scaleout.liveness import is_alive, owner_attrs, proc_start

PREFIX = "isic-trial"
_NAME = re.compile(rf"^{PREFIX}\d+-(\d+)\.(\d*)-")


def trial_dir(number: int, root: str | Path | None = None) -> Path:
    """A new scratch folder for trial ``number``, named after this process."""
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{number}-{pid}.{proc_start(pid)}-", dir=root))


def sweep_dead(root: str | Path | None = None) -> list[Path]:
    """Remove the trial folders under ``root`` (default the temp directory) whose owner
    process no longer exists; returns what was removed. Folders of live workers stay."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        m = _NAME.match(path.name)
        if m and path.is_dir() and not is_alive(int(m.group(1)), m.group(2)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextmanager
def owned_scratch(trial: optuna.Trial, root: str | Path | None = None) -> Iterator[Path]:
    """The scratch folder of a trial run by a worker that may be killed: marks the trial with
    this process as its owner (user attrs of :func:`.liveness.owner_attrs`), sweeps the folders
    of dead workers under ``root``, yields a new folder named after this process, and removes
    it when the trial ends."""
    for key, value in owner_attrs().items():
        trial.set_user_attr(key, value)
    sweep_dead(root)
    path = trial_dir(trial.number, root)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
