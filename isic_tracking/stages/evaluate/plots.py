"""The test set's figures: precision-recall curve (with AP) and calibration curve, drawn by
scikit-learn's display classes on a pyplot-free :class:`matplotlib.figure.Figure`.

Binary: the malignant class's curve, the PR chance level (its prevalence, e.g. 1.8 % on ISIC
2020) and the reliability diagram of ``P(malignant)``. Multiclass: one-vs-rest PR curves of
every class, and the top-label calibration (confidence of the predicted class against
whether it was right), which one diagram can show for any number of classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from sklearn.calibration import CalibrationDisplay
from sklearn.metrics import PrecisionRecallDisplay

from isic_tracking.train.metrics import predicted_labels


def pr_curve_figure(
    y: np.ndarray, scores: np.ndarray, classes: Sequence[str], title: str
) -> Figure:
    """Precision-recall curve(s) with average precision in the legend."""
    y = np.asarray(y).astype(np.int64)
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    if np.ndim(scores) == 1:
        PrecisionRecallDisplay.from_predictions(
            y, y_score=scores, pos_label=1, name=classes[1], ax=ax, plot_chance_level=True
        )
    else:
        for c, name in enumerate(classes):
            if (y == c).any():
                PrecisionRecallDisplay.from_predictions(
                    y == c, y_score=scores[:, c], pos_label=True, name=name, ax=ax
                )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Recall" if np.ndim(scores) == 1 else "Recall (one-vs-rest)")
    ax.set_ylabel("Precision")
    ax.set_title(title)
    ax.legend(loc="lower left", fontsize=7)
    return fig


def calibration_figure(y: np.ndarray, scores: np.ndarray, title: str, n_bins: int = 10) -> Figure:
    """Reliability diagram: binary ``P(malignant)``, multiclass top-label confidence; bins of
    equal width (``strategy="uniform"``), empty bins left out."""
    y = np.asarray(y).astype(np.int64)
    fig = Figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    if np.ndim(scores) == 1:
        truth, prob, name, what = y == 1, np.asarray(scores), "P(malignant)", "malignant"
    else:
        truth = predicted_labels(scores) == y
        prob, name, what = np.asarray(scores).max(axis=1), "top-label confidence", "correct"
    CalibrationDisplay.from_predictions(
        truth, prob, n_bins=n_bins, strategy="uniform", pos_label=True, name=name, ax=ax
    )
    ax.set_xlabel(f"Mean {name} in the bin")
    ax.set_ylabel(f"Fraction {what}")
    ax.set_title(title)
    return fig


__all__ = ["calibration_figure", "pr_curve_figure"]
