"""The test-set evaluation without MLflow: from labels and scores to the metrics with their
bootstrap intervals, the confusion matrix and (multiclass) the per-class table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from isic_tracking.errors import IsicInputError
from isic_tracking.stages.evaluate.intervals import Interval, stratified_bootstrap
from isic_tracking.stages.evaluate.metrics import (
    BINARY_METRICS,
    MULTICLASS_METRICS,
    PER_CLASS_METRICS,
    binary_metrics,
    multiclass_metrics,
)
from isic_tracking.train.metrics import confusion, predicted_labels

#: columns of :attr:`Evaluation.metrics`
METRIC_COLUMNS = ("metric", "estimate", "low", "high", "method")


@dataclass(frozen=True)
class Evaluation:
    """What the test set says about one model.

    Attributes:
        task: binary | multiclass.
        classes: class names, index = label.
        n_images: test images.
        metrics: one row per metric of the task: ``metric, estimate, low, high, method``.
        per_class: multiclass: one row per class, ``class, support`` and per
            :data:`PER_CLASS_METRICS` the estimate and ``_low``/``_high``; None for binary.
        confusion: counts ``[C, C]``, rows = true class.
        level: the intervals' confidence level.
        n_resamples: bootstrap replicates.
    """

    task: str
    classes: tuple[str, ...]
    n_images: int
    metrics: pd.DataFrame
    per_class: pd.DataFrame | None
    confusion: np.ndarray
    level: float
    n_resamples: int

    def metric_values(self, prefix: str = "test_") -> dict[str, float]:
        """``<prefix><m>``, ``<prefix><m>_low``, ``<prefix><m>_high`` per metric (to log)."""
        out: dict[str, float] = {}
        for row in self.metrics.itertuples(index=False):
            out[f"{prefix}{row.metric}"] = float(row.estimate)
            out[f"{prefix}{row.metric}_low"] = float(row.low)
            out[f"{prefix}{row.metric}_high"] = float(row.high)
        return out

    def line(self, metric: str) -> str:
        """``0.8123 [0.7541, 0.8702]`` for one metric (``NaN`` where undefined)."""
        row = self.metrics.set_index("metric").loc[metric]
        return f"{_num(row['estimate'])} [{_num(row['low'])}, {_num(row['high'])}]"


def _num(v: float) -> str:
    return "NaN" if v != v else f"{v:.4f}"


def _rows(names: Sequence[str], intervals: Sequence[Interval]) -> pd.DataFrame:
    return pd.DataFrame(
        [(n, i.estimate, i.low, i.high, i.method) for n, i in zip(names, intervals)],
        columns=list(METRIC_COLUMNS),
    )


def _per_class(
    y: np.ndarray, classes: Sequence[str], intervals: Sequence[Interval]
) -> pd.DataFrame:
    """The per-class table; a class with fewer than two test images has no interval (NaN):
    its image is in every replicate, so a resampled spread would claim a certainty it lacks."""
    support = np.bincount(y, minlength=len(classes))
    table = pd.DataFrame({"class": list(classes), "support": support})
    k = len(PER_CLASS_METRICS)
    nan = float("nan")
    for j, name in enumerate(PER_CLASS_METRICS):
        cells = [intervals[c * k + j] for c in range(len(classes))]
        table[name] = [i.estimate for i in cells]
        table[f"{name}_low"] = [i.low if n >= 2 else nan for i, n in zip(cells, support)]
        table[f"{name}_high"] = [i.high if n >= 2 else nan for i, n in zip(cells, support)]
    return table


def evaluate_scores(
    y: np.ndarray,
    scores: np.ndarray,
    task: str,
    classes: Sequence[str],
    *,
    threshold: float = 0.5,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Evaluation:
    """Metrics of the task with BCa intervals (:func:`.intervals.stratified_bootstrap`), the
    confusion matrix and, multiclass, the per-class table.

    Args:
        y: integer labels ``[N]``.
        scores: binary ``P(malignant)`` ``[N]``; multiclass softmax ``[N, C]``.
        task: binary | multiclass.
        classes: class names, index = label.
        threshold: decision threshold on ``P(malignant)`` (binary; the training one, 0.5).
        n_resamples, level, seed: of the bootstrap.
    """
    y = np.asarray(y).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if len(y) == 0:
        raise IsicInputError("the test set is empty: nothing to evaluate")
    if len(scores) != len(y):
        raise IsicInputError(f"{len(y)} labels but {len(scores)} scores")
    boot = {"n_resamples": n_resamples, "level": level, "seed": seed}
    if task == "binary":
        scores = scores.reshape(-1)
        stat = lambda a, s: binary_metrics(a, s, threshold)  # noqa: E731
        intervals = stratified_bootstrap(y, scores, stat, **boot)
        metrics, per_class = _rows(BINARY_METRICS, intervals), None
        pred = predicted_labels(scores, threshold)
    elif task == "multiclass":
        if scores.ndim != 2 or scores.shape[1] != len(classes):
            raise IsicInputError(f"multiclass scores must be [N, {len(classes)}]: {scores.shape}")
        intervals = stratified_bootstrap(y, scores, multiclass_metrics, **boot)
        n = len(MULTICLASS_METRICS)
        metrics = _rows(MULTICLASS_METRICS, intervals[:n])
        per_class = _per_class(y, classes, intervals[n:])
        pred = predicted_labels(scores)
    else:
        raise IsicInputError(f"unknown task {task!r}; choose 'binary' or 'multiclass'")
    cm = confusion(y, pred, len(classes))
    return Evaluation(task, tuple(classes), len(y), metrics, per_class, cm, level, n_resamples)


__all__ = ["METRIC_COLUMNS", "Evaluation", "evaluate_scores"]
