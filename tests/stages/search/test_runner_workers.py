"""A search worker in this process: opens the shared study, runs trials as nested runs."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from isic_tracking.scaleout.liveness import HOST, HOST_ATTR, PID_ATTR
from isic_tracking.scaleout.storage import make_storage
from isic_tracking.stages.search.runner_trials import RUN_ID_ATTR, TRIAL_TAG
from isic_tracking.stages.search.runner_workers import run_worker_here
from isic_tracking.tracking.runs import child_runs
from isic_tracking.train.search import load_search_data, open_study
from tests.train.search.tiny import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_worker_runs_the_budget_under_the_parent_run(
    search_manifest: str, mlflow_tracking: str, tmp_path: Path
) -> None:
    """Queued trials run to the study's budget; each is a child run of the parent and names
    its owner process (so a dead worker's trial can be re-queued); a second worker on the
    same study finds the budget used up."""
    cfg = tiny_config(search_manifest, n_trials=2, pruner="none", max_batches=1, epochs_max=1)
    url = f"journal:{tmp_path / 'optuna.journal'}"
    study = open_study(make_storage(url), "w", cfg)
    for lr in (1e-3, 2e-3):
        study.enqueue_trial({"lr": lr, "batch_size": 16, "epochs": 1})
    with mlflow.start_run() as parent:
        pass
    data = load_search_data(cfg)

    ran = run_worker_here(cfg, "w", url, parent.info.run_id, data=data)

    assert ran == [0, 1]
    trials = optuna.load_study(study_name="w", storage=make_storage(url)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE]
    runs = {int(r.data.tags[TRIAL_TAG]): r for r in child_runs(parent.info.run_id)}
    assert sorted(runs) == [0, 1]
    for t in trials:
        run = runs[t.number]
        assert t.user_attrs[RUN_ID_ATTR] == run.info.run_id
        assert float(run.data.params["lr"]) == pytest.approx(t.params["lr"])
        assert run.info.status == "FINISHED"
        assert (t.user_attrs[HOST_ATTR], t.user_attrs[PID_ATTR]) == (HOST, os.getpid())
    again = run_worker_here(cfg, "w", url, parent.info.run_id, data=data)
    assert again == []
    assert len(child_runs(parent.info.run_id)) == 2
