"""What the ``train`` stage logs once a fold has finished (metrics, checkpoint, figures,
tables) and once every fold has (the summary over folds, out-of-fold metrics), and a fold
finished in an earlier process read back from its run."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import torch
from mlflow.entities import Run

from isic_tracking.config import TrainConfig
from isic_tracking.data.manifest import task_classes
from isic_tracking.tracking import tag
from isic_tracking.tracking.descriptions import train_description
from isic_tracking.tracking.links import run_link
from isic_tracking.tracking.pyfunc import log_fold_model
from isic_tracking.tracking.runs import (
    child_runs,
    describe,
    download_artifacts,
    get_run,
    log_dataframe,
    log_figure,
    log_metrics,
    param,
)
from isic_tracking.train.fold import FoldResult, build_model, evaluate_fold_on
from isic_tracking.train.metrics import (
    aggregate_folds,
    classification_metrics,
    confusion,
    predicted_labels,
    predictions_table,
)
from isic_tracking.train.plots import confusion_matrix_figure, curves_figure, roc_figure
from isic_tracking.train.predictions import Predictions

#: images per class in each fold's training and validation part (the thesis's Table 5)
FOLD_COUNTS_TABLE = "tables/fold_class_counts.csv"
FOLD_STAGE = "train-fold"  # the stage tag of a fold's nested run


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


def log_checkpoint(cfg: TrainConfig, result: FoldResult, final: dict[str, float]) -> None:
    """The fold's best weights + config as a pickle-free pyfunc LoggedModel of the active
    (fold) run, what the registry versions point at; ``final`` is logged to the run and the
    model together (with the training data set)."""
    model = build_model(cfg, torch.device("cpu"))
    model.load_state_dict(result.best_state)
    log_fold_model(model, result.extra["config"], final, step=result.best_epoch)


def log_fold(
    cfg: TrainConfig, result: FoldResult, val_df: pd.DataFrame, test: pd.DataFrame
) -> dict[str, float]:
    """Best-epoch (and test) metrics, checkpoint, figures, predictions and history of a
    finished fold on the active fold run; returns the final metrics."""
    classes = list(task_classes(cfg.task))
    final = {f"best_{k}": v for k, v in result.best_metrics.items() if k != "epoch"}
    final["best_epoch"] = result.best_epoch
    if not test.empty:
        final.update(evaluate_fold_on(cfg, result, test))
    log_checkpoint(cfg, result, final)
    for name, fig in _fold_figures(result, classes, cfg.task).items():
        log_figure(fig, name)
    ids = val_df["image_id"].to_numpy()
    log_dataframe(
        predictions_table(result.best_predictions, ids, classes), "tables/predictions.csv"
    )
    log_dataframe(pd.DataFrame(result.history), "tables/history.csv")
    return final


#: the metrics a train parent shows, the same for every architecture and task
HEADLINE = ("roc_auc", "balanced_accuracy", "accuracy", "f1")


def headline_metrics(summary: dict[str, float], oof: dict[str, float]) -> dict[str, float]:
    """The parent's few metrics: ``cv_<m>_mean/_std`` (validation at each fold's best
    epoch), ``oof_<m>`` (out-of-fold) and ``test_<m>_mean/_std``, for ``m`` in
    :data:`HEADLINE`; the rest stays in tables."""
    out: dict[str, float] = {}
    for m in HEADLINE:
        for stat in ("mean", "std"):
            if f"best_val_{m}_{stat}" in summary:
                out[f"cv_{m}_{stat}"] = summary[f"best_val_{m}_{stat}"]
        if m in oof:
            out[f"oof_{m}"] = oof[m]
        for stat in ("mean", "std"):
            if f"test_{m}_{stat}" in summary:
                out[f"test_{m}_{stat}"] = summary[f"test_{m}_{stat}"]
    return out


def fold_summary(fold_metrics: list[dict[str, float]]) -> dict[str, float]:
    """``<key>_mean`` / ``<key>_std`` over folds of every fold metric (``best_*``, ``test_*``):
    what ``tables/summary.csv`` holds and :mod:`isic_tracking.stages.compare.runner` reads from the fold runs."""
    return aggregate_folds(fold_metrics)


def summary_of(train_run_id: str) -> dict[str, float]:
    """:func:`fold_summary` of a train run, from its finished fold runs' metrics."""
    finals = [
        {k: v for k, v in r.data.metrics.items() if k.startswith(("best_", "test_"))}
        for r in child_runs(train_run_id)
        if r.data.tags.get(tag.STAGE) == FOLD_STAGE
        and r.data.tags.get(tag.FOLD_STATUS) == "finished"
    ]
    return fold_summary(finals) if finals else {}


def log_summary(
    cfg: TrainConfig, results: dict[int, FoldResult], finals: dict[int, dict]
) -> dict[str, float]:
    """The headline metrics (:func:`headline_metrics`), out-of-fold figures, and the tables
    of every metric (over folds, per fold, test) on the active (parent) run; returns the
    headline metrics."""
    classes = list(task_classes(cfg.task))
    summary = fold_summary([finals[k] for k in sorted(finals)])
    y_true = np.concatenate([results[k].best_predictions.y_true for k in sorted(results)])
    scores = np.concatenate([results[k].best_predictions.scores for k in sorted(results)])
    oof = classification_metrics(y_true, scores, cfg.task, len(classes))
    headline = headline_metrics(summary, oof)
    log_metrics(headline)
    rows = [
        {"metric": k.removesuffix("_mean"), "mean": v, "std": summary[k[: -len("_mean")] + "_std"]}
        for k, v in summary.items()
        if k.endswith("_mean")
    ]
    rows += [{"metric": f"oof_{k}", "mean": v, "std": float("nan")} for k, v in oof.items()]
    log_dataframe(pd.DataFrame(rows), "tables/summary.csv")
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
    return headline


def describe_training(
    cfg: TrainConfig,
    parent_id: str,
    folds: list[Run],
    headline: dict[str, float],
    model: str | None,
    champion: str | None,
) -> None:
    """The finished train parent's description (:func:`train_description`); ``model``: the
    registered model, None when nothing was registered."""
    used = (
        {"search run (lr, batch size, epochs)": run_link(cfg.params_from)}
        if cfg.params_from
        else {}
    )
    describe(
        train_description(
            arch=cfg.arch,
            task=cfg.task,
            n_folds=cfg.folds,
            n_images=sum(int(r.data.params.get("n_val", 0)) for r in folds),
            manifest=str(param(get_run(parent_id), "manifest")),
            monitor=f"best_{cfg.resolved_metric()}",
            headline=headline,
            model=model,
            champion=str(champion),
            used=used,
        ),
        parent_id,
    )


def reload_result(fold_run_id: str, fold: int) -> FoldResult:
    """A finished fold's validation predictions, read back from its predictions table."""
    with tempfile.TemporaryDirectory() as tmp:
        table = pd.read_csv(download_artifacts(fold_run_id, "tables/predictions.csv", tmp))
    score_cols = [c for c in table.columns if c.startswith("score_")]
    scores = table[score_cols].to_numpy() if score_cols else table["score"].to_numpy()
    pred = Predictions(y_true=table["y_true"].to_numpy(), scores=scores)
    return FoldResult(fold, [], -1, {}, {}, pred)
