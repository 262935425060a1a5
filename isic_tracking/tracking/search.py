"""The ``search`` stage in MLflow: the study is one parent run, every trial a nested run.

A trial's run holds its parameters, per-epoch metrics, duration and final state (tag
``optuna.state``: complete / pruned / failed; MLflow status FINISHED / KILLED / FAILED). The
parent logs the settings, the best parameters (params ``best.lr``, ``best.batch_size``,
``best.epochs`` for ``train -P params_from=<run id>``, and tags ``best_*`` that stay current
when a resumed study finds a better trial), metric ``best_value``, the trials table and
Optuna's figures.

Resume: the study records its parent run id (study user attr ``mlflow_parent_run_id``) and
the parent carries tag ``isic.study_name``; running the same study again re-enters that
parent, so trial numbers and nested runs continue under it. Worker processes (``n_workers``)
and other machines attach their trial runs to the same parent through ``MlflowClient``
(no global active-run state is shared between processes).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from isic_tracking.errors import IsicInputError
from isic_tracking.tracking import tag
from isic_tracking.tracking.claim import elect_parent
from isic_tracking.tracking.runs import (
    child_runs,
    experiment_id,
    log_dataframe,
    log_figure,
    log_manifest_input,
    log_params,
)
from isic_tracking.train.search import (
    RUN_CONTROL_FIELDS,
    SearchConfig,
    SearchData,
    SearchObjective,
    TrialHooks,
    TrialOutcome,
    best_trial,
    budget_left,
    claim_lock_path,
    default_study_name,
    epochs_spent,
    is_sqlite,
    load_search_data,
    make_sampler,
    make_storage,
    mask_url,
    open_study,
    retry_of_trial,
    run_worker,
    state_counts,
    study_figures,
    trials_table,
    worker_seed,
)
from isic_tracking.utils import resolve_device, seed_everything

SEARCH_STAGE = "search"
TRIAL_STAGE = "search-trial"
TRIAL_TAG = "optuna.trial_number"
STATE_TAG = "optuna.state"
PARENT_ATTR = "mlflow_parent_run_id"
RUN_ID_ATTR = "mlflow_run_id"
#: Trial outcome -> MLflow run status (pruned trials show as "killed" in the UI).
RUN_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED"}
_OPTUNA_STATE = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed"}
BEST_KEYS = ("lr", "batch_size", "epochs")


@dataclass
class SearchOutcome:
    """What a finished ``search`` call hands back."""

    run_id: str
    study_name: str
    storage: str
    best_params: dict[str, Any]
    best_value: float | None
    counts: dict[str, int]
    epochs_spent: int


# --------------------------------------------------------------------------- trial runs
class MlflowTrialHooks(TrialHooks):
    """Each trial a nested run under ``parent_run_id`` (works from any process)."""

    def __init__(self, parent_run_id: str, study_name: str, metric: str) -> None:
        self.client = MlflowClient()
        self.parent_run_id = parent_run_id
        self.study_name = study_name
        self.metric = metric
        self.experiment_id = self.client.get_run(parent_run_id).info.experiment_id
        self.run_ids: dict[int, str] = {}

    def start(self, trial: optuna.Trial, params: dict[str, Any]) -> None:
        tags = {
            MLFLOW_PARENT_RUN_ID: self.parent_run_id,
            tag.STAGE: TRIAL_STAGE,
            tag.STUDY_NAME: self.study_name,
            TRIAL_TAG: str(trial.number),
            STATE_TAG: "running",
        }
        retry_of = retry_of_trial(trial)
        if retry_of is not None:
            tags["optuna.retry_of"] = str(retry_of)
        run = self.client.create_run(
            self.experiment_id, run_name=f"trial-{trial.number}", tags=tags
        )
        run_id = run.info.run_id
        self.run_ids[trial.number] = run_id
        trial.set_user_attr(RUN_ID_ATTR, run_id)
        self.client.log_batch(
            run_id,
            params=[Param(k, str(v)) for k, v in {**params, "trial_number": trial.number}.items()],
        )

    def epoch(self, trial: optuna.Trial, epoch: int, row: dict[str, float]) -> None:
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, float(v), now, epoch)
            for k, v in row.items()
            if _is_number(v) and k != "epoch"
        ]
        self.client.log_batch(self.run_ids[trial.number], metrics=metrics)

    def end(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        run_id = self.run_ids.pop(trial.number, None)
        if run_id is None:  # start() failed before the run existed
            return
        now = int(time.time() * 1000)
        metrics = {"duration_s": outcome.seconds, "epochs_run": float(outcome.epochs_run)}
        if outcome.value is not None:
            metrics["objective"] = float(outcome.value)
        tags = {STATE_TAG: outcome.state}
        if outcome.error:
            tags[tag.ERROR] = outcome.error[:4000]
        if outcome.best_epoch is not None:
            tags[tag.BEST_EPOCH] = str(outcome.best_epoch)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        self.client.set_terminated(run_id, status=RUN_STATUS[outcome.state], end_time=now)
        if outcome.state == "complete" and outcome.value is not None:
            self.client.log_metric(
                self.parent_run_id, "trial_value", float(outcome.value), now, trial.number
            )


def _is_number(v: Any) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True


def sync_trial_runs(study: optuna.Study, parent_run_id: str) -> int:
    """End the nested runs still marked running whose trial has finished (a dead worker's
    trial, failed by heartbeat or by :func:`fail_dead_local_trials`). Returns how many."""
    client = MlflowClient()
    states = {t.number: t.state.name for t in study.get_trials(deepcopy=False)}
    n = 0
    for run in child_runs(parent_run_id):
        number = run.data.tags.get(TRIAL_TAG)
        if run.info.status != "RUNNING" or number is None:
            continue
        state = _OPTUNA_STATE.get(states.get(int(number), ""))
        if state is None:
            continue
        client.set_tag(run.info.run_id, STATE_TAG, state)
        if state == "failed":
            client.set_tag(run.info.run_id, tag.ERROR, "worker died (no heartbeat)")
        client.set_terminated(run.info.run_id, status=RUN_STATUS[state])
        n += 1
    return n


# --------------------------------------------------------------------------- workers
def _run_worker_here(
    cfg: SearchConfig,
    study_name: str,
    storage_url: str,
    parent_run_id: str,
    worker: int,
    n_existing: int,
    data: SearchData | None = None,
) -> list[int]:
    """One worker: open the shared study and run trials until the budget is used."""
    storage = make_storage(storage_url, cfg.heartbeat, cfg.max_retry)
    sampler = make_sampler(worker_seed(cfg.seed, worker, n_existing))
    study = open_study(storage, study_name, cfg, sampler=sampler)
    data = data or load_search_data(cfg)
    cpu = resolve_device(cfg.device).type == "cpu"
    seed_everything(cfg.seed, deterministic=cfg.deterministic and cpu)
    hooks = MlflowTrialHooks(parent_run_id, study_name, cfg.resolved_metric())
    return run_worker(
        study,
        SearchObjective(cfg, data, hooks),
        cfg.n_trials,
        timeout=cfg.timeout,
        lock_path=claim_lock_path(storage_url, study_name),
        max_retry=cfg.max_retry,
    )


def _worker_process(
    cfg_dict: dict[str, Any],
    study_name: str,
    storage_url: str,
    parent_run_id: str,
    worker: int,
    n_existing: int,
    tracking_uri: str,
    threads: int,
) -> None:
    """Entry of a spawned worker process (module level, so ``spawn`` can import it)."""
    import torch

    torch.set_num_threads(threads)
    mlflow.set_tracking_uri(tracking_uri)
    os.environ.pop("MLFLOW_RUN_ID", None)  # never resume the parent's run from here
    cfg = SearchConfig(**cfg_dict)
    n_gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if cfg.device in ("auto", "cuda") and n_gpus > 1:  # spread the workers over the GPUs
        cfg = dataclasses.replace(cfg, device=f"cuda:{worker % n_gpus}")
    ran = _run_worker_here(cfg, study_name, storage_url, parent_run_id, worker, n_existing)
    print(f"search worker {worker} (pid {os.getpid()}): trials {ran}")


def _run_workers(
    cfg: SearchConfig,
    study_name: str,
    storage_url: str,
    parent_run_id: str,
    n_existing: int,
) -> list[int]:
    """``n_workers`` processes on this host; returns their exit codes."""
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // cfg.n_workers)
    procs = [
        ctx.Process(
            target=_worker_process,
            args=(
                dataclasses.asdict(cfg),
                study_name,
                storage_url,
                parent_run_id,
                i,
                n_existing,
                mlflow.get_tracking_uri(),
                threads,
            ),
            name=f"isic-search-worker-{i}",
        )
        for i in range(cfg.n_workers)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except BaseException:
        for p in procs:  # interrupted: stop our own workers, their trials fail and re-queue
            if p.is_alive():
                p.terminate()
                p.join()
        raise
    return [int(p.exitcode or 0) for p in procs]


# --------------------------------------------------------------------------- parent run
def default_storage_url(work_dir: str | Path = "outputs/search") -> str:
    """A journal file beside the MLflow sqlite database, else under ``work_dir``."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return f"journal:{db.parent / 'optuna.journal'}"
    return f"journal:{Path(work_dir) / 'optuna.journal'}"


def _search_run(run_id: str | None, study_name: str) -> str | None:
    if not run_id:
        return None
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        return None
    ok = run.data.tags.get(tag.STAGE) == SEARCH_STAGE and run.info.lifecycle_stage == "active"
    return run_id if ok and run.data.tags.get(tag.STUDY_NAME) == study_name else None


def _parent_filter(study_name: str) -> str:
    return f"tags.`{tag.STAGE}` = '{SEARCH_STAGE}' and tags.`{tag.STUDY_NAME}` = '{study_name}'"


def find_parent_run(study: optuna.Study, study_name: str) -> str | None:
    """The parent run of a study: the id it recorded, else the newest run tagged with it
    that is not a claim of :func:`elect_parent` (claims settle by election, not here)."""
    recorded = _search_run(study.user_attrs.get(PARENT_ATTR), study_name)
    if recorded:
        return recorded
    runs = MlflowClient().search_runs(
        [experiment_id()],
        filter_string=_parent_filter(study_name),
        order_by=["attributes.start_time DESC"],
        max_results=50,
    )
    unclaimed = [r for r in runs if tag.CLAIMED_AT not in r.data.tags]
    return unclaimed[0].info.run_id if unclaimed else None


def _claim_parent(study: optuna.Study, study_name: str) -> str:
    """The parent run id: the study's existing one, else this run (``mlflow run``) or a new
    one. Machines starting a fresh study together agree on one (:func:`elect_parent`)."""
    client = MlflowClient()
    own = os.environ.get("MLFLOW_RUN_ID")
    parent = find_parent_run(study, study_name)
    if parent is None:
        if own:
            client.set_tag(own, tag.STAGE, SEARCH_STAGE)
            client.set_tag(own, tag.STUDY_NAME, study_name)
            mine = own
        else:
            mine = client.create_run(
                experiment_id(),
                run_name=f"search-{study_name}",
                tags={tag.STAGE: SEARCH_STAGE, tag.STUDY_NAME: study_name},
            ).info.run_id
        # every machine that found no parent claims; all of them pick the earliest claim
        parent = elect_parent(mine, experiment_id(), _parent_filter(study_name))
        study.set_user_attr(PARENT_ATTR, parent)
        if parent != mine:
            client.set_tag(mine, tag.STAGE, "search-worker")
            client.set_tag(mine, tag.RESUMED_INTO, parent)
            if mine != own:
                client.set_terminated(mine)
        return parent
    if own and own != parent:
        client.set_tag(own, tag.STAGE, "search-resume")
        client.set_tag(own, tag.RESUMED_INTO, parent)
        print(f"search: resuming study {study_name!r} in its run {parent}")
    return parent


def _search_params(cfg: SearchConfig, manifest_path: str) -> dict[str, Any]:
    params = {**dataclasses.asdict(cfg), "manifest": manifest_path}
    params["metric"] = cfg.resolved_metric()
    for k in RUN_CONTROL_FIELDS:
        params.pop(k, None)
    return params


# --------------------------------------------------------------------------- summary
def log_study_summary(study: optuna.Study, cfg: SearchConfig, storage: str = "") -> SearchOutcome:
    """Best params and value, counts, the trials table and Optuna's figures on the active
    (parent) run. Safe to call again after a resumed study: tags and metrics are updated."""
    run_id = mlflow.active_run().info.run_id
    client = MlflowClient()
    counts = state_counts(study)
    spent = epochs_spent(study)
    finished = counts["complete"] + counts["pruned"] + counts["fail"]
    mlflow.log_metrics(
        {
            "n_complete": counts["complete"],
            "n_pruned": counts["pruned"],
            "n_failed": counts["fail"],
            "epochs_spent": spent,
        },
        step=finished,
    )
    best = best_trial(study)
    best_params: dict[str, Any] = {}
    best_value = None
    if best is not None:
        best_params = {k: best.params[k] for k in BEST_KEYS if k in best.params}
        best_value = float(best.value) if best.value is not None else None
        existing = client.get_run(run_id).data.params
        fresh = {f"best.{k}": str(v) for k, v in best_params.items() if f"best.{k}" not in existing}
        if fresh:
            mlflow.log_params(fresh)
        elif any(existing.get(f"best.{k}") != str(v) for k, v in best_params.items()):
            print("search: a better trial than the logged best.* params; tags best_* hold it")
        mlflow.set_tags({f"best_{k}": str(v) for k, v in best_params.items()})
        mlflow.set_tag(tag.BEST_TRIAL, str(best.number))
        if best_value is not None and math.isfinite(best_value):
            mlflow.log_metric("best_value", best_value, step=finished)
    else:
        print("search: no trial completed yet; no best params")
    left, waiting = budget_left(study, cfg.n_trials)
    done = left == 0 and waiting == 0 and counts["running"] == 0
    mlflow.set_tag(tag.COMPLETE, "true" if done else "false")
    table = trials_table(study)
    if not table.empty:
        log_dataframe(table, "tables/trials.csv")
    for name, fig in study_figures(study).items():
        log_figure(fig, f"figures/{name}.png")
    return SearchOutcome(run_id, study.study_name, storage, best_params, best_value, counts, spent)


# --------------------------------------------------------------------------- runner
def run_search(cfg: SearchConfig) -> SearchOutcome:
    """Run (or resume) the study of ``cfg`` with ``n_workers`` local workers, tracked in
    MLflow; returns the best parameters and the counts."""
    t0 = time.monotonic()
    cfg.validate()
    storage_url = cfg.storage or default_storage_url(cfg.work_dir)
    if cfg.n_workers > 1 and is_sqlite(storage_url):
        raise IsicInputError(
            f"storage {storage_url} is SQLite, which parallel workers lock ('database is "
            "locked'); use storage=journal:<path> on one host or PostgreSQL/MySQL across hosts"
        )
    storage = make_storage(storage_url, cfg.heartbeat, cfg.max_retry)  # fails fast
    data = load_search_data(cfg)
    study_name = cfg.study_name or default_study_name(cfg, data.manifest_path)
    study = open_study(storage, study_name, cfg)
    n_existing = len(study.get_trials(deepcopy=False))
    parent_id = _claim_parent(study, study_name)
    shown = mask_url(storage_url)
    print(f"search: study {study_name!r} in {shown} ({n_existing} trials so far), run {parent_id}")

    with mlflow.start_run(run_id=parent_id):
        mlflow.set_tags(
            {
                tag.STAGE: SEARCH_STAGE,
                tag.STUDY_NAME: study_name,
                tag.STORAGE: shown,
                tag.DIRECTION: cfg.direction(),
                tag.N_TRIALS: str(cfg.n_trials),
                tag.N_WORKERS: str(cfg.n_workers),
            }
        )
        log_params(_search_params(cfg, data.manifest_path))
        if tag.dataset_digest("search") not in MlflowClient().get_run(parent_id).data.tags:
            log_manifest_input(
                data.subset,
                name=Path(data.manifest_path).parent.name or "manifest",
                context="search",
            )
            mlflow.log_params(
                {"n_subset": len(data.subset), "n_train": len(data.train), "n_val": len(data.val)}
            )
        sync_trial_runs(study, parent_id)
        if cfg.n_workers == 1:
            _run_worker_here(cfg, study_name, storage_url, parent_id, 0, n_existing, data)
        else:
            codes = _run_workers(cfg, study_name, storage_url, parent_id, n_existing)
            if any(codes):
                print(f"search: worker exit codes {codes}; finishing the budget here")
            # trials of workers that died were re-queued: run what is left in this process
            left = cfg.timeout - (time.monotonic() - t0) if cfg.timeout else 0.0
            if not cfg.timeout or left > 0:
                rest = dataclasses.replace(cfg, timeout=left)
                _run_worker_here(
                    rest, study_name, storage_url, parent_id, cfg.n_workers, n_existing, data
                )
        sync_trial_runs(study, parent_id)
        outcome = log_study_summary(study, cfg, shown)
    print(
        f"search: best {cfg.resolved_metric()}={outcome.best_value} with {outcome.best_params}; "
        f"{outcome.counts}; {outcome.epochs_spent} epochs. "
        f"Train with: -P params_from={parent_id}"
    )
    return outcome
