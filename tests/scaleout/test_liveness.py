"""Whether a trial's owner process on this host still exists (Linux /proc)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from isic_tracking.scaleout.liveness import (
    HOST,
    HOST_ATTR,
    PID_ATTR,
    START_ATTR,
    dead_local_owner,
    is_alive,
    owner_attrs,
    proc_start,
)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_this_process_is_alive_and_an_exited_one_is_not() -> None:
    me = os.getpid()
    start = proc_start(me)
    assert start.isdigit()
    assert is_alive(me, start) and is_alive(me, "")
    assert not is_alive(_dead_pid(), "")


def test_a_reused_pid_is_not_the_dead_owner() -> None:
    """Same pid, another start time: the process that owned the trial is gone."""
    me = os.getpid()
    assert not is_alive(me, str(int(proc_start(me)) + 1))


def test_a_zombie_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # exited but not reaped: state Z in /proc
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    try:
        assert not is_alive(child.pid, "")
    finally:
        child.wait()


def test_owner_attrs_and_dead_local_owner() -> None:
    mine = owner_attrs()
    assert mine == {HOST_ATTR: HOST, PID_ATTR: os.getpid(), START_ATTR: proc_start(os.getpid())}
    assert dead_local_owner(mine) is None  # alive
    dead = _dead_pid()
    assert dead_local_owner(owner_attrs(dead)) == dead
    assert dead_local_owner({HOST_ATTR: "another-host", PID_ATTR: dead}) is None
    assert dead_local_owner({HOST_ATTR: HOST}) is None  # no pid recorded
