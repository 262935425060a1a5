"""Optuna search without MLflow: space, objective, pruning, failures, storages, workers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from isic_tracking.data.prepare import prepare_dataset
from isic_tracking.data.synthetic import make_synthetic
from isic_tracking.errors import IsicInputError
from isic_tracking.train.search import (
    SearchConfig,
    SearchObjective,
    SearchSpace,
    budget_left,
    default_study_name,
    fail_dead_local_trials,
    load_search_data,
    make_storage,
    open_study,
    parse_batch_sizes,
    run_worker,
    trials_table,
    worker_seed,
)

GOOD = {"lr": 3e-3, "batch_size": 16, "epochs": 3}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """2 shared cores: one torch thread per process avoids oversubscription (10x faster)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("search-data")
    make_synthetic(root / "raw", n_images=96, seed=0, image_size=32)
    return str(
        prepare_dataset(
            "synthetic", root / "raw", root / "prep", task="binary", image_size=32, workers=1
        ).manifest_path
    )


def tiny_config(manifest: str, **kw) -> SearchConfig:
    """A search small enough for 2 CPU cores: a tiny timm net at 32 px, 1-3 epochs."""
    base = dict(
        manifest=manifest,
        arch="timm:test_efficientnet",
        image_size=32,
        subset=1.0,
        device="cpu",
        augment="none",
        lr_min=1e-4,
        lr_max=1e-2,
        batch_sizes="16",
        epochs_min=1,
        epochs_max=3,
        pruner_startup_trials=2,
        pruner_warmup_epochs=1,
    )
    base.update(kw)
    return SearchConfig(**base).validate()


def memory_study(cfg: SearchConfig, enqueue: list[dict]) -> optuna.Study:
    study = open_study(optuna.storages.InMemoryStorage(), "t", cfg)
    for params in enqueue:
        study.enqueue_trial(params, skip_if_exists=False)
    return study


# --------------------------------------------------------------------------- config
def test_parse_batch_sizes_and_space_errors() -> None:
    assert parse_batch_sizes("64, 16,32,16") == (16, 32, 64)
    with pytest.raises(IsicInputError, match="batch_sizes"):
        parse_batch_sizes("16,big")
    with pytest.raises(IsicInputError, match="lr_min"):
        SearchSpace(lr_min=1e-2, lr_max=1e-4)
    with pytest.raises(IsicInputError, match="epochs"):
        SearchSpace(epochs_min=0)
    with pytest.raises(IsicInputError, match="pruner"):
        SearchConfig(pruner="hyperband").validate()
    with pytest.raises(IsicInputError, match="validation metric"):
        SearchConfig(metric="train_loss").validate()


def test_defaults_follow_the_issue() -> None:
    cfg = SearchConfig()
    space = cfg.space()
    assert (space.lr_min, space.lr_max, space.batch_sizes) == (1e-5, 1e-2, (16, 32, 64, 128))
    assert (space.epochs_min, space.epochs_max, cfg.subset) == (5, 40, 0.1)
    assert cfg.resolved_metric() == "val_roc_auc" and cfg.direction() == "maximize"
    multi = SearchConfig(task="multiclass")
    assert multi.resolved_metric() == "val_balanced_accuracy"
    assert SearchConfig(metric="val_loss").direction() == "minimize"


def test_study_name_depends_on_settings_not_on_run_control() -> None:
    a = default_study_name(SearchConfig(), "m.csv")
    assert a == default_study_name(SearchConfig(n_trials=99, n_workers=4, timeout=5), "m.csv")
    assert a != default_study_name(SearchConfig(lr_max=0.1), "m.csv")
    assert a != default_study_name(SearchConfig(), "other.csv")
    assert a.startswith("isic-binary-alexnet-")


def test_worker_seeds_differ_between_workers_and_resumes() -> None:
    assert worker_seed(7, 0, 0) == 7
    seeds = {worker_seed(7, w, n) for w in range(3) for n in (0, 5)}
    assert len(seeds) == 6


def test_resumed_study_must_use_the_same_ranges(tmp_path: Path) -> None:
    storage = make_storage(f"journal:{tmp_path / 'o.journal'}")
    cfg = SearchConfig(batch_sizes="16,32")
    study = open_study(storage, "s", cfg)
    study.add_trial(
        optuna.create_trial(
            params={"lr": 1e-3, "batch_size": 16, "epochs": 5},
            distributions=cfg.space().distributions(),
            value=0.7,
        )
    )
    open_study(storage, "s", cfg)  # same space: fine
    with pytest.raises(IsicInputError, match="same ranges"):
        open_study(storage, "s", SearchConfig(batch_sizes="8,16"))
    with pytest.raises(IsicInputError, match="another study_name"):
        open_study(storage, "s", SearchConfig(batch_sizes="16,32", metric="val_loss"))


# --------------------------------------------------------------------------- storages
def test_unreachable_storage_fails_at_once_with_a_clear_message(tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(IsicInputError) as err:
        make_storage("postgresql://nobody@127.0.0.1:1/x")
    assert time.monotonic() - t0 < 15
    msg = str(err.value)
    assert "127.0.0.1:1" in msg and ("cannot reach" in msg or "driver" in msg)
    with pytest.raises(IsicInputError, match="cannot reach the Optuna storage"):
        make_storage(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'o.db'}")
    with pytest.raises(IsicInputError, match="journal storage"):
        make_storage("journal:/proc/isic-no-such-place/o.journal")
    with pytest.raises(IsicInputError, match="use journal:"):
        make_storage("redis://localhost/0")


def test_password_is_masked_in_messages() -> None:
    with pytest.raises(IsicInputError) as err:
        make_storage("postgresql://me:s3cret@127.0.0.1:1/x")
    assert "s3cret" not in str(err.value)


# --------------------------------------------------------------------------- workers
def test_dead_local_worker_trial_is_failed_and_requeued(tmp_path: Path) -> None:
    storage = make_storage(f"journal:{tmp_path / 'o.journal'}")
    cfg = SearchConfig()
    study = open_study(storage, "s", cfg)
    trial = study.ask(cfg.space().distributions())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    trial.set_user_attr("isic.host", socket.gethostname())
    trial.set_user_attr("isic.pid", dead.pid)
    alive = study.ask(cfg.space().distributions())  # this process: alive, left alone
    alive.set_user_attr("isic.host", socket.gethostname())
    alive.set_user_attr("isic.pid", __import__("os").getpid())

    assert fail_dead_local_trials(study) == [trial.number]
    trials = study.get_trials()
    assert trials[trial.number].state == TrialState.FAIL
    assert trials[alive.number].state == TrialState.RUNNING
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.system_attrs["failed_trial"] == trial.number
    assert retry.params == trials[trial.number].params
    # the re-queued trial replaces the failed one in the budget
    assert budget_left(study, 3) == (1, 1)
    assert fail_dead_local_trials(study) == []  # already handled


def test_bad_learning_rate_is_pruned(manifest: str) -> None:
    cfg = tiny_config(manifest)
    data = load_search_data(cfg)
    bad = {"lr": 10.0, "batch_size": 16, "epochs": 3}
    study = memory_study(cfg, [GOOD, GOOD, bad])
    ran = run_worker(study, SearchObjective(cfg, data), n_trials=3)
    assert ran == [0, 1, 2]
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.PRUNED]
    assert study.trials[2].user_attrs["epochs_run"] < 3
    assert study.trials[0].value > 0.7
    table = trials_table(study)
    assert list(table["state"]) == ["COMPLETE", "COMPLETE", "PRUNED"]


def test_raising_trial_is_failed_and_the_study_goes_on(manifest: str) -> None:
    cfg = tiny_config(manifest, pruner="none", max_batches=2)
    data = load_search_data(cfg)
    nan = {"lr": 1e30, "batch_size": 16, "epochs": 2}  # Adam step of 1e30: NaN loss
    study = memory_study(cfg, [nan, {"lr": 1e-3, "batch_size": 16, "epochs": 1}])
    run_worker(study, SearchObjective(cfg, data), n_trials=2)
    failed, ok = study.trials
    assert failed.state == TrialState.FAIL and "NonFiniteLossError" in failed.user_attrs["error"]
    assert ok.state == TrialState.COMPLETE and ok.user_attrs["epochs_run"] == 1
    assert budget_left(study, 2) == (0, 0)


def test_budget_counts_the_whole_study_and_resume_tops_up(manifest: str, tmp_path: Path) -> None:
    cfg = tiny_config(manifest, pruner="none", max_batches=1, epochs_max=1)
    data = load_search_data(cfg)
    url = f"journal:{tmp_path / 'o.journal'}"
    study = open_study(make_storage(url), "s", cfg)
    assert run_worker(study, SearchObjective(cfg, data), n_trials=2) == [0, 1]
    again = open_study(make_storage(url), "s", cfg)  # a new process resuming
    assert run_worker(again, SearchObjective(cfg, data), n_trials=2) == []
    assert run_worker(again, SearchObjective(cfg, data), n_trials=3) == [2]
    assert [t.number for t in again.trials] == [0, 1, 2]
