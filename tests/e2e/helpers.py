"""Subprocess helpers for end-to-end tests: real processes, a real ``mlflow server``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(tracking_uri: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(MLFLOW_TRACKING_URI=tracking_uri, CI="true", PYTHONPATH=str(ROOT), **extra)
    return env


def run_module(module: str, args: list[str], env: dict[str, str], cwd: Path, timeout: int = 900):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    """Poll ``url`` until it answers 200; RuntimeError with the log's tail if ``proc`` exits
    first or ``timeout`` seconds pass (slow starts on a loaded 2-core box)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited: " + log.read_text()[-3000:])
    raise RuntimeError(f"{url} did not come up: " + log.read_text()[-3000:])


@contextmanager
def mlflow_server(tmp: Path, backend_uri: str | None = None, workers: int = 1):
    """A real ``mlflow server`` on 127.0.0.1 with proxied artifacts and a sqlite store
    (or ``backend_uri``, e.g. ``postgresql+psycopg://...``) served by ``workers`` processes."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--backend-store-uri",
            backend_uri or f"sqlite:///{tmp / 'server.db'}",
            "--artifacts-destination",
            str(tmp / "server-artifacts"),
            "--workers",
            str(workers),
        ],
        stdout=open(tmp / "server.log", "w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/health", proc, tmp / "server.log")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def rest(url: str, endpoint: str, payload: dict[str, Any] | None = None, **query: str) -> dict:
    """Call the MLflow REST API (POST with a JSON body, or GET with a query)."""
    full = f"{url}/api/2.0/mlflow/{endpoint}"
    if payload is None:
        from urllib.parse import urlencode

        req = urllib.request.Request(f"{full}?{urlencode(query)}")
    else:
        req = urllib.request.Request(
            full, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())
