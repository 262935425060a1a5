"""What ``train`` logs after all folds (summary tables) and a fold read back from its run."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from isic_tracking.config import TrainConfig
from isic_tracking.stages.train.runner_results import log_summary, reload_result
from isic_tracking.tracking.runs import download_artifacts, log_dataframe
from isic_tracking.train.fold import FoldResult
from isic_tracking.train.metrics import classification_metrics, predictions_table
from isic_tracking.train.predictions import Predictions


def _result(fold: int, y_true: np.ndarray, scores: np.ndarray) -> FoldResult:
    return FoldResult(fold, [], 0, {}, {}, Predictions(y_true=y_true, scores=scores))


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_reload_result_reads_back_the_predictions_table(mlflow_tracking: str, task: str) -> None:
    """Labels and scores (1-D binary, one column per class multiclass) survive the round trip."""
    rng = np.random.default_rng(0)
    if task == "binary":
        classes = ["benign", "malignant"]
        scores = rng.random(10)
    else:
        classes = ["MEL", "NV", "BCC", "AK", "BKL", "DF", "VASC", "SCC"]
        scores = rng.dirichlet(np.ones(len(classes)), size=10)
    y_true = rng.integers(0, len(classes), size=10)
    pred = Predictions(y_true=y_true, scores=scores)
    ids = [f"ISIC_{i:07d}" for i in range(10)]
    with mlflow.start_run() as run:
        log_dataframe(predictions_table(pred, ids, classes), "tables/predictions.csv")
    result = reload_result(run.info.run_id, 3)
    assert result.fold == 3 and result.best_epoch == -1
    np.testing.assert_array_equal(result.best_predictions.y_true, y_true)
    assert result.best_predictions.scores.shape == scores.shape
    np.testing.assert_allclose(result.best_predictions.scores, scores, rtol=1e-6)


def _two_folds(with_test: bool) -> tuple[dict[int, FoldResult], dict[int, dict]]:
    results = {
        1: _result(1, np.array([0, 1, 1, 0]), np.array([0.1, 0.4, 0.8, 0.3])),
        0: _result(0, np.array([1, 0, 1, 0]), np.array([0.9, 0.6, 0.7, 0.2])),
    }
    finals = {
        1: {"best_val_roc_auc": 0.75, "best_epoch": 2},
        0: {"best_val_roc_auc": 0.5, "best_epoch": 1},
    }
    if with_test:
        finals[0]["test_roc_auc"] = 0.6
        finals[1]["test_roc_auc"] = 0.8
    return results, finals


def test_log_summary_metrics_figures_and_tables(mlflow_tracking: str, tmp_path: Path) -> None:
    """Headline metrics (mean/std over folds as cv_*, out-of-fold in fold order, test_*),
    figures, the summary, fold and test tables."""
    results, finals = _two_folds(with_test=True)
    with mlflow.start_run() as run:
        summary = log_summary(TrainConfig(task="binary"), results, finals)
    assert summary["cv_roc_auc_mean"] == pytest.approx(0.625)
    assert summary["cv_roc_auc_std"] == pytest.approx(0.125)
    assert summary["test_roc_auc_mean"] == pytest.approx(0.7)
    metrics = MlflowClient().get_run(run.info.run_id).data.metrics
    assert metrics == summary
    assert metrics["cv_roc_auc_mean"] == pytest.approx(0.625)
    every = pd.read_csv(download_artifacts(run.info.run_id, "tables/summary.csv", tmp_path))
    row = every.set_index("metric").loc["best_val_roc_auc"]
    assert (row["mean"], row["std"]) == (pytest.approx(0.625), pytest.approx(0.125))
    y = np.concatenate([results[0].best_predictions.y_true, results[1].best_predictions.y_true])
    s = np.concatenate([results[0].best_predictions.scores, results[1].best_predictions.scores])
    oof = classification_metrics(y, s, "binary", 2)
    assert metrics["oof_roc_auc"] == pytest.approx(oof["roc_auc"])
    assert metrics["oof_accuracy"] == pytest.approx(oof["accuracy"])
    figs = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "figures")}
    assert figs == {
        "figures/oof_confusion_matrix.png",
        "figures/oof_confusion_matrix_normalized.png",
        "figures/oof_roc.png",
    }
    folds = pd.read_csv(download_artifacts(run.info.run_id, "tables/fold_metrics.csv", tmp_path))
    assert list(folds["fold"]) == [0, 1]
    assert list(folds["best_val_roc_auc"]) == [0.5, 0.75]
    test = pd.read_csv(download_artifacts(run.info.run_id, "tables/test_metrics.csv", tmp_path))
    assert list(test.columns) == ["fold", "test_roc_auc"]
    assert list(test["fold"].astype(str)) == ["0", "1", "mean ± std"]
    assert test["test_roc_auc"].iloc[-1] == "0.7000 ± 0.1000"


def test_log_summary_without_test_metrics_has_no_test_table(mlflow_tracking: str) -> None:
    """No ``test_`` metrics in the folds: no test table."""
    results, finals = _two_folds(with_test=False)
    with mlflow.start_run() as run:
        log_summary(TrainConfig(task="binary"), results, finals)
    tables = {a.path for a in MlflowClient().list_artifacts(run.info.run_id, "tables")}
    assert tables == {"tables/fold_metrics.csv", "tables/summary.csv"}
