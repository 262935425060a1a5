"""End to end: train against a real ``mlflow server``, then load the champion with MLflow's own
pyfunc and serve it with ``mlflow models serve``; a JPEG posted over HTTP gets the same
probabilities as the project's loader."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.e2e.helpers import env_for, free_port, mlflow_server, run_module, wait_until_up

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("pyfunc_code_path_kept")]

NAME = "e2e-serve"
ARGS = [
    "--arch",
    "timm:test_resnet",
    "--folds",
    "2",
    "--epochs",
    "1",
    "--batch_size",
    "16",
    "--image_size",
    "48",
    "--register_as",
    NAME,
]


@contextmanager
def model_server(uri: str, env: dict[str, str], tmp: Path):
    """``mlflow models serve`` on 127.0.0.1 in its own process group; stopped on exit."""
    port = free_port()
    log = tmp / "serve.log"
    cmd = [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri]
    cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=tmp,
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/ping", proc, log)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _invocations(url: str, jpegs: list[bytes]) -> list[dict]:
    body = {
        "dataframe_split": {
            "columns": ["image"],
            "data": [[base64.b64encode(b).decode("ascii")] for b in jpegs],
        }
    }
    req = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["predictions"]


def test_champion_loads_with_pyfunc_and_serves_over_http(
    binary_manifest: Path, tmp_path: Path
) -> None:
    import mlflow

    from isic_tracking.data.dataset import decode_image_file
    from isic_tracking.data.manifest import read_manifest
    from isic_tracking.data.transforms import build_transforms
    from isic_tracking.tracking import load_registered_model

    uri = f"models:/{NAME}@champion"
    paths = read_manifest(binary_manifest)["path"].head(4).tolist()
    jpegs = [Path(p).read_bytes() for p in paths]
    assert all(b[:3] == b"\xff\xd8\xff" for b in jpegs)  # real JPEG files
    with mlflow_server(tmp_path) as url:
        env = env_for(url, MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false")
        args = [*ARGS, "--manifest", str(binary_manifest), "--work_dir", str(tmp_path / "work")]
        proc = run_module("entrypoints.train", args, env, tmp_path)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]

        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        try:
            pyfunc_out = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"image": jpegs}))
            loaded = load_registered_model(uri)
            info = mlflow.models.get_model_info(uri)
            experiment = mlflow.get_run(loaded.source_run_id).info.experiment_id
            models = mlflow.search_logged_models(experiment_ids=[experiment], output_format="list")
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)

        # the project's loader + eval transforms, as in training
        cfg = loaded.config
        tf = build_transforms(cfg["image_size"], train=False, mean=cfg["mean"], std=cfg["std"])
        with torch.no_grad():
            x = torch.stack([tf(decode_image_file(p)) for p in paths])
            expected = torch.sigmoid(loaded.model(x).squeeze(1)).double()
        got = torch.tensor(pyfunc_out["malignant"].to_numpy())
        assert torch.allclose(got, expected, atol=1e-5)

        assert info.signature is not None and info.model_id == loaded.model_id
        assert len(models) == 2  # one per fold, each with its fold's metrics
        assert {m.tags["isic.fold"] for m in models} == {"0", "1"}
        for m in models:
            assert {"best_val_roc_auc", "best_val_loss"} <= {x.key for x in m.metrics}

        with model_server(uri, env, tmp_path) as serve_url:
            served = _invocations(serve_url, jpegs)
        assert [row["label"] for row in served] == pyfunc_out["label"].tolist()
        probs = torch.tensor([row["malignant"] for row in served], dtype=torch.float64)
        assert torch.allclose(probs, expected, atol=1e-5)
        assert all(abs(row["benign"] + row["malignant"] - 1) < 1e-9 for row in served)
