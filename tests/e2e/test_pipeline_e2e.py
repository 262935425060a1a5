"""End to end: ``mlflow run .`` (the main pipeline) against a real ``mlflow server``:
every stage's run and key artifacts in the task's experiment, the champion alias, kill
mid-train + resume without repeating finished stages or folds and without a resume state
left, a third invocation that reuses every stage; a fresh multiclass run prints no
``UserWarning``."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import ROOT, env_for, mlflow_server, rest

pytestmark = pytest.mark.slow

STAGES = ("synth", "prepare", "eda", "pretrain", "search", "train", "evaluate", "layers",
          "filters", "visualize", "sanity")  # fmt: skip
IGNORE = shutil.ignore_patterns(
    ".git",
    "data",
    "outputs",
    "mlruns",
    "mlartifacts",
    "*.db",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    "optuna.journal*",
)


def _ignore(directory: str, names: list[str]) -> set[str]:
    """IGNORE, but ``data`` only at the top: ``isic_tracking/data`` is code, not outputs;
    and every virtual environment (a folder with ``pyvenv.cfg``, e.g. ``.venv`` or CI's
    ``.ci-venv`` inside the clone): copying one costs gigabytes per test."""
    ignored = set(IGNORE(directory, names))
    if Path(directory).resolve() != ROOT.resolve():
        ignored.discard("data")
    else:
        ignored |= {"reports"}  # main's reports beside the sqlite store
    ignored |= {n for n in names if (Path(directory) / n / "pyvenv.cfg").is_file()}
    return ignored


def _project_copy(tmp: Path) -> Path:
    """The working tree as a fresh git repository (mlflow run records its commit)."""
    proj = tmp / "project"
    shutil.copytree(ROOT, proj, ignore=_ignore)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(proj)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "snapshot"], check=True)
    return proj


def _mlflow_run(proj: Path, env: dict[str, str]) -> list[str]:
    return [
        "mlflow",
        "run",
        str(proj),
        "--env-manager",
        "local",
        "-P",
        "profile=tiny",
        "-P",
        "arch=timm:test_resnet",
    ]


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _experiments(url: str) -> dict[str, str]:
    """Experiment name -> id."""
    found = rest(url, "experiments/search", {"max_results": 1000})["experiments"]
    return {e["name"]: e["experiment_id"] for e in found}


def _runs(url: str, experiment: str = "isic-binary") -> list[dict]:
    """The runs of one experiment (the pipeline's: one per task)."""
    ids = [_experiments(url)[experiment]]
    return rest(url, "runs/search", {"experiment_ids": ids, "max_results": 1000})["runs"]


def _no_resume_state(proj: Path) -> None:
    """A finished train run leaves no resume state (outputs/train/<run>/fold*.pt)."""
    left = [str(p) for p in (proj / "outputs" / "train").rglob("*") if p.is_file()]
    assert not left, left


def test_mlflow_run_pipeline_end_to_end(tmp_path: Path) -> None:
    if shutil.which("mlflow") is None:
        pytest.fail("the mlflow CLI is not on PATH: run the README set-up command")
    proj = _project_copy(tmp_path)
    with mlflow_server(tmp_path) as url:
        env = env_for(url)
        cmd = _mlflow_run(proj, env)

        # 1) start, and SIGKILL the whole process group once train has finished an epoch
        first = subprocess.Popen(
            cmd,
            cwd=proj,
            env=env,
            stdout=open(tmp_path / "run1.log", "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 1200
        while time.time() < deadline and not glob.glob(str(proj / "outputs/train/*/fold*.pt")):
            assert first.poll() is None, (tmp_path / "run1.log").read_text()[-4000:]
            time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()

        # 2) the same command finishes, reusing the stages before train and resuming train
        second = subprocess.run(
            cmd, cwd=proj, env=env, capture_output=True, text=True, timeout=1800
        )
        assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-4000:]
        out = second.stdout + second.stderr
        for stage in ("synth", "prepare", "eda", "pretrain", "search"):
            assert f"[{stage}] reusing finished run" in out, stage
        assert "resuming train run" in out
        assert "models:/isic-binary-timm-test_resnet@champion" in out
        assert "see it all with" in out  # the UI to open is printed
        exp_id = _experiments(url)["isic-binary"]
        assert f"{url}/#/experiments/{exp_id}/runs?workflowType=machine_learning" in out
        _no_resume_state(proj)  # the killed fold's state too, once resumed and finished

        runs = _runs(url)
        by_stage: dict[str, list[dict]] = {}
        for r in runs:
            by_stage.setdefault(_tags(r).get("isic.stage", ""), []).append(r)
        for stage in STAGES:
            finished = [r for r in by_stage.get(stage, []) if r["info"]["status"] == "FINISHED"]
            assert finished, f"no finished {stage} run"
        train = next(r for r in by_stage["train"] if _tags(r).get("isic.complete") == "true")
        folds = [
            r
            for r in by_stage["train-fold"]
            if _tags(r).get("mlflow.parentRunId") == train["info"]["run_id"]
        ]
        assert len(folds) == 2  # the interrupted fold was resumed, not duplicated
        alias = rest(
            url, "registered-models/alias", name="isic-binary-timm-test_resnet", alias="champion"
        )
        assert alias["model_version"]["version"]
        version_tags = {t["key"]: t["value"] for t in alias["model_version"].get("tags", [])}
        assert version_tags["isic.init.kind"] == "model"  # fine-tuned from the pretrain stage
        assert version_tags["isic.init.source"].startswith("models:/isic-pretrain-")
        assert (
            "Initialized from model: `models:/isic-pretrain-"
            in alias["model_version"]["description"]
        )
        assert "**Test set** (" in alias["model_version"]["description"]  # evaluate wrote it
        assert version_tags["isic.test_run"]

        def files(run: dict, path: str = "") -> set[str]:
            listing = rest(url, "artifacts/list", run_id=run["info"]["run_id"], path=path)
            return {f["path"] for f in listing.get("files", [])}

        assert "figures" in files(by_stage["eda"][0])
        assert "tables/trials.csv" in files(by_stage["search"][0], "tables")
        assert "tables/fold_metrics.csv" in files(train, "tables")
        pipeline = next(r for r in by_stage["main"] if r["info"]["status"] == "FINISHED")
        assert "report.html" in files(pipeline)  # main's one-chain report (issue 16)
        assert "report           : " in out
        for stage, path in (("filters", "tables"), ("visualize", "tables"), ("sanity", "figures"),
                            ("layers", "tables"), ("layers", "figures"), ("evaluate", "tables"),
                            ("evaluate", "figures")):  # fmt: skip
            run = next(r for r in by_stage[stage] if r["info"]["status"] == "FINISHED")
            assert files(run, path), f"{stage} logged nothing under {path}/"

        # 3) a third invocation reuses every stage
        third = subprocess.run(cmd, cwd=proj, env=env, capture_output=True, text=True, timeout=900)
        assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-3000:]
        for stage in STAGES:
            assert f"[{stage}] reusing finished run" in third.stdout + third.stderr, stage


def test_multiclass_pipeline_runs_every_stage(tmp_path: Path) -> None:
    """``-P task=multiclass``: every stage finishes, sanity fits its sample to the split's
    smallest class, and the champion version says why it is champion."""
    proj = _project_copy(tmp_path)
    with mlflow_server(tmp_path) as url:
        env = env_for(url)
        cmd = [*_mlflow_run(proj, env), "-P", "task=multiclass"]
        done = subprocess.run(cmd, cwd=proj, env=env, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        # a fresh run shows no warning the user cannot act on, and leaves no resume state
        assert "UserWarning" not in done.stdout + done.stderr
        _no_resume_state(proj)
        runs = _runs(url, "isic-multiclass")
        for stage in STAGES:
            assert any(
                _tags(r).get("isic.stage") == stage and r["info"]["status"] == "FINISHED"
                for r in runs
            ), f"no finished {stage} run"
        sanity = next(r for r in runs if _tags(r).get("isic.stage") == "sanity")
        params = {p["key"]: p["value"] for p in sanity["data"]["params"]}
        used = int(params["n_images_used"])
        assert 2 <= used <= int(params["n_images"])
        assert (used < int(params["n_images"])) == ("isic.adapted" in _tags(sanity))
        name = "isic-multiclass-timm-test_resnet"
        alias = rest(url, "registered-models/alias", name=name, alias="champion")
        assert "**Champion**: fold " in alias["model_version"]["description"]


def test_the_project_copy_leaves_out_virtual_environments(tmp_path: Path) -> None:
    venv = tmp_path / "src" / ".ci-venv"
    (venv / "lib").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert ".ci-venv" in _ignore(str(tmp_path / "src"), [".ci-venv", "isic_tracking"])
    assert "data" in _ignore(str(ROOT), ["data", "isic_tracking"])
    assert "data" not in _ignore(str(ROOT / "isic_tracking"), ["data"])
