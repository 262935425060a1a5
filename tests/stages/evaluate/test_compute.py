"""evaluate_scores: the metrics of each task with intervals, the confusion matrix, and the
per-class table of multiclass."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from isic_tracking.errors import IsicInputError
from isic_tracking.stages.evaluate.compute import evaluate_scores
from isic_tracking.stages.evaluate.metrics import BINARY_METRICS, MULTICLASS_METRICS


def test_binary_evaluation_matches_sklearn_and_holds_its_estimates() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(150) < 0.25).astype(int)
    p = 1 / (1 + np.exp(-(1.5 * (2 * y - 1) + rng.normal(size=150))))
    result = evaluate_scores(y, p, "binary", ("benign", "malignant"), n_resamples=200)
    table = result.metrics.set_index("metric")
    assert list(table.index) == list(BINARY_METRICS)
    assert table.loc["roc_auc", "estimate"] == pytest.approx(skm.roc_auc_score(y, p))
    assert table.loc["average_precision", "estimate"] == pytest.approx(
        skm.average_precision_score(y, p)
    )
    assert (table["low"] <= table["estimate"]).all() and (table["estimate"] <= table["high"]).all()
    assert np.array_equal(result.confusion, skm.confusion_matrix(y, (p >= 0.5).astype(int)))
    values = result.metric_values()
    assert values["test_roc_auc_low"] == table.loc["roc_auc", "low"]
    assert len(values) == 3 * len(BINARY_METRICS) and result.per_class is None
    assert result.line("roc_auc").startswith(f"{table.loc['roc_auc', 'estimate']:.4f} [")


def test_multiclass_evaluation_has_a_per_class_table_with_intervals() -> None:
    rng = np.random.default_rng(2)
    classes = ("A", "B", "C")
    y = rng.integers(0, 3, 120)
    scores = rng.dirichlet(np.ones(3), 120)
    scores[np.arange(120), y] += 0.5
    scores /= scores.sum(axis=1, keepdims=True)
    result = evaluate_scores(y, scores, "multiclass", classes, n_resamples=200)
    assert list(result.metrics["metric"]) == list(MULTICLASS_METRICS)
    pc = result.per_class.set_index("class")
    assert list(pc.index) == list(classes)
    assert list(pc["support"]) == list(np.bincount(y, minlength=3))
    p, r, f, _ = skm.precision_recall_fscore_support(y, scores.argmax(1), zero_division=0)
    assert np.allclose(pc[["precision", "recall", "f1"]].to_numpy(), np.column_stack([p, r, f]))
    for m in ("precision", "recall", "f1", "roc_auc"):
        assert (pc[f"{m}_low"] <= pc[m]).all() and (pc[m] <= pc[f"{m}_high"]).all(), m
    macro = result.metrics.set_index("metric").loc["roc_auc", "estimate"]
    assert macro == pytest.approx(pc["roc_auc"].mean())


def test_bad_input_is_an_error() -> None:
    with pytest.raises(IsicInputError, match="empty"):
        evaluate_scores(np.array([]), np.array([]), "binary", ("b", "m"))
    with pytest.raises(IsicInputError, match=r"\[N, 3\]"):
        evaluate_scores(np.array([0, 1]), np.ones((2, 2)), "multiclass", ("a", "b", "c"))
    with pytest.raises(IsicInputError, match="task"):
        evaluate_scores(np.array([0, 1]), np.ones(2), "ternary", ("a", "b"))


def test_a_class_with_one_test_image_has_no_per_class_interval() -> None:
    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(20, int), np.ones(20, int), [2]]
    scores = rng.dirichlet(np.ones(3), 41)
    pc = evaluate_scores(y, scores, "multiclass", ("A", "B", "C"), n_resamples=50).per_class
    lone = pc.set_index("class").loc["C"]
    assert lone["support"] == 1 and np.isnan(lone["recall_low"]) and np.isnan(lone["roc_auc_high"])
    assert not np.isnan(lone["recall"])  # the estimate itself stays
    assert pc.set_index("class").loc[["A", "B"], "roc_auc_low"].notna().all()
