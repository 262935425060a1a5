"""Training figures: confusion matrix, ROC curves, learning curves, cross-run metric bars.

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
state, no GUI backend); the entry point logs it with ``mlflow.log_figure``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from isic_tracking.errors import IsicInputError


def confusion_matrix_figure(
    cm: np.ndarray, classes: Sequence[str], normalize: bool = False, title: str | None = None
) -> Figure:
    """Heat map of a confusion matrix (rows = true class, columns = predicted).

    Args:
        cm: counts ``[C, C]`` from :func:`isic_tracking.train.metrics.confusion`.
        classes: class names, index = label.
        normalize: divide each row by its total (recall on the diagonal); empty rows stay 0.
        title: default "Confusion matrix (counts)" / "(normalized)".
    """
    cm = np.asarray(cm, dtype=np.float64)
    n = len(classes)
    if cm.shape != (n, n):
        raise IsicInputError(f"confusion matrix of shape {cm.shape} for {n} classes")
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        cm = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
    size = max(4.0, 0.6 * n + 2.5)
    fig = Figure(figsize=(size, size * 0.85), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_xticks(range(n), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(n), labels=list(classes))
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(title or f"Confusion matrix ({'normalized' if normalize else 'counts'})")
    threshold = cm.max() / 2 if cm.size else 0
    for i in range(n):
        for j in range(n):
            text = f"{cm[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            color = "white" if cm[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    return fig


def roc_figure(
    y_true: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    task: str,
    title: str = "ROC curve",
) -> Figure:
    """ROC curve(s) with the AUC in the legend.

    Binary: one curve of ``P(malignant)``. Multiclass: one one-vs-rest curve per class;
    a class absent from ``y_true`` (or the only one present) has no curve and is listed as
    "n/a" in the legend.
    """
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64)
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.add_subplot()
    if task == "binary":
        curves = [(classes[-1] if len(classes) else "positive", y_true == 1, scores.reshape(-1))]
    elif task == "multiclass":
        if scores.ndim != 2 or scores.shape[1] != len(classes):
            raise IsicInputError(f"scores of shape {scores.shape} for {len(classes)} classes")
        curves = [(name, y_true == c, scores[:, c]) for c, name in enumerate(classes)]
    else:
        raise IsicInputError(f"unknown task {task!r}; choose 'binary' or 'multiclass'")
    for name, positive, s in curves:
        if positive.all() or not positive.any():
            ax.plot([], [], label=f"{name} (AUC n/a: one class only)")
            continue
        fpr, tpr, _ = roc_curve(positive, s)
        ax.plot(fpr, tpr, lw=1.5, label=f"{name} (AUC = {roc_auc_score(positive, s):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def curves_figure(
    history: Sequence[Mapping[str, float]],
    keys: Sequence[str] = ("loss", "accuracy"),
    prefixes: Sequence[str] = ("train_", "val_"),
) -> Figure:
    """Learning curves: one panel per metric, one line per prefix (train / val) per epoch.

    Args:
        history: one dict per epoch, with prefixed keys as logged by the runner
            (``train_loss``, ``val_loss``...) and optionally ``epoch``.
        keys: the metrics to draw, one panel each.
        prefixes: which series to look for.
    """
    if not keys:
        raise IsicInputError("curves_figure needs at least one metric key")
    fig = Figure(figsize=(4.5 * len(keys), 3.8), layout="constrained")
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    epochs = [h.get("epoch", i) for i, h in enumerate(history)]
    for ax, key in zip(axes, keys):
        for prefix in prefixes:
            name = f"{prefix}{key}"
            points = [(e, h[name]) for e, h in zip(epochs, history) if name in h]
            if points:
                xs, ys = zip(*points)
                ax.plot(xs, ys, marker="o", ms=3, label=prefix.rstrip("_") or key)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(key.replace("_", " "))
        ax.set_title(key.replace("_", " ").capitalize())
        if ax.lines:
            ax.legend(fontsize=8)
    return fig


def metric_bars_figure(table: pd.DataFrame, metric: str, label: str | None = None) -> Figure:
    """Bar chart of one metric across runs (e.g. architectures), with ± std error bars.

    Args:
        table: one row per run with ``<metric>_mean`` and ``<metric>_std`` columns (as from
            :func:`isic_tracking.train.metrics.aggregate_folds`), or a ``<metric>`` column
            (no error bars unless ``<metric>_std`` exists).
        metric: e.g. ``"val_roc_auc"``.
        label: column naming each bar (default: ``name``, ``arch`` or ``run_name`` if
            present, else the index).
    """
    if f"{metric}_mean" in table.columns:
        values = table[f"{metric}_mean"]
    elif metric in table.columns:
        values = table[metric]
    else:
        raise IsicInputError(
            f"no column {metric!r} or {metric + '_mean'!r} in the table; columns: "
            f"{list(table.columns)}"
        )
    errors = table[f"{metric}_std"] if f"{metric}_std" in table.columns else None
    if label is None:
        label = next((c for c in ("name", "arch", "run_name") if c in table.columns), None)
    names = (table[label] if label is not None else table.index).astype(str).tolist()
    fig = Figure(figsize=(max(4.0, 0.9 * len(names) + 2), 4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(names))
    yerr = None if errors is None else errors.to_numpy(dtype=np.float64)
    ax.bar(x, values.to_numpy(dtype=np.float64), yerr=yerr, capsize=4, color="tab:blue")
    rotate = len(names) > 4
    ax.set_xticks(x, labels=names, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{metric} (mean ± std)" if errors is not None else metric)
    return fig
