"""Metrics match sklearn, stay defined (NaN) on absent classes, aggregate across folds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from isic_tracking.errors import IsicInputError
from isic_tracking.train.engine import Predictions
from isic_tracking.train.metrics import (
    METRIC_KEYS,
    aggregate_folds,
    classification_metrics,
    confusion,
    predicted_labels,
    predictions_table,
)

RNG = np.random.default_rng(0)


def test_binary_metrics_match_sklearn():
    y = RNG.integers(0, 2, 200)
    s = np.clip(y * 0.3 + RNG.random(200) * 0.7, 0, 1)
    m = classification_metrics(y, s, "binary", 2, threshold=0.5)
    p = (s >= 0.5).astype(int)
    assert tuple(m) == METRIC_KEYS
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["precision"] == pytest.approx(skm.precision_score(y, p))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p))


def test_binary_threshold_moves_predictions():
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.35, 0.4, 0.9])
    assert classification_metrics(y, s, "binary", 2)["recall"] == 0.5
    assert classification_metrics(y, s, "binary", 2, threshold=0.3)["recall"] == 1.0


def test_multiclass_metrics_match_sklearn():
    n, c = 300, 4
    y = RNG.integers(0, c, n)
    logits = RNG.normal(size=(n, c)) + np.eye(c)[y] * 1.5
    s = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    m = classification_metrics(y, s, "multiclass", c)
    p = s.argmax(1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert m["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, s, multi_class="ovr", average="macro")
    )
    assert m["precision"] == pytest.approx(skm.precision_score(y, p, average="macro"))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p, average="macro"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))


def test_absent_class_gives_nan_auc_not_a_crash():
    m = classification_metrics(np.zeros(5, int), np.linspace(0, 1, 5), "binary", 2)
    assert set(m) == set(METRIC_KEYS) and math.isnan(m["roc_auc"])
    assert m["accuracy"] == pytest.approx(2 / 5)  # 0.5 and above predicted malignant
    y = np.array([0, 1, 0, 1])  # class 2 of 3 absent
    s = np.full((4, 3), 1 / 3)
    m = classification_metrics(y, s, "multiclass", 3)
    assert set(m) == set(METRIC_KEYS) and math.isnan(m["roc_auc"])
    assert all(not math.isnan(m[k]) for k in METRIC_KEYS if k != "roc_auc")


def test_empty_input_gives_all_nan():
    m = classification_metrics(np.array([], int), np.array([]), "binary", 2)
    assert set(m) == set(METRIC_KEYS) and all(math.isnan(v) for v in m.values())


def test_bad_shapes_and_task():
    with pytest.raises(IsicInputError, match=r"\[N, 3\]"):
        classification_metrics(np.array([0, 1]), np.ones((2, 2)), "multiclass", 3)
    with pytest.raises(IsicInputError, match="2 labels but 3 scores"):
        classification_metrics(np.array([0, 1]), np.ones(3), "binary", 2)
    with pytest.raises(IsicInputError, match="unknown task"):
        classification_metrics(np.array([0, 1]), np.ones(2), "regression", 2)


def test_confusion_matches_sklearn_and_keeps_absent_classes():
    y = RNG.integers(0, 3, 50)
    p = RNG.integers(0, 3, 50)
    np.testing.assert_array_equal(
        confusion(y, p, 4), skm.confusion_matrix(y, p, labels=[0, 1, 2, 3])
    )
    assert confusion(y, p, 4).shape == (4, 4)
    with pytest.raises(IsicInputError, match="outside 0..1"):
        confusion(np.array([0, 2]), np.array([0, 1]), 2)


def test_predicted_labels():
    assert predicted_labels(np.array([0.2, 0.5, 0.8])).tolist() == [0, 1, 1]
    assert predicted_labels(np.array([[0.1, 0.9], [0.7, 0.3]])).tolist() == [1, 0]


def test_predictions_table_binary_uses_indices():
    pred = Predictions(np.array([1, 0]), np.array([0.8, 0.3]), np.array([2, 0]))
    t = predictions_table(pred, ["a", "b", "c"], ["benign", "malignant"])
    assert t["image_id"].tolist() == ["c", "a"]
    assert t["y_pred"].tolist() == [1, 0]
    assert t["true_class"].tolist() == ["malignant", "benign"]
    assert t["score"].tolist() == [0.8, 0.3]


def test_predictions_table_multiclass_columns():
    pred = Predictions(np.array([2, 0]), np.array([[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]))
    t = predictions_table(pred, ["x", "y"], ["MEL", "NV", "BCC"])
    assert list(t.columns) == [
        "image_id", "y_true", "y_pred", "true_class", "pred_class",
        "score_MEL", "score_NV", "score_BCC",
    ]  # fmt: skip
    assert t["pred_class"].tolist() == ["BCC", "MEL"]
    with pytest.raises(IsicInputError, match="3 image ids for 2 predictions"):
        predictions_table(pred, ["x", "y", "z"], ["MEL", "NV", "BCC"])


def test_aggregate_folds_mean_std_and_nan_propagates():
    folds = [
        {"roc_auc": 0.8, "loss": 1.0, "name": "f0", "stopped": True},
        {"roc_auc": 0.9, "loss": 3.0},
        {"roc_auc": float("nan"), "loss": 2.0},
    ]
    agg = aggregate_folds(folds)
    assert set(agg) == {"roc_auc_mean", "roc_auc_std", "loss_mean", "loss_std"}
    assert agg["loss_mean"] == pytest.approx(2.0)
    assert agg["loss_std"] == pytest.approx(np.std([1.0, 3.0, 2.0]))
    assert math.isnan(agg["roc_auc_mean"])
    assert aggregate_folds(folds[:2])["roc_auc_std"] == pytest.approx(0.05)
