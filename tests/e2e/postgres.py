"""A throw-away PostgreSQL cluster for end-to-end tests (Debian's ``postgresql`` package).

``initdb`` and ``pg_ctl`` refuse to run as root, so under root they run as the unprivileged
``postgres`` user the Debian package creates (``runuser -u postgres --``). The cluster lives in
a fresh temp directory, listens on 127.0.0.1 only (plus a Unix socket in that directory), on a
free port, trusts local connections (nothing but this host can reach it) and is stopped and
removed when the context ends, also when the test fails.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.helpers import free_port

USER = "isic"  # the database superuser initdb creates (no password: trust on 127.0.0.1)


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<ver>/bin`` (Debian), else the ``initdb`` on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_user() -> list[str]:
    """Command prefix that drops root to the ``postgres`` user (nothing when not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as err:
        raise RuntimeError(
            "running as root but there is no 'postgres' user to run initdb/pg_ctl as; "
            "install Debian's postgresql package (apt-get install -y postgresql)"
        ) from err
    return ["runuser", "-u", "postgres", "--"]


@dataclass
class Cluster:
    """A running cluster: ``url(db)`` for SQLAlchemy/psycopg, ``restart()`` for outages."""

    bindir: Path
    root: Path
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{db}"

    def _pg_ctl(self, *args: str, timeout: int = 120) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        cmd = [*_as_user(), str(self.bindir / "pg_ctl"), "-D", str(self.data), "-w"]
        cmd += ["-t", str(timeout), "-l", str(self.root / "server.log"), "-o", opts, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {proc.stdout}{proc.stderr}")

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart(self, down_s: float = 0.0) -> float:
        """Stop (terminating every connection), stay down ``down_s`` seconds, start again;
        returns how long it was down."""
        t0 = time.monotonic()
        self.stop("fast")
        time.sleep(down_s)
        self.start()
        return time.monotonic() - t0

    def createdb(self, name: str) -> None:
        cmd = [str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
        subprocess.run([*cmd, "-U", USER, name], check=True, capture_output=True, timeout=60)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@contextmanager
def postgres_cluster(bindir: Path, databases: tuple[str, ...] = ()) -> Iterator[Cluster]:
    """initdb a cluster in a temp dir, start it on 127.0.0.1:<free port>, create
    ``databases``; stop and delete it afterwards."""
    # not pytest's tmp_path: its parents are private to root, the postgres user cannot enter
    root = Path(tempfile.mkdtemp(prefix="isic-pg-"))
    os.chmod(root, 0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bindir, root, free_port())
    started = False
    try:
        subprocess.run(
            [*_as_user(), str(bindir / "initdb"), "-D", str(cluster.data), "-U", USER]
            + ["--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
            check=True,
            capture_output=True,
            timeout=300,
        )
        cluster.start()
        started = True
        for db in databases:
            cluster.createdb(db)
        yield cluster
    finally:
        if started:
            try:
                cluster.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pid_file = cluster.data / "postmaster.pid"
                if pid_file.exists():  # last resort: the postmaster we started, by its pid
                    os.kill(int(pid_file.read_text().split()[0]), 9)
        shutil.rmtree(root, ignore_errors=True)
