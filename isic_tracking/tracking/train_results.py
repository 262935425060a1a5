"""What the ``train`` stage logs once a fold has finished (metrics, checkpoint, figures,
tables) and once every fold has (the summary over folds, out-of-fold metrics), and a fold
finished in an earlier process read back from its run."""

from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
import torch

from isic_tracking.config import TrainConfig
from isic_tracking.data.manifest import task_classes
from isic_tracking.tracking.pyfunc import log_fold_model
from isic_tracking.tracking.runs import download_artifacts, log_dataframe, log_figure, log_metrics
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


def log_summary(
    cfg: TrainConfig, results: dict[int, FoldResult], finals: dict[int, dict]
) -> dict[str, float]:
    """Mean/std over folds, out-of-fold metrics and figures, fold and test tables on the
    active (parent) run; returns the summary metrics."""
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


def reload_result(fold_run_id: str, fold: int) -> FoldResult:
    """A finished fold's validation predictions, read back from its predictions table."""
    with tempfile.TemporaryDirectory() as tmp:
        table = pd.read_csv(download_artifacts(fold_run_id, "tables/predictions.csv", tmp))
    score_cols = [c for c in table.columns if c.startswith("score_")]
    scores = table[score_cols].to_numpy() if score_cols else table["score"].to_numpy()
    pred = Predictions(y_true=table["y_true"].to_numpy(), scores=scores)
    return FoldResult(fold, [], -1, {}, {}, pred)
