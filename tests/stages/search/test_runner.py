"""The ``search`` stage in MLflow: parent run + nested trial runs, resume, workers, failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from entrypoints.search import main as search_main
from isic_tracking.config import TrainConfig
from isic_tracking.errors import IsicInputError
from isic_tracking.scaleout.storage import make_storage
from isic_tracking.stages.search.runner import run_search
from isic_tracking.stages.search.runner_trials import TRIAL_TAG
from isic_tracking.stages.train.runner import apply_search_params
from isic_tracking.tracking.runs import child_runs
from isic_tracking.train.search import SearchConfig, open_study
from tests.train.search.tiny import tiny_config as base_tiny_config

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="session")
def manifest(search_manifest: str) -> str:
    return search_manifest


def tiny_config(manifest: str, **kw) -> SearchConfig:
    """The search unit tests' tiny config, 1-2 epochs and no pruning unless asked."""
    return base_tiny_config(manifest, **{"epochs_max": 2, "pruner": "none", **kw})


def trial_runs(parent_id: str) -> dict[int, mlflow.entities.Run]:
    return {int(r.data.tags[TRIAL_TAG]): r for r in child_runs(parent_id)}


def test_search_tracks_trials_resumes_and_feeds_train(
    manifest: str, mlflow_tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tiny_config(manifest, n_trials=2, study_name="resume-me")
    # default storage: a journal file beside mlflow.db; queue a NaN trial and a good one
    journal = tmp_path / "optuna.journal"
    study = open_study(make_storage(f"journal:{journal}"), "resume-me", cfg)
    study.enqueue_trial({"lr": 1e30, "batch_size": 16, "epochs": 2})  # NaN loss
    study.enqueue_trial({"lr": 1e-3, "batch_size": 16, "epochs": 1})

    first = run_search(cfg)

    parent = MlflowClient().get_run(first.run_id)
    assert parent.data.tags["isic.stage"] == "search"
    assert parent.data.tags["isic.study_name"] == "resume-me"
    assert parent.data.tags["isic.storage"] == f"journal:{journal}"
    # the monitored metric resolved, under train's name (runs before the rename: `metric`)
    assert parent.data.params["monitor"] == "val_roc_auc" and "metric" not in parent.data.params
    runs = trial_runs(first.run_id)
    assert sorted(runs) == [0, 1]
    failed, ok = runs[0], runs[1]
    assert failed.info.status == "FAILED" and failed.data.tags["optuna.state"] == "failed"
    assert "NonFiniteLossError" in failed.data.tags["isic.error"]
    assert ok.info.status == "FINISHED" and ok.data.tags["optuna.state"] == "complete"
    assert ok.data.params["lr"] == "0.001" and ok.data.params["epochs"] == "1"
    assert {"val_roc_auc", "train_loss", "duration_s", "epochs_run"} <= set(ok.data.metrics)
    assert ok.info.end_time >= ok.info.start_time
    # best params / value on the parent, usable by train -P params_from=<id>
    # one place for them: tags isic.best.* (current after a resume), no best.* params/best_*
    assert parent.data.tags["isic.best.lr"] == "0.001"
    assert not [k for k in parent.data.params if k.startswith("best.")]
    assert not [k for k in parent.data.tags if k.startswith("best_")]
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("**Optuna study**") and "`lr=0.001`" in note
    assert parent.data.metrics["best_value"] == pytest.approx(ok.data.metrics["objective"])
    assert parent.data.tags["isic.complete"] == "true"
    arts = {a.path for a in MlflowClient().list_artifacts(first.run_id, "figures")}
    assert {"figures/optimization_history.png", "figures/slice.png"} <= arts
    assert MlflowClient().list_artifacts(first.run_id, "tables")[0].path == "tables/trials.csv"
    trained = apply_search_params(TrainConfig(params_from=first.run_id))
    assert (trained.lr, trained.batch_size, trained.epochs) == (1e-3, 16, 1)

    # resume under `mlflow run` (which made a run of its own): same parent, numbering goes on
    own = MlflowClient().create_run(os.environ["MLFLOW_EXPERIMENT_ID"]).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", own)
    second = run_search(tiny_config(manifest, n_trials=3, study_name="resume-me"))
    assert second.run_id == first.run_id
    assert sorted(trial_runs(first.run_id)) == [0, 1, 2]
    assert MlflowClient().get_run(own).data.tags["isic.resumed_into"] == first.run_id
    assert second.counts["complete"] + second.counts["fail"] == 3


def test_unreachable_storage_fails_at_once(
    manifest: str, mlflow_tracking: str, capsys: pytest.CaptureFixture
) -> None:
    t0 = time.monotonic()
    code = search_main(["--manifest", manifest, "--storage", "postgresql://nobody@127.0.0.1:1/x"])
    assert code == 2 and time.monotonic() - t0 < 20
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "127.0.0.1:1" in err
    assert MlflowClient().search_runs([os.environ["MLFLOW_EXPERIMENT_ID"]]) == []


def test_sqlite_refuses_parallel_workers(manifest: str, mlflow_tracking: str, tmp_path) -> None:
    cfg = tiny_config(manifest, n_workers=2, storage=f"sqlite:///{tmp_path / 'o.db'}")
    with pytest.raises(IsicInputError, match="journal"):
        run_search(cfg)


@pytest.mark.slow
def test_two_worker_processes_share_one_study(
    manifest: str, mlflow_tracking: str, tmp_path: Path
) -> None:
    cfg = tiny_config(
        manifest,
        n_trials=6,
        n_workers=2,
        max_batches=None,
        storage=f"journal:{tmp_path / 'shared.journal'}",
        study_name="shared",
    )
    outcome = run_search(cfg)

    study = optuna.load_study(study_name="shared", storage=make_storage(cfg.storage))
    assert [t.number for t in study.trials] == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    pids = {t.user_attrs["isic.pid"] for t in study.trials}
    assert os.getpid() not in pids and len(pids) == 2  # two worker processes did the work
    runs = trial_runs(outcome.run_id)
    assert sorted(runs) == list(range(6))  # one nested run per trial, none twice
    assert {r.data.tags["mlflow.parentRunId"] for r in runs.values()} == {outcome.run_id}
    assert {r.info.run_id for r in runs.values()} == {
        t.user_attrs["mlflow_run_id"] for t in study.trials
    }


@pytest.mark.slow
def test_killed_worker_trial_is_failed_and_retried(
    manifest: str, mlflow_tracking: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"journal:{tmp_path / 'kill.journal'}"
    cfg = tiny_config(manifest, n_trials=1, storage=url, study_name="kill", max_batches=None)
    study = open_study(make_storage(url), "kill", cfg)
    study.enqueue_trial({"lr": 1e-3, "batch_size": 16, "epochs": 2})
    args = [f"--{k}={v}" for k, v in vars(cfg).items() if v is not None]
    scratch = tmp_path / "tmp"  # the worker's temp directory
    scratch.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrypoints.search", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)},
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # kill it once trial 0 has reported an epoch
            trials = study.get_trials()
            if trials and trials[0].intermediate_values:
                break
            assert proc.poll() is None, "the worker ended before it could be killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert study.get_trials()[0].state == TrialState.RUNNING  # nobody told the storage
    assert [d.name.split("-")[2].split(".")[0] for d in scratch.glob("isic-trial0-*")] == [
        str(proc.pid)
    ]

    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    outcome = run_search(cfg)  # same command again: the dead trial is failed and re-run
    assert list(scratch.glob("isic-trial*")) == []  # the killed one's swept, the retry's removed

    dead, retry = study.get_trials()
    assert dead.state == TrialState.FAIL and retry.state == TrialState.COMPLETE
    assert retry.params == dead.params and retry.system_attrs["failed_trial"] == 0
    runs = trial_runs(outcome.run_id)
    assert runs[0].info.status == "FAILED" and runs[0].data.tags["optuna.state"] == "failed"
    assert runs[1].info.status == "FINISHED" and runs[1].data.tags["optuna.retry_of"] == "0"
