"""Scale-out on real servers: PostgreSQL behind ``mlflow server`` and Optuna, three
independent ``mlflow run . -e search`` workers on one study (one SIGKILLed mid-trial; the
database restarted under them in a second study), and ``train`` under ``torchrun`` plus a
concurrent one-fold ``train`` landing in the same parent run.

Each search worker runs in its own UTS namespace with its own host name when the test may
create one (``unshare -u``, root), so the workers look like separate machines: a dead
worker's trial is then failed by Optuna's RDB heartbeat, not by the same-host process check.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import ROOT, env_for, free_port, mlflow_server
from tests.e2e.postgres import Cluster, find_bindir, postgres_cluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning"),
]

#: RDB heartbeat (seconds): a trial silent for 2 x this is failed by the next worker that checks.
#: Short, so the killed trial is noticed soon; under the restart longer than the outage plus a
#: retry (an outage longer than a grace period fails live trials, as it would in production).
HEARTBEAT = {"kill": 3, "restart": 10}
DOWN_S = 3.0  # database outage of the restart scenario: longer than a waiting worker's poll
#: A tiny search: 3-4 epochs (see EPOCHS) of 3 batches of a tiny timm net at 32 px (a few seconds a trial).
SEARCH = {
    "arch": "timm:test_resnet",
    "subset": "1.0",
    "pruner": "none",
    "seed": "0",
    "image_size": "32",
    "batch_sizes": "16",
    "epochs_min": "3",
    "epochs_max": "4",
    "max_batches": "3",
    "augment": "none",
    "device": "cpu",
    "max_retry": "1",
}
WAIT_S = 900
#: Epochs per trial by scenario: the kill scenario's trials last long enough (several seconds
#: past their first epoch; 8-10 epochs were not enough once on a machine at load 10) for the
#: test to catch one mid-trial.
EPOCHS = {"kill": ("20", "24"), "restart": ("3", "4")}


# --------------------------------------------------------------------------- servers
@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL not found (no /usr/lib/postgresql/*/bin/initdb, no initdb on PATH): "
            "apt-get install -y postgresql (.ci/run does)"
        )
    with postgres_cluster(bindir, ("mlflow", "optuna")) as c:
        yield c


@pytest.fixture(scope="module")
def server(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on the cluster's ``mlflow`` database, two server processes."""
    with mlflow_server(tmp_path_factory.mktemp("server"), cluster.url("mlflow"), 2) as url:
        yield url


@pytest.fixture
def client(server: str) -> Iterator[Any]:
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(server)
    mlflow.set_registry_uri(server)
    try:
        yield MlflowClient(server, server)
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


# --------------------------------------------------------------------------- processes
@functools.cache
def separate_hosts() -> bool:
    """Whether each worker can get its own host name (``unshare -u`` needs root/CAP_SYS_ADMIN)."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-u", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


def _on_host(name: str, cmd: list[str]) -> list[str]:
    """``cmd`` run under host name ``name`` (own UTS namespace) when possible."""
    if not separate_hosts():
        return cmd
    return ["unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', name, *cmd]


class Worker:
    """One ``mlflow run . -e search`` process group, as if on machine ``host``."""

    def __init__(self, host: str, params: dict[str, str], env: dict[str, str], log: Path):
        cmd = [sys.executable, "-m", "mlflow", "run", str(ROOT), "-e", "search"]
        cmd += ["--env-manager", "local"]
        for k, v in params.items():
            cmd += ["-P", f"{k}={v}"]
        self.host, self.log = host, log
        self.proc = subprocess.Popen(
            _on_host(host, cmd),
            env=env,
            cwd=ROOT,
            stdout=open(log, "w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: SIGKILL takes the whole "machine"
        )

    def owns(self, pid: int) -> bool:
        try:
            return os.getpgid(pid) == self.proc.pid
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()

    def tail(self) -> str:
        return f"--- {self.host} ---\n" + self.log.read_text(errors="replace")[-4000:]


RETRYING = "connection lost, retrying"  # what reconnect.py says when a call meets an outage


def _logs(workers: list[Worker]) -> str:
    return "\n".join(w.log.read_text(errors="replace") for w in workers)


def _poll(what: str, cond, workers: list[Worker], timeout: float = WAIT_S) -> Any:
    """Wait for ``cond()`` to return something truthy; fail if a worker ends meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        ended = [w for w in workers if w.proc.poll() is not None]
        assert not ended, f"{what}: a worker ended first\n" + "\n".join(w.tail() for w in ended)
        time.sleep(0.3)
    raise AssertionError(f"{what}: timed out\n" + "\n".join(w.tail() for w in workers))


_STORAGES: dict[str, Any] = {}


def _study(url: str, name: str):
    """The study, read through a plain storage of this process (None until it exists)."""
    import optuna

    if url not in _STORAGES:
        _STORAGES[url] = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    try:
        return optuna.load_study(study_name=name, storage=_STORAGES[url])
    except KeyError:
        return None


@contextmanager
def _workers(
    cluster: Cluster,
    server: str,
    exp: str,
    study_name: str,
    n_trials: int,
    scenario: str,
    manifest: Path,
    tmp: Path,
) -> Iterator[list[Worker]]:
    """The same command started at the same moment on three "machines"; all stopped after."""
    params = {
        **SEARCH,
        "manifest": str(manifest),
        "n_trials": str(n_trials),
        "storage": cluster.url("optuna"),
        "study_name": study_name,
        "heartbeat": str(HEARTBEAT[scenario]),
        "epochs_min": EPOCHS[scenario][0],
        "epochs_max": EPOCHS[scenario][1],
    }
    env = env_for(server, MLFLOW_EXPERIMENT_ID=exp, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    workers = [Worker(f"{study_name}-{h}", params, env, tmp / f"{h}.log") for h in "abc"]
    try:
        yield workers
    finally:
        for w in workers:
            w.stop()


def _mid_trial(url: str, study_name: str, workers: list[Worker]):
    """A running trial of one of ``workers`` past its first epoch, with its MLflow run."""
    from optuna.trial import TrialState

    from isic_tracking.stages.search.runner_trials import RUN_ID_ATTR

    study = _study(url, study_name)
    if study is None:
        return None
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("isic.pid")
        if t.intermediate_values and RUN_ID_ATTR in t.user_attrs and pid is not None:
            owner = next((w for w in workers if w.owns(int(pid))), None)
            if owner is not None:
                return t, owner
    return None


def _last_trials_running(url: str, study_name: str, n_trials: int) -> bool:
    """Every trial created, one or two of them mid-training: at least one worker is idle,
    waiting for them (it polls the storage every couple of seconds, so an outage longer than
    that reaches it), and the running ones report to the storage and MLflow."""
    from optuna.trial import TrialState

    study = _study(url, study_name)
    trials = study.get_trials(deepcopy=False) if study is not None else []
    running = [t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    return len(trials) == n_trials and not waiting and 1 <= len(running) <= 2


# --------------------------------------------------------------------------- invariants
def check_study_and_runs(client, url: str, study_name: str, exp: str, n_trials: int):
    """Invariants of a finished study and its MLflow runs; returns (study, trial runs)."""
    from optuna.trial import TrialState

    from isic_tracking.stages.search.runner import PARENT_ATTR
    from isic_tracking.stages.search.runner_trials import STATE_TAG, TRIAL_STAGE, TRIAL_TAG
    from isic_tracking.tracking import tag

    study = _study(url, study_name)
    trials = study.get_trials(deepcopy=False)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers)), f"duplicate trial numbers {sorted(numbers)}"
    pids = {(t.user_attrs.get("isic.host"), t.user_attrs.get("isic.pid")) for t in trials}
    assert len(pids) >= 2, f"the trials ran in one worker only: {pids}"
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == n_trials, [(t.number, t.state.name) for t in trials]
    assert all(t.state.is_finished() for t in trials), [(t.number, t.state.name) for t in trials]

    parent_id = study.user_attrs[PARENT_ATTR]
    runs = client.search_runs(
        [exp], filter_string=f"tags.`{tag.STUDY_NAME}` = '{study_name}'", max_results=1000
    )
    trial_runs = [r for r in runs if r.data.tags.get(tag.STAGE) == TRIAL_STAGE]
    parents = {r.data.tags.get("mlflow.parentRunId") for r in trial_runs}
    assert parents == {parent_id}, parents
    assert [r for r in runs if r.data.tags.get(tag.STAGE) == "search"] == [
        r for r in runs if r.info.run_id == parent_id
    ], "one parent run for the study"
    by_number: dict[int, list] = {}
    for r in trial_runs:
        by_number.setdefault(int(r.data.tags[TRIAL_TAG]), []).append(r)
    assert sorted(by_number) == sorted(numbers), "one nested run per trial"
    assert all(len(v) == 1 for v in by_number.values()), {k: len(v) for k, v in by_number.items()}
    want = {"COMPLETE": ("FINISHED", "complete"), "PRUNED": ("KILLED", "pruned")}
    want["FAIL"] = ("FAILED", "failed")
    for t in trials:
        run = by_number[t.number][0]
        got = (run.info.status, run.data.tags.get(STATE_TAG))
        assert got == want[t.state.name], (t.number, t.state.name, got)

    parent = client.get_run(parent_id)
    best = study.best_trial
    for k in ("lr", "batch_size", "epochs"):
        assert parent.data.tags[tag.best_param(k)] == str(best.params[k]), k
    assert parent.data.tags[tag.BEST_TRIAL] == str(best.number)
    assert parent.data.tags[tag.COMPLETE] == "true"
    return study, by_number


# --------------------------------------------------------------------------- tests
def test_reconnecting_storage_waits_out_a_restart(cluster: Cluster) -> None:
    """A storage call made while the database is down succeeds once it is back (plain
    RDBStorage fails at once)."""
    import optuna

    from isic_tracking.scaleout.storage import make_storage

    storage = make_storage(cluster.url("optuna"), heartbeat=HEARTBEAT["kill"])
    study = optuna.create_study(storage=storage, study_name="reconnect-unit")
    plain = optuna.storages.RDBStorage(cluster.url("optuna"), engine_kwargs={"pool_pre_ping": True})
    plain_id = plain.get_study_id_from_name("reconnect-unit")
    cluster.stop()
    back = threading.Timer(DOWN_S, cluster.start)
    try:
        with pytest.raises(optuna.exceptions.StorageInternalError):
            plain.get_all_trials(plain_id)
        back.start()
        study.enqueue_trial({"x": 1.0})  # waits for the restart, then writes
    finally:
        if back.is_alive() or back.finished.is_set():
            back.join()
        if not (cluster.data / "postmaster.pid").exists():
            cluster.start()
    assert [t.state.name for t in study.get_trials()] == ["WAITING"]


def test_a_run_created_while_the_database_is_down_waits_for_it(cluster: Cluster, client) -> None:
    """The tracking server answers 503 while its database is down; MLflow's client does not
    retry a CreateRun (since 3.18), ours does, and leaves one run."""
    from isic_tracking.tracking.outage import create_run_riding_outage, transient

    exp = client.create_experiment("outage-create")
    cluster.stop()
    back = threading.Timer(DOWN_S, cluster.start)
    try:
        try:
            client.create_run(exp, run_name="plain")
        except Exception as err:  # MLflow < 3.18 retries it itself and may get through
            assert transient(err), err
        back.start()
        run = create_run_riding_outage(client, exp, run_name="ridden", pause_s=0.5)
    finally:
        if back.is_alive() or back.finished.is_set():
            back.join()
        if not (cluster.data / "postmaster.pid").exists():
            cluster.start()
    ridden = [r for r in client.search_runs([exp]) if r.info.run_name == "ridden"]
    assert [r.info.run_id for r in ridden] == [run.info.run_id]


def test_search_workers_survive_a_killed_worker(
    cluster: Cluster, server: str, client, binary_manifest: Path, tmp_path: Path
) -> None:
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    n_trials, name, url = 6, "scaleout-kill", cluster.url("optuna")
    exp = client.create_experiment(name)
    with _workers(cluster, server, exp, name, n_trials, "kill", binary_manifest, tmp_path) as ws:
        trial, victim = _poll("a worker is mid-trial", lambda: _mid_trial(url, name, ws), ws)
        victim.kill()  # the machine is gone: no tell(), no MLflow end of run
        others = [w for w in ws if w is not victim]
        codes = [w.wait() for w in others]
        assert codes == [0, 0], "\n".join(w.tail() for w in others)

    study, by_number = check_study_and_runs(client, url, name, exp, n_trials)
    killed = study.get_trials(deepcopy=False)[trial.number]
    assert killed.state == TrialState.FAIL
    retries = [
        t
        for t in study.get_trials(deepcopy=False)
        if RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == trial.number
    ]
    assert len(retries) == 1 and retries[0].state.is_finished(), retries
    assert retries[0].state != TrialState.FAIL and retries[0].params == killed.params
    assert [t.number for t in study.get_trials(states=(TrialState.FAIL,))] == [trial.number]
    assert by_number[trial.number][0].info.run_id == killed.user_attrs["mlflow_run_id"]
    if separate_hosts():  # another "machine" failed it by the heartbeat, not by its pid
        assert f"isic.dead_trial.{trial.number}" not in study.user_attrs


def test_search_workers_ride_out_a_database_restart(
    cluster: Cluster, server: str, client, binary_manifest: Path, tmp_path: Path
) -> None:
    from optuna.trial import TrialState

    n_trials, name, url = 5, "scaleout-restart", cluster.url("optuna")
    exp = client.create_experiment(name)
    with _workers(cluster, server, exp, name, n_trials, "restart", binary_manifest, tmp_path) as ws:
        _poll("the last trials run", lambda: _last_trials_running(url, name, n_trials), ws)
        cluster.stop("fast")  # terminates every connection of MLflow and Optuna
        try:
            # down until a worker's storage call has hit the outage (and is retrying), at
            # least DOWN_S: a quiet pool pre-ping after a short restart would test nothing
            time.sleep(DOWN_S)
            _poll("a worker meets the outage", lambda: RETRYING in _logs(ws), ws, timeout=90)
        finally:
            cluster.start()
        codes = [w.wait() for w in ws]
        assert codes == [0, 0, 0], "\n".join(w.tail() for w in ws)
    assert RETRYING in _logs(ws)  # the outage did hit the workers
    study, _ = check_study_and_runs(client, url, name, exp, n_trials)
    assert not study.get_trials(states=(TrialState.FAIL,)), "a trial failed across the restart"


def test_torchrun_and_a_second_fold_worker_share_one_parent(
    server: str, client, binary_manifest: Path, tmp_path: Path
) -> None:
    from isic_tracking.tracking import tag

    exp = client.create_experiment("scaleout-train")
    env = env_for(server, MLFLOW_EXPERIMENT_ID=exp, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    args = ["-m", "entrypoints.train", "--manifest", str(binary_manifest), "--folds", "2"]
    args += ["--arch", "timm:test_resnet", "--epochs", "1", "--batch_size", "16"]
    args += ["--image_size", "32", "--device", "cpu", "--register_as", "scaleout-model"]
    args += ["--work_dir", str(tmp_path / "work")]
    ddp = [shutil.which("torchrun") or "torchrun", "--nproc_per_node=2"]
    ddp += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    logs = {"torchrun": tmp_path / "torchrun.log", "fold1": tmp_path / "fold1.log"}
    started: dict[str, subprocess.Popen] = {}

    def start(key: str, cmd: list[str]) -> None:
        out = open(logs[key], "w")
        started[key] = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=out)

    try:  # the README's one-fold-per-worker recipe, both started at the same moment
        start("torchrun", [*ddp, *args, "--fold", "0"])
        start("fold1", [sys.executable, *args, "--fold", "1"])
        for key, proc in started.items():
            assert proc.wait(timeout=WAIT_S) == 0, logs[key].read_text()[-4000:]
    finally:
        for proc in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    runs = client.search_runs([exp], max_results=100)
    parents = [r for r in runs if r.data.tags.get(tag.STAGE) == "train"]
    assert len(parents) == 1, [r.data.tags.get(tag.STAGE) for r in runs]
    parent = parents[0]
    folds = [r for r in runs if r.data.tags.get(tag.STAGE) == "train-fold"]
    assert sorted(r.data.tags[tag.FOLD] for r in folds) == ["0", "1"]  # rank 0 logged, once
    assert {r.data.tags["mlflow.parentRunId"] for r in folds} == {parent.info.run_id}
    assert all(r.info.status == "FINISHED" for r in folds)
    assert parent.data.tags[tag.COMPLETE] == "true"
    versions = client.search_model_versions("name='scaleout-model'")
    assert sorted(v.run_id for v in versions) == sorted(r.info.run_id for r in folds)
    champion = client.get_model_version_by_alias("scaleout-model", "champion")
    assert champion.run_id in {r.info.run_id for r in folds}
