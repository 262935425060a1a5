"""The ``search`` stage in MLflow: the study is one parent run, every trial a nested run.

A trial's run holds its parameters, per-epoch metrics, duration and final state (tag
``optuna.state``: complete / pruned / failed; MLflow status FINISHED / KILLED / FAILED). The
parent logs the settings, the best parameters (tags ``isic.best.lr``, ``isic.best.batch_size``,
``isic.best.epochs``, read by ``train -P params_from=<run id>``; tags, so they stay current when a
resumed study finds a better trial), metric ``best_value``, the trials table and Optuna's
figures.

Resume: the study records its parent run id (study user attr ``mlflow_parent_run_id``) and
the parent carries tag ``isic.study_name``; running the same study again re-enters that
parent, so trial numbers and nested runs continue under it. Worker processes (``n_workers``)
and other machines attach their trial runs to the same parent through ``MlflowClient``
(no global active-run state is shared between processes): trial runs in
:mod:`.runner_trials`, worker processes in :mod:`.runner_workers`.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import optuna
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from isic_tracking.errors import IsicInputError
from isic_tracking.log import get_logger
from isic_tracking.scaleout.parent_election import elect_parent
from isic_tracking.scaleout.storage import is_sqlite, make_storage, mask_url
from isic_tracking.scaleout.worker_loop import budget_left
from isic_tracking.stages.search.runner_trials import RUN_ID_ATTR, sync_trial_runs
from isic_tracking.stages.search.runner_workers import run_worker_here, run_workers
from isic_tracking.tracking import tag
from isic_tracking.tracking.descriptions import search_description
from isic_tracking.tracking.init import with_init_file
from isic_tracking.tracking.links import announce, run_link
from isic_tracking.tracking.outage import create_run_riding_outage
from isic_tracking.tracking.runs import (
    context_tags,
    describe,
    experiment_id,
    log_dataframe,
    log_figure,
    log_manifest_input,
    log_params,
)
from isic_tracking.train.search import (
    RUN_CONTROL_FIELDS,
    SearchConfig,
    best_trial,
    default_study_name,
    epochs_spent,
    load_search_data,
    open_study,
    state_counts,
    study_figures,
    trials_table,
)

log = get_logger(__name__)
SEARCH_STAGE = "search"
PARENT_ATTR = "mlflow_parent_run_id"
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


def find_parent_run(study: optuna.Study, study_name: str, task: str | None = None) -> str | None:
    """The parent run of a study: the id it recorded, else the newest run tagged with it
    that is not a claim of :func:`elect_parent` (claims settle by election, not here)."""
    recorded = _search_run(study.user_attrs.get(PARENT_ATTR), study_name)
    if recorded:
        return recorded
    runs = MlflowClient().search_runs(
        [experiment_id(task)],
        filter_string=_parent_filter(study_name),
        order_by=["attributes.start_time DESC"],
        max_results=50,
    )
    unclaimed = [r for r in runs if tag.CLAIMED_AT not in r.data.tags]
    return unclaimed[0].info.run_id if unclaimed else None


def _claim_parent(study: optuna.Study, study_name: str, task: str | None = None) -> str:
    """The parent run id: the study's existing one, else this run (``mlflow run``) or a new
    one. Machines starting a fresh study together agree on one (:func:`elect_parent`)."""
    client = MlflowClient()
    own = os.environ.get("MLFLOW_RUN_ID")
    parent = find_parent_run(study, study_name, task)
    if parent is None:
        mine = own or (
            create_run_riding_outage(
                client, experiment_id(task), run_name=f"search-{study_name}", tags=context_tags()
            ).info.run_id
        )
        # every machine that found no parent claims; all of them pick the earliest claim
        parent = elect_parent(
            mine,
            experiment_id(task),
            _parent_filter(study_name),
            tags={tag.STAGE: SEARCH_STAGE, tag.STUDY_NAME: study_name},
        )
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
        log.info(f"search: resuming study {study_name!r} in its run {parent}")
    return parent


def _search_params(cfg: SearchConfig, manifest_path: str) -> dict[str, Any]:
    """The parent run's params: the config's result fields, the manifest, and ``monitor``
    resolved (the task's default when none was given). Runs made before the search's
    ``metric`` was renamed ``monitor`` (as in train) hold param ``metric`` instead."""
    params = {**dataclasses.asdict(cfg), "manifest": manifest_path}
    params["monitor"] = cfg.resolved_metric()
    for k in RUN_CONTROL_FIELDS:
        params.pop(k, None)
    return params


# --------------------------------------------------------------------------- summary
def log_study_summary(study: optuna.Study, cfg: SearchConfig, storage: str = "") -> SearchOutcome:
    """Best params and value, counts, the trials table and Optuna's figures on the active
    (parent) run. Safe to call again after a resumed study: tags and metrics are updated."""
    run_id = mlflow.active_run().info.run_id
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
        # tags, not params: a resumed study that finds a better trial updates them
        mlflow.set_tags({tag.best_param(k): str(v) for k, v in best_params.items()})
        mlflow.set_tag(tag.BEST_TRIAL, str(best.number))
        if best_value is not None and math.isfinite(best_value):
            mlflow.log_metric("best_value", best_value, step=finished)
    else:
        log.info("search: no trial completed yet; no best params")
    left, waiting = budget_left(study, cfg.n_trials)
    done = left == 0 and waiting == 0 and counts["running"] == 0
    mlflow.set_tag(tag.COMPLETE, "true" if done else "false")
    table = trials_table(study)
    if not table.empty:
        log_dataframe(table, "tables/trials.csv")
    for name, fig in study_figures(study).items():
        log_figure(fig, f"figures/{name}.png")
    best_run = best.user_attrs.get(RUN_ID_ATTR) if best is not None else None
    describe(
        search_description(
            study=study.study_name,
            arch=cfg.arch,
            task=cfg.task,
            metric=cfg.resolved_metric(),
            counts=counts,
            best=best_params,
            best_value=best_value,
            best_run=run_link(best_run) if best_run else None,
            used={},
        )
    )
    return SearchOutcome(run_id, study.study_name, storage, best_params, best_value, counts, spent)


# --------------------------------------------------------------------------- runner
def run_search(cfg: SearchConfig) -> SearchOutcome:
    """Run (or resume) the study of ``cfg`` (:func:`_run_search`); a ``models:/`` init is
    fetched into a temporary folder that is gone when the search ends."""
    with tempfile.TemporaryDirectory(prefix="isic-init-") as init_dir:
        return _run_search(with_init_file(cfg, init_dir))


def _run_search(cfg: SearchConfig) -> SearchOutcome:
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
    parent_id = _claim_parent(study, study_name, cfg.task)
    shown = mask_url(storage_url)
    log.info(
        f"search: study {study_name!r} in {shown} ({n_existing} trials so far), run {parent_id}"
    )

    with mlflow.start_run(run_id=parent_id) as run:
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
            run_worker_here(cfg, study_name, storage_url, parent_id, data)
        else:
            codes = run_workers(cfg, study_name, storage_url, parent_id)
            if any(codes):
                log.info(f"search: worker exit codes {codes}; finishing the budget here")
            # trials of workers that died were re-queued: run what is left in this process
            left = cfg.timeout - (time.monotonic() - t0) if cfg.timeout else 0.0
            if not cfg.timeout or left > 0:
                rest = dataclasses.replace(cfg, timeout=left)
                run_worker_here(rest, study_name, storage_url, parent_id, data)
        sync_trial_runs(study, parent_id)
        outcome = log_study_summary(study, cfg, shown)
    log.info(
        f"search: best {cfg.resolved_metric()}={outcome.best_value} with {outcome.best_params}; "
        f"{outcome.counts}; {outcome.epochs_spent} epochs. "
        f"Train with: -P params_from={parent_id}"
    )
    announce(SEARCH_STAGE, run)
    return outcome
