"""Trial scratch folders: named after their owner, and swept once the owner is gone."""

from __future__ import annotations

import os
import subprocess
import sys

from isic_tracking.train.search.liveness import proc_start
from isic_tracking.train.search.scratch import PREFIX, sweep_dead, trial_dir


def test_a_killed_workers_folder_is_swept_and_a_live_ones_stays(tmp_path):
    mine = trial_dir(3, tmp_path)
    assert mine.name.startswith(f"{PREFIX}3-{os.getpid()}.{proc_start(os.getpid())}-")
    (mine / "state.pt").write_bytes(b"x")
    # a worker that was killed: a real process, started and ended (SIGKILL runs no cleanup)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    start = proc_start(child.pid)
    dead = tmp_path / f"{PREFIX}7-{child.pid}.{start}-abc"
    dead.mkdir()
    (dead / "state.pt").write_bytes(b"y")
    child.kill()
    child.wait()
    other = tmp_path / "isic-trial-not-ours"  # not of this naming: never touched
    other.mkdir()
    assert sweep_dead(tmp_path) == [dead]
    assert not dead.exists() and mine.exists() and other.exists()
    assert sweep_dead(tmp_path) == []
