"""Training figures: right axes, labels, curves and bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from isic_tracking.errors import IsicInputError
from isic_tracking.train.plots import (
    confusion_matrix_figure,
    curves_figure,
    metric_bars_figure,
    roc_figure,
)


def _main_axes(fig: Figure):
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


def test_confusion_matrix_counts_and_normalized():
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    classes = ["MEL", "NV", "BCC"]
    fig = confusion_matrix_figure(cm, classes, normalize=False)
    (ax,) = _main_axes(fig)
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    assert [t.get_text() for t in ax.get_yticklabels()] == classes
    assert ax.get_xlabel() == "Predicted class" and ax.get_ylabel() == "True class"
    assert [t.get_text() for t in ax.texts][:3] == ["5", "1", "0"]
    (ax_n,) = _main_axes(confusion_matrix_figure(cm, classes, normalize=True))
    texts = [t.get_text() for t in ax_n.texts]
    assert texts[:2] == ["0.83", "0.17"] and texts[-1] == "0.00"  # empty row stays 0
    assert "normalized" in ax_n.get_title()
    with pytest.raises(IsicInputError, match="for 2 classes"):
        confusion_matrix_figure(cm, ["a", "b"])


def test_roc_binary_one_curve_with_auc():
    y = np.array([0, 0, 1, 1])
    fig = roc_figure(y, np.array([0.1, 0.4, 0.35, 0.8]), ["benign", "malignant"], "binary")
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["malignant (AUC = 0.750)", "chance"]
    assert ax.get_xlabel() == "False positive rate"


def test_roc_multiclass_one_curve_per_class_absent_class_listed():
    y = np.array([0, 1, 0, 1, 0])
    s = np.random.default_rng(0).dirichlet(np.ones(3), size=5)
    (ax,) = roc_figure(y, s, ["MEL", "NV", "BCC"], "multiclass").axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(labels) == 4
    assert labels[0].startswith("MEL (AUC = ") and labels[2].startswith("BCC (AUC n/a")


def test_curves_figure_train_and_val_per_key():
    history = [
        {"epoch": e, "train_loss": 1 / (e + 1), "val_loss": 1.2 / (e + 1), "train_accuracy": 0.5,
         "val_accuracy": 0.6}
        for e in range(4)
    ]  # fmt: skip
    fig = curves_figure(history, keys=("loss", "accuracy"))
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "val"]
    assert list(loss_ax.lines[1].get_xdata()) == [0, 1, 2, 3]
    assert loss_ax.get_xlabel() == "Epoch" and acc_ax.get_ylabel() == "accuracy"
    assert len(curves_figure(history, keys=("roc_auc",)).axes[0].lines) == 0


def test_metric_bars_with_error_bars():
    table = pd.DataFrame(
        {"arch": ["alexnet", "vgg16", "resnet50"], "val_roc_auc_mean": [0.8, 0.85, 0.9],
         "val_roc_auc_std": [0.02, 0.01, 0.03]}
    )  # fmt: skip
    (ax,) = metric_bars_figure(table, "val_roc_auc").axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["alexnet", "vgg16", "resnet50"]
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.8, 0.85, 0.9])
    (errorbars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    segments = errorbars.lines[2][0].get_segments()
    assert [seg[1][1] - seg[0][1] for seg in segments] == pytest.approx([0.04, 0.02, 0.06])
    with pytest.raises(IsicInputError, match="columns"):
        metric_bars_figure(table, "val_f1")
