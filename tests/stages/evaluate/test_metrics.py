"""The test metrics against scikit-learn's and the training metrics on fixed arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from isic_tracking.stages.evaluate.metrics import (
    BINARY_METRICS,
    MULTICLASS_METRICS,
    PER_CLASS_METRICS,
    average_precision,
    binary_metrics,
    multiclass_metrics,
    per_class_metrics,
    rank_auc,
)
from isic_tracking.train.metrics import classification_metrics


@pytest.fixture
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.2).astype(int)
    p = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1).round(2)  # rounded: many ties
    return y, p


def test_auc_and_ap_are_sklearns_with_ties(binary) -> None:
    y, p = binary
    assert rank_auc(y == 1, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert average_precision(y == 1, p) == pytest.approx(
        skm.average_precision_score(y, p), abs=1e-12
    )
    assert np.isnan(rank_auc(np.zeros(5, bool), p[:5]))
    assert np.isnan(average_precision(np.zeros(5, bool), p[:5]))


def test_binary_metrics_are_sklearns_and_the_training_ones(binary) -> None:
    y, p = binary
    got = dict(zip(BINARY_METRICS, binary_metrics(y, p, 0.5)))
    pred = (p >= 0.5).astype(int)
    assert got["sensitivity"] == pytest.approx(skm.recall_score(y, pred))
    assert got["specificity"] == pytest.approx(skm.recall_score(1 - y, 1 - pred))
    assert got["average_precision"] == pytest.approx(skm.average_precision_score(y, p))
    train = classification_metrics(y, p, "binary", 2)
    for key in ("roc_auc", "balanced_accuracy", "accuracy"):
        assert got[key] == pytest.approx(train[key]), key


def test_multiclass_metrics_are_sklearns_and_the_training_ones() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.arange(4), rng.integers(0, 4, 196)]
    scores = rng.dirichlet(np.ones(4), 200)
    scores[np.arange(200), y] += 0.3
    scores /= scores.sum(axis=1, keepdims=True)
    values = multiclass_metrics(y, scores)
    got = dict(zip(MULTICLASS_METRICS, values))
    train = classification_metrics(y, scores, "multiclass", 4)
    for key in ("roc_auc", "balanced_accuracy", "accuracy", "precision", "recall", "f1"):
        assert got[key] == pytest.approx(train[key]), key
    table = per_class_metrics(y, scores)
    assert table.shape == (4, len(PER_CLASS_METRICS))
    assert np.allclose(values[len(MULTICLASS_METRICS) :], table.ravel())
    pred = scores.argmax(1)
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, labels=range(4), zero_division=0)
    assert np.allclose(table[:, :3], np.column_stack([p, r, f]))
    auc = [skm.roc_auc_score(y == c, scores[:, c]) for c in range(4)]
    ap = [skm.average_precision_score(y == c, scores[:, c]) for c in range(4)]
    assert np.allclose(table[:, 3], auc) and np.allclose(table[:, 4], ap)


def test_a_class_never_predicted_has_precision_zero_not_nan() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    scores = np.tile([0.6, 0.3, 0.1], (6, 1))
    table = per_class_metrics(y, scores)
    assert table[1, 0] == 0.0 and table[2, 2] == 0.0
