"""Classification metrics with the same keys for every architecture and fold.

Undefined values (ROC AUC when a class is missing from ``y_true``) are NaN, never an
exception, so one unlucky validation fold does not crash a k-fold job.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from isic_tracking.errors import IsicInputError

if TYPE_CHECKING:
    from isic_tracking.train.predictions import Predictions

#: Keys of :func:`classification_metrics`, in logging order.
METRIC_KEYS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "roc_auc",
    "precision",
    "recall",
    "f1",
)


def predicted_labels(scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Hard labels from scores: ``P(malignant) >= threshold`` for ``[N]``, argmax for ``[N, C]``."""
    scores = np.asarray(scores)
    if scores.ndim == 1:
        return (scores >= threshold).astype(np.int64)
    return scores.argmax(axis=1).astype(np.int64)


def _roc_auc(y_true: np.ndarray, scores: np.ndarray, n_classes: int) -> float:
    """Binary AUC, or macro one-vs-rest AUC; NaN when any class is absent from ``y_true``."""
    present = np.unique(y_true)
    if len(present) < n_classes or len(y_true) == 0:
        return math.nan
    if scores.ndim == 1:
        return float(skm.roc_auc_score(y_true, scores))
    per_class = [skm.roc_auc_score(y_true == c, scores[:, c]) for c in range(n_classes)]
    return float(np.mean(per_class))


def classification_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    task: str,
    n_classes: int,
    threshold: float = 0.5,
) -> dict[str, float]:
    """Accuracy, balanced accuracy, ROC AUC, precision, recall and F1 as a flat dict.

    Args:
        y_true: integer labels ``[N]``.
        scores: binary: ``P(malignant)`` ``[N]``; multiclass: softmax probabilities ``[N, C]``.
        task: ``"binary"`` or ``"multiclass"``.
        n_classes: 2 for binary, C for multiclass (classes absent from ``y_true`` still count).
        threshold: decision threshold on ``P(malignant)`` (binary only).

    Returns:
        ``{accuracy, balanced_accuracy, roc_auc, precision, recall, f1}`` (see
        :data:`METRIC_KEYS`). Binary precision/recall/F1 are those of the malignant class;
        multiclass ones are macro averages over all ``n_classes`` (0 where undefined).
        ``roc_auc`` is NaN when a class has no example in ``y_true``.
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64)
    if task == "binary":
        scores = scores.reshape(-1)
        n_classes = 2
    elif task == "multiclass":
        if scores.ndim != 2 or scores.shape[1] != n_classes:
            raise IsicInputError(
                f"multiclass scores must have shape [N, {n_classes}], got {scores.shape}"
            )
    else:
        raise IsicInputError(f"unknown task {task!r}; choose 'binary' or 'multiclass'")
    if len(scores) != len(y_true):
        raise IsicInputError(f"{len(y_true)} labels but {len(scores)} scores")
    if len(y_true) == 0:
        return dict.fromkeys(METRIC_KEYS, math.nan)
    y_pred = predicted_labels(scores, threshold)
    if task == "binary":
        averaging = {"average": "binary", "pos_label": 1}
    else:
        averaging = {"average": "macro", "labels": list(range(n_classes))}
    with warnings.catch_warnings():
        # balanced accuracy warns when y_pred holds a class absent from y_true; the value is fine.
        warnings.simplefilter("ignore", UserWarning)
        bal = skm.balanced_accuracy_score(y_true, y_pred)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        y_true, y_pred, zero_division=0, **averaging
    )
    return {
        "accuracy": float(np.mean(y_pred == y_true)),
        "balanced_accuracy": float(bal),
        "roc_auc": _roc_auc(y_true, scores, n_classes),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts ``[n_classes, n_classes]``: rows = true class, columns = predicted."""
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if len(y_true) != len(y_pred):
        raise IsicInputError(f"{len(y_true)} labels but {len(y_pred)} predictions")
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise IsicInputError(f"{name} holds labels outside 0..{n_classes - 1}")
    counts = np.bincount(n_classes * y_true + y_pred, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


def predictions_table(
    pred: Predictions, image_ids: Sequence[str], classes: Sequence[str], threshold: float = 0.5
) -> pd.DataFrame:
    """Per-image predictions (the fold's table artifact).

    Args:
        pred: from :func:`isic_tracking.train.engine.evaluate`.
        image_ids: ids of the evaluated data set; indexed by ``pred.indices`` when the loader
            yielded indices, else aligned with the prediction order.
        classes: class names, index = label.
        threshold: decision threshold on ``P(malignant)`` (binary).

    Returns:
        Columns ``image_id, y_true, y_pred, true_class, pred_class`` and ``score`` (binary,
        ``P(malignant)``) or ``score_<class>`` per class (multiclass).
    """
    ids = np.asarray(list(image_ids), dtype=object)
    if pred.indices is not None:
        if len(pred.indices) and int(np.max(pred.indices)) >= len(ids):
            raise IsicInputError(
                f"prediction index {int(np.max(pred.indices))} is out of range for "
                f"{len(ids)} image ids; pass the ids of the whole evaluated data set"
            )
        ids = ids[np.asarray(pred.indices, dtype=np.int64)]
    elif len(ids) != len(pred.y_true):
        raise IsicInputError(f"{len(ids)} image ids for {len(pred.y_true)} predictions")
    y_pred = predicted_labels(pred.scores, threshold)
    names = np.asarray(list(classes), dtype=object)
    table = pd.DataFrame(
        {
            "image_id": ids,
            "y_true": pred.y_true.astype(np.int64),
            "y_pred": y_pred,
            "true_class": names[pred.y_true.astype(np.int64)],
            "pred_class": names[y_pred],
        }
    )
    if pred.scores.ndim == 1:
        table["score"] = pred.scores
    else:
        if pred.scores.shape[1] != len(names):
            raise IsicInputError(f"{pred.scores.shape[1]} score columns for {len(names)} classes")
        for c, name in enumerate(names):
            table[f"score_{name}"] = pred.scores[:, c]
    return table


def aggregate_folds(fold_metrics: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean and standard deviation (numpy's, ddof=0) of every numeric metric across folds.

    A NaN in any fold makes that metric's mean NaN (it is not silently dropped).

    Returns:
        ``{<key>_mean, <key>_std}`` for every key, in first-seen order.
    """
    keys: list[str] = []
    for m in fold_metrics:
        keys += [
            k
            for k, v in m.items()
            if k not in keys
            and isinstance(v, (int, float, np.number))
            and not isinstance(v, (bool, np.bool_))
        ]
    out: dict[str, float] = {}
    for k in keys:
        values = np.array([float(m[k]) for m in fold_metrics if k in m], dtype=np.float64)
        out[f"{k}_mean"] = float(values.mean())
        out[f"{k}_std"] = float(values.std())
    return out
