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
import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from mlflow.tracking import MlflowClient

from isic_tracking.config import NON_RESULT_FIELDS, TrainConfig, config_hash
from isic_tracking.data.dataset import make_loader
from isic_tracking.data.defaults import load_task_manifest
from isic_tracking.data.manifest import read_manifest, task_classes
from isic_tracking.data.splits import (
    assign_folds,
    check_fold,
    fold_split,
    split_digest,
    write_folds_csv,
)
from isic_tracking.data.transforms import build_transforms
from isic_tracking.errors import IsicInputError, NonFiniteLossError
from isic_tracking.models import check_arch
from isic_tracking.tracking import tag
from isic_tracking.tracking.registry import CHECKPOINT_DIR, register_checkpoints
from isic_tracking.tracking.runs import (
    child_runs,
    experiment_id,
    get_stage_run,
    log_dataframe,
    log_figure,
    log_manifest_input,
    log_metrics,
    log_params,
)
from isic_tracking.train.champion import champion_index, explain, policy_for, unprefixed
from isic_tracking.train.checkpoint import save_model_checkpoint
from isic_tracking.train.engine import evaluate
from isic_tracking.train.fold import FoldResult, build_model, resolve_amp, train_fold
from isic_tracking.train.losses import make_criterion, metric_mode
from isic_tracking.train.metrics import (
    aggregate_folds,
    classification_metrics,
    confusion,
    predicted_labels,
    predictions_table,
)
from isic_tracking.train.plots import confusion_matrix_figure, curves_figure, roc_figure
from isic_tracking.utils import resolve_device, seed_everything

FOLD_STAGE = "train-fold"
FINAL_KEYS = ("loss", "accuracy", "balanced_accuracy", "roc_auc", "precision", "recall", "f1")


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
    """Replace lr / batch_size / epochs by the best params of a ``search`` run."""
    if not cfg.params_from:
        return cfg
    run = get_stage_run(cfg.params_from, "search")
    best = {k[len("best.") :]: v for k, v in run.data.params.items() if k.startswith("best.")}
    best.update({k[len("best_") :]: v for k, v in run.data.tags.items() if k.startswith("best_")})
    if not best:
        raise IsicInputError(f"search run {cfg.params_from} has no best params yet (unfinished?)")
    kinds = {"lr": float, "batch_size": int, "epochs": int}
    return dataclasses.replace(cfg, **{k: kinds[k](v) for k, v in best.items() if k in kinds})


def load_training_data(cfg: TrainConfig) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train rows with folds, held-out test rows, manifest path)."""
    df, path = load_task_manifest(cfg.manifest, cfg.task)
    classes = task_classes(cfg.task)
    train = df[df["split"] == "train"].reset_index(drop=True)
    test = df[df["split"] == "test"].reset_index(drop=True)
    if cfg.test_manifest:
        test = read_manifest(cfg.test_manifest)
    if train.empty:
        raise IsicInputError(f"{path}: no rows with split=train")
    train = assign_folds(train, n_folds=cfg.folds, seed=cfg.seed, grouped=cfg.grouped)
    for k in range(cfg.folds):
        tr, va = fold_split(train, k)
        check_fold(tr, va, classes, k)
    return train, test, path


def _init_distributed(device: torch.device) -> bool:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend=backend)
    return True


def _broadcast(obj: object) -> object:
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def find_resumable_run(cfg_hash: str, exclude: str | None) -> str | None:
    """The newest unfinished train run with the same config hash, if any."""
    runs = MlflowClient().search_runs(
        [experiment_id()],
        filter_string=f"tags.`{tag.STAGE}` = 'train' and tags.`{tag.CONFIG_HASH}` = '{cfg_hash}'",
        order_by=["attributes.start_time DESC"],
        max_results=20,
    )
    for r in runs:
        if r.info.run_id != exclude and r.data.tags.get(tag.COMPLETE) != "true":
            if r.info.status != "FINISHED" or r.data.tags.get(tag.COMPLETE) == "false":
                return r.info.run_id
    return None


# --------------------------------------------------------------------------- logging
def _fold_figures(result: FoldResult, classes: list[str], task: str) -> dict[str, object]:
    pred = result.best_predictions
    cm = confusion(pred.y_true, predicted_labels(pred.scores), len(classes))
    return {
        "figures/confusion_matrix.png": confusion_matrix_figure(cm, classes, normalize=False),
        "figures/confusion_matrix_normalized.png": confusion_matrix_figure(
            cm, classes, normalize=True
        ),
        "figures/roc.png": roc_figure(pred.y_true, pred.scores, classes, task),
        "figures/loss.png": curves_figure(result.history, keys=("loss",)),
        "figures/accuracy.png": curves_figure(result.history, keys=("accuracy",)),
    }


def _evaluate_test(cfg: TrainConfig, result: FoldResult, test: pd.DataFrame) -> dict[str, float]:
    """Best weights of the fold on the held-out test rows."""
    device = resolve_device(cfg.device)
    model = build_model(cfg, device)
    model.load_state_dict(result.best_state)
    loader = make_loader(
        test,
        build_transforms(cfg.image_size, train=False),
        cfg.batch_size,
        shuffle=False,
        workers=cfg.workers,
    )
    n = len(task_classes(cfg.task))
    criterion = make_criterion(cfg.task, [1] * n, None, device)  # unweighted test loss
    metrics, _ = evaluate(
        model, loader, criterion, device, cfg.task, amp=resolve_amp(cfg.amp, device)
    )
    return {f"test_{k}": float(v) for k, v in metrics.items()}


def _log_fold(
    cfg: TrainConfig, result: FoldResult, val_df: pd.DataFrame, test: pd.DataFrame
) -> dict[str, float]:
    classes = list(task_classes(cfg.task))
    final = {f"best_{k}": v for k, v in result.best_metrics.items() if k != "epoch"}
    final["best_epoch"] = result.best_epoch
    if not test.empty:
        final.update(_evaluate_test(cfg, result, test))
    log_metrics(final)
    with tempfile.TemporaryDirectory() as tmp:
        from isic_tracking.models import create_model  # noqa: F401  (config rebuild check)

        model = build_model(cfg, torch.device("cpu"))
        model.load_state_dict(result.best_state)
        save_model_checkpoint(tmp, model, result.extra["config"])
        mlflow.log_artifacts(tmp, CHECKPOINT_DIR)
    for name, fig in _fold_figures(result, classes, cfg.task).items():
        log_figure(fig, name)
    ids = val_df["image_id"].to_numpy()
    log_dataframe(
        predictions_table(result.best_predictions, ids, classes), "tables/predictions.csv"
    )
    log_dataframe(pd.DataFrame(result.history), "tables/history.csv")
    return final


def _log_summary(
    cfg: TrainConfig, train: pd.DataFrame, results: dict[int, FoldResult], finals: dict[int, dict]
) -> dict[str, float]:
    classes = list(task_classes(cfg.task))
    summary = aggregate_folds([finals[k] for k in sorted(finals)])
    log_metrics(summary)
    y_true = np.concatenate([results[k].best_predictions.y_true for k in sorted(results)])
    scores = np.concatenate([results[k].best_predictions.scores for k in sorted(results)])
    oof = classification_metrics(y_true, scores, cfg.task, len(classes))
    log_metrics(oof, prefix="oof_")
    cm = confusion(y_true, predicted_labels(scores), len(classes))
    log_figure(
        confusion_matrix_figure(cm, classes, normalize=False), "figures/oof_confusion_matrix.png"
    )
    log_figure(
        confusion_matrix_figure(cm, classes, normalize=True),
        "figures/oof_confusion_matrix_normalized.png",
    )
    log_figure(roc_figure(y_true, scores, classes, cfg.task), "figures/oof_roc.png")
    table = pd.DataFrame([{"fold": k, **finals[k]} for k in sorted(finals)])
    log_dataframe(table, "tables/fold_metrics.csv")
    if any(c.startswith("test_") for c in table.columns):
        test_cols = ["fold"] + [c for c in table.columns if c.startswith("test_")]
        t = table[test_cols].copy()
        agg = {c: f"{table[c].mean():.4f} ± {table[c].std(ddof=0):.4f}" for c in test_cols[1:]}
        t = pd.concat([t.astype(object), pd.DataFrame([{"fold": "mean ± std", **agg}])])
        log_dataframe(t, "tables/test_metrics.csv")
    return summary


# --------------------------------------------------------------------------- runner
def run_training(cfg: TrainConfig) -> TrainingOutcome | None:
    """Run (or resume) k-fold training; returns the outcome on rank 0, None on other ranks."""
    device = resolve_device(cfg.device)
    distributed = _init_distributed(device)
    rank = dist.get_rank() if distributed else 0
    seed_everything(cfg.seed, deterministic=cfg.deterministic and device.type == "cpu")
    cfg = apply_search_params(cfg) if rank == 0 else cfg
    cfg = _broadcast(cfg)  # type: ignore[assignment]
    check_arch(cfg.arch, cfg.weights)
    train, test, manifest_path = load_training_data(cfg)
    folds_to_run = [cfg.fold] if cfg.fold is not None else list(range(cfg.folds))
    if cfg.fold is not None and not 0 <= cfg.fold < cfg.folds:
        raise IsicInputError(f"fold={cfg.fold} is outside 0..{cfg.folds - 1}")
    h = config_hash(
        dataclasses.replace(cfg, manifest=manifest_path, params_from=None), NON_RESULT_FIELDS
    )

    if rank != 0:
        parent_id, done = _broadcast(None), _broadcast(None)
        for k in folds_to_run:
            if k not in done:  # type: ignore[operator]
                tr, va = fold_split(train, k)
                train_fold(cfg, tr, va, k, _state_path(cfg, parent_id, k))  # type: ignore[arg-type]
        dist.destroy_process_group()
        return None

    own_run = os.environ.get("MLFLOW_RUN_ID")
    parent_id = cfg.resume or find_resumable_run(h, exclude=own_run)
    if parent_id:
        get_stage_run(parent_id, "train")
        if own_run and own_run != parent_id:
            MlflowClient().set_tag(own_run, tag.RESUMED_INTO, parent_id)
            MlflowClient().set_tag(own_run, tag.STAGE, "train-resume")
            print(f"resuming train run {parent_id} (same settings, unfinished)")
    params = {
        **dataclasses.asdict(cfg),
        "manifest": manifest_path,
        "monitor": cfg.resolved_monitor(),
    }
    for k in NON_RESULT_FIELDS:
        params.pop(k, None)
    model_name = cfg.register_as or f"isic-{cfg.task}-{cfg.arch.replace(':', '-')}"
    with mlflow.start_run(
        run_id=parent_id, run_name=None if parent_id else f"train-{cfg.arch}"
    ) as run:
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
        log_params(params)
        existing = {
            r.data.tags.get(tag.FOLD): r
            for r in child_runs(parent_id)
            if r.data.tags.get(tag.STAGE) == FOLD_STAGE
        }
        if not existing:
            log_manifest_input(
                train, name=Path(manifest_path).parent.name or "manifest", context="training"
            )
            with tempfile.TemporaryDirectory() as tmp:
                write_folds_csv(train, Path(tmp) / "folds.csv")
                mlflow.log_artifact(str(Path(tmp) / "folds.csv"), "splits")
        done = [
            int(k) for k, r in existing.items() if r.data.tags.get(tag.FOLD_STATUS) == "finished"
        ]
        _broadcast(parent_id)
        _broadcast(done)

        finals: dict[int, dict[str, float]] = {}
        results: dict[int, FoldResult] = {}
        failed: list[int] = []
        for k in folds_to_run:
            if k in done:
                print(f"fold {k}: already finished in run {existing[str(k)].info.run_id}, kept")
                continue
            tr, va = fold_split(train, k)
            prev = existing.get(str(k))
            with mlflow.start_run(
                run_id=prev.info.run_id if prev else None, nested=True, run_name=f"fold-{k}"
            ) as frun:
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
                    print(f"fold {k} FAILED: {err}")
                    failed.append(k)
                    mlflow.end_run(status="FAILED")
                    continue
                finals[k] = _log_fold(cfg, result, va, test)
                results[k] = result
                mlflow.set_tag(tag.FOLD_STATUS, "finished")
            print(
                f"fold {k}: best {cfg.resolved_monitor()}={result.best_metrics.get(cfg.resolved_monitor()):.4f} "
                f"at epoch {result.best_epoch} (run {frun.info.run_id})"
            )

        outcome = _finish(cfg, parent_id, train, model_name, finals, results, failed)
    if distributed:
        dist.destroy_process_group()
    return outcome


def _state_path(cfg: TrainConfig, parent_id: str, fold: int) -> Path:
    return Path(cfg.work_dir) / parent_id / f"fold{fold}.pt"


def _finish(
    cfg: TrainConfig,
    parent_id: str,
    train: pd.DataFrame,
    model_name: str,
    finals: dict[int, dict[str, float]],
    results: dict[int, FoldResult],
    failed: list[int],
) -> TrainingOutcome:
    """When every fold has finished (this process or earlier ones): summary + registry."""
    runs = {
        int(r.data.tags[tag.FOLD]): r
        for r in child_runs(parent_id)
        if r.data.tags.get(tag.STAGE) == FOLD_STAGE
    }
    finished = {k: r for k, r in runs.items() if r.data.tags.get(tag.FOLD_STATUS) == "finished"}
    if failed:
        mlflow.set_tag(tag.FAILED_FOLDS, ",".join(map(str, failed)))
    if len(finished) + len(failed) < cfg.folds or not finished:
        if not finished and failed:
            raise IsicInputError(
                f"every fold failed ({failed}); see the fold runs' isic.error tag (NaN loss: "
                "lower lr, check inputs)"
            )
        print(f"{len(finished)}/{cfg.folds} folds finished; summary and registry when all are done")
        return TrainingOutcome(parent_id, None, None, list(finals.values()), {}, failed)
    # folds finished in earlier processes: reload their predictions and metrics from MLflow
    for k, r in finished.items():
        if k not in results:
            finals[k] = {
                m: v for m, v in r.data.metrics.items() if m.startswith(("best_", "test_"))
            }
            results[k] = _reload_result(r.info.run_id, k)
    summary = _log_summary(cfg, train, results, finals)
    monitor = f"best_{cfg.resolved_monitor()}"
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
        description=why,
    )
    print(why)
    champion = (
        MlflowClient().get_model_version_by_alias(model_name, "champion").version
        if versions
        else None
    )
    mlflow.set_tags(
        {
            tag.COMPLETE: "true",
            tag.REGISTERED_MODEL: model_name,
            tag.CHAMPION_VERSION: str(champion),
        }
    )
    print(
        f"registered {model_name} versions {[v.version for v in versions]}; "
        f"champion: models:/{model_name}@champion (version {champion})"
    )
    return TrainingOutcome(
        parent_id, model_name, champion, [finals[k] for k in sorted(finals)], summary, failed
    )


def _reload_result(fold_run_id: str, fold: int) -> FoldResult:
    """A finished fold's validation predictions, read back from its predictions table."""
    from isic_tracking.tracking.runs import download_artifacts
    from isic_tracking.train.engine import Predictions

    with tempfile.TemporaryDirectory() as tmp:
        table = pd.read_csv(download_artifacts(fold_run_id, "tables/predictions.csv", tmp))
    score_cols = [c for c in table.columns if c.startswith("score_")]
    scores = table[score_cols].to_numpy() if score_cols else table["score"].to_numpy()
    pred = Predictions(y_true=table["y_true"].to_numpy(), scores=scores)
    return FoldResult(fold, [], -1, {}, {}, pred)
