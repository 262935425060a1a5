"""The test metrics as plain numpy over labels and scores, fast enough to recompute on every
bootstrap resample (a few hundred microseconds for a few thousand images).

Same definitions as scikit-learn (the tests check them against it on fixed arrays): ROC AUC
is the Mann-Whitney statistic with ties counted half, average precision the step-wise sum
``sum_k (R_k - R_{k-1}) P_k`` over the distinct score thresholds, precision 0 for a class
never predicted (``zero_division=0``). Hard labels and the confusion counts come from the
training metrics (:func:`~isic_tracking.train.metrics.predicted_labels`,
:func:`~isic_tracking.train.metrics.confusion`), so a test prediction is made exactly like a
validation one.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from isic_tracking.train.metrics import confusion, predicted_labels

#: binary test metrics, in logging order (of the malignant class where it matters)
BINARY_METRICS: tuple[str, ...] = ("roc_auc", "average_precision", "balanced_accuracy",
                                   "accuracy", "sensitivity", "specificity")  # fmt: skip
#: multiclass test metrics: macro averages over every class (accuracy: overall)
MULTICLASS_METRICS: tuple[str, ...] = ("roc_auc", "average_precision", "balanced_accuracy",
                                       "accuracy", "precision", "recall", "f1")  # fmt: skip
#: one-vs-rest metrics of each class (multiclass), columns of the per-class table
PER_CLASS_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "roc_auc", "average_precision")


def rank_auc(is_pos: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC of ``scores`` for ``is_pos`` (Mann-Whitney U / (n1 n0), ties half); NaN when
    either side is empty."""
    is_pos = np.asarray(is_pos, dtype=bool)
    n1 = int(is_pos.sum())
    n0 = len(is_pos) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[is_pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def average_precision(is_pos: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the step-wise precision-recall curve, as
    ``sklearn.metrics.average_precision_score``); NaN without positives."""
    is_pos = np.asarray(is_pos, dtype=bool)
    if not is_pos.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    s, t = np.asarray(scores)[order], is_pos[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # last row of each threshold
    tp = np.cumsum(t)[last]
    precision = tp / (last + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """:data:`BINARY_METRICS` of ``P(malignant)`` scores ``p`` ``[N]`` for labels ``y``."""
    y = np.asarray(y).astype(np.int64)
    (tn, fp), (fn, tp) = confusion(y, predicted_labels(p, threshold), 2)
    sens = tp / (tp + fn) if tp + fn else float("nan")
    spec = tn / (tn + fp) if tn + fp else float("nan")
    return np.array([rank_auc(y == 1, p), average_precision(y == 1, p), (sens + spec) / 2,
                     (tp + tn) / len(y), sens, spec])  # fmt: skip


def per_class_metrics(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``[C, len(PER_CLASS_METRICS)]``: each class's one-vs-rest precision, recall, F1, ROC AUC
    and average precision, from softmax scores ``[N, C]``."""
    y = np.asarray(y).astype(np.int64)
    n = scores.shape[1]
    cm = confusion(y, predicted_labels(scores), n)
    hits = np.diag(cm)
    precision, recall = _ratio(hits, cm.sum(axis=0)), _ratio(hits, cm.sum(axis=1))
    f1 = _ratio(2 * precision * recall, precision + recall)
    auc = [rank_auc(y == c, scores[:, c]) for c in range(n)]
    ap = [average_precision(y == c, scores[:, c]) for c in range(n)]
    return np.column_stack([precision, recall, f1, auc, ap])


def multiclass_metrics(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """:data:`MULTICLASS_METRICS` of softmax scores ``[N, C]``, then the per-class table
    flattened (row-major), so one call gives every number one resample needs. Macro ROC AUC
    and AP are NaN when a class has no test image; balanced accuracy averages the recall of
    the classes that have one (as scikit-learn's)."""
    y = np.asarray(y).astype(np.int64)
    table = per_class_metrics(y, scores)
    present = np.bincount(y, minlength=scores.shape[1]) > 0
    precision, recall, f1, auc, ap = table.T
    accuracy = float(np.mean(predicted_labels(scores) == y))
    macro = [auc.mean(), ap.mean(), recall[present].mean(), accuracy, precision.mean(),
             recall.mean(), f1.mean()]  # fmt: skip
    return np.concatenate([np.array(macro), table.ravel()])


__all__ = [
    "BINARY_METRICS",
    "MULTICLASS_METRICS",
    "PER_CLASS_METRICS",
    "average_precision",
    "binary_metrics",
    "multiclass_metrics",
    "per_class_metrics",
    "rank_auc",
]
