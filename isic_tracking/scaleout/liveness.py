"""Which trials belong to a worker of this host that no longer exists.

A trial records its owner (host, pid and the process's start time from Linux ``/proc``);
a pid that the kernel has since given to another process is not mistaken for the dead one.
Journal storages have no heartbeat, so this is how a crashed local worker's trial is found.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HOST = socket.gethostname()
HOST_ATTR = "isic.host"
PID_ATTR = "isic.pid"
START_ATTR = "isic.proc_start"


def proc_start(pid: int) -> str:
    """Start time of a process (Linux /proc), so a reused pid is not taken for the dead one."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def is_alive(pid: int, start: str) -> bool:
    """Whether process ``pid`` exists, is not a zombie, and (when known) started at ``start``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    if stat.exists():
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return False
        if fields[0] in ("Z", "X"):  # zombie: dead, not yet reaped
            return False
        return not start or fields[19] == start
    return True


def owner_attrs(pid: int | None = None) -> dict[str, Any]:
    """The user attrs that mark a trial as run by process ``pid`` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return {HOST_ATTR: HOST, PID_ATTR: pid, START_ATTR: proc_start(pid)}


def dead_local_owner(attrs: Mapping[str, Any]) -> int | None:
    """The pid of the trial's owner when it ran on this host and is gone, else None."""
    pid = attrs.get(PID_ATTR)
    if attrs.get(HOST_ATTR) != HOST or pid is None:
        return None
    if is_alive(int(pid), str(attrs.get(START_ATTR, ""))):
        return None
    return int(pid)
