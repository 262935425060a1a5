"""Trial scratch folders: named after their owner, and swept once the owner is gone."""

from __future__ import annotations

import os
import subprocess
import sys

import optuna

from isic_tracking.scaleout.liveness import HOST, owner_attrs, proc_start
from isic_tracking.scaleout.scratch import PREFIX, owned_scratch, sweep_dead, trial_dir


def _killed_workers_folder(root, number: int):
    """The folder of a worker that was killed: a real process, started and ended (SIGKILL
    runs no cleanup)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = root / f"{PREFIX}{number}-{child.pid}.{proc_start(child.pid)}-abc"
    dead.mkdir()
    (dead / "state.pt").write_bytes(b"y")
    child.kill()
    child.wait()
    return dead


def test_owned_scratch_marks_the_trial_sweeps_the_dead_and_cleans_up(tmp_path):
    dead = _killed_workers_folder(tmp_path, 7)
    trial = optuna.create_study().ask()
    with owned_scratch(trial, tmp_path) as path:
        assert not dead.exists()  # swept before this trial's folder is made
        assert path.parent == tmp_path and path.name.startswith(f"{PREFIX}{trial.number}-")
        (path / "state.pt").write_bytes(b"x")
    assert not path.exists()
    assert trial.user_attrs == owner_attrs() and trial.user_attrs["isic.host"] == HOST


def test_a_killed_workers_folder_is_swept_and_a_live_ones_stays(tmp_path):
    mine = trial_dir(3, tmp_path)
    assert mine.name.startswith(f"{PREFIX}3-{os.getpid()}.{proc_start(os.getpid())}-")
    (mine / "state.pt").write_bytes(b"x")
    dead = _killed_workers_folder(tmp_path, 7)
    other = tmp_path / "isic-trial-not-ours"  # not of this naming: never touched
    other.mkdir()
    assert sweep_dead(tmp_path) == [dead]
    assert not dead.exists() and mine.exists() and other.exists()
    assert sweep_dead(tmp_path) == []
