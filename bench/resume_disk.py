"""Disk used by train's resume states: an uninterrupted run and a run killed mid-fold and
resumed, sampled every 0.1 s (peak) and after the run (final).

Each state holds the model, the best epoch's weights and the optimizer (Adam: two more
tensors per weight), about 4x the weights; the atomic write briefly holds a second copy.
Run it with the code of any checkout (``--code``) to compare versions side by side:

    python bench/resume_disk.py --manifest data/synthetic/prepared-binary/manifest.csv
    python bench/resume_disk.py --code /tmp/old-checkout --manifest ...
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when missing)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:  # a .tmp renamed away while walking
                pass
    return total


class Sampler:
    """Peak of :func:`tree_bytes` of ``path``, sampled in a thread."""

    def __init__(self, path: Path, every: float = 0.1) -> None:
        self.path, self.every, self.peak = path, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_bytes(self.path))
            time.sleep(self.every)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_bytes(self.path))


def train(code: Path, args: list[str], work: Path, env: dict[str, str], kill_at: str | None):
    """Run train (from ``code``); with ``kill_at`` (a glob under ``work``), SIGKILL it once a
    file matches, then start it again. Returns the exit code of the last process."""
    cmd = [sys.executable, "-m", "entrypoints.train", *args, "--work_dir", str(work)]
    out = subprocess.DEVNULL
    if kill_at:
        proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=out, stderr=out)
        while proc.poll() is None and not glob.glob(str(work / kill_at)):
            time.sleep(0.1)
        if proc.poll() is not None:
            raise SystemExit("training ended before it could be killed: use more epochs")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.run(cmd, cwd=code, env=env, stdout=out, stderr=out).returncode


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1])
    p.add_argument("--manifest", required=True)
    p.add_argument("--arch", default="smallcnn")
    p.add_argument("--folds", default="3")
    p.add_argument("--epochs", default="3")
    p.add_argument("--image_size", default="64")
    a = p.parse_args()
    args = ["--manifest", str(Path(a.manifest).resolve()), "--arch", a.arch, "--folds", a.folds]
    args += ["--epochs", a.epochs, "--image_size", a.image_size, "--batch_size", "16"]
    print(f"code: {a.code}  train {' '.join(args)}")
    print("| run | peak | final |\n|---|---|---|")
    for name, kill_at in (("uninterrupted", None), ("killed in fold 1 + resumed", "*/fold1.pt")):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "CI": "true"}
            env["PYTHONPATH"] = str(a.code)
            work = Path(tmp) / "work"
            with Sampler(work) as s:
                rc = train(a.code, args, work, env, kill_at)
            final = tree_bytes(work)
            print(f"| {name} | {s.peak / 2**20:.1f} MiB | {final / 2**20:.1f} MiB | (exit {rc})")


if __name__ == "__main__":
    main()
