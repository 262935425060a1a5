"""BCa intervals of test metrics: they hold the estimate, shrink with more data, and say what
a perfect and a random scorer are."""

from __future__ import annotations

import numpy as np
import pytest

from isic_tracking.errors import IsicInputError
from isic_tracking.stages.evaluate.intervals import stratified_bootstrap
from isic_tracking.stages.evaluate.metrics import BINARY_METRICS, binary_metrics

AUC = BINARY_METRICS.index("roc_auc")


def _scorer(n: int, seed: int, signal: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return y, 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))


def test_interval_holds_the_estimate_and_shrinks_with_more_data() -> None:
    widths = []
    for n in (80, 800):
        y, p = _scorer(n, 0, 1.0)
        out = stratified_bootstrap(y, p, binary_metrics, n_resamples=400, seed=0)
        for name, i in zip(BINARY_METRICS, out):
            assert i.low <= i.estimate <= i.high, name
            assert i.method == "BCa", name
        assert out[AUC].estimate == pytest.approx(binary_metrics(y, p)[AUC])
        widths.append(out[AUC].high - out[AUC].low)
    assert widths[1] < 0.6 * widths[0]  # ~1/sqrt(10) in theory


def test_perfect_scorer_has_auc_one_on_both_sides() -> None:
    y = np.array([0] * 30 + [1] * 10)
    p = np.r_[np.linspace(0.0, 0.4, 30), np.linspace(0.6, 1.0, 10)]
    auc = stratified_bootstrap(y, p, binary_metrics, n_resamples=200)[AUC]
    assert (auc.estimate, auc.low, auc.high, auc.method) == (1.0, 1.0, 1.0, "degenerate")


def test_random_scorer_interval_holds_one_half() -> None:
    y, p = _scorer(600, 3, 0.0)
    auc = stratified_bootstrap(y, p, binary_metrics, n_resamples=400, seed=1)[AUC]
    assert auc.low < 0.5 < auc.high and auc.high - auc.low < 0.15


def test_resampling_keeps_class_counts_and_a_lone_image_in_every_replicate() -> None:
    """A statistic that reports the class counts sees the same ones in every replicate, the
    single malignant image included, so the interval of a count is degenerate."""
    y = np.array([0] * 12 + [1])
    p = np.linspace(0, 1, 13)
    counts = lambda a, s: np.array([(a == 0).sum(), (a == 1).sum()], float)  # noqa: E731
    out = stratified_bootstrap(y, p, counts, n_resamples=50)
    assert [(i.low, i.high, i.method) for i in out] == [
        (12, 12, "degenerate"),
        (1, 1, "degenerate"),
    ]


def test_same_seed_same_interval_and_bad_settings_are_errors() -> None:
    y, p = _scorer(100, 2, 1.0)
    a = stratified_bootstrap(y, p, binary_metrics, n_resamples=100, seed=5)
    assert a == stratified_bootstrap(y, p, binary_metrics, n_resamples=100, seed=5)
    with pytest.raises(IsicInputError, match="n_resamples"):
        stratified_bootstrap(y, p, binary_metrics, n_resamples=1)
    with pytest.raises(IsicInputError, match="level"):
        stratified_bootstrap(y, p, binary_metrics, level=1.0)


def test_large_test_sets_get_percentile_intervals_named_so() -> None:
    """Above bca_max_n images the jackknife of BCa is skipped: the percentile interval of the
    replicates, which for a large sample is close to BCa's."""
    y, p = _scorer(400, 4, 1.0)
    bca = stratified_bootstrap(y, p, binary_metrics, n_resamples=300, seed=2)[AUC]
    pct = stratified_bootstrap(y, p, binary_metrics, n_resamples=300, seed=2, bca_max_n=100)[AUC]
    assert (bca.method, pct.method) == ("BCa", "percentile")
    assert pct.low <= pct.estimate <= pct.high
    assert abs(pct.low - bca.low) < 0.03 and abs(pct.high - bca.high) < 0.03
