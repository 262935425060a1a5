"""The test set's precision-recall and calibration figures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from isic_tracking.stages.evaluate.plots import calibration_figure, pr_curve_figure


def _binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.1).astype(int)
    return y, np.clip(0.4 * y + 0.6 * rng.random(200), 0, 1)


def test_binary_pr_curve_names_its_ap_and_the_chance_level() -> None:
    y, p = _binary()
    fig = pr_curve_figure(y, p, ("benign", "malignant"), "t")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ap = skm.average_precision_score(y, p)
    assert any(f"AP = {ap:.2f}" in x for x in labels), labels
    assert any("Chance" in x and f"{y.mean():.2f}" in x for x in labels), labels


def test_multiclass_pr_curve_has_one_line_per_present_class() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(20, int), np.ones(20, int)]  # class C has no test image
    scores = rng.dirichlet(np.ones(3), 40)
    fig = pr_curve_figure(y, scores, ("A", "B", "C"), "t")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(labels) == 2 and labels[0].startswith("A") and labels[1].startswith("B")


@pytest.mark.parametrize("multiclass", [False, True])
def test_calibration_curve_plots_observed_against_predicted(multiclass: bool) -> None:
    y, p = _binary()
    scores = np.column_stack([1 - p, p]) if multiclass else p
    fig = calibration_figure(y, scores, "t", n_bins=5)
    ax = fig.axes[0]
    xs, ys = ax.get_lines()[-1].get_data()  # the model's curve, after the diagonal
    assert 1 <= len(xs) <= 5 and ((0 <= ys) & (ys <= 1)).all()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert ("top-label confidence" in legend) == multiclass, legend
