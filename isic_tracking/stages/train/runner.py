"""The ``train`` stage: stratified k-fold training with one parent run and a nested run per fold.

Resume: the parent run carries ``isic.config_hash``; a run started again with the same
settings (or ``resume=<run id>``) re-enters the unfinished parent, keeps its finished folds
and continues the unfinished fold at its last completed epoch (state under ``work_dir``).
Under ``torchrun`` every rank trains, rank 0 alone talks to MLflow.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import torch.distributed as dist
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from isic_tracking.config import NON_RESULT_FIELDS, TrainConfig, config_hash
from isic_tracking.data.manifest import task_classes
from isic_tracking.data.splits import (
    fold_class_counts,
    fold_split,
    split_digest,
    write_folds_csv,
)
from isic_tracking.deprecation import warn_legacy
from isic_tracking.errors import IsicInputError, NonFiniteLossError
from isic_tracking.log import get_logger
from isic_tracking.models import check_arch
from isic_tracking.scaleout.parent_election import elect_parent
from isic_tracking.stages.train.runner_results import (
    FOLD_COUNTS_TABLE,
    FOLD_STAGE,
    describe_training,
    log_fold,
    log_summary,
    reload_result,
)
from isic_tracking.tracking import tag
from isic_tracking.tracking.descriptions import fold_description
from isic_tracking.tracking.init import init_of, with_init_file
from isic_tracking.tracking.links import announce, run_link
from isic_tracking.tracking.outage import create_run_riding_outage
from isic_tracking.tracking.registry import register_checkpoints
from isic_tracking.tracking.runs import (
    child_runs,
    context_tags,
    describe,
    experiment_id,
    get_stage_run,
    log_dataframe,
    log_manifest_input,
    log_metrics,
    log_params,
    monitored_run,
)
from isic_tracking.train.champion import champion_index, explain, policy_for, unprefixed
from isic_tracking.train.data import load_training_data
from isic_tracking.train.distributed import broadcast, init_distributed
from isic_tracking.train.fold import FoldResult, train_fold
from isic_tracking.train.resume import discard_states
from isic_tracking.train.tasks import metric_mode
from isic_tracking.utils import resolve_device, seed_everything

log = get_logger(__name__)


@dataclass
class TrainingOutcome:
    run_id: str
    model_name: str | None
    champion_version: str | None
    fold_metrics: list[dict[str, float]]
    summary: dict[str, float]
    failed_folds: list[int]


# --------------------------------------------------------------------------- set-up
def apply_search_params(cfg: TrainConfig) -> TrainConfig:
    """Replace lr / batch_size / epochs by the best params of a ``search`` run (tags
    ``isic.best.*``). Search runs of older versions held them in params ``best.*`` and tags
    ``best_*``: still read, with a one-time warning, until 2027-06-30."""
    if not cfg.params_from:
        return cfg
    run = get_stage_run(cfg.params_from, "search")
    prefix = tag.best_param("")
    best = {k[len("best.") :]: v for k, v in run.data.params.items() if k.startswith("best.")}
    best.update({k[len("best_") :]: v for k, v in run.data.tags.items() if k.startswith("best_")})
    if best:
        warn_legacy(
            log,
            "params_from:older-search-run",
            f"search run {cfg.params_from} keeps its best params in params best.* / tags "
            "best_* (an older version's): read them; a newer search run tags isic.best.*",
        )
    best.update({k[len(prefix) :]: v for k, v in run.data.tags.items() if k.startswith(prefix)})
    if not best:
        raise IsicInputError(f"search run {cfg.params_from} has no best params yet (unfinished?)")
    kinds = {"lr": float, "batch_size": int, "epochs": int}
    return dataclasses.replace(cfg, **{k: kinds[k](v) for k, v in best.items() if k in kinds})


def find_resumable_run(cfg_hash: str, exclude: str | None, task: str | None = None) -> str | None:
    """The newest unfinished train run with the same config hash, if any."""
    runs = MlflowClient().search_runs(
        [experiment_id(task)],
        filter_string=f"tags.`{tag.STAGE}` = 'train' and tags.`{tag.CONFIG_HASH}` = '{cfg_hash}'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    open_runs = [
        r
        for r in runs
        if r.info.run_id != exclude
        and r.data.tags.get(tag.COMPLETE) != "true"
        and (r.info.status != "FINISHED" or r.data.tags.get(tag.COMPLETE) == "false")
    ]
    # runs claimed by one-fold workers (scaleout/parent_election.py): the earliest claim is the parent
    claimed = [r for r in open_runs if tag.CLAIMED_AT in r.data.tags]
    if claimed:
        first = min(claimed, key=lambda r: (float(r.data.tags[tag.CLAIMED_AT]), r.info.run_id))
        return first.info.run_id
    return open_runs[0].info.run_id if open_runs else None


def _claim_fold_parent(cfg: TrainConfig, cfg_hash: str, own_run: str | None) -> str:
    """One-fold workers (``fold=k``) started together: each claims a parent run and all
    agree on the earliest claim (:func:`elect_parent`); the losers point at it."""
    client = MlflowClient()
    mine = own_run or (
        create_run_riding_outage(
            client, experiment_id(cfg.task), run_name=f"train-{cfg.arch}", tags=context_tags()
        ).info.run_id
    )
    parent = elect_parent(
        mine,
        experiment_id(cfg.task),
        f"tags.`{tag.STAGE}` = 'train' and tags.`{tag.CONFIG_HASH}` = '{cfg_hash}'",
        eligible=lambda r: r.data.tags.get(tag.COMPLETE) != "true",
        tags={tag.STAGE: "train", tag.CONFIG_HASH: cfg_hash, tag.COMPLETE: "false"},
    )
    if parent != mine and mine != own_run:  # own_run is re-tagged as a resume below
        client.set_tag(mine, tag.STAGE, "train-resume")
        client.set_tag(mine, tag.RESUMED_INTO, parent)
        client.set_terminated(mine)
    return parent


def _resume_target(cfg: TrainConfig, cfg_hash: str) -> str | None:
    """The parent run to re-enter (``resume`` or an unfinished run of the same config); a
    ``mlflow run`` of its own then points at it."""
    own_run = os.environ.get("MLFLOW_RUN_ID")
    parent_id = cfg.resume or find_resumable_run(cfg_hash, exclude=own_run, task=cfg.task)
    if parent_id is None and cfg.fold is not None:
        parent_id = _claim_fold_parent(cfg, cfg_hash, own_run)
    if parent_id:
        get_stage_run(parent_id, "train")
        if own_run and own_run != parent_id:
            MlflowClient().set_tag(own_run, tag.RESUMED_INTO, parent_id)
            MlflowClient().set_tag(own_run, tag.STAGE, "train-resume")
            log.info(f"resuming train run {parent_id} (same settings, unfinished)")
    return parent_id


def _run_params(cfg: TrainConfig, manifest_path: str) -> dict[str, object]:
    params = {
        **dataclasses.asdict(cfg),
        "manifest": manifest_path,
        "monitor": cfg.resolved_metric(),
        **init_of(cfg).params(),
    }
    for k in NON_RESULT_FIELDS:
        params.pop(k, None)
    return params


def _state_path(cfg: TrainConfig, parent_id: str, fold: int) -> Path:
    return Path(cfg.work_dir) / parent_id / f"fold{fold}.pt"


def _fold_runs(parent_id: str) -> dict[str, Run]:
    """The parent's fold runs by fold number (as the tag string)."""
    return {
        r.data.tags.get(tag.FOLD): r
        for r in child_runs(parent_id)
        if r.data.tags.get(tag.STAGE) == FOLD_STAGE
    }


def _is_finished(run: Run) -> bool:
    return run.data.tags.get(tag.FOLD_STATUS) == "finished"


# --------------------------------------------------------------------------- runner
def run_training(cfg: TrainConfig) -> TrainingOutcome | None:
    """Run (or resume) k-fold training (:func:`_run_training`); a ``models:/`` init is
    fetched (by rank 0) into a temporary folder that is gone when training ends."""
    with tempfile.TemporaryDirectory(prefix="isic-init-") as init_dir:
        return _run_training(cfg, init_dir)


def _run_training(cfg: TrainConfig, init_dir: str) -> TrainingOutcome | None:
    """Run (or resume) k-fold training; returns the outcome on rank 0, None on other ranks."""
    device = resolve_device(cfg.device)
    distributed = init_distributed(device)
    rank = dist.get_rank() if distributed else 0
    seed_everything(cfg.seed, deterministic=cfg.deterministic and device.type == "cpu")
    if rank == 0:
        cfg = with_init_file(apply_search_params(cfg), init_dir)
    cfg = broadcast(cfg)  # type: ignore[assignment]
    check_arch(cfg.arch, cfg.weights)
    train, test, manifest_path = load_training_data(cfg)
    folds_to_run = [cfg.fold] if cfg.fold is not None else list(range(cfg.folds))
    if cfg.fold is not None and not 0 <= cfg.fold < cfg.folds:
        raise IsicInputError(f"fold={cfg.fold} is outside 0..{cfg.folds - 1}")
    h = config_hash(
        dataclasses.replace(cfg, manifest=manifest_path, params_from=None), NON_RESULT_FIELDS
    )

    if rank != 0:
        parent_id, done = broadcast(None), broadcast(None)
        for k in folds_to_run:
            if k not in done:  # type: ignore[operator]
                tr, va = fold_split(train, k)
                train_fold(cfg, tr, va, k, _state_path(cfg, parent_id, k))  # type: ignore[arg-type]
        dist.destroy_process_group()
        return None

    parent_id = _resume_target(cfg, h)
    model_name = cfg.register_as or f"isic-{cfg.task}-{cfg.arch.replace(':', '-')}"
    new_run: dict[str, str] = {} if parent_id else {"run_name": f"train-{cfg.arch}"}
    if not parent_id and not os.environ.get("MLFLOW_RUN_ID"):
        new_run["experiment_id"] = experiment_id(cfg.task)
    with monitored_run(run_id=parent_id, **new_run) as run:
        parent_id = run.info.run_id
        mlflow.set_tags(
            {
                tag.STAGE: "train",
                tag.CONFIG_HASH: h,
                tag.COMPLETE: "false",
                tag.GROUPING: "grouped" if cfg.grouped else "stratified",
                tag.SPLIT_DIGEST: split_digest(train),
            }
        )
        log_params(_run_params(cfg, manifest_path))
        existing = _fold_runs(parent_id)
        if not existing:
            log_manifest_input(
                train, name=Path(manifest_path).parent.name or "manifest", context="training"
            )
            with tempfile.TemporaryDirectory() as tmp:
                write_folds_csv(train, Path(tmp) / "folds.csv")
                mlflow.log_artifact(str(Path(tmp) / "folds.csv"), "splits")
            counts = fold_class_counts(train, task_classes(cfg.task))
            log_dataframe(counts, FOLD_COUNTS_TABLE)
        done = [int(k) for k, r in existing.items() if _is_finished(r)]
        broadcast(parent_id)
        broadcast(done)

        finals: dict[int, dict[str, float]] = {}
        results: dict[int, FoldResult] = {}
        failed: list[int] = []
        for k in folds_to_run:
            if k in done:
                log.info(f"fold {k}: already finished in run {existing[str(k)].info.run_id}, kept")
                continue
            outcome = _run_fold(cfg, train, test, parent_id, k, existing.get(str(k)))
            if outcome is None:
                failed.append(k)
            else:
                finals[k], results[k] = outcome

        outcome = _finish(cfg, parent_id, model_name, finals, results, failed)
    announce("train", run)
    if distributed:
        dist.destroy_process_group()
    return outcome


def _new_fold_run(k: int) -> str:
    """A nested run for fold ``k`` under the active run, created so that a database restart
    behind the tracking server delays it instead of failing the fold."""
    tags = context_tags(**{MLFLOW_PARENT_RUN_ID: mlflow.active_run().info.run_id})
    run = create_run_riding_outage(MlflowClient(), experiment_id(), f"fold-{k}", tags)
    return run.info.run_id


def _run_fold(
    cfg: TrainConfig,
    train: pd.DataFrame,
    test: pd.DataFrame,
    parent_id: str,
    k: int,
    prev: Run | None,
) -> tuple[dict[str, float], FoldResult] | None:
    """Train fold ``k`` in its nested run (a new one, or ``prev`` to resume); None when its
    loss went NaN/Inf (the fold run is then FAILED and the other folds go on)."""
    tr, va = fold_split(train, k)
    run_id = prev.info.run_id if prev else _new_fold_run(k)
    with mlflow.start_run(run_id=run_id, nested=True) as frun:
        mlflow.set_tags({tag.STAGE: FOLD_STAGE, tag.FOLD: str(k)})
        log_params({"fold": k, "n_train": len(tr), "n_val": len(va)})
        try:
            result = train_fold(
                cfg,
                tr,
                va,
                k,
                _state_path(cfg, parent_id, k),
                on_epoch=lambda e, row: log_metrics(row, step=e),
            )
        except NonFiniteLossError as err:
            mlflow.set_tag(tag.FOLD_STATUS, "failed")
            mlflow.set_tag(tag.ERROR, str(err)[:4000])
            log.info(f"fold {k} FAILED: {err}")
            mlflow.end_run(status="FAILED")
            return None
        final = log_fold(cfg, result, va, test)
        describe(fold_description(k, cfg.folds, run_link(parent_id), result.best_epoch, final))
        mlflow.set_tag(tag.FOLD_STATUS, "finished")
    if not cfg.keep_resume_state:  # the fold's results are in MLflow now
        discard_states(_state_path(cfg, parent_id, k))
    monitor = cfg.resolved_metric()
    log.info(
        f"fold {k}: best {monitor}={result.best_metrics.get(monitor):.4f} "
        f"at epoch {result.best_epoch} (run {frun.info.run_id})"
    )
    return final, result


def _finish(
    cfg: TrainConfig,
    parent_id: str,
    model_name: str,
    finals: dict[int, dict[str, float]],
    results: dict[int, FoldResult],
    failed: list[int],
) -> TrainingOutcome:
    """When every fold has finished (this process or earlier ones): summary + registry."""
    runs = {int(k): r for k, r in _fold_runs(parent_id).items()}
    finished = {k: r for k, r in runs.items() if _is_finished(r)}
    if failed:
        mlflow.set_tag(tag.FAILED_FOLDS, ",".join(map(str, failed)))
    if len(finished) + len(failed) < cfg.folds or not finished:
        if not finished and failed:
            raise IsicInputError(
                f"every fold failed ({failed}); see the fold runs' isic.error tag (NaN loss: "
                "lower lr, check inputs)"
            )
        log.info(
            f"{len(finished)}/{cfg.folds} folds finished; summary and registry when all are done"
        )
        return TrainingOutcome(parent_id, None, None, list(finals.values()), {}, failed)
    if cfg.fold is not None and results:
        # one-fold workers finishing together all see every fold done: the earliest claim
        # (scaleout/parent_election.py) logs the summary and registers, once
        mine = runs[min(results)].info.run_id
        folds_of_parent = (
            f"tags.mlflow.parentRunId = '{parent_id}' and tags.`{tag.STAGE}` = '{FOLD_STAGE}'"
        )
        first = elect_parent(mine, experiment_id(cfg.task), folds_of_parent)
        if first != mine:
            log.info(f"every fold finished; the worker of fold run {first} logs the summary")
            return TrainingOutcome(parent_id, None, None, list(finals.values()), {}, failed)
    # folds finished in earlier processes: reload their predictions and metrics from MLflow
    for k, r in finished.items():
        if k not in results:
            finals[k] = {
                m: v for m, v in r.data.metrics.items() if m.startswith(("best_", "test_"))
            }
            results[k] = reload_result(r.info.run_id, k)
    summary = log_summary(cfg, results, finals)
    monitor = f"best_{cfg.resolved_metric()}"
    policy = policy_for(cfg)
    rows = [unprefixed(finals[k]) for k in sorted(finished)]
    why = explain(policy, rows, [f"fold {k}" for k in sorted(finished)])
    versions = register_checkpoints(
        model_name,
        [(finished[k].info.run_id, finals[k]) for k in sorted(finished)],
        monitor=monitor,
        mode=metric_mode(monitor),
        train_run_id=parent_id,
        champion=champion_index(rows, policy),
        why=why,
    )
    champion = (
        MlflowClient().get_model_version_by_alias(model_name, "champion").version
        if versions
        else None
    )
    if not cfg.keep_resume_state:
        discard_states(_state_path(cfg, parent_id, 0).parent)
    mlflow.set_tags(
        {
            tag.COMPLETE: "true",
            tag.REGISTERED_MODEL: model_name,
            tag.CHAMPION_VERSION: str(champion),
        }
    )
    log.info(
        f"registered {model_name} versions {[v.version for v in versions]}; "
        f"champion: models:/{model_name}@champion (version {champion})"
    )
    log.info(why)
    registered = model_name if versions else None
    describe_training(cfg, parent_id, list(finished.values()), summary, registered, champion)
    return TrainingOutcome(
        parent_id, model_name, champion, [finals[k] for k in sorted(finals)], summary, failed
    )
