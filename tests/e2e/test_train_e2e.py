"""End to end: training against a real ``mlflow server``, SIGKILL + resume, torchrun DDP."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.e2e.helpers import ROOT, env_for, mlflow_server, rest, run_module

pytestmark = pytest.mark.slow

ARGS = [
    "--arch",
    "timm:test_resnet",
    "--folds",
    "2",
    "--batch_size",
    "16",
    "--image_size",
    "48",
    "--lr",
    "0.001",
]


def _ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def test_train_against_mlflow_server_and_load_back(binary_manifest: Path, tmp_path: Path) -> None:
    with mlflow_server(tmp_path) as url:
        env = env_for(url)
        proc = run_module(
            "entrypoints.train",
            [
                *ARGS,
                "--manifest",
                str(binary_manifest),
                "--epochs",
                "2",
                "--work_dir",
                str(tmp_path / "work"),
                "--register_as",
                "e2e-model",
            ],
            env,
            tmp_path,
        )
        _ok(proc)
        # nothing chosen: the task's experiment, made for the UI's model-training view
        (exp,) = rest(
            url, "experiments/search", {"filter": "name = 'isic-binary'", "max_results": 5}
        )["experiments"]
        kind = {t["key"]: t["value"] for t in exp.get("tags", [])}["mlflow.experimentKind"]
        assert kind == "custom_model_development"
        eid = exp["experiment_id"]
        assert "train: run " in proc.stdout and f"/#/experiments/{eid}/runs/" in proc.stdout
        runs = rest(url, "runs/search", {"experiment_ids": [eid], "max_results": 50})["runs"]
        stages = [
            {t["key"]: t["value"] for t in r["data"].get("tags", [])}.get("isic.stage")
            for r in runs
        ]
        assert stages.count("train") == 1 and stages.count("train-fold") == 2
        parent = next(
            r
            for r in runs
            if {t["key"]: t["value"] for t in r["data"]["tags"]}.get("isic.stage") == "train"
        )
        metrics = {m["key"] for m in parent["data"]["metrics"]}
        assert {"cv_roc_auc_mean", "oof_roc_auc", "test_roc_auc_mean"} <= metrics
        fold = next(
            r for r in runs if r is not parent and r["info"]["run_id"] != parent["info"]["run_id"]
        )
        hist = rest(
            url, "metrics/get-history", run_id=fold["info"]["run_id"], metric_key="val_loss"
        )
        assert len(hist["metrics"]) == 2
        # the fold's checkpoint is its logged (pyfunc) model
        fold_filter = f"source_run_id = '{fold['info']['run_id']}'"
        found = rest(url, "logged-models/search", {"experiment_ids": [eid], "filter": fold_filter})
        assert [m["info"]["name"] for m in found["models"]] == ["model"]
        alias = rest(url, "registered-models/alias", name="e2e-model", alias="champion")
        assert alias["model_version"]["name"] == "e2e-model"

        # load back from the server, in this process, and compare with the logged predictions
        import mlflow

        from isic_tracking.data.dataset import make_loader
        from isic_tracking.data.manifest import read_manifest
        from isic_tracking.data.transforms import build_transforms
        from isic_tracking.tracking import load_registered_model

        mlflow.set_tracking_uri(url)
        mlflow.set_registry_uri(url)
        try:
            loaded = load_registered_model("models:/e2e-model@champion")
            run_id = alias["model_version"]["run_id"]
            preds = pd.read_csv(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="tables/predictions.csv", dst_path=str(tmp_path)
                )
            )
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
        df = read_manifest(binary_manifest).set_index("image_id").loc[preds.image_id].reset_index()
        loader = make_loader(df, build_transforms(48, train=False), 64, shuffle=False)
        with torch.no_grad():
            scores = torch.cat([torch.sigmoid(loaded.model(b[0]).squeeze(1)) for b in loader])
        assert torch.allclose(scores, torch.tensor(preds.score.to_numpy()).float(), atol=1e-5)


def _final_metrics(db: Path) -> dict[str, float]:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{db}")
    try:
        runs = mlflow.search_runs(
            search_all_experiments=True,
            filter_string="tags.`isic.stage` = 'train' and tags.`isic.complete` = 'true'",
        )
    finally:
        mlflow.set_tracking_uri(None)
    assert len(runs) == 1
    row = runs.iloc[0]
    keys = [
        c
        for c in runs.columns
        if c.startswith("metrics.")
        and "seconds" not in c
        and "images_per_s" not in c
        and not c.startswith("metrics.system/")  # the machine's load, not a result
    ]
    return {k: float(row[k]) for k in keys}


def test_sigkill_mid_fold_then_resume_matches_uninterrupted(
    binary_manifest: Path, tmp_path: Path
) -> None:
    args = [*ARGS, "--manifest", str(binary_manifest), "--epochs", "3"]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    _ok(
        run_module(
            "entrypoints.train",
            [*args, "--work_dir", str(a / "work")],
            env_for(f"sqlite:///{a / 'mlflow.db'}"),
            a,
        )
    )

    env_b = env_for(f"sqlite:///{b / 'mlflow.db'}")
    cmd = [sys.executable, "-m", "entrypoints.train", *args, "--work_dir", str(b / "work")]
    proc = subprocess.Popen(
        cmd, env=env_b, cwd=b, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 600
    while time.time() < deadline and not glob.glob(str(b / "work" / "*" / "fold1.pt")):
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)  # fold 0 finished, fold 1 mid-way
    proc.wait()
    resumed = subprocess.run(cmd, env=env_b, cwd=b, capture_output=True, text=True, timeout=900)
    _ok(resumed)
    assert "fold 0: already finished" in resumed.stdout
    for work in (a / "work", b / "work"):  # finished (also killed + resumed): no state left
        assert not [p for p in work.rglob("*") if p.is_file()], work
    ma, mb = _final_metrics(a / "mlflow.db"), _final_metrics(b / "mlflow.db")
    assert ma.keys() == mb.keys() and ma
    diff = {k: (ma[k], mb[k]) for k in ma if ma[k] != pytest.approx(mb[k], abs=1e-6, nan_ok=True)}
    assert not diff


def test_torchrun_two_processes_on_cpu(binary_manifest: Path, tmp_path: Path) -> None:
    env = env_for(f"sqlite:///{tmp_path / 'mlflow.db'}")
    proc = subprocess.run(
        [
            "torchrun",
            "--nproc_per_node=2",
            "--master_port",
            str(_port()),
            "-m",
            "entrypoints.train",
            *ARGS,
            "--manifest",
            str(binary_manifest),
            "--epochs",
            "1",
            "--fold",
            "0",
            "--work_dir",
            str(tmp_path / "work"),
            "--device",
            "cpu",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    _ok(proc)
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        runs = mlflow.search_runs(search_all_experiments=True)
    finally:
        mlflow.set_tracking_uri(None)
    assert sorted(runs["tags.isic.stage"]) == ["train", "train-fold"]  # rank 0 logged, once
    fold = runs[runs["tags.isic.stage"] == "train-fold"].iloc[0]
    assert fold["metrics.val_loss"] == fold["metrics.val_loss"]  # finite, not NaN


def _port() -> int:
    from tests.e2e.helpers import free_port

    return free_port()
